"""Sending mail through the SMTP server a self-hoster configured (`SMTP_URL`).

Dogear only mails password-reset links, so this is smtplib and nothing more:

    smtp://user:pass@host:25           plain SMTP (a relay on the same host or network)
    smtp+starttls://user:pass@host:587 SMTP upgraded to TLS with STARTTLS
    smtps://user:pass@host:465         SMTP over TLS from the first byte

User and password are optional and percent-decoded (`%40` for an `@` in a user name).
With `SMTP_URL` empty, mail is off and the sign-in page tells readers to ask an admin.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from flask import current_app

TIMEOUT = 15  # seconds for connecting and for each SMTP command
_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class SMTPSettings:
    scheme: str
    host: str
    port: int
    username: str
    password: str


def parse_smtp_url(url: str) -> SMTPSettings:
    """`SMTP_URL` as settings; ValueError says what is wrong with it."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as error:  # a port that isn't a number or is out of range
        raise ValueError(f"SMTP_URL has a bad port: {error}") from error
    return SMTPSettings(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def is_configured() -> bool:
    return bool(str(current_app.config.get("SMTP_URL") or "").strip())


def sender() -> str:
    configured = str(current_app.config.get("MAIL_FROM") or "").strip()
    if configured:
        return configured
    host = urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"
    return f"Dogear <dogear@{host}>"


def send(to: str, subject: str, body: str) -> None:
    """Send one plain-text message; raises MailError when the server refuses it."""
    settings = parse_smtp_url(current_app.config["SMTP_URL"])
    message = EmailMessage()
    message["From"] = sender()
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.host)
    message.set_content(body)
    try:
        with _connect(settings) as smtp:
            if settings.username:
                smtp.login(settings.username, settings.password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise MailError(f"could not send mail through {settings.host}: {error}") from error


def _connect(settings: SMTPSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if settings.scheme == "smtps":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT, context=context)
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT)
    try:
        if settings.scheme == "smtp+starttls":
            smtp.starttls(context=context)
    except BaseException:
        smtp.close()
        raise
    return smtp

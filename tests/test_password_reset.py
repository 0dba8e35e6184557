"""Password resets: one-time links made by an admin, by `dogear users reset-password`
or mailed by "Forgot your password?" through a tiny SMTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import re
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select, update

from app import mail
from app.auth import services
from app.extensions import db
from app.jobs import pending_count, run_pending
from app.models import AuditEvent, LoginSession, PasswordReset, utcnow
from tests.conftest import sign_in

NEW = "a brand new password"
_RESET = re.compile(r"(?:http://localhost)?/reset/([A-Za-z0-9_-]+)")


# --- a tiny SMTP server ---------------------------------------------------------------


@dataclass
class Mailbox:
    messages: list = field(default_factory=list)
    logins: list = field(default_factory=list)


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        box: Mailbox = self.server.mailbox  # type: ignore[attr-defined]
        self.reply("220 stub ESMTP")
        envelope: dict = {"to": []}
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-stub\r\n250 AUTH PLAIN\r\n")
            elif verb == "AUTH":
                credentials = base64.b64decode(command.split()[-1]).split(b"\0")
                box.logins.append((credentials[1].decode(), credentials[2].decode()))
                self.reply("235 ok")
            elif verb == "MAIL":
                envelope = {"from": command, "to": []}
                self.reply("250 ok")
            elif verb == "RCPT":
                envelope["to"].append(command)
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                box.messages.append(message_from_bytes(data, policy=policy.default))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp(app) -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 that keeps what it receives; SMTP_URL points at it."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.mailbox = Mailbox()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["SMTP_URL"] = (
        f"smtp://dogear%40example.com:s3cret@127.0.0.1:{server.server_address[1]}"
    )
    app.config["BASE_URL"] = "https://read.example.org"
    try:
        yield server.mailbox  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _admin_link(client, user) -> str:
    response = client.submit(f"/admin/users/{user.id}/reset-link", htmx=True)
    return _RESET.search(response.get_data(as_text=True)).group(1)


def _set_password(client, token: str, password: str = NEW):
    return client.submit(f"/reset/{token}", {"password": password, "confirm": password})


# --- links made by an admin ---------------------------------------------------------------


def test_a_reset_link_sets_a_new_password_and_ends_every_session(app, client, admin, make_user):
    ada = make_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, ada)
    sign_in(phone, ada)
    token = _admin_link(client, ada)

    visitor = app.test_client()
    page = visitor.get(f"/reset/{token}")
    assert page.status_code == 200 and "ada@example.com" in page.get_data(as_text=True)
    response = _set_password(visitor, token)
    assert response.status_code == 303 and response.location == "/login"
    assert laptop.get("/list").status_code == 302
    assert phone.get("/list").status_code == 302
    assert (
        db.session.scalar(
            select(func.count()).select_from(LoginSession).where(LoginSession.user_id == ada.id)
        )
        == 0
    )
    assert sign_in(visitor, ada).status_code == 422  # the old password is gone
    assert sign_in(visitor, ada, NEW).status_code == 303
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.password_reset"))
    assert event.actor_email == "ada@example.com"


def test_a_reset_link_works_once(app, client, admin, make_user):
    ada = make_user("ada@example.com")
    token = _admin_link(client, ada)
    other = _admin_link(client, ada)
    visitor = app.test_client()
    assert _set_password(visitor, token).status_code == 303
    used = visitor.get(f"/reset/{token}")
    assert used.status_code == 410 and "already used" in used.get_data(as_text=True)
    assert _set_password(visitor, token, "yet another password").status_code == 410
    # Using one link retired the other links of the account too.
    assert visitor.get(f"/reset/{other}").status_code == 410
    assert sign_in(visitor, ada, NEW).status_code == 303


def test_a_reset_link_expires(app, client, admin, make_user):
    ada = make_user("ada@example.com")
    token = _admin_link(client, ada)
    reset = db.session.scalar(select(PasswordReset))
    assert timedelta(minutes=59) < reset.expires_at - reset.created_at <= timedelta(minutes=60)
    db.session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    visitor = app.test_client()
    page = visitor.get(f"/reset/{token}")
    assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
    assert _set_password(visitor, token).status_code == 410
    assert sign_in(visitor, ada).status_code == 303  # the password did not change


def test_a_reset_link_dies_when_the_account_signs_in_after_it(app, client, admin, make_user):
    ada = make_user("ada@example.com")
    token = _admin_link(client, ada)
    sign_in(app.test_client(), ada)  # Ada remembered her password after all
    visitor = app.test_client()
    page = visitor.get(f"/reset/{token}")
    assert page.status_code == 410 and "signed in after" in page.get_data(as_text=True)
    assert _set_password(visitor, token).status_code == 410


def test_reset_form_errors_are_422_and_unknown_links_404(app, client, admin, make_user):
    ada = make_user("ada@example.com")
    token = _admin_link(client, ada)
    visitor = app.test_client()
    short = visitor.submit(f"/reset/{token}", {"password": "short", "confirm": "short"})
    assert short.status_code == 422 and "at least 8 characters" in short.get_data(as_text=True)
    differ = visitor.submit(f"/reset/{token}", {"password": NEW, "confirm": NEW + "!"})
    assert differ.status_code == 422 and "passwords differ" in differ.get_data(as_text=True)
    assert visitor.get("/reset/nope").status_code == 404
    assert visitor.get("/reset/" + "x" * 300).status_code == 404
    assert _set_password(visitor, "nope").status_code == 404
    no_csrf = visitor.post(f"/reset/{token}", data={"password": NEW, "confirm": NEW})
    assert no_csrf.status_code in (400, 422)
    assert db.session.scalar(select(PasswordReset)).used_at is None


def test_the_command_line_prints_a_working_link(app, make_user):
    make_user("boss@example.com", is_admin=True)
    app.config["BASE_URL"] = "https://read.example.org/"
    result = app.test_cli_runner().invoke(args=["users", "reset-password", "Boss@Example.com"])
    assert result.exit_code == 0, result.output
    match = re.search(r"https://read\.example\.org/reset/(\S+)", result.output)
    assert match, result.output
    client = app.test_client()
    assert _set_password(client, match.group(1)).status_code == 303
    assert sign_in(client, "boss@example.com", NEW).status_code == 303
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.reset_link"))
    assert event.actor_id is None and "command line" in event.detail
    unknown = app.test_cli_runner().invoke(args=["users", "reset-password", "nobody@example.com"])
    assert unknown.exit_code != 0 and "no account" in unknown.output


# --- "Forgot your password?" ----------------------------------------------------------------


def test_without_mail_the_page_says_to_ask_an_admin(client, make_user):
    make_user("ada@example.com")
    login = client.get("/login").get_data(as_text=True)
    assert 'href="/forgot"' in login
    page = client.get("/forgot").get_data(as_text=True)
    assert "Ask one of its admins for a reset link" in page and 'name="email"' not in page
    response = client.submit("/forgot", {"email": "ada@example.com"})
    assert response.status_code == 200 and "Ask one of its admins" in response.get_data(
        as_text=True
    )
    assert pending_count() == 0
    assert db.session.scalar(select(func.count()).select_from(PasswordReset)) == 0


def test_forgot_password_mails_a_link_that_works(app, client, make_user, smtp):
    make_user("ada@example.com")
    response = client.submit("/forgot", {"email": " Ada@Example.com "})
    assert response.status_code == 303 and response.location == "/login"
    notice = client.get("/login").get_data(as_text=True)
    assert "If ada@example.com belongs to an account here" in notice
    assert smtp.messages == []  # the request only queued the mail
    assert run_pending() == 1
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Dogear <dogear@read.example.org>"
    assert message["Subject"] == "Reset your Dogear password"
    assert smtp.logins == [("dogear@example.com", "s3cret")]
    body = message.get_content()
    match = re.search(r"https://read\.example\.org/reset/(\S+)", body)
    assert match, body
    assert _set_password(app.test_client(), match.group(1)).status_code == 303
    assert sign_in(app.test_client(), "ada@example.com", NEW).status_code == 303


def test_forgot_password_answers_the_same_for_an_unknown_address(app, make_user, smtp):
    make_user("ada@example.com")
    known, unknown = app.test_client(), app.test_client()
    a = known.submit("/forgot", {"email": "ada@example.com"})
    b = unknown.submit("/forgot", {"email": "nobody@example.com"})
    assert a.status_code == b.status_code == 303 and a.location == b.location
    text_a = known.get("/login").get_data(as_text=True).replace("ada@example.com", "X")
    text_b = unknown.get("/login").get_data(as_text=True).replace("nobody@example.com", "X")
    flash = re.compile(r'<p class="flash[^"]*">[^<]*</p>')
    assert flash.findall(text_a) == flash.findall(text_b) != []
    assert run_pending() == 2  # both queued a job: the answer can't differ in time either
    assert [m["To"] for m in smtp.messages] == ["ada@example.com"]


def test_forgot_password_mails_a_disabled_account_nothing_and_not_twice_at_once(
    app, client, make_user, smtp
):
    make_user("gone@example.com", is_disabled=True)
    make_user("ada@example.com")
    client.submit("/forgot", {"email": "gone@example.com"})
    client.submit("/forgot", {"email": "ada@example.com"})
    client.submit("/forgot", {"email": "ada@example.com"})
    run_pending()
    assert [m["To"] for m in smtp.messages] == ["ada@example.com"]


def test_forgot_password_validates_the_address(client, smtp):
    response = client.submit("/forgot", {"email": "not an address"})
    assert response.status_code == 422
    assert "Enter an email address" in response.get_data(as_text=True)
    assert pending_count() == 0


def test_forgot_password_is_throttled_like_sign_in(tmp_path, database):
    from tests.conftest import make_app

    app = make_app(
        tmp_path,
        **database,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="2 per minute",
        SMTP_URL="smtp://127.0.0.1:9",
    )
    with app.app_context():
        client = app.test_client()
        codes = [
            client.submit("/forgot", {"email": "a@example.com"}).status_code for _ in range(3)
        ]
        assert codes == [303, 303, 429]
        db.session.remove()
        db.engine.dispose()


# --- SMTP_URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org", ("smtp", "mail.example.org", 25, "", "")),
        (
            "smtp+starttls://u:p@mail.example.org",
            ("smtp+starttls", "mail.example.org", 587, "u", "p"),
        ),
        (
            "smtps://me%40example.org:p%3Ass@mail.example.org:2465",
            ("smtps", "mail.example.org", 2465, "me@example.org", "p:ss"),
        ),
    ],
)
def test_smtp_url_is_parsed(url, expected):
    settings = mail.parse_smtp_url(url)
    assert (
        settings.scheme,
        settings.host,
        settings.port,
        settings.username,
        settings.password,
    ) == expected


@pytest.mark.parametrize("url", ["http://mail.example.org", "smtp://", "smtp://host:99999"])
def test_bad_smtp_urls_are_refused_clearly(url):
    with pytest.raises(ValueError, match="SMTP_URL"):
        mail.parse_smtp_url(url)


def test_an_smtp_server_that_is_down_is_a_mail_error(app):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"
    with pytest.raises(mail.MailError):
        mail.send("ada@example.com", "Hello", "Body")


def test_reset_link_for_a_deleted_account_is_404(app, client, admin, make_user):
    ada = make_user("ada@example.com")
    token = _admin_link(client, ada)
    client.submit(f"/admin/users/{ada.id}/delete", {"confirm_email": "ada@example.com"})
    assert app.test_client().get(f"/reset/{token}").status_code == 404
    assert services.find_reset(token) is None


def test_a_mail_that_fails_leaves_no_link_behind_and_is_retried(app, client, make_user):
    make_user("ada@example.com")
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"  # nothing listens there
    client.submit("/forgot", {"email": "ada@example.com"})
    assert run_pending() == 1
    assert db.session.scalar(select(func.count()).select_from(PasswordReset)) == 0
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "user.reset_link")
        )
        == 1
    )  # the attempt itself is on record
    from app.jobs import huey

    assert huey.scheduled_count() == 1  # a retry, a minute later

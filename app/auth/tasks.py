"""Background work for accounts: mailing password-reset links.

The sign-in page's "Forgot your password?" only queues `mail_reset_link`, so its
answer takes the same time whether or not the address has an account; the worker
looks the address up, makes the link and hands the mail to the SMTP server.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app import mail
from app.extensions import db
from app.jobs import job
from app.models import PasswordReset, utcnow

log = logging.getLogger(__name__)

# One mailed link per account at a time: a stranger who knows an address can't
# fill its inbox (the form is also throttled per client address, like sign-in).
MAIL_EVERY = timedelta(minutes=2)


@job(retries=2, retry_delay=60)
def mail_reset_link(email: str) -> bool:
    """Mail a reset link to the account with this address, if there is one that is
    active and was not mailed a link moments ago. Returns whether a mail went out."""
    from app.auth.services import (
        create_reset_link,
        discard_reset_link,
        external_link,
        find_user_by_email,
    )

    if not mail.is_configured():
        return False
    user = find_user_by_email(email)
    if user is None or user.is_disabled:
        return False
    recent = db.session.scalar(
        select(PasswordReset.id).where(
            PasswordReset.user_id == user.id,
            PasswordReset.created_by_id.is_(None),
            PasswordReset.created_at > utcnow() - MAIL_EVERY,
        )
    )
    if recent is not None:
        log.info("A reset link was mailed to account %s moments ago; not again.", user.id)
        return False
    minutes = int(current_app.config["RESET_LINK_MINUTES"])
    link = create_reset_link(
        user.id,
        actor=None,
        detail=f"mailed on request (Forgot your password?), valid for {minutes} minutes",
    )
    url = external_link("auth.reset", token=link.token)
    try:
        mail.send(
            user.email,
            "Reset your Dogear password",
            _BODY.format(url=url, minutes=minutes, base=current_app.config["BASE_URL"]),
        )
    except mail.MailError:
        # Never delivered: forget the link, so the retry isn't taken for a recent mail.
        discard_reset_link(link.token)
        raise
    return True


_BODY = """\
Hello,

someone (hopefully you) asked to reset the password of your Dogear account at {base}.

Open this link to choose a new password:

{url}

It works once, for {minutes} minutes, and stops working as soon as you sign in with
your current password. Resetting signs you out on every device.

If you didn't ask for this, ignore this mail: your password stays as it is.
"""

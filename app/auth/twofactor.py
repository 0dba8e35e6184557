"""Two-factor sign-in: a time-based code (TOTP, RFC 6238) from an authenticator app,
or one of ten single-use recovery codes, asked for after the password.

- A code works once: the account remembers the time step of the last code accepted,
  and only a later step is taken (checked and moved on in one UPDATE, so two requests
  with the same code can't both succeed). Codes of the step before and after now are
  accepted too, for clocks that are a little off.
- Recovery codes are stored only as their SHA-256 (they are random, 50 bits each), and
  are used up with a compare-and-swap UPDATE of the list.
- The secret is stored as it is: the server needs it to check codes. (Only someone who
  also has the password can use it.)
- Admins can require two-factor sign-in for admin accounts (a site setting); an admin
  without it is sent to set it up before anything else (`twofactor_views`).

Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import secrets
import time
from typing import TYPE_CHECKING

import pyotp
from flask import current_app
from markupsafe import Markup
from sqlalchemy import or_, select, update
from werkzeug.security import check_password_hash

from app.audit import record
from app.db import write_transaction
from app.extensions import db
from app.models import Setting, User, utcnow

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes
_RECOVERY_HALF = 5  # "abcde-fghij": 10 characters, about 49 bits
ADMIN_POLICY_KEY = "admin_two_factor"
STEPS_OF_DRIFT = 1  # codes of the previous and next 30 s are accepted too


def _now() -> float:
    """Unix time, for the TOTP clock (tests move it)."""
    return time.time()


class TwoFactorError(ValueError):
    """A two-factor request that can't be honoured; the message is for the reader."""


class SecondFactor(enum.StrEnum):
    TOTP = "totp"
    RECOVERY = "recovery"


# --- secrets, QR codes --------------------------------------------------------------


def new_secret() -> str:
    """A random TOTP secret: 32 base32 characters (160 bits, as RFC 4226 advises)."""
    return pyotp.random_base32()


def issuer() -> str:
    return str(current_app.config.get("TWO_FACTOR_ISSUER", "Dogear"))


def provisioning_uri(email: str, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer())


def qr_svg(uri: str) -> Markup:
    """The URI as a QR code in inline SVG: made here, no external service, no script
    and no style attribute (the CSP allows neither inline)."""
    import segno  # here: only the set-up page draws one

    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out,
        kind="svg",
        scale=4,
        border=4,
        xmldecl=False,
        svgns=True,
        title="QR code for your authenticator app",
        svgclass="qr-code",
        lineclass=None,
        dark="#000",
        light="#fff",  # dark modules on white in the dark theme too, or apps can't read it
        nl=False,
    )
    return Markup(out.getvalue().decode())  # noqa: S704 - segno's own SVG, no user markup


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type: "ABCD EFGH …"."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- checking codes ------------------------------------------------------------------


def _digits(code: str | None) -> str:
    return "".join((code or "").split())


def _matching_step(secret: str, code: str | None, now: float) -> int | None:
    """The time step whose code `code` is (within the drift allowed), else None."""
    code = _digits(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in range(current - STEPS_OF_DRIFT, current + STEPS_OF_DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):  # every step compared
            found = step
    return found


def use_totp(user: User, code: str | None) -> bool:
    """Whether `code` is the account's current code and had not been used yet; using
    it means no code of the same or an earlier time step works again."""
    if not user.totp_secret:
        return False
    step = _matching_step(user.totp_secret, code, _now())
    if step is None:
        return False
    with write_transaction():
        taken = db.session.execute(
            update(User)
            .where(
                User.id == user.id,
                User.two_factor_since.is_not(None),
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
    return taken.rowcount == 1


def _normalize_recovery(code: str | None) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(f"dogear-recovery:{_normalize_recovery(code)}".encode()).hexdigest()


def _new_recovery_codes() -> list[str]:
    def half() -> str:
        return "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_HALF))

    return [f"{half()}-{half()}" for _ in range(RECOVERY_CODE_COUNT)]


def recovery_codes_left(user: User) -> int:
    return len(user.recovery_codes.split())


def use_recovery_code(user: User, code: str | None) -> int | None:
    """Use up one of the account's recovery codes: how many are left, or None when
    `code` is not one of them (any more)."""
    if len(_normalize_recovery(code)) != 2 * _RECOVERY_HALF:
        return None
    digest = _hash_recovery(code or "")
    for _ in range(3):  # another code used at the same instant changed the list: again
        with write_transaction():
            stored = db.session.scalar(select(User.recovery_codes).where(User.id == user.id))
            hashes = (stored or "").split()
            match = [h for h in hashes if hmac.compare_digest(h, digest)]
            if not match:
                return None
            hashes.remove(match[0])
            swapped = db.session.execute(
                update(User)
                .where(User.id == user.id, User.recovery_codes == stored)
                .values(recovery_codes="\n".join(hashes))
                .execution_options(synchronize_session=False)
            )
            if swapped.rowcount == 1:
                record(
                    "auth.recovery_code_use",
                    actor=user,
                    target=user.email,
                    detail=f"{len(hashes)} recovery code{'s' if len(hashes) != 1 else ''} left",
                )
                return len(hashes)
    return None


def check_second_factor(user: User, code: str | None) -> SecondFactor | None:
    """The sign-in's second step: a code from the app, or a recovery code."""
    if not user.two_factor_enabled:
        return None
    if use_totp(user, code):
        return SecondFactor.TOTP
    if use_recovery_code(user, code) is not None:
        return SecondFactor.RECOVERY
    return None


def confirm_identity(user: User, password: str | None, code: str | None) -> bool:
    """For turning two-factor off or making new recovery codes: the password, or a
    code (from the app, or a recovery code) proves it is the reader."""
    if password and check_password_hash(user.password_hash, password):
        return True
    return bool(code) and check_second_factor(user, code) is not None


# --- turning it on and off -------------------------------------------------------------


def enable(user: User, secret: str, code: str | None) -> list[str]:
    """Turn two-factor sign-in on with `secret`, once `code` shows the reader's app has
    it. Returns the new recovery codes: the only time they are shown."""
    step = _matching_step(secret, code, _now())
    if step is None:
        raise TwoFactorError(
            "That code isn't right. Check that your app has the new entry and that "
            "the clock of your device is right, then enter the code it shows now."
        )
    codes = _new_recovery_codes()
    with write_transaction():
        done = db.session.execute(
            update(User)
            .where(User.id == user.id, User.two_factor_since.is_(None))
            .values(
                totp_secret=secret,
                two_factor_since=utcnow(),
                totp_last_step=step,  # the code just typed can't sign anyone in
                recovery_codes="\n".join(_hash_recovery(c) for c in codes),
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:
            raise TwoFactorError("Two-factor sign-in is already on for this account.")
        record("auth.two_factor_enable", actor=user, target=user.email)
    db.session.refresh(user)
    return codes


def disable(user: User, password: str | None, code: str | None) -> None:
    """Turn two-factor sign-in off (the password or a code required)."""
    if user.is_admin and admin_two_factor_required():
        raise TwoFactorError(
            "This Dogear requires two-factor sign-in for admins, so it stays on. "
            "You can make new recovery codes instead."
        )
    if not confirm_identity(user, password, code):
        raise TwoFactorError("Enter your password, or a current code from your app.")
    with write_transaction():
        db.session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                totp_secret=None, two_factor_since=None, totp_last_step=None, recovery_codes=""
            )
            .execution_options(synchronize_session=False)
        )
        record("auth.two_factor_disable", actor=user, target=user.email)
    db.session.refresh(user)


def regenerate_recovery_codes(user: User, password: str | None, code: str | None) -> list[str]:
    """New recovery codes (the password or a code required); the old ones stop working."""
    if not user.two_factor_enabled:
        raise TwoFactorError("Two-factor sign-in is off for this account.")
    if not confirm_identity(user, password, code):
        raise TwoFactorError("Enter your password, or a current code from your app.")
    codes = _new_recovery_codes()
    with write_transaction():
        db.session.execute(
            update(User)
            .where(User.id == user.id)
            .values(recovery_codes="\n".join(_hash_recovery(c) for c in codes))
            .execution_options(synchronize_session=False)
        )
        record("auth.recovery_codes_regenerate", actor=user, target=user.email)
    db.session.refresh(user)
    return codes


# --- the site setting ------------------------------------------------------------------


def admin_two_factor_required() -> bool:
    value = db.session.scalar(select(Setting.value).where(Setting.key == ADMIN_POLICY_KEY))
    return value == "required"


def set_admin_two_factor(actor: Reader, required: bool) -> None:
    """Require two-factor sign-in for admin accounts, or leave it to each admin."""
    if admin_two_factor_required() == required:
        return
    with write_transaction():
        db.session.merge(
            Setting(key=ADMIN_POLICY_KEY, value="required" if required else "optional")
        )
        record(
            "settings.admin_two_factor",
            actor=actor,
            target="two-factor sign-in for admins",
            detail="optional → required" if required else "required → optional",
        )


def must_set_up(user: Reader) -> bool:
    """An admin who has to turn two-factor sign-in on before doing anything else."""
    return (
        user.is_authenticated
        and user.is_admin
        and not user.two_factor_enabled
        and admin_two_factor_required()
    )

"""Accounts: creating users, checking passwords, login sessions and first-run set-up."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import write_transaction
from app.extensions import db
from app.models import LoginSession, Setting, User, utcnow

SETUP_TOKEN_KEY = "setup_token_hash"  # noqa: S105 - a settings key, not a secret
REGISTRATION_KEY = "registration"
REGISTRATION_MODES = ("invite", "open")
# Compared against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A request about accounts that can't be honoured; the message is for the user."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """Create an account. Raises AccountError if the email is taken."""
    with write_transaction():
        return _add_user(email, password, is_admin=is_admin)


def _add_user(email: str, password: str, *, is_admin: bool) -> User:
    email = normalize_email(email)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError("An account with that email already exists.")
    user = User(email=email, password_hash=generate_password_hash(password), is_admin=is_admin)
    db.session.add(user)
    db.session.flush()
    return user


class AccountDisabled(AccountError):
    """Right credentials, but an admin disabled the account."""


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None: unknown email and wrong
    password get the same answer. Only someone who knows the password learns that
    the account is disabled (AccountDisabled)."""
    user = find_user_by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    if user.is_disabled:
        raise AccountDisabled(
            "This account is disabled. Ask an admin of this Dogear to enable it."
        )
    return user


def start_login_session(user: User, user_agent: str = "") -> str:
    """Record a new signed-in browser for `user`; returns the token for its cookies."""
    token = secrets.token_urlsafe(32)
    with write_transaction():
        db.session.add(
            LoginSession(
                user_id=user.id, token_hash=_hash_token(token), user_agent=user_agent[:300]
            )
        )
        db.session.get(User, user.id).last_login_at = utcnow()
    user.session_token = token
    return token


def load_user_by_session_token(token: str) -> User | None:
    """The active user signed in with this token, or None if it was ended or revoked."""
    user = db.session.scalar(
        select(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(LoginSession.token_hash == _hash_token(token), User.is_disabled.is_(False))
    )
    if user is not None:
        user.session_token = token
    return user


def end_login_session(token: str | None) -> None:
    """Sign one browser out: its session and remember cookies stop working."""
    if not token:
        return
    with write_transaction():
        db.session.execute(
            delete(LoginSession).where(LoginSession.token_hash == _hash_token(token))
        )


def end_all_login_sessions(user_id: int, *, except_token: str | None = None) -> None:
    stmt = delete(LoginSession).where(LoginSession.user_id == user_id)
    if except_token:
        stmt = stmt.where(LoginSession.token_hash != _hash_token(except_token))
    with write_transaction():
        db.session.execute(stmt)


def change_password(user: User, current: str, new: str) -> None:
    """Change the password and sign out every other browser of this user."""
    if not check_password_hash(user.password_hash, current):
        raise AccountError("Your current password is not correct.")
    with write_transaction():
        db.session.get(User, user.id).password_hash = generate_password_hash(new)
    end_all_login_sessions(user.id, except_token=user.session_token)


# --- site settings -------------------------------------------------------------


def get_setting(key: str, default: str = "") -> str:
    value = db.session.scalar(select(Setting.value).where(Setting.key == key))
    return default if value is None else value


def set_setting(key: str, value: str) -> None:
    with write_transaction():
        db.session.merge(Setting(key=key, value=value))


def registration_mode() -> str:
    mode = get_setting(REGISTRATION_KEY, "invite")
    return mode if mode in REGISTRATION_MODES else "invite"


# --- first run -----------------------------------------------------------------


def admin_exists() -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(User).where(User.is_admin)))


def issue_setup_token() -> str | None:
    """A fresh one-time set-up token when there is no admin yet (older tokens die)."""
    if admin_exists():
        return None
    token = secrets.token_urlsafe(24)
    set_setting(SETUP_TOKEN_KEY, _hash_token(token))
    return token


def setup_token_is_valid(token: str) -> bool:
    stored = get_setting(SETUP_TOKEN_KEY)
    return bool(stored) and hmac.compare_digest(stored, _hash_token(token)) and not admin_exists()


def complete_setup(token: str, email: str, password: str) -> User:
    """Create the first admin through the set-up link; the link dies with it."""
    with write_transaction():  # check and use the token under one write lock
        if not setup_token_is_valid(token):
            raise AccountError("This set-up link has expired or was already used.")
        user = _add_user(email, password, is_admin=True)
        db.session.execute(delete(Setting).where(Setting.key == SETUP_TOKEN_KEY))
    return user

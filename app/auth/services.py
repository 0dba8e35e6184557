"""Accounts: creating users, checking passwords, login sessions, first-run set-up, and
the one-time links (invites, password resets).

Every token Dogear hands out (login sessions, invite and reset links) is stored only as
its SHA-256, and the set-up link's is not stored at all (it is an HMAC of a stored
nonce under SECRET_KEY): a copy of the database lets nobody sign in or use a link.
Every change is written to the audit log in the same transaction as the change itself.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from flask import current_app, url_for
from sqlalchemy import Select, and_, bindparam, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit import record, record_now
from app.auth import (
    sessions,
    tasks,  # declares the mail job, so every process knows it
)
from app.auth.signed_in import Reader, SignedIn
from app.db import insert_ignoring_conflicts, plain_rows, write_transaction
from app.extensions import db
from app.models import Invite, LoginSession, PasswordReset, Setting, User, utcnow

SETUP_NONCE_KEY = "setup_nonce"  # the set-up token is an HMAC of it (issue_setup_token)
_OLD_SETUP_TOKEN_KEY = "setup_token_hash"  # noqa: S105 - a settings key, not a secret
REGISTRATION_KEY = "registration"
# open: anyone registers; invite: admins create accounts or send invite links;
# closed: no new readers (invite links already sent still work).
REGISTRATION_MODES = ("open", "invite", "closed")
DEFAULT_REGISTRATION = "invite"
MAX_TOKEN_LENGTH = 100  # longer path segments are not ours: no lookup at all
# Compared against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A request about accounts that can't be honoured; the message is for the user."""


class AccountDisabled(AccountError):
    """Right credentials, but an admin disabled the account."""


class LinkProblem(enum.StrEnum):
    """Why a one-time link (invite or password reset) no longer works."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    SIGNED_IN = "signed_in"  # a reset link dies when its account signs in after it


class LinkGone(AccountError):
    """A one-time link that can't be used (any more)."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, _hash_token(token)


def external_link(endpoint: str, **values: object) -> str:
    """An absolute link built on BASE_URL: what mail and the command line hand out.

    Never from a request's Host header, which whoever sends the request chooses
    (a reset mail must not point at an attacker's host)."""
    base = str(current_app.config["BASE_URL"]).rstrip("/")
    with current_app.test_request_context():
        path = url_for(endpoint, **values)
    return f"{base}{path}"


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """Create an account. Raises AccountError if the email is taken."""
    password_hash = generate_password_hash(password)  # slow on purpose: before the lock
    with write_transaction():
        return add_user(email, password_hash, is_admin=is_admin)


def add_user(email: str, password_hash: str, *, is_admin: bool) -> User:
    """Insert an account inside the caller's write transaction."""
    email = normalize_email(email)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError("An account with that email already exists.")
    user = User(email=email, password_hash=password_hash, is_admin=is_admin)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as error:  # the same address, created at the same instant
        raise AccountError("An account with that email already exists.") from error
    return user


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


def start_login_session(
    user: User, user_agent: str = "", *, remember: bool = False, ip: str = ""
) -> str:
    """Record a new signed-in browser for `user`; returns the token for its cookies.
    It lasts as long as `sessions.lifetime(remember)` allows.

    The new `last_login_at` also retires every reset link made for the account
    before it (see `reset_problem`): a reader who remembered the password has no use
    for one, and a link that leaked dies with it."""
    token, token_hash = _new_token()
    now = utcnow()
    with write_transaction():
        row = LoginSession(
            user_id=user.id,
            token_hash=token_hash,
            user_agent=user_agent[:300],
            created_at=now,
            last_seen_at=now,
            expires_at=sessions.ends_at(remember, now),
            remember=remember,
            ip=ip[:45],
        )
        db.session.add(row)
        db.session.flush()
        user.login_session_id = row.id
        db.session.execute(update(User).where(User.id == user.id).values(last_login_at=now))
        record("auth.sign_in", actor=user, target=user.email, detail=user_agent[:200])
    user.session_token = token
    return token


def record_failed_sign_in(email: str, reason: str) -> None:
    """A failed sign-in, in a transaction of its own (nothing else was written)."""
    record_now("auth.sign_in_failed", actor_email=normalize_email(email)[:254], detail=reason)


@cache
def _signed_in() -> Select[Any]:
    """The statement of every request: a session by its token hash, its user and the
    header's list count (a subquery on the kept list summary), all as plain columns.
    Built once per worker; only the token hash changes."""
    from app.lists.queries import open_entries_count

    return (
        select(
            User.id.label("user_id"),
            User.email,
            User.is_admin,
            User.two_factor_since,
            and_(
                User.two_factor_since.is_not(None), func.coalesce(User.totp_secret, "") != ""
            ).label("two_factor_enabled"),
            LoginSession.id,
            LoginSession.remember,
            LoginSession.created_at,
            LoginSession.last_seen_at,
            LoginSession.expires_at,
            LoginSession.user_agent,
            open_entries_count(User.id).label("open_entries"),
        )
        .join(User, LoginSession.user_id == User.id)
        .where(LoginSession.token_hash == bindparam("token_hash"), User.is_disabled.is_(False))
    )


def load_user_by_session_token(token: str) -> SignedIn | None:
    """The active user signed in with this token, or None if it was ended, revoked or
    has expired (an expired session is deleted: see `sessions.keep_alive`). Nothing is
    kept between requests: a session ended or a user disabled is refused on the next."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = plain_rows(_signed_in(), {"token_hash": _hash_token(token)}).first()
    if row is None:
        return None
    user = SignedIn(
        id=row.user_id,
        email=row.email,
        is_admin=bool(row.is_admin),
        two_factor_since=row.two_factor_since,
        two_factor_enabled=bool(row.two_factor_enabled),
        session_token=token,
        login_session_id=row.id,
        open_entries=row.open_entries,
    )
    if not sessions.keep_alive(row, user):
        return None
    return user


def end_login_session(token: str | None, *, actor: Reader | None = None) -> None:
    """Sign one browser out: its session and remember cookies stop working."""
    if not token:
        return
    with write_transaction():
        db.session.execute(
            delete(LoginSession).where(LoginSession.token_hash == _hash_token(token))
        )
        if actor is not None:
            record("auth.sign_out", actor=actor, target=actor.email)


def end_all_login_sessions(user_id: int, *, except_token: str | None = None) -> None:
    with write_transaction():
        delete_login_sessions(user_id, except_token=except_token)


def delete_login_sessions(user_id: int, *, except_token: str | None = None) -> None:
    """Sign the user out everywhere (but `except_token`), in the caller's transaction."""
    stmt = delete(LoginSession).where(LoginSession.user_id == user_id)
    if except_token:
        stmt = stmt.where(LoginSession.token_hash != _hash_token(except_token))
    db.session.execute(stmt)


def change_password(user: User, current: str, new: str) -> None:
    """Change the password and sign out every other browser of this user."""
    if not check_password_hash(user.password_hash, current):
        raise AccountError("Your current password is not correct.")
    new_hash = generate_password_hash(new)
    with write_transaction():
        db.session.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        delete_login_sessions(user.id, except_token=user.session_token)
        record("auth.password_change", actor=user, target=user.email)


# --- site settings -------------------------------------------------------------


def get_setting(key: str, default: str = "") -> str:
    value = db.session.scalar(select(Setting.value).where(Setting.key == key))
    return default if value is None else value


def set_setting(key: str, value: str) -> None:
    with write_transaction():
        db.session.merge(Setting(key=key, value=value))


def registration_mode() -> str:
    mode = get_setting(REGISTRATION_KEY, DEFAULT_REGISTRATION)
    return mode if mode in REGISTRATION_MODES else DEFAULT_REGISTRATION


# --- first run -----------------------------------------------------------------


def admin_exists() -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(User).where(User.is_admin)))


def issue_setup_token(*, fresh: bool = True) -> str | None:
    """The one-time set-up token while there is no admin yet, else None.

    The database keeps only a random nonce; the token is an HMAC of it under
    SECRET_KEY, so every host (same database, same key) derives the same token and
    prints the same link, and a copy of the database alone opens nothing. `fresh`
    makes a new nonce (links handed out before die: `dogear setup-link`); without it
    the current one is used, made by whichever host asks first (gunicorn's start).
    """
    if admin_exists():
        return None
    nonce = secrets.token_urlsafe(24)
    with write_transaction():
        db.session.execute(
            insert_ignoring_conflicts(
                Setting.__table__, {"key": SETUP_NONCE_KEY, "value": nonce}, "key"
            )
        )
        if fresh:
            db.session.execute(
                update(Setting).where(Setting.key == SETUP_NONCE_KEY).values(value=nonce)
            )
        db.session.execute(delete(Setting).where(Setting.key == _OLD_SETUP_TOKEN_KEY))
        nonce = get_setting(SETUP_NONCE_KEY)
    return _setup_token(nonce)


def _setup_token(nonce: str) -> str:
    """The set-up token for `nonce`: 32 URL-safe characters."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"dogear-setup:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def _setup_nonce_for(token: str) -> str | None:
    """The stored nonce when `token` is the set-up token made from it (and no admin
    exists yet), else None."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    nonce = get_setting(SETUP_NONCE_KEY)
    if not nonce or not hmac.compare_digest(_setup_token(nonce).encode(), token.encode()):
        return None
    return None if admin_exists() else nonce


def setup_token_is_valid(token: str) -> bool:
    return _setup_nonce_for(token) is not None


def complete_setup(token: str, email: str, password: str) -> User:
    """Create the first admin through the set-up link; the link dies with it."""
    password_hash = generate_password_hash(password)
    gone = AccountError("This set-up link has expired or was already used.")
    with write_transaction():  # check and use the token in one transaction
        nonce = _setup_nonce_for(token)
        if nonce is None:
            raise gone
        # Use the nonce up before anything else: of two requests (on two hosts, say)
        # that got this far with it, only the one whose DELETE took the row goes on.
        # PostgreSQL has no database-wide write lock to order them otherwise.
        used = db.session.execute(
            delete(Setting).where(Setting.key == SETUP_NONCE_KEY, Setting.value == nonce)
        )
        if used.rowcount != 1:
            raise gone
        user = add_user(email, password_hash, is_admin=True)
        record("user.create", actor=user, target=user.email, detail="first admin, set-up link")
    return user


def register(email: str, password: str) -> User:
    """Self-registration (only while registration is open; the view checks)."""
    password_hash = generate_password_hash(password)
    with write_transaction():
        user = add_user(email, password_hash, is_admin=False)
        record("user.create", actor=user, target=user.email, detail="registered")
    return user


# --- invites -------------------------------------------------------------------


def create_invite(actor: Reader, *, is_admin: bool, note: str, days: int) -> tuple[Invite, str]:
    """A single-use sign-up link; returns the invite and its token (shown once)."""
    token, token_hash = _new_token()
    with write_transaction():
        invite = Invite(
            token_hash=token_hash,
            created_by_id=actor.id,
            expires_at=utcnow() + timedelta(days=days),
            is_admin=is_admin,
            note=note.strip()[:200],
        )
        db.session.add(invite)
        db.session.flush()
        details = [f"expires in {days} day{'s' if days != 1 else ''}"]
        if is_admin:
            details.insert(0, "admin")
        if invite.note:
            details.append(f"note: {invite.note}")
        record(
            "invite.create", actor=actor, target=f"invite #{invite.id}", detail=", ".join(details)
        )
    return invite, token


def find_invite(token: str) -> Invite | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(select(Invite).where(Invite.token_hash == _hash_token(token)))


def invite_problem(invite: Invite | None, now: datetime | None = None) -> LinkProblem | None:
    """Why this invite can't be used, or None when it can."""
    now = now or utcnow()
    if invite is None:
        return LinkProblem.UNKNOWN
    if invite.revoked_at is not None:
        return LinkProblem.REVOKED
    if invite.used_at is not None:
        return LinkProblem.USED
    if invite.expires_at <= now:
        return LinkProblem.EXPIRED
    return None


def accept_invite(token: str, email: str, password: str) -> User:
    """Create the account an invite was made for; the invite is used up at once.

    Works whatever the registration mode: the admin who made the link chose to let
    this one person in. Two sign-ups racing with the same link make one account: the
    conditional UPDATE claims the invite, and only the one that claimed it goes on.
    """
    password_hash = generate_password_hash(password)
    with write_transaction():
        invite = find_invite(token)
        now = utcnow()
        problem = invite_problem(invite, now)
        if problem is not None or invite is None:
            raise LinkGone(problem or LinkProblem.UNKNOWN)
        claimed = db.session.execute(
            update(Invite)
            .where(
                Invite.id == invite.id,
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            db.session.expire(invite)
            raise LinkGone(invite_problem(invite, now) or LinkProblem.USED)
        user = add_user(email, password_hash, is_admin=invite.is_admin)
        db.session.execute(
            update(Invite)
            .where(Invite.id == invite.id)
            .values(used_by_id=user.id)
            .execution_options(synchronize_session=False)
        )
        record(
            "invite.use",
            actor=user,
            target=f"invite #{invite.id}",
            detail=f"{user.email} signed up" + (" as an admin" if invite.is_admin else ""),
        )
    return user


def revoke_invite(actor: Reader, invite_id: int) -> Invite:
    """Kill an open invite. LookupError if there is no such invite."""
    with write_transaction():
        invite = db.session.get(Invite, invite_id)
        if invite is None:
            raise LookupError(invite_id)
        now = utcnow()
        done = db.session.execute(
            update(Invite)
            .where(Invite.id == invite_id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(invite)
        if done.rowcount != 1:
            raise AccountError(
                "That invite was already used." if invite.used_at else "That invite is revoked."
            )
        record("invite.revoke", actor=actor, target=f"invite #{invite.id}", detail=invite.note)
    return invite


# --- password resets -----------------------------------------------------------


@dataclass(frozen=True)
class ResetLink:
    token: str
    expires_at: datetime


def create_reset_link(
    user_id: int, *, actor: Reader | None, detail: str = "", actor_email: str = ""
) -> ResetLink:
    """A one-time link that sets a new password for the user (LookupError if none).

    It expires after RESET_LINK_MINUTES, on use, and when the user signs in again."""
    token, token_hash = _new_token()
    minutes = int(current_app.config["RESET_LINK_MINUTES"])
    with write_transaction():
        user = db.session.get(User, user_id)
        if user is None:
            raise LookupError(user_id)
        reset = PasswordReset(
            user_id=user.id,
            token_hash=token_hash,
            created_by_id=actor.id if actor is not None else None,
            expires_at=utcnow() + timedelta(minutes=minutes),
        )
        db.session.add(reset)
        record(
            "user.reset_link",
            actor=actor,
            actor_email=actor_email,
            target=user.email,
            detail=detail or f"valid for {minutes} minutes",
        )
    return ResetLink(token=token, expires_at=reset.expires_at)


def find_reset(token: str) -> tuple[PasswordReset, User] | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = db.session.execute(
        select(PasswordReset, User)
        .join(User, User.id == PasswordReset.user_id)
        .where(PasswordReset.token_hash == _hash_token(token))
    ).first()
    return (row[0], row[1]) if row else None


def reset_problem(
    found: tuple[PasswordReset, User] | None, now: datetime | None = None
) -> LinkProblem | None:
    now = now or utcnow()
    if found is None:
        return LinkProblem.UNKNOWN
    reset, user = found
    if reset.used_at is not None:
        return LinkProblem.USED
    if reset.expires_at <= now:
        return LinkProblem.EXPIRED
    if user.last_login_at is not None and user.last_login_at > reset.created_at:
        return LinkProblem.SIGNED_IN
    return None


def use_reset_link(token: str, password: str) -> User:
    """Set a new password through a reset link, then end every session of the user
    (whoever had the old password is signed out) and every other reset link."""
    password_hash = generate_password_hash(password)
    with write_transaction():
        found = find_reset(token)
        now = utcnow()
        problem = reset_problem(found, now)
        if problem is not None or found is None:
            raise LinkGone(problem or LinkProblem.UNKNOWN)
        reset, user = found
        signed_in_since = exists().where(
            User.id == PasswordReset.user_id, User.last_login_at > PasswordReset.created_at
        )
        claimed = db.session.execute(
            update(PasswordReset)
            .where(
                PasswordReset.id == reset.id,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > now,
                ~signed_in_since,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            raise LinkGone(LinkProblem.USED)
        db.session.execute(
            update(User).where(User.id == user.id).values(password_hash=password_hash)
        )
        db.session.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        delete_login_sessions(user.id)
        record("auth.password_reset", actor=user, target=user.email)
    return user


def request_reset_mail(email: str) -> None:
    """Queue the mail of "Forgot your password?". The request's answer is the same
    whether or not the address has an account; the job decides (app/auth/tasks.py)."""
    tasks.mail_reset_link(normalize_email(email))


def discard_reset_link(token: str) -> None:
    """Forget a link that was never delivered (its mail failed)."""
    with write_transaction():
        db.session.execute(
            delete(PasswordReset).where(PasswordReset.token_hash == _hash_token(token))
        )


def end_other_sessions(user: Reader) -> None:
    """ "Sign out everywhere": every session of the account but this browser's."""
    with write_transaction():
        delete_login_sessions(user.id, except_token=user.session_token)
        record("auth.sign_out_everywhere", actor=user, target=user.email)

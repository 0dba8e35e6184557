"""Starting and leaving a signed-in session on this browser, and the state kept between
the password and the two-factor code.

Between the two steps nobody is signed in: the browser's (signed) session cookie only
says which account gave the right password, whether it asked to be remembered and where
it was going, for TWO_FACTOR_PENDING_MINUTES. The login session and its cookies are made
only once the code is right (`sign_in`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request, session
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from app.auth import services, sessions, throttle
from app.extensions import db
from app.models import User

_PENDING = "two_factor_pending"


def sign_in(user: User, *, remember: bool = False) -> None:
    """Start a fresh session (no pre-login state carries over) for `user`.

    With "remember me" the cookie lasts as long as the session may (SESSION_MAX_DAYS);
    the server ends it sooner when it is left unused (SESSION_IDLE_DAYS)."""
    leave_current_session()
    services.start_login_session(
        user,
        request.headers.get("User-Agent", ""),
        remember=remember,
        ip=request.remote_addr or "",
    )
    duration = sessions.lifetime(True).absolute if remember else None
    login_user(user, remember=remember, duration=duration)
    throttle.remember_device(user.email)  # exempt from the per-account sign-in limit


def new_csrf_secret() -> None:
    """Make the session's CSRF secret now, in the response that starts the session.

    Flask-WTF makes it lazily on the first page that shows a form. Right after a
    sign-in (the session was just cleared) two tabs opening at once would then each
    make one, the last cookie would win, and the other tab's forms would fail as
    expired. Made here, the redirect's cookie carries the one secret every tab shares.
    """
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(field, None)
    g.pop(field, None)  # a token cached earlier in this request is for the old secret
    generate_csrf()


def leave_current_session() -> None:
    """Whoever was signed in on this browser is signed out (their session row ends)."""
    if current_user.is_authenticated:
        services.end_login_session(current_user.session_token)
        logout_user()
    session.clear()
    new_csrf_secret()


# --- between the password and the code ------------------------------------------------


@dataclass(frozen=True)
class PendingSignIn:
    user_id: int
    remember: bool
    next_url: str
    until: float  # unix time


def pending_minutes() -> float:
    return float(current_app.config.get("TWO_FACTOR_PENDING_MINUTES", 5))


def begin_second_step(user: User, *, remember: bool, next_url: str) -> None:
    """The password was right and the account asks for a code: remember that (and
    nothing more) in this browser's session for a few minutes."""
    leave_current_session()
    session[_PENDING] = {
        "user": user.id,
        "remember": bool(remember),
        "next": next_url,
        "until": time.time() + timedelta(minutes=pending_minutes()).total_seconds(),
    }


def pending_second_step() -> PendingSignIn | None:
    """The sign-in waiting for its code on this browser, if any and still in time."""
    raw = session.get(_PENDING)
    if not isinstance(raw, dict):
        return None
    try:
        pending = PendingSignIn(
            user_id=int(raw["user"]),
            remember=bool(raw["remember"]),
            next_url=str(raw["next"]),
            until=float(raw["until"]),
        )
    except (KeyError, TypeError, ValueError):
        drop_second_step()
        return None
    if time.time() >= pending.until:
        drop_second_step()
        return None
    return pending


def pending_user(pending: PendingSignIn) -> User | None:
    """The account of a pending sign-in, while it may still sign in with a code."""
    user = db.session.get(User, pending.user_id)
    if user is None or user.is_disabled or not user.two_factor_enabled:
        return None
    return user


def second_step_started() -> bool:
    """Whether this browser has a sign-in waiting for its code (in time or not)."""
    return _PENDING in session


def drop_second_step() -> None:
    session.pop(_PENDING, None)


def pending_account_key() -> str:
    """Flask-Limiter key for the code step: the account waiting for its code, so
    attempts from many addresses still count against one limit."""
    raw = session.get(_PENDING)
    if isinstance(raw, dict) and isinstance(raw.get("user"), int):
        return f"two-factor-account:{raw['user']}"
    return f"two-factor-address:{request.remote_addr or ''}"

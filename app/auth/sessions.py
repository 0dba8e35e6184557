"""Login sessions that end: their lifetimes, last-seen bookkeeping, the reader's list of
their signed-in browsers, and ending one of them.

A session made with "Keep me signed in" lives until it has been unused for
SESSION_IDLE_DAYS, and SESSION_MAX_DAYS at most however busy it is; one without lives
SESSION_BROWSER_HOURS (both idle and in all). The checks happen on the server, on every
request (`keep_alive`, called by the user loader): cookies are only as good as the row
they point to, and deleting the row still signs that browser out at once.

`last_seen_at` (and the address it was seen from) is written at most every
SESSION_TOUCH_MINUTES, so a busy reader costs one small write every few minutes rather
than one per request; the idle limits are days or hours, so minutes don't matter.

This module does not import `app.auth.services` (which imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from flask import current_app, flash, g, has_request_context, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user
from huey import crontab
from sqlalchemy import ColumnElement, Select, and_, delete, or_, select, update

from app.audit import record
from app.db import write_transaction
from app.extensions import db
from app.jobs import periodic
from app.models import LoginSession, utcnow

if TYPE_CHECKING:
    from app.auth.signed_in import Reader
from app.templating import hx_redirect

_EXPIRED = "dogear_session_expired"  # set on `g` when this request's session just ended
EXPIRED_MESSAGE = "Your session has expired. Please sign in again."


# --- lifetimes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta  # unused this long: over
    absolute: timedelta  # this long after signing in: over, however busy


def lifetime(remember: bool) -> Lifetime:
    config = current_app.config
    if remember:
        return Lifetime(
            idle=timedelta(days=float(config.get("SESSION_IDLE_DAYS", 30))),
            absolute=timedelta(days=float(config.get("SESSION_MAX_DAYS", 365))),
        )
    hours = timedelta(hours=float(config.get("SESSION_BROWSER_HOURS", 12)))
    return Lifetime(idle=hours, absolute=hours)


def touch_interval() -> timedelta:
    return timedelta(minutes=float(current_app.config.get("SESSION_TOUCH_MINUTES", 5)))


def ends_at(remember: bool, now: datetime) -> datetime:
    """The absolute end of a session started `now`."""
    return now + lifetime(remember).absolute


class SessionTimes(Protocol):
    """What the checks read of a session: a LoginSession, or the plain columns the
    user loader selects."""

    id: int
    remember: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str


def is_expired(row: SessionTimes, now: datetime) -> bool:
    """Past its end, idle too long, or older than the limit allows now (a limit lowered
    after the session started applies to it too)."""
    limit = lifetime(row.remember)
    return (
        now >= row.expires_at
        or now - row.created_at >= limit.absolute
        or now - row.last_seen_at >= limit.idle
    )


def _alive_clause(now: datetime) -> ColumnElement[bool]:
    """`not is_expired(row, now)`, in SQL."""

    def within(remember: bool) -> ColumnElement[bool]:
        limit = lifetime(remember)
        return and_(
            LoginSession.remember.is_(remember),
            LoginSession.created_at > now - limit.absolute,
            LoginSession.last_seen_at > now - limit.idle,
        )

    return and_(LoginSession.expires_at > now, or_(within(True), within(False)))


# --- on every request ---------------------------------------------------------------


def keep_alive(row: SessionTimes, user: Reader) -> bool:
    """For the user loader: False (and the session ended) if `row` has expired, else
    True, with its last-seen time moved on when it is more than a few minutes old."""
    now = utcnow()
    if is_expired(row, now):
        _expire(row, user)
        return False
    if now - row.last_seen_at >= touch_interval():
        _touch(row.id, now)
    return True


def _client_address() -> str:
    return (request.remote_addr or "")[:45] if has_request_context() else ""


def _touch(session_id: int, now: datetime) -> None:
    """Record that the session is in use, unless another request just did."""
    with write_transaction():
        db.session.execute(
            update(LoginSession)
            .where(
                LoginSession.id == session_id, LoginSession.last_seen_at < now - touch_interval()
            )
            .values(last_seen_at=now, ip=_client_address())
            .execution_options(synchronize_session=False)
        )


def _expire(row: SessionTimes, user: Reader) -> None:
    device = describe_user_agent(row.user_agent)
    with write_transaction():
        gone = db.session.execute(delete(LoginSession).where(LoginSession.id == row.id))
        if gone.rowcount == 1:  # of two requests at once, only one tells the log
            record("auth.session_expired", actor=user, target=user.email, detail=device)
    if has_request_context():
        g.setdefault(_EXPIRED, True)


def refuse_expired_session() -> ResponseReturnValue | None:
    """`before_app_request`: a reader whose session has just expired is signed out on
    this browser (its cookies too) and sent to sign in, with a message saying why."""
    if request.endpoint in (None, "static"):
        return None
    current_user._get_current_object()  # runs the user loader, which notices expiry
    if not g.get(_EXPIRED):
        return None
    logout_user()  # also clears the remember-me cookie
    flash(EXPIRED_MESSAGE, "info")
    if request.endpoint == "auth.login":
        return None
    back = request.full_path.rstrip("?") if request.method == "GET" else None
    login_url = url_for("auth.login", next=back)
    if request.headers.get("HX-Request"):
        return hx_redirect(login_url)
    return redirect(login_url, code=303 if request.method != "GET" else 302)


# --- the account page's list ------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    """One signed-in browser as the Account page shows it."""

    id: int
    device: str
    ip: str
    created_at: datetime
    last_seen_at: datetime
    ends_at: datetime  # the earlier of its absolute end and its idle limit
    remember: bool
    current: bool  # the browser looking at the page


def active_sessions(user: Reader) -> Select[tuple[LoginSession]]:
    """The reader's sessions that haven't expired, most recently used first."""
    return (
        select(LoginSession)
        .where(LoginSession.user_id == user.id, _alive_clause(utcnow()))
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    )


def session_rows(user: Reader) -> list[SessionRow]:
    current = getattr(user, "login_session_id", None)
    rows = []
    for row in db.session.scalars(active_sessions(user)):
        limit = lifetime(row.remember)
        rows.append(
            SessionRow(
                id=row.id,
                device=describe_user_agent(row.user_agent),
                ip=row.ip,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                ends_at=min(
                    row.expires_at, row.created_at + limit.absolute, row.last_seen_at + limit.idle
                ),
                remember=row.remember,
                current=row.id == current,
            )
        )
    # This browser first: it is the one the reader recognises.
    rows.sort(key=lambda r: not r.current)
    return rows


def end_session(user: Reader, session_id: int) -> SessionRow:
    """End one of the reader's own sessions (LookupError if they have none by that id):
    that browser is signed out on its next request."""
    with write_transaction():
        row = db.session.scalar(
            select(LoginSession).where(
                LoginSession.id == session_id, LoginSession.user_id == user.id
            )
        )
        if row is None:
            raise LookupError(session_id)
        ended = SessionRow(
            id=row.id,
            device=describe_user_agent(row.user_agent),
            ip=row.ip,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            ends_at=utcnow(),
            remember=row.remember,
            current=row.id == getattr(user, "login_session_id", None),
        )
        db.session.execute(delete(LoginSession).where(LoginSession.id == row.id))
        where = f" from {ended.ip}" if ended.ip else ""
        this = " (this browser)" if ended.current else ""
        record(
            "auth.session_end",
            actor=user,
            target=user.email,
            detail=f"{ended.device}{where}{this}",
        )
    return ended


# --- upkeep ---------------------------------------------------------------------------


def purge_expired_sessions(now: datetime | None = None) -> int:
    """Delete every session that has expired; returns how many. (Expired rows are
    refused anyway; this keeps the table from growing with browsers never seen again.)"""
    now = now or utcnow()
    with write_transaction():
        result = db.session.execute(
            delete(LoginSession)
            .where(~_alive_clause(now))
            .execution_options(synchronize_session=False)
        )
    return result.rowcount or 0


@periodic(crontab(hour="3", minute="41"))
def purge_sessions() -> int:
    """Every night: forget the sessions that have expired."""
    return purge_expired_sessions()


# --- "Firefox on Linux" ------------------------------------------------------------------

# First match wins: browsers that also say "Chrome" or "Safari" come before those.
_BROWSERS = [
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Vivaldi", re.compile(r"\bVivaldi/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chromium", re.compile(r"\bChromium/")),
    ("Chrome", re.compile(r"\bChrome/|\bCriOS/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/|\bAppleWebKit/.*\bMobile/")),
    ("curl", re.compile(r"^curl/")),
    ("Wget", re.compile(r"^Wget/")),
    ("Python", re.compile(r"^python-|^Python-urllib/")),
]
_SYSTEMS = [
    ("iPadOS", re.compile(r"\biPad\b")),
    ("iOS", re.compile(r"\biPhone\b|\biPod\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMacintosh\b|\bMac OS X\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
]


def describe_user_agent(user_agent: str) -> str:
    """A readable summary of a User-Agent header: "Firefox on Linux", "Safari on iOS",
    "Chrome", "Unknown browser". Only what a reader needs to recognise a device."""
    ua = (user_agent or "").strip()
    browser = next((name for name, pattern in _BROWSERS if pattern.search(ua)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(ua)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"A browser on {system}"
    return "Unknown browser"

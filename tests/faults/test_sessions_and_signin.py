"""Sessions and sign-in: sessions with a lifetime that really end, two-factor sign-in,
the sign-in throttle, and the secret that signs it all (issue 11's fault and attack
suite).

Protections proven here, with the issue 11 case each covers ("case:") and the test
that shows its checker can fail ("can fail:"):

- Session lifetime, enforced on the server (idle and absolute limits; last-seen
  written every few minutes only; the Account page's list of sessions, each of which
  can be ended): case "a login session made 400 days ago still works"
  (`test_a_session_made_400_days_ago_no_longer_works`,
  `test_a_remembered_session_ends_after_its_maximum_however_busy`; can fail:
  `test_the_session_lifetime_check_can_fail`, the expiry check off).
- Revocation: signing out, a password change and ending a session end it on the
  server, for copied cookies too (`test_logout_really_ends_the_session`; can fail:
  `test_the_sign_out_check_can_fail`, signing out that only clears the cookie); the
  session is renewed at sign-in; another reader's session is a 404.
- Two-factor sign-in (TOTP and recovery codes): codes that are wrong, too old or used
  already are refused, the code step is throttled, admins can require it.
- The sign-in throttle: case "a 429 from the sign-in throttle carries no
  `Retry-After`" (`test_every_limited_form_says_how_long_to_wait`; can fail:
  `test_the_retry_after_check_can_fail`, and `test_the_throttle_check_can_fail` with
  the limits off); case "the counter takes SQLite's write lock even to read"
  (`test_reading_the_counters_does_not_wait_for_the_write_lock`,
  `test_signing_in_works_while_an_import_holds_the_write_lock`); case "it counts
  successful sign-ins too" (`test_successful_sign_ins_do_not_count`); counted per
  address and per account, across workers; a victim is not locked out.
- Secrets: case "production mode starts with a secret like `aaaa…` or `changeme`
  repeated" (`test_production_refuses_a_long_but_predictable_secret`; can fail:
  `test_the_secret_strength_check_can_fail`, only the length checked).
- Sign-in gives nothing away: a wrong password and an unknown address get one answer.
"""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
import string
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import event, func, select, update

from app import create_app, ratelimit, signing
from app.auth import services, sessions, twofactor
from app.auth.services import create_user
from app.auth.sessions import describe_user_agent, purge_expired_sessions
from app.extensions import db
from app.jobs import huey
from app.models import AuditEvent, LoginSession, Setting, User, utcnow
from tests.conftest import HTMX, PASSWORD, make_app, run_concurrently, sign_in

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def _sign_in(client, email: str, *, ua: str = FIREFOX_LINUX, ip: str = "198.51.100.7", **extra):
    return client.submit(
        "/login",
        {"email": email, "password": PASSWORD, **extra},
        headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": ip},
    )


def _rows(user: User) -> list[LoginSession]:
    return list(
        db.session.scalars(
            select(LoginSession).where(LoginSession.user_id == user.id).order_by(LoginSession.id)
        )
    )


def _set(row_id: int, **values) -> None:
    db.session.execute(update(LoginSession).where(LoginSession.id == row_id).values(**values))
    db.session.commit()


def _cookies(response) -> dict[str, SimpleCookie]:
    jar = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        jar.update(cookie)
    return jar


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# --- what a sign-in records --------------------------------------------------------------


def test_a_browser_session_lasts_hours_and_records_device_and_address(client, make_user):
    ada = make_user("ada@example.com")
    before = utcnow()
    assert _sign_in(client, ada.email).status_code == 303
    (row,) = _rows(ada)
    assert row.remember is False
    assert row.ip == "198.51.100.7"
    assert row.user_agent == FIREFOX_LINUX
    assert row.last_seen_at >= before
    assert (
        timedelta(hours=11, minutes=59) < row.expires_at - before <= timedelta(hours=12, seconds=5)
    )


def test_remember_me_lasts_up_to_a_year_and_its_cookie_as_long(client, make_user):
    ada = make_user("ada@example.com")
    response = _sign_in(client, ada.email, remember="y")
    (row,) = _rows(ada)
    assert row.remember is True
    assert timedelta(days=364) < row.expires_at - utcnow() <= timedelta(days=365)
    expires = parsedate_to_datetime(_cookies(response)["remember_token"]["expires"])
    assert expires.replace(tzinfo=None) - utcnow() > timedelta(days=364)


# --- expiry -----------------------------------------------------------------------------


def test_a_browser_session_idle_past_its_hours_is_refused_and_deleted(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    (row,) = _rows(ada)
    _set(row.id, last_seen_at=utcnow() - timedelta(hours=12, minutes=1))

    response = client.get("/list?state=done")
    assert response.status_code == 302
    assert response.location == "/login?next=/list?state%3Ddone"
    page = client.get(response.location).get_data(as_text=True)
    assert "Your session has expired. Please sign in again." in page
    assert _rows(ada) == []
    (event_,) = _events("auth.session_expired")
    assert event_.actor_id == ada.id and event_.detail == "Firefox on Linux"
    assert client.get("/list").status_code == 302  # and stays signed out


def test_a_browser_session_ends_after_its_hours_however_busy(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    (row,) = _rows(ada)
    _set(
        row.id, created_at=utcnow() - timedelta(hours=13), expires_at=utcnow() - timedelta(hours=1)
    )
    assert client.get("/list").status_code == 302
    assert _rows(ada) == []


def test_a_remembered_session_survives_days_but_not_a_month_idle(app: Flask, make_user):
    ada = make_user("ada@example.com")
    client = app.test_client()
    remember = _cookies(_sign_in(client, ada.email, remember="y"))["remember_token"].value
    (row,) = _rows(ada)

    # The browser was closed (no session cookie) and comes back after 29 idle days.
    _set(row.id, last_seen_at=utcnow() - timedelta(days=29))
    returning = app.test_client()
    returning.set_cookie("remember_token", remember)
    assert returning.get("/list").status_code == 200
    db.session.expire_all()
    assert utcnow() - _rows(ada)[0].last_seen_at < timedelta(minutes=1)  # seen again

    _set(row.id, last_seen_at=utcnow() - timedelta(days=30, minutes=1))
    later = app.test_client()
    later.set_cookie("remember_token", remember)
    response = later.get("/list")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert "remember_token" in _cookies(response)  # the dead cookie is cleared
    assert _cookies(response)["remember_token"].value == ""
    assert _rows(ada) == []


def test_a_remembered_session_ends_after_its_maximum_however_busy(app: Flask, make_user):
    ada = make_user("ada@example.com")
    client = app.test_client()
    _sign_in(client, ada.email, remember="y")
    (row,) = _rows(ada)
    _set(row.id, created_at=utcnow() - timedelta(days=366), last_seen_at=utcnow())
    assert client.get("/list").status_code == 302
    assert _rows(ada) == []


def a_session_from_400_days_ago_is_refused(app: Flask, email: str) -> None:
    """The checker (issue 11: "a login session made 400 days ago still works"): a
    remember-me session signed in 400 days ago, in use every day since, is over."""
    client = app.test_client()
    _sign_in(client, email, remember="y")
    assert client.get("/list").status_code == 200
    row = db.session.scalars(
        select(LoginSession).join(LoginSession.user).where(User.email == email)
    ).one()
    _set(
        row.id,
        created_at=utcnow() - timedelta(days=400),
        expires_at=utcnow() + timedelta(days=1),
        last_seen_at=utcnow() - timedelta(hours=1),
    )
    assert client.get("/list").status_code == 302


def test_a_session_made_400_days_ago_no_longer_works(app: Flask, make_user):
    a_session_from_400_days_ago_is_refused(app, make_user("ada@example.com").email)


def test_the_session_lifetime_check_can_fail(app: Flask, make_user, monkeypatch):
    """With the server-side expiry check switched off, the checker catches it."""
    monkeypatch.setattr(sessions, "is_expired", lambda row, now: False)
    with pytest.raises(AssertionError):
        a_session_from_400_days_ago_is_refused(app, make_user("ada@example.com").email)


def test_lifetimes_follow_the_settings(app: Flask, client, make_user):
    app.config.update(SESSION_BROWSER_HOURS=1, SESSION_IDLE_DAYS=2, SESSION_MAX_DAYS=10)
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    (row,) = _rows(ada)
    assert row.expires_at - utcnow() <= timedelta(hours=1)
    _set(row.id, last_seen_at=utcnow() - timedelta(minutes=61))
    assert client.get("/list").status_code == 302


def test_a_lowered_limit_applies_to_sessions_already_running(app: Flask, client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email, remember="y")
    (row,) = _rows(ada)
    _set(row.id, created_at=utcnow() - timedelta(days=40), last_seen_at=utcnow())
    assert client.get("/list").status_code == 200
    app.config["SESSION_MAX_DAYS"] = 30
    assert client.get("/list").status_code == 302


def cookie_past_its_lifetime_is_refused(app: Flask, client, make_user, monkeypatch) -> None:
    """A session cookie older than PERMANENT_SESSION_LIFETIME signs nobody in, although
    this worker verified it before and keeps what it holds (app/signing.py)."""
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=10)
    _sign_in(client, make_user("ada@example.com").email)
    for _ in range(3):  # the cookie is verified and kept; it works while it's young
        assert client.get("/list").status_code == 200
    later = time.time() + 11 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/list").status_code == 302


def test_a_cookie_past_its_lifetime_is_refused_though_this_worker_kept_it(
    app: Flask, client, make_user, monkeypatch
):
    cookie_past_its_lifetime_is_refused(app, client, make_user, monkeypatch)


def test_the_cookie_lifetime_check_can_fail(app: Flask, client, make_user, monkeypatch):
    """A kept cookie whose age is never looked at again: the checker catches it."""
    monkeypatch.setattr(signing.SessionCookies, "_young", staticmethod(lambda *args: True))
    with pytest.raises(AssertionError):
        cookie_past_its_lifetime_is_refused(app, client, make_user, monkeypatch)


def test_an_expired_session_on_a_public_page_is_sent_to_sign_in(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    _set(_rows(ada)[0].id, last_seen_at=utcnow() - timedelta(days=1))
    response = client.get("/")
    assert response.status_code == 302
    assert response.location == "/login?next=/"


def test_an_expired_session_gets_a_full_navigation_under_htmx(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    _set(_rows(ada)[0].id, last_seen_at=utcnow() - timedelta(days=1))
    response = client.get("/list", headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login?next=/list"


def test_an_expired_session_visiting_sign_in_sees_why(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    _set(_rows(ada)[0].id, last_seen_at=utcnow() - timedelta(days=1))
    response = client.get("/login")
    assert response.status_code == 200
    assert "Your session has expired" in response.get_data(as_text=True)


# --- last seen, written every few minutes ------------------------------------------------


class _Writes:
    """Counts UPDATEs of login_sessions sent to the database."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, conn, cursor, statement: str, *args) -> None:
        if statement.lstrip().upper().startswith("UPDATE LOGIN_SESSIONS"):
            self.count += 1


@pytest.fixture
def session_writes(app: Flask):
    writes = _Writes()
    event.listen(db.engine, "before_cursor_execute", writes)
    yield writes
    event.remove(db.engine, "before_cursor_execute", writes)


def test_last_seen_is_not_written_on_every_request(client, make_user, session_writes):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    session_writes.count = 0
    for _ in range(5):
        assert client.get("/list").status_code == 200
    assert session_writes.count == 0

    (row,) = _rows(ada)
    _set(row.id, last_seen_at=utcnow() - timedelta(minutes=6), ip="198.51.100.7")
    session_writes.count = 0
    client.get("/list", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert session_writes.count == 1
    db.session.expire_all()
    (row,) = _rows(ada)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    assert row.ip == "203.0.113.9"  # the address it was last seen from
    for _ in range(3):
        client.get("/list")
    assert session_writes.count == 1


def test_last_seen_within_the_interval_is_left_alone(client, make_user, session_writes):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    (row,) = _rows(ada)
    four_minutes_ago = utcnow() - timedelta(minutes=4)
    _set(row.id, last_seen_at=four_minutes_ago)
    session_writes.count = 0
    client.get("/list")
    assert session_writes.count == 0
    db.session.expire_all()
    assert _rows(ada)[0].last_seen_at == four_minutes_ago


# --- the Account page's list ---------------------------------------------------------------


def test_account_lists_the_reader_s_sessions_with_this_browser_marked(app: Flask, make_user):
    ada = make_user("ada@example.com")
    other = make_user("bob@example.com")
    laptop, phone, bobs = app.test_client(), app.test_client(), app.test_client()
    _sign_in(laptop, ada.email, ua=FIREFOX_LINUX, ip="198.51.100.7")
    _sign_in(phone, ada.email, ua=SAFARI_IPHONE, ip="203.0.113.20")
    _sign_in(bobs, other.email, ua=SAFARI_IPHONE, ip="192.0.2.99")
    laptop_row, phone_row = _rows(ada)

    html = laptop.get("/account").get_data(as_text=True)
    assert 'id="sessions"' in html
    assert "Firefox on Linux" in html and "Safari on iOS" in html
    assert "198.51.100.7" in html and "203.0.113.20" in html
    assert "192.0.2.99" not in html  # nobody else's
    assert html.count("This browser</span>") == 1
    this = html[html.index(f'id="session-{laptop_row.id}"') :]
    assert this.index("This browser") < this.index(f'id="session-{phone_row.id}"')
    assert f"/account/sessions/{phone_row.id}/end" in html


def test_expired_sessions_are_not_listed(client, make_user, app: Flask):
    ada = make_user("ada@example.com")
    old = app.test_client()
    _sign_in(old, ada.email, ua=SAFARI_IPHONE)
    _sign_in(client, ada.email)
    old_row, _ = _rows(ada)
    _set(old_row.id, last_seen_at=utcnow() - timedelta(days=2))
    html = client.get("/account").get_data(as_text=True)
    assert "Safari on iOS" not in html


def test_ending_another_session_signs_that_browser_out(app: Flask, make_user):
    ada = make_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    _sign_in(laptop, ada.email)
    _sign_in(phone, ada.email, ua=SAFARI_IPHONE, ip="203.0.113.20")
    _, phone_row = _rows(ada)

    response = laptop.submit(f"/account/sessions/{phone_row.id}/end")
    assert response.status_code == 303
    assert response.location == "/account#sessions"
    assert "Signed out: Safari on iOS." in laptop.get("/account").get_data(as_text=True)
    assert phone.get("/list").status_code == 302  # at once
    assert laptop.get("/list").status_code == 200
    (event_,) = _events("auth.session_end")
    assert event_.actor_id == ada.id
    assert event_.detail == "Safari on iOS from 203.0.113.20"


def test_ending_a_session_with_htmx_swaps_its_row(app: Flask, make_user):
    ada = make_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    _sign_in(laptop, ada.email)
    _sign_in(phone, ada.email, ua=SAFARI_IPHONE)
    phone_id = _rows(ada)[1].id

    response = laptop.submit(f"/account/sessions/{phone_id}/end", htmx=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<li id="session-{phone_id}"')
    assert "Session ended" in html
    assert phone.get("/list").status_code == 302


def test_ending_this_browser_s_own_session_signs_out(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    (row,) = _rows(ada)
    response = client.submit(f"/account/sessions/{row.id}/end")
    assert response.status_code == 303 and response.location == "/login"
    assert client.get("/list").status_code == 302
    assert _rows(ada) == []


def test_ending_this_browser_s_session_under_htmx_navigates_to_sign_in(client, make_user):
    ada = make_user("ada@example.com")
    _sign_in(client, ada.email)
    (row,) = _rows(ada)
    response = client.submit(f"/account/sessions/{row.id}/end", htmx=True)
    assert response.headers["HX-Redirect"] == "/login"


def test_another_reader_s_session_is_a_404(app: Flask, make_user):
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    adas, bobs = app.test_client(), app.test_client()
    _sign_in(adas, ada.email)
    _sign_in(bobs, bob.email)
    (bob_row,) = _rows(bob)
    assert adas.submit(f"/account/sessions/{bob_row.id}/end").status_code == 404
    assert adas.submit(f"/account/sessions/{bob_row.id}/end", htmx=True).status_code == 404
    assert adas.submit("/account/sessions/999999/end").status_code == 404
    assert bobs.get("/list").status_code == 200  # untouched
    assert _events("auth.session_end") == []


def test_ending_a_session_needs_the_csrf_token(app: Flask, make_user):
    ada = make_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    _sign_in(laptop, ada.email)
    _sign_in(phone, ada.email)
    _, phone_row = _rows(ada)
    assert laptop.post(f"/account/sessions/{phone_row.id}/end").status_code == 400
    assert phone.get("/list").status_code == 200


def test_ending_a_session_needs_sign_in(client, make_user):
    ada = make_user("ada@example.com")
    other = client.application.test_client()
    _sign_in(other, ada.email)
    (row,) = _rows(ada)
    response = client.submit(f"/account/sessions/{row.id}/end")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert len(_rows(ada)) == 1


# --- upkeep -----------------------------------------------------------------------------


def test_purge_deletes_only_expired_sessions(app: Flask, make_user):
    ada = make_user("ada@example.com")
    clients = [app.test_client() for _ in range(4)]
    _sign_in(clients[0], ada.email)
    _sign_in(clients[1], ada.email)
    _sign_in(clients[2], ada.email, remember="y")
    _sign_in(clients[3], ada.email, remember="y")
    browser_ok, browser_idle, remembered_ok, remembered_idle = _rows(ada)
    _set(browser_idle.id, last_seen_at=utcnow() - timedelta(hours=13))
    _set(remembered_ok.id, last_seen_at=utcnow() - timedelta(days=10))
    _set(remembered_idle.id, last_seen_at=utcnow() - timedelta(days=31))

    assert purge_expired_sessions() == 2
    assert [row.id for row in _rows(ada)] == [browser_ok.id, remembered_ok.id]
    assert sessions.purge_sessions.task_class in huey._registry._periodic_tasks
    assert sessions.purge_sessions.call_local() == 0


def test_session_count_on_the_admin_page_still_adds_up(app: Flask, make_user):
    ada = make_user("ada@example.com")
    _sign_in(app.test_client(), ada.email)
    assert (
        db.session.scalar(
            select(func.count()).select_from(LoginSession).where(LoginSession.user_id == ada.id)
        )
        == 1
    )


# --- "Firefox on Linux" --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (SAFARI_IPHONE, "Safari on iOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.4 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
            "Chrome on iPadOS",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
        ("something odd", "Unknown browser"),
    ],
)
def test_user_agents_read_as_a_device(user_agent, expected):
    assert describe_user_agent(user_agent) == expected


# === two-factor sign-in (was tests/test_twofactor.py) ===================================

# Two-factor sign-in: set-up with a QR code, the code step of signing in (codes that
# are wrong, too old or used already), recovery codes, turning it off, the throttle, and
# the site setting that requires it for admins.

_SECRET = re.compile(r'class="totp-secret"><code>([A-Z2-7 ]+)</code>')
_CODES = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


class Clock:
    """The TOTP clock of app/auth/twofactor.py, moved by the tests."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        monkeypatch.setattr(twofactor, "_now", lambda: time.time() + self.offset)

    def now(self) -> float:
        return time.time() + self.offset

    def tick(self, steps: int = 1) -> None:
        """Move on by whole 30-second steps (a fresh code)."""
        self.offset += 30 * steps

    def code(self, secret: str, steps: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.now() + 30 * steps)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def _post(client, url: str, data: dict | None = None, *, token_from: str = "/account", **kw):
    """POST with the CSRF token of a page the reader can open (`submit` reads "/")."""
    data = dict(data or {})
    data.setdefault("csrf_token", client.csrf_token(token_from))
    return client.post(url, data=data, **kw)


def enable_two_factor(client, clock: Clock) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on for the signed-in reader: (secret, recovery codes)."""
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = _SECRET.search(page).group(1).replace(" ", "")
    response = _post(
        client,
        "/account/two-factor/enable",
        {"code": clock.code(secret)},
        token_from="/account/two-factor",
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.location == "/account/two-factor/recovery-codes"
    codes = _CODES.findall(client.get(response.location).get_data(as_text=True))
    assert len(codes) == 10
    clock.tick()  # the code used to turn it on can't be used again
    return secret, codes


def _user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def _sessions(user_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(LoginSession).where(LoginSession.user_id == user_id)
    )


@pytest.fixture
def ada_2fa(app: Flask, make_user, clock: Clock):
    """Ada, with two-factor sign-in on and signed out: (user, secret, recovery codes)."""
    ada = make_user("ada@example.com")
    client = app.test_client()
    sign_in(client, ada)
    secret, codes = enable_two_factor(client, clock)
    client.submit("/logout")
    return ada, secret, codes


# --- set-up --------------------------------------------------------------------------------


def test_set_up_shows_a_qr_code_drawn_here_and_the_key(client, reader):
    response = client.get("/account/two-factor")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'class="qr-code"' in html
    assert "<title>QR code for your authenticator app</title>" in html
    assert (
        "style=" not in html
        and "<script>" not in html
        and "http://"
        not in html.split("<svg", 1)[1]
        .split("</svg>", 1)[0]
        .replace("http://www.w3.org/2000/svg", "")
    )
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    secret = _SECRET.search(html).group(1)
    assert len(secret.replace(" ", "")) == 32
    # The same secret until it is confirmed (reloading doesn't invalidate the scan).
    again = client.get("/account/two-factor").get_data(as_text=True)
    assert _SECRET.search(again).group(1) == secret


def test_the_qr_code_carries_the_otpauth_uri(app: Flask):
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    uri = twofactor.provisioning_uri("ada@example.com", secret)
    assert uri.startswith(f"otpauth://totp/Dogear:ada%40example.com?secret={secret}")
    assert "issuer=Dogear" in uri


def test_the_account_page_offers_set_up(client, reader):
    html = client.get("/account").get_data(as_text=True)
    assert 'href="/account/two-factor"' in html and "Set up two-factor sign-in" in html


def test_enabling_needs_a_right_code(client, reader, clock):
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = _SECRET.search(page).group(1).replace(" ", "")
    for wrong in ["000000", "12345", "abcdef", clock.code(secret, steps=-3)]:
        response = _post(
            client, "/account/two-factor/enable", {"code": wrong}, token_from="/account/two-factor"
        )
        assert response.status_code == 422, wrong
        assert "That code isn&#39;t right" in response.get_data(as_text=True)
    assert not _user(reader.email).two_factor_enabled
    empty = _post(client, "/account/two-factor/enable", {"code": ""}, token_from="/account")
    assert empty.status_code == 422


def test_enabling_shows_ten_recovery_codes_once_and_stores_only_hashes(client, reader, clock):
    secret, codes = enable_two_factor(client, clock)
    user = _user(reader.email)
    assert user.two_factor_enabled and user.totp_secret == secret
    stored = user.recovery_codes.split()
    assert len(stored) == 10 and len(set(codes)) == 10
    assert not any(code in user.recovery_codes for code in codes)
    assert not any(code.replace("-", "") in user.recovery_codes for code in codes)
    # Shown once: the page doesn't show them again.
    again = client.get("/account/two-factor/recovery-codes")
    assert again.status_code == 303 and again.location == "/account/two-factor"
    assert not _CODES.findall(client.get("/account/two-factor").get_data(as_text=True))
    (event,) = _events("auth.two_factor_enable")
    assert event.actor_id == reader.id
    assert "Manage two-factor sign-in" in client.get("/account").get_data(as_text=True)


# --- signing in: the second step -------------------------------------------------------------


def test_the_password_alone_does_not_sign_in(client, ada_2fa):
    ada, _secret, _codes = ada_2fa
    response = sign_in(client, ada, next="/list?state=done")
    assert response.status_code == 303 and response.location == "/login/code"
    assert _sessions(ada.id) == 0
    assert client.get("/list").status_code == 302
    page = client.get("/login/code")
    assert page.status_code == 200
    assert 'autocomplete="one-time-code"' in page.get_data(as_text=True)


def test_the_right_code_signs_in_and_goes_where_the_reader_was_going(client, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    sign_in(client, ada, next="/list?state=done")
    response = client.submit("/login/code", {"code": clock.code(secret)})
    assert response.status_code == 303 and response.location == "/list?state=done"
    assert client.get("/list").status_code == 200
    assert _sessions(ada.id) == 1
    # The pending state is gone: the code page now sends to sign in.
    client.submit("/logout")
    assert client.get("/login/code").location == "/login"


def test_a_wrong_code_is_refused_and_logged(client, ada_2fa):
    ada, _secret, _codes = ada_2fa
    sign_in(client, ada)
    response = client.submit("/login/code", {"code": "123456"})
    assert response.status_code == 422
    assert "That code isn&#39;t right" in response.get_data(as_text=True)
    assert client.get("/list").status_code == 302
    assert _sessions(ada.id) == 0
    failed = _events("auth.sign_in_failed")
    assert failed[-1].detail == "wrong two-factor code"
    assert client.submit("/login/code", {"code": ""}).status_code == 422


def test_a_code_works_once(app: Flask, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    first, second = app.test_client(), app.test_client()
    code = clock.code(secret)
    sign_in(first, ada)
    assert first.submit("/login/code", {"code": code}).status_code == 303
    sign_in(second, ada)
    reused = second.submit("/login/code", {"code": code})
    assert reused.status_code == 422
    assert "already used" in reused.get_data(as_text=True)
    # An older code (still within the drift) is refused once a newer one was used.
    assert second.submit("/login/code", {"code": clock.code(secret, -1)}).status_code == 422
    assert second.submit("/login/code", {"code": clock.code(secret, 1)}).status_code == 303


def test_codes_too_old_or_too_new_are_refused(client, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    sign_in(client, ada)
    clock.tick(3)
    for steps in (-3, -2, 2, 3):
        response = client.submit("/login/code", {"code": clock.code(secret, steps)})
        assert response.status_code == 422, steps
    # A step off either way is accepted (a phone's clock a little off).
    assert client.submit("/login/code", {"code": clock.code(secret, -1)}).status_code == 303


def test_the_same_code_at_the_same_instant_signs_in_once(app: Flask, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    code, ada_id = clock.code(secret), ada.id
    results: list[bool] = []

    def use() -> None:
        results.append(twofactor.use_totp(db.session.get(User, ada_id), code))

    assert run_concurrently(app, use) == []
    assert sorted(results) == [False, False, False, True]


def test_a_recovery_code_signs_in_once(app: Flask, ada_2fa):
    ada, _secret, codes = ada_2fa
    client = app.test_client()
    sign_in(client, ada)
    response = client.submit("/login/code", {"code": f"  {codes[3].upper()} "})
    assert response.status_code == 303
    assert "9 recovery codes left" in client.get("/").get_data(as_text=True)
    assert len(_user(ada.email).recovery_codes.split()) == 9
    (event,) = _events("auth.recovery_code_use")
    assert event.actor_id == ada.id and event.detail == "9 recovery codes left"

    again = app.test_client()
    sign_in(again, ada)
    assert again.submit("/login/code", {"code": codes[3]}).status_code == 422
    assert again.submit("/login/code", {"code": codes[4].replace("-", "")}).status_code == 303


def test_the_code_step_times_out(app: Flask, client, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    app.config["TWO_FACTOR_PENDING_MINUTES"] = 0
    sign_in(client, ada)
    response = client.submit("/login/code", {"code": clock.code(secret)})
    assert response.status_code == 303 and response.location == "/login"
    assert "time to enter the code ran out" in client.get("/login").get_data(as_text=True)
    assert _sessions(ada.id) == 0


def test_the_code_step_without_a_password_first_goes_to_sign_in(client):
    response = client.get("/login/code")
    assert response.status_code == 303 and response.location == "/login"


def test_a_disabled_account_can_t_finish_the_code_step(app: Flask, client, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    sign_in(client, ada)
    user = _user(ada.email)
    user.is_disabled = True
    db.session.commit()
    response = client.submit("/login/code", {"code": clock.code(secret)})
    assert response.status_code == 303 and response.location == "/login"
    assert _sessions(ada.id) == 0


def test_remember_me_carries_through_the_code_step(client, ada_2fa, clock):
    ada, secret, _codes = ada_2fa
    sign_in(client, ada, remember="y")
    response = client.submit("/login/code", {"code": clock.code(secret)})
    assert response.status_code == 303
    assert any(h.startswith("remember_token=") for h in response.headers.getlist("Set-Cookie"))
    row = db.session.scalar(select(LoginSession).where(LoginSession.user_id == ada.id))
    assert row.remember is True


def test_code_attempts_are_throttled_per_address_and_per_account(tmp_path, database, clock):
    from tests.conftest import make_app

    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute", **database)
    with app.app_context():
        ada = twofactor_user(app, clock)
        client = app.test_client()
        there = {"environ_base": {"REMOTE_ADDR": "198.51.100.1"}}
        password = {"email": ada.email, "password": PASSWORD}
        assert client.submit("/login", password, **there).status_code == 303
        statuses = [
            client.submit("/login/code", {"code": "000000"}, **there).status_code for _ in range(3)
        ]
        assert statuses == [422, 422, 422]
        blocked = client.submit("/login/code", {"code": clock.code(ada.totp_secret)}, **there)
        assert blocked.status_code == 429
        assert "Too many attempts" in blocked.get_data(as_text=True)
        # From another address, the same account is still throttled.
        other = app.test_client()
        elsewhere = {"environ_base": {"REMOTE_ADDR": "203.0.113.50"}}
        assert other.submit("/login", password, **elsewhere).status_code == 303
        response = other.submit("/login/code", {"code": clock.code(ada.totp_secret)}, **elsewhere)
        assert response.status_code == 429
        assert _sessions(ada.id) == 0
        db.session.remove()
        db.engine.dispose()


def test_turning_it_off_is_throttled_like_sign_in(tmp_path, database, clock):
    """A stolen session can't guess codes or the password through the confirm forms."""
    from tests.conftest import make_app

    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2 per minute", **database)
    with app.app_context():
        ada = twofactor_user(app, clock)
        client = app.test_client()
        assert sign_in(client, ada).status_code == 303
        assert (
            client.submit("/login/code", {"code": clock.code(ada.totp_secret)}).status_code == 303
        )
        guesses = [
            client.submit("/account/two-factor/disable", {"code": "000000"}).status_code
            for _ in range(3)
        ]
        assert guesses == [422, 422, 429]
        regenerate = client.submit("/account/two-factor/recovery-codes", {"password": "guess"})
        assert regenerate.status_code == 422
        assert _user(ada.email).two_factor_enabled
        db.session.remove()
        db.engine.dispose()


def twofactor_user(app: Flask, clock: Clock) -> User:
    """An account with two-factor sign-in on, made without the web (no throttle used)."""
    from app.auth.services import create_user

    user = create_user("ada@example.com", PASSWORD)
    secret = twofactor.new_secret()
    twofactor.enable(user, secret, clock.code(secret))
    clock.tick()
    return _user("ada@example.com")


# --- turning it off, new recovery codes --------------------------------------------------------


def test_turning_it_off_needs_the_password_or_a_code(client, reader, clock):
    secret, _codes = enable_two_factor(client, clock)
    for data in ({}, {"password": "not the password"}, {"code": "000000"}):
        response = client.submit("/account/two-factor/disable", data)
        assert response.status_code == 422, data
        assert _user(reader.email).two_factor_enabled
    response = client.submit("/account/two-factor/disable", {"code": clock.code(secret)})
    assert response.status_code == 303 and response.location == "/account"
    user = _user(reader.email)
    assert not user.two_factor_enabled and user.totp_secret is None and user.recovery_codes == ""
    (event,) = _events("auth.two_factor_disable")
    assert event.actor_id == reader.id
    # The password alone signs in again.
    client.submit("/logout")
    assert sign_in(client, reader).location == "/"


def test_turning_it_off_with_the_password(client, reader, clock):
    enable_two_factor(client, clock)
    response = client.submit("/account/two-factor/disable", {"password": PASSWORD})
    assert response.status_code == 303
    assert not _user(reader.email).two_factor_enabled


def test_new_recovery_codes_replace_the_old_ones(app: Flask, client, reader, clock):
    secret, old = enable_two_factor(client, clock)
    assert client.submit("/account/two-factor/recovery-codes", {}).status_code == 422
    response = client.submit("/account/two-factor/recovery-codes", {"password": PASSWORD})
    assert response.status_code == 303
    assert response.location == "/account/two-factor/recovery-codes"
    new = _CODES.findall(client.get(response.location).get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert len(_events("auth.recovery_codes_regenerate")) == 1

    other = app.test_client()
    sign_in(other, reader)
    assert other.submit("/login/code", {"code": old[0]}).status_code == 422
    assert other.submit("/login/code", {"code": new[0]}).status_code == 303


# --- CSRF ------------------------------------------------------------------------------------


def test_every_new_form_needs_the_csrf_token(app: Flask, make_user, clock):
    ada = make_user("ada@example.com")
    boss = make_user("boss@example.com", is_admin=True)
    client = app.test_client()
    sign_in(client, ada)
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = _SECRET.search(page).group(1).replace(" ", "")
    assert (
        client.post("/account/two-factor/enable", data={"code": clock.code(secret)}).status_code
        == 400
    )
    assert not _user(ada.email).two_factor_enabled
    enable_two_factor(client, clock)
    for url, data in [
        ("/account/two-factor/disable", {"password": PASSWORD}),
        ("/account/two-factor/recovery-codes", {"password": PASSWORD}),
    ]:
        assert client.post(url, data=data).status_code == 400, url
        assert client.post(url, data=data, headers=HTMX).status_code == 400, url
    assert _user(ada.email).two_factor_enabled
    client.submit("/logout")
    sign_in(client, ada)
    assert client.post("/login/code", data={"code": clock.code(secret)}).status_code == 400
    assert _sessions(ada.id) == 0

    admin = app.test_client()
    sign_in(admin, boss)
    assert admin.post("/admin/settings/two-factor", data={"required": "y"}).status_code == 400
    assert not twofactor.admin_two_factor_required()


# --- required for admins -------------------------------------------------------------------------


def _require_for_admins(admin_client) -> None:
    response = admin_client.submit("/admin/settings/two-factor", {"required": "y"})
    assert response.status_code == 303
    assert response.location == "/admin/users#two-factor-policy"


def test_admins_can_require_two_factor_for_admins(client, admin, clock):
    assert 'id="two-factor-policy"' in client.get("/admin/users").get_data(as_text=True)
    secret, _codes = enable_two_factor(client, clock)  # the admin has it already
    _require_for_admins(client)
    assert twofactor.admin_two_factor_required()
    stored = db.session.scalar(select(Setting.value).where(Setting.key == "admin_two_factor"))
    assert stored == "required"
    (event,) = _events("settings.admin_two_factor")
    assert event.detail == "optional → required"
    assert client.get("/admin/users").status_code == 200  # has it: nothing changes
    # Off again.
    response = client.submit("/admin/settings/two-factor", {})
    assert response.status_code == 303 and not twofactor.admin_two_factor_required()


def test_readers_can_t_change_the_setting(client, reader):
    assert client.submit("/admin/settings/two-factor", {"required": "y"}).status_code == 403
    assert not twofactor.admin_two_factor_required()


def test_an_admin_without_two_factor_is_sent_to_set_it_up_first(app: Flask, make_user, clock):
    boss = make_user("boss@example.com", is_admin=True)
    other_admin = make_user("other@example.com", is_admin=True)
    reader = make_user("ada@example.com")
    twofactor.set_admin_two_factor(boss, True)

    client = app.test_client()
    response = sign_in(client, other_admin)
    assert response.status_code == 303  # the password signs in: there's no code yet
    for url in ("/", "/admin/users", "/list", "/account"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.location == "/account/two-factor"
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "requires two-factor sign-in for admins" in html
    htmx = client.get("/list", headers=HTMX)
    assert htmx.headers["HX-Redirect"] == "/account/two-factor"
    # Other forms are refused too (with their CSRF token right).
    token = client.csrf_token("/account/two-factor")
    blocked = client.post("/account/sign-out-everywhere", data={"csrf_token": token})
    assert blocked.status_code == 303 and blocked.location == "/account/two-factor"

    secret = _SECRET.search(html).group(1).replace(" ", "")
    response = client.post(
        "/account/two-factor/enable", data={"csrf_token": token, "code": clock.code(secret)}
    )
    assert response.status_code == 303
    assert len(_CODES.findall(client.get(response.location).get_data(as_text=True))) == 10
    assert client.get("/admin/users").status_code == 200

    # Signing out stays possible; readers are not affected.
    readers = app.test_client()
    sign_in(readers, reader)
    assert readers.get("/list").status_code == 200


def test_an_admin_can_sign_out_before_setting_it_up(app: Flask, make_user):
    boss = make_user("boss@example.com", is_admin=True)
    twofactor.set_admin_two_factor(boss, True)
    client = app.test_client()
    sign_in(client, boss)
    token = client.csrf_token("/account/two-factor")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.location == "/login"
    assert _sessions(boss.id) == 0


def test_a_required_admin_can_t_turn_it_off(client, admin, clock):
    secret, _codes = enable_two_factor(client, clock)
    _require_for_admins(client)
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "stays on for your account" in page
    response = client.submit("/account/two-factor/disable", {"password": PASSWORD})
    assert response.status_code == 422
    assert "requires two-factor sign-in for admins" in response.get_data(as_text=True)
    assert _user(admin.email).two_factor_enabled


# === the sign-in throttle (was tests/test_throttle.py) ===================================

# Sign-in throttling (app/auth/throttle.py) and its counters in the database
# (app/ratelimit.py): failures only, per address and per account, every 429 saying how
# long to wait, shared by workers, and never waiting for SQLite's write lock to read.

HERE = {"environ_base": {"REMOTE_ADDR": "198.51.100.7"}}
THERE = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}


@contextmanager
def limited_app(tmp_path: Path, database: dict[str, Any], **config: Any) -> Iterator[Flask]:
    """An app with the limits on (the suite turns them off), as one gunicorn worker."""
    app = make_app(tmp_path, **database, RATELIMIT_ENABLED=True, **config)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def assert_says_how_long(response: Any, window: int = 60) -> None:
    assert response.status_code == 429
    assert "Retry-After" in response.headers, "a 429 without Retry-After"
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= window
    assert "Too many attempts" in response.get_data(as_text=True)


@contextmanager
def write_lock_held(app: Flask) -> Iterator[None]:
    """Another process's long write (an import): SQLite's write lock, held throughout."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def attempt(client: Any, email: Any, password: str = PASSWORD, *, at: dict) -> Any:
    """A sign-in from the address `at` (conftest's `sign_in` sends extras as form data)."""
    email = email if isinstance(email, str) else email.email
    return client.submit("/login", {"email": email, "password": password}, **at)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The counters' clock moved on by `seconds`."""
    fake = types.SimpleNamespace(time=lambda: time.time() + seconds)
    monkeypatch.setattr(ratelimit, "time", fake)


# --- failures only ------------------------------------------------------------------


def test_successful_sign_ins_do_not_count(tmp_path, database):
    """An office behind one address signs in all morning without reaching the limit."""
    with limited_app(tmp_path, database, RATELIMIT_LOGIN="2 per minute") as app:
        create_user("ada@example.com", PASSWORD)
        client = app.test_client()
        for _ in range(4):
            assert attempt(client, "ada@example.com", at=HERE).status_code == 303
            assert client.submit("/logout", **HERE).status_code == 303
        statuses = [attempt(client, "ada@example.com", "wrong", at=HERE).status_code for _ in "ab"]
        assert statuses == [422, 422]
        assert_says_how_long(attempt(client, "ada@example.com", at=HERE))


def test_failed_attempts_count_across_workers(tmp_path, database):
    """Two apps on one database (two workers, or two hosts) share the counters."""
    limits = {"RATELIMIT_LOGIN": "100 per minute", "RATELIMIT_LOGIN_ACCOUNT": "2 per hour"}
    with limited_app(tmp_path, database, **limits) as first:
        create_user("ada@example.com", PASSWORD)
        assert attempt(first.test_client(), "ada@example.com", at=HERE).status_code == 303
        client = first.test_client()
        statuses = [attempt(client, "ADA@example.com ", "no", at=HERE).status_code for _ in "ab"]
        assert statuses == [422, 422]
    with limited_app(tmp_path, database, **limits) as second:
        response = attempt(second.test_client(), "ada@example.com", "no", at=THERE)
        assert_says_how_long(response, window=3600)


def test_an_account_attacked_from_elsewhere_still_lets_its_reader_in(
    tmp_path, database, monkeypatch
):
    """Per address: 3 a minute. Per account: 5 per 15 minutes, from anywhere, except
    from a browser that signed in to the account before."""
    limits = {"RATELIMIT_LOGIN": "3 per minute", "RATELIMIT_LOGIN_ACCOUNT": "5 per 15 minutes"}
    with limited_app(tmp_path, database, **limits) as app:
        create_user("ada@example.com", PASSWORD)
        laptop = app.test_client()  # Ada's own browser, at home
        home = {"environ_base": {"REMOTE_ADDR": "192.0.2.10"}}
        assert attempt(laptop, "ada@example.com", at=home).status_code == 303
        assert laptop.submit("/logout", **home).status_code == 303

        attacker = app.test_client()
        first, second = ({"environ_base": {"REMOTE_ADDR": f"203.0.113.{n}"}} for n in (1, 2))
        tries = [attempt(attacker, "ada@example.com", "guess", at=first) for _ in range(3)]
        assert [r.status_code for r in tries] == [422, 422, 422]
        assert_says_how_long(attempt(attacker, "ada@example.com", "guess", at=first))
        tries = [attempt(attacker, "ada@example.com", "guess", at=second) for _ in range(2)]
        assert [r.status_code for r in tries] == [422, 422]
        # Five failures for the account: a new browser anywhere waits for the window.
        assert_says_how_long(
            attempt(attacker, "ada@example.com", "guess", at=second), window=15 * 60
        )
        phone = app.test_client()  # Ada, on a browser she never signed in with
        assert_says_how_long(attempt(phone, "ada@example.com", at=home), window=15 * 60)
        # Her laptop gets in: it signed in to this account before.
        assert attempt(laptop, "ada@example.com", at=home).status_code == 303
        # Another account from the attacked address is only under its address's limit.
        create_user("bob@example.com", PASSWORD)
        assert attempt(app.test_client(), "bob@example.com", at=second).status_code == 303

        # Never longer than the window: after it, the new browser gets in too.
        later(monkeypatch, 15 * 60 + 1)
        assert attempt(phone, "ada@example.com", at=home).status_code == 303


# --- SQLite's write lock ------------------------------------------------------------


@pytest.mark.sqlite_only
def test_reading_the_counters_does_not_wait_for_the_write_lock(tmp_path, database):
    with limited_app(tmp_path, database, SQLITE_BUSY_TIMEOUT_MS=200) as app:
        storage = ratelimit.DatabaseStorage()
        storage.incr("some-key", 60)
        with write_lock_held(app):
            assert storage.get("some-key") == 1
            assert storage.get_expiry("some-key") > time.time()
            assert storage.check()


@pytest.mark.sqlite_only
def test_signing_in_works_while_an_import_holds_the_write_lock(tmp_path, database, clock):
    """The password step of a two-factor account writes nothing: only the limits were
    in the way, when checking them took the write lock."""
    with limited_app(tmp_path, database, SQLITE_BUSY_TIMEOUT_MS=200) as app:
        twofactor_user(app, clock)
        client = app.test_client()
        token = client.csrf_token("/login")
        with write_lock_held(app):
            response = client.post(
                "/login",
                data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
                **HERE,
            )
            assert response.status_code == 303
            assert response.location == "/login/code"
        assert client.get("/login/code").status_code == 200


# --- every 429 says how long to wait ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/login", {"email": "ada@example.com", "password": "wrong"}),
        ("/register", {"email": "new@example.com", "password": "x", "confirm": "y"}),
        ("/forgot", {"email": "ada@example.com"}),
        ("/reset/not-a-token", {"password": "a new password", "confirm": "a new password"}),
        ("/invite/not-a-token", {"email": "new@example.com", "password": "x", "confirm": "y"}),
    ],
)
def test_every_limited_form_says_how_long_to_wait(tmp_path, database, url, data):
    with limited_app(tmp_path, database, RATELIMIT_LOGIN="1 per minute") as app:
        client = app.test_client()
        assert client.submit(url, data, **HERE).status_code != 429
        assert_says_how_long(client.submit(url, data, **HERE))
        # htmx gets the message in #flashes, and the header too.
        response = client.submit(url, data, htmx=True, **HERE)
        assert_says_how_long(response)
        assert response.headers["HX-Retarget"] == "#flashes"


def test_the_retry_after_check_can_fail(tmp_path, database, monkeypatch):
    """A 429 without Retry-After (as before issue 11) is caught by the checker."""
    import app.errors
    from app.errors import render_error

    monkeypatch.setattr(app.errors, "_too_many_requests", lambda error: render_error(429))
    with limited_app(tmp_path, database, RATELIMIT_LOGIN="1 per minute") as limited:
        client = limited.test_client()
        assert client.submit("/login", {"email": "a@example.com", "password": "x"}, **HERE)
        refused = client.submit("/login", {"email": "a@example.com", "password": "x"}, **HERE)
        assert refused.status_code == 429
        with pytest.raises(AssertionError):
            assert_says_how_long(refused)


def test_the_throttle_check_can_fail(tmp_path, database):
    """With the limits off (RATELIMIT_ENABLED, as the rest of the suite runs), the
    throttle tests' checker catches it."""
    unlimited = make_app(tmp_path, **database, RATELIMIT_LOGIN="1 per minute")
    with unlimited.app_context():
        client = unlimited.test_client()
        for _ in range(2):
            response = client.submit("/login", {"email": "a@example.com", "password": "x"}, **HERE)
        with pytest.raises(AssertionError):
            assert_says_how_long(response)
        db.session.remove()
        db.engine.dispose()


def test_the_code_steps_say_how_long_to_wait(tmp_path, database, clock):
    with limited_app(tmp_path, database, RATELIMIT_LOGIN="1 per minute") as app:
        ada = twofactor_user(app, clock)
        secret = ada.totp_secret
        signed_in = app.test_client()
        assert attempt(signed_in, ada, at=THERE).status_code == 303
        right = {"code": clock.code(secret)}
        assert signed_in.submit("/login/code", right, **THERE).status_code == 303
        for url, data in [
            ("/account/two-factor/disable", {"code": "000000"}),
            ("/account/two-factor/recovery-codes", {"password": "guess"}),
        ]:
            assert signed_in.submit(url, data, **THERE).status_code == 422, url
            assert_says_how_long(signed_in.submit(url, data, **THERE))
        assert db.session.get(User, ada.id).two_factor_enabled

        client = app.test_client()
        assert attempt(client, ada, at=HERE).status_code == 303
        assert client.submit("/login/code", {"code": "000000"}, **HERE).status_code == 422
        assert_says_how_long(client.submit("/login/code", {"code": "000000"}, **HERE))


def test_a_right_code_does_not_count(tmp_path, database, clock):
    with limited_app(tmp_path, database, RATELIMIT_LOGIN="1 per minute") as app:
        ada = twofactor_user(app, clock)
        client = app.test_client()
        for _ in range(3):
            assert attempt(client, ada, at=HERE).status_code == 303
            code = clock.code(ada.totp_secret)
            assert client.submit("/login/code", {"code": code}, **HERE).status_code == 303
            clock.tick()
            assert client.submit("/logout", headers=HTMX, **HERE).status_code in (200, 303)


# === production refuses a secret key that is long but predictable (from tests/test_app.py) ===


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("a" * 40, "uses only 1 different characters"),
        ("k" * 48, "uses only 1 different characters"),
        ("changeme" * 5, "uses only 7 different characters"),
        ("change-me-" * 4, "too predictable"),
        ("1234567890" * 4, "too predictable"),  # JSON would read it as a number: kept as text
        ("0" * 20 + "123456789abcdef" + "0" * 20, "too predictable"),
    ],
    ids=["a-40", "k-48", "changeme-5", "change-me-4", "digits-repeated", "mostly-zeros"],
)
def test_production_refuses_a_long_but_predictable_secret(tmp_path, monkeypatch, secret, why):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DOGEAR_ENV", "production")
    monkeypatch.setenv("DOGEAR_SECRET_KEY", secret)
    message = production_refuses_to_start(tmp_path, secret)
    assert why in message
    assert "DOGEAR_SECRET_KEY" in message
    assert "secrets.token_urlsafe(32)" in message and "openssl rand -hex 32" in message


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),  # what `openssl rand -hex 32` prints
        lambda: secrets.token_hex(32).upper(),
        lambda: "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(48)),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),  # `openssl rand -base64 32`
    ],
    ids=["token_urlsafe-32", "hex-32", "HEX-32", "random-48", "base64-32"],
)
def test_production_accepts_random_secrets_every_time(tmp_path, monkeypatch, make):
    from app.security import secret_weakness

    for _ in range(500):  # a chance repeat inside a random key must never refuse it
        key = make()
        assert secret_weakness(key) is None, key
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DOGEAR_ENV", "production")
    monkeypatch.setenv("DOGEAR_SECRET_KEY", key)
    assert create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"] == key


def production_refuses_to_start(tmp_path: Path, secret: str) -> str:
    """The checker: production (DOGEAR_ENV, DOGEAR_SECRET_KEY already set) refuses to
    start with `secret`; returns why."""
    try:
        create_app({"INSTANCE_PATH": str(tmp_path)})
    except RuntimeError as refused:
        return str(refused)
    raise AssertionError(f"production started with the secret {secret!r}")


def test_the_secret_strength_check_can_fail(tmp_path, monkeypatch):
    """With only the length checked (as before issue 11), the checker catches it."""
    import app.security

    monkeypatch.setattr(app.security, "secret_weakness", lambda key, *a: None)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DOGEAR_ENV", "production")
    monkeypatch.setenv("DOGEAR_SECRET_KEY", "a" * 40)
    with pytest.raises(AssertionError):
        production_refuses_to_start(tmp_path, "a" * 40)


# === sessions that really end, sign-in that gives nothing away (from tests/test_auth.py) ====


def _cookie_values(response) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        jar.update({name: morsel.value for name, morsel in cookie.items()})
    return jar


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_user):
    make_user("ada@example.com")
    wrong = sign_in(client, "ada@example.com", "not the password")
    unknown = sign_in(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 422
    assert "Email or password is not correct." in wrong.get_data(as_text=True)
    assert "Email or password is not correct." in unknown.get_data(as_text=True)


def test_logout_really_ends_the_session(app: Flask, make_user):
    make_user("ada@example.com")
    a_copied_cookie_dies_with_sign_out(app)


def a_copied_cookie_dies_with_sign_out(app: Flask) -> None:
    """The checker: once Ada signs out, a copy of her session cookie signs in nobody."""
    client = app.test_client()
    sign_in(client, "ada@example.com")
    stolen = client.get_cookie("session").value
    assert client.get("/list").status_code == 200

    client.submit("/logout")
    assert client.get("/list").status_code == 302

    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/list").status_code == 302  # the copied cookie no longer signs in


def test_the_sign_out_check_can_fail(app: Flask, make_user, monkeypatch):
    """If signing out only cleared the browser's cookie (the server-side session row
    left in place), the checker catches it."""
    make_user("ada@example.com")
    monkeypatch.setattr(services, "end_login_session", lambda token, **kwargs: None)
    with pytest.raises(AssertionError):
        a_copied_cookie_dies_with_sign_out(app)


def test_remember_me_cookie_is_refused_after_logout(app: Flask, make_user):
    make_user("ada@example.com")
    client = app.test_client()
    response = sign_in(client, "ada@example.com", remember="y")
    remember = _cookie_values(response)["remember_token"]

    fresh = app.test_client()
    fresh.set_cookie("remember_token", remember)
    assert fresh.get("/list").status_code == 200  # remember-me works on its own

    client.submit("/logout")
    replay = app.test_client()
    replay.set_cookie("remember_token", remember)
    assert replay.get("/list").status_code == 302


def test_session_is_renewed_at_login(app: Flask, make_user):
    make_user("ada@example.com")
    client = app.test_client()
    client.get("/login")
    before = client.get_cookie("session").value
    sign_in(client, "ada@example.com")
    assert client.get_cookie("session").value != before


def test_change_password_signs_out_other_devices(app: Flask, make_user):
    make_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "ada@example.com")
    sign_in(phone, "ada@example.com")
    response = laptop.submit(
        "/account",
        {"current": PASSWORD, "password": "a brand new secret", "confirm": "a brand new secret"},
    )
    assert response.status_code == 303
    assert laptop.get("/list").status_code == 200
    assert phone.get("/list").status_code == 302
    laptop.submit("/logout")
    assert sign_in(laptop, "ada@example.com", "a brand new secret").status_code == 303


def test_login_throttling_holds_across_workers(tmp_path, database):
    """The counters live in the database, not in one worker's memory: a second app
    (as a second gunicorn worker would be) sees the attempts made through the first."""
    from tests.conftest import make_app

    limits = {"RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "3 per minute", **database}
    first = make_app(tmp_path, **limits)
    with first.app_context():
        client = first.test_client()
        statuses = [sign_in(client, "x@example.com", "wrong").status_code for _ in range(3)]
        assert statuses == [422, 422, 422]
        db.session.remove()
        db.engine.dispose()
    second = make_app(tmp_path, **limits)
    with second.app_context():
        response = sign_in(second.test_client(), "x@example.com", "wrong")
        assert response.status_code == 429
        assert "Too many attempts" in response.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()

"""Login sessions with a lifetime: idle and absolute limits enforced on the server,
last-seen written every few minutes only, and the Account page's list of signed-in
browsers with a button to end each."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from sqlalchemy import event, func, select, update

from app.auth import sessions
from app.auth.sessions import describe_user_agent, purge_expired_sessions
from app.extensions import db
from app.jobs import huey
from app.models import AuditEvent, LoginSession, User, utcnow
from tests.conftest import HTMX, PASSWORD

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

"""Sign-in throttling (app/auth/throttle.py) and its counters in the database
(app/ratelimit.py): failures only, per address and per account, every 429 saying how
long to wait, shared by workers, and never waiting for SQLite's write lock to read."""

from __future__ import annotations

import sqlite3
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import ratelimit
from app.auth.services import create_user
from app.extensions import db
from app.models import User
from tests.conftest import HTMX, PASSWORD, make_app
from tests.test_twofactor import Clock, twofactor_user

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


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


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

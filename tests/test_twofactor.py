"""Two-factor sign-in: set-up with a QR code, the code step of signing in (codes that
are wrong, too old or used already), recovery codes, turning it off, the throttle, and
the site setting that requires it for admins."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from flask import Flask
from sqlalchemy import func, select

from app.auth import twofactor
from app.extensions import db
from app.models import AuditEvent, LoginSession, Setting, User
from tests.conftest import HTMX, PASSWORD, run_concurrently, sign_in

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


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


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

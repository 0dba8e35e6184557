"""Behind a reverse proxy: which client address, scheme and host Dogear believes.

Every request goes through the whole WSGI stack (ProxyFix, the trusted-hosts check,
Flask) with the test client; `REMOTE_ADDR` is the peer gunicorn sees (the proxy, or a
client reaching gunicorn directly) and the `X-Forwarded-*` headers are what arrived.
With DOGEAR_PROXY_FIX=0 the headers change nothing; with n, only the values the n
proxies added are believed, so an entry the client wrote itself never counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.auth.services import create_user
from app.extensions import db
from app.models import LoginSession
from tests.conftest import PASSWORD, make_app, sign_in
from tests.test_pwa import bookmarklet_code

PROXY = "127.0.0.1"  # nginx or Caddy on the same machine, as gunicorn sees it
READER = "203.0.113.9"  # the reader's real address, as the proxy saw it
FORGED = "198.51.100.66"  # what a client writes into X-Forwarded-For itself


@pytest.fixture
def proxied(tmp_path, database) -> Iterator[Callable[..., Flask]]:
    """Make the app with some settings (PROXY_FIX, TRUSTED_HOSTS, ...) over this test's
    database, inside its app context; one app per test."""
    made: list[Any] = []

    def make(**config: Any) -> Flask:
        app = make_app(tmp_path, **database, **config)
        context = app.app_context()
        context.push()
        made.append(context)
        return app

    yield make
    for context in made:
        db.session.remove()
        db.engine.dispose()
        context.pop()


def _environ(remote_addr: str, headers: dict[str, str]) -> dict[str, str]:
    environ = {"REMOTE_ADDR": remote_addr}
    environ.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return environ


def _client(app: Flask, remote_addr: str, **headers: str) -> Any:
    """A browser whose every request reaches gunicorn from `remote_addr`, with `headers`."""
    client = app.test_client()
    client.environ_base.update(
        _environ(remote_addr, {k.replace("_", "-"): v for k, v in headers.items()})
    )
    return client


def _session_addresses(email: str) -> list[str]:
    rows = db.session.scalars(select(LoginSession).join(LoginSession.user).filter_by(email=email))
    return [row.ip for row in rows]


def _new_reader(email: str = "ada@example.com") -> str:
    create_user(email, PASSWORD)
    db.session.commit()
    return email


# --- the client address: the sessions list and the sign-in throttle ---------------------


def test_without_proxy_fix_a_forwarded_for_header_changes_nothing(proxied):
    app = proxied(PROXY_FIX=0)
    email = _new_reader()
    client = _client(app, READER, X_Forwarded_For=FORGED)
    assert sign_in(client, email).status_code == 303
    assert _session_addresses(email) == [READER]
    page = client.get("/account").get_data(as_text=True)
    assert READER in page and FORGED not in page


def test_with_one_proxy_the_address_it_added_is_the_readers(proxied):
    """nginx appends the address it saw to what the client sent: only that last entry
    is believed, the client's own entry in front of it is not."""
    app = proxied(PROXY_FIX=1)
    email = _new_reader()
    client = _client(app, PROXY, X_Forwarded_For=f"{FORGED}, {READER}")
    assert sign_in(client, email).status_code == 303
    assert _session_addresses(email) == [READER]
    page = client.get("/account").get_data(as_text=True)
    assert READER in page and FORGED not in page and f"· {PROXY}" not in page


def test_with_two_proxies_the_address_the_outer_one_saw_is_the_readers(proxied):
    app = proxied(PROXY_FIX=2)
    email = _new_reader()
    load_balancer = "10.0.0.2"
    client = _client(app, PROXY, X_Forwarded_For=f"{FORGED}, {READER}, {load_balancer}")
    assert sign_in(client, email).status_code == 303
    assert _session_addresses(email) == [READER]


def _attempts(app: Flask, remote_addr: str, forwarded_for: list[str]) -> list[int]:
    """A wrong password sent once per X-Forwarded-For value; the status codes."""
    statuses = []
    for value in forwarded_for:
        client = _client(app, remote_addr, X_Forwarded_For=value)
        statuses.append(sign_in(client, "ada@example.com", "wrong password").status_code)
    return statuses


THROTTLED = {"RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "2 per minute"}


def test_without_proxy_fix_a_new_forwarded_for_does_not_escape_the_throttle(proxied):
    app = proxied(PROXY_FIX=0, **THROTTLED)
    _new_reader()
    forged = [f"198.51.100.{n}" for n in range(1, 4)]
    assert _attempts(app, READER, forged) == [422, 422, 429]


def test_with_one_proxy_a_forged_first_entry_does_not_escape_the_throttle(proxied):
    app = proxied(PROXY_FIX=1, **THROTTLED)
    _new_reader()
    forged = [f"198.51.100.{n}, {READER}" for n in range(1, 4)]
    assert _attempts(app, PROXY, forged) == [422, 422, 429]
    # Another reader behind the same proxy has attempts of their own.
    assert _attempts(app, PROXY, ["192.0.2.44"]) == [422]


# --- the scheme and host: links Dogear builds with url_for(_external=True) -------------


def _bookmarklet_base(client: Any) -> str:
    code, _ = bookmarklet_code(client.get("/account").get_data(as_text=True))
    return code


def test_without_proxy_fix_forwarded_proto_and_host_change_no_link(proxied):
    app = proxied(PROXY_FIX=0)
    email = _new_reader()
    client = _client(app, READER, X_Forwarded_Proto="https", X_Forwarded_Host="evil.example")
    assert sign_in(client, email).status_code == 303
    code = _bookmarklet_base(client)
    assert '"http://localhost/list/add?url="' in code and "evil.example" not in code


def test_with_one_proxy_links_use_the_scheme_and_host_it_forwarded(proxied):
    app = proxied(PROXY_FIX=1)
    email = _new_reader()
    client = _client(
        app,
        PROXY,
        X_Forwarded_For=READER,
        X_Forwarded_Proto="https",
        # A proxy that appends rather than replaces: the client's own value is first.
        X_Forwarded_Host="evil.example, read.example.org",
        Referer="https://read.example.org/login",  # Flask-WTF checks it on HTTPS posts
    )
    assert sign_in(client, email).status_code == 303
    code = _bookmarklet_base(client)
    assert '"https://read.example.org/list/add?url="' in code and "evil.example" not in code


# --- TRUSTED_HOSTS: a request for another host is a clear 400 ---------------------------


def _refused(response: Any) -> bool:
    body = response.get_data(as_text=True)
    return (
        response.status_code == 400
        and response.mimetype == "text/plain"
        and "does not answer to that host name" in body
        and "DOGEAR_TRUSTED_HOSTS" in body
    )


@pytest.mark.parametrize("testing", [True, False], ids=["testing", "as-in-production"])
def test_a_host_not_trusted_is_a_400_not_a_500(proxied, testing):
    app = proxied(TRUSTED_HOSTS=["read.example.org"], TESTING=testing)
    client = app.test_client()
    assert _refused(client.get("/login", headers={"Host": "evil.example"}))
    assert _refused(client.get("/static/css/dogear.css", headers={"Host": "evil.example"}))
    assert _refused(client.get("/login", headers={"Host": "read.example.org.evil.example"}))
    assert client.get("/login", headers={"Host": "read.example.org"}).status_code == 200
    assert client.get("/login", headers={"Host": "read.example.org:8443"}).status_code == 200


def test_a_post_to_a_host_not_trusted_changes_nothing(proxied):
    app = proxied(TRUSTED_HOSTS="read.example.org")
    client = app.test_client()
    response = client.post(
        "/register",
        data={"email": "new@example.com", "password": PASSWORD, "confirm": PASSWORD},
        headers={"Host": "evil.example"},
    )
    assert _refused(response)
    assert _session_addresses("new@example.com") == []


def test_a_leading_dot_trusts_every_subdomain(proxied):
    app = proxied(TRUSTED_HOSTS=".example.org")
    client = app.test_client()
    assert client.get("/login", headers={"Host": "read.example.org"}).status_code == 200
    assert client.get("/login", headers={"Host": "example.org"}).status_code == 200
    assert _refused(client.get("/login", headers={"Host": "example.org.evil.example"}))


def test_with_one_proxy_the_forwarded_host_is_the_one_checked(proxied):
    """gunicorn's own Host (127.0.0.1:8000, from proxy_pass) need not be trusted; the
    host the proxy forwarded must be."""
    app = proxied(PROXY_FIX=1, TRUSTED_HOSTS=["read.example.org"])
    upstream = {"Host": "127.0.0.1:8000"}
    ok = _client(app, PROXY, X_Forwarded_For=READER, X_Forwarded_Host="read.example.org")
    assert ok.get("/login", headers=upstream).status_code == 200
    bad = _client(app, PROXY, X_Forwarded_For=READER, X_Forwarded_Host="evil.example")
    assert _refused(bad.get("/login", headers=upstream))


def test_without_proxy_fix_a_forwarded_host_cannot_vouch_for_a_bad_host(proxied):
    app = proxied(PROXY_FIX=0, TRUSTED_HOSTS=["read.example.org"])
    client = _client(app, READER, X_Forwarded_Host="read.example.org")
    assert _refused(client.get("/login", headers={"Host": "evil.example"}))
    client = _client(app, READER, X_Forwarded_Host="evil.example")
    assert client.get("/login", headers={"Host": "read.example.org"}).status_code == 200


def test_without_trusted_hosts_any_host_is_answered(proxied):
    """The default, so nothing changes for a Dogear that hasn't set it."""
    app = proxied()
    assert app.config["TRUSTED_HOSTS"] is None
    response = app.test_client().get("/login", headers={"Host": "anything.example"})
    assert response.status_code == 200

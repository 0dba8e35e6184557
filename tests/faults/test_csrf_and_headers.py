"""CSRF and headers: forged and stale forms, response headers, and what a reverse proxy
may make Dogear believe (issue 11's fault and attack suite).

Protections proven here, with the issue 11 case each test covers ("case:") and the
test that shows its checker can fail ("can fail:"):

- CSRF on every route: a POST without a token changes nothing, on every POST route
  of the url map (`test_every_post_route_refuses_a_request_without_a_token`; can fail:
  `test_the_csrf_check_can_fail`, Flask-WTF's WTF_CSRF_ENABLED off).
- CSRF across tabs and over time: case "two pages opened at the same moment right
  after signing in get different CSRF secrets" (`test_two_tabs_opened_right_after_*`);
  a new secret at sign-in; an expired token gets a message and a fresh form, never
  silence (`test_an_expired_*`, `test_a_button_with_an_expired_token_*`).
- `Vary: HX-Request` on answers with two renderings: case "`/list` for htmx,
  redirects of `/list` and `/list/post/<id>` lack `Vary: HX-Request`"
  (`test_list_redirects_vary_on_hx_request`, `test_every_redirect_says_it_varies_*`).
- Strict Content-Security-Policy, nosniff and the other headers on every answer
  (`test_strict_content_security_policy_on_every_page`,
  `test_every_kind_of_answer_carries_the_strict_headers`; can fail:
  `test_the_header_check_can_fail`, the after-request hook removed), no inline scripts.
- Behind a proxy: ProxyFix believes only the configured hops (client address for the
  sessions list and the throttle, scheme and host for links); trusted hosts answer a
  clear 400, never a 500 (`test_a_host_not_trusted_is_a_400_not_a_500`; can fail:
  `test_the_trusted_hosts_check_can_fail`, the middleware left out).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_wtf.csrf
import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from app.auth.services import create_user
from app.errors import EXPIRED_FORM
from app.extensions import db
from app.models import Entry, LoginSession
from tests.conftest import HTMX, PASSWORD, make_app, sign_in
from tests.test_pwa import bookmarklet_code

_TOKEN = re.compile(
    r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"|"X-CSRFToken": "([^"]+)"'
)


def token_on(page: Any) -> str:
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match, "no token on the page"
    return match.group(1) or match.group(2)


def two_tabs_at_once(client: Any, first: str, second: str) -> tuple[str, str]:
    """Open two pages as two tabs opened at the same moment would: both requests carry
    the same cookie, and the cookie the second answer sets is the one kept."""
    cookie = client.get_cookie("session")
    one = token_on(client.get(first))
    client.set_cookie(
        "session", cookie.value
    )  # the second request left before the first came back
    two = token_on(client.get(second))
    return one, two


@pytest.fixture
def timed_app(tmp_path: Path, database: dict[str, Any]) -> Iterator[Flask]:
    """Tokens that expire after an hour (WTF_CSRF_TIME_LIMIT)."""
    app = make_app(tmp_path, **database, WTF_CSRF_TIME_LIMIT=3600)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def hours_ago(monkeypatch: pytest.MonkeyPatch, hours: float) -> None:
    """CSRF tokens made from now on are stamped `hours` ago (a tab left open that
    long); the session cookie is signed as usual."""
    stamp = int(time.time() - hours * 3600)

    class Backdated(URLSafeTimedSerializer):
        def make_signer(self, salt: Any = None) -> Any:
            signer = super().make_signer(salt)
            signer.get_timestamp = lambda: stamp
            return signer

    monkeypatch.setattr(flask_wtf.csrf, "URLSafeTimedSerializer", Backdated)


# --- tabs ---------------------------------------------------------------------------


def test_two_tabs_opened_right_after_signing_in_share_a_token(client, make_user, make_post):
    make_user("ada@example.com")
    posts = [make_post(), make_post()]
    assert sign_in(client, "ada@example.com").status_code == 303
    one, two = two_tabs_at_once(client, "/list", f"/posts/{posts[0].id}")
    for token, post in zip((one, two), posts, strict=True):
        response = client.post(f"/list/save/{post.id}", data={"csrf_token": token})
        assert response.status_code == 303, response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Entry)) == 2


def test_two_tabs_opened_right_after_signing_out_share_a_token(client, make_user):
    make_user("ada@example.com")
    assert sign_in(client, "ada@example.com").status_code == 303
    assert client.submit("/logout").status_code == 303
    one, _two = two_tabs_at_once(client, "/login", "/")
    data = {"email": "ada@example.com", "password": PASSWORD, "csrf_token": one}
    assert client.post("/login", data=data).status_code == 303


def test_signing_in_starts_a_new_csrf_secret(client, make_user):
    """The secret of the signed-out visitor (which another could have planted) ends."""
    make_user("ada@example.com")
    before = token_on(client.get("/login"))
    assert sign_in(client, "ada@example.com").status_code == 303
    response = client.post("/account/sign-out-everywhere", data={"csrf_token": before})
    assert response.status_code == 400


# --- expired tokens -----------------------------------------------------------------


def test_an_expired_sign_in_form_comes_back_with_a_message(timed_app, make_user, monkeypatch):
    make_user("ada@example.com")
    client = timed_app.test_client()
    hours_ago(monkeypatch, 5)
    stale = token_on(client.get("/login"))
    monkeypatch.undo()
    data = {"email": "ada@example.com", "password": PASSWORD, "csrf_token": stale}
    response = client.post("/login", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert html.escape(EXPIRED_FORM) in page
    assert 'value="ada@example.com"' in page  # what was typed, kept
    assert PASSWORD not in page  # but never the password
    assert client.get("/list").status_code == 302  # nobody signed in
    data["csrf_token"] = token_on(response)
    assert client.post("/login", data=data).status_code == 303


def test_an_expired_form_of_a_signed_in_reader_comes_back_with_a_message(
    timed_app, make_user, monkeypatch
):
    make_user("ada@example.com")
    client = timed_app.test_client()
    assert sign_in(client, "ada@example.com").status_code == 303
    hours_ago(monkeypatch, 2)
    stale = token_on(client.get("/account"))
    monkeypatch.undo()
    new = {"current": PASSWORD, "password": "a brand new one", "confirm": "a brand new one"}
    response = client.post("/account", data={**new, "csrf_token": stale})
    assert response.status_code == 400
    assert html.escape(EXPIRED_FORM) in response.get_data(as_text=True)
    assert sign_in(timed_app.test_client(), "ada@example.com").status_code == 303  # unchanged
    response = client.post("/account", data={**new, "csrf_token": token_on(response)})
    assert response.status_code == 303


def test_an_expired_token_under_htmx_says_so_in_the_flashes(
    timed_app, make_user, make_post, monkeypatch
):
    make_user("ada@example.com")
    post = make_post()
    client = timed_app.test_client()
    assert sign_in(client, "ada@example.com").status_code == 303
    hours_ago(monkeypatch, 2)
    stale = token_on(client.get("/list"))
    monkeypatch.undo()
    response = client.post(f"/list/save/{post.id}", headers={**HTMX, "X-CSRFToken": stale})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#flashes"
    assert "Your form expired" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Entry)) == 0


def test_a_button_with_an_expired_token_gets_an_error_page_not_silence(
    timed_app, make_user, make_post, monkeypatch
):
    make_user("ada@example.com")
    post = make_post()
    client = timed_app.test_client()
    assert sign_in(client, "ada@example.com").status_code == 303
    hours_ago(monkeypatch, 2)
    stale = token_on(client.get("/list"))
    monkeypatch.undo()
    response = client.post(f"/list/save/{post.id}", data={"csrf_token": stale})
    assert response.status_code == 400
    assert "Your form expired" in response.get_data(as_text=True)


# --- every route that changes something needs the token ---------------------------------


def every_post_route_needs_a_token(app: Flask, client: Any) -> None:
    """The checker: every POST route Dogear has, sent by a signed-in admin without a
    token, changes nothing. htmx gets a 400 everywhere; a plain form gets a 400, or for
    a form that comes back with a fresh token (`resends_expired_form`) that form again
    or where it would go (a 400, or 302/303/403/404 when there is no form for this
    admin to see). The admin is still signed in afterwards (no /logout, no deletion)."""
    routes = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())]
    assert len(routes) > 40  # the walk found them all
    for rule in routes:
        url = re.sub(r"<[^>]+>", "1", rule.rule)
        refused = client.post(url, data={"email": "x@example.com"}, headers=HTMX)
        assert refused.status_code == 400, f"htmx POST {rule.rule}: {refused.status_code}"
        refused = client.post(url, data={"email": "x@example.com"})
        view = app.view_functions[rule.endpoint]
        allowed = {400, 302, 303, 403, 404} if getattr(view, "resends_expired_form", 0) else {400}
        assert refused.status_code in allowed, f"POST {rule.rule}: {refused.status_code}"
    assert client.get("/admin/users").status_code == 200


def test_every_post_route_refuses_a_request_without_a_token(app, client, admin):
    every_post_route_needs_a_token(app, client)


def test_the_csrf_check_can_fail(app, client, admin):
    """With Flask-WTF's check switched off (its own WTF_CSRF_ENABLED), the checker
    catches it."""
    app.config["WTF_CSRF_ENABLED"] = False
    with pytest.raises(AssertionError):
        every_post_route_needs_a_token(app, client)


# --- Vary -----------------------------------------------------------------------------


def test_list_redirects_vary_on_hx_request(client, reader, make_post):
    post = make_post()
    saved = client.submit(f"/list/save/{post.id}")
    assert saved.status_code == 303
    entry_id = db.session.scalar(select(Entry.id))
    for response in (
        saved,
        client.get(f"/list/post/{post.id}"),
        client.get(f"/list/{entry_id}"),
        client.get("/list"),
        client.htmx_get("/list"),
        client.submit("/list/add", {"url": "https://example.com/a"}, htmx=True),
    ):
        assert "HX-Request" in response.headers.get("Vary", ""), response.request.path


def test_every_redirect_says_it_varies_by_hx_request(app):
    """Not only the list's: a redirect of any feature (here the sign-in redirects of
    the account, tags and admin pages) is marked, so no cache hands an htmx answer to
    a plain request or the other way round."""
    visitor = app.test_client()
    for path in ("/account", "/list/tags", "/admin/users", "/account/import"):
        response = visitor.get(path)
        assert response.status_code in (301, 302, 303), path
        assert "HX-Request" in response.headers.get("Vary", ""), path


# --- Content-Security-Policy and the other headers (from tests/test_app.py) ----------


def assert_strict_headers(response: Any) -> None:
    """The checker: the strict CSP and the other headers every answer carries."""
    csp = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


def test_strict_content_security_policy_on_every_page(client):
    assert_strict_headers(client.get("/"))


def test_every_kind_of_answer_carries_the_strict_headers(client, reader):
    """Pages, fragments, errors, redirects, JSON and static files alike."""
    for response in (
        client.get("/list"),
        client.htmx_get("/list"),
        client.get("/posts/424242"),  # a 404 page
        client.submit("/list/424242/progress", {"progress": "5"}, htmx=True),  # inline 404
        client.post("/list/add", data={"url": "https://example.org/"}),  # no token: 400
        client.get("/list/post/424242"),
        client.get("/healthz"),
        client.get("/static/css/dogear.css"),
    ):
        assert_strict_headers(response)


def test_the_header_check_can_fail(app, client):
    """Without the after-request hook that sets them, the checker catches it."""
    from app.security import set_security_headers

    app.after_request_funcs[None].remove(set_security_headers)
    with pytest.raises(AssertionError):
        assert_strict_headers(client.get("/"))


def test_pages_have_no_inline_scripts_and_htmx_is_configured_safely(client):
    html = client.get("/").get_data(as_text=True)
    assert '<script src="/static/vendor/htmx.min.js"' in html
    assert "<script>" not in html and " onclick=" not in html
    assert '"allowEval": false' in html and '"allowScriptTags": false' in html
    assert '"historyRestoreAsHxRequest": false' in html


# === behind a reverse proxy (was tests/test_proxy.py) ==================================

# Behind a reverse proxy: which client address, scheme and host Dogear believes.
#
# Every request goes through the whole WSGI stack (ProxyFix, the trusted-hosts check,
# Flask) with the test client; `REMOTE_ADDR` is the peer gunicorn sees (the proxy, or a
# client reaching gunicorn directly) and the `X-Forwarded-*` headers are what arrived.
# With DOGEAR_PROXY_FIX=0 the headers change nothing; with n, only the values the n
# proxies added are believed, so an entry the client wrote itself never counts.

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
    only_trusted_hosts_are_answered(proxied(TRUSTED_HOSTS=["read.example.org"], TESTING=testing))


def only_trusted_hosts_are_answered(app: Flask) -> None:
    """The checker, for an app that trusts read.example.org only."""
    client = app.test_client()
    assert _refused(client.get("/login", headers={"Host": "evil.example"}))
    assert _refused(client.get("/static/css/dogear.css", headers={"Host": "evil.example"}))
    assert _refused(client.get("/login", headers={"Host": "read.example.org.evil.example"}))
    assert client.get("/login", headers={"Host": "read.example.org"}).status_code == 200
    assert client.get("/login", headers={"Host": "read.example.org:8443"}).status_code == 200


def test_the_trusted_hosts_check_can_fail(proxied, monkeypatch):
    """With the middleware that refuses other hosts left out (and Flask's own check,
    which would fail as a 500 without it), the checker catches it."""
    import app.security

    monkeypatch.setattr(app.security, "TrustedHostsMiddleware", lambda wsgi_app, hosts: wsgi_app)
    unprotected = proxied(TRUSTED_HOSTS=["read.example.org"])
    unprotected.config["TRUSTED_HOSTS"] = None
    with pytest.raises(AssertionError):
        only_trusted_hosts_are_answered(unprotected)


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

"""CSRF tokens across tabs and over time, plus the rest of the hardening issue:
`dogear users create` checks the address, and `/list` answers vary on HX-Request."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_wtf.csrf
import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from app.errors import EXPIRED_FORM
from app.extensions import db
from app.models import Entry, User
from tests.conftest import HTMX, PASSWORD, make_app, sign_in

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


# --- `dogear users create` ----------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["<img src=x onerror=alert(1)>@example.com", "no-at-sign", "a@b@example.com"]
)
def test_users_create_refuses_what_the_forms_refuse(app: Flask, address: str):
    result = app.test_cli_runner().invoke(
        args=["users", "create", address], input="a long password\n"
    )
    assert result.exit_code != 0
    assert "is not a valid email address" in result.output
    assert "Enter an email address like name@example.com." in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_takes_a_good_address(app: Flask):
    result = app.test_cli_runner().invoke(
        args=["users", "create", " Ada@Example.com "], input="a long password\n"
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User.email)) == "ada@example.com"


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

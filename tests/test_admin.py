"""Admin: the users page. Readers get 403; the last admin can't be removed."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.services import registration_mode
from app.extensions import db
from app.models import User


def test_readers_get_403_on_every_admin_page(client, reader, make_user):
    other = make_user()
    assert client.get("/admin/users").status_code == 403
    assert client.submit("/admin/users", {"email": "x@example.com"}).status_code == 403
    assert client.submit(f"/admin/users/{other.id}/admin", {"is_admin": "1"}).status_code == 403
    assert client.submit(f"/admin/users/{other.id}/disabled", {"disabled": "1"}).status_code == 403
    assert client.submit("/admin/settings/registration", {"mode": "open"}).status_code == 403
    db.session.refresh(other)
    assert not other.is_admin and not other.is_disabled


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/users")
    assert response.status_code == 302 and "/login" in response.location


def test_users_page_lists_accounts_with_role_and_status(client, admin, make_user):
    make_user("reader@example.com")
    make_user("gone@example.com", is_disabled=True)
    html = client.get("/admin/users").get_data(as_text=True)
    assert "reader@example.com" in html and "gone@example.com" in html
    assert "Disabled" in html and "Admin" in html


def test_user_search_with_htmx_returns_rows(client, admin, make_user):
    make_user("alice@example.com")
    make_user("bob@example.com")
    response = client.htmx_get("/admin/users?q=alice")
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="user-rows"')
    assert "alice@example.com" in html and "bob@example.com" not in html


def test_admin_creates_an_account_that_can_sign_in(app, client, admin):
    response = client.submit(
        "/admin/users",
        {"email": "new@example.com", "password": "first password", "confirm": "first password"},
    )
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user is not None and not user.is_admin
    other = app.test_client()
    from tests.conftest import sign_in

    assert sign_in(other, "new@example.com", "first password").status_code == 303


def test_create_account_validation_is_422_and_keeps_input(client, admin, make_user):
    make_user("taken@example.com")
    response = client.submit(
        "/admin/users",
        {"email": "taken@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "already exists" in html and 'value="taken@example.com"' in html
    bad = client.submit("/admin/users", {"email": "nope", "password": "x", "confirm": "x"})
    assert bad.status_code == 422


def test_make_and_unmake_admin_but_never_the_last(client, admin, make_user):
    reader = make_user()
    client.submit(f"/admin/users/{reader.id}/admin", {"is_admin": "1"})
    db.session.refresh(reader)
    assert reader.is_admin
    client.submit(f"/admin/users/{reader.id}/admin", {"is_admin": "0"})
    db.session.refresh(reader)
    assert not reader.is_admin
    response = client.submit(
        f"/admin/users/{admin.id}/admin", {"is_admin": "0"}, follow_redirects=True
    )
    assert "at least one admin" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.is_admin


def test_disable_and_enable(client, admin, make_user):
    reader = make_user()
    client.submit(f"/admin/users/{reader.id}/disabled", {"disabled": "1"})
    db.session.refresh(reader)
    assert reader.is_disabled
    client.submit(f"/admin/users/{reader.id}/disabled", {"disabled": "0"})
    db.session.refresh(reader)
    assert not reader.is_disabled


def test_admin_cannot_disable_themself(client, admin):
    response = client.submit(
        f"/admin/users/{admin.id}/disabled", {"disabled": "1"}, follow_redirects=True
    )
    assert "disable your own account" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert not admin.is_disabled


def test_unknown_user_is_404(client, admin):
    assert client.submit("/admin/users/9999/disabled", {"disabled": "1"}).status_code == 404


def test_registration_mode_setting(client, admin):
    assert registration_mode() == "invite"
    client.submit("/admin/settings/registration", {"mode": "open"})
    assert registration_mode() == "open"
    response = client.submit(
        "/admin/settings/registration", {"mode": "everyone!"}, follow_redirects=True
    )
    assert "Choose who can create an account." in response.get_data(as_text=True)
    assert registration_mode() == "open"

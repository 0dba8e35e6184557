"""Accounts: sign in/out, sessions that really end, first-run set-up, registration."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from app.auth import services
from app.extensions import db
from app.models import User
from tests.conftest import PASSWORD, sign_in


def test_sign_in_lands_on_browse_and_shows_the_reader(client, make_user):
    make_user("ada@example.com")
    response = sign_in(client, "ADA@example.com ")
    assert response.status_code == 303
    assert response.location == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Sign out" in page and "My list" in page


def test_empty_login_form_is_422_with_messages(client):
    response = client.submit("/login", {"email": "", "password": ""})
    assert response.status_code == 422
    assert "This field is required." in response.get_data(as_text=True)


def test_next_only_redirects_within_the_site(client, make_user):
    make_user("ada@example.com")
    for evil in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]:
        response = sign_in(client, "ada@example.com", next=evil)
        assert response.location == "/", evil
        client.submit("/logout")
    response = sign_in(client, "ada@example.com", next="/list?state=done")
    assert response.location == "/list?state=done"


def test_login_page_carries_next_from_a_protected_page(client):
    response = client.get("/list?state=done")
    assert response.status_code == 302
    assert "/login?next=/list?state%3Ddone" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert 'value="/list?state=done"' in page


def test_change_password_validates(client, reader):
    wrong = client.submit(
        "/account", {"current": "nope", "password": "new password 1", "confirm": "new password 1"}
    )
    assert wrong.status_code == 422
    assert "current password is not correct" in wrong.get_data(as_text=True)
    short = client.submit(
        "/account", {"current": PASSWORD, "password": "short", "confirm": "short"}
    )
    assert short.status_code == 422
    assert "at least 8 characters" in short.get_data(as_text=True)


def test_passwords_are_hashed_with_a_modern_kdf(make_user):
    user = make_user("ada@example.com")
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


# --- first run -------------------------------------------------------------------


def test_setup_link_creates_the_first_admin_once(client):
    token = services.issue_setup_token()
    assert token
    page = client.get(f"/setup/{token}")
    assert page.status_code == 200
    response = client.submit(
        f"/setup/{token}",
        {
            "email": "boss@example.com",
            "password": "the admin secret",
            "confirm": "the admin secret",
        },
    )
    assert response.status_code == 303
    assert response.location == "/admin/users"
    assert db.session.scalar(select(User).where(User.email == "boss@example.com")).is_admin
    assert client.get("/admin/users").status_code == 200
    # The link died with its use, and no new one is issued while an admin exists.
    assert client.get(f"/setup/{token}").status_code == 404
    assert services.issue_setup_token() is None


def test_setup_rejects_a_wrong_token(client):
    services.issue_setup_token()
    assert client.get("/setup/not-the-token").status_code == 404
    response = client.submit(
        "/setup/not-the-token",
        {"email": "x@example.com", "password": "the admin secret", "confirm": "the admin secret"},
    )
    assert response.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_a_new_setup_link_replaces_the_old_one(client):
    old = services.issue_setup_token()
    new = services.issue_setup_token()
    assert client.get(f"/setup/{old}").status_code == 404
    assert client.get(f"/setup/{new}").status_code == 200


def test_setup_form_errors_are_422(client):
    token = services.issue_setup_token()
    response = client.submit(
        f"/setup/{token}", {"email": "not-an-email", "password": "x", "confirm": "y"}
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Enter an email address" in text and "at least 8 characters" in text


# --- registration ----------------------------------------------------------------


def test_registration_is_invite_only_by_default(client):
    assert client.get("/register").status_code == 403
    response = client.submit(
        "/register",
        {"email": "a@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_open_registration_creates_a_reader(client):
    services.set_setting("registration", "open")
    response = client.submit(
        "/register",
        {"email": "new@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user is not None and not user.is_admin
    assert client.get("/list").status_code == 200


def test_registering_a_taken_email_is_422(client, make_user):
    make_user("taken@example.com")
    services.set_setting("registration", "open")
    response = client.submit(
        "/register",
        {"email": "Taken@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_disabled_user_is_signed_out_and_cannot_sign_in(app: Flask, make_user):
    admin = make_user("boss@example.com", is_admin=True)
    reader = make_user("ada@example.com")
    reader_client, admin_client = app.test_client(), app.test_client()
    sign_in(reader_client, "ada@example.com")
    sign_in(admin_client, admin.email)
    assert reader_client.get("/list").status_code == 200

    admin_client.submit(f"/admin/users/{reader.id}/disabled", {"disabled": "1"})
    assert reader_client.get("/list").status_code == 302
    response = sign_in(reader_client, "ada@example.com")
    assert response.status_code == 422


def test_a_disabled_account_is_told_so_only_with_the_right_password(client, make_user):
    make_user("gone@example.com", is_disabled=True)
    wrong = sign_in(client, "gone@example.com", "not the password")
    assert "Email or password is not correct." in wrong.get_data(as_text=True)
    right = sign_in(client, "gone@example.com")
    assert right.status_code == 422
    assert "This account is disabled" in right.get_data(as_text=True)


def test_long_passwords_get_a_clear_message_and_no_silent_cut(client, reader):
    long = "x" * 300
    response = client.submit("/account", {"current": PASSWORD, "password": long, "confirm": long})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Use at most 256 characters." in html and "maxlength" not in html


# --- registration modes, the sign-in page's hints ------------------------------------


def test_closed_registration_says_so_and_points_to_invites(client):
    services.set_setting("registration", "closed")
    response = client.get("/register")
    assert response.status_code == 403
    assert "taking new readers" in response.get_data(as_text=True)
    assert "taking new readers" in client.get("/login").get_data(as_text=True)
    services.set_setting("registration", "invite")
    assert "ask an admin for an invite link" in client.get("/login").get_data(as_text=True)
    services.set_setting("registration", "open")
    assert 'href="/register"' in client.get("/login").get_data(as_text=True)


def test_sign_in_page_offers_a_way_back_in(client):
    assert 'href="/forgot">Forgot your password?</a>' in client.get("/login").get_data(
        as_text=True
    )


def test_an_unknown_registration_setting_reads_as_invite_only(client):
    services.set_setting("registration", "something else")
    assert services.registration_mode() == "invite"
    assert client.get("/register").status_code == 403


# --- first-run set-up on several hosts -------------------------------------------------


def _second_host(tmp_path, database, **overrides) -> Flask:
    """Another host: an instance folder of its own, the same database (and, unless
    overridden, the same SECRET_KEY)."""
    from tests.conftest import make_app

    return make_app(tmp_path / "host-b", **database, **overrides)


def test_every_host_prints_the_same_setup_link_and_any_host_takes_it(
    app: Flask, client, tmp_path, database
):
    from app.cli import announce_setup_link

    other = _second_host(tmp_path, database)
    link = announce_setup_link(fresh=False)  # as gunicorn's start on host A does
    with other.app_context():
        assert announce_setup_link(fresh=False) == link  # and on host B
        token = link.rsplit("/", 1)[1]
        on_b = other.test_client()
        assert on_b.get(f"/setup/{token}").status_code == 200
        form = {"email": "root@example.com", "password": PASSWORD, "confirm": PASSWORD}
        assert on_b.submit(f"/setup/{token}", form).status_code == 303
        assert on_b.get(f"/setup/{token}").status_code == 404
    assert client.get(f"/setup/{token}").status_code == 404  # used up on A as well
    assert announce_setup_link(fresh=False) is None
    assert services.issue_setup_token() is None


def test_a_restart_keeps_the_setup_link_and_the_command_replaces_it(client):
    first = services.issue_setup_token(fresh=False)
    assert services.issue_setup_token(fresh=False) == first  # gunicorn started again
    new = services.issue_setup_token()  # `dogear setup-link`
    assert new != first
    assert client.get(f"/setup/{first}").status_code == 404
    assert client.get(f"/setup/{new}").status_code == 200
    assert services.issue_setup_token(fresh=False) == new  # what every host prints now


def test_the_setup_link_comes_from_the_secret_key_not_from_the_database(
    app: Flask, tmp_path, database
):
    from app.models import Setting

    token = services.issue_setup_token(fresh=False)
    assert not any(token in value for value in db.session.scalars(select(Setting.value)))
    other = _second_host(tmp_path, database, SECRET_KEY="a-different-key-of-some-other-host-1234")
    with other.app_context():
        assert not services.setup_token_is_valid(token)  # the database alone opens nothing
    assert services.setup_token_is_valid(token)
    assert not services.setup_token_is_valid("é" * 32)  # not ASCII: refused, not a 500

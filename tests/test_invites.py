"""Invites: a single-use sign-up link an admin makes, shown once, that expires, can be
revoked, and works whatever the registration mode."""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.auth import services
from app.extensions import db
from app.models import AuditEvent, Invite, User, utcnow
from tests.conftest import run_concurrently, sign_in
from tests.pg import MARKS, migrated_app

SIGN_UP = {"email": "new@example.com", "password": "a fine password", "confirm": "a fine password"}
_LINK = re.compile(r"http://localhost/invite/([A-Za-z0-9_-]+)")


def _users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def _make_invite(client, **data) -> str:
    """Make an invite through the admin page (no JavaScript); returns its token."""
    response = client.submit("/admin/invites", {"days": "7", **data})
    assert response.status_code == 303 and response.location == "/admin/users#invites"
    html = client.get("/admin/users").get_data(as_text=True)
    match = _LINK.search(html)
    assert match, "the new invite link is on the page"
    return match.group(1)


def test_an_invite_link_is_shown_once_and_only_its_hash_is_stored(client, admin):
    token = _make_invite(client, note="Ada from the book club")
    invite = db.session.scalar(select(Invite))
    assert invite.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert invite.note == "Ada from the book club" and not invite.is_admin
    assert invite.created_by_id == admin.id
    expires_in = invite.expires_at - utcnow()
    assert timedelta(days=6, hours=23) < expires_in <= timedelta(days=7)
    html = client.get("/admin/users").get_data(as_text=True)
    assert token not in html  # never again
    assert "Ada from the book club" in html  # listed as open


def test_making_an_invite_with_htmx_answers_the_invites_card(client, admin):
    response = client.submit("/admin/invites", {"days": "3", "note": "Bo"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="invites"')
    assert "HX-Request" in response.headers["Vary"]
    assert _LINK.search(html) and "Bo" in html
    invite = db.session.scalar(select(Invite))
    assert invite.expires_at - utcnow() <= timedelta(days=3)


def test_invalid_invite_form_is_422_inline(client, admin):
    for data in [{"days": "0"}, {"days": "365"}, {"days": "soon"}, {"note": "x" * 201}]:
        response = client.submit("/admin/invites", {"days": "7", **data}, htmx=True)
        assert response.status_code == 422, data
        html = response.get_data(as_text=True)
        assert html.lstrip().startswith('<section id="invites"')
        assert 'class="field-error"' in html
        plain = client.submit("/admin/invites", {"days": "7", **data})
        assert plain.status_code == 422 and "<html" in plain.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Invite)) == 0


@pytest.mark.parametrize("mode", ["open", "invite", "closed"])
def test_signing_up_through_an_invite_works_in_every_registration_mode(app, client, admin, mode):
    services.set_setting("registration", mode)
    token = _make_invite(client)
    visitor = app.test_client()
    page = visitor.get(f"/invite/{token}")
    assert page.status_code == 200 and "You're invited" in page.get_data(as_text=True)
    response = visitor.submit(f"/invite/{token}", SIGN_UP)
    assert response.status_code == 303 and response.location == "/"
    user = services.find_user_by_email("new@example.com")
    assert user is not None and not user.is_admin
    assert visitor.get("/list").status_code == 200
    invite = db.session.scalar(select(Invite))
    assert invite.used_at is not None and invite.used_by_id == user.id


def test_an_invite_can_make_an_admin(app, client, admin):
    token = _make_invite(client, is_admin="y")
    visitor = app.test_client()
    response = visitor.submit(f"/invite/{token}", SIGN_UP)
    assert response.location == "/admin/users"
    assert services.find_user_by_email("new@example.com").is_admin
    assert visitor.get("/admin/users").status_code == 200


def test_an_invite_works_once(app, client, admin):
    token = _make_invite(client)
    app.test_client().submit(f"/invite/{token}", SIGN_UP)
    again = app.test_client()
    page = again.get(f"/invite/{token}")
    assert page.status_code == 410
    assert "already used" in page.get_data(as_text=True)
    second = again.submit(f"/invite/{token}", {**SIGN_UP, "email": "other@example.com"})
    assert second.status_code == 410
    assert services.find_user_by_email("other@example.com") is None


def test_an_expired_invite_is_gone(app, client, admin):
    token = _make_invite(client)
    db.session.execute(update(Invite).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    visitor = app.test_client()
    page = visitor.get(f"/invite/{token}")
    assert page.status_code == 410 and "has expired" in page.get_data(as_text=True)
    assert visitor.submit(f"/invite/{token}", SIGN_UP).status_code == 410
    assert services.find_user_by_email("new@example.com") is None
    # Expired invites are not listed as open.
    assert "Invite #" not in client.get("/admin/users").get_data(as_text=True)


def test_an_unknown_invite_is_404_with_a_sentence(client):
    for token in ["not-a-token", "x" * 500]:
        page = client.get(f"/invite/{token}")
        assert page.status_code == 404
        assert "Check that you copied all of it" in page.get_data(as_text=True)


def test_a_taken_address_keeps_the_invite_unused(app, client, admin, make_user):
    make_user("taken@example.com")
    token = _make_invite(client)
    visitor = app.test_client()
    response = visitor.submit(f"/invite/{token}", {**SIGN_UP, "email": "Taken@example.com"})
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    assert db.session.scalar(select(Invite)).used_at is None
    bad = visitor.submit(f"/invite/{token}", {"email": "nope", "password": "x", "confirm": "y"})
    assert bad.status_code == 422
    assert visitor.submit(f"/invite/{token}", SIGN_UP).status_code == 303


def test_two_sign_ups_racing_with_one_invite_make_one_account(app, admin):
    _, token = services.create_invite(admin, is_admin=False, note="", days=7)
    numbers = itertools.count()
    lock = threading.Lock()

    def sign_up() -> None:
        with lock:
            n = next(numbers)
        services.accept_invite(token, f"racer{n}@example.com", "a fine password")

    before = _users()
    errors = run_concurrently(app, sign_up, workers=4)
    assert len(errors) == 3 and all(isinstance(e, services.LinkGone) for e in errors), errors
    assert _users() == before + 1
    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "invite.use")
        )
        == 1
    )


# --- revoking ----------------------------------------------------------------------------


def test_revoke_asks_first_without_javascript(app, client, admin):
    token = _make_invite(client, note="For Bo")
    invite = db.session.scalar(select(Invite))
    page = client.get(f"/admin/invites/{invite.id}/revoke")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Revoke “For Bo”?" in html and "<html" in html
    assert db.session.scalar(select(Invite)).revoked_at is None  # asking changed nothing
    response = client.submit(f"/admin/invites/{invite.id}/revoke")
    assert response.status_code == 303 and response.location == "/admin/users#invites"
    assert "Invite revoked" in client.get("/admin/users").get_data(as_text=True)
    gone = app.test_client().get(f"/invite/{token}")
    assert gone.status_code == 410 and "withdrawn" in gone.get_data(as_text=True)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invite.revoke"))
    assert event.actor_id == admin.id and event.target == f"invite #{invite.id}"


def test_revoke_with_htmx_confirms_in_place(client, admin):
    _make_invite(client, note="For Bo")
    invite_id = db.session.scalar(select(Invite.id))
    ask = client.htmx_get(f"/admin/invites/{invite_id}/revoke")
    html = ask.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="invites"') and "Revoke invite" in html
    keep = client.htmx_get("/admin/invites")
    assert keep.get_data(as_text=True).lstrip().startswith('<section id="invites"')
    assert client.get("/admin/invites").status_code == 302  # without htmx: the users page
    done = client.submit(f"/admin/invites/{invite_id}/revoke", htmx=True)
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert "No open invites." in text and "Invite revoked" in text
    again = client.submit(f"/admin/invites/{invite_id}/revoke", htmx=True)
    assert "already" in again.get_data(as_text=True) or "revoked" in again.get_data(as_text=True)
    assert client.submit("/admin/invites/9999/revoke").status_code == 404
    late = client.get(f"/admin/invites/{invite_id}/revoke")
    assert late.status_code == 303  # no longer open: back to the list, with a note


def test_a_used_invite_cannot_be_revoked(app, client, admin):
    token = _make_invite(client)
    app.test_client().submit(f"/invite/{token}", SIGN_UP)
    invite_id = db.session.scalar(select(Invite.id))
    response = client.submit(f"/admin/invites/{invite_id}/revoke", follow_redirects=True)
    assert "already used" in response.get_data(as_text=True)
    assert db.session.scalar(select(Invite)).revoked_at is None


def test_invite_events_are_in_the_audit_log(app, client, admin):
    token = _make_invite(client, note="Bo", is_admin="y")
    app.test_client().submit(f"/invite/{token}", SIGN_UP)
    events = {e.action: e for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))}
    assert events["invite.create"].actor_email == admin.email
    assert (
        "admin" in events["invite.create"].detail and "note: Bo" in events["invite.create"].detail
    )
    assert events["invite.use"].actor_email == "new@example.com"
    assert "as an admin" in events["invite.use"].detail


def test_signing_up_while_signed_in_ends_the_old_session(app, client, admin, make_user):
    token = _make_invite(client)
    reader = make_user("old@example.com")
    browser = app.test_client()
    sign_in(browser, reader)
    assert "signed in as old@example.com" in browser.get(f"/invite/{token}").get_data(as_text=True)
    old_cookie = browser.get_cookie("session").value
    browser.submit(f"/invite/{token}", SIGN_UP)
    replay = app.test_client()
    replay.set_cookie("session", old_cookie)
    assert replay.get("/list").status_code == 302


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def pg_app(tmp_path):
    """An app on a fresh PostgreSQL schema built by the migrations."""
    with migrated_app(tmp_path) as app:
        yield app


@MARKS[0]
@MARKS[1]
def test_two_sign_ups_racing_with_one_invite_make_one_account_on_postgres(pg_app):
    boss = services.create_user("boss@example.com", "long password", is_admin=True)
    _, token = services.create_invite(boss, is_admin=False, note="", days=7)
    numbers = itertools.count()
    lock = threading.Lock()

    def sign_up() -> None:
        with lock:
            n = next(numbers)
        services.accept_invite(token, f"racer{n}@example.com", "a fine password")

    errors = run_concurrently(pg_app, sign_up, workers=4)
    assert len(errors) == 3 and all(isinstance(e, services.LinkGone) for e in errors), errors
    assert _users() == 2

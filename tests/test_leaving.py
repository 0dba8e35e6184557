"""Leaving: "Sign out everywhere" and deleting one's own account with exactly one's data."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.lists import services as lists
from app.models import Activity, AuditEvent, Entry, LoginSession, Post, Tag, User
from tests.conftest import sign_in


def test_sign_out_everywhere_ends_every_other_session_but_this_one(app, client, reader):
    phone = app.test_client()
    sign_in(phone, reader)
    assert phone.get("/list").status_code == 200
    response = client.submit("/account/sign-out-everywhere")
    assert response.status_code == 303
    assert client.get("/list").status_code == 200  # this device stays signed in
    assert phone.get("/list").status_code == 302  # the other one is signed out
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1
    assert db.session.scalar(
        select(AuditEvent.action).where(AuditEvent.action == "auth.sign_out_everywhere")
    )


def test_sign_out_everywhere_needs_the_csrf_token(client, reader):
    assert client.post("/account/sign-out-everywhere").status_code == 400


def test_a_reader_deletes_their_account_and_exactly_their_data(
    app, client, reader, make_user, make_post
):
    catalog = make_post(title="Catalog post")
    other = make_user("other@example.com")
    mine = lists.save_post(reader, catalog.id)
    lists.update_progress(reader, mine.id, 40)
    theirs = lists.save_post(other, catalog.id)
    alone = lists.add_article(reader, "https://example.org/a").entry.post
    shared = lists.add_article(reader, "https://example.org/b").entry.post
    lists.add_article(other, "https://example.org/b")
    db.session.add(Tag(user_id=reader.id, name="mine"))
    db.session.commit()
    reader_id, alone_id, shared_id = reader.id, alone.id, shared.id

    page = client.get("/account/delete")
    assert "Delete your account" in page.get_data(as_text=True)
    wrong = client.submit("/account/delete", {"email": "other@example.com"})
    assert wrong.status_code == 422
    assert "Type your address" in wrong.get_data(as_text=True)
    assert db.session.get(User, reader_id) is not None  # nothing happened

    response = client.submit("/account/delete", {"email": "READER@example.com"})
    assert response.status_code == 303
    assert db.session.get(User, reader_id) is None
    for model in (Entry, Activity, LoginSession, Tag):
        assert (
            db.session.scalar(
                select(func.count()).select_from(model).where(model.user_id == reader_id)
            )
            == 0
        )
    assert db.session.get(Post, alone_id) is None  # only theirs: gone
    kept = db.session.get(Post, shared_id)  # another reader saved it: stays, theirs now
    assert kept is not None and kept.owner_id == other.id
    assert db.session.get(Post, catalog.id) is not None  # the catalog stays
    assert db.session.get(Entry, theirs.id) is not None
    assert client.get("/list").status_code == 302  # signed out
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.delete_self"))
    assert event.actor_email == "reader@example.com" and event.actor_id is None


def test_the_last_admin_cannot_leave(client, admin):
    response = client.submit("/account/delete", {"email": admin.email})
    assert response.status_code == 422
    assert "admin" in response.get_data(as_text=True)
    assert db.session.get(User, admin.id) is not None

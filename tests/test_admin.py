"""Admin: the users page and one account's page. Readers get 403; the last admin can't
be removed, not even by two admins at the same instant; deleting an account takes
exactly its data."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from app.admin import services as admin_services
from app.auth import services as auth_services
from app.auth.services import AccountError, registration_mode
from app.extensions import db
from app.models import (
    Activity,
    AuditEvent,
    Entry,
    Invite,
    LoginSession,
    PasswordReset,
    Post,
    User,
    utcnow,
)
from tests.conftest import HTMX, run_concurrently, sign_in
from tests.pg import MARKS, migrated_app


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- access (readers' 403s: tests/faults/test_access.py) ----------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/users")
    assert response.status_code == 302 and "/login" in response.location


def test_admin_posts_without_csrf_token_are_refused(client, admin, make_user):
    other = make_user()
    response = client.post(f"/admin/users/{other.id}/disabled", data={"disabled": "1"})
    assert response.status_code == 400
    response = client.post(
        f"/admin/users/{other.id}/delete", data={"confirm_email": other.email}, headers=HTMX
    )
    assert response.status_code == 400
    db.session.refresh(other)
    assert not other.is_disabled


# --- the users page ------------------------------------------------------------------


def test_users_page_lists_accounts_with_role_status_and_numbers(
    client, admin, make_user, make_post
):
    reader = make_user("reader@example.com")
    make_user("gone@example.com", is_disabled=True)
    posts = [make_post() for _ in range(3)]
    for post in posts:
        db.session.add(Entry(user_id=reader.id, post_id=post.id))
    db.session.add(Entry(user_id=admin.id, post_id=posts[0].id, state="done", progress=100))
    db.session.commit()
    db.session.execute(
        Entry.__table__.update()
        .where(Entry.user_id == reader.id, Entry.post_id == posts[0].id)
        .values(state="done", progress=100)
    )
    db.session.commit()
    html = client.get("/admin/users").get_data(as_text=True)
    assert "reader@example.com" in html and "gone@example.com" in html
    assert "Disabled" in html and "Admin" in html
    row = html[html.index(f'id="user-{reader.id}"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="num" data-label="On list">3</td>' in row
    assert '<td class="num" data-label="Finished">1</td>' in row
    assert "Never" not in html.split(f'id="user-{admin.id}"')[1].split("</tr>")[0]


def test_user_search_with_htmx_returns_rows_and_pushes_a_clean_url(client, admin, make_user):
    make_user("alice@example.com")
    make_user("bob@example.com")
    response = client.htmx_get("/admin/users?q=alice&role=&status=&sort=email")
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="user-rows"')
    assert "alice@example.com" in html and "bob@example.com" not in html
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["HX-Push-Url"] == "/admin/users?q=alice"
    full = client.get("/admin/users?q=alice")
    assert "HX-Request" in full.headers["Vary"]
    page = full.get_data(as_text=True)
    assert "<html" in page and 'value="alice"' in page and "bob@example.com" not in page


def test_users_filters_by_role_and_status(client, admin, make_user):
    make_user("reader@example.com")
    make_user("boss2@example.com", is_admin=True)
    make_user("gone@example.com", is_disabled=True)

    def emails(query: str) -> set[str]:
        html = client.htmx_get(f"/admin/users?{query}").get_data(as_text=True)
        return {e for e in ["reader@", "boss2@", "gone@", "admin@"] if e in html}

    assert emails("role=admin") == {"boss2@", "admin@"}
    assert emails("role=reader") == {"reader@", "gone@"}
    assert emails("status=disabled") == {"gone@"}
    assert emails("status=active&role=reader") == {"reader@"}
    assert emails("role=nonsense&status=%00&sort=drop+table&page=-3") == {
        "reader@",
        "boss2@",
        "gone@",
        "admin@",
    }


def test_users_sort_and_pagination(app, client, admin, make_user):
    app.config["ADMIN_PER_PAGE"] = 2
    zed = make_user("zed@example.com")
    amy = make_user("amy@example.com")
    make_user("mia@example.com")
    now = utcnow()
    zed.created_at, amy.created_at = now + timedelta(days=2), now + timedelta(days=1)
    amy.last_login_at = now
    db.session.commit()

    def order(query: str) -> list[str]:
        html = client.htmx_get(f"/admin/users?{query}").get_data(as_text=True)
        found = [e for e in ["admin@", "amy@", "mia@", "zed@"] if e in html]
        return sorted(found, key=html.index)

    assert order("") == ["admin@", "amy@"]
    assert order("page=2") == ["mia@", "zed@"]
    assert order("sort=-email") == ["zed@", "mia@"]
    assert order("sort=-created") == ["zed@", "amy@"]
    # The admin signed in (in the fixture) after amy's sign-in time was set? No: amy's
    # is `now`, the admin's is earlier; never-signed-in accounts come last.
    assert order("sort=-last_sign_in")[0] == "amy@"
    page2 = client.htmx_get("/admin/users?page=2").get_data(as_text=True)
    assert 'rel="prev"' in page2 and 'href="/admin/users"' in page2
    assert client.htmx_get("/admin/users?page=99").status_code == 200
    assert "past the end" in client.get("/admin/users?page=99").get_data(as_text=True)


def test_users_page_query_count_does_not_grow_with_accounts(client, admin, make_user, make_post):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    post = make_post()
    for _ in range(2):
        user = make_user()
        db.session.add(Entry(user_id=user.id, post_id=post.id))
    db.session.commit()
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        client.get("/admin/users")
        few = len(statements)
        statements.clear()
        for _ in range(15):
            user = make_user()
            db.session.add(Entry(user_id=user.id, post_id=post.id, state="done"))
        db.session.commit()
        statements.clear()
        html = client.get("/admin/users").get_data(as_text=True)
        many = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert html.count('<tr id="user-') == 18
    assert many == few


def test_admin_creates_an_account_that_can_sign_in(app, client, admin):
    response = client.submit(
        "/admin/users",
        {"email": "new@example.com", "password": "first password", "confirm": "first password"},
    )
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user is not None and not user.is_admin
    assert sign_in(app.test_client(), "new@example.com", "first password").status_code == 303
    event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.create"))
    assert event_.actor_id == admin.id and event_.target == "new@example.com"


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


# --- one account ---------------------------------------------------------------------


def test_user_page_full_and_fragment(client, admin, make_user):
    reader = make_user("ada@example.com")
    page = client.get(f"/admin/users/{reader.id}")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    assert "ada@example.com" in page.get_data(as_text=True)
    fragment = client.htmx_get(f"/admin/users/{reader.id}")
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="user-panel"')
    assert "HX-Request" in fragment.headers["Vary"]
    assert client.get("/admin/users/9999").status_code == 404
    assert client.get("/admin/users/99999999999999999999999").status_code == 404


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
    assert "at least one active admin" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.is_admin
    actions = list(
        db.session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "user.role"))
    )
    assert actions == ["reader → admin", "admin → reader"]


def test_role_change_with_htmx_answers_the_panel_and_409_for_the_last_admin(
    client, admin, make_user
):
    reader = make_user()
    response = client.submit(f"/admin/users/{reader.id}/admin", {"is_admin": "1"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="user-panel"')
    assert "Remove admin role" in html and "is now an admin" in html  # flash out of band
    client.submit(f"/admin/users/{reader.id}/admin", {"is_admin": "0"}, htmx=True)
    refused = client.submit(f"/admin/users/{admin.id}/admin", {"is_admin": "0"}, htmx=True)
    assert refused.status_code == 409
    assert "at least one active admin" in refused.get_data(as_text=True)


def test_an_admin_who_demotes_themself_is_sent_out_of_the_admin_area(
    app, client, admin, make_user
):
    make_user("other-admin@example.com", is_admin=True)
    response = client.submit(f"/admin/users/{admin.id}/admin", {"is_admin": "0"}, htmx=True)
    assert response.headers["HX-Redirect"] == "/"
    assert client.get("/admin/users").status_code == 403


def test_disable_asks_first_then_signs_out(app, client, admin, make_user):
    reader = make_user("ada@example.com")
    other = app.test_client()
    sign_in(other, reader)
    page = client.get(f"/admin/users/{reader.id}/disable")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<html" in html and "Disable ada@example.com?" in html
    fragment = client.htmx_get(f"/admin/users/{reader.id}/disable").get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="user-panel"') and "Disable account" in fragment
    db.session.refresh(reader)
    assert not reader.is_disabled  # asking changed nothing

    response = client.submit(
        f"/admin/users/{reader.id}/disabled",
        {"disabled": "1", "next": f"/admin/users/{reader.id}"},
    )
    assert response.status_code == 303 and response.location == f"/admin/users/{reader.id}"
    db.session.refresh(reader)
    assert reader.is_disabled
    assert other.get("/list").status_code == 302
    client.submit(f"/admin/users/{reader.id}/disabled", {"disabled": "0"})
    db.session.refresh(reader)
    assert not reader.is_disabled
    assert [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))][
        -2:
    ] == ["user.disable", "user.enable"]


def test_admin_cannot_disable_or_delete_themself(client, admin):
    response = client.submit(
        f"/admin/users/{admin.id}/disabled", {"disabled": "1"}, follow_redirects=True
    )
    assert "disable your own account" in response.get_data(as_text=True)
    response = client.submit(
        f"/admin/users/{admin.id}/delete", {"confirm_email": admin.email}, htmx=True
    )
    assert response.status_code == 409
    assert "delete your own account" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert not admin.is_disabled


def test_the_next_field_never_redirects_off_site(client, admin, make_user):
    reader = make_user()
    response = client.submit(
        f"/admin/users/{reader.id}/admin", {"is_admin": "1", "next": "https://evil.example/"}
    )
    assert response.location == f"/admin/users/{reader.id}"


def test_unknown_user_is_404(client, admin):
    assert client.submit("/admin/users/9999/disabled", {"disabled": "1"}).status_code == 404
    assert client.submit("/admin/users/9999/admin", {"is_admin": "1"}).status_code == 404
    assert client.submit("/admin/users/9999/reset-link").status_code == 404
    assert client.submit("/admin/users/9999/delete", {"confirm_email": "x"}).status_code == 404


def test_registration_mode_setting(client, admin):
    assert registration_mode() == "invite"
    client.submit("/admin/settings/registration", {"mode": "open"})
    assert registration_mode() == "open"
    client.submit("/admin/settings/registration", {"mode": "closed"})
    assert registration_mode() == "closed"
    response = client.submit(
        "/admin/settings/registration", {"mode": "everyone!"}, follow_redirects=True
    )
    assert "Choose who can create an account." in response.get_data(as_text=True)
    assert registration_mode() == "closed"
    details = list(
        db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "settings.registration")
        )
    )
    assert details == ["invite → open", "open → closed"]


# --- the last admin, under concurrency ------------------------------------------------


def _demote_each_other(app) -> tuple[list[BaseException], int, int]:
    first = auth_services.create_user("first@example.com", "long password", is_admin=True).id
    second = auth_services.create_user("second@example.com", "long password", is_admin=True).id
    pairs = itertools.cycle([(first, second), (second, first)])
    lock = threading.Lock()

    def demote() -> None:
        with lock:
            actor_id, target_id = next(pairs)
        admin_services.set_admin(db.session.get(User, actor_id), target_id, False)

    errors = run_concurrently(app, demote, workers=2)
    return errors, first, second


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app):
    errors, first, second = _demote_each_other(app)
    assert len(errors) == 1 and isinstance(errors[0], AccountError), errors
    admins = list(db.session.scalars(select(User.id).where(User.is_admin)))
    assert len(admins) == 1 and admins[0] in (first, second)
    assert _count(AuditEvent, AuditEvent.action == "user.role") == 1


def test_two_admins_disabling_and_deleting_each_other_leave_one_admin(app):
    first = auth_services.create_user("first@example.com", "long password", is_admin=True).id
    second = auth_services.create_user("second@example.com", "long password", is_admin=True).id
    actions = iter(
        [
            lambda: admin_services.set_disabled(db.session.get(User, first), second, True),
            lambda: admin_services.delete_user(
                db.session.get(User, second), first, "first@example.com"
            ),
        ]
    )
    lock = threading.Lock()

    def act() -> None:
        with lock:
            action = next(actions)
        action()

    errors = run_concurrently(app, act, workers=2)
    assert len(errors) == 1 and isinstance(errors[0], AccountError), errors
    assert _count(User, User.is_admin, User.is_disabled.is_(False)) == 1


# --- deleting an account ---------------------------------------------------------------


def test_delete_asks_for_the_address_first(client, admin, make_user):
    reader = make_user("ada@example.com")
    reader_id = reader.id
    page = client.get(f"/admin/users/{reader.id}/delete")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and 'name="confirm_email"' in html
    fragment = client.htmx_get(f"/admin/users/{reader.id}/delete").get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="user-panel"')
    assert 'name="confirm_email"' in fragment

    wrong = client.submit(f"/admin/users/{reader.id}/delete", {"confirm_email": "ada@example"})
    assert wrong.status_code == 422
    assert "type ada@example.com exactly" in wrong.get_data(as_text=True)
    empty = client.submit(f"/admin/users/{reader.id}/delete", {"confirm_email": ""}, htmx=True)
    assert empty.status_code == 422
    assert empty.get_data(as_text=True).lstrip().startswith('<div id="user-panel"')
    assert db.session.get(User, reader.id) is not None

    done = client.submit(f"/admin/users/{reader_id}/delete", {"confirm_email": " ADA@example.com"})
    assert done.status_code == 303 and done.location == "/admin/users"
    assert db.session.get(User, reader_id) is None
    assert "Deleted ada@example.com" in client.get("/admin/users").get_data(as_text=True)


def test_delete_with_htmx_navigates_to_the_users_page(client, admin, make_user):
    reader = make_user("ada@example.com")
    response = client.submit(
        f"/admin/users/{reader.id}/delete", {"confirm_email": "ada@example.com"}, htmx=True
    )
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/admin/users"


def test_delete_takes_exactly_that_readers_data(app, client, admin, make_user, make_post):
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    catalog = make_post(title="Catalog post")
    only_ada = make_post(title="Only Ada saved it", owner_id=ada.id, url="https://a.example/1")
    shared = make_post(title="Bob saved it too", owner_id=ada.id, url="https://a.example/2")
    bobs_own = make_post(title="Bob's own page", owner_id=bob.id, url="https://b.example/1")
    for user, post in [
        (ada, catalog),
        (ada, only_ada),
        (ada, shared),
        (ada, bobs_own),
        (bob, catalog),
        (bob, shared),
        (bob, bobs_own),
    ]:
        db.session.add(Entry(user_id=user.id, post_id=post.id))
        db.session.add(Activity(user_id=user.id, post_id=post.id, progress_from=0, progress_to=10))
    db.session.commit()
    ada_client = app.test_client()
    sign_in(ada_client, ada)
    client.submit(f"/admin/users/{ada.id}/reset-link")
    invite, _ = auth_services.create_invite(ada, is_admin=False, note="from Ada", days=7)
    ada_id, invite_id = ada.id, invite.id
    bob_entries_before = _count(Entry, Entry.user_id == bob.id)

    response = client.submit(f"/admin/users/{ada_id}/delete", {"confirm_email": "ada@example.com"})
    assert response.status_code == 303

    assert db.session.get(User, ada_id) is None
    assert _count(Entry, Entry.user_id == ada_id) == 0
    assert _count(Activity, Activity.user_id == ada_id) == 0
    assert _count(LoginSession, LoginSession.user_id == ada_id) == 0
    assert _count(PasswordReset, PasswordReset.user_id == ada_id) == 0
    assert ada_client.get("/list").status_code == 302
    titles = set(db.session.scalars(select(Post.title)))
    assert titles == {"Catalog post", "Bob saved it too", "Bob's own page"}
    db.session.refresh(shared)
    assert shared.owner_id == bob.id  # handed on, not lost
    assert _count(Entry, Entry.user_id == bob.id) == bob_entries_before
    assert _count(Activity, Activity.user_id == bob.id) == 3
    kept_invite = db.session.get(Invite, invite_id)
    assert kept_invite is not None and kept_invite.created_by_id is None
    # Ada's own audit events stay, with her address.
    sign_ins = list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.actor_email == "ada@example.com"))
    )
    assert sign_ins and all(e.actor_id is None for e in sign_ins)
    deleted = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.delete"))
    assert deleted.target == "ada@example.com" and deleted.actor_id == admin.id
    assert (
        deleted.detail
    ) == "4 list entries, 1 private post deleted; 1 shared private post handed on"


def test_delete_hands_a_shared_post_to_the_reader_who_saved_it_first(admin, make_user, make_post):
    ada, bob, cy = make_user(), make_user(), make_user()
    shared = make_post(owner_id=ada.id, url="https://a.example/shared")
    now = utcnow()
    db.session.add_all(
        [
            Entry(user_id=ada.id, post_id=shared.id, added_at=now - timedelta(days=3)),
            Entry(user_id=cy.id, post_id=shared.id, added_at=now - timedelta(days=2)),
            Entry(user_id=bob.id, post_id=shared.id, added_at=now - timedelta(days=1)),
        ]
    )
    db.session.commit()
    admin_services.delete_user(admin, ada.id, ada.email)
    db.session.refresh(shared)
    assert shared.owner_id == cy.id


def test_the_last_admin_cannot_be_deleted_by_anyone(app, make_user):
    boss = make_user("boss@example.com", is_admin=True)
    # An admin who lost the role a moment ago can't act as one any more.
    former = make_user("former@example.com")
    with pytest.raises(AccountError, match="no longer an active admin"):
        admin_services.delete_user(former, boss.id, boss.email)
    assert db.session.get(User, boss.id) is not None


# --- reset links made by an admin ---------------------------------------------------------


def test_reset_link_is_shown_once_without_javascript(client, admin, make_user):
    reader = make_user("ada@example.com")
    response = client.submit(f"/admin/users/{reader.id}/reset-link")
    assert response.status_code == 303
    assert response.location == f"/admin/users/{reader.id}#password"
    html = client.get(f"/admin/users/{reader.id}").get_data(as_text=True)
    assert "Here is the reset link." in html and "/reset/" in html
    again = client.get(f"/admin/users/{reader.id}").get_data(as_text=True)
    assert "/reset/" not in again
    stored = db.session.scalar(select(PasswordReset))
    link = html.split("http://localhost/reset/")[1].split("<")[0]
    assert stored.token_hash != link and len(stored.token_hash) == 64


def test_reset_link_with_htmx_is_in_the_panel(client, admin, make_user):
    reader = make_user("ada@example.com")
    response = client.submit(f"/admin/users/{reader.id}/reset-link", htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="user-panel"') and "/reset/" in html
    event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.reset_link"))
    assert event_.target == "ada@example.com" and event_.actor_id == admin.id


# --- the same on PostgreSQL ---------------------------------------------------------------


def on_postgres(test):
    """Run `test` on PostgreSQL (skipped when no server answers, unless required)."""
    for mark in MARKS:
        test = mark(test)
    return test


@pytest.fixture
def pg_app(tmp_path):
    """An app on a fresh PostgreSQL schema built by the migrations."""
    with migrated_app(tmp_path) as app:
        yield app


@on_postgres
@pytest.mark.parametrize("attempt", range(3))
def test_two_admins_demoting_each_other_at_once_leave_one_admin_on_postgres(pg_app, attempt):
    errors, first, second = _demote_each_other(pg_app)
    assert len(errors) == 1 and isinstance(errors[0], AccountError), errors
    assert _count(User, User.is_admin) == 1
    assert _count(AuditEvent, AuditEvent.action == "user.role") == 1


@on_postgres
def test_delete_with_data_on_postgres(pg_app):
    ada = auth_services.create_user("ada@example.com", "long password")
    bob = auth_services.create_user("bob@example.com", "long password")
    boss = auth_services.create_user("boss@example.com", "long password", is_admin=True)
    only_ada = Post(title="Only Ada", dedupe_key="a1", owner_id=ada.id, url="https://a.example/1")
    shared = Post(title="Shared", dedupe_key="a2", owner_id=ada.id, url="https://a.example/2")
    db.session.add_all([only_ada, shared])
    db.session.flush()
    db.session.add_all(
        [
            Entry(user_id=ada.id, post_id=only_ada.id),
            Entry(user_id=ada.id, post_id=shared.id),
            Entry(user_id=bob.id, post_id=shared.id),
        ]
    )
    db.session.commit()
    shared_id, ada_id, bob_id = shared.id, ada.id, bob.id
    deleted = admin_services.delete_user(boss, ada_id, "ada@example.com")
    assert (deleted.entries, deleted.posts_deleted, deleted.posts_kept) == (2, 1, 1)
    assert set(db.session.scalars(select(Post.title))) == {"Shared"}
    assert db.session.get(Post, shared_id).owner_id == bob_id

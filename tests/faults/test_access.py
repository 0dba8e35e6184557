"""Access, tried as another reader would (issue 11's fault and attack suite).

Protections proven here:

- Readers get 403 on every admin page and form, plain and htmx, and nothing changes
  (`app.access.require_admin`): `test_readers_get_403_on_every_admin_page`, and
  `test_the_admin_check_can_fail` shows its checker catches the check left out.
- Another reader's entry is a 404 by every URL, read or changed, and nothing changes
  (`app.access.own_entry`: a 404, never a 403, so nobody learns it exists):
  `test_another_readers_entry_is_private_by_every_url`, and
  `test_the_ownership_check_can_fail` shows its checker catches a lookup by id alone.

The same rule, feature by feature, is also proven beside each feature:
tests/test_lists.py (entries), test_reader.py (private articles, reading position),
test_tags.py, test_saving.py, test_imports.py, test_catalog_admin.py and
test_sources.py (403s), and tests/faults/test_sessions_and_signin.py (another
reader's session is a 404).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, abort
from sqlalchemy import func, select

from app import access
from app.extensions import db
from app.lists import services
from app.models import Entry, Invite, PasswordReset, User
from tests.conftest import sign_in


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- admin pages: 403 for readers --------------------------------------------------------


def test_readers_get_403_on_every_admin_page(client, reader, make_user):
    readers_are_refused_every_admin_page(client, make_user())


def readers_are_refused_every_admin_page(client: Any, other: User) -> None:
    """The checker: a signed-in reader (`client`) gets 403 on every admin page and
    form, and `other`'s account is left as it was."""
    for path in [
        "/admin/users",
        f"/admin/users/{other.id}",
        f"/admin/users/{other.id}/disable",
        f"/admin/users/{other.id}/delete",
        "/admin/invites",
        "/admin/invites/1/revoke",
        "/admin/audit",
    ]:
        assert client.get(path).status_code == 403, path
        assert client.htmx_get(path).status_code == 403, path
    for path, data in [
        ("/admin/users", {"email": "x@example.com"}),
        (f"/admin/users/{other.id}/admin", {"is_admin": "1"}),
        (f"/admin/users/{other.id}/disabled", {"disabled": "1"}),
        (f"/admin/users/{other.id}/reset-link", {}),
        (f"/admin/users/{other.id}/delete", {"confirm_email": other.email}),
        ("/admin/invites", {"days": "7"}),
        ("/admin/invites/1/revoke", {}),
        ("/admin/settings/registration", {"mode": "open"}),
    ]:
        assert client.submit(path, data).status_code == 403, path
        assert client.submit(path, data, htmx=True).status_code == 403, path
    db.session.refresh(other)
    assert not other.is_admin and not other.is_disabled
    assert _count(PasswordReset) == _count(Invite) == 0


def test_the_admin_check_can_fail(app: Flask, client, reader, make_user):
    """With `require_admin` taken off the admin blueprints, the checker catches it."""
    for funcs in app.before_request_funcs.values():
        while access.require_admin in funcs:
            funcs.remove(access.require_admin)
    with pytest.raises(AssertionError):
        readers_are_refused_every_admin_page(client, make_user())


# --- another reader's entry: 404 by every URL ---------------------------------------------


def another_readers_entry_is_private(app: Flask, owner: User, post_id: int) -> None:
    """The checker: `owner` saves the post; a second reader, signed in, gets a 404
    for that entry by every URL (plain and htmx) and changes nothing."""
    entry = services.save_post(owner, post_id)
    entry_id = entry.id
    intruder = app.test_client()
    assert sign_in(intruder, "intruder@example.com").status_code == 303
    assert intruder.get(f"/list/{entry_id}").status_code == 404
    assert intruder.get(f"/list/{entry_id}/tags").status_code == 404
    for url, data in [
        (f"/list/{entry_id}/progress", {"progress": "50"}),
        (f"/list/{entry_id}/archive", {"archived": "1"}),
        (f"/list/{entry_id}/tags", {"tags": "mine-now"}),
        (f"/list/{entry_id}/remove", {}),
    ]:
        assert intruder.submit(url, data).status_code == 404, url
        assert intruder.submit(url, data, htmx=True).status_code == 404, url
    assert owner.email not in intruder.get("/list").get_data(as_text=True)
    db.session.expire_all()
    entry = db.session.get(Entry, entry_id)
    assert entry is not None and entry.progress == 0 and entry.state == "saved"
    assert entry.tags == []


def test_another_readers_entry_is_private_by_every_url(app: Flask, make_user, make_post):
    make_user("intruder@example.com")
    another_readers_entry_is_private(app, make_user("owner@example.com"), make_post().id)


def test_the_ownership_check_can_fail(app: Flask, make_user, make_post, monkeypatch):
    """If entries were looked up by id alone, the checker would catch it."""

    def by_id_alone(user: User, entry_id: int, *, for_update: bool = False) -> Entry:
        return db.session.get(Entry, entry_id) or abort(404)

    monkeypatch.setattr(access, "own_entry", by_id_alone)
    make_user("intruder@example.com")
    with pytest.raises(AssertionError):
        another_readers_entry_is_private(app, make_user("owner@example.com"), make_post().id)

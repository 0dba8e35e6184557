"""Who may see what, in one place. Rows that aren't yours are a 404, never a 403,
so nobody learns that another reader's entry exists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import abort
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import ColumnElement, or_, select

from app.extensions import db, login_manager
from app.models import Entry, Post

if TYPE_CHECKING:
    from app.auth.signed_in import Reader


def catalog_clause() -> ColumnElement[bool]:
    """Posts in the shared catalog (browse shows only these)."""
    return Post.owner_id.is_(None)


def visible_posts_clause(user: Reader | None) -> ColumnElement[bool]:
    """Posts a reader may see: the shared catalog, the articles they added, and the
    articles other readers added that they saved too (shared, fetched once)."""
    if user is None or not user.is_authenticated:
        return catalog_clause()
    saved = select(Entry.id).where(Entry.post_id == Post.id, Entry.user_id == user.id)
    return visible_to(user.id, saved.exists())


def visible_to(reader_id: Any, saved: ColumnElement[bool]) -> ColumnElement[bool]:
    """The rule itself, for a reader id (a value or a bind parameter) and a clause
    saying they saved the post (a statement that joins their entry passes that)."""
    return or_(Post.owner_id.is_(None), Post.owner_id == reader_id, saved)


def visible_post(user: Reader | None, post_id: int) -> Post:
    post = db.session.scalar(select(Post).where(Post.id == post_id, visible_posts_clause(user)))
    if post is None:
        abort(404)
    return post


def own_entry(user: Reader, entry_id: int, *, for_update: bool = False) -> Entry:
    """The reader's own entry, or 404 (another reader's entry looks like no entry)."""
    stmt = select(Entry).where(Entry.id == entry_id, Entry.user_id == user.id)
    if for_update:
        stmt = stmt.with_for_update()
    entry = db.session.scalar(stmt)
    if entry is None:
        abort(404)
    return entry


def require_admin() -> ResponseReturnValue | None:
    """`before_request` of every admin-only blueprint: sign in first, then 403 for
    readers (admin pages are not secret, so a 403 rather than a 404)."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None

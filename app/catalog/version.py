"""The catalog version: a token in the database that changes with every write to the
catalog, so caches of what the catalog looks like (the browse sidebar's counts) stay
correct on every worker and every host without a flush: a worker reads the token
(one primary-key lookup) and recounts only when it changed.

The token changes in the same transaction as the write, so no reader can see the new
rows with the old token. Writes are noticed in the session, whichever way they are
made: ORM objects flushed, and DML statements run through the session (`insert`,
`update`, `delete` on posts, their topics, topics and sources). A private post saved by
a reader changes it too, which costs a recount and never a stale count.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import Select, event, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from app.db import insert_ignoring_conflicts, plain_rows
from app.models import Post, Setting, Source, Topic

KEY = "catalog_version"
_WATCHED_TABLES = frozenset({"posts", "post_topics", "topics", "sources"})
_WATCHED_MODELS = (Post, Topic, Source)
_FLAG = "dogear_catalog_changed"


@cache
def _current() -> Select[tuple[str]]:
    return select(Setting.value).where(Setting.key == KEY)


def current() -> str:
    """The catalog's version token ("" before the first write)."""
    return plain_rows(_current()).scalar() or ""


def for_page() -> str:
    """The version a page view is built against: read once per GET (the sidebar's
    counts and the result cards share it); a request that writes reads it each time,
    as its own write may have changed it."""
    if not has_request_context() or request.method not in ("GET", "HEAD"):
        return current()
    if "catalog_version" not in g:
        g.catalog_version = current()
    return g.catalog_version


def bump(session: Session) -> None:
    """Give the catalog a new version inside the session's transaction."""
    token = uuid.uuid4().hex
    changed = session.execute(update(Setting).where(Setting.key == KEY).values(value=token))
    if not changed.rowcount:
        session.execute(
            insert_ignoring_conflicts(Setting.__table__, {"key": KEY, "value": token}, "key")
        )
        session.execute(update(Setting).where(Setting.key == KEY).values(value=token))


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _WATCHED_TABLES:
        state.session.info[_FLAG] = True


def _after_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _WATCHED_MODELS) and (
            obj in session.deleted or obj in session.new or session.is_modified(obj)
        ):
            session.info[_FLAG] = True
            return


def _before_commit(session: Session) -> None:
    session.flush()  # the flush inside commit comes after this hook: notice its writes now
    if session.info.pop(_FLAG, False):
        bump(session)


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)


_LISTENERS = (
    ("do_orm_execute", _on_execute),
    ("after_flush", _after_flush),
    ("before_commit", _before_commit),
    ("after_rollback", _after_rollback),
)


def watch() -> None:
    """Install the session listeners (once per process)."""
    for name, listener in _LISTENERS:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)

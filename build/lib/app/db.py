"""Database plumbing. Everything that is specific to one database engine lives here.

SQLite: WAL, foreign keys and a busy timeout on every connection; writes start with
`BEGIN IMMEDIATE` so two gunicorn workers writing at once wait for each other instead
of failing with "database is locked" when a deferred read upgrades to a write.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from app.extensions import db

_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("immediate", default=False)


def configure_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """Install the per-connection settings for the engine's dialect."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so the BEGIN below is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block in one short write transaction and commit it (roll back on error).

    Any read transaction already open in this request is ended first, so the write
    starts fresh with the write lock taken up front.
    """
    session = db.session()  # the request's Session behind the scoped proxy
    if session.in_transaction():
        session.commit()
    token = _immediate.set(True)
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _immediate.reset(token)


@contextmanager
def immediate_connection() -> Iterator[Any]:
    """A connection of its own in a short write transaction, outside the request's
    session (for bookkeeping such as rate-limit counters)."""
    token = _immediate.set(True)
    try:
        with db.engine.begin() as connection:
            yield connection
    finally:
        _immediate.reset(token)


def insert_ignoring_conflicts(table: Any, values: dict[str, Any], *keys: str) -> Insert:
    """`INSERT ... ON CONFLICT (keys) DO NOTHING` for the current dialect."""
    module = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return module.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)


def ping() -> None:
    """Raise if the database can't answer a trivial query."""
    db.session.execute(db.text("SELECT 1"))


def include_in_autogenerate(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
    """Alembic filter: the full-text index's virtual and shadow tables are managed by
    hand-written migrations, not by the models, so autogenerate leaves them alone."""
    return not (type_ == "table" and name is not None and "_fts" in name)

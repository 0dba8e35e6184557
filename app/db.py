"""Database plumbing. Everything that is specific to one database engine lives here.

SQLite: WAL, foreign keys and a busy timeout on every connection; writes start with
`BEGIN IMMEDIATE` so two gunicorn workers writing at once wait for each other instead
of failing with "database is locked" when a deferred read upgrades to a write.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Executable, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
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


def plain_rows(
    statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Run a read on the session's connection (its transaction), past the ORM's
    execute layer: plain rows, no entities, no session events. For the statements of
    every page view, built once per worker with bind parameters: building a statement
    and passing it through the ORM cost four times what SQLite takes to answer it."""
    return db.session.connection().execute(statement, params or {})


def columns_of(model: Any, row_type: Any, *, leaving: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """`model`'s columns named like `row_type`'s dataclass fields, in their order: a
    plain row type and the statement that fills it (`row_type(*row)`) stay one list.
    `leaving` names fields filled from elsewhere (they come last in the type)."""
    return tuple(getattr(model, f.name) for f in fields(row_type) if f.name not in leaving)


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


def unindexed(column: Any) -> Any:
    """`column` as an expression no index serves, on SQLite: `column + 0`.

    SQLite plans without statistics, so a query sometimes has to keep its planner off
    an index (when walking another index in order and skipping rows is cheaper).
    PostgreSQL's planner knows the row counts and needs no such hint.
    """
    if db.engine.dialect.name == "sqlite":
        return column + 0
    return column


def nulls_smallest(column: Any, *, descending: bool) -> Any:
    """An ORDER BY term that sorts NULL as the smallest value, as SQLite does: last
    when descending, first when ascending. PostgreSQL sorts NULL as the largest, so
    it gets NULLS LAST / NULLS FIRST spelled out (its index on `published_on` is
    built NULLS FIRST to match, migration 0008)."""
    term = column.desc() if descending else column.asc()
    if db.engine.dialect.name == "sqlite":
        return term
    return term.nulls_last() if descending else term.nulls_first()


def defers_offset() -> bool:
    """Whether a deep page should skip its offset by id first (see `paginate`).
    PostgreSQL reads every skipped row from the table unless the index alone can
    answer; SQLite walks a covering index either way."""
    return db.engine.dialect.name == "postgresql"


def insert_ignoring_conflicts(table: Any, values: dict[str, Any], *keys: str) -> Insert:
    """`INSERT ... ON CONFLICT (keys) DO NOTHING` for the current dialect.

    To learn whether the row went in, add `.returning(...)` and check for a row: the
    result's `rowcount` is -1 on PostgreSQL (psycopg) for this statement."""
    module = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return module.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)


class DatabaseProblem(Exception):
    """Why the database is not the one Dogear expects, in a few words."""


def check_schema() -> str:
    """The schema version (Alembic revision) of the database, or DatabaseProblem.

    For SQLite the file is opened afresh, read-only: a pooled connection would still
    answer from a file that was deleted or replaced under it.
    """
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            raise DatabaseProblem("the database file is missing")
        if not path.is_file():
            raise DatabaseProblem("the database path is not a file")
        try:
            with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError as error:
            raise DatabaseProblem(f"the database file can't be read ({error})") from error
    else:
        try:
            row = db.session.execute(db.text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError as error:
            db.session.rollback()
            raise DatabaseProblem("the database does not answer") from error
    if row is None:
        raise DatabaseProblem("the database has no schema version (run `dogear db upgrade`)")
    return str(row[0])


def include_in_autogenerate(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
    """Alembic filter: the full-text search objects are managed by hand-written
    migrations, not by the models, so autogenerate leaves them alone: SQLite's FTS5
    virtual and shadow tables (0002), PostgreSQL's `posts.search_vector` column and
    its `ix_posts_search_*` indexes (0008), the search_* tables of impact lists (0012),
    and `list_summaries`, kept by triggers (0014)."""
    if name is None:
        return True
    if type_ == "table":
        return "_fts" not in name and not name.startswith("search_") and name != "list_summaries"
    if type_ == "column":
        return name != "search_vector"
    if type_ == "index":
        return not name.startswith("ix_posts_search_")
    return True

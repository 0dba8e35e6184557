"""`dogear copy-database`: copy a Dogear database from SQLite into PostgreSQL.

The self-hoster's way off SQLite. The order of things:

1. The source must be at this Dogear's head revision (else: run `dogear db upgrade` on
   it first), so its tables are exactly the models' tables.
2. The target must hold no data. This is checked before anything is written to it, so
   a refused target is left as it was.
3. The target is migrated to the head revision with the real migrations (0008 builds
   PostgreSQL's search column, its triggers and indexes).
4. Every table the models define is copied, parents first, in batches of at most
   CHUNK_ROWS rows (or CHUNK_BYTES of text, for posts with long articles). SQLite's
   FTS5 tables are not model tables and are not copied: PostgreSQL indexes on its own.

All of step 4 is **one transaction on the target**, committed only after the row
counts were compared with the source's. PostgreSQL copes with a long transaction of
any size, and it makes a failure harmless: an error, a refused value or a Ctrl-C
leaves the target migrated but empty, and the command can simply be run again. (Short
transactions per chunk would need a completion marker and a way to resume; nothing a
reading list's size calls for.) The copied tables are locked against writes meanwhile,
so an app started on the target too early waits instead of mixing its rows in.

The source is read in one read transaction, a consistent snapshot even while the app
still writes to it (SQLite's WAL mode lets both go on), with `PRAGMA query_only` so
the copy can never write to it.

PostgreSQL specifics: migration 0008's triggers would compute each post's
`search_vector` as it is inserted and again when its topics arrive (post_topics is
copied after posts). Computing a vector is most of the copy's time, so the two insert
triggers are disabled inside the transaction and every vector is computed once, topics
included, by UPDATEs after the last table; then they are enabled again. (A role that
doesn't own the tables may not disable triggers: then they simply run, the result is
the same, only slower.) Ids are copied as they are, then each table's sequence is set
past its highest id. Values are read and written through the models' column types, so
SQLite's 0/1 become booleans and its date and timestamp text becomes dates and
timestamps. A value PostgreSQL would refuse but SQLite kept (text longer than its
column, a NUL character, an integer beyond 32 bits) is reported with its table, column
and row, and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from alembic.util import CommandError
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    cast,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from app.extensions import db

CHUNK_ROWS = 1000  # rows per INSERT
CHUNK_BYTES = 16_000_000  # ...or fewer, when their text and files add up to this
PROGRESS_EVERY = 10_000  # rows between progress lines within one table
MAX_PROBLEMS = 20  # values PostgreSQL would refuse, listed before giving up

# Bookkeeping a target may hold before any reader used it (the first-run link, login
# throttling counters, a worker's claims on its periodic tasks); replaced by the
# source's. Rows anywhere else refuse the copy.
REPLACED_TABLES = frozenset({"settings", "rate_limits", "periodic_runs"})

INT32 = (-(2**31), 2**31 - 1)

# Migration 0008's insert triggers that index a post as it is written, and what they
# compute; change together with 0008.
SEARCH_TRIGGERS = {"posts": "posts_search_insert", "post_topics": "post_topics_search_insert"}
INDEX_POSTS = (
    "UPDATE posts SET search_vector ="
    " dogear_post_vector(id, title, summary, author, content_text)"
    " WHERE id IN (SELECT id FROM posts WHERE id > :after ORDER BY id LIMIT :batch)"
    " RETURNING id"
)

Report = Callable[[str], None]


class CopyError(Exception):
    """Why the copy was refused or failed, in words for the person running it."""


@dataclass
class Copied:
    """What one run copied: rows per table, in the order they were copied."""

    revision: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def model_tables() -> list[Table]:
    """Every table the models define, parents before children."""
    import app.models  # noqa: F401 - the models fill db.metadata

    return list(db.metadata.sorted_tables)


# --- the source: a SQLite file, read in one snapshot ---------------------------------


def source_url(value: str) -> URL:
    """The source as a SQLAlchemy URL: a `sqlite:///` URL or a path to the file."""
    try:
        url = make_url(value) if "://" in value else URL.create("sqlite", database=value)
    except ArgumentError as error:
        raise CopyError(f"--from: {error}") from error
    if url.get_backend_name() != "sqlite":
        raise CopyError(
            f"--from must be a SQLite database (sqlite:///path/to/dogear.db or the file's "
            f"path), not {url.get_backend_name()}."
        )
    if url.database in (None, "", ":memory:"):
        raise CopyError("--from must name the SQLite database's file.")
    if not Path(url.database).is_file():
        raise CopyError(f"There is no SQLite database at {url.database}.")
    return url


def open_source(url: URL, busy_timeout_ms: int = 5000) -> Engine:
    """An engine whose transactions are real SQLite read transactions (one snapshot)
    and whose connections cannot write."""
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite would not BEGIN before a SELECT
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision a database is at (None: no version table or row)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.scalar(text("SELECT version_num FROM alembic_version"))


def check_source_revision(revision: str | None, head: str, url: URL) -> None:
    if revision is None:
        raise CopyError(
            f"{url.database} has no schema version: it is not a Dogear database, or one "
            "that was never migrated."
        )
    if revision != head:
        raise CopyError(
            f"The source database is at schema version {revision}, this Dogear at {head}. "
            f"Upgrade the source first (stop Dogear, then "
            f"`DOGEAR_DATABASE_URL={url.render_as_string()} dogear db upgrade`) "
            "and copy again. Nothing was written to the target."
        )


# --- the target: PostgreSQL, empty, migrated ------------------------------------------


def tables_with_data(conn: Connection, tables: Iterable[Table]) -> list[str]:
    """The tables (of those that exist) holding rows that are more than bookkeeping."""
    inspector = inspect(conn)
    held = []
    for table in tables:
        if table.name in REPLACED_TABLES or not inspector.has_table(table.name):
            continue
        if conn.scalar(select(select(1).select_from(table).exists())):
            held.append(table.name)
    return held


def refuse_if_holds_data(conn: Connection, tables: Iterable[Table]) -> None:
    held = tables_with_data(conn, tables)
    if held:
        raise CopyError(
            f"The target database already holds data ({', '.join(held)}). Copy into a new, "
            "empty database (`createdb`), or drop this one's tables first. "
            "Nothing was changed."
        )


def migrate_target(target_app: Flask) -> None:
    """Bring the target to the head revision with the real migrations."""
    from alembic import command

    with target_app.app_context():
        config = target_app.extensions["migrate"].migrate.get_config()
        command.upgrade(config, "head")


def head_revision(app: Flask) -> str:
    from alembic.script import ScriptDirectory

    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise CopyError("This Dogear has no migrations to migrate the target with.")
    return head


# --- copying ---------------------------------------------------------------------------


def _checks(table: Table) -> list[tuple[str, Callable[[Any], str | None]]]:
    """Per column, a check that says why PostgreSQL would refuse a value SQLite kept."""

    def text_check(length: int | None) -> Callable[[Any], str | None]:
        def check(value: Any) -> str | None:
            if not isinstance(value, str):
                return None
            if "\x00" in value:
                return "contains a NUL character, which PostgreSQL text cannot hold"
            if length is not None and len(value) > length:
                return f"is {len(value):,} characters long; the column holds {length:,}"
            return None

        return check

    def int32_check(value: Any) -> str | None:
        if isinstance(value, int) and not INT32[0] <= value <= INT32[1]:
            return f"is {value}, beyond PostgreSQL's integer range"
        return None

    checks = []
    for column in table.columns:
        if isinstance(column.type, String):  # Text is a String without a length
            checks.append((column.key, text_check(column.type.length)))
        elif type(column.type) is Integer:  # BigInteger holds what SQLite holds
            checks.append((column.key, int32_check))
    return checks


def _size(row: Sequence[Any]) -> int:
    return sum(len(value) for value in row if isinstance(value, str | bytes)) + 64


def _batches(rows: Iterable[Sequence[Any]]) -> Iterator[list[Sequence[Any]]]:
    """Rows in lists of at most CHUNK_ROWS rows or about CHUNK_BYTES of text."""
    batch: list[Sequence[Any]] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += _size(row)
        if len(batch) >= CHUNK_ROWS or size >= CHUNK_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _row_label(table: Table, values: dict[str, Any]) -> str:
    keys = [column.key for column in table.primary_key.columns]
    if keys == ["id"]:
        return f"id {values['id']}"
    return ", ".join(f"{key} {values[key]!r}" for key in keys)


def _advance_sequences(conn: Connection, tables: Iterable[Table]) -> None:
    """Set each id sequence past the table's highest copied id (the next new row
    would otherwise get id 1 and collide)."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        sequence = conn.scalar(select(func.pg_get_serial_sequence(table.name, keys[0].name)))
        if sequence is None:
            continue
        highest = select(func.coalesce(func.max(keys[0]), 0)).scalar_subquery()
        conn.execute(select(func.setval(cast(sequence, REGCLASS), highest + 1, False)))


def _defer_search_index(conn: Connection) -> bool:
    """Disable the search insert triggers for this transaction; False if not allowed."""
    try:
        with conn.begin_nested():
            for table, trigger in SEARCH_TRIGGERS.items():
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
    except DBAPIError:
        return False
    return True


def _index_posts(conn: Connection, report: Report) -> None:
    """Compute every post's search vector, once, and enable the triggers again.
    In batches, to tell how far it got: this is the slow part of a copy."""
    started = time.monotonic()
    total = conn.scalar(text("SELECT count(*) FROM posts"))
    indexed = after = 0
    next_progress = PROGRESS_EVERY
    while ids := conn.scalars(text(INDEX_POSTS), {"after": after, "batch": CHUNK_ROWS}).all():
        indexed += len(ids)
        after = max(ids)
        if next_progress <= indexed < total:
            report(f"  {'search index':<16} {indexed:>10,} of {total:,} posts …")
            next_progress += PROGRESS_EVERY
    for table, trigger in SEARCH_TRIGGERS.items():
        conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))
    posts = f"{indexed:,} post" if indexed == 1 else f"{indexed:,} posts"
    report(f"  {'search index':<16} {posts:>15}{_took(started)}")


def _took(started: float) -> str:
    seconds = time.monotonic() - started
    return f"  ({seconds:,.1f} s)" if seconds >= 1 else ""


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _copy_table(
    reading: Connection,
    target: Connection,
    table: Table,
    total: int,
    problems: list[str],
    report: Report,
) -> int:
    """Copy one table in batches; the number of rows read. Values PostgreSQL would
    refuse are added to `problems`, and from the first one on nothing more is written
    (the copy is doomed; the rest of the source is only checked, to list them all)."""
    started = time.monotonic()
    keys = [column.key for column in table.columns]
    checks = _checks(table)
    done = 0
    next_progress = PROGRESS_EVERY
    query = select(table).order_by(*table.primary_key.columns)
    try:
        result = reading.execute(query.execution_options(yield_per=CHUNK_ROWS))
        for batch in _batches(result):
            values = [dict(zip(keys, row, strict=True)) for row in batch]
            for row in values:
                for key, check in checks:
                    why = check(row[key])
                    if why is not None:
                        label = _row_label(table, row)
                        problems.append(f"{table.name}.{key} of the row with {label} {why}")
            if not problems:
                target.execute(table.insert(), values)
            done += len(batch)
            if next_progress <= done < total:
                report(f"  {table.name:<16} {done:>10,} of {_rows(total)} …")
                next_progress += PROGRESS_EVERY
    except (DBAPIError, ValueError) as error:  # ValueError: SQLite text that isn't a date
        raise CopyError(
            f"Copying {table.name} failed: {error}. Nothing was written to the target."
        ) from error
    if not problems:
        report(f"  {table.name:<16} {_rows(done):>15}{_took(started)}")
    return done


def copy_rows(
    source: Engine,
    target: Connection,
    tables: Sequence[Table],
    head: str,
    source_location: URL,
    report: Report,
) -> Copied:
    """Copy every table's rows inside the target's open transaction; raises CopyError
    (the caller rolls back) on a refused value or a mismatch."""
    started = time.monotonic()
    copied = Copied(revision=head)
    preparer = target.dialect.identifier_preparer
    names = ", ".join(preparer.format_table(table) for table in tables)
    target.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    refuse_if_holds_data(target, tables)  # again, now that nobody can add rows
    for table in tables:
        if table.name in REPLACED_TABLES:
            target.execute(table.delete())

    deferred = _defer_search_index(target)
    if not deferred:
        report("  (posts are indexed for search as they arrive: this role may not")
        report("   disable the search triggers, which makes the copy slower)")

    problems: list[str] = []
    with source.connect() as reading, reading.begin():  # one snapshot of the source
        check_source_revision(schema_revision(reading), head, source_location)
        counts = {
            table.name: reading.scalar(select(func.count()).select_from(table)) for table in tables
        }
        for table in tables:
            total = counts[table.name]
            copied.rows[table.name] = _copy_table(reading, target, table, total, problems, report)

    if problems:
        shown = "\n".join(f"  - {problem}" for problem in problems[:MAX_PROBLEMS])
        more = len(problems) - MAX_PROBLEMS
        tail = f"\n  … and {more:,} more" if more > 0 else ""
        raise CopyError(
            f"PostgreSQL would refuse {len(problems):,} value(s) the SQLite database holds:\n"
            f"{shown}{tail}\n"
            "Correct them in the source (with Dogear stopped) and copy again. "
            "Nothing was written to the target."
        )

    if deferred:
        _index_posts(target, report)
    _advance_sequences(target, tables)
    mismatched = []
    for table in tables:
        found = target.scalar(select(func.count()).select_from(table))
        if found != counts[table.name] or copied.rows[table.name] != counts[table.name]:
            mismatched.append(
                f"{table.name}: {counts[table.name]:,} in the source, {found:,} in the target"
            )
    if mismatched:
        raise CopyError(
            "The row counts differ after copying, so nothing was kept: " + "; ".join(mismatched)
        )
    copied.seconds = time.monotonic() - started
    return copied


def copy_database(source_value: str, target_app: Flask, head: str, report: Report) -> Copied:
    """The whole copy from the SQLite file `source_value` into `target_app`'s database."""
    location = source_url(source_value)
    tables = model_tables()
    source = open_source(location)
    try:
        with source.connect() as reading, reading.begin():
            check_source_revision(schema_revision(reading), head, location)
        with target_app.app_context():
            target = db.engine
            if target.dialect.name != "postgresql":
                raise CopyError(
                    f"The target must be a PostgreSQL database, not {target.dialect.name} "
                    f"({target.url.render_as_string()}). Set DOGEAR_DATABASE_URL to "
                    "postgresql+psycopg://user@host/dbname or pass --to."
                )
            where = target.url.render_as_string(hide_password=True)
            try:
                with target.connect() as conn:
                    refuse_if_holds_data(conn, tables)
            except DBAPIError as error:
                raise CopyError(f"Cannot reach the target {where}: {error.orig}") from error
            report(f"Migrating {where} to schema version {head} …")
            migrate_target(target_app)
            report(f"Copying {location.database} into it, in one transaction:")
            with target.begin() as writing:
                return copy_rows(source, writing, tables, head, location, report)
    except (SQLAlchemyError, CommandError) as error:
        raise CopyError(f"The copy failed: {error}. Nothing was kept in the target.") from error
    finally:
        source.dispose()


def target_app_for(url: str | None) -> Flask:
    """The app on the target database: this app, or one like it bound to `url`."""
    this = current_app._get_current_object()  # type: ignore[attr-defined]
    if url is None:
        return this
    try:
        wanted = make_url(url)
    except ArgumentError as error:
        raise CopyError(f"--to: {error}") from error
    if wanted == make_url(this.config["SQLALCHEMY_DATABASE_URI"]):
        return this
    from app import create_app

    # Note: a second app also rebinds the job queue (app/jobs.py) to itself; harmless
    # in a command that ends when the copy does.
    config = {
        **this.config,
        "INSTANCE_PATH": this.instance_path,
        "SQLALCHEMY_DATABASE_URI": wanted.render_as_string(hide_password=False),
        "SQLALCHEMY_ENGINE_OPTIONS": {},
    }
    try:
        return create_app(config)
    except (SQLAlchemyError, ImportError) as error:
        raise CopyError(f"--to: cannot use {wanted.render_as_string()}: {error}") from error


@click.command("copy-database")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="SQLITE_URL",
    help="The SQLite database to copy: sqlite:///path/to/dogear.db or the file's path.",
)
@click.option(
    "--to",
    "target",
    default=None,
    metavar="URL",
    help="The PostgreSQL database to fill (postgresql+psycopg://user@host/db); "
    "default: the one Dogear is configured for (DOGEAR_DATABASE_URL).",
)
@with_appcontext
def copy_database_command(source: str, target: str | None) -> None:
    """Copy a SQLite database into a new, empty PostgreSQL database: migrate it, copy
    every table in one transaction, check the row counts. The source is only read."""
    try:
        target_app = target_app_for(target)
        try:
            copied = copy_database(source, target_app, head_revision(target_app), click.echo)
        finally:
            if target_app is not current_app._get_current_object():  # type: ignore[attr-defined]
                with target_app.app_context():
                    db.engine.dispose()
    except CopyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Copied {copied.total:,} rows in {len(copied.rows)} tables in {copied.seconds:.1f} s; "
        "every table's row count matches the source's."
    )
    click.echo(
        "Search is indexed and new ids continue after the copied ones. Point "
        "DOGEAR_DATABASE_URL at this database (if it isn't yet) and start Dogear."
    )

"""PostgreSQL for the search tests: a schema migrated once per session, emptied
before each test, and an app bound to it.

Like tests/test_postgres.py: uses DOGEAR_TEST_POSTGRES_URL (default: the local
server) when it answers and skips when it doesn't, unless DOGEAR_TEST_POSTGRES=required
(CI), which turns an unreachable server into a failure. Import the fixtures a module
uses (`from tests.pg import pg_schema`) and mark PostgreSQL cases with `MARKS`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from app.extensions import db
from tests.conftest import make_app

URL = os.environ.get(
    "DOGEAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRED = os.environ.get("DOGEAR_TEST_POSTGRES") == "required"


@cache
def server_answers() -> bool:
    try:
        engine = create_engine(URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
    except Exception:  # noqa: BLE001 - any failure means "no server here"
        return False
    return True


MARKS = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not REQUIRED and not server_answers(), reason=f"no PostgreSQL server answers at {URL}"
    ),
]


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty schema, dropped with everything in it afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def schema_url(schema: str) -> str:
    """The server's URL with `schema` as the search path: usable as
    DOGEAR_DATABASE_URL by another process, too."""
    return (
        make_url(URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@cache
def _engine(url: str) -> Engine:
    return create_engine(url)


def empty(url: str) -> None:
    """Delete every row of every table the models define (children first; on a few
    rows much faster than TRUNCATE)."""
    with _engine(url).begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
        # Search's lists (0012) and list summaries (0014) are not models; empty them too.
        for table in ("search_impacts", "search_impact_terms", "search_changes", "list_summaries"):
            conn.execute(text(f"DELETE FROM {table}"))


def settle(engine: Engine, loaded_by: int, timeout: float = 120) -> None:
    """Leave a bulk-loaded catalog as autovacuum would have by now: the table compacted
    (`VACUUM FULL posts`: bulk updates left a dead version of every row), statistics,
    the GIN pending list merged, the visibility map set (`VACUUM ANALYZE`).

    First waits (up to `timeout`) until no transaction older than `loaded_by`, the
    load's transaction id, is open on the server: another test process's, in its own
    schema. While one is, VACUUM must keep the dead rows and can't mark pages
    all-visible, and the planner's choices are not the ones production sees."""
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        while time.monotonic() < deadline:
            older = autocommit.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                    " AND (backend_xid::text::bigint <= :xid"
                    " OR backend_xmin::text::bigint <= :xid)"
                ),
                {"xid": loaded_by},
            ).scalar()
            if not older:
                break
            time.sleep(0.1)
        autocommit.exec_driver_sql("VACUUM FULL posts")
        autocommit.exec_driver_sql("VACUUM ANALYZE")


def pg_app(tmp_path: Path, schema: str, **overrides) -> Flask:
    """An app whose database is `schema` on the server (not yet migrated)."""
    return make_app(
        tmp_path,
        SQLALCHEMY_DATABASE_URI=URL,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": f"-csearch_path={schema}"}},
        **overrides,
    )


@contextmanager
def migrated_app(tmp_path: Path, **overrides) -> Iterator[Flask]:
    """An app on a fresh schema built by the migrations, inside its app context."""
    with fresh_schema() as schema:
        app = pg_app(tmp_path, schema, **overrides)
        with app.app_context():
            try:
                upgrade()
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()


@pytest.fixture(scope="session")
def pg_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A schema migrated once for the session; `emptied_app` empties it per test."""
    with fresh_schema() as schema:
        app = pg_app(tmp_path_factory.mktemp("pg"), schema)
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield schema


@contextmanager
def emptied_app(tmp_path: Path, schema: str) -> Iterator[Flask]:
    """An app on the session's schema, every table emptied first."""
    app = pg_app(tmp_path, schema)
    with app.app_context():
        # DELETE, children first: on a few rows much faster than TRUNCATE.
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()

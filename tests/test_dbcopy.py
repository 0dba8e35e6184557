"""`dogear copy-database`: a self-hoster moves from SQLite to PostgreSQL and finds
everything where it was.

The source is a SQLite file built by the real migrations and filled through the app;
the target a fresh PostgreSQL schema (tests/pg.py). After the copy, an app on the
schema is used through the HTTP client, as the reader would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, inspect, select, text

from app.audit import record_now
from app.auth.services import get_setting, issue_setup_token, set_setting
from app.extensions import db
from app.lists import services
from app.models import AuditEvent, Entry, Post, Source, Topic, Upload, User
from app.tags.services import add_tags
from tests import pg
from tests.conftest import PASSWORD, make_app, sign_in
from tests.pg import MARKS

pytestmark = MARKS

BODY = "Feed the levain twice a day with flour and water."
CREATED = datetime(2026, 3, 4, 5, 6, 7, 890123)


def _copy(app: Flask, *args: str):
    """Run the command as `dogear` would on `app` (its context pushed over the test's
    source app, which the command would otherwise find already pushed and use)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=["copy-database", *args])


@pytest.fixture
def schema() -> Iterator[str]:
    with pg.fresh_schema() as name:
        yield name


@pytest.fixture
def target(tmp_path: Path, schema: str) -> Iterator[Flask]:
    """An app configured for the (not yet migrated) PostgreSQL schema."""
    app = pg.pg_app(tmp_path / "pg", schema)
    yield app
    with app.app_context():
        db.engine.dispose()


STALE_VECTORS = text(
    "SELECT count(*) FROM posts WHERE search_vector IS DISTINCT FROM"
    " dogear_post_vector(id, title, summary, author, content_text)"
)


def _stale_vectors(app: Flask) -> int:
    """Posts whose search vector differs from what the triggers would compute now."""
    with app.app_context():
        stale = db.session.scalar(STALE_VECTORS)
        db.session.remove()
        return stale


def _enabled_search_triggers(app: Flask) -> int:
    with app.app_context():
        enabled = db.session.scalar(
            text(
                "SELECT count(*) FROM pg_trigger WHERE tgenabled = 'O'"
                " AND tgrelid IN ('posts'::regclass, 'post_topics'::regclass)"
                " AND tgname IN ('posts_search_insert', 'post_topics_search_insert')"
            )
        )
        db.session.remove()
        return enabled


def _source_path(app: Flask) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")


def _counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
        counts = {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables
            if table.name in tables
        }
        db.session.remove()
        return counts


@pytest.fixture
def library(app, client, make_user, make_post) -> dict[str, int]:
    """A SQLite database with a bit of everything, made the way the app makes it."""
    ada = make_user("ada@example.com", is_admin=True)
    bob = make_user("bob@example.com")
    source = Source(
        name="Bread blog",
        kind="feed",
        url="https://bread.example.org/feed",
        fetch_full_articles=True,
        last_success_at=CREATED,
    )
    db.session.add(source)
    db.session.add(Topic(slug="fermentation", name="Fermentation"))
    db.session.commit()
    starter = make_post(
        title="Keeping a starter alive",
        summary="Notes from a small kitchen.",
        content_text=BODY,
        published_on=date(2025, 12, 24),
        topics=["fermentation", "baking"],
        source_id=source.id,
    )
    other = make_post(title="Something else entirely", topics=["baking"])
    db.session.add(Upload(user_id=bob.id, filename="export.csv", data=b"\x00\xffbytes", size=7))
    db.session.commit()
    services.add_article(bob, "https://example.org/bobs-notes", "Bob's own notes")
    set_setting("registration", "open")
    record_now("settings.registration", actor=ada, target="registration", detail="open")

    assert sign_in(client, ada).status_code == 303
    assert client.submit(f"/list/save/{starter.id}", htmx=True).status_code == 200
    entry = db.session.scalar(select(Entry).where(Entry.post_id == starter.id))
    response = client.submit(f"/list/{entry.id}/progress", {"progress": "40"}, htmx=True)
    assert response.status_code == 200
    add_tags(db.session.get(User, ada.id), entry.id, ["sourdough"])
    return {"ada": ada.id, "starter": starter.id, "other": other.id, "entry": entry.id}


def test_a_copy_into_postgres_keeps_everything_a_reader_sees(app, library, schema, tmp_path):
    source_counts = _counts(app)
    assert source_counts["audit_events"] >= 2 and source_counts["login_sessions"] == 1
    # Configured for SQLite, as before the move; the target named by URL, with its
    # search path in the query string (psycopg's `options`).
    result = _copy(app, "--from", _source_path(app), "--to", pg.schema_url(schema))
    assert result.exit_code == 0, result.output
    assert "post_topics" in result.output and "row count matches" in result.output

    moved = pg.pg_app(tmp_path / "moved", schema)
    assert _counts(moved) == source_counts
    assert _stale_vectors(moved) == 0
    with moved.app_context():
        try:
            _reader_finds_everything(moved, library)
        finally:
            db.session.remove()
            db.engine.dispose()


def _reader_finds_everything(moved: Flask, library: dict[str, int]) -> None:
    client = moved.test_client()
    assert sign_in(client, "ada@example.com", PASSWORD).status_code == 303
    page = client.get("/list?state=reading").get_data(as_text=True)
    assert "Keeping a starter alive" in page and "40 % read" in page and "#sourdough" in page

    def found(q: str) -> str:
        response = client.get("/search", query_string={"q": q})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "Keeping a starter alive" in found("levain")  # a word of the body
    by_topic = found("fermentation")  # a topic's name, inserted after the post
    assert "Keeping a starter alive" in by_topic and "Something else" not in by_topic
    assert "Something else entirely" in found("baking")

    # Types came across as types, not SQLite's text and integers.
    ada = db.session.get(User, library["ada"])
    assert ada.is_admin is True and isinstance(ada.last_login_at, datetime)
    starter = db.session.get(Post, library["starter"])
    assert starter.published_on == date(2025, 12, 24)
    assert starter.source.fetch_full_articles is True
    assert starter.source.last_success_at == CREATED  # microseconds too
    assert [topic.slug for topic in starter.topics] == ["baking", "fermentation"]
    assert db.session.scalar(select(Upload.data)) == b"\x00\xffbytes"
    entry = db.session.get(Entry, library["entry"])
    assert entry.progress == 40 and entry.state == "reading"
    assert isinstance(entry.started_at, datetime)

    # New rows get new ids: the sequences were moved past the copied ones.
    highest_post = db.session.scalar(select(func.max(Post.id)))
    response = client.submit("/list/add", {"url": "https://example.org/new", "title": "New"})
    assert response.status_code == 303
    new_post = db.session.scalar(select(Post).where(Post.url == "https://example.org/new"))
    assert new_post.id == highest_post + 1
    highest_user = db.session.scalar(select(func.max(User.id)))
    response = moved.test_client().submit(
        "/register",
        {"email": "cy@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert response.status_code == 303  # registration stayed open: settings came along
    assert db.session.scalar(select(User.id).where(User.email == "cy@example.com")) == (
        highest_user + 1
    )
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) > 2


def test_the_target_defaults_to_the_configured_database(app, library, target):
    # Started once on PostgreSQL before the move: migrated, a first-run link issued.
    # That bookkeeping is no reader's data; the source's settings replace it.
    with target.app_context():
        upgrade()
        assert issue_setup_token() is not None
        db.session.remove()
    result = _copy(target, "--from", _source_path(app))
    assert result.exit_code == 0, result.output
    copied = _counts(target)
    assert copied["entry_tags"] == 1 and copied["settings"] == _counts(app)["settings"]
    assert _stale_vectors(target) == 0 and _enabled_search_triggers(target) == 2
    with target.app_context():
        assert get_setting("registration") == "open"
        db.session.remove()


def test_without_the_right_to_disable_triggers_they_index_as_rows_arrive(
    app, library, target, monkeypatch
):
    # Disabling a trigger needs the table's owner; a trigger that isn't there fails
    # the same way, and the copy falls back to the triggers 0008 installed.
    monkeypatch.setattr("app.dbcopy.SEARCH_TRIGGERS", {"posts": "no_such_trigger"})
    result = _copy(target, "--from", _source_path(app))
    assert result.exit_code == 0, result.output
    assert "indexed for search as they arrive" in result.output
    assert _stale_vectors(target) == 0
    assert _enabled_search_triggers(target) == 2


def test_a_target_that_holds_data_is_refused_and_left_alone(app, library, target):
    assert _copy(target, "--from", _source_path(app)).exit_code == 0
    before = _counts(target)
    again = _copy(target, "--from", _source_path(app))
    assert again.exit_code != 0
    assert "already holds data (" in again.output and "users" in again.output
    assert "Nothing was changed" in again.output
    assert _counts(target) == before


def test_a_source_behind_the_app_is_refused_before_the_target_is_touched(tmp_path, target):
    old = make_app(tmp_path / "old")
    with old.app_context():
        upgrade(revision="0007")
        db.engine.dispose()
    result = _copy(target, "--from", _source_path(old))
    assert result.exit_code != 0
    assert "schema version 0007" in result.output and "dogear db upgrade" in result.output
    with target.app_context():
        assert inspect(db.engine).get_table_names() == []  # not even migrated


def test_the_source_must_be_sqlite_and_the_target_postgres(app, tmp_path, target):
    missing = _copy(target, "--from", str(tmp_path / "nowhere.db"))
    assert missing.exit_code != 0 and "There is no SQLite database at" in missing.output
    assert not (tmp_path / "nowhere.db").exists()
    to_sqlite = _copy(app, "--from", _source_path(app))
    assert to_sqlite.exit_code != 0 and "must be a PostgreSQL database" in to_sqlite.output


def _sqlite(app: Flask, sql: str, *params: object) -> None:
    """Write to the source behind the app's back, as a broken or old database might be."""
    with app.app_context():
        db.engine.dispose()
    with sqlite3.connect(_source_path(app)) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(sql, params)
    conn.close()


def test_a_copy_that_fails_midway_leaves_no_half_copy(app, library, target):
    # An activity for a post that no longer exists: SQLite kept it (foreign keys were
    # off), PostgreSQL refuses it, after users, posts and entries were inserted.
    _sqlite(
        app,
        "INSERT INTO activities (user_id, post_id, at, progress_from, progress_to)"
        " VALUES (?, 999999, '2026-01-01 00:00:00.000000', 0, 10)",
        library["ada"],
    )
    result = _copy(target, "--from", _source_path(app))
    assert result.exit_code != 0
    assert "Copying activities failed" in result.output and "Nothing was" in result.output
    counts = _counts(target)
    assert counts["users"] == 0 and counts["posts"] == 0 and sum(counts.values()) == 0

    _sqlite(app, "DELETE FROM activities WHERE post_id = 999999")
    retry = _copy(target, "--from", _source_path(app))  # migrated but empty: welcome
    assert retry.exit_code == 0, retry.output
    assert _counts(target)["users"] == 2


def test_values_postgres_would_refuse_are_listed_and_nothing_is_written(app, library, target):
    _sqlite(app, "UPDATE entries SET title = ? WHERE id = ?", "x" * 501, library["entry"])
    _sqlite(app, "UPDATE posts SET summary = ? WHERE id = ?", "a\x00b", library["other"])
    result = _copy(target, "--from", _source_path(app))
    assert result.exit_code != 0
    assert "PostgreSQL would refuse 2 value(s)" in result.output
    assert f"entries.title of the row with id {library['entry']} is 501 characters" in (
        result.output
    )
    assert f"posts.summary of the row with id {library['other']} contains a NUL" in result.output
    assert sum(_counts(target).values()) == 0


def test_the_source_is_read_in_one_snapshot_while_the_app_writes(app, library, target):
    """Rows the still-running app adds during the copy are neither copied nor break it."""
    from app.dbcopy import copy_database, head_revision

    path = _source_path(app)
    tables: list[str] = []

    def report(line: str) -> None:
        if line.startswith("  ") and not tables:  # after the first table, a reader signs up
            _sqlite(
                app,
                "INSERT INTO users (email, password_hash, is_admin, is_disabled,"
                " created_at) VALUES ('late@example.com', 'x', 0, 0, '2026-01-01')",
            )
            tables.append(line)

    copied = copy_database(path, target, head_revision(target), report)
    assert copied.rows["users"] == 2
    assert _counts(target)["users"] == 2
    assert _counts(app)["users"] == 3

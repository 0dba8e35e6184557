"""The same schema and core flows on PostgreSQL, the path for those who outgrow SQLite.

Runs against DOGEAR_TEST_POSTGRES_URL (default: the local server) when it answers and
skips cleanly when it doesn't, unless DOGEAR_TEST_POSTGRES=required (CI), which turns
an unreachable server into a failure. Each test gets a fresh schema from the migrations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from app.extensions import db
from app.lists import services
from app.models import Activity, Entry, User
from tests.conftest import make_app, run_concurrently, sign_in
from tests.pg import MARKS, URL

pytestmark = MARKS


@pytest.fixture
def pg_app(tmp_path) -> Iterator[Flask]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(URL)
    with admin_engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    app = make_app(
        tmp_path,
        SQLALCHEMY_DATABASE_URI=URL,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": f"-csearch_path={schema}"}},
    )
    try:
        with app.app_context():
            upgrade()
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


def test_migrations_and_the_reading_flow_work_on_postgres(pg_app):
    from app.auth.services import create_user
    from app.catalog.importer import import_listings
    from tests.conftest import SEEDS

    files = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("*.txt"))]
    assert import_listings(files).created == 17
    create_user("ada@example.com", "correct horse battery")
    client = pg_app.test_client()
    assert sign_in(client, "ada@example.com").status_code == 303
    assert "Async Python Database Drivers" in client.get("/").get_data(as_text=True)
    first_post = db.session.execute(text("SELECT min(id) FROM posts")).scalar()
    assert client.submit(f"/list/save/{first_post}", htmx=True).status_code == 200
    entry = db.session.scalar(select(Entry))
    response = client.submit(f"/list/{entry.id}/progress", {"progress": "100"}, htmx=True)
    assert response.status_code == 200 and "state-done" in response.get_data(as_text=True)
    assert (
        client.submit(f"/list/{entry.id}/progress", {"progress": "150"}, htmx=True).status_code
        == 422
    )
    assert db.session.scalar(select(func.count()).select_from(Activity)) == 1


def test_concurrent_saves_give_one_entry_on_postgres(pg_app):
    from app.auth.services import create_user
    from app.models import Post

    user_id = create_user("ada@example.com", "correct horse battery").id
    post = Post(title="One", dedupe_key="one", reading_minutes=3)
    db.session.add(post)
    db.session.commit()
    post_id = post.id

    def save() -> None:
        services.save_post(db.session.get(User, user_id), post_id)

    assert run_concurrently(pg_app, save) == []
    assert db.session.scalar(select(func.count()).select_from(Entry)) == 1


def test_rate_limit_counters_work_on_postgres(pg_app):
    from app.ratelimit import DatabaseStorage

    storage = DatabaseStorage()
    assert storage.check()
    assert [storage.incr("login/1.2.3.4", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("login/1.2.3.4") == 3
    storage.clear("login/1.2.3.4")
    assert storage.get("login/1.2.3.4") == 0


def test_a_connection_the_server_dropped_is_replaced_without_an_error(pg_app, tmp_path):
    options = pg_app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"]
    app = make_app(  # the same database, under a name the test can find its connections by
        tmp_path / "second",
        SQLALCHEMY_DATABASE_URI=URL,
        SQLALCHEMY_ENGINE_OPTIONS={
            "connect_args": {"options": options, "application_name": "dogear-dropped"},
        },
    )
    client = app.test_client()
    assert client.get("/").status_code == 200  # the pool now holds a connection
    killer = create_engine(URL)
    with killer.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'dogear-dropped'"
            )
        ).scalar()
    killer.dispose()
    assert killed >= 1
    assert client.get("/").status_code == 200  # not a 500: the pool replaced it
    with app.app_context():
        db.engine.dispose()

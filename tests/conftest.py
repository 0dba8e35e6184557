"""Shared fixtures: a fresh app and database per test, and small factories.

The database is SQLite unless DOGEAR_TEST_DATABASE=postgresql, which runs the same
tests against the PostgreSQL server of tests/pg.py (a schema migrated once per
session, emptied before each test). Tests about one database's internals carry
`@pytest.mark.sqlite_only` or `@pytest.mark.postgres` and run only on theirs.
"""

from __future__ import annotations

import contextvars
import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.auth.services import create_user
from app.extensions import db
from app.models import Post, Topic, User

pytest_plugins = ["webserver", "browsing"]

DATABASE = os.environ.get("DOGEAR_TEST_DATABASE", "sqlite")
if DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"DOGEAR_TEST_DATABASE must be sqlite or postgresql, not {DATABASE!r}")
ON_POSTGRES = DATABASE == "postgresql"

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}
_CSRF = re.compile(
    r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"|"X-CSRFToken": "([^"]+)"'
)


class Client(FlaskClient):
    """A test client that sends the CSRF token the way a browser form or htmx would.

    Each request runs in a fresh context, so it gets its own app context, `g` and
    database session as it would under gunicorn, even though the test itself keeps
    an app context pushed for its own queries.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if not has_app_context():  # a redirect being followed, already in a fresh context
            return super().open(*args, **kwargs)
        db.session.rollback()  # drop the test's read snapshot so it sees the request's writes
        response = contextvars.Context().run(super().open, *args, **kwargs)
        db.session.rollback()
        return response

    def csrf_token(self, path: str = "/") -> str:
        html = self.get(path).get_data(as_text=True)
        match = _CSRF.search(html)
        assert match, f"no CSRF token on {path}"
        return match.group(1) or match.group(2)

    def submit(
        self, url: str, data: dict[str, Any] | None = None, *, htmx: bool = False, **kwargs: Any
    ) -> Any:
        """POST like a browser: form token for plain posts, X-CSRFToken header for htmx."""
        data = dict(data or {})
        token = self.csrf_token()
        headers = dict(kwargs.pop("headers", {}))
        if htmx:
            headers.update(HTMX)
            headers["X-CSRFToken"] = token
        else:
            data.setdefault("csrf_token", token)
        return self.post(url, data=data, headers=headers, **kwargs)

    def htmx_get(self, url: str, **kwargs: Any) -> Any:
        headers = {**HTMX, **kwargs.pop("headers", {})}
        return self.get(url, headers=headers, **kwargs)


TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-123456"


def make_app(tmp_path: Path, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DEMO": False,
        "RATELIMIT_ENABLED": False,
        "FACETS_MAX_AGE": 0,
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = Client
    return app


def process_env(instance: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a Dogear process a test starts (gunicorn, the worker, the
    CLI): this one's, without any DOGEAR_* setting of the shell running the tests,
    pointed at the test's instance folder and database; `extra` are more variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGEAR_")}
    env.update(
        DOGEAR_INSTANCE_PATH=str(instance),
        DOGEAR_DATABASE_URL=database_url,
        DOGEAR_SECRET_KEY=TEST_SECRET_KEY,
        DOGEAR_DEMO="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database built by the real migrations once; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("template")
    app = make_app(path)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path / "test.db"


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """On the PostgreSQL pass: the URL of a schema migrated once for the session."""
    from tests import pg

    with pg.fresh_schema() as schema:
        url = pg.schema_url(schema)
        app = make_app(tmp_path_factory.mktemp("pg"), SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield url


@pytest.fixture
def database(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A fresh, migrated, empty database for this test, as app config overrides:
    a copy of the migrated SQLite file, or the emptied PostgreSQL test schema."""
    if ON_POSTGRES:
        from tests import pg

        url = request.getfixturevalue("postgres_template")
        pg.empty(url)
        return {"SQLALCHEMY_DATABASE_URI": url}
    shutil.copy(request.getfixturevalue("migrated_db"), tmp_path / "test.db")
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}"}


def pytest_configure(config: pytest.Config) -> None:
    # `make test` and `make test-postgres` leave these out; `make test-faults` runs them.
    config.addinivalue_line(
        "markers", "faults_process: real processes: gunicorn, kill -9, concurrent importers"
    )


# Files that take minutes. pytest-xdist hands files to its workers in collection
# order, so these go first and the small ones fill in at the end, instead of one
# worker finishing a long file alone.
SLOW_FILES = frozenset(
    {
        "test_import_streaming.py",
        "test_admin_browser.py",
        "test_exports.py",
        "test_worker.py",
        "test_reader_browser.py",
        "test_imports_browser.py",
        "test_search_postgres.py",
        "test_query_plans.py",
        "test_imports.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow files first. On the PostgreSQL pass, leave out what is about SQLite's
    internals, what the SQLite pass already ran against PostgreSQL (marked
    `postgres`) and screenshots (`one_database`: they show the same pages)."""
    items.sort(key=lambda item: item.path.name not in SLOW_FILES)  # stable
    if not ON_POSTGRES:
        return
    kept, left_out = [], []
    once = ("sqlite_only", "postgres", "one_database")
    for item in items:
        if any(item.get_closest_marker(marker) for marker in once):
            left_out.append(item)
        else:
            kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture
def app(tmp_path: Path, database: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(tmp_path, **database)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> Client:
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def make_user(app: Flask):
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, *, password: str = PASSWORD, **overrides: Any) -> User:
        user = create_user(
            email or f"reader{next(counter)}@example.com",
            password,
            is_admin=overrides.pop("is_admin", False),
        )
        for key, value in overrides.items():
            setattr(user, key, value)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_post(app: Flask):
    counter = iter(range(1, 100_000))

    def make(**overrides: Any) -> Post:
        n = next(counter)
        topics = overrides.pop("topics", [])
        values: dict[str, Any] = {
            "title": f"Post number {n}",
            "summary": f"A summary of post {n}.",
            "author": "Ada Writer",
            "published_on": date(2026, 1, 1 + n % 28),
            "reading_minutes": 7,
            "word_count": 1500,
            "dedupe_key": f"key-{n}",
        }
        values.update(overrides)
        post = Post(**values)
        for slug in topics:
            topic = db.session.query(Topic).filter_by(slug=slug).one_or_none()
            post.topics.append(topic or Topic(slug=slug, name=slug.title()))
        db.session.add(post)
        db.session.commit()
        return post

    return make


def sign_in(client: Client, user: User | str, password: str = PASSWORD, **extra: Any) -> Any:
    email = user if isinstance(user, str) else user.email
    return client.submit("/login", {"email": email, "password": password, **extra})


@pytest.fixture
def reader(make_user, client: Client) -> User:
    """A signed-in reader."""
    user = make_user("reader@example.com")
    response = sign_in(client, user)
    assert response.status_code == 303
    return user


@pytest.fixture
def admin(make_user, client: Client) -> User:
    """A signed-in admin."""
    user = make_user("admin@example.com", is_admin=True)
    assert sign_in(client, user).status_code == 303
    return user


def run_concurrently(app: Flask, action: Any, workers: int = 4) -> list[BaseException]:
    """Run `action()` in `workers` threads that start together, each in its own app
    context (so its own database connection, as in separate gunicorn workers).
    Returns the exceptions raised; pass ids, not ORM objects, into `action`."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait()
                action()
            except BaseException as error:  # noqa: BLE001 - returned to the test
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.rollback()  # leave the test's old read snapshot to see the writes
    return errors

"""The app as a self-hoster runs it: configuration, secrets, schema. Health, headers,
file parts and NULs in forms, and the secret-strength checks are in tests/faults/."""

from __future__ import annotations

import os
import secrets
import stat
import string
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from app import create_app
from app.db import include_in_autogenerate
from app.extensions import db
from app.security import safe_next_url

ROOT = Path(__file__).resolve().parents[1]


def test_secret_key_is_generated_once_with_owner_only_permissions(tmp_path, monkeypatch):
    monkeypatch.delenv("DOGEAR_SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app({"INSTANCE_PATH": str(tmp_path)})
    second = create_app({"INSTANCE_PATH": str(tmp_path)})
    key_file = tmp_path / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert len(first.config["SECRET_KEY"]) >= 32
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


@pytest.mark.parametrize("secret", [None, "dev", "changeme", "short"])
def test_production_refuses_a_missing_or_weak_secret(tmp_path, monkeypatch, secret):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DOGEAR_ENV", "production")
    if secret is None:
        monkeypatch.delenv("DOGEAR_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("DOGEAR_SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"INSTANCE_PATH": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()


def test_production_starts_with_a_strong_secret_and_secure_cookies(tmp_path, monkeypatch):
    monkeypatch.setenv("DOGEAR_ENV", "production")
    monkeypatch.setenv("DOGEAR_SECRET_KEY", secrets.token_urlsafe(32))
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_configuration_order_defaults_instance_file_then_environment(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text('POSTS_PER_PAGE = 7\nBASE_URL = "https://file.example"\n')
    monkeypatch.setenv("DOGEAR_BASE_URL", "https://env.example")
    monkeypatch.setenv("DOGEAR_DATABASE_URL", f"sqlite:///{tmp_path}/other.db")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s" * 40})
    assert app.config["POSTS_PER_PAGE"] == 7
    assert app.config["BASE_URL"] == "https://env.example"
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("/other.db")


def test_default_database_is_sqlite_in_instance_with_wal_and_foreign_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("DOGEAR_DATABASE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s" * 40})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/dogear.db"
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 5000
        db.engine.dispose()


def test_migrations_match_the_models(app):
    """A model change without a migration fails here."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_in_autogenerate}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == []


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/list", "/list"),
        ("/?topic=rust", "/?topic=rust"),
        ("https://evil.example", None),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("/ok\r\nSet-Cookie: x", None),
        ("", None),
    ],
)
def test_safe_next_url(target, expected):
    assert safe_next_url(target) == expected


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    """Every migration can be undone and redone; the search index survives the trip."""
    from flask_migrate import downgrade, upgrade

    from tests.conftest import make_app

    app = make_app(tmp_path)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert (
            db.session.execute(text("SELECT name FROM sqlite_master WHERE name='posts'")).all()
            == []
        )
        db.session.rollback()  # end the read snapshot taken before the upgrade
        upgrade()
        triggers = db.session.execute(
            text("SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name='posts'")
        ).scalar()
        assert triggers >= 3
        db.engine.dispose()


def test_rate_limit_counters_expire_with_their_window(app, monkeypatch):
    import app.ratelimit as ratelimit

    storage = ratelimit.DatabaseStorage()
    now = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    assert [storage.incr("k", 60) for _ in range(2)] == [1, 2]
    assert storage.get_expiry("k") == 1_000_060.0
    now[0] += 61  # the window ended: the count starts again
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1


# --- several hosts: one secret key ------------------------------------------------------

SHARED_DATABASE = "postgresql+psycopg://dogear@db.example:5432/dogear"  # never connected to


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_shared_database_refuses_to_start_without_a_configured_secret(
    tmp_path, monkeypatch, env
):
    for name in ("DOGEAR_SECRET_KEY", "SECRET_KEY", "DOGEAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOGEAR_ENV", env)
    with pytest.raises(RuntimeError) as refused:
        create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED_DATABASE})
    message = str(refused.value)
    assert "database is postgresql" in message
    assert "Set DOGEAR_SECRET_KEY to the same value on every host" in message
    assert not (tmp_path / "secret_key").exists()  # no key of this host's own is made


def test_a_key_file_of_one_host_is_not_enough_for_a_shared_database(tmp_path, monkeypatch):
    for name in ("DOGEAR_SECRET_KEY", "SECRET_KEY", "DOGEAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "secret_key").write_text("k" * 48)  # made back when this was SQLite
    with pytest.raises(RuntimeError, match="use its contents as DOGEAR_SECRET_KEY"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED_DATABASE})


def test_a_shared_database_starts_with_the_configured_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("DOGEAR_DATABASE_URL", raising=False)
    monkeypatch.setenv("DOGEAR_SECRET_KEY", "the-same-on-every-host-" + "x" * 20)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED_DATABASE})
    assert app.config["SECRET_KEY"] == "the-same-on-every-host-" + "x" * 20
    assert not (tmp_path / "secret_key").exists()


def test_the_job_queue_is_named_so_two_dogears_can_share_one_redis(tmp_path):
    from app import jobs

    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "s" * 40,
            "REDIS_URL": "redis://127.0.0.1:6379/0",  # not connected to until a job is queued
            "JOBS_NAME": "dogear-staging",
        }
    )
    assert jobs.queue_url(app.config) == "redis://127.0.0.1:6379/0"
    assert type(jobs.huey.storage).__name__ == "RedisStorage"
    assert jobs.huey.storage.queue_key == "huey.redis.dogearstaging"  # Huey drops the "-"
    app.config["JOBS_URL"] = "memory://"  # JOBS_URL wins over REDIS_URL
    assert jobs.queue_url(app.config) == "memory://"


# --- production secrets: long is not enough, they must be unpredictable ----------------


def test_a_secret_that_looks_like_a_number_is_kept_as_text(tmp_path, monkeypatch):
    key = "1" + "".join(secrets.choice(string.digits) for _ in range(47))  # 48 random digits
    monkeypatch.setenv("DOGEAR_SECRET_KEY", key)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SECRET_KEY"] == key


def test_production_refuses_a_weak_key_file_and_accepts_the_generated_one(tmp_path, monkeypatch):
    for name in ("DOGEAR_SECRET_KEY", "SECRET_KEY", "DOGEAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    create_app({"INSTANCE_PATH": str(tmp_path)})  # development writes instance/secret_key
    monkeypatch.setenv("DOGEAR_ENV", "production")
    generated = (tmp_path / "secret_key").read_text()
    assert create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"] == generated
    (tmp_path / "secret_key").write_text("x" * 64)
    with pytest.raises(RuntimeError, match=r"read from .*secret_key uses only 1 different"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_a_shared_database_still_needs_its_key_configured_in_production(tmp_path, monkeypatch):
    for name in ("DOGEAR_SECRET_KEY", "SECRET_KEY", "DOGEAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOGEAR_ENV", "production")
    (tmp_path / "secret_key").write_text(secrets.token_urlsafe(48))
    with pytest.raises(RuntimeError, match="Set DOGEAR_SECRET_KEY to the same value"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED_DATABASE})
    monkeypatch.setenv("DOGEAR_SECRET_KEY", "changeme" * 5)
    with pytest.raises(RuntimeError, match="uses only 7 different characters"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": SHARED_DATABASE})


# --- proxy settings are checked when Dogear starts --------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("read.example.org", ["read.example.org"]),
        ("read.example.org, www.read.example.org", ["read.example.org", "www.read.example.org"]),
        ('["Read.Example.org", ".example.net"]', ["read.example.org", ".example.net"]),
        ("", None),
    ],
)
def test_trusted_hosts_read_from_the_environment(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("DOGEAR_TRUSTED_HOSTS", value)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s" * 40})
    assert app.config["TRUSTED_HOSTS"] == expected


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DOGEAR_TRUSTED_HOSTS", "https://read.example.org", "not a host name"),
        ("DOGEAR_PROXY_FIX", "yes", "number of reverse proxies"),
        ("DOGEAR_PROXY_FIX", "-1", "number of reverse proxies"),
        ("DOGEAR_FETCH_ALLOW_PRIVATE", "true", "DOGEAR_FETCH_ALLOW_PRIVATE: expected"),
        ("DOGEAR_FETCH_ALLOW_PRIVATE", "10.0.0.0/8,intranet", "DOGEAR_FETCH_ALLOW_PRIVATE"),
        ("DOGEAR_FETCH_TIMEOUT", "soon", "DOGEAR_FETCH_TIMEOUT"),
    ],
)
def test_a_network_setting_that_makes_no_sense_refuses_to_start(
    tmp_path, monkeypatch, name, value, says
):
    monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=says):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s" * 40})


# Loaded only where they are used: the job worker extracts articles and reads feeds,
# the command line migrates, the two-factor set-up page draws a QR code.
NOT_IN_WEB_WORKERS = ("alembic", "flask_migrate", "trafilatura", "feedparser", "segno")


def _loaded_by(statement: str, tmp_path: Path) -> list[str]:
    """Which of NOT_IN_WEB_WORKERS a fresh Python process has loaded after `statement`."""
    listed = f"','.join(m for m in {NOT_IN_WEB_WORKERS!r} if m in sys.modules)"
    code = f"import sys\n{statement}\nprint({listed})"
    env = {
        **os.environ,
        "DOGEAR_DATABASE_URL": f"sqlite:///{tmp_path / 'dogear.db'}",
        "DOGEAR_INSTANCE_PATH": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [name for name in done.stdout.strip().split(",") if name]


def test_web_workers_leave_out_what_no_request_needs(tmp_path):
    """gunicorn's workers serve wsgi.py's app; each module left out is memory every
    worker keeps (Alembic alone, about 12 MB). The full app, for the command line,
    has the migration commands."""
    assert _loaded_by("import wsgi", tmp_path) == []
    assert {"alembic", "flask_migrate"} <= set(
        _loaded_by("from app import create_app; create_app()", tmp_path)
    )

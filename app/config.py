"""Configuration: built-in defaults, then `instance/config.py`, then `DOGEAR_*` variables."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Values that must never sign sessions in production.
WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "please-change-me", "test"}


class Defaults:
    ENV = "development"
    SQLALCHEMY_DATABASE_URI: str | None = None  # filled in from the instance path
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
    DEMO = True
    BASE_URL = "http://127.0.0.1:8000"
    POSTS_PER_PAGE = 20
    FACETS_MAX_AGE = 60  # seconds a worker reuses the catalog's facet counts
    SQLITE_BUSY_TIMEOUT_MS = 5000
    RATELIMIT_STORAGE_URI = "dogear+db://"  # shared by all workers; see app/ratelimit.py
    RATELIMIT_LOGIN = "10 per minute"
    RATELIMIT_HEADERS_ENABLED = False
    SESSION_COOKIE_SECURE: bool | None = None  # None: secure in production only
    REMEMBER_COOKIE_SECURE: bool | None = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_DURATION = 60 * 60 * 24 * 30
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    PROXY_FIX = 0  # number of trusted reverse proxies in front of gunicorn
    # Background jobs (app/jobs.py): "" keeps the queue in instance/jobs.db.
    JOBS_URL = ""
    REDIS_URL = ""
    JOBS_WORKERS = 2
    # The one outbound HTTP client (app/fetching/).
    FETCH_ALLOW_PRIVATE: list[str] = []  # CIDR ranges Dogear may fetch from anyway
    FETCH_CONNECT_TIMEOUT = 5
    FETCH_TIMEOUT = 20  # seconds for a whole fetch, redirects and body included
    FETCH_MAX_BYTES = 5_000_000
    FETCH_MAX_REDIRECTS = 5
    FETCH_USER_AGENT = "Dogear/0.1 (self-hosted reading list)"
    FETCH_MAX_ATTEMPTS = 3  # tries for a timeout, a dropped connection or a 5xx
    FETCH_RETRY_DELAY = 60  # seconds before the next try
    FETCH_LEASE_SECONDS = 120  # a worker that held a fetch this long has died
    # Accounts (app/auth, app/admin): mail for "Forgot your password?", link lifetimes.
    SMTP_URL = ""  # smtp://user:pass@host:587, smtps://…, smtp+starttls://…; "" = no mail
    MAIL_FROM = ""  # "" = dogear@<the host of BASE_URL>
    INVITE_DAYS = 7
    RESET_LINK_MINUTES = 60
    AUDIT_KEEP_DAYS = 365
    # Sources and feeds (app/sources/).
    SOURCES_REFRESH_MINUTES = 60  # how often each feed is read
    SOURCES_MAX_BACKOFF_MINUTES = 24 * 60  # a failing feed waits longer, up to this
    SOURCES_LEASE_SECONDS = 600  # a worker that held a refresh this long has died
    SOURCES_PROBE_TIMEOUT = 10  # seconds the add form waits for a new feed to answer
    SOURCES_BATCH_SIZE = 100  # entries written per transaction
    SOURCES_MAX_ENTRIES = 500  # entries read from one feed per refresh
    SOURCES_OPML_MAX_BYTES = 2_000_000
    # Imports and exports (app/imports/): the largest file, the most entries in one.
    IMPORT_MAX_BYTES = 50_000_000
    IMPORT_MAX_ENTRIES = 100_000
    IMPORT_FETCH_INTERVAL = 2  # seconds between the fetches of an import's new pages


def _parse_env_value(raw: str) -> Any:
    """Read `DOGEAR_X=...` as JSON when it is JSON (numbers, booleans), else as text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_config(app: Any, test_config: dict[str, Any] | None) -> None:
    """Fill `app.config` in order: defaults, instance file, environment, test overrides."""
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for key, raw in os.environ.items():
        if key.startswith("DOGEAR_") and key not in {"DOGEAR_INSTANCE_PATH"}:
            app.config[key.removeprefix("DOGEAR_")] = _parse_env_value(raw)
    if "DATABASE_URL" in app.config:
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        db_path = Path(app.instance_path) / "dogear.db"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{db_path}"
    if not str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        # A connection the server dropped (restart, failover, idle timeout) is replaced
        # before a request gets it, instead of answering that request with a 500.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,
            "pool_recycle": 1800,
            **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        }
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # an import's file, and its form
        app.config["MAX_CONTENT_LENGTH"] = int(app.config["IMPORT_MAX_BYTES"]) + 1_000_000
    production = app.config["ENV"] == "production"
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if app.config.get(key) is None:
            app.config[key] = production
    app.config["SECRET_KEY"] = _secret_key(app, production)


def _secret_key(app: Any, production: bool) -> str:
    """The signing key: configured, else kept in `instance/secret_key` (0600).

    Outside production a missing key is generated once so `make run` just works;
    in production a missing or well-known key refuses to start.
    """
    key = app.config.get("SECRET_KEY") or os.environ.get("SECRET_KEY")
    key_file = Path(app.instance_path) / "secret_key"
    if not key and key_file.exists():
        key = key_file.read_text().strip()
    if not key and not production:
        key = _create_key_file(key_file)
    if production and (not key or key.lower() in WEAK_SECRETS or len(key) < 32):
        raise RuntimeError(
            "Refusing to start in production without a strong SECRET_KEY: set "
            "DOGEAR_SECRET_KEY (32+ random characters) or write one to instance/secret_key."
        )
    return str(key)


def _create_key_file(key_file: Path) -> str:
    """Write a new random key atomically; if another worker won the race, use theirs."""
    key = secrets.token_urlsafe(48)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        os.link(tmp, key_file)  # fails if the file exists: first writer wins
    except FileExistsError:
        key = key_file.read_text().strip()
    finally:
        tmp.unlink()
    return key

"""Configuration: built-in defaults, then `instance/config.py`, then `DOGEAR_*` variables."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"  # Alembic's scripts (Flask-Migrate's directory)

# Values that must never sign sessions in production.
WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "please-change-me", "test"}
# Settings read from the environment as the text given, never as JSON: a key that
# happens to look like a number must not be turned into one.
RAW_TEXT = {"SECRET_KEY"}
MAKE_A_KEY = (
    "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` or `openssl rand -hex 32`"
)


class Defaults:
    ENV = "development"
    SQLALCHEMY_DATABASE_URI: str | None = None  # filled in from the instance path
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
    DEMO = True
    BASE_URL = "http://127.0.0.1:8000"
    POSTS_PER_PAGE = 20
    FACETS_MAX_AGE = 60  # seconds a worker reuses the catalog's facet counts
    CARD_CACHE_SIZE = 2000  # result cards a worker keeps rendered, ~2 KB each (catalog/cards.py)
    SQLITE_BUSY_TIMEOUT_MS = 5000
    RATELIMIT_STORAGE_URI = "dogear+db://"  # shared by all workers; see app/ratelimit.py
    RATELIMIT_LOGIN = "10 per minute"  # FAILED sign-ins per client address (app/auth/throttle.py)
    # Failed sign-ins per account, from browsers that never signed in to it.
    RATELIMIT_LOGIN_ACCOUNT = "20 per 15 minutes"
    RATELIMIT_HEADERS_ENABLED = False
    SESSION_COOKIE_SECURE: bool | None = None  # None: secure in production only
    REMEMBER_COOKIE_SECURE: bool | None = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_DURATION = 60 * 60 * 24 * 30
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    PROXY_FIX = 0  # number of reverse proxies in front of gunicorn whose X-Forwarded-* to believe
    TRUSTED_HOSTS: list[str] | None = None  # host names Dogear answers to; None: any
    # Background jobs (app/jobs.py): "" keeps the queue in instance/jobs.db.
    REDIS_URL = ""  # redis://host:6379/0: one queue for the workers of every host
    JOBS_URL = ""  # wins over REDIS_URL for the queue: redis://…, sqlite:///path, memory://
    JOBS_NAME = "dogear"  # the queue's name in Redis: one per Dogear sharing a server
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
    LISTING_IMPORT_CHUNK = 250  # posts per write transaction of `dogear posts import`
    # Search (SQLite): words in more posts than this get an impact-ordered list of
    # their best posts, this long (app/search/impacts.py).
    SEARCH_IMPACT_MIN_DOCS = 2000
    SEARCH_IMPACT_DEPTH = 1000
    # Sessions (app/auth/sessions.py): with "Keep me signed in" and without.
    SESSION_IDLE_DAYS = 30  # a remembered session unused this long ends
    SESSION_MAX_DAYS = 365  # a remembered session ends this long after sign-in, however busy
    SESSION_BROWSER_HOURS = 12  # a session without "Keep me signed in": idle and in all
    SESSION_TOUCH_MINUTES = 5  # a session's last-seen time is written at most this often
    # Two-factor sign-in (app/auth/twofactor.py).
    TWO_FACTOR_ISSUER = "Dogear"  # the name authenticator apps show for the account
    TWO_FACTOR_PENDING_MINUTES = 5  # time to enter the code after the password
    # Connections each process keeps open to a database server (not SQLite).
    DATABASE_POOL_SIZE = 2
    DATABASE_MAX_OVERFLOW = 8  # more, briefly, when threads (the job worker) need them
    # Backups of the SQLite database (app/backup.py).
    BACKUP_DIR = "backups"  # a relative path is inside the instance folder
    BACKUP_EVERY_HOURS = 24  # hours between the worker's backups; 0 turns them off
    BACKUP_KEEP = 7  # the worker's backups kept (0 keeps them all)


class ConfigurationError(RuntimeError):
    """A setting that stops Dogear from starting; the message says what to set."""


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
            name = key.removeprefix("DOGEAR_")
            app.config[name] = raw if name in RAW_TEXT else _parse_env_value(raw)
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
        # Each sync gunicorn worker uses one connection at a time and the job worker
        # one per thread, so a small pool per process is plenty; the server's
        # max_connections must cover hosts x (gunicorn workers + job threads) x
        # (pool size + overflow).
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,
            "pool_recycle": 1800,
            "pool_size": int(app.config["DATABASE_POOL_SIZE"]),
            "max_overflow": int(app.config["DATABASE_MAX_OVERFLOW"]),
            **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        }
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # an import's file, and its form
        app.config["MAX_CONTENT_LENGTH"] = int(app.config["IMPORT_MAX_BYTES"]) + 1_000_000
    _proxy_settings(app)
    _fetch_settings(app)
    production = app.config["ENV"] == "production"
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if app.config.get(key) is None:
            app.config[key] = production
    app.config["SECRET_KEY"] = _secret_key(app, production)


def _fetch_settings(app: Any) -> None:
    """The FETCH_* settings, checked at start: a typo (DOGEAR_FETCH_ALLOW_PRIVATE=true)
    would otherwise only show as every fetch failing in the job worker."""
    from app.fetching import policy_from_config

    try:
        policy_from_config(app.config)
    except ValueError as error:
        raise ConfigurationError(
            f"DOGEAR_{error}. DOGEAR_FETCH_ALLOW_PRIVATE takes networks separated by "
            "commas (10.0.0.0/8,192.168.1.0/24); the timeouts and sizes take numbers."
        ) from None


def _proxy_settings(app: Any) -> None:
    """PROXY_FIX as a count of proxies, TRUSTED_HOSTS as the list Flask checks."""
    from app.security import parse_trusted_hosts

    hops = app.config.get("PROXY_FIX") or 0
    if isinstance(hops, str) and hops.strip().isdigit():
        hops = int(hops)
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ConfigurationError(
            f"DOGEAR_PROXY_FIX must be the number of reverse proxies in front of Dogear "
            f"(0 for none, 1 for one nginx or Caddy), not {hops!r}."
        )
    app.config["PROXY_FIX"] = hops
    try:
        app.config["TRUSTED_HOSTS"] = parse_trusted_hosts(app.config.get("TRUSTED_HOSTS"))
    except ValueError as error:
        raise ConfigurationError(
            f"DOGEAR_TRUSTED_HOSTS: {error}. Give the host names readers use, separated by "
            "commas: read.example.org,www.read.example.org"
        ) from None


def _secret_key(app: Any, production: bool) -> str:
    """The signing key: configured, else kept in `instance/secret_key` (0600).

    Outside production a missing key is generated once so `make run` just works;
    in production a missing, short, well-known or predictable key (`aaaa…`, a word
    repeated; see `app.security.secret_weakness`) refuses to start, and so does a weak
    key file: the generated one (`token_urlsafe(48)`) always passes.

    A database other than SQLite may be shared by several hosts, and every one of them
    must sign sessions and the set-up link with the same key: a key file of one host's
    own would sign users out whenever the next request reaches another host. So with
    such a database the key must be configured, and neither the file nor a generated
    key will do.
    """
    from app.security import secret_weakness

    key = app.config.get("SECRET_KEY") or os.environ.get("SECRET_KEY")
    key = str(key) if key is not None else None
    source = "SECRET_KEY (DOGEAR_SECRET_KEY or instance/config.py)"
    key_file = Path(app.instance_path) / "secret_key"
    database = str(app.config["SQLALCHEMY_DATABASE_URI"])
    if not key and not database.startswith("sqlite"):
        raise ConfigurationError(_shared_database_without_key(database, key_file))
    if not key and key_file.exists():
        key = key_file.read_text().strip()
        source = f"SECRET_KEY read from {key_file}"
    if not key and not production:
        key = _create_key_file(key_file)
    weakness = secret_weakness(key or "", WEAK_SECRETS) if production else None
    if weakness:
        raise ConfigurationError(
            f"Refusing to start in production: the {source} {weakness}. Sessions signed "
            f"with a guessable key can be forged. Make a random key with {MAKE_A_KEY} and "
            "set it as DOGEAR_SECRET_KEY (or write it to instance/secret_key, mode 0600)."
        )
    return str(key)


def _shared_database_without_key(database: str, key_file: Path) -> str:
    backend = database.partition(":")[0].partition("+")[0] or "a server"
    message = (
        f"Refusing to start: the database is {backend}, which several hosts may share, "
        "and no secret key is configured. Set DOGEAR_SECRET_KEY to the same value on "
        f"every host that runs Dogear (32+ random characters, e.g. from {MAKE_A_KEY})."
    )
    if key_file.exists():
        message += (
            f" {key_file} is read only with SQLite; to keep this host's sessions "
            "signed in, use its contents as DOGEAR_SECRET_KEY."
        )
    return message


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

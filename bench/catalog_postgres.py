"""The benchmark's catalog in PostgreSQL: the same rows as bench/catalog.py.

The pristine catalog is a database of its own on the server (`dogear_bench_<posts>_
<readers>`), its schema built by the real migrations (`dogear db upgrade`). Rows go
in with COPY while migration 0008's search triggers are disabled; then every post's
search vector is computed in one UPDATE, the table is compacted (the UPDATE left a
dead copy of every row) and the whole database vacuumed and analyzed, which is what
autovacuum would have done for a catalog that grew over time. The cache key (sizes,
migrations, generators) is the database's comment, so a changed migration rebuilds it.

Each run works on a copy, `dogear_bench_run`, made from the pristine one as a
template (a file copy, a second or two), so every run starts from the same rows and
statistics. The search words are the SQLite catalog's (bench/catalog.py picks them
from its FTS5 index), so both databases answer exactly the same requests.

The server: DOGEAR_BENCH_POSTGRES_URL, by default the local one the tests use. Its
user must be allowed to create databases.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import catalog
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

SERVER_URL = os.environ.get(
    "DOGEAR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RUN_DATABASE = "dogear_bench_run"
# Migration 0008's row triggers that index a post as it is written (disabled during
# the load: the vectors are computed once, after the topics are in).
SEARCH_TRIGGERS = {
    "posts": "posts_search_insert",
    "post_topics": "post_topics_search_insert",
}
VECTOR = "dogear_post_vector(p.id, p.title, p.summary, p.author, p.content_text)"


def database_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the bench server (DOGEAR_DATABASE_URL)."""
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def _libpq(name: str | None = None) -> str:
    """The same server as a libpq connection string, for psycopg itself."""
    url = make_url(SERVER_URL).set(drivername="postgresql")
    if name is not None:
        url = url.set(database=name)
    return url.render_as_string(hide_password=False)


def _cache_key(posts: int, readers: int) -> str:
    digest = hashlib.sha256(catalog._cache_key(posts, readers).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def _admin() -> psycopg.Connection:
    """A connection to the server's maintenance database, outside transactions
    (CREATE and DROP DATABASE can't run inside one)."""
    try:
        return psycopg.connect(_libpq(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise SystemExit(
            f"no PostgreSQL server answers at {make_url(SERVER_URL)!r} (set"
            f" DOGEAR_BENCH_POSTGRES_URL): {error}"
        ) from error


def _comment(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    return None if row is None else (row[0] or "")


def build(posts: int, readers: int = 1000, *, force: bool = False, log=print):
    """Build (or reuse) the pristine catalog for these sizes in PostgreSQL."""
    words = catalog.build(posts, readers, log=log)  # the search words
    name = f"dogear_bench_{posts}_{readers}"
    key = _cache_key(posts, readers)
    info_path = catalog.DATA / f"catalog-{posts}-{readers}-postgresql.json"
    with _admin() as admin:
        if not force and info_path.exists() and _comment(admin, name) == key:
            info = json.loads(info_path.read_text())
            if info.pop("key", None) == key:
                return catalog.CatalogInfo(**info)
        started = time.perf_counter()
        log(f"building a PostgreSQL catalog of {posts:,} posts and {readers:,} readers…")
        ident = sql.Identifier(name)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident)
        )
    _run_migrations(database_url(name))
    with psycopg.connect(_libpq(name)) as conn:
        _load(conn, posts, readers)
    # Search's lists of each frequent word's best posts, as on a real instance.
    _run_migrations(database_url(name), "search", "rebuild")
    with psycopg.connect(_libpq(name), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")  # rebuilding the GIN index
        conn.execute("VACUUM FULL posts")
        conn.execute("VACUUM ANALYZE")
        _check_words(conn, words)
    with _admin() as admin:
        # Last: a catalog whose build was interrupted has no key and is rebuilt.
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(key)))
    info = replace(
        words,
        path=database_url(name),
        build_seconds=round(time.perf_counter() - started, 1),
    )
    info_path.write_text(json.dumps({**asdict(info), "key": key}))
    log(f"built in {info.build_seconds} s")
    return info


def _run_migrations(url: str, *args: str) -> None:
    """`dogear db upgrade` (or another command) against the catalog."""
    env = dict(os.environ)
    env.update(
        DOGEAR_DATABASE_URL=url,
        DOGEAR_INSTANCE_PATH=str(catalog.DATA),
        DOGEAR_DEMO="false",
        # Required with a database other hosts may share; nothing is signed here.
        DOGEAR_SECRET_KEY=secrets.token_urlsafe(36),
    )
    dogear = Path(sys.executable).with_name("dogear")
    args = args or ("db", "upgrade")
    command = [str(dogear), *args] if dogear.exists() else None
    if command is None:
        command = [sys.executable, "-m", "flask", "--app", "app:create_app", *args]
    done = subprocess.run(command, env=env, cwd=catalog.ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"`dogear {' '.join(args)}` failed:\n{done.stderr[-2000:]}")


def _load(conn: psycopg.Connection, posts: int, readers: int) -> None:
    """COPY every row in, then index the posts in one statement; one transaction."""
    rng = random.Random(catalog.SEED)
    conn.execute("SET LOCAL synchronous_commit = off")
    for table, trigger in SEARCH_TRIGGERS.items():
        conn.execute(
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
                sql.Identifier(table), sql.Identifier(trigger)
            )
        )
    tables = []
    with conn.cursor() as cur:
        for table, columns, rows in catalog.generate_tables(posts, readers, rng):
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            if "id" in columns and table not in tables:
                tables.append(table)
        # The same function migration 0008 backfills with and the triggers call.
        cur.execute(f"UPDATE posts AS p SET search_vector = {VECTOR}")  # noqa: S608
        for table, trigger in SEARCH_TRIGGERS.items():
            cur.execute(
                sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(
                    sql.Identifier(table), sql.Identifier(trigger)
                )
            )
        # The rows came with their ids: move each sequence past them, or the app's
        # first insert (a progress update's activity, a sign-in's audit event) would
        # collide with a bench row.
        for table in tables:
            cur.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), max(id)) FROM {}").format(
                    sql.Literal(table), sql.Identifier(table)
                )
            )
    conn.commit()


def _check_words(conn: psycopg.Connection, words) -> None:
    """The SQLite catalog's search words must mean about the same here (stemmers
    differ a little: Snowball here, Porter there)."""
    for word, expected in ((words.rare_word, words.rare_df), (words.common_word, None)):
        found = conn.execute(
            "SELECT count(*) FROM posts WHERE search_vector @@ to_tsquery('dogear', %s)",
            (word,),
        ).fetchone()[0]
        if expected is not None and not 1 <= found <= 3 * expected:
            raise SystemExit(f"PostgreSQL finds “{word}” in {found} posts, SQLite in {expected}")
        if expected is None and not 0.05 * words.posts <= found <= 0.4 * words.posts:
            raise SystemExit(f"PostgreSQL finds “{word}” in {found} posts, an unusual share")


def working_copy(info) -> str:
    """A fresh copy of the pristine catalog for one run; returns its URL."""
    pristine = make_url(info.path).database
    with _admin() as admin:
        run = sql.Identifier(RUN_DATABASE)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(run))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                run, sql.Identifier(pristine)
            )
        )
    return database_url(RUN_DATABASE)


def backend_pids(url: str) -> list[int]:
    """The server processes serving connections to the database at `url`, when the
    server runs on this machine (their CPU is part of what a request costs)."""
    name = make_url(url).database
    with _admin() as admin:
        pids = [
            row[0]
            for row in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        ]
    local = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres"):
            local.append(pid)
    return local

"""Crash and recovery: killed processes, a damaged database, backups and restores
(issue 11's fault and attack suite).

Protections proven here, with the issue 11 case each covers ("case:") and the test
that shows its checker can fail ("can fail:"):

- Health that tells the truth: case "`/healthz` answers 200 after the database file
  is removed, replaced by a directory, or replaced by a file that is not a database"
  (`test_healthz_tells_the_truth_when_the_file_goes_wrong`; can fail:
  `test_the_health_check_can_fail`, a check through the pooled connection);
  `?deep=1` asks for a live job worker.
- No acknowledged write lost when processes die (`faults_process`, real processes,
  loopback only): gunicorn with two workers, a worker and then the master killed
  with kill -9 while a reader saves
  (`test_killing_gunicorn_workers_and_master_loses_no_acknowledged_write`); a job
  worker killed with kill -9 mid-fetch leaves a job the next worker finishes once
  (`test_a_worker_killed_mid_fetch_leaves_a_job_the_next_worker_finishes_once`).
- An import that dies part way completes on a second run, without duplicates.
- `dogear backup` takes one consistent snapshot while another thread writes;
  `dogear restore` refuses files that are not a Dogear database it knows and a running
  Dogear, and keeps the database it replaces; the periodic backup job keeps
  BACKUP_KEEP of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, insert, select, text

from app import backup, create_app, jobs
from app.catalog.importer import import_files
from app.db import check_schema, write_transaction
from app.extensions import db
from app.lists import services
from app.lists.services import add_article
from app.models import Entry, Post
from tests.conftest import make_app, process_env, sign_in
from tests.faults.test_input import count, listing_text
from tests.faults.test_load_and_concurrency import _CSRF, Browser
from tests.test_saving import ARTICLE
from tests.test_worker import (  # noqa: F401 - instance: a fixture
    free_port,
    instance,
    post_state,
    start,
    stop,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]

sqlite_only = pytest.mark.sqlite_only


def run(app: Flask, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def database_path(app: Flask) -> Path:
    return Path(db.engine.url.database)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(path: Path, sql: str, *params: object) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def leftovers(directory: Path) -> list[str]:
    """Files a backup or restore may leave behind only by mistake: its hidden staging
    copies, a kept database, a -wal beside a test database."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.name.startswith(".") or "before-restore" in p.name or p.name == "test.db-wal"
    )


def entry_id(user_id: int, post_id: int) -> int:
    return db.session.scalar(
        select(Entry.id).where(Entry.user_id == user_id, Entry.post_id == post_id)
    )


def take_backup(app: Flask, path: Path) -> Path:
    result = run(app, "backup", str(path))
    assert result.exit_code == 0, result.output
    assert path.is_file()
    return path


# --- backup ----------------------------------------------------------------------------


@sqlite_only
def test_a_backup_while_another_thread_writes_is_one_consistent_snapshot(app, make_user, tmp_path):
    user_id = make_user().id
    # Some bulk, so the copy takes a moment: ~10 MB of articles.
    db.session.execute(
        insert(Post),
        [
            {"title": f"Filler {n}", "dedupe_key": f"filler-{n}", "content": "words " * 500}
            for n in range(3000)
        ],
    )
    db.session.commit()
    db.session.remove()

    committed: list[tuple[int, float]] = []  # (n, when its commit returned)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        # Each transaction adds a post and its list entry: a consistent copy has both
        # or neither, and whole transactions in the order they committed.
        with app.app_context():
            try:
                n = 0
                while not stop.is_set():
                    with write_transaction():
                        post = Post(title=f"Written {n}", dedupe_key=f"written-{n}")
                        db.session.add(post)
                        db.session.flush()
                        db.session.add(Entry(user_id=user_id, post_id=post.id, position=n))
                    committed.append((n, time.monotonic()))
                    n += 1
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)
            finally:
                db.session.remove()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(committed) < 20:
            time.sleep(0.01)
        before = len(committed)
        started = time.monotonic()
        result = run(app, "backup", f"{tmp_path / 'backups'}/")
        finished = time.monotonic()
        time.sleep(0.1)
    finally:
        stop.set()
        writer.join()
    assert not errors, errors
    assert result.exit_code == 0, result.output

    (copy,) = (tmp_path / "backups").iterdir()
    assert copy.name.startswith("dogear-") and copy.suffix == ".db"
    assert "integrity ok" in result.output and f"schema {check_schema()}" in result.output
    assert query(copy, "PRAGMA integrity_check") == [("ok",)]
    assert query(copy, "PRAGMA journal_mode") == [("delete",)]  # one file, no -wal
    assert copy.stat().st_mode & 0o777 == 0o600
    written = sorted(
        int(title.removeprefix("Written "))
        for (title,) in query(copy, "SELECT title FROM posts WHERE title LIKE 'Written %'")
    )
    # Every write committed before the backup began, then a gap-free run of later ones.
    assert written == list(range(len(written)))
    assert before <= len(written) <= len(committed)
    with_entries = query(
        copy,
        "SELECT count(*) FROM posts JOIN entries ON entries.post_id = posts.id "
        "WHERE posts.title LIKE 'Written %'",
    )
    assert with_entries == [(len(written),)]
    # The writer was not held up: it kept committing while the backup ran.
    assert any(started < at < finished for _, at in committed), (started, finished)
    assert len(committed) > len(written)
    assert leftovers(tmp_path / "backups") == []


@sqlite_only
def test_backup_names_files_in_a_directory_and_never_overwrites(app, tmp_path):
    folder = tmp_path / "kept"
    folder.mkdir()
    first = backup.backup_database(folder, now=datetime(2026, 5, 1, 3, 17, 0, tzinfo=UTC))
    assert first.path == folder / "dogear-20260501T031700Z.db"
    again = run(app, "backup", str(first.path))
    assert again.exit_code != 0
    assert "exists already" in again.output
    same_time = backup.backup_database
    with pytest.raises(backup.BackupError, match="exists already"):
        same_time(folder, now=datetime(2026, 5, 1, 3, 17, 0, tzinfo=UTC))
    nowhere = run(app, "backup", str(tmp_path / "missing" / "x.db"))
    assert nowhere.exit_code != 0 and "There is no directory" in nowhere.output
    assert sorted(p.name for p in folder.iterdir()) == ["dogear-20260501T031700Z.db"]


def test_on_postgresql_backup_and_restore_explain_pg_dump(tmp_path):
    app = make_app(
        tmp_path, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://dogear:s3cret@db.invalid/dogear"
    )
    for command in (["backup", str(tmp_path)], ["restore", "--yes", str(tmp_path / "x.db")]):
        result = run(app, *command)
        assert result.exit_code != 0
        assert "pg_dump --format=custom" in result.output
        assert "'postgresql://dogear@db.invalid/dogear'" in result.output
        assert "s3cret" not in result.output


# --- restore ---------------------------------------------------------------------------


@sqlite_only
def test_a_backup_restores_the_list_as_it_was(app, client, make_user, make_post, tmp_path):
    reader = make_user("reader@example.com")
    kept, dropped, later = (make_post(title=t) for t in ("Kept post", "Dropped post", "Later"))
    services.save_post(reader, kept.id)
    services.save_post(reader, dropped.id)
    services.update_progress(reader, entry_id(reader.id, kept.id), 40)
    copy = take_backup(app, tmp_path / "before.db")

    # Changes after the backup: a new save, a removal, a finished post.
    services.save_post(reader, later.id)
    services.unsave_post(reader, dropped.id)
    services.update_progress(reader, entry_id(reader.id, kept.id), 100)
    assert sign_in(client, "reader@example.com").status_code == 303
    up_next = client.get("/list").get_data(as_text=True)
    assert "Later" in up_next and "Dropped post" not in up_next

    database = database_path(app)
    result = run(app, "restore", "--yes", str(copy))
    assert result.exit_code == 0, result.output
    counts = "users: 1, posts: 3, list entries: 2"
    assert f"Checked {copy}: schema {check_schema()}, integrity ok, {counts}" in result.output
    (old,) = database.parent.glob(f"{database.name}.before-restore-*")
    assert f"Kept the current database as {old}" in result.output
    assert f"Restored {copy} to {database}" in result.output
    assert "Start Dogear again." in result.output
    # The replaced database is kept whole, with the later changes.
    assert query(old, "SELECT count(*) FROM posts WHERE title = 'Later'") == [(1,)]
    assert query(old, "PRAGMA integrity_check") == [("ok",)]

    # The app reads the restored file: the list as it was at the backup.
    sign_in(client, "reader@example.com")
    up_next = client.get("/list").get_data(as_text=True)
    assert "Dropped post" in up_next
    assert "Later" not in up_next
    reading = client.get("/list?state=reading").get_data(as_text=True)
    assert "Kept post" in reading and "40 % read" in reading
    assert "Kept post" not in client.get("/list?state=done").get_data(as_text=True)


def _junk(path: Path, app: Flask) -> str:
    path.write_bytes(b"these are not the bytes you are looking for\n" * 200)
    return "is not a SQLite database"


def _other_sqlite(path: Path, app: Flask) -> str:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT, minutes INTEGER)")
        conn.execute("INSERT INTO recipes VALUES ('bread', 240)")
        conn.commit()
    return "is a SQLite database, but not Dogear's"


def _from_the_future(path: Path, app: Flask) -> str:
    take_backup(app, path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_hoverboards'")
        conn.commit()
    return "'0099_hoverboards', which this Dogear does not know"


def _damaged(path: Path, app: Flask) -> str:
    take_backup(app, path)
    (page,) = query(path, "SELECT rootpage FROM sqlite_master WHERE name = 'posts'")
    size = query(path, "PRAGMA page_size")[0][0]
    with path.open("r+b") as fh:
        fh.seek((page[0] - 1) * size)
        fh.write(b"\xff" * size)
    return "is damaged"


@sqlite_only
@pytest.mark.parametrize("make_file", [_junk, _other_sqlite, _from_the_future, _damaged])
def test_restore_refuses_a_file_that_is_not_a_dogear_database_it_knows(
    app, make_user, tmp_path, make_file
):
    make_user()
    candidate = tmp_path / "candidate.db"
    expected = make_file(candidate, app)
    database = database_path(app)
    db.session.remove()
    db.engine.dispose()
    before = digest(database)

    result = run(app, "restore", "--yes", str(candidate))
    assert result.exit_code != 0
    assert expected in result.output
    assert str(candidate) in result.output
    assert digest(database) == before
    assert leftovers(database.parent) == []
    if make_file is _from_the_future:
        assert "newer Dogear" in result.output


@sqlite_only
def test_restore_refuses_while_dogear_runs(app, make_user, tmp_path):
    make_user()
    copy = take_backup(app, tmp_path / "copy.db")
    database = database_path(app)
    db.session.remove()
    db.engine.dispose()  # the last connection folds the WAL into the file
    before = digest(database)

    with closing(sqlite3.connect(database)) as gunicorn:  # a worker with the file open
        gunicorn.execute("SELECT count(*) FROM users").fetchone()
        held = run(app, "restore", "--yes", str(copy))
    assert held.exit_code != 0
    assert "Dogear seems to be running" in held.output
    assert f"another process has {database} open" in held.output
    assert "Nothing was changed" in held.output

    jobs.heartbeat.call_local()  # a job worker beat a moment ago
    beating = run(app, "restore", "--yes", str(copy))
    assert beating.exit_code != 0
    assert "a job worker said it was running 0 seconds ago" in beating.output
    assert digest(database) == before
    assert leftovers(database.parent) == []


@sqlite_only
def test_restore_asks_first_unless_yes(app, tmp_path):
    copy = take_backup(app, tmp_path / "copy.db")
    database = database_path(app)
    db.session.remove()
    db.engine.dispose()
    before = digest(database)
    declined = run(app, "restore", str(copy), input="n\n")
    assert declined.exit_code != 0 and "Replace" in declined.output
    assert digest(database) == before and leftovers(database.parent) == []
    accepted = run(app, "restore", str(copy), input="y\n")
    assert accepted.exit_code == 0, accepted.output


@sqlite_only
def test_restoring_an_older_schema_says_to_upgrade(app, tmp_path):
    old_instance = tmp_path / "old"
    old_instance.mkdir()
    old_app = make_app(old_instance)
    with old_app.app_context():
        upgrade(revision="0008")
        db.engine.dispose()
    old_file = old_instance / "test.db"

    result = run(app, "restore", "--yes", str(old_file))
    assert result.exit_code == 0, result.output
    head = backup.migration_scripts().get_current_head()
    assert "schema 0008, integrity ok, users: 0" in result.output
    assert f"this Dogear's is {head}" in result.output
    assert f"Its schema (0008) is older than this Dogear's ({head})" in result.output
    assert "run `dogear db upgrade`" in result.output
    assert check_schema() == "0008"
    assert run(app, "db", "upgrade").exit_code == 0
    assert check_schema() == head


@sqlite_only
def test_restore_after_a_crash_keeps_the_old_databases_last_writes(app, tmp_path):
    copy = take_backup(app, tmp_path / "copy.db")
    database = database_path(app)
    db.session.remove()
    db.engine.dispose()
    # A process killed right after committing: its write is only in the -wal, and a
    # -shm is left behind.
    crash = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "conn.execute(\"INSERT INTO settings (key, value) VALUES ('crash', 'committed')\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(database)], check=True)
    assert Path(f"{database}-wal").stat().st_size > 0

    result = run(app, "restore", "--yes", str(copy))
    assert result.exit_code == 0, result.output
    (old,) = database.parent.glob(f"{database.name}.before-restore-*")
    assert query(old, "SELECT value FROM settings WHERE key = 'crash'") == [("committed",)]
    assert not Path(f"{database}-wal").exists() and not Path(f"{database}-shm").exists()
    assert f"Removed the stale {database}-shm" in result.output
    assert query(database, "SELECT count(*) FROM settings WHERE key = 'crash'") == [(0,)]


# --- the periodic job ------------------------------------------------------------------


@sqlite_only
def test_the_job_backs_up_once_per_interval_and_keeps_the_newest(app, tmp_path):
    folder = tmp_path / "auto"
    app.config.update(BACKUP_DIR=str(folder), BACKUP_EVERY_HOURS=24, BACKUP_KEEP=3)
    folder.mkdir()
    by_hand = backup.backup_database(folder, now=datetime(2020, 1, 1, tzinfo=UTC)).path
    (folder / "notes.txt").write_text("not a backup")

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    made = []
    tick = start
    while tick < start + timedelta(days=5):  # the worker checks every ten minutes
        if backup.run_scheduled_backup(now=tick) is not None:
            made.append(tick)
        tick += timedelta(minutes=10)
    assert made == [start + timedelta(days=day) for day in range(5)]

    kept = sorted(p.name for p in folder.iterdir())
    stamps = [(start + timedelta(days=day)).strftime("%Y%m%dT%H%M%SZ") for day in (2, 3, 4)]
    assert kept == [by_hand.name, *[f"dogear-auto-{s}.db" for s in stamps], "notes.txt"]

    # The task as the worker runs it: the newest is days old, so one more is due now.
    jobs.init_app(app)
    backup.scheduled_backup.call_local()
    autos = backup.scheduled_backups(folder)
    assert len(autos) == 3 and autos[0][1].name == f"dogear-auto-{stamps[1]}.db"
    assert query(autos[-1][1], "PRAGMA integrity_check") == [("ok",)]
    assert backup.run_scheduled_backup(now=autos[-1][0] + timedelta(hours=23)) is None

    app.config["BACKUP_EVERY_HOURS"] = 0  # off
    assert backup.run_scheduled_backup(now=start + timedelta(days=60)) is None
    assert len(backup.scheduled_backups(folder)) == 3


@sqlite_only
def test_the_job_puts_relative_backup_dirs_in_the_instance_folder(app, tmp_path):
    app.config.update(BACKUP_DIR="", BACKUP_EVERY_HOURS=1, BACKUP_KEEP=7)
    made = backup.run_scheduled_backup()
    assert made is not None and made.path.parent == Path(app.instance_path) / "backups"


# === health that tells the truth (from tests/test_app.py) ==============================


def test_healthz_checks_the_database(client, app):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    assert response.json["schema"] == ScriptDirectory.from_config(config).get_current_head()


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "s" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing-dir/nope.db",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "the database file is missing"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.unlink(), "the database file is missing"),
        (lambda path: (path.unlink(), path.mkdir()), "the database path is not a file"),
        (lambda path: path.write_bytes(b"not a database " * 300), "can't be read"),
    ],
    ids=["removed", "a-directory", "not-a-database"],
)
@pytest.mark.sqlite_only
def test_healthz_tells_the_truth_when_the_file_goes_wrong(app, client, damage, reason):
    healthz_tells_the_truth(client, damage, reason)


def healthz_tells_the_truth(client: Any, damage: Any, reason: str) -> None:
    """The checker: after `damage` to the database file, /healthz answers 503 with
    `reason`, though the pool still holds a connection to the old file."""
    assert client.get("/healthz").status_code == 200  # the pool holds a connection now
    path = Path(db.engine.url.database)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    damage(path)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert reason in response.json["database"]


@pytest.mark.sqlite_only
def test_the_health_check_can_fail(app, client, monkeypatch):
    """A /healthz that asks the pooled connection (as before issue 11) still says 200
    once the file is gone, and the checker catches it."""
    from app import db as database

    def through_the_pool() -> str:
        return str(db.session.execute(text("SELECT version_num FROM alembic_version")).scalar())

    monkeypatch.setattr(database, "check_schema", through_the_pool)
    with pytest.raises(AssertionError):
        healthz_tells_the_truth(client, lambda path: path.unlink(), "missing")


def test_deep_healthz_asks_for_a_live_worker(app, client, monkeypatch):
    from app import jobs

    response = client.get("/healthz?deep=1")
    assert response.status_code == 503
    assert response.json["worker"] == "no job worker has been seen"
    jobs.heartbeat.call_local()
    response = client.get("/healthz?deep=1")
    assert response.status_code == 200
    assert response.json["worker"] == "ok"
    later = jobs.time.time() + 600
    monkeypatch.setattr(jobs.time, "time", lambda: later)
    assert client.get("/healthz?deep=1").status_code == 503


# === a job worker killed with kill -9 (from tests/test_worker.py) =======================


@pytest.mark.faults_process
def test_a_worker_killed_mid_fetch_leaves_a_job_the_next_worker_finishes_once(
    instance,  # noqa: F811 - the fixture of tests/test_worker.py
    web,
    tmp_path,
):
    app, env = instance
    arrived = threading.Event()
    release = threading.Event()
    requests = []

    def slow_then_fine(request) -> None:
        requests.append(time.monotonic())
        if len(requests) == 1:  # the first worker hangs here until it is killed
            arrived.set()
            release.wait(30)
        body = ARTICLE.encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    web.add_handler("/slow", slow_then_fine)
    url = web.url("/slow")
    from app.auth.services import find_user_by_email

    add_article(find_user_by_email("reader@example.com"), url)
    assert post_state(url) == ("pending", 0)

    log = tmp_path / "worker.log"
    first = start(["worker"], env, log)
    try:
        assert arrived.wait(30), log.read_text()
        assert post_state(url) == ("pending", 1)  # claimed, mid-fetch
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)
        release.set()
    time.sleep(2.5)  # the dead worker's lease runs out

    second = start(["worker"], env, log)
    try:
        wait_for(lambda: post_state(url) == ("done", 2), 30, "the second worker's fetch")
        time.sleep(1)  # nothing else runs it again
    finally:
        stop(second)
    assert len(requests) == 2
    assert post_state(url) == ("done", 2)
    db.session.rollback()
    post = db.session.scalar(select(Post).where(Post.url == url))
    assert post.title == "Quiet harbours of the northern coast"
    assert "breakwater" in post.content
    assert "Requeued 1 article fetch" in log.read_text()


# === an import that dies part way (from tests/test_import_load.py) ======================


def test_an_import_stopped_part_way_completes_on_a_second_run(app, monkeypatch):
    from app.catalog import importer

    text = listing_text(0, 1_000).encode()
    real = importer._write_chunk
    chunks = []

    def crash_after_two(*args: Any) -> None:
        if len(chunks) == 2:
            raise RuntimeError("the process died")
        chunks.append(args)
        real(*args)

    monkeypatch.setattr(importer, "_write_chunk", crash_after_two)
    with pytest.raises(RuntimeError):
        import_files([("big.txt", io.BytesIO(text))])
    assert count(Post) == 2 * importer.CHUNK_SIZE
    monkeypatch.setattr(importer, "_write_chunk", real)

    report = import_files([("big.txt", io.BytesIO(text))])

    assert (report.created, report.duplicates) == (1_000 - 2 * importer.CHUNK_SIZE, 500)
    assert count(Post) == 1_000


# === gunicorn's workers and master killed with kill -9 while a reader writes ==============

_BOOTED = re.compile(rb"Booting worker with pid: (\d+)")


@pytest.mark.faults_process
def test_killing_gunicorn_workers_and_master_loses_no_acknowledged_write(
    app, make_user, make_post, database, tmp_path
):
    """gunicorn with two workers serves a reader who saves post after post. One worker
    is killed with kill -9, then the master; a new gunicorn is started on the same
    port. Every save that was answered (a 303) is in the database afterwards, the
    reader's session still works, and nothing was saved twice."""
    make_user("reader@example.com")
    post_ids = [make_post().id for _ in range(300)]
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = process_env(tmp_path, database["SQLALCHEMY_DATABASE_URI"], WEB_CONCURRENCY="2")
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "wsgi:app"]

    def start_gunicorn() -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy() -> bool:
        try:
            return Browser("192.0.2.1").get(port, "/healthz").status == 200
        except OSError:
            return False

    def booted() -> list[int]:
        return [int(pid) for pid in _BOOTED.findall(log.read_bytes())]

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return (
            Path(f"/proc/{pid}/stat").exists()
            and " Z " not in Path(f"/proc/{pid}/stat").read_text()
        )

    browser = Browser("192.0.2.7")
    acknowledged: list[int] = []
    failed: list[str] = []
    done = threading.Event()

    def save_posts(token: str) -> None:
        for post_id in post_ids:  # bounded: one try per post
            if done.is_set():
                return
            try:
                response = browser.request(
                    port, "POST", f"/list/save/{post_id}", {"csrf_token": token}
                )
            except OSError as error:  # the worker or the master died under it
                failed.append(f"{post_id}: {error!r}")
                time.sleep(0.05)
                continue
            if response.status == 303:
                acknowledged.append(post_id)
            else:
                failed.append(f"{post_id}: {response.status}")

    servers = [start_gunicorn()]
    saver = None
    try:
        wait_for(healthy, 30, "gunicorn")
        assert browser.sign_in(port, "reader@example.com").status == 303
        token = _CSRF.search(browser.get(port, "/list").text).group(1)
        saver = threading.Thread(target=save_posts, args=(token,))
        saver.start()

        wait_for(lambda: len(acknowledged) >= 20, 30, "the first saves")
        workers = booted()
        assert len(workers) == 2, log.read_text()
        os.kill(workers[0], signal.SIGKILL)  # a worker, mid-stream
        wait_for(lambda: len(booted()) == 3, 30, "the master to replace the worker")
        before = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= before + 20, 30, "saves after the worker died")

        os.kill(servers[0].pid, signal.SIGKILL)  # the master
        servers[0].wait(timeout=10)
        orphans = [pid for pid in booted() if pid != workers[0]]
        wait_for(lambda: not any(alive(pid) for pid in orphans), 30, "the orphaned workers")
        servers.append(start_gunicorn())
        wait_for(healthy, 30, "gunicorn, started again")
        before = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= before + 20, 30, "saves after the restart")
        done.set()
        saver.join(timeout=30)
        assert not saver.is_alive()
        assert browser.get(port, "/list").status == 200  # the session outlived it all
    finally:
        done.set()
        for server in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        if saver is not None:
            saver.join(timeout=30)

    db.session.rollback()
    rows = db.session.execute(select(Entry.post_id, func.count()).group_by(Entry.post_id)).all()
    saved = {post_id: n for post_id, n in rows}
    assert all(n == 1 for n in saved.values())
    lost = [post_id for post_id in acknowledged if post_id not in saved]
    assert lost == [], f"acknowledged but lost: {lost}\n{log.read_text()[-3000:]}"
    assert len(acknowledged) >= 60 and len(failed) < len(post_ids)

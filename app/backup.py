"""Backups of the SQLite database: `dogear backup`, `dogear restore` and the periodic job.

**Backup** copies the live database with SQLite's online backup API, from a connection
of its own, in one step: one read transaction, so the copy is a consistent snapshot of
the moment it began. In WAL mode (which Dogear always uses, app/db.py) a reader never
blocks writers, so the app keeps serving and saving while the copy is made. The copy
is written to a hidden file beside its destination, switched to a plain rollback
journal (a single self-contained file), checked with `PRAGMA integrity_check` from a
fresh connection, and only then linked to its name: a name that exists is never
overwritten, and a failed backup leaves nothing that looks like a backup.

**Restore** replaces the database of a *stopped* Dogear. It refuses while the app
looks alive: a job worker's heartbeat in the last few minutes, or any process holding
the database open (found by asking SQLite for an exclusive lock, which fails at once
while a gunicorn worker, the job worker or a sqlite3 shell has the file open). The
file is copied beside the database first and checked there (a SQLite file, intact,
with Dogear's tables and a schema version this Dogear knows), so what is checked is
exactly what gets installed. The current database is kept as
`<name>.before-restore-<UTC time>`, never deleted; its leftover `-wal` (changes not yet
folded into the file) goes with it and its `-shm` is removed, because a stale WAL
beside the restored file would be replayed into it.

**The periodic job** checks every ten minutes and takes a backup into BACKUP_DIR when
the newest one it made is BACKUP_EVERY_HOURS old, then deletes its oldest beyond
BACKUP_KEEP. It only ever counts and deletes files named like its own
(`dogear-auto-<UTC time>.db`), so backups made by hand in the same folder stay.

PostgreSQL is backed up with its own tools (`pg_dump`, or the provider's snapshots):
on PostgreSQL both commands print the commands to use and exit non-zero (see
`postgres_guidance`), and the periodic job does nothing.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext
from huey import crontab
from sqlalchemy.engine import URL, make_url

from app import jobs
from app.config import MIGRATIONS
from app.extensions import db

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

Report = Callable[[str], None]

STAMP = "%Y%m%dT%H%M%SZ"  # UTC, sorts by time, safe in file names everywhere
MANUAL_NAME = "dogear-{stamp}.db"  # `dogear backup DIR`
AUTO_NAME = "dogear-auto-{stamp}.db"  # the periodic job's; the only ones it prunes
AUTO_PATTERN = re.compile(r"^dogear-auto-(\d{8}T\d{6}Z)\.db$")
# The job checks every ten minutes; a backup is due this much before the interval is
# up, so that a daily backup stays at its time of day instead of slipping ten minutes
# (or the check's delay) every day.
DUE_SLACK = timedelta(minutes=5)
# The job worker's heartbeat comes every minute; /healthz calls a worker dead after
# three silent minutes, and so does restore.
WORKER_QUIET_SECONDS = 180
# Tables every Dogear database has had since its first migration.
DOGEAR_TABLES = ("users", "posts", "entries", "topics")
SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(Exception):
    """Why a backup or restore was refused or failed, in words for the person running it."""


@dataclass(frozen=True)
class DatabaseFile:
    """What a checked SQLite file holds."""

    path: Path
    revision: str
    users: int
    posts: int
    entries: int

    def describe(self) -> str:
        return (
            f"schema {self.revision}, integrity ok, users: {self.users:,}, "
            f"posts: {self.posts:,}, list entries: {self.entries:,}"
        )


@dataclass(frozen=True)
class Backup:
    """A backup that was made and checked."""

    path: Path
    source: Path
    contents: DatabaseFile
    size: int
    seconds: float

    def describe(self) -> str:
        return (
            f"Backed up {self.source} to {self.path}: {_size(self.size)}, "
            f"{self.contents.describe()} ({self.seconds:.1f} s)."
        )


# --- which database --------------------------------------------------------------------


def _database_url() -> URL:
    return make_url(str(current_app.config["SQLALCHEMY_DATABASE_URI"]))


def sqlite_database_file(action: str) -> Path:
    """The live SQLite database's file, or BackupError (with pg_dump guidance on
    PostgreSQL) when there is no file to `action` ("back up", "restore")."""
    url = _database_url()
    if url.get_backend_name() == "postgresql":
        raise BackupError(postgres_guidance(url))
    if url.get_backend_name() != "sqlite":
        raise BackupError(f"Dogear can only {action} a SQLite database, not {url.drivername}.")
    if url.database in (None, "", ":memory:"):
        raise BackupError(f"The database lives in memory: there is no file to {action}.")
    return Path(url.database)


def postgres_guidance(url: URL) -> str:
    """How to back up or restore PostgreSQL with its own tools.

    Dogear does not run pg_dump itself: pg_dump must be at least the server's major
    version (a distribution's client is often older than a managed server), it needs
    credentials the self-hoster may prefer to keep in ~/.pgpass, and a managed
    PostgreSQL usually has its own snapshots and point-in-time recovery, which beat
    a dump. The commands below are what Dogear would have run.
    """
    address = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    ).render_as_string()  # without the password: it is not for the screen
    return (
        "The database is PostgreSQL; `dogear backup` and `dogear restore` handle SQLite "
        "files only. Use PostgreSQL's own tools (or your provider's snapshots):\n"
        f"  back up:  pg_dump --format=custom --file=dogear-$(date -u +%Y%m%dT%H%M%SZ).dump "
        f"'{address}'\n"
        "  restore:  stop Dogear, create an empty database, then\n"
        "            pg_restore --no-owner --dbname='postgresql://…/new_database' FILE.dump\n"
        "            point DOGEAR_DATABASE_URL at it and run `dogear db upgrade`.\n"
        "pg_dump takes a consistent snapshot while Dogear runs; it must be at least the "
        "server's major version, and it reads the password from ~/.pgpass or PGPASSWORD."
    )


# --- checking a SQLite file ------------------------------------------------------------


def inspect_database(path: Path, *, name: Path | None = None) -> DatabaseFile:
    """Check that `path` is an intact Dogear database; what it holds, or BackupError.

    Nothing here judges the schema version; see `check_revision`. Messages call the
    file `name` (the file the user gave, when `path` is a copy of it).
    """
    label = name or path
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"{label} can't be read ({error.strerror}).") from error
    if magic != SQLITE_MAGIC:
        raise BackupError(f"{label} is not a SQLite database.")
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("PRAGMA query_only = ON")
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                listed = "; ".join(problems[:5])
                raise BackupError(f"{label} is damaged: SQLite's integrity check says {listed}")
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            missing = [name for name in DOGEAR_TABLES if name not in tables]
            if len(missing) == len(DOGEAR_TABLES):
                raise BackupError(
                    f"{label} is a SQLite database, but not Dogear's: it has none of "
                    f"Dogear's tables ({', '.join(DOGEAR_TABLES)})."
                )
            if missing:
                raise BackupError(
                    f"{label} is not a whole Dogear database: it lacks the table(s) "
                    f"{', '.join(missing)}."
                )
            if "alembic_version" not in tables:
                raise BackupError(
                    f"{label} has Dogear's tables but no schema version (alembic_version)."
                )
            versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
            if len(versions) != 1:
                raise BackupError(
                    f"{label} should have one schema version, and has {len(versions)}."
                )
            counts = [
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
                for table in ("users", "posts", "entries")
            ]
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{label} is damaged: SQLite can't read it ({error}).") from error
    return DatabaseFile(label, str(versions[0]), *counts)


def migration_scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def check_revision(revision: str, name: Path) -> str:
    """This Dogear's newest schema version, or BackupError when `revision` is not one
    of its migrations (the file comes from a newer Dogear, or isn't ours)."""
    scripts = migration_scripts()
    head = str(scripts.get_current_head())
    known = {script.revision for script in scripts.walk_revisions()}
    if revision not in known:
        raise BackupError(
            f"{name} has the schema version {revision!r}, which this Dogear does not know "
            f"(its newest is {head!r}): it comes from a newer Dogear. Upgrade Dogear first, "
            "then restore it."
        )
    return head


# --- backup ----------------------------------------------------------------------------


def backup_database(destination: str | Path, *, now: datetime | None = None) -> Backup:
    """Copy the live database to `destination` (a file, or a directory to put a
    `dogear-<UTC time>.db` in: one that exists, or a path ending in "/") while the app
    keeps running; BackupError if refused."""
    database = sqlite_database_file("back up")
    if not database.is_file():
        raise BackupError(f"There is no database at {database} (run `dogear db upgrade`).")
    target = _backup_target(destination, now or datetime.now(UTC))
    if target.exists():
        raise BackupError(f"{target} exists already; a backup never overwrites a file.")
    started = time.monotonic()
    staged = target.with_name(f".{target.name}.{os.getpid()}.partial")
    busy_seconds = int(current_app.config.get("SQLITE_BUSY_TIMEOUT_MS", 5000)) / 1000
    try:
        os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with (
            closing(sqlite3.connect(database, timeout=busy_seconds)) as source,
            closing(sqlite3.connect(staged, isolation_level=None)) as copy,
        ):
            source.execute("PRAGMA query_only = ON")
            # All pages in one step: one read transaction, one snapshot. Step by step
            # would let writers in between steps too, but the backup then restarts
            # whenever another connection writes, and on a busy site never ends.
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
        contents = inspect_database(staged, name=target)
        _fsync(staged)
        try:
            os.link(staged, target)  # fails if the name was taken meanwhile
        except FileExistsError:
            raise BackupError(
                f"{target} exists already; a backup never overwrites a file."
            ) from None
        _fsync(target.parent)
    except sqlite3.Error as error:
        raise BackupError(f"The backup of {database} failed: {error}") from error
    except OSError as error:
        raise BackupError(f"Can't write the backup to {target}: {error.strerror}.") from error
    finally:
        _remove(staged, "", "-journal", "-wal", "-shm")
    return Backup(target, database, contents, target.stat().st_size, time.monotonic() - started)


def _backup_target(destination: str | Path, now: datetime) -> Path:
    path = Path(destination)
    if path.is_dir() or str(destination).endswith(("/", os.sep)):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path / MANUAL_NAME.format(stamp=_stamp(now))
    if not path.parent.is_dir():
        raise BackupError(f"There is no directory {path.parent} to write {path}.")
    return path


# --- restore ---------------------------------------------------------------------------


def signs_of_life(database: Path) -> list[str]:
    """Reasons to believe Dogear is running on `database` (empty when it looks stopped)."""
    reasons = []
    try:
        silence = jobs.seconds_since_heartbeat()
    except Exception as error:  # noqa: BLE001 - e.g. Redis down; the lock check remains
        log.warning("Can't read the job worker's heartbeat: %s", error)
        silence = None
    if silence is not None and silence < WORKER_QUIET_SECONDS:
        reasons.append(
            f"a job worker said it was running {int(silence)} seconds ago (if you have just "
            f"stopped it, try again in {WORKER_QUIET_SECONDS - int(silence)} seconds)"
        )
    if database_in_use(database):
        reasons.append(
            f"another process has {database} open (gunicorn, `dogear worker`, "
            "`dogear serve` or a sqlite3 shell)"
        )
    return reasons


def database_in_use(path: Path) -> bool:
    """Whether another connection (of any process) has the SQLite file open.

    In WAL mode every open connection holds a shared lock on the file, so an exclusive
    one is refused at once while any is open. When it is granted, closing this last
    connection also folds a WAL a crashed process left behind into the file.
    """
    if not path.is_file():
        return False
    try:
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as conn:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        code = getattr(error, "sqlite_errorcode", None)
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    except sqlite3.DatabaseError:
        return False  # not a database (damaged?): nobody can be serving it
    return False


@dataclass
class StagedRestore:
    """A backup copied beside the database and checked, ready to take its place."""

    source: Path
    database: Path
    staged: Path
    contents: DatabaseFile
    head: str
    stamp: str

    @property
    def behind(self) -> bool:
        return self.contents.revision != self.head

    def describe(self) -> str:
        newest = "this Dogear's newest" if not self.behind else f"this Dogear's is {self.head}"
        return f"Checked {self.source}: {self.contents.describe()} ({newest})."

    def install(self, report: Report) -> Path | None:
        """Put the checked copy in place of the database; where the old one was kept."""
        if database_in_use(self.database):
            raise BackupError(
                f"Another process opened {self.database} meanwhile; stop Dogear first. "
                "Nothing was changed."
            )
        kept = None
        if self.database.exists():
            _same_owner_and_mode(self.staged, like=self.database)
            kept = self.database.with_name(f"{self.database.name}.before-restore-{self.stamp}")
            if kept.exists():
                raise BackupError(f"{kept} exists already; try again in a second.")
            os.rename(self.database, kept)
            report(f"Kept the current database as {kept}.")
        for suffix in ("-wal", "-shm", "-journal"):
            leftover = _sibling(self.database, suffix)
            if not leftover.exists():
                continue
            if suffix == "-wal" and kept is not None and leftover.stat().st_size > 0:
                # Changes of the old database not yet in its file: they belong with it.
                moved = _sibling(kept, suffix)
                os.rename(leftover, moved)
                report(f"Moved {leftover} to {moved} (it belongs to the kept database).")
            else:
                leftover.unlink()
                report(f"Removed the stale {leftover}.")
        try:
            os.rename(self.staged, self.database)
        except OSError:
            if kept is not None:
                os.rename(kept, self.database)  # as it was
            raise
        _fsync(self.database.parent)
        report(f"Restored {self.source} to {self.database}.")
        if self.behind:
            report(
                f"Its schema ({self.contents.revision}) is older than this Dogear's "
                f"({self.head}): run `dogear db upgrade` before starting Dogear."
            )
        else:
            report("Start Dogear again.")
        return kept


@contextmanager
def staged_restore(source: Path, *, now: datetime | None = None) -> Iterator[StagedRestore]:
    """Refuse while Dogear runs; copy `source` beside the database and check the copy.
    The copy is removed on the way out unless `install` put it in place."""
    database = sqlite_database_file("restore")
    db.session.remove()  # this process's own connections to the file, so that
    db.engine.dispose()  # the check below sees only other processes'
    reasons = signs_of_life(database)
    if reasons:
        raise BackupError(
            "Dogear seems to be running: "
            + "; ".join(reasons)
            + ". Stop gunicorn and the job worker, then restore. Nothing was changed."
        )
    if not source.is_file():
        raise BackupError(f"There is no file {source}.")
    if database.exists() and source.resolve() == database.resolve():
        raise BackupError(f"{source} is the database itself.")
    stamp = _stamp(now or datetime.now(UTC))
    staged = database.with_name(f".{database.name}.restoring-{stamp}")
    try:
        _copy_private(source, staged)
        contents = inspect_database(staged, name=source)
        head = check_revision(contents.revision, source)
        yield StagedRestore(source, database, staged, contents, head, stamp)
    finally:
        _remove(staged, "", "-journal", "-wal", "-shm")


def _same_owner_and_mode(path: Path, *, like: Path) -> None:
    """Give the restored file the database's permissions and, when run as root (sudo),
    its owner: else the service's user could not open what root restored."""
    current = like.stat()
    os.chmod(path, current.st_mode & 0o777)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.chown(path, current.st_uid, current.st_gid)


def _copy_private(source: Path, target: Path) -> None:
    """Copy a file into a new file only its owner can read, flushed to disk."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as error:
        raise BackupError(f"Can't copy {source} to {target}: {error.strerror}.") from error


# --- the periodic job ------------------------------------------------------------------


def backup_directory() -> Path:
    """BACKUP_DIR; a relative one is inside the instance folder."""
    configured = Path(str(current_app.config.get("BACKUP_DIR") or "backups"))
    return Path(current_app.instance_path) / configured


def scheduled_backups(directory: Path) -> list[tuple[datetime, Path]]:
    """The periodic job's own backups in `directory`, oldest first."""
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = AUTO_PATTERN.match(path.name)
            if match and path.is_file() and not path.is_symlink():
                found.append((datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC), path))
    return sorted(found)


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete the job's oldest backups beyond the newest `keep` (0 keeps them all)."""
    if keep <= 0:
        return []
    removed = []
    for _, path in scheduled_backups(directory)[:-keep]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def run_scheduled_backup(now: datetime | None = None) -> Backup | None:
    """Take a backup if the newest of the job's is BACKUP_EVERY_HOURS old (0: never),
    then keep the newest BACKUP_KEEP. The backup made, if any."""
    hours = float(current_app.config.get("BACKUP_EVERY_HOURS", 24))
    if hours <= 0:
        return None
    if _database_url().get_backend_name() != "sqlite":
        log.debug("Scheduled backups are for SQLite; back up PostgreSQL with pg_dump.")
        return None
    now = now or datetime.now(UTC)
    directory = backup_directory()
    existing = scheduled_backups(directory)
    made = None
    if not existing or now - existing[-1][0] >= timedelta(hours=hours) - DUE_SLACK:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = directory / AUTO_NAME.format(stamp=_stamp(now))
        made = backup_database(target, now=now)
        log.info("%s", made.describe())
    for path in prune_backups(directory, int(current_app.config.get("BACKUP_KEEP", 7))):
        log.info("Deleted the old backup %s.", path)
    return made


@jobs.periodic(crontab(minute="*/10"))
def scheduled_backup() -> None:
    """Every ten minutes: a backup when one is due (see run_scheduled_backup)."""
    try:
        run_scheduled_backup()
    except BackupError as error:
        log.error("The scheduled backup failed: %s", error)
        raise


# --- the commands ----------------------------------------------------------------------


@click.command("backup")
@click.argument("path", type=click.Path())  # a str: a trailing "/" means a directory
@with_appcontext
def backup_command(path: str) -> None:
    """Copy the database to PATH (a new file, or a directory for a dated one) while
    Dogear runs; the copy is checked before it is named."""
    try:
        made = backup_database(path)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(made.describe())


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the database without asking.")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database of a stopped Dogear with the backup PATH, keeping the
    current one as <database>.before-restore-<time>."""
    try:
        with staged_restore(path) as plan:
            click.echo(plan.describe())
            if not yes:
                click.confirm(
                    f"Replace {plan.database} with it? (the current one is kept)", abort=True
                )
            plan.install(click.echo)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:  # the instance folder's permissions, a full disk
        raise click.ClickException(f"The restore failed: {error}") from error


# --- small helpers ---------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _remove(path: Path, *suffixes: str) -> None:
    for suffix in suffixes:
        _sibling(path, suffix).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk (so a backup survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    scaled = float(size)
    for unit in ("KB", "MB", "GB"):
        scaled /= 1000
        if scaled < 1000 or unit == "GB":
            break
    return f"{scaled:.1f} {unit}"

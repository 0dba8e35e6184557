"""Background jobs: the queue, the worker and the decorator features use for their tasks.

Huey runs the jobs. Its queue lives in `instance/jobs.db` (SQLite, no extra server)
unless `DOGEAR_REDIS_URL` names a Redis server: then workers on every host take jobs
from that one queue, and Redis hands each job to exactly one of them. (`DOGEAR_JOBS_URL`,
if set, wins over it: a Redis URL, `sqlite:///path` or `memory://`.) `DOGEAR_JOBS_NAME`
keeps two Dogears, or test runs, on one Redis apart.

The queue is not the source of truth: Huey removes a task when a worker takes it, so a
worker killed mid-job loses it. Every job therefore keeps its state in Dogear's database
(for example a post's fetch state and lease), is safe to run twice, and a periodic sweep
puts back what a dead worker dropped.

Periodic tasks are queued by the scheduler of every worker, so with workers on several
hosts each period's run is queued once per host. Each copy carries the minute its
scheduler queued it for, and the first copy to start claims (task, minute) in the
database; the others see the claim and skip. So a periodic task runs once per period
however many hosts there are (their clocks kept in step by NTP).

Features keep their tasks beside their services and declare them with `@job` or
`@periodic`, which run the function inside the app context of the process that runs it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flask import Flask, has_app_context
from huey import Huey, crontab
from huey.api import Task, TaskWrapper
from huey.constants import EmptyData
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy import delete

from app.db import immediate_connection, insert_ignoring_conflicts
from app.models import PeriodicRun, utcnow

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

PERIOD = "period"  # the keyword a scheduled copy of a periodic task carries
CLAIMS_KEPT = timedelta(days=2)  # claims older than this are deleted as new ones come


class DogearHuey(Huey):
    """Huey whose scheduler stamps each periodic task it queues with the minute it
    queued it for (`period="2026-05-01T03:17"`), so that the copies the schedulers of
    several hosts queue for one period can be told to be one run (see `periodic`)."""

    def read_periodic(self, timestamp: datetime | None) -> list[Task]:
        if timestamp is None:
            timestamp = self._get_timestamp()
        period = timestamp.replace(second=0, microsecond=0).isoformat(timespec="minutes")
        return [type(task)(kwargs={PERIOD: period}) for task in super().read_periodic(timestamp)]


# Bound to real storage by `init_app`; results are not kept (jobs write their outcome
# to the database).
huey = DogearHuey("dogear", results=False, storage_class=MemoryStorage)
_app: Flask | None = None


def init_app(app: Flask) -> None:
    """Point the queue at this app's storage and remember the app for the worker."""
    global _app
    _app = app
    huey.name = str(app.config.get("JOBS_NAME") or "dogear")
    huey.storage = _storage(app, huey.name)


def queue_url(config: Any) -> str:
    """Where the queue lives: JOBS_URL, else REDIS_URL, else "" (instance/jobs.db)."""
    return str(config.get("JOBS_URL") or config.get("REDIS_URL") or "")


def _storage(app: Flask, name: str) -> Any:
    url = queue_url(app.config)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage(name, url=url)
    if url == "memory://":
        return MemoryStorage(name)
    path = url.removeprefix("sqlite:///") if url else str(Path(app.instance_path) / "jobs.db")
    return SqliteStorage(name, filename=path)


def job(**options: Any) -> Callable[[Callable[P, R]], TaskWrapper]:
    """Declare a background task (`retries`, `retry_delay`, … as for `huey.task`).

    Calling the task enqueues it; `task.call_local(...)` runs it here and now.
    """

    def decorator(fn: Callable[P, R]) -> TaskWrapper:
        @functools.wraps(fn)
        def in_app_context(*args: P.args, **kwargs: P.kwargs) -> R:
            if has_app_context():
                return fn(*args, **kwargs)
            if _app is None:
                raise RuntimeError("the job queue is not bound to an app (jobs.init_app)")
            with _app.app_context():
                return fn(*args, **kwargs)

        return huey.task(**options)(in_app_context)

    return decorator


def periodic(schedule: Callable[[Any], bool], **options: Any) -> Callable[..., Any]:
    """Declare a periodic task (a `huey.crontab(...)` schedule) run in the app context,
    once per period across all hosts: a copy the scheduler queued first claims its
    period in the database and skips if another worker (on any host) did.

    `task.call_local()` (tests, the CLI) runs it here and now, without a claim. A run
    that fails gives its claim back, so a retry or another host's copy may try again.
    """

    def decorator(fn: Callable[[], Any]) -> Any:
        name = f"{fn.__module__}.{options.get('name') or fn.__name__}"  # as Huey names it

        @functools.wraps(fn)
        def in_app_context(period: str | None = None) -> Any:
            if _app is None:
                raise RuntimeError("the job queue is not bound to an app (jobs.init_app)")
            with _app.app_context():
                if period is not None and not claim_period(name, period):
                    log.info("Skipped %s for %s: another copy claimed it.", name, period)
                    return None
                try:
                    return fn()
                except BaseException:
                    if period is not None:
                        release_period(name, period)
                    raise

        return huey.periodic_task(schedule, **options)(in_app_context)

    return decorator


def worker_id() -> str:
    """Which process on which host: what a claim records as its owner."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def claim_period(task: str, period: str) -> bool:
    """Claim the run of `task` for the period starting at `period` (an ISO minute, as
    the scheduler stamps it); False when a worker on any host claimed it first."""
    start = datetime.fromisoformat(period)
    values = {
        "task": task,
        "period_start": start,
        "claimed_at": utcnow(),
        "claimed_by": worker_id(),
    }
    with immediate_connection() as conn:
        claim = insert_ignoring_conflicts(PeriodicRun.__table__, values, "task", "period_start")
        if conn.execute(claim.returning(PeriodicRun.task)).first() is None:
            return False
        conn.execute(
            delete(PeriodicRun).where(
                PeriodicRun.task == task, PeriodicRun.period_start < start - CLAIMS_KEPT
            )
        )
    return True


def release_period(task: str, period: str) -> None:
    """Give back a claim (its run failed), so that the period may be run again."""
    with immediate_connection() as conn:
        conn.execute(
            delete(PeriodicRun).where(
                PeriodicRun.task == task,
                PeriodicRun.period_start == datetime.fromisoformat(period),
            )
        )


def run_pending(limit: int = 1000) -> int:
    """Run queued jobs in this process until the queue is empty (tests and the CLI's
    `--now`); returns how many ran. Scheduled retries are not waited for."""
    count = 0
    while count < limit:
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
        count += 1
    return count


def pending_count() -> int:
    """Jobs waiting in the queue (not counting scheduled retries)."""
    return int(huey.pending_count())


HEARTBEAT_KEY = "dogear:worker-heartbeat"


@huey.periodic_task(crontab(minute="*"))
def heartbeat(period: str | None = None) -> None:
    """Every minute a running worker says so, in the queue's own storage (shared by
    every host that shares the queue); `/healthz?deep=1` reads it.

    It needs no database, so the copies the hosts sharing the queue each schedule
    claim their minute in the queue's storage instead: one writes, the others skip.
    Claims are deleted two minutes on, when no copy of theirs can still be waiting.
    """
    if period is not None:
        if not huey.storage.put_if_empty(_heartbeat_claim(period), worker_id().encode()):
            return
        older = datetime.fromisoformat(period) - timedelta(minutes=2)
        huey.storage.delete_data(_heartbeat_claim(older.isoformat(timespec="minutes")))
    huey.storage.put_data(HEARTBEAT_KEY, repr(time.time()).encode())


def _heartbeat_claim(period: str) -> str:
    return f"{HEARTBEAT_KEY}:{period}"


def seconds_since_heartbeat() -> float | None:
    """How long ago a worker last said it was running; None if none ever did."""
    value = huey.storage.peek_data(HEARTBEAT_KEY)
    if value is EmptyData or not value:
        return None
    try:
        return max(0.0, time.time() - float(bytes(value).decode()))
    except (TypeError, ValueError):
        return None


def run_worker(app: Flask, workers: int) -> None:
    """Run the job worker in the foreground until SIGINT or SIGTERM.

    Threads, not processes: jobs wait on the network, not the CPU. On start it runs
    every feature's recovery step once, so jobs a killed worker dropped come back.
    """
    init_app(app)
    _register_tasks()
    heartbeat.call_local()
    with app.app_context():
        from app.catalog.tasks import requeue_stalled_fetches

        requeued = requeue_stalled_fetches()
        if requeued:
            log.warning("Requeued %d article fetch(es) left unfinished.", requeued)
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True, check_worker_health=True
    )
    consumer.run()


def _register_tasks() -> None:
    """Import every module that declares tasks, so the worker knows them by name."""
    import app.admin.tasks  # noqa: F401
    import app.backup  # noqa: F401
    import app.catalog.admin_tasks  # noqa: F401
    import app.catalog.tasks  # noqa: F401
    import app.imports.tasks  # noqa: F401
    import app.search.tasks  # noqa: F401
    import app.sources.tasks  # noqa: F401

"""Background jobs: the queue, the worker and the decorator features use for their tasks.

Huey runs the jobs. Its queue lives in `instance/jobs.db` (SQLite, no extra server)
unless `DOGEAR_JOBS_URL` (or `DOGEAR_REDIS_URL`) names a Redis server, so several hosts
can share one queue. The queue is not the source of truth: Huey removes a task when a
worker takes it, so a worker killed mid-job loses it. Every job therefore keeps its
state in Dogear's database (for example a post's fetch state and lease), is safe to
run twice, and a periodic sweep puts back what a dead worker dropped.

Features keep their tasks beside their services and declare them with `@job`, which
runs the function inside the app context of the process that runs it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flask import Flask, has_app_context
from huey import Huey, crontab
from huey.api import TaskWrapper
from huey.constants import EmptyData
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Bound to real storage by `init_app`; results are not kept (jobs write their outcome
# to the database).
huey = Huey("dogear", results=False, storage_class=MemoryStorage)
_app: Flask | None = None


def init_app(app: Flask) -> None:
    """Point the queue at this app's storage and remember the app for the worker."""
    global _app
    _app = app
    huey.storage = _storage(app)


def _storage(app: Flask) -> Any:
    url = app.config.get("JOBS_URL") or app.config.get("REDIS_URL") or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage("dogear", url=url)
    if url == "memory://":
        return MemoryStorage("dogear")
    path = url.removeprefix("sqlite:///") if url else str(Path(app.instance_path) / "jobs.db")
    return SqliteStorage("dogear", filename=path)


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
    """Declare a periodic task (a `huey.crontab(...)` schedule) run in the app context."""

    def decorator(fn: Callable[[], Any]) -> Any:
        @functools.wraps(fn)
        def in_app_context() -> Any:
            if _app is None:
                raise RuntimeError("the job queue is not bound to an app (jobs.init_app)")
            with _app.app_context():
                return fn()

        return huey.periodic_task(schedule, **options)(in_app_context)

    return decorator


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
def heartbeat() -> None:
    """Every minute a running worker says so, in the queue's own storage (shared by
    every host that shares the queue); `/healthz?deep=1` reads it."""
    huey.storage.put_data(HEARTBEAT_KEY, repr(time.time()).encode())


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
    import app.catalog.admin_tasks  # noqa: F401
    import app.catalog.tasks  # noqa: F401
    import app.imports.tasks  # noqa: F401
    import app.sources.tasks  # noqa: F401

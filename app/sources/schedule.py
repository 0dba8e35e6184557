"""When sources are refreshed: the every-minute sweep that reserves the sources due,
and "refresh all" (a JobRun that refreshes every source in turn, reports progress, and
is resumed when its worker dies).

Kept apart from refresh.py, which refreshes one source and knows nothing of runs. The
job wrappers are in tasks.py; services.start_refresh_all queues a run made here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import or_, select, update

from app import audit
from app.db import write_transaction
from app.extensions import db
from app.models import JobRun, Source, utcnow
from app.sources.common import REFRESH_ALL, REFRESHABLE_KINDS, SourceError, count
from app.sources.refresh import RefreshOutcome, refresh_source

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

log = logging.getLogger(__name__)


def reserve_due_sources(limit: int = 500) -> list[int]:
    """The sources due for a refresh, marked as queued for SOURCES_LEASE_SECONDS so
    the next minute's sweep doesn't queue them again (if the job is lost, they come
    due again when that runs out)."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SOURCES_LEASE_SECONDS"])
    due = list(
        db.session.scalars(
            select(Source.id)
            .where(
                Source.kind.in_(REFRESHABLE_KINDS),
                Source.url.is_not(None),
                or_(Source.next_refresh_at.is_(None), Source.next_refresh_at <= now),
                or_(Source.refresh_claimed_at.is_(None), Source.refresh_claimed_at < now - lease),
            )
            .order_by(Source.next_refresh_at, Source.id)
            .limit(limit)
        )
    )
    if not due:
        db.session.commit()
        return []
    with write_transaction():
        reserved = db.session.execute(
            update(Source)
            .where(
                Source.id.in_(due),
                or_(Source.next_refresh_at.is_(None), Source.next_refresh_at <= now),
            )
            .values(next_refresh_at=now + lease)
            .returning(Source.id)
            .execution_options(synchronize_session=False)
        )
        ids = sorted(reserved.scalars())
    return ids


@dataclass
class _RunCursor:
    """Where a refresh-all stands, kept in JobRun.cursor as JSON."""

    after: int = 0  # the last source id done
    last: int = 0  # the highest id to do (sources added later wait for their turn)
    owner: str = ""  # the worker running it
    beat: str = ""  # when that worker last reported (ISO); stale = the worker died
    created: int = 0
    updated: int = 0
    failed: int = 0

    @classmethod
    def of(cls, run: JobRun) -> _RunCursor:
        try:
            data = json.loads(run.cursor or "{}")
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (ValueError, TypeError):
            return cls()

    def save(self, run: JobRun) -> None:
        run.cursor = json.dumps(dataclasses.asdict(self))

    def stale(self, now: datetime, lease: timedelta) -> bool:
        try:
            return datetime.fromisoformat(self.beat) < now - lease
        except ValueError:
            return True


def active_refresh_all() -> JobRun | None:
    return db.session.scalar(
        select(JobRun)
        .where(JobRun.kind == REFRESH_ALL, JobRun.status.in_(("queued", "running")))
        .order_by(JobRun.id.desc())
        .limit(1)
    )


def open_refresh_all(actor: Reader | None) -> tuple[JobRun, bool]:
    """Make the JobRun of a refresh of every source, for services.start_refresh_all to
    queue. Returns the run and whether it is new (one already under way is returned
    instead of a second)."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SOURCES_LEASE_SECONDS"])
    with write_transaction():
        active = active_refresh_all()
        if active is not None and not _RunCursor.of(active).stale(now, lease):
            return active, False
        ids = list(
            db.session.scalars(
                select(Source.id).where(
                    Source.kind.in_(REFRESHABLE_KINDS), Source.url.is_not(None)
                )
            )
        )
        if not ids:
            raise SourceError("There are no feeds to refresh yet.")
        if active is not None:  # its worker died; this run takes over
            active.status = "failed"
            active.finished_at = now
            active.message = "Stopped: the worker running it went away."
        run = JobRun(
            kind=REFRESH_ALL,
            status="queued",
            total=len(ids),
            done=0,
            message="Waiting for the job worker…",
            created_by_id=actor.id if actor is not None else None,
        )
        _RunCursor(last=max(ids), beat=now.isoformat()).save(run)
        db.session.add(run)
        db.session.flush()
        audit.record(
            "source.refresh_all", detail=f"{count(len(ids), 'source', 'sources')}", actor=actor
        )
    return run, True


def run_refresh_all(run_id: int) -> str:
    """Refresh every source in id order, reporting progress on the JobRun (the job's
    body). Resumes after the last source done when a dead worker's run is requeued."""
    lease = timedelta(seconds=current_app.config["SOURCES_LEASE_SECONDS"])
    owner = uuid.uuid4().hex
    now = utcnow()
    with write_transaction():
        run = db.session.get(JobRun, run_id)
        if run is None or run.status not in ("queued", "running"):
            return "skipped"
        cursor = _RunCursor.of(run)
        if cursor.owner and not cursor.stale(now, lease):
            return "skipped"  # a live worker has it
        cursor.owner, cursor.beat = owner, now.isoformat()
        cursor.save(run)
        run.status = "running"
        run.started_at = run.started_at or now
    while True:
        with write_transaction():
            run = db.session.get(JobRun, run_id)
            cursor = _RunCursor.of(run) if run is not None else None
            if run is None or cursor is None or cursor.owner != owner:
                return "skipped"
            next_source = db.session.execute(
                select(Source.id, Source.name)
                .where(
                    Source.kind.in_(REFRESHABLE_KINDS),
                    Source.url.is_not(None),
                    Source.id > cursor.after,
                    Source.id <= cursor.last,
                )
                .order_by(Source.id)
                .limit(1)
            ).first()
            if next_source is None:
                run.status = "done"
                run.finished_at = utcnow()
                run.total = run.done
                run.message = _run_summary(run.done, cursor)
                return "done"
            cursor.beat = utcnow().isoformat()
            cursor.save(run)
            run.message = f"Refreshing “{next_source.name}”…"
        try:
            outcome = refresh_source(next_source.id)
        except Exception:
            log.exception("Refreshing source %s failed", next_source.id)
            outcome = RefreshOutcome("failed")
        with write_transaction():
            run = db.session.get(JobRun, run_id)
            if run is None:
                return "skipped"
            cursor = _RunCursor.of(run)
            if cursor.owner != owner:
                return "skipped"
            cursor.after = next_source.id
            cursor.beat = utcnow().isoformat()
            cursor.created += outcome.created
            cursor.updated += outcome.updated
            cursor.failed += outcome.result == "failed"
            cursor.save(run)
            run.done += 1
            run.total = max(run.total, run.done)


def stalled_refresh_runs() -> list[int]:
    """Refresh-all runs whose worker stopped reporting, made ready to be queued again."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SOURCES_LEASE_SECONDS"])
    runs = list(
        db.session.scalars(
            select(JobRun).where(
                JobRun.kind == REFRESH_ALL, JobRun.status.in_(("queued", "running"))
            )
        )
    )
    stalled = [run.id for run in runs if _RunCursor.of(run).stale(now, lease)]
    db.session.commit()
    if not stalled:
        return []
    with write_transaction():
        for run_id in stalled:
            run = db.session.get(JobRun, run_id)
            if run is None:
                continue
            cursor = _RunCursor.of(run)
            cursor.owner, cursor.beat = "", now.isoformat()
            cursor.save(run)
    return stalled


def _run_summary(done: int, cursor: _RunCursor) -> str:
    text = (
        f"Refreshed {count(done, 'source', 'sources')}: "
        f"{count(cursor.created, 'new post', 'new posts')}, {cursor.updated} updated"
    )
    if cursor.failed:
        text += f"; {cursor.failed} failed"
    return text + "."

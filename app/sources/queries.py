"""Reading sources for the admin page: the table, one source, topics, refresh runs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import JobRun, Post, Source, Topic, utcnow
from app.sources.common import REFRESH_ALL

RECENT_RUN = timedelta(hours=1)  # a finished refresh-all stays on the page this long


def sources() -> Select[tuple[Source]]:
    """Every source, by name, with its topics."""
    return select(Source).options(selectinload(Source.topics)).order_by(func.lower(Source.name))


def source(source_id: int) -> Source | None:
    return db.session.scalar(
        select(Source).options(selectinload(Source.topics)).where(Source.id == source_id)
    )


def post_count(source_id: int) -> int:
    """Posts in the catalog that came from the source (they stay if it is deleted)."""
    return db.session.scalar(select(func.count()).where(Post.source_id == source_id)) or 0


def topics() -> list[Topic]:
    """The topics an admin can give a source's posts, by name."""
    return list(db.session.scalars(select(Topic).order_by(func.lower(Topic.name))))


def refresh_run(run_id: int) -> JobRun | None:
    run = db.session.get(JobRun, run_id)
    return run if run is not None and run.kind == REFRESH_ALL else None


def current_refresh_run() -> JobRun | None:
    """The refresh-all under way, else the last one if it ended within the hour."""
    run = db.session.scalar(
        select(JobRun).where(JobRun.kind == REFRESH_ALL).order_by(JobRun.id.desc()).limit(1)
    )
    if run is None:
        return None
    if run.status in ("queued", "running"):
        return run
    if run.finished_at is not None and run.finished_at > utcnow() - RECENT_RUN:
        return run
    return None

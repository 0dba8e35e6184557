"""Background tasks of sources: refresh one, refresh all (with progress), and every
minute queue the sources whose next refresh is due."""

from __future__ import annotations

from huey import crontab

from app.jobs import job, periodic
from app.sources import refresh, schedule


@job()
def refresh_source(source_id: int) -> str:
    """Read one source's feed and write its entries."""
    return refresh.refresh_source(source_id).result


@job()
def refresh_all(run_id: int) -> str:
    """Refresh every source one after the other, reporting on the JobRun."""
    return schedule.run_refresh_all(run_id)


@periodic(crontab(minute="*"))
def refresh_due() -> int:
    """Every minute: queue the sources that are due, and resume dropped refresh-alls."""
    return enqueue_due_refreshes()


def enqueue_due_refreshes() -> int:
    """Queue a refresh of each due source; returns how many."""
    source_ids = schedule.reserve_due_sources()
    for source_id in source_ids:
        refresh_source(source_id)
    for run_id in schedule.stalled_refresh_runs():
        refresh_all(run_id)
    return len(source_ids)

"""Background tasks of imports: running an import, picking up one a dead worker
dropped, and forgetting uploads nobody confirmed."""

from __future__ import annotations

from datetime import timedelta

from huey import crontab
from sqlalchemy import delete

from app.db import write_transaction
from app.extensions import db
from app.imports import commit, services
from app.jobs import job, periodic
from app.models import Upload, utcnow

# An import shows a sign of life after every chunk (a second or so); one silent
# this long lost its worker.
LEASE = timedelta(minutes=5)
UPLOADS_KEPT = timedelta(days=1)


@job()
def import_file(run_id: int) -> str:
    """Commit an uploaded file the reader confirmed (app/imports/commit.py)."""
    return commit.run_import(run_id)


@periodic(crontab(minute="*"))
def resume_stalled_imports() -> int:
    """Every minute: queue again the imports a dead worker dropped; each resumes at
    its cursor (or finishes undoing)."""
    run_ids = services.stalled_runs(LEASE)
    for run_id in run_ids:
        import_file(run_id)
    return len(run_ids)


@periodic(crontab(minute="17"))
def forget_unconfirmed_uploads() -> int:
    """Hourly: drop uploaded files whose preview nobody confirmed within a day."""
    with write_transaction():
        return db.session.execute(
            delete(Upload).where(
                Upload.created_at < utcnow() - UPLOADS_KEPT, ~Upload.options.contains('"run"')
            )
        ).rowcount

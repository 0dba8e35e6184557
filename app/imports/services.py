"""Imports as the views, the CLI and the worker's tasks use them.

- `store_upload`: preview the file (preview.py) and keep it in `uploads` (any
  worker on any host can read it there) with its preview, for the reader to confirm.
- `start_import`: the reader's go-ahead: a JobRun, and the background job
  (tasks.py) that runs `commit.run_import`.
- The reader's own uploads and imports (404 for anyone else's), what a finished
  import did, and the imports a dead worker dropped (`stalled_runs`).

preview.py reads a file into a preview; commit.py is the job that writes it, with
posts.py (the posts it links to) and undo.py (taking it all back on failure).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import abort
from sqlalchemy import delete, insert, select

from app.db import write_transaction
from app.extensions import db
from app.imports.commit import KIND, PIECE
from app.imports.commit import run_import as run_import  # re-exported: tests call services.*
from app.imports.preview import SAMPLE as SAMPLE  # re-exported: tests call services.*
from app.imports.preview import Preview, preview
from app.models import JobRun, Upload, UploadPiece, utcnow

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

EXISTING = ("skip", "update")


def store_upload(user: Reader, filename: str, data: bytes) -> tuple[Upload, Preview]:
    """Preview the file and keep it for the reader to confirm. A file that can't be
    imported raises UnreadableFile and nothing is written. The reader's earlier
    uploads that never became an import go."""
    result = preview(user, data, filename)
    with write_transaction():
        db.session.execute(
            delete(Upload).where(Upload.user_id == user.id, ~Upload.options.contains('"run"'))
        )
        upload = Upload(
            user_id=user.id,
            filename=filename[:255],
            format=result.format,
            size=len(data),
            options=json.dumps({"preview": result.to_dict()}),
        )
        _add_upload(upload, data)
    return upload, result


def _add_upload(upload: Upload, data: bytes) -> None:
    """Insert the upload and its file, a PIECE per row (in the caller's transaction):
    each statement carries one piece, so neither the driver nor the database holds
    the file twice (one 50 MB value cost SQLite three times the file)."""
    upload.data = b""
    db.session.add(upload)
    db.session.flush()
    view = memoryview(data)
    for n, start in enumerate(range(0, len(data), PIECE)):
        db.session.execute(
            insert(UploadPiece).values(
                upload_id=upload.id, n=n, data=bytes(view[start : start + PIECE])
            )
        )


def own_upload(user: Reader, upload_id: int) -> Upload:
    """The reader's own upload, or 404."""
    upload = db.session.scalar(
        select(Upload).where(Upload.id == upload_id, Upload.user_id == user.id)
    )
    if upload is None:
        abort(404)
    return upload


def upload_preview(upload: Upload) -> Preview:
    return Preview.from_dict(json.loads(upload.options)["preview"])


def upload_run_id(upload: Upload) -> int | None:
    return json.loads(upload.options or "{}").get("run")


def discard_upload(user: Reader, upload_id: int) -> None:
    """Forget an upload the reader decided not to import."""
    with write_transaction():
        upload = own_upload(user, upload_id)
        if upload_run_id(upload) is None:
            db.session.delete(upload)


def own_run(user: Reader, run_id: int) -> JobRun:
    """One of the reader's imports, or 404."""
    run = db.session.scalar(
        select(JobRun).where(
            JobRun.id == run_id, JobRun.kind == KIND, JobRun.created_by_id == user.id
        )
    )
    if run is None:
        abort(404)
    return run


def recent_runs(user: Reader, limit: int = 5) -> list[JobRun]:
    return list(
        db.session.scalars(
            select(JobRun)
            .where(JobRun.kind == KIND, JobRun.created_by_id == user.id)
            .order_by(JobRun.id.desc())
            .limit(limit)
        )
    )


def start_import(user: Reader, upload_id: int, existing: str, *, enqueue: bool = True) -> JobRun:
    """Turn a previewed upload into an import job. Confirming twice starts it once."""
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}")
    with write_transaction():
        upload = own_upload(user, upload_id)
        options = json.loads(upload.options)
        if options.get("run"):
            return own_run(user, options["run"])
        result = Preview.from_dict(options["preview"])
        run = JobRun(
            kind=KIND,
            status="queued",
            total=result.entries + result.history,
            done=0,
            message=f"Waiting to import {result.entries:,} entries from {result.label}.",
            created_by_id=user.id,
        )
        db.session.add(run)
        db.session.flush()
        run.cursor = json.dumps({"upload": upload.id, "phase": "import", "next": 0})
        upload.options = json.dumps({**options, "run": run.id, "existing": existing})
    if enqueue:
        from app.imports.tasks import import_file

        import_file(run.id)
    return run


def run_result(run: JobRun) -> dict[str, int]:
    cursor = json.loads(run.cursor or "{}")
    return {key: int(cursor.get(key, 0)) for key in ("created", "updated", "unchanged")}


# --- the background job's watchman --------------------------------------------------------------


def stalled_runs(lease: timedelta) -> list[int]:
    """Imports a dead worker dropped: queued or running, with no sign of life (the
    cursor's heartbeat, or its creation) for longer than `lease`."""
    now = utcnow()
    stalled = []
    for run in db.session.scalars(
        select(JobRun).where(JobRun.kind == KIND, JobRun.status.in_(("queued", "running")))
    ):
        cursor = json.loads(run.cursor or "{}")
        beat = datetime.fromisoformat(cursor["beat"]) if cursor.get("beat") else run.created_at
        if beat < now - lease:
            stalled.append(run.id)
    return stalled

"""Undoing a failed import, so that the whole file lands or nothing does.

Before the first chunk, the job (commit.py) keeps `take_snapshot` of the reader's
entries it is going to update, with the upload. When the job fails, `start_undo`
switches the run to undoing (so a restarted job finishes the undo, not the import),
and `undo` takes back, in short transactions, the entries the import created (and
the posts only they had), the entries it updated (from the snapshot), the tags it
created and the reading history it added.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from app.db import write_transaction
from app.extensions import db
from app.imports import ImportedEntry
from app.imports.preview import CHUNK_SIZE, chunks
from app.models import Activity, Entry, JobRun, Post, Tag, Upload, entry_tags, utcnow
from app.tags.services import link_tags

_SNAPSHOT_FIELDS = (
    "state",
    "progress",
    "note",
    "rating",
    "title",
    "resume_position",
    "added_at",
    "started_at",
    "finished_at",
    "touched_at",
)
_DATE_FIELDS = ("added_at", "started_at", "finished_at", "touched_at")


def take_snapshot(user_id: int | None, entries: list[ImportedEntry]) -> list[dict[str, Any]]:
    """The reader's entries the import is going to update, as they are now."""
    ids: list[int] = []
    urls = [e.url for e in entries if e.url]
    keys = [e.post_key for e in entries if e.post_key and not e.url]
    base = select(Entry.id).join(Post, Entry.post_id == Post.id).where(Entry.user_id == user_id)
    for chunk in chunks(urls):
        ids.extend(db.session.scalars(base.where(Post.url.in_(chunk))))
    for chunk in chunks(keys):
        ids.extend(db.session.scalars(base.where(Post.dedupe_key.in_(chunk))))
    snapshot = []
    for chunk in chunks(ids):
        tags: dict[int, list[int]] = {}
        for entry_id, tag_id in db.session.execute(
            select(entry_tags.c.entry_id, entry_tags.c.tag_id).where(
                entry_tags.c.entry_id.in_(chunk)
            )
        ):
            tags.setdefault(entry_id, []).append(tag_id)
        for entry in db.session.scalars(select(Entry).where(Entry.id.in_(chunk))):
            row: dict[str, Any] = {"id": entry.id, "tag_ids": tags.get(entry.id, [])}
            for name in _SNAPSHOT_FIELDS:
                value = getattr(entry, name)
                row[name] = value.isoformat() if name in _DATE_FIELDS and value else value
            snapshot.append(row)
    return snapshot


def snapshot_of(upload_id: int) -> dict[int, dict[str, Any]]:
    upload = db.session.get(Upload, upload_id)
    rows = json.loads(upload.options).get("snapshot", []) if upload else []
    db.session.commit()
    return {row["id"]: row for row in rows}


# --- undoing a failed import -----------------------------------------------------------------


def start_undo(run_id: int, error: BaseException) -> None:
    """Switch the run to undoing (so a restarted job finishes the undo, not the import)."""
    with write_transaction():
        run = db.session.get(JobRun, run_id)
        cursor = json.loads(run.cursor or "{}")
        cursor.update(phase="undo", error=str(error)[:300] or type(error).__name__)
        run.cursor = json.dumps(cursor)
        run.message = "The import failed; undoing it…"


def undo(run_id: int) -> None:
    """Take back everything the import did, in short transactions: the entries it
    created (and the posts only they had), the entries it updated (from the
    snapshot), the tags it created, the reading history it added."""
    run = db.session.get(JobRun, run_id)
    cursor = json.loads(run.cursor or "{}")
    user_id = run.created_by_id
    db.session.commit()
    while True:
        with write_transaction():
            rows = db.session.execute(
                select(Entry.id, Entry.post_id)
                .where(Entry.import_run_id == run_id, Entry.user_id == user_id)
                .limit(CHUNK_SIZE)
            ).all()
            if not rows:
                break
            db.session.execute(delete(Entry).where(Entry.id.in_([r.id for r in rows])))
            db.session.execute(
                delete(Post).where(
                    Post.id.in_({r.post_id for r in rows}),
                    Post.owner_id.is_not(None),
                    ~select(Entry.id).where(Entry.post_id == Post.id).exists(),
                )
            )
    snapshot = list(snapshot_of(cursor.get("upload", 0)).values())
    for chunk in chunks(snapshot):
        with write_transaction():
            _restore(user_id, chunk)
    with write_transaction():
        created_tags = cursor.get("tags") or []
        for chunk in chunks(created_tags):
            db.session.execute(
                delete(Tag).where(
                    Tag.id.in_(chunk),
                    Tag.user_id == user_id,
                    ~select(entry_tags.c.tag_id).where(entry_tags.c.tag_id == Tag.id).exists(),
                )
            )
        if "max_activity" in cursor:
            db.session.execute(
                delete(Activity).where(
                    Activity.user_id == user_id,
                    Activity.id > cursor["max_activity"],
                    Activity.at < datetime.fromisoformat(cursor["started"]),
                )
            )
        run = db.session.get(JobRun, run_id)
        run.status = "failed"
        run.finished_at = utcnow()
        run.done = 0
        run.message = (
            "The import failed and was undone: your list is as it was. "
            "Try again, and if it fails again, tell your Dogear admin."
        )
        run.cursor = json.dumps({**cursor, "phase": "failed"})
        db.session.execute(delete(Upload).where(Upload.id == cursor.get("upload", 0)))


def _restore(user_id: int, rows: list[dict[str, Any]]) -> None:
    values = []
    for row in rows:
        value = {"id": row["id"]}
        for name in _SNAPSHOT_FIELDS:
            raw = row[name]
            value[name] = datetime.fromisoformat(raw) if name in _DATE_FIELDS and raw else raw
        values.append(value)
    ids = [row["id"] for row in rows]
    present = set(
        db.session.scalars(select(Entry.id).where(Entry.id.in_(ids), Entry.user_id == user_id))
    )
    values = [value for value in values if value["id"] in present]
    if values:
        db.session.execute(update(Entry), values)
    db.session.execute(delete(entry_tags).where(entry_tags.c.entry_id.in_(present)))
    wanted = {tag_id for row in rows for tag_id in row["tag_ids"]}
    alive = set(db.session.scalars(select(Tag.id).where(Tag.id.in_(wanted))))
    link_tags(
        (row["id"], tag_id)
        for row in rows
        if row["id"] in present
        for tag_id in row["tag_ids"]
        if tag_id in alive
    )

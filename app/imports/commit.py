"""The import job: committing a confirmed upload to the reader's list.

`run_import` reads the stored file again as a stream (its entries go to a temporary
file, preview.py's EntryStore, so memory stays bounded whatever the file's size: the
file's bytes are read from the database a piece at a time and let go once parsed),
commits CHUNK_SIZE entries per short write transaction, and moves the
run's cursor (JSON on the JobRun: how far it got, what it counted, what undoing
needs) in that same transaction, so a job a dead worker dropped resumes where it was
without doing anything twice, and a second copy of the job stops (`Superseded`)
rather than race the first. If it fails (an exception), undo.py takes back
everything it did. The posts come from posts.py; the entries, their tags and the
reading history are written here.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from app.db import write_transaction
from app.extensions import db
from app.imports import ImportedEntry
from app.imports.detect import FORMATS, Format
from app.imports.posts import FETCHABLE, create_posts, posts_for, queue_fetches, request_fetches
from app.imports.preview import (
    CHUNK_SIZE,
    ParsedFile,
    drop_unknown_catalog_posts,
    read_file,
)
from app.imports.undo import snapshot_of, start_undo, take_snapshot, undo
from app.models import Activity, Entry, JobRun, Upload, UploadPiece, utcnow
from app.tags.services import ensure_tags, insert_ignoring, link_tags

log = logging.getLogger(__name__)

KIND = "import"
OPEN_STATES = ("saved", "reading")


class Superseded(Exception):
    """Another run of the same job moved the cursor first: this one stops."""


PIECE = 1 << 20  # bytes of the stored file read from the database at a time


@dataclass
class Plan:
    """The file's entries in the order they are committed (the order of the saved
    list, oldest saved first), then the reading history of posts not listed: their
    indices in the parsed file's stores, the entries themselves read as committed."""

    parsed: ParsedFile
    order: list[int]  # indices into parsed.entries, in the order they are committed
    keep_positions: bool  # Dogear's own export: positions as the file has them

    @property
    def total(self) -> int:
        return len(self.order) + len(self.parsed.history)

    def items(self, start: int, size: int) -> list[ImportedEntry]:
        """The `size` items from the `start`th on."""
        entries, history = self.parsed.entries, self.parsed.history
        listed = len(self.order)
        return [
            entries[self.order[i]] if i < listed else history[i - listed]
            for i in range(start, min(start + size, self.total))
        ]


def _plan(parsed: ParsedFile, fallback: datetime) -> Plan:
    positions: list[int | None] = []
    added: list[datetime | None] = []
    for entry in parsed.entries:
        positions.append(entry.position)
        added.append(entry.added_at)
    keep = bool(positions) and all(p is not None for p in positions)

    def order(index: int) -> tuple[Any, int]:
        return (positions[index] if keep else added[index] or fallback), index

    ordered = sorted(range(len(positions)), key=order)
    return Plan(parsed=parsed, order=ordered, keep_positions=keep)


def run_import(run_id: int) -> str:
    """The background job: commit the upload's entries chunk by chunk; on failure,
    undo it all. Safe to run twice (the second stops at the first chunk the first
    one committed)."""
    run = db.session.get(JobRun, run_id)
    if run is None or run.kind != KIND or run.status in ("done", "failed"):
        return "skipped"
    cursor = json.loads(run.cursor or "{}")
    db.session.commit()
    if cursor.get("phase") == "undo":
        undo(run_id)
        return "failed"
    try:
        cursor = _claim(run_id, cursor)
        upload = db.session.get(Upload, cursor["upload"])
        if upload is None:
            raise RuntimeError("the uploaded file is gone")
        upload_id, fmt = upload.id, FORMATS.get(upload.format)
        options = json.loads(upload.options)
        db.session.commit()
        with _read_upload(upload_id, fmt) as parsed:
            drop_unknown_catalog_posts(parsed)
            if "now" not in cursor:
                cursor = _prepare(run_id, cursor, upload_id, parsed, options.get("existing"))
            snapshot = snapshot_of(upload_id)
            plan = _plan(parsed, datetime.fromisoformat(cursor["now"]))
            while cursor["next"] < plan.total:
                chunk = plan.items(cursor["next"], CHUNK_SIZE)
                cursor = _commit_chunk(run_id, cursor, chunk, plan, snapshot)
        _finish(run_id, cursor)
        return "done"
    except Superseded:
        db.session.rollback()
        return "superseded"
    except Exception as error:  # noqa: BLE001 - whatever it was, the import is undone
        db.session.rollback()
        log.exception("Import %s failed; undoing it", run_id)
        start_undo(run_id, error)
        undo(run_id)
        return "failed"


def _read_upload(upload_id: int, fmt: Format | None) -> ParsedFile:
    """The stored file, parsed (preview.read_file). Its bytes are read from the
    database a piece at a time into a temporary file, then in one read from there
    (one copy of the file in memory, never two), and let go once parsed (but for an
    Omnivore .zip, whose articles are read from it as they are committed). No read
    transaction stays open while the file is parsed."""
    size = db.session.scalar(select(Upload.size).where(Upload.id == upload_id))
    if size is None:
        raise RuntimeError("the uploaded file is gone")
    with tempfile.TemporaryFile() as spool:
        for piece in stored_pieces(upload_id):
            spool.write(piece)
        db.session.commit()
        spool.seek(0)
        data = spool.read()
    if len(data) != size:
        raise RuntimeError("the uploaded file changed while it was read")
    return read_file(data, fmt)


def stored_pieces(upload_id: int) -> Iterator[bytes]:
    """An upload's file as it is stored, a PIECE at a time, in order."""
    pieces = db.session.scalar(
        select(func.count()).select_from(UploadPiece).where(UploadPiece.upload_id == upload_id)
    )
    if pieces:  # since migration 0013: a row per piece
        for n in range(pieces):
            yield bytes(
                db.session.scalar(
                    select(UploadPiece.data).where(
                        UploadPiece.upload_id == upload_id, UploadPiece.n == n
                    )
                )
                or b""
            )
        return
    # Stored before it: one value, read a piece at a time.
    stored = db.session.scalar(select(func.length(Upload.data)).where(Upload.id == upload_id))
    for start in range(0, stored or 0, PIECE):
        yield bytes(
            db.session.scalar(
                select(func.substr(Upload.data, start + 1, PIECE)).where(Upload.id == upload_id)
            )
            or b""
        )


def _now_iso() -> str:
    return utcnow().isoformat()


def _move_cursor(run_id: int, old: dict[str, Any], new: dict[str, Any], **values: Any) -> None:
    """Move the run's cursor (in the caller's transaction) if nobody else moved it."""
    moved = db.session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.cursor == json.dumps(old))
        .values(cursor=json.dumps(new), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        raise Superseded


def _claim(run_id: int, cursor: dict[str, Any]) -> dict[str, Any]:
    new = {"started": _now_iso(), **cursor, "beat": _now_iso()}
    with write_transaction():
        _move_cursor(
            run_id,
            cursor,
            new,
            status="running",
            started_at=func.coalesce(JobRun.started_at, utcnow()),
            message="Importing…",
        )
    return new


def _prepare(
    run_id: int, cursor: dict[str, Any], upload_id: int, parsed: ParsedFile, existing: str | None
) -> dict[str, Any]:
    """Before the first chunk: remember what undoing needs (the entries the import will
    update, as they are now; the last reading-history row) and fix what must not
    change if the job restarts (its 'now', where new entries go in the queue)."""
    run = db.session.get(JobRun, run_id)
    user_id = run.created_by_id if run else None
    with write_transaction():
        base = db.session.scalar(select(func.max(Entry.position)).where(Entry.user_id == user_id))
        snapshot = []
        if existing == "update":
            for chunk in parsed.entries.chunks():
                snapshot.extend(take_snapshot(user_id, chunk))
        if snapshot:  # (none: the upload's row, file and all, needn't be written again)
            upload = db.session.get(Upload, upload_id)
            options = json.loads(upload.options)
            upload.options = json.dumps({**options, "snapshot": snapshot})
        new = {
            **cursor,
            "now": _now_iso(),
            "base": 0 if base is None else base + 1,
            "empty": base is None,
            "max_activity": db.session.scalar(select(func.max(Activity.id))) or 0,
            "tags": [],
            "fetched_open": 0,  # fetches asked for so far: pages still to read …
            "fetched_closed": 0,  # … and pages already read (they wait for the others)
            "open_total": sum(1 for e in parsed.entries if e.state in OPEN_STATES),
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "history": 0,
            "beat": _now_iso(),
        }
        _move_cursor(run_id, cursor, new, total=len(parsed.entries) + len(parsed.history))
    return new


# --- one chunk -------------------------------------------------------------------------------


def _commit_chunk(
    run_id: int,
    cursor: dict[str, Any],
    chunk: list[ImportedEntry],
    plan: Plan,
    snapshot: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """One short write transaction: the chunk's posts, entries, tags and history, and
    the cursor that says it is done. Fetches are queued after it commits."""
    run = db.session.get(JobRun, run_id)
    user_id = run.created_by_id
    new = {**cursor, "tags": list(cursor["tags"])}
    with write_transaction():
        wanted = _apply_chunk(user_id, run_id, chunk, cursor, new, plan, snapshot)
        delays = request_fetches(wanted, new)
        new["next"] = cursor["next"] + len(chunk)
        new["beat"] = _now_iso()
        _move_cursor(
            run_id,
            cursor,
            new,
            done=new["next"],
            message=f"Imported {new['next']:,} of {plan.total:,}.",
        )
    queue_fetches(delays)
    return new


def _apply_chunk(
    user_id: int,
    run_id: int,
    chunk: list[ImportedEntry],
    cursor: dict[str, Any],
    counts: dict[str, Any],
    plan: Plan,
    snapshot: dict[int, dict[str, Any]],
) -> list[int]:
    """Write one chunk (in the caller's transaction); returns the posts whose pages
    to fetch, in the chunk's order, each with whether its entry is still to read."""
    now = datetime.fromisoformat(cursor["now"])
    posts = posts_for(chunk)
    missing = [e for e in chunk if e.url and e.url not in posts and not e.history_only]
    if missing:
        create_posts(user_id, missing)
        posts.update(posts_for(missing))
    entries = _entries_for(user_id, [p.id for p in posts.values()])
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    tagged: list[tuple[int | None, int, ImportedEntry]] = []  # (entry id, post id, …)
    with_history: list[tuple[int, ImportedEntry]] = []
    for offset, item in enumerate(chunk):
        post = posts.get(item.identity)
        if post is None:
            continue
        if item.history_only:
            with_history.append((post.id, item))
            counts["history"] += len(item.activity)
            continue
        current = entries.get(post.id)
        if current is None:
            position = cursor["base"] + cursor["next"] + offset
            if plan.keep_positions and cursor["empty"]:
                position = item.position
            new_rows.append(_new_entry(user_id, run_id, post.id, item, position, now))
            tagged.append((None, post.id, item))
            with_history.append((post.id, item))
            counts["created"] += 1
        elif current.id in snapshot:
            updates.append(_updated_entry(current, item))
            tagged.append((current.id, post.id, item))
            with_history.append((post.id, item))
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    if new_rows:
        db.session.execute(insert_ignoring(Entry.__table__, "user_id", "post_id"), new_rows)
    if updates:
        db.session.execute(update(Entry), updates)
    created_ids = _entry_ids(user_id, run_id, [post_id for _, post_id, _ in tagged])
    names = {tag for _, _, item in tagged for tag in item.tags}
    tag_ids = ensure_tags(user_id, sorted(names), counts["tags"])
    pairs = []
    for entry_id, post_id, item in tagged:
        target = entry_id or created_ids.get(post_id)
        if target is not None:
            pairs.extend((target, tag_ids[tag]) for tag in item.tags)
    link_tags(pairs)
    _add_history(user_id, with_history, datetime.fromisoformat(cursor["started"]))
    wanted: dict[int, bool] = {}
    for item in chunk:
        post = posts.get(item.identity)
        needs = post is not None and post.url and post.fetch_state in FETCHABLE
        if needs and not item.history_only and post.id not in wanted:
            wanted[post.id] = item.state in OPEN_STATES
    return list(wanted.items())


def _entries_for(user_id: int, post_ids: list[int]) -> dict[int, Entry]:
    if not post_ids:
        return {}
    return {
        entry.post_id: entry
        for entry in db.session.scalars(
            select(Entry).where(Entry.user_id == user_id, Entry.post_id.in_(post_ids))
        )
    }


def _entry_ids(user_id: int, run_id: int, post_ids: list[int]) -> dict[int, int]:
    """{post id: entry id} of the entries this run created for these posts."""
    if not post_ids:
        return {}
    rows = db.session.execute(
        select(Entry.post_id, Entry.id).where(
            Entry.user_id == user_id, Entry.import_run_id == run_id, Entry.post_id.in_(post_ids)
        )
    )
    return {post_id: entry_id for post_id, entry_id in rows}


def _new_entry(
    user_id: int, run_id: int, post_id: int, item: ImportedEntry, position: int, now: datetime
) -> dict[str, Any]:
    added = item.added_at or now
    known = [d for d in (added, item.started_at, item.finished_at) if d]
    resume = item.resume_position
    return {
        "user_id": user_id,
        "post_id": post_id,
        "state": item.state,
        "progress": item.progress,
        "position": position,
        "note": item.full_note,
        "rating": item.rating,
        "added_at": added,
        "started_at": item.started_at,
        "finished_at": item.finished_at,
        "touched_at": item.touched_at or max(known),
        "resume_position": resume if resume is not None else min(item.progress * 10, 1000),
        "title": item.title,
        "import_run_id": run_id,
    }


def _updated_entry(entry: Entry, item: ImportedEntry) -> dict[str, Any]:
    """The reader chose to update entries they have: the file's state, progress and
    dates win; its tags and notes are added to theirs, never put in their place."""
    note = entry.note
    addition = item.full_note
    if addition and addition not in note:
        note = f"{note}\n\n{addition}" if note else addition
    done = item.state == "done"
    resume = item.resume_position
    if resume is None:
        resume = entry.resume_position if item.progress == entry.progress else item.progress * 10
    return {
        "id": entry.id,
        "state": item.state,
        "progress": item.progress,
        "started_at": (item.started_at or entry.started_at) if item.progress > 0 else None,
        "finished_at": (item.finished_at or entry.finished_at) if done else None,
        "added_at": min(entry.added_at, item.added_at) if item.added_at else entry.added_at,
        "touched_at": max(entry.touched_at, item.touched_at or entry.touched_at),
        "note": note,
        "title": item.title or entry.title,
        "rating": item.rating if item.rating is not None else entry.rating,
        "resume_position": min(resume, 1000),
    }


def _add_history(user_id: int, items: list[tuple[int, ImportedEntry]], started: datetime) -> None:
    """Reading history from Dogear's own export, without repeating rows already here.
    All of it is dated before the import started (undoing relies on that)."""
    wanted = [(post_id, a) for post_id, item in items for a in item.activity]
    if not wanted:
        return
    post_ids = list({post_id for post_id, _ in wanted})
    have = set(
        db.session.execute(
            select(
                Activity.post_id, Activity.at, Activity.progress_from, Activity.progress_to
            ).where(Activity.user_id == user_id, Activity.post_id.in_(post_ids))
        )
    )
    rows = []
    for post_id, activity in wanted:
        at = min(activity.at, started - timedelta(microseconds=1))
        key = (post_id, at, activity.progress_from, activity.progress_to)
        if key in have:
            continue
        have.add(key)
        rows.append(
            {
                "user_id": user_id,
                "post_id": post_id,
                "at": at,
                "progress_from": activity.progress_from,
                "progress_to": activity.progress_to,
            }
        )
    if rows:
        db.session.execute(Activity.__table__.insert(), rows)


# --- finishing ------------------------------------------------------------------------------


def _finish(run_id: int, cursor: dict[str, Any]) -> None:
    with write_transaction():
        new = {**cursor, "phase": "done"}
        _move_cursor(
            run_id,
            cursor,
            new,
            status="done",
            finished_at=utcnow(),
            message=result_message(new),
        )
        db.session.execute(delete(Upload).where(Upload.id == cursor["upload"]))


def result_message(cursor: dict[str, Any]) -> str:
    parts = [f"Imported {cursor.get('created', 0):,} new entries"]
    if cursor.get("updated"):
        parts.append(f"updated {cursor['updated']:,} already on your list")
    if cursor.get("unchanged"):
        parts.append(f"left {cursor['unchanged']:,} already on your list as they were")
    if cursor.get("history"):
        parts.append(f"added {cursor['history']:,} rows of reading history")
    return "; ".join(parts) + "."

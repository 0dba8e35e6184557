"""Writes to a reader's list. Each function takes the acting reader and owns its commit."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from app import access
from app.db import insert_ignoring_conflicts, write_transaction
from app.extensions import db
from app.models import Activity, Entry, EntryState, Post, User, utcnow


def state_for_progress(progress: int) -> str:
    """Progress decides the state: 0 is up next, anything between is reading, 100 done."""
    if progress >= 100:
        return EntryState.DONE.value
    if progress > 0:
        return EntryState.READING.value
    return EntryState.SAVED.value


def save_post(user: User, post_id: int) -> Entry:
    """Put a post on the reader's list (at the end of up next). Saving twice is harmless."""
    with write_transaction():
        access.visible_post(user, post_id)
        next_position = (
            select(func.coalesce(func.max(Entry.position), 0) + 1)
            .where(Entry.user_id == user.id)
            .scalar_subquery()
        )
        now = utcnow()
        db.session.execute(
            insert_ignoring_conflicts(
                Entry.__table__,
                {
                    "user_id": user.id,
                    "post_id": post_id,
                    "state": EntryState.SAVED.value,
                    "progress": 0,
                    "position": next_position,
                    "note": "",
                    "added_at": now,
                    "touched_at": now,
                },
                "user_id",
                "post_id",
            )
        )
    entry = db.session.scalar(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
    )
    assert entry is not None  # noqa: S101 - inserted or already there, inside the lock
    return entry


def unsave_post(user: User, post_id: int) -> None:
    """Take a not-yet-started post off the reader's list (the Save toggle's undo).

    A started, finished or archived entry stays: the toggle must never lose a reader's
    place. Removing those is `remove_entry`, from the list itself.
    """
    with write_transaction():
        access.visible_post(user, post_id)
        db.session.execute(
            delete(Entry).where(
                Entry.user_id == user.id,
                Entry.post_id == post_id,
                Entry.state == EntryState.SAVED.value,
                Entry.progress == 0,
            )
        )


def remove_entry(user: User, entry_id: int) -> Post:
    """Delete one of the reader's entries (404 for anyone else's); returns its post."""
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        post = entry.post
        db.session.delete(entry)
    return post


def update_progress(user: User, entry_id: int, progress: int) -> Entry:
    """Set progress (0-100) in one atomic UPDATE, move the state with it, log the change."""
    if not 0 <= progress <= 100:
        raise ValueError("progress must be between 0 and 100")
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        before = entry.progress
        now = utcnow()
        db.session.execute(
            update(Entry)
            .where(Entry.id == entry_id, Entry.user_id == user.id)
            .values(
                progress=progress,
                state=state_for_progress(progress),
                started_at=func.coalesce(Entry.started_at, now) if progress > 0 else None,
                finished_at=now if progress >= 100 else None,
                touched_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if before != progress:
            db.session.add(
                Activity(
                    user_id=user.id,
                    post_id=entry.post_id,
                    at=now,
                    progress_from=before,
                    progress_to=progress,
                )
            )
    db.session.refresh(entry)
    return entry


def set_archived(user: User, entry_id: int, archived: bool) -> Entry:
    """Archive an entry (out of the way, progress kept) or bring it back."""
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        entry.state = EntryState.ARCHIVED.value if archived else state_for_progress(entry.progress)
        entry.touched_at = utcnow()
    return entry

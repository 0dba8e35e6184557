"""Writes to a reader's list. Each function takes the acting reader and owns its commit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from app import access
from app.catalog import fetch as fetch_service
from app.catalog.fetch import placeholder_title, request_fetch
from app.catalog.tasks import fetch_article
from app.db import insert_ignoring_conflicts, write_transaction
from app.extensions import db
from app.models import Activity, Entry, EntryState, FetchState, Post, utcnow
from app.urls import normalize_url

if TYPE_CHECKING:
    from app.auth.signed_in import Reader


def state_for_progress(progress: int) -> str:
    """Progress decides the state: 0 is up next, anything between is reading, 100 done."""
    if progress >= 100:
        return EntryState.DONE.value
    if progress > 0:
        return EntryState.READING.value
    return EntryState.SAVED.value


def save_post(user: Reader, post_id: int) -> Entry:
    """Put a post on the reader's list (at the end of up next). Saving twice is harmless."""
    with write_transaction():
        access.visible_post(user, post_id)
        _insert_entry(user, post_id, first=False)
    return _entry_of(user, post_id)


def _insert_entry(user: Reader, post_id: int, *, first: bool, title: str = "") -> bool:
    """Add the entry unless the reader has one (`INSERT … ON CONFLICT DO NOTHING`), at
    the end of up next or, with `first`, at its top. True when it was added."""
    position = func.max(Entry.position) + 1 if not first else func.min(Entry.position) - 1
    next_position = (
        select(func.coalesce(position, 0)).where(Entry.user_id == user.id).scalar_subquery()
    )
    now = utcnow()
    result = db.session.execute(
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
                "resume_position": 0,
                "title": title,
            },
            "user_id",
            "post_id",
        ).returning(Entry.__table__.c.id)
    )
    return result.first() is not None


def _entry_of(user: Reader, post_id: int) -> Entry:
    entry = db.session.scalar(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
    )
    assert entry is not None  # noqa: S101 - inserted or already there, inside the lock
    return entry


@dataclass(frozen=True)
class AddedArticle:
    entry: Entry
    added: bool  # False: the reader had this page on their list already


def add_article(user: Reader, raw_url: str, title: str = "") -> AddedArticle:
    """Save any web page to the reader's list by its address, at the top of up next.

    One post per normalised URL: a catalog post with that URL is saved as it is; an
    article another reader added is shared (fetched once, and neither learns of the
    other); otherwise a new private post is made. Its page is fetched in the
    background. A title the reader gives is their entry's own, never the post's.
    Raises InvalidURL for an address that can't be saved.
    """
    url = normalize_url(raw_url)
    title = " ".join(title.split())[:500]
    with write_transaction():
        db.session.execute(
            insert_ignoring_conflicts(
                Post.__table__,
                {
                    "title": placeholder_title(url),
                    "summary": "",
                    "url": url,
                    "author": "",
                    "site_name": "",
                    "reading_minutes": 0,
                    "dedupe_key": "url:" + hashlib.sha256(url.encode()).hexdigest()[:48],
                    "owner_id": user.id,
                    "fetch_state": FetchState.NONE.value,
                    "fetch_error": "",
                    "fetch_attempts": 0,
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                },
                "url",
            )
        )
        post = db.session.scalar(select(Post).where(Post.url == url))
        assert post is not None  # noqa: S101 - inserted or already there, inside the lock
        added = _insert_entry(user, post.id, first=True, title=title)
        queue = request_fetch(post)
    if queue:
        fetch_article(post.id)
    return AddedArticle(entry=_entry_of(user, post.id), added=added)


def retry_fetch(user: Reader, entry_id: int) -> Entry:
    """Fetch a failed article again (the reader's Retry)."""
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        queue = fetch_service.retry_fetch(entry.post)
    if queue:
        fetch_article(entry.post_id)
    return entry


def unsave_post(user: Reader, post_id: int) -> None:
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


def remove_entry(user: Reader, entry_id: int) -> str:
    """Delete one of the reader's entries (404 for anyone else's); returns the title.

    An article that readers added goes with its last entry: it is in nobody's list
    and not in the catalog.
    """
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        post_id, title = entry.post_id, entry.display_title
        db.session.delete(entry)
        db.session.flush()
        db.session.execute(
            delete(Post)
            .where(
                Post.id == post_id,
                Post.owner_id.is_not(None),
                ~select(Entry.id).where(Entry.post_id == post_id).exists(),
            )
            .execution_options(synchronize_session=False)
        )
    return title


def update_progress(
    user: Reader, entry_id: int, progress: int, *, resume_position: int | None = None
) -> Entry:
    """Set progress (0-100) in one atomic UPDATE, move the state with it, log the change.

    The reader view's resume point moves with it: to `resume_position` when given,
    else to where the progress says (0 when starting again).
    """
    if not 0 <= progress <= 100:
        raise ValueError("progress must be between 0 and 100")
    if resume_position is None:
        resume_position = min(progress * 10, 1000)
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
                resume_position=resume_position,
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


def set_archived(user: Reader, entry_id: int, archived: bool) -> Entry:
    """Archive an entry (out of the way, progress kept) or bring it back."""
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        entry.state = EntryState.ARCHIVED.value if archived else state_for_progress(entry.progress)
        entry.touched_at = utcnow()
    return entry


def record_reading(user: Reader, entry_id: int, position: int) -> Entry:
    """The reader view's report of how far the reader is (0–1000 of the article).

    The resume point follows the reader both ways; progress only grows, so scrolling
    back up to re-read never loses ground. Reaching the end marks the entry done.
    An archived entry keeps its state.
    """
    if not 0 <= position <= 1000:
        raise ValueError("position must be between 0 and 1000")
    entry = access.own_entry(user, entry_id)
    progress = 100 if position >= 1000 else position // 10
    if progress > entry.progress and entry.state != EntryState.ARCHIVED.value:
        update_progress(user, entry_id, progress, resume_position=position)
    else:
        with write_transaction():
            db.session.execute(
                update(Entry)
                .where(Entry.id == entry_id, Entry.user_id == user.id)
                .values(resume_position=position, touched_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    db.session.refresh(entry)
    return entry

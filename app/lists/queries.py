"""Reads of a reader's list. Every function takes the reader explicitly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import request
from sqlalchemy import ScalarSelect, Select, func, select
from sqlalchemy.orm import contains_eager, selectinload

from app.extensions import db
from app.models import Entry, EntryState, Post, Tag, User

OPEN_STATES = (EntryState.SAVED.value, EntryState.READING.value)
TABS = (
    (EntryState.SAVED.value, "Up next"),
    (EntryState.READING.value, "Reading"),
    (EntryState.DONE.value, "Done"),
    (EntryState.ARCHIVED.value, "Archived"),
)


def count_open_entries(user: User) -> int:
    """Entries up next or in progress (the header's badge). A page view has it already:
    the sign-in check counted them in the same statement (`open_entries_count`)."""
    counted = getattr(user, "open_entries", None)
    if counted is not None and request.method in ("GET", "HEAD"):
        return counted  # nothing this request did can have changed it
    return db.session.scalar(select(open_entries_count(user.id))) or 0


def open_entries_count(user_id: Any) -> ScalarSelect[int]:
    """The number of a reader's open entries, as a subquery (`user_id` may be a column)."""
    return (
        select(func.count())
        .select_from(Entry)
        .where(Entry.user_id == user_id, Entry.state.in_(OPEN_STATES))
        .scalar_subquery()
    )


def entries_in_state(user: User, state: str, tag: str | None = None) -> Select[tuple[Entry]]:
    """One tab of the list, in the order that tab reads best; with `tag`, only the
    entries the reader gave that tag."""
    order = {
        EntryState.SAVED.value: (Entry.position, Entry.id),
        EntryState.READING.value: (Entry.touched_at.desc(), Entry.id.desc()),
        EntryState.DONE.value: (Entry.finished_at.desc(), Entry.id.desc()),
        EntryState.ARCHIVED.value: (Entry.touched_at.desc(), Entry.id.desc()),
    }[state]
    stmt = (
        select(Entry)
        .join(Entry.post)
        .options(
            contains_eager(Entry.post).lazyload(Post.topics),  # rows show no topics
            selectinload(Entry.tags),  # one query for the page's tags
        )
        .where(Entry.user_id == user.id, Entry.state == state)
        .order_by(*order)
    )
    if tag:
        stmt = stmt.where(Entry.tags.any((Tag.name == tag) & (Tag.user_id == user.id)))
    return stmt


@dataclass(frozen=True)
class ListSummary:
    """Counts per tab and the time left on everything not yet done."""

    counts: dict[str, int]
    minutes_left: int


def list_summary(user: User) -> ListSummary:
    # The minutes by a lookup per entry, not a join: PostgreSQL's planner would read
    # every post through an index to join a reader's thousand entries.
    minutes = select(Post.reading_minutes).where(Post.id == Entry.post_id).scalar_subquery()
    rows = db.session.execute(
        select(Entry.state, func.count(), func.sum(minutes * (100 - Entry.progress)))
        .where(Entry.user_id == user.id)
        .group_by(Entry.state)
    ).all()
    counts = {state: 0 for state, _ in TABS}
    minutes_left = 0
    for state, count, left in rows:
        counts[state] = count
        if state in OPEN_STATES:
            minutes_left += int(left or 0)
    return ListSummary(counts=counts, minutes_left=-(-minutes_left // 100))


def entries_for_posts(user: User | None, post_ids: Iterable[int]) -> dict[int, Entry]:
    """The reader's entries for these posts, by post id: one query for a whole page."""
    ids = list(post_ids)
    if user is None or not user.is_authenticated or not ids:
        return {}
    entries = db.session.scalars(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id.in_(ids))
    )
    return {entry.post_id: entry for entry in entries}


def entry_for_post(user: User, post_id: int) -> Entry | None:
    return entries_for_posts(user, [post_id]).get(post_id)

"""Reads of a reader's list. Every function takes the reader explicitly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import request
from sqlalchemy import Row, ScalarSelect, Select, bindparam, column, func, select, table

from app.db import columns_of, plain_rows
from app.extensions import db
from app.models import Entry, EntryDisplay, EntryState, Post, Tag, entry_tags

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

OPEN_STATES = (EntryState.SAVED.value, EntryState.READING.value)
TABS = (
    (EntryState.SAVED.value, "Up next"),
    (EntryState.READING.value, "Reading"),
    (EntryState.DONE.value, "Done"),
    (EntryState.ARCHIVED.value, "Archived"),
)


def count_open_entries(user: Reader) -> int:
    """Entries up next or in progress (the header's badge). A page view has it already:
    the sign-in check counted them in the same statement (`open_entries_count`)."""
    counted = getattr(user, "open_entries", None)
    if counted is not None and request.method in ("GET", "HEAD"):
        return counted  # nothing this request did can have changed it
    return db.session.scalar(select(open_entries_count(user.id))) or 0


# Entries per (reader, state) and their minutes left, kept by triggers in the same
# transaction as every write to entries (migration 0014): reading a reader's list
# summary takes at most four rows, however long the list.
list_summaries = table(
    "list_summaries",
    column("user_id"),
    column("state"),
    column("entries"),
    column("minutes_left_x100"),  # sum of reading minutes x percent left
)


def open_entries_count(user_id: Any) -> ScalarSelect[int]:
    """The number of a reader's open entries, as a subquery (`user_id` may be a column)."""
    return (
        select(func.coalesce(func.sum(list_summaries.c.entries), 0))
        .where(list_summaries.c.user_id == user_id, list_summaries.c.state.in_(OPEN_STATES))
        .scalar_subquery()
    )


def entries_in_state(user: Reader, state: str, tag: str | None = None) -> Select[Any]:
    """One tab of the list as plain columns (what a row shows: `ListRow`), in the order
    that tab reads best; with `tag`, only the entries the reader gave that tag."""
    order = {
        EntryState.SAVED.value: (Entry.position, Entry.id),
        EntryState.READING.value: (Entry.touched_at.desc(), Entry.id.desc()),
        EntryState.DONE.value: (Entry.finished_at.desc(), Entry.id.desc()),
        EntryState.ARCHIVED.value: (Entry.touched_at.desc(), Entry.id.desc()),
    }[state]
    stmt = (
        select(
            Entry.id,
            Entry.title,
            Entry.state,
            Entry.progress,
            Entry.finished_at,
            *(col.label(f"post_{col.key}") for col in _ROW_POST_COLUMNS),
        )
        .join(Entry.post)
        .where(Entry.user_id == user.id, Entry.state == state)
        .order_by(*order)
    )
    if tag:
        stmt = stmt.where(Entry.tags.any((Tag.name == tag) & (Tag.user_id == user.id)))
    return stmt


@dataclass(frozen=True, slots=True)
class ListPost:
    id: int
    title: str
    url: str | None
    author: str | None
    site_name: str | None
    reading_minutes: int | None
    fetch_state: str
    fetch_error: str | None
    content_kind: str
    updated_at: datetime


# The post's part of a list row: what `entry_row` and `fetch_status` show.
_ROW_POST_COLUMNS = columns_of(Post, ListPost)
_ROW_POST_FIELDS = tuple(f"post_{col.key}" for col in _ROW_POST_COLUMNS)


@dataclass(frozen=True, slots=True)
class ListTag:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ListRow(EntryDisplay):
    """One entry of a list tab as plain values, with what the list's macros read of an
    `Entry` (`EntryDisplay`): the list is read as plain rows, not entities."""

    id: int
    title: str  # the reader's own title for it ("" for the post's)
    state: str
    progress: int
    finished_at: datetime | None
    post: ListPost
    tags: tuple[ListTag, ...]


def list_rows(rows: Sequence[Row[Any]]) -> list[ListRow]:
    """Rows of `entries_in_state` as `ListRow`s, with their tags (one query)."""
    tags = tags_of([row.id for row in rows])
    return [
        ListRow(
            id=row.id,
            title=row.title,
            state=row.state,
            progress=row.progress,
            finished_at=row.finished_at,
            post=ListPost(*(getattr(row, name) for name in _ROW_POST_FIELDS)),
            tags=tags.get(row.id, ()),
        )
        for row in rows
    ]


def tags_of(entry_ids: Sequence[int]) -> dict[int, tuple[ListTag, ...]]:
    """The tags of these entries by entry id, by name (one query; none without ids)."""
    tags: dict[int, list[ListTag]] = {}
    if entry_ids:
        for entry_id, tag_id, name in plain_rows(_tags_of(), {"entry_ids": list(entry_ids)}):
            tags.setdefault(entry_id, []).append(ListTag(tag_id, name))
    return {entry_id: tuple(found) for entry_id, found in tags.items()}


@cache
def _tags_of() -> Select[tuple[int, int, str]]:
    return (
        select(entry_tags.c.entry_id, Tag.id, Tag.name)
        .join(Tag, Tag.id == entry_tags.c.tag_id)
        .where(entry_tags.c.entry_id.in_(bindparam("entry_ids", expanding=True)))
        .order_by(Tag.name)
    )


@dataclass(frozen=True, slots=True)
class PostEntry(EntryDisplay):
    """The reader's entry for one post as the post page's controls show it
    (lists/partials/post_entry.html), as plain values: read with the post itself by
    `app.browse.queries.post_page`."""

    id: int
    title: str
    state: str
    progress: int
    finished_at: datetime | None
    resume_position: int
    post: Any  # the page's PostPage
    tags: tuple[ListTag, ...]


# What a PostEntry reads of the entry, in its field order (post and tags aside).
POST_ENTRY_COLUMNS = columns_of(Entry, PostEntry, leaving=("post", "tags"))


@dataclass(frozen=True)
class ListSummary:
    """Counts per tab and the time left on everything not yet done."""

    counts: dict[str, int]
    minutes_left: int


@cache
def _list_summary() -> Select[tuple[str, int, int]]:
    summaries = list_summaries.c
    return select(summaries.state, summaries.entries, summaries.minutes_left_x100).where(
        summaries.user_id == bindparam("user_id")
    )


def list_summary(user: Reader) -> ListSummary:
    rows = plain_rows(_list_summary(), {"user_id": user.id}).all()
    counts = {state: 0 for state, _ in TABS}
    minutes_left = 0
    for state, count, left in rows:
        counts[state] = count
        if state in OPEN_STATES:
            minutes_left += int(left or 0)
    return ListSummary(counts=counts, minutes_left=-(-minutes_left // 100))


def entries_for_posts(user: Reader | None, post_ids: Iterable[int]) -> dict[int, Row[Any]]:
    """The reader's entries for these posts, by post id, as plain rows (post_id, state,
    progress: what a result's Save toggle shows): one query for a whole page."""
    ids = list(post_ids)
    if user is None or not user.is_authenticated or not ids:
        return {}
    rows = plain_rows(_entries_for_posts(), {"user_id": user.id, "post_ids": ids})
    return {row.post_id: row for row in rows}


@cache
def _entries_for_posts() -> Select[tuple[int, str, int]]:
    return select(Entry.post_id, Entry.state, Entry.progress).where(
        Entry.user_id == bindparam("user_id"),
        Entry.post_id.in_(bindparam("post_ids", expanding=True)),
    )


def entry_for_post(user: Reader, post_id: int) -> Entry | None:
    return db.session.scalar(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
    )

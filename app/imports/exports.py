"""A reader's list written out as it is read: Dogear JSON (everything, for a move to
another Dogear), CSV (for spreadsheets) and Netscape bookmark HTML (for browsers and
linkding).

Each writer is a generator of text pieces: the entries are queried 500 at a time
(`yield_per`), each batch's tags and reading history with one query each, so a list
of any length is written in constant memory (the view streams it with
`stream_with_context`; `dogear export` writes it to stdout).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, func, select

from app.extensions import db
from app.imports.formats.dogear_json import FORMAT, FORMAT_VERSION
from app.models import Activity, Entry, Post, Tag, entry_tags, utcnow

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

BATCH = 500

_COLUMNS = (
    Entry.id,
    Entry.post_id,
    Entry.state,
    Entry.progress,
    Entry.position,
    Entry.note,
    Entry.rating,
    Entry.added_at,
    Entry.started_at,
    Entry.finished_at,
    Entry.touched_at,
    Entry.resume_position,
    Entry.title,
    Post.url,
    Post.dedupe_key,
    Post.owner_id,
    Post.title.label("post_title"),
    Post.author,
    Post.site_name,
    Post.summary,
    Post.published_on,
)


@dataclass(frozen=True)
class ExportSummary:
    entries: int
    tags: int
    without_address: int


def summary(user: Reader) -> ExportSummary:
    entries, without = db.session.execute(
        select(func.count(), func.count().filter(Post.url.is_(None)))
        .select_from(Entry)
        .join(Post, Entry.post_id == Post.id)
        .where(Entry.user_id == user.id)
    ).one()
    tags = db.session.scalar(select(func.count()).select_from(Tag).where(Tag.user_id == user.id))
    return ExportSummary(entries=entries, tags=tags or 0, without_address=without)


def _batches(user: Reader) -> Iterator[tuple[Sequence[Row[Any]], dict[int, list[str]]]]:
    """The reader's entries in the order they were saved, BATCH at a time, each batch
    with its entries' tags."""
    result = db.session.execute(
        select(*_COLUMNS)
        .join(Post, Entry.post_id == Post.id)
        .where(Entry.user_id == user.id)
        .order_by(Entry.added_at, Entry.id)
        .execution_options(yield_per=BATCH)
    )
    for rows in result.partitions():
        tags: dict[int, list[str]] = {}
        for entry_id, name in db.session.execute(
            select(entry_tags.c.entry_id, Tag.name)
            .join(Tag, Tag.id == entry_tags.c.tag_id)
            .where(entry_tags.c.entry_id.in_([row.id for row in rows]))
            .order_by(Tag.name)
        ):
            tags.setdefault(entry_id, []).append(name)
        yield rows, tags


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() + ("Z" if isinstance(value, datetime) else "")


# --- Dogear JSON ------------------------------------------------------------------------------


def export_json(user: Reader) -> Iterator[str]:
    """Everything about the reader's list (format_version 1; the reader is
    app/imports/formats/dogear_json.py)."""
    tag_names = list(
        db.session.scalars(select(Tag.name).where(Tag.user_id == user.id).order_by(Tag.name))
    )
    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": _iso(utcnow()),
        "account": user.email,
        "tags": tag_names,
    }
    yield json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "entries": ['
    first = True
    for rows, tags in _batches(user):
        history = _history(user, [row.post_id for row in rows])
        for row in rows:
            item = _json_entry(row, tags.get(row.id, []), history.get(row.post_id, []))
            yield ("\n  " if first else ",\n  ") + json.dumps(item, ensure_ascii=False)
            first = False
    yield '\n ],\n "activity": ['
    first = True
    for row in _orphan_history(user):
        item = {
            "url": row.url,
            "post_key": None if row.url else row.dedupe_key,
            "at": _iso(row.at),
            "from": row.progress_from,
            "to": row.progress_to,
        }
        yield ("\n  " if first else ",\n  ") + json.dumps(item, ensure_ascii=False)
        first = False
    yield "\n ]\n}\n"


def _json_entry(row: Row[Any], tags: list[str], history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "url": row.url,
        "post_key": None if row.url else row.dedupe_key,
        "title": row.title,
        "state": row.state,
        "progress": row.progress,
        "position": row.position,
        "resume_position": row.resume_position,
        "note": row.note,
        "rating": row.rating,
        "added_at": _iso(row.added_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "touched_at": _iso(row.touched_at),
        "tags": tags,
        "post": {
            "title": row.post_title,
            "author": row.author,
            "site_name": row.site_name,
            "summary": row.summary,
            "published_on": _iso(row.published_on),
            "in_catalog": row.owner_id is None,
        },
        "activity": history,
    }


def _history(user: Reader, post_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    history: dict[int, list[dict[str, Any]]] = {}
    rows = db.session.execute(
        select(Activity.post_id, Activity.at, Activity.progress_from, Activity.progress_to)
        .where(Activity.user_id == user.id, Activity.post_id.in_(post_ids))
        .order_by(Activity.at, Activity.id)
    )
    for post_id, at, before, after in rows:
        history.setdefault(post_id, []).append({"at": _iso(at), "from": before, "to": after})
    return history


def _orphan_history(user: Reader) -> Iterator[Row[Any]]:
    """Reading history of posts no longer on the list (it still counts in the stats)."""
    listed = select(Entry.id).where(Entry.user_id == user.id, Entry.post_id == Activity.post_id)
    result = db.session.execute(
        select(
            Post.url, Post.dedupe_key, Activity.at, Activity.progress_from, Activity.progress_to
        )
        .join(Post, Activity.post_id == Post.id)
        .where(Activity.user_id == user.id, ~listed.exists())
        .order_by(Activity.at, Activity.id)
        .execution_options(yield_per=BATCH)
    )
    yield from result


# --- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "url",
    "title",
    "state",
    "progress",
    "tags",
    "note",
    "rating",
    "added_at",
    "started_at",
    "finished_at",
    "touched_at",
    "position",
    "resume_position",
    "author",
    "site_name",
    "published_on",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """Text a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a
    leading apostrophe; numbers Dogear wrote itself stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_csv(user: Reader) -> Iterator[str]:
    """One row per entry; tags separated by commas (a tag never contains one)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for rows, tags in _batches(user):
        for row in rows:
            writer.writerow(
                [
                    safe_cell(value)
                    for value in (
                        row.url or "",
                        row.title or row.post_title,
                        row.state,
                        row.progress,
                        ", ".join(tags.get(row.id, [])),
                        row.note,
                        "" if row.rating is None else row.rating,
                        _iso(row.added_at) or "",
                        _iso(row.started_at) or "",
                        _iso(row.finished_at) or "",
                        _iso(row.touched_at) or "",
                        row.position,
                        row.resume_position,
                        row.author,
                        row.site_name,
                        _iso(row.published_on) or "",
                    )
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


# --- Netscape bookmark HTML ---------------------------------------------------------------------

_HEADER = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<!-- Exported from Dogear. Browsers and linkding import this file. -->
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks</H1>
<DL><p>
"""


def _unix(value: datetime | None) -> int:
    return int(value.replace(tzinfo=UTC).timestamp()) if value else 0


def export_html(user: Reader) -> Iterator[str]:
    """Bookmarks as browsers and linkding read them: `TOREAD="1"` for what is still
    to read, `TAGS`, `ADD_DATE`; an archived entry carries linkding's
    `linkding:archived` tag; the note is the description. Posts without an address
    can't be bookmarks and are left out."""
    yield _HEADER
    for rows, tags in _batches(user):
        lines = []
        for row in rows:
            if not row.url:
                continue
            names = list(tags.get(row.id, []))
            if row.state == "archived":
                names.append("linkding:archived")
            to_read = "1" if row.state in ("saved", "reading") else "0"
            title = escape(row.title or row.post_title or row.url)
            lines.append(
                f'<DT><A HREF="{escape(row.url)}" ADD_DATE="{_unix(row.added_at)}" '
                f'LAST_MODIFIED="{_unix(row.touched_at)}" TOREAD="{to_read}" '
                f'TAGS="{escape(",".join(names))}">{title}</A>\n'
            )
            if row.note:
                lines.append(f"<DD>{escape(row.note)}\n")
        yield "".join(lines)
    yield "</DL><p>\n"

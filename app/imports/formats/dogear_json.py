"""Dogear's own JSON export (`format_version` 1), read back.

Everything an entry has travels: state, progress, position in the queue, resume
position, note, rating, the reader's own title, tags, the four dates and the reading
history (activity), so importing an export into an empty account reproduces the list
exactly. A post without an address (a catalog post from a listing) is found by its
catalog key; reading history of posts no longer on the list comes along too.

The writer is app/imports/exports.py; the two change together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from app.imports import Activity, ImportedEntry, ImportProblem, UnreadableFile
from app.imports.formats import (
    AUTHOR_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    check_url,
    day_from_iso,
    from_iso,
    json_events,
    json_items,
    json_source,
    note_text,
    plain,
    saved_date,
    tag_list,
)
from app.urls import InvalidURL

FORMAT = "dogear"
FORMAT_VERSION = 1
STATES = ("saved", "reading", "done", "archived")

Row = ImportedEntry | ImportProblem


INVALID = "The file isn't valid JSON."
_HEAD = ("format", "format_version", "entries")


def opening(source: Callable[[], BinaryIO], invalid: str = INVALID) -> dict[str, Any] | None:
    """The top-level `format`, `format_version` and `entries` of a JSON document, read
    as a stream: a scalar as itself, an object or array as "start_map" or
    "start_array"; None when the document isn't an object. Reading stops as soon as
    the three say it is a good export (at its opening, where the writer puts them);
    otherwise the whole document is read, so invalid JSON anywhere is
    UnreadableFile(`invalid`), as json.loads would have it."""
    events = json_events(source, invalid)
    if next(events, ("", None, None))[1] != "start_map":
        for _ in events:  # not an object: still check it is JSON
            pass
        return None
    found: dict[str, Any] = {}
    key: str | None = None
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            key = value
        elif key is not None:  # the first event of a top-level value
            found[key] = event if event in ("start_map", "start_array") else value
            key = None
            if _good(found):
                return found
    return found


def _good(found: dict[str, Any]) -> bool:
    return (
        all(name in found for name in _HEAD)
        and found["format"] == FORMAT
        and found["format_version"] == FORMAT_VERSION
        and found["entries"] == "start_array"
    )


def parse(data: bytes) -> Iterator[Row]:
    source = json_source(data)
    head = opening(source)
    if head is None or head.get("format") != FORMAT or "entries" not in head:
        raise UnreadableFile("The file isn't a Dogear export.")
    version = head.get("format_version")
    if version != FORMAT_VERSION:
        raise UnreadableFile(
            f"This Dogear export is format version {plain(version, 10) or '?'}; "
            f"this Dogear reads version {FORMAT_VERSION}."
        )
    if head["entries"] != "start_array":
        raise UnreadableFile("The export's “entries” isn't a list.")
    # One pass of the document for the entries and one for the history, each built
    # an item at a time; the first reads it to the end (invalid JSON is an error).
    for number, item in enumerate(json_items(source, "entries.item", INVALID), start=1):
        where = f"entry {number}"
        yield (
            _entry(item, where)
            if isinstance(item, dict)
            else ImportProblem(where, "The entry isn't an object.")
        )
    for number, item in enumerate(json_items(source, "activity.item", INVALID), start=1):
        where = f"activity {number}"
        row = _history(item, where) if isinstance(item, dict) else None
        yield row or ImportProblem(where, "The reading history row can't be read.")


def _address(item: dict[str, Any], where: str) -> tuple[str | None, str | None] | ImportProblem:
    if item.get("url"):
        try:
            return check_url(item["url"]), None
        except InvalidURL as error:
            return ImportProblem(where, str(error))
    key = item.get("post_key")
    if isinstance(key, str) and key.strip():
        return None, key.strip()[:64]
    return ImportProblem(where, "The entry has no address.")


def _entry(item: dict[str, Any], where: str) -> Row:
    address = _address(item, where)
    if isinstance(address, ImportProblem):
        return address
    url, key = address
    post = item.get("post") if isinstance(item.get("post"), dict) else {}
    entry = ImportedEntry(url=url, post_key=key, where=where)
    entry.title = plain(item.get("title"), TITLE_MAX)
    entry.post_title = plain(post.get("title"), TITLE_MAX)
    entry.author = plain(post.get("author"), AUTHOR_MAX)
    entry.site_name = plain(post.get("site_name"), AUTHOR_MAX)
    entry.summary = plain(post.get("summary"), SUMMARY_MAX)
    entry.published_on = day_from_iso(post.get("published_on"))
    state = item.get("state")
    if state not in STATES:
        entry.warnings.append(f"the state “{plain(state, 20)}” is unknown; it goes to Up next")
        state = "saved"
    entry.state = state
    entry.progress = _number(item.get("progress"), 0, 100, entry, "progress") or 0
    entry.position = _number(item.get("position"), -(2**31), 2**31 - 1, entry, "position")
    entry.resume_position = _number(item.get("resume_position"), 0, 1000, entry, "resume")
    entry.rating = _number(item.get("rating"), 1, 5, entry, "rating")
    entry.note = note_text(item.get("note"))
    saved_date(entry, item.get("added_at"), from_iso(item.get("added_at")))
    entry.started_at = _date(item, "started_at", entry)
    entry.finished_at = _date(item, "finished_at", entry)
    entry.touched_at = _date(item, "touched_at", entry)
    tags = item.get("tags")
    entry.tags = tag_list(tags if isinstance(tags, list) else [])
    entry.activity = _activity(item.get("activity"), entry)
    return entry


def _history(item: dict[str, Any], where: str) -> Row | None:
    address = _address(item, where)
    if isinstance(address, ImportProblem):
        return address
    url, key = address
    entry = ImportedEntry(url=url, post_key=key, where=where, history_only=True)
    entry.activity = _activity([item], entry)
    return entry if entry.activity else None


def _date(item: dict[str, Any], name: str, entry: ImportedEntry) -> datetime | None:
    raw = item.get(name)
    if raw in (None, ""):
        return None
    moment = from_iso(raw)
    if moment is None:
        entry.warnings.append(f"its {name.replace('_', ' ')} “{plain(raw, 30)}” isn't a date")
    return moment


def _number(value: object, low: int, high: int, entry: ImportedEntry, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        entry.warnings.append(f"its {what} “{plain(value, 20)}” isn't a number; left out")
        return None
    number = int(value)
    if not low <= number <= high:
        entry.warnings.append(f"its {what} {number} is out of range; left out")
        return None
    return number


def _activity(value: object, entry: ImportedEntry) -> list[Activity]:
    rows = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        at = from_iso(item.get("at"))
        before, after = item.get("from"), item.get("to")
        valid = all(isinstance(n, int) and 0 <= n <= 100 for n in (before, after))
        if at is None or not valid:
            entry.warnings.append("a row of its reading history can't be read; left out")
            continue
        rows.append(Activity(at=at, progress_from=before, progress_to=after))  # type: ignore[arg-type]
    return rows

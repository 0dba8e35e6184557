"""Instapaper's CSV export: `URL,Title,Selection,Folder,Timestamp,Tags` (Tags a JSON
array), or the older `URL,Title,Selection,Folder`.

Unread → up next; Archive → done; Starred → up next with a `starred` tag; any other
folder → up next, tagged with the folder's name. Selection (the reader's highlighted
passage) → the note. Timestamp (Unix seconds) → when it was saved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from app.imports import ImportedEntry, ImportProblem
from app.imports.formats import (
    TITLE_MAX,
    check_url,
    decode_stream,
    from_unix,
    note_text,
    plain,
    records,
    saved_date,
    tag_list,
)
from app.urls import InvalidURL

COLUMNS = {"url", "title", "selection", "folder"}


def parse(data: bytes) -> Iterator[ImportedEntry | ImportProblem]:
    for where, row in records(decode_stream(data), required="url"):
        yield row if isinstance(row, ImportProblem) else _entry(where, row)


def _entry(where: str, row: dict[str, str]) -> ImportedEntry | ImportProblem:
    try:
        url = check_url(row.get("url"))
    except InvalidURL as error:
        return ImportProblem(where, str(error))
    entry = ImportedEntry(url=url, where=where, title=plain(row.get("title"), TITLE_MAX))
    entry.note = note_text(row.get("selection"))
    if "timestamp" in row:
        raw = row.get("timestamp")
        saved_date(entry, raw, from_unix(raw))
    else:
        entry.warnings.append("the file has no save dates; it gets the time of the import")
    tags = _tags(entry, row.get("tags") or "")
    folder = plain(row.get("folder"), 200)
    match folder.lower():
        case "archive":
            entry.state, entry.progress = "done", 100
        case "starred":
            tags.insert(0, "starred")
        case "unread" | "":
            pass
        case _:
            tags.insert(0, folder)  # Instapaper's folders are what tags are in Dogear
    entry.tags = tag_list(tags)
    return entry


def _tags(entry: ImportedEntry, raw: str) -> list[str]:
    """Instapaper writes tags as a JSON array (of names, or of {"name": …})."""
    raw = raw.strip()
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list):
        entry.warnings.append("its tags aren't a list Dogear can read; they are left out")
        return []
    names = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("name", "")
        if isinstance(item, str | int | float):
            names.append(str(item))
    return names

"""Readwise Reader's CSV export: `Title,URL,ID,Document tags,Saved date,Reading
progress,Location,Seen,…`.

`Reading progress` is a fraction (0–1) and is kept; `Location` decides the state:
new, later and shortlist → up next (reading when started, done at 100 %; shortlist
also tags it `shortlist`); archive → done; feed → left out (feed items are what a
subscription delivered, not pages the reader saved).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from app.imports import ImportedEntry, ImportProblem
from app.imports.formats import (
    AUTHOR_MAX,
    TITLE_MAX,
    check_url,
    decode_stream,
    from_iso,
    plain,
    records,
    saved_date,
    tag_list,
)
from app.urls import InvalidURL

COLUMNS = {"title", "url", "document tags", "saved date", "reading progress", "location"}


def parse(data: bytes) -> Iterator[ImportedEntry | ImportProblem]:
    for where, row in records(decode_stream(data), required="url"):
        yield row if isinstance(row, ImportProblem) else _entry(where, row)


def _entry(where: str, row: dict[str, str]) -> ImportedEntry | ImportProblem:
    location = (row.get("location") or "").strip().lower()
    if location == "feed":
        return ImportProblem(where, "A feed item in Readwise Reader, not a page you saved.")
    try:
        url = check_url(row.get("url"))
    except InvalidURL as error:
        return ImportProblem(where, str(error))
    entry = ImportedEntry(url=url, where=where, title=plain(row.get("title"), TITLE_MAX))
    raw_date = row.get("saved date")
    saved_date(entry, raw_date, from_iso(raw_date))
    entry.author = plain(row.get("author"), AUTHOR_MAX)
    tags = _tags(row.get("document tags") or "")
    progress = _progress(entry, row.get("reading progress"))
    if location == "archive":
        entry.state, entry.progress = "done", 100
    else:
        if location == "shortlist":
            tags.insert(0, "shortlist")
        elif location not in ("new", "later", "inbox", ""):
            entry.warnings.append(f"the location “{location[:20]}” is unknown; it goes to Up next")
        entry.progress = progress
        entry.state = "done" if progress >= 100 else "reading" if progress > 0 else "saved"
    entry.tags = tag_list(tags)
    return entry


def _progress(entry: ImportedEntry, raw: str | None) -> int:
    text = (raw or "").strip().rstrip("%")
    if not text:
        return 0
    try:
        value = float(text)
    except ValueError:
        entry.warnings.append(f"the reading progress “{text[:20]}” isn't a number; it is 0 %")
        return 0
    if value <= 1:
        value *= 100  # a fraction, as Reader writes it
    return max(0, min(100, round(value)))


def _tags(raw: str) -> list[str]:
    """Reader writes tags as a list: `['a', 'b']`, `["a", "b"]` or plain `a, b`."""
    raw = raw.strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, list):
            return [str(item) for item in value if isinstance(item, str | int | float)]
        raw = raw.strip("[]")
    cells = next(csv.reader([raw], quotechar="'", skipinitialspace=True), [])
    return [cell.strip().strip('"') for cell in cells]

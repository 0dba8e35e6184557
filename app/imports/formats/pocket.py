"""Pocket's exports: the .zip of `part_000000.csv`, `part_000001.csv`, … (Pocket's last
export format), one of those CSV files alone, and the older HTML export.

CSV columns: `title,url,time_added,tags,status` (some exports add `cursor`);
`time_added` is Unix seconds, `tags` are separated by `|`, `status` is `unread` or
`archive`. The HTML export has an `<h1>Unread</h1>` list and an `<h1>Read
Archive</h1>` list of `<a href time_added tags>` links (tags separated by commas).

Unread → up next; archive → done (Pocket's archive is where read articles went).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import TextIO

from app.imports import ImportedEntry, ImportProblem, UnreadableFile
from app.imports.formats import (
    TITLE_MAX,
    check_url,
    decode_stream,
    from_unix,
    open_zip,
    plain,
    read_member,
    records,
    saved_date,
    tag_list,
    text_pieces,
)
from app.urls import InvalidURL

PART = re.compile(r"(^|/)part_\d+\.csv$", re.IGNORECASE)
COLUMNS = {"title", "url", "time_added", "tags", "status"}

Row = ImportedEntry | ImportProblem


def parts_in(names: list[str]) -> list[str]:
    """The zip's CSV parts, in order (part_000000.csv first)."""
    return sorted((name for name in names if PART.search(name)), key=lambda n: n.lower())


def parse_zip(data: bytes) -> Iterator[Row]:
    archive = open_zip(data)
    parts = parts_in(archive.namelist())
    if not parts:
        raise UnreadableFile("This .zip has no part_000000.csv: it isn't a Pocket export.")
    for name in parts:
        member = decode_stream(read_member(archive, name))
        yield from _parse_csv_text(member, name.rsplit("/", 1)[-1])


def parse_csv(data: bytes) -> Iterator[Row]:
    yield from _parse_csv_text(decode_stream(data), "")


def _parse_csv_text(text: TextIO, where: str) -> Iterator[Row]:
    for at, row in records(text, where, required="url"):
        yield row if isinstance(row, ImportProblem) else _entry(at, row)


def _entry(where: str, row: dict[str, str]) -> Row:
    try:
        url = check_url(row.get("url"))
    except InvalidURL as error:
        return ImportProblem(where, str(error))
    entry = ImportedEntry(url=url, where=where, title=plain(row.get("title"), TITLE_MAX))
    raw_date = row.get("time_added")
    saved_date(entry, raw_date, from_unix(raw_date))
    entry.tags = tag_list((row.get("tags") or "").split("|"))
    _set_status(entry, (row.get("status") or "").strip().lower())
    return entry


def _set_status(entry: ImportedEntry, status: str) -> None:
    if status in ("archive", "archived", "read"):
        entry.state, entry.progress = "done", 100
    elif status not in ("unread", ""):
        entry.warnings.append(f"the status “{status[:20]}” is unknown; it goes to Up next")


def parse_html(data: bytes) -> Iterator[Row]:
    parser = _PocketHTML()
    for piece in text_pieces(decode_stream(data)):  # rows leave as they are read
        parser.feed(piece)
        yield from parser.rows
        parser.rows.clear()
    parser.close()
    yield from parser.rows


class _PocketHTML(HTMLParser):
    """Reads `<h1>Unread</h1><ul><li><a …>title</a></li>…` and the Read Archive list."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[Row] = []
        self.section = "unread"
        self._heading: list[str] | None = None
        self._link: dict[str, str] | None = None
        self._title: list[str] = []
        self._where = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h1":
            self._heading = []
        elif tag == "a":
            self._link = {key.lower(): value or "" for key, value in attrs}
            self._title = []
            self._where = f"line {self.getpos()[0]}"

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)
        elif self._link is not None:
            self._title.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1" and self._heading is not None:
            heading = " ".join("".join(self._heading).split()).lower()
            self.section = "archive" if "archive" in heading else "unread"
            self._heading = None
        elif tag == "a" and self._link is not None:
            self.rows.append(self._entry(self._link, "".join(self._title)))
            self._link = None

    def _entry(self, link: dict[str, str], title: str) -> Row:
        try:
            url = check_url(link.get("href"))
        except InvalidURL as error:
            return ImportProblem(self._where, str(error))
        entry = ImportedEntry(url=url, where=self._where, title=plain(title, TITLE_MAX))
        raw_date = link.get("time_added")
        saved_date(entry, raw_date, from_unix(raw_date))
        entry.tags = tag_list((link.get("tags") or "").split(","))
        _set_status(entry, self.section)
        if entry.title == url:
            entry.title = ""  # Pocket repeats the address when it had no title
        return entry

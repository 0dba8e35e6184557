"""Netscape bookmark HTML, as Firefox, Chrome, Safari and linkding write it.

`<DT><A HREF ADD_DATE TAGS TOREAD>title</A>` with an optional `<DD>` description,
inside `<DL>` lists that folders (`<DT><H3>name</H3><DL>…</DL>`) nest.

- A bookmark is something the reader meant to read: up next, unless linkding marks
  it read (`TOREAD="0"`, which only linkding writes) → done. linkding's
  `linkding:archived` tag → archived (done underneath when it was read).
- Folders become tags (every folder on the way down), except the browsers' own
  roots (bookmarks bar, toolbar, menu, other and mobile bookmarks).
- `TAGS` (comma-separated) are kept; the description and linkding's notes → the note.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

from app.imports import ImportedEntry, ImportProblem
from app.imports.formats import (
    TITLE_MAX,
    check_url,
    decode_stream,
    from_unix,
    note_text,
    plain,
    saved_date,
    tag_list,
    text_pieces,
)
from app.urls import InvalidURL

ROOT_FOLDERS = {
    "bookmarks bar",
    "bookmarks toolbar",
    "bookmarks menu",
    "other bookmarks",
    "mobile bookmarks",
    "favorites bar",
    "favourites bar",
    "unsorted bookmarks",
    "bookmarks",
}
ROOT_MARKERS = ("personal_toolbar_folder", "unfiled_bookmarks_folder")
ARCHIVED = "linkding:archived"
_NOTES = re.compile(r"\[linkding-notes\](.*?)\[/linkding-notes\]", re.DOTALL)

Row = ImportedEntry | ImportProblem


def parse(data: bytes) -> Iterator[Row]:
    parser = _Bookmarks()
    for piece in text_pieces(decode_stream(data)):  # rows leave as they are read
        parser.feed(piece)
        yield from parser.rows
        parser.rows.clear()
    parser.close()
    parser.finish()
    yield from parser.rows


class _Bookmarks(HTMLParser):
    """A small state machine over the tags that matter: H3, DL, A and DD."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[Row] = []
        self.folders: list[str | None] = []  # one per open <DL>: its folder's tag
        self._folder: list[str] | None = None  # text of the <H3> being read
        self._folder_is_root = False
        self._pending: str | None = None  # the folder whose <DL> comes next
        self._link: dict[str, str] | None = None
        self._title: list[str] = []
        self._where = ""
        self._description: list[str] | None = None
        self._last: tuple[dict[str, str], str, str, list[str]] | None = None

    # --- the parser's callbacks ---------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("dt", "dl", "h3", "a") or (tag == "dd" and self._description is not None):
            self._close_description()
        if tag == "h3":
            names = {key.lower() for key, _ in attrs}
            self._folder_is_root = any(marker in names for marker in ROOT_MARKERS)
            self._folder = []
        elif tag == "dl":
            self.folders.append(self._pending)
            self._pending = None
        elif tag == "a":
            self._flush()
            self._link = {key.lower(): value or "" for key, value in attrs}
            self._title = []
            self._where = f"line {self.getpos()[0]}"
        elif tag == "dd" and self._last is not None:
            self._description = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3" and self._folder is not None:
            name = " ".join("".join(self._folder).split())
            root = self._folder_is_root or name.lower() in ROOT_FOLDERS
            self._pending = None if root else name
            self._folder = None
        elif tag == "a" and self._link is not None:
            self._last = (self._link, "".join(self._title), self._where, self._path())
            self._link = None
        elif tag == "dl":
            self._close_description()
            self._flush()
            if self.folders:
                self.folders.pop()

    def handle_data(self, data: str) -> None:
        if self._folder is not None:
            self._folder.append(data)
        elif self._link is not None:
            self._title.append(data)
        elif self._description is not None:
            self._description.append(data)

    def finish(self) -> None:
        self._close_description()
        self._flush()

    # --- building rows ------------------------------------------------------------------

    def _path(self) -> list[str]:
        return [name for name in self.folders if name]

    def _close_description(self) -> None:
        if self._description is not None:
            description = "".join(self._description)
            self._description = None
            self._flush(description)

    def _flush(self, description: str = "") -> None:
        """Turn the last link (with the description that followed it) into a row."""
        if self._last is None:
            return
        link, title, where, folders = self._last
        self._last = None
        self.rows.append(_entry(link, title, where, folders, description))


def _entry(
    link: dict[str, str], title: str, where: str, folders: list[str], description: str
) -> Row:
    try:
        url = check_url(link.get("href"))
    except InvalidURL as error:
        return ImportProblem(where, str(error))
    entry = ImportedEntry(url=url, where=where, title=plain(title, TITLE_MAX))
    if entry.title == url:
        entry.title = ""
    raw_date = link.get("add_date")
    saved_date(entry, raw_date, from_unix(raw_date))
    modified = from_unix(link.get("last_modified"))
    if modified and entry.added_at and modified >= entry.added_at:
        entry.touched_at = modified
    tags = [*folders, *(link.get("tags") or "").split(",")]
    archived = any(tag.strip().lower() == ARCHIVED for tag in tags)
    entry.tags = tag_list(tag for tag in tags if tag.strip().lower() != ARCHIVED)
    read = (link.get("toread") or "").strip() == "0"
    if archived:
        entry.state, entry.progress = "archived", 100 if read else 0
    elif read:
        entry.state, entry.progress = "done", 100
    notes = _NOTES.search(description)
    description = _NOTES.sub("", description)
    entry.note = "\n\n".join(
        part
        for part in (note_text(description), note_text(notes.group(1) if notes else ""))
        if part
    )
    return entry

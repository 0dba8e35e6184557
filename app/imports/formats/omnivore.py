"""Omnivore's export: a .zip of `metadata_0_to_49.json`, `metadata_50_to_99.json`, …
(arrays of saved items), with `content/<slug>.html` (the article as Omnivore kept
it) and `highlights/<slug>.md` (the reader's highlights) beside them.

Each item: `state` (SUCCEEDED, ARCHIVED, PROCESSING, FAILED, DELETED),
`readingProgress` (0–100), `labels`, `savedAt`, `updatedAt`, `publishedAt`, `author`,
`description`, `url`, `title`, `slug`.

ARCHIVED → done; otherwise the progress decides (0 up next, reading, 100 done);
DELETED items are left out. Labels → tags; highlights → the note; the article HTML
becomes the post's content (sanitized) so it needn't be fetched again.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from app.imports import ImportedEntry, ImportProblem, UnreadableFile
from app.imports.formats import (
    AUTHOR_MAX,
    CONTENT_MAX,
    NOTE_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    check_url,
    day_from_iso,
    decode,
    from_iso,
    json_events,
    json_items,
    json_source,
    member_source,
    note_text,
    open_zip,
    plain,
    read_member,
    saved_date,
    tag_list,
)
from app.urls import InvalidURL

METADATA = re.compile(r"(^|/)metadata_(\d+)(_to_\d+)?\.json$", re.IGNORECASE)

Row = ImportedEntry | ImportProblem


def metadata_in(names: list[str]) -> list[str]:
    """The zip's metadata files in the order of the items they hold."""
    found = [(int(m.group(2)), name) for name in names if (m := METADATA.search(name))]
    return [name for _, name in sorted(found)]


def parse(data: bytes) -> Iterator[Row]:
    archive = open_zip(data)
    names = archive.namelist()
    members = metadata_in(names)
    if not members:
        raise UnreadableFile("This .zip has no metadata_*.json: it isn't an Omnivore export.")
    prefix = members[0].rsplit("/", 1)[0] + "/" if "/" in members[0] else ""
    available = set(names)
    for name in members:
        source = member_source(archive, name)
        invalid = f"{name} in the .zip isn't valid JSON."
        if not _is_list(source, invalid):
            raise UnreadableFile(f"{name} in the .zip isn't a list of saved items.")
        short = name.rsplit("/", 1)[-1]
        for number, item in enumerate(json_items(source, "item", invalid), start=1):
            where = f"{short} item {number}"
            if not isinstance(item, dict):
                yield ImportProblem(where, "The item isn't an object.")
                continue
            yield _entry(item, where, archive, prefix, available)


def parse_metadata(data: bytes) -> Iterator[Row]:
    """One metadata_*.json on its own (no article text or highlights), read as a
    stream, an item at a time."""
    source, invalid = json_source(data), "The file isn't valid JSON."
    if not _is_list(source, invalid):
        return
    for number, item in enumerate(json_items(source, "item", invalid), start=1):
        if isinstance(item, dict):
            yield _entry(item, f"item {number}", None, "", set())
        else:
            yield ImportProblem(f"item {number}", "The item isn't an object.")


def _is_list(source: Callable[[], BinaryIO], invalid: str) -> bool:
    """Whether the document is an array, by its first event; one that isn't is read
    through all the same (invalid JSON anywhere is UnreadableFile(`invalid`) first)."""
    events = json_events(source, invalid)
    if next(events, ("", None, None))[1] == "start_array":
        return True
    for _ in events:
        pass
    return False


def _entry(
    item: dict[str, Any],
    where: str,
    archive: zipfile.ZipFile | None,
    prefix: str,
    available: set[str],
) -> Row:
    state = str(item.get("state") or "").upper()
    if state == "DELETED":
        return ImportProblem(where, "Deleted in Omnivore.")
    try:
        url = check_url(item.get("url") or item.get("originalArticleUrl"))
    except InvalidURL as error:
        return ImportProblem(where, str(error))
    title = plain(item.get("title"), TITLE_MAX)
    entry = ImportedEntry(url=url, where=where, title=title, post_title=title)
    raw_date = item.get("savedAt")
    saved_date(entry, raw_date, from_iso(raw_date))
    updated = from_iso(item.get("updatedAt"))
    if updated and (entry.added_at is None or updated >= entry.added_at):
        entry.touched_at = updated
    entry.author = plain(item.get("author"), AUTHOR_MAX)
    entry.summary = plain(item.get("description"), SUMMARY_MAX)
    entry.published_on = day_from_iso(item.get("publishedAt"))
    entry.tags = tag_list(_labels(item.get("labels")))
    progress = _progress(item.get("readingProgress", item.get("readingProgressPercent")))
    if state == "ARCHIVED":
        entry.state, entry.progress = "done", 100
    else:
        entry.progress = progress
        entry.state = "done" if progress >= 100 else "reading" if progress > 0 else "saved"
    if entry.state == "done" and entry.touched_at:
        entry.finished_at = entry.touched_at
    slug = str(item.get("slug") or "")
    if archive is not None and slug and "/" not in slug:
        highlights = f"{prefix}highlights/{slug}.md"
        if highlights in available:
            try:
                entry.highlights = note_text(
                    decode(read_member(archive, highlights, NOTE_MAX * 4))
                )
            except UnreadableFile:
                entry.warnings.append("its highlights can't be read; they are left out")
        content = f"{prefix}content/{slug}.html"
        if content in available:
            entry.content = _content_reader(archive, content)
    return entry


def _content_reader(archive: zipfile.ZipFile, name: str) -> Callable[[], str | None]:
    """Read the article only when the entry is committed (and forget it after)."""

    def read() -> str | None:
        try:
            return decode(read_member(archive, name, CONTENT_MAX))
        except UnreadableFile:
            return None

    return read


def _labels(value: object) -> list[str]:
    if isinstance(value, str):
        return value.split(",")
    if not isinstance(value, list):
        return []
    names = []
    for label in value:
        if isinstance(label, dict):
            label = label.get("name", "")
        if isinstance(label, str):
            names.append(label)
    return names


def _progress(value: object) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    if number != number:  # NaN
        return 0
    return max(0, min(100, round(number)))

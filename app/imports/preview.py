"""Reading an uploaded file into a preview: what importing it would do. Nothing here
writes.

`read_file` recognises the file, parses it whole, collapses duplicate addresses and
keeps the rows it could not read (with where and why); `preview` compares the result
with the reader's list and counts what would be new, already there, left out or
warned about. The import job (commit.py) reads the stored file again with the same
`read_file` and `drop_unknown_catalog_posts`.

`CHUNK_SIZE` and `chunks` live here, at the bottom of the package, because the
preview, the job and the undo all batch by them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.imports import ImportedEntry, ImportProblem, UnreadableFile
from app.imports.detect import Format, detect
from app.models import Entry, Post, User

CHUNK_SIZE = 500  # entries per write transaction: readers' writes wait at most one chunk
SAMPLE = 5  # rows of each kind the preview lists
PROBLEMS_KEPT = 200
STATE_RANK = {"saved": 0, "reading": 1, "archived": 2, "done": 3}
STATE_LABELS = {"saved": "Up next", "reading": "Reading", "done": "Done", "archived": "Archived"}


class FileTooLarge(UnreadableFile):
    """Larger than IMPORT_MAX_BYTES."""


# --- reading a file ----------------------------------------------------------------------


@dataclass
class ParsedFile:
    format: Format
    entries: list[ImportedEntry]  # one per address, in the file's order
    history: list[ImportedEntry]  # Dogear's own: reading history of posts not listed
    problems: list[ImportProblem] = field(default_factory=list)  # the first few hundred
    problem_count: int = 0
    duplicates: int = 0


def read_file(data: bytes, fmt: Format | None = None) -> ParsedFile:
    """Parse the whole file (recognising it unless `fmt` says what it is): entries
    with duplicate addresses collapsed into one, and the rows left out.

    UnreadableFile when the file can't be read at all or has more than
    IMPORT_MAX_ENTRIES rows."""
    config = current_app.config
    max_bytes, max_entries = config["IMPORT_MAX_BYTES"], config["IMPORT_MAX_ENTRIES"]
    if len(data) > max_bytes:
        raise FileTooLarge(
            f"The file is {_megabytes(len(data))}; Dogear imports files up to "
            f"{_megabytes(max_bytes)}. Split it, or export less at once."
        )
    fmt = fmt or detect(data)
    by_identity: dict[str, ImportedEntry] = {}
    shared: dict[str, str] = {}
    parsed = ParsedFile(format=fmt, entries=[], history=[])
    for rows, row in enumerate(fmt.parse(data), start=1):
        if rows > max_entries:
            raise UnreadableFile(
                f"The file has more than {max_entries:,} entries; Dogear imports at most "
                f"{max_entries:,} at once. Split it and import the parts one after another."
            )
        if isinstance(row, ImportProblem):
            parsed.problem_count += 1
            if len(parsed.problems) < PROBLEMS_KEPT:
                parsed.problems.append(row)
        elif row.history_only:
            parsed.history.append(row)
        elif (kept := by_identity.get(row.identity)) is not None:
            _merge(kept, row)
            parsed.duplicates += 1
        else:
            by_identity[row.identity] = _share(row, shared)
    parsed.entries = list(by_identity.values())
    return parsed


def _share(entry: ImportedEntry, shared: dict[str, str]) -> ImportedEntry:
    """The entry with the words many entries repeat (its state, author, site and
    tags) kept once for the whole file, not once per entry: every entry of a file is
    held at once."""
    entry.state = shared.setdefault(entry.state, entry.state)
    entry.author = shared.setdefault(entry.author, entry.author)
    entry.site_name = shared.setdefault(entry.site_name, entry.site_name)
    if entry.tags:
        entry.tags = [shared.setdefault(tag, tag) for tag in entry.tags]
    return entry


def _merge(kept: ImportedEntry, other: ImportedEntry) -> None:
    """The same page twice in one file (or in two parts of a Pocket export): one entry
    that is as far along as either, saved at the earlier date, with both's tags and
    words."""
    if (STATE_RANK[other.state], other.progress) > (STATE_RANK[kept.state], kept.progress):
        kept.state, kept.progress = other.state, other.progress
        kept.finished_at = other.finished_at or kept.finished_at
        kept.started_at = kept.started_at or other.started_at
    if other.added_at and (kept.added_at is None or other.added_at < kept.added_at):
        kept.added_at = other.added_at
    kept.tags = list(dict.fromkeys([*kept.tags, *other.tags]))
    kept.title = kept.title or other.title
    for name in ("note", "highlights"):
        mine, theirs = getattr(kept, name), getattr(other, name)
        if theirs and theirs not in mine:
            setattr(kept, name, f"{mine}\n\n{theirs}" if mine else theirs)
    kept.content = kept.content or other.content
    kept.activity.extend(other.activity)
    if kept.added_at is not None:
        kept.warnings = [w for w in kept.warnings if "save date" not in w]


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size < 10_000_000 else f"{size // 1_000_000} MB"


# --- the preview ---------------------------------------------------------------------------


@dataclass
class Preview:
    """What importing the file would do, as the preview page and `dogear import
    --dry-run` show it (and as stored with the upload, in JSON)."""

    format: str
    label: str
    filename: str
    size: int
    new: int
    existing: int
    problems: int
    duplicates: int
    warnings: int
    history: int
    tags: int
    with_content: int
    states: dict[str, int]  # the new entries per state
    sample_new: list[dict[str, Any]]
    sample_existing: list[dict[str, Any]]
    sample_problems: list[dict[str, str]]
    sample_warnings: list[dict[str, str]]

    @property
    def entries(self) -> int:
        return self.new + self.existing

    @property
    def size_label(self) -> str:
        if self.size < 1_000_000:
            return f"{max(1, round(self.size / 1000))} KB"
        return _megabytes(self.size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Preview:
        return cls(**value)


def preview(user: User, data: bytes, filename: str = "") -> Preview:
    """Read the file and compare it with the reader's list; writes nothing."""
    parsed = read_file(data)
    drop_unknown_catalog_posts(parsed)
    existing = _existing_entries(user.id, parsed.entries)
    new = [e for e in parsed.entries if e.identity not in existing]
    old = [e for e in parsed.entries if e.identity in existing]
    states = {state: 0 for state in STATE_LABELS}
    for entry in new:
        states[entry.state] += 1
    warned = [e for e in parsed.entries if e.warnings]
    return Preview(
        format=parsed.format.name,
        label=parsed.format.label,
        filename=filename[:255],
        size=len(data),
        new=len(new),
        existing=len(old),
        problems=parsed.problem_count,
        duplicates=parsed.duplicates,
        warnings=len(warned),
        history=sum(len(e.activity) for e in parsed.history),
        tags=len({tag for e in parsed.entries for tag in e.tags}),
        with_content=sum(1 for e in parsed.entries if e.content is not None),
        states=states,
        sample_new=[_describe(e) for e in new[:SAMPLE]],
        sample_existing=[
            {**_describe(e), "current": STATE_LABELS[existing[e.identity]]} for e in old[:SAMPLE]
        ],
        sample_problems=[{"where": p.where, "reason": p.reason} for p in parsed.problems[:SAMPLE]],
        sample_warnings=[
            {"where": e.where, "title": e.title or e.url or "", "reason": "; ".join(e.warnings)}
            for e in warned[:SAMPLE]
        ],
    )


def _describe(entry: ImportedEntry) -> dict[str, Any]:
    return {
        "where": entry.where,
        "title": entry.title or entry.post_title,
        "url": unquote(entry.url or ""),  # shown, never linked: readable, not encoded
        "state": STATE_LABELS[entry.state],
        "progress": entry.progress,
        "tags": entry.tags[:8],
        "added": entry.added_at.date().isoformat() if entry.added_at else "",
    }


def chunks(items: list[Any], size: int = CHUNK_SIZE) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_entries(user_id: int, entries: Iterable[ImportedEntry]) -> dict[str, str]:
    """{identity: state} of the reader's entries for these pages."""
    found: dict[str, str] = {}
    urls = [e.url for e in entries if e.url]
    keys = [e.post_key for e in entries if e.post_key and not e.url]
    mine = select(Entry.state).join(Post, Entry.post_id == Post.id).where(Entry.user_id == user_id)
    for chunk in chunks(urls):
        rows = db.session.execute(mine.add_columns(Post.url).where(Post.url.in_(chunk)))
        found.update({url: state for state, url in rows})
    for chunk in chunks(keys):
        rows = db.session.execute(
            mine.add_columns(Post.dedupe_key).where(Post.dedupe_key.in_(chunk))
        )
        found.update({f"key:{key}": state for state, key in rows})
    return found


def drop_unknown_catalog_posts(parsed: ParsedFile) -> None:
    """Dogear's own export names a catalog post without an address by its catalog
    key; one this Dogear's catalog lacks can't be imported."""
    keys = [e.post_key for e in [*parsed.entries, *parsed.history] if e.post_key and not e.url]
    if not keys:
        return
    known = _catalog_keys(keys)
    for group in ("entries", "history"):
        kept = []
        for entry in getattr(parsed, group):
            if entry.url or entry.post_key in known:
                kept.append(entry)
                continue
            parsed.problem_count += 1
            if len(parsed.problems) < PROBLEMS_KEPT:
                reason = "A catalog post (without an address) this Dogear lacks."
                parsed.problems.append(ImportProblem(entry.where, reason))
        setattr(parsed, group, kept)


def _catalog_keys(keys: list[str]) -> set[str]:
    known: set[str] = set()
    for chunk in chunks(keys):
        known.update(
            db.session.scalars(
                select(Post.dedupe_key).where(Post.dedupe_key.in_(chunk), Post.owner_id.is_(None))
            )
        )
    return known

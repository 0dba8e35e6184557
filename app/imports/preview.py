"""Reading an uploaded file into a preview: what importing it would do. Nothing here
writes.

`read_file` recognises the file, parses it as a stream, collapses duplicate addresses
and keeps the rows it could not read (with where and why); the entries go to an
`EntryStore` (a temporary file), not memory, so a 50 MB file is read in bounded
memory. `preview` compares them, a chunk at a time, with the reader's list and counts
what would be new, already there, left out or warned about, keeping only the few
rows it shows. The import job (commit.py) reads the stored file again with the same
`read_file` and `drop_unknown_catalog_posts`.

`CHUNK_SIZE` and `chunks` live here, at the bottom of the package, because the
preview, the job and the undo all batch by them.
"""

from __future__ import annotations

import pickle
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.imports import ImportedEntry, ImportProblem, UnreadableFile
from app.imports.detect import Format, detect
from app.models import Entry, Post

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

CHUNK_SIZE = 500  # entries per write transaction: readers' writes wait at most one chunk
SAMPLE = 5  # rows of each kind the preview lists
PROBLEMS_KEPT = 200
STATE_RANK = {"saved": 0, "reading": 1, "archived": 2, "done": 3}
STATE_LABELS = {"saved": "Up next", "reading": "Reading", "done": "Done", "archived": "Archived"}


class FileTooLarge(UnreadableFile):
    """Larger than IMPORT_MAX_BYTES."""


# --- reading a file ----------------------------------------------------------------------


# An entry is kept as the list of its fields (quicker both ways than the dataclass),
# but for its article reader, which stays in memory.
_NAMES = [f.name for f in fields(ImportedEntry)]
_FIELDS_OF = attrgetter(*_NAMES)
_CONTENT = _NAMES.index("content")


class EntryStore:
    """Entries kept in a temporary file (pickled), one after another, rather than in
    memory: a file's entries, however many, are read back one or a chunk at a time,
    in the order they were added, or by their index. A small store stays in memory;
    past SPOOL bytes it moves to disk. The article reader of an entry (`content`, a
    function) stays in memory (only Omnivore's .zip has them)."""

    SPOOL = 2_000_000

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=self.SPOOL)  # noqa: SIM115
        self._offsets = array("q")
        self._lengths = array("q")
        self._end = 0
        self._content: dict[int, Callable[[], str | None]] = {}

    def __len__(self) -> int:
        return len(self._offsets)

    def append(self, entry: ImportedEntry) -> int:
        self._offsets.append(0)
        self._lengths.append(0)
        index = len(self._offsets) - 1
        self.replace(index, entry)
        return index

    def replace(self, index: int, entry: ImportedEntry) -> None:
        """Keep `entry` as the store's `index`th (written afresh at the end)."""
        values = _FIELDS_OF(entry)
        kept = [*values[:_CONTENT], *values[_CONTENT + 1 :]]
        body = pickle.dumps(kept, pickle.HIGHEST_PROTOCOL)
        if entry.content is not None:
            self._content[index] = entry.content
        self._file.seek(self._end)
        self._file.write(body)
        self._offsets[index], self._lengths[index] = self._end, len(body)
        self._end += len(body)

    def __getitem__(self, index: int) -> ImportedEntry:
        self._file.seek(self._offsets[index])
        values = pickle.loads(self._file.read(self._lengths[index]))  # noqa: S301 - our own
        values.insert(_CONTENT, self._content.get(index))
        return ImportedEntry(*values)

    def __iter__(self) -> Iterator[ImportedEntry]:
        for index in range(len(self)):
            yield self[index]

    def chunks(self, size: int = 0) -> Iterator[list[ImportedEntry]]:
        """The entries in order, `size` (CHUNK_SIZE) at a time."""
        size = size or CHUNK_SIZE
        for start in range(0, len(self), size):
            yield [self[i] for i in range(start, min(start + size, len(self)))]

    def keep(self, indices: Iterable[int]) -> None:
        """Keep only the entries at `indices` (in that order), renumbered from 0."""
        offsets, lengths, content = array("q"), array("q"), {}
        for new, old in enumerate(indices):
            offsets.append(self._offsets[old])
            lengths.append(self._lengths[old])
            if old in self._content:
                content[new] = self._content[old]
        self._offsets, self._lengths, self._content = offsets, lengths, content

    def close(self) -> None:
        self._file.close()


@dataclass
class ParsedFile:
    format: Format
    entries: EntryStore  # one per address, in the file's order
    history: EntryStore  # Dogear's own: reading history of posts not listed
    problems: list[ImportProblem] = field(default_factory=list)  # the first few hundred
    problem_count: int = 0
    duplicates: int = 0
    # The entries (and history) named by a catalog key alone: {index: key}.
    keyed: dict[str, dict[int, str]] = field(
        default_factory=lambda: {"entries": {}, "history": {}}
    )

    def close(self) -> None:
        self.entries.close()
        self.history.close()

    def __enter__(self) -> ParsedFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_file(data: bytes, fmt: Format | None = None) -> ParsedFile:
    """Parse the whole file as a stream (recognising it unless `fmt` says what it
    is): entries with duplicate addresses collapsed into one, kept in a temporary
    file (close the result, or use it as a context manager), and the rows left out.

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
    by_identity: dict[str, int] = {}  # identity: index in parsed.entries
    parsed = ParsedFile(format=fmt, entries=EntryStore(), history=EntryStore())
    try:
        for rows, row in enumerate(fmt.parse(data), start=1):
            if rows > max_entries:
                raise UnreadableFile(
                    f"The file has more than {max_entries:,} entries; Dogear imports at "
                    f"most {max_entries:,} at once. Split it and import the parts one "
                    "after another."
                )
            if isinstance(row, ImportProblem):
                parsed.problem_count += 1
                if len(parsed.problems) < PROBLEMS_KEPT:
                    parsed.problems.append(row)
            elif row.history_only:
                index = parsed.history.append(row)
                if row.post_key and not row.url:
                    parsed.keyed["history"][index] = row.post_key
            elif (index := by_identity.get(row.identity)) is not None:
                kept = parsed.entries[index]
                _merge(kept, row)
                parsed.entries.replace(index, kept)
                parsed.duplicates += 1
            else:
                index = by_identity[row.identity] = parsed.entries.append(row)
                if row.post_key and not row.url:
                    parsed.keyed["entries"][index] = row.post_key
    except BaseException:
        parsed.close()
        raise
    return parsed


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


def preview(user: Reader, data: bytes, filename: str = "") -> Preview:
    """Read the file and compare it with the reader's list; writes nothing. The
    entries are compared a chunk at a time; only the rows shown are kept."""
    with read_file(data) as parsed:
        drop_unknown_catalog_posts(parsed)
        new, old = 0, 0
        states = {state: 0 for state in STATE_LABELS}
        warned, with_content = 0, 0
        tags: set[str] = set()
        sample_new: list[dict[str, Any]] = []
        sample_existing: list[dict[str, Any]] = []
        sample_warnings: list[dict[str, str]] = []
        for chunk in parsed.entries.chunks():
            existing = _existing_entries(user.id, chunk)
            for entry in chunk:
                current = existing.get(entry.identity)
                if current is None:
                    new += 1
                    states[entry.state] += 1
                    if len(sample_new) < SAMPLE:
                        sample_new.append(_describe(entry))
                else:
                    old += 1
                    if len(sample_existing) < SAMPLE:
                        sample_existing.append(
                            {**_describe(entry), "current": STATE_LABELS[current]}
                        )
                if entry.warnings:
                    warned += 1
                    if len(sample_warnings) < SAMPLE:
                        sample_warnings.append(
                            {
                                "where": entry.where,
                                "title": entry.title or entry.url or "",
                                "reason": "; ".join(entry.warnings),
                            }
                        )
                tags.update(entry.tags)
                with_content += entry.content is not None
        history = sum(len(e.activity) for e in parsed.history)
        return Preview(
            format=parsed.format.name,
            label=parsed.format.label,
            filename=filename[:255],
            size=len(data),
            new=new,
            existing=old,
            problems=parsed.problem_count,
            duplicates=parsed.duplicates,
            warnings=warned,
            history=history,
            tags=len(tags),
            with_content=with_content,
            states=states,
            sample_new=sample_new,
            sample_existing=sample_existing,
            sample_problems=[
                {"where": p.where, "reason": p.reason} for p in parsed.problems[:SAMPLE]
            ],
            sample_warnings=sample_warnings,
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
    keys = [*parsed.keyed["entries"].values(), *parsed.keyed["history"].values()]
    if not keys:
        return
    known = _catalog_keys(keys)
    for group in ("entries", "history"):
        store: EntryStore = getattr(parsed, group)
        keyed = parsed.keyed[group]
        unknown = {index for index, key in keyed.items() if key not in known}
        if not unknown:
            continue
        for index in sorted(unknown):
            parsed.problem_count += 1
            if len(parsed.problems) < PROBLEMS_KEPT:
                reason = "A catalog post (without an address) this Dogear lacks."
                parsed.problems.append(ImportProblem(store[index].where, reason))
        store.keep(i for i in range(len(store)) if i not in unknown)
        parsed.keyed[group] = {}


def _catalog_keys(keys: list[str]) -> set[str]:
    known: set[str] = set()
    for chunk in chunks(keys):
        known.update(
            db.session.scalars(
                select(Post.dedupe_key).where(Post.dedupe_key.in_(chunk), Post.owner_id.is_(None))
            )
        )
    return known

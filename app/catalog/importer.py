"""Import listing files into the shared catalog, a few hundred posts per transaction.

What is all-or-nothing and what is not:

- A file that can't be read at all (missing, not UTF-8) stops the import before
  anything is written: `import_files` reads every file through once first.
- Entries that can't be read are reported (file, line, why) and skipped.
- The posts are written LISTING_IMPORT_CHUNK (default 250) per short write
  transaction, so the write lock is never held for long: readers' writes and other
  imports wait milliseconds, well inside SQLite's busy timeout. If an import stops
  part-way (a crash, a full disk), the chunks written stay; running it again adds the
  rest, because a post whose dedupe key the catalog has counts as a duplicate (the
  key is unique in the database and the insert skips conflicts, so two imports at
  once never write the same post twice either).
"""

from __future__ import annotations

import hashlib
import logging
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any, BinaryIO, TypeVar

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.catalog.listing import (
    ListingEntry,
    ListingError,
    check_encoding,
    iter_listing,
    read_listing,
    split_lines,
)
from app.catalog.topics import Vocabulary, assign_topics, load_vocabulary, seed_vocabulary
from app.db import write_transaction
from app.extensions import db
from app.models import Post, Setting, Source, SourceKind, Topic, post_topics, utcnow

log = logging.getLogger(__name__)

WORDS_PER_MINUTE = 230
DEMO_SOURCE_NAME = "Dogear demo catalog"
DEMO_REMOVED_KEY = "catalog.demo_removed"  # a Setting: an admin removed it, don't reload it
CHUNK_SIZE = 250  # posts per write transaction (the LISTING_IMPORT_CHUNK setting)
ERRORS_KEPT = 1_000  # errors a report lists; the rest are only counted

T = TypeVar("T")
Keyed = tuple[str, ListingEntry, list[str]]  # (dedupe key, entry, topic slugs)


@dataclass
class ImportReport:
    created: int = 0
    duplicates: int = 0
    errors: list[ListingError] = field(default_factory=list)  # the first ERRORS_KEPT
    error_count: int = 0  # all of them

    def to_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "created": self.created,
            "duplicates": self.duplicates,
            "errors": [
                {"file": error.file, "line": error.line, "reason": error.reason}
                for error in self.errors
            ],
        }
        if self.error_count > len(self.errors):
            report["errors_not_listed"] = self.error_count - len(self.errors)
        return report

    def add_error(self, error: ListingError) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(error)


def dedupe_key(title: str, published_on: date | None) -> str:
    """Identify a post without a URL: its title, ignoring case, width and spacing, + date."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", title).casefold())
    day = published_on.isoformat() if published_on else ""
    return hashlib.sha256(f"{' '.join(folded.split())}|{day}".encode()).hexdigest()


def reading_minutes_for(minutes: int | None, word_count: int | None) -> int:
    """The source's reading time when it gives one, else estimated from the word count.

    A source's "0 min" counts as not given: no post takes no time to read.
    """
    if minutes:
        return minutes
    if word_count:
        return max(1, math.ceil(word_count / WORDS_PER_MINUTE))
    return 0


def ensure_topics() -> dict[str, Topic]:
    """Every topic the tagger can assign, slug -> Topic; the first call copies the
    built-in vocabulary into the database (app/catalog/topics.py). Call inside a
    transaction."""
    seed_vocabulary()
    return {topic.slug: topic for topic in db.session.scalars(select(Topic))}


def import_listings(
    files: list[tuple[str, str]], *, source_name: str = "Listing import"
) -> ImportReport:
    """Parse `(filename, text)` files and add their new posts to the catalog.

    Unreadable entries are reported and skipped; posts already in the catalog (or earlier
    in this import) count as duplicates. Written in chunks (see the module docstring).
    """
    items = (
        item
        for filename, text in files
        for item in iter_listing(split_lines([text]), filename=filename)
    )
    return import_entries(items, source_name=source_name)


def import_files(
    files: list[tuple[str, BinaryIO]], *, source_name: str = "Listing import"
) -> ImportReport:
    """Import binary listing files (seekable streams), reading them block by block.

    Every file is first read through to check it is UTF-8 (UndecodableListing names
    the file, line and byte offset, and nothing is written); then each is read again
    and written in chunks. Time is linear in the files' size; memory is bounded by
    one chunk of entries and a few capped paragraphs, whatever the size."""
    for filename, stream in files:
        check_encoding(stream, filename=filename)
        stream.seek(0)
    items = (
        item for filename, stream in files for item in read_listing(stream, filename=filename)
    )
    return import_entries(items, source_name=source_name)


def import_entries(
    items: Iterable[ListingEntry | ListingError], *, source_name: str = "Listing import"
) -> ImportReport:
    """Write parsed entries to the catalog in short transactions; errors are reported.

    Dedupe keys and topics are worked out before each chunk's write lock is taken."""
    size = int(current_app.config.get("LISTING_IMPORT_CHUNK", CHUNK_SIZE))
    vocabulary = load_vocabulary()
    report = ImportReport()
    for chunk in _chunks(items, size, report):
        _write_chunk(source_name, _prepare(chunk, vocabulary), report)
    _retrying(lambda: _finish_source(source_name, report))
    return report


def _chunks(
    items: Iterable[ListingEntry | ListingError], size: int, report: ImportReport
) -> Iterator[list[ListingEntry]]:
    chunk: list[ListingEntry] = []
    for item in items:
        if isinstance(item, ListingError):
            report.add_error(item)
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prepare(chunk: list[ListingEntry], vocabulary: Vocabulary) -> list[Keyed]:
    return [
        (
            dedupe_key(entry.title, entry.published_on),
            entry,
            assign_topics(entry.title, entry.summary, vocabulary=vocabulary),
        )
        for entry in chunk
    ]


def _write_chunk(source_name: str, keyed: list[Keyed], report: ImportReport) -> None:
    """One write transaction: the chunk's new posts and their topics. A post whose key
    the catalog has (from an earlier run, or another import right now) is skipped by
    the database and counted as a duplicate."""

    def write() -> int:
        with write_transaction():
            source = _listing_source(source_name)
            topics = ensure_topics()
            rows: list[dict[str, Any]] = []
            slugs_by_key: dict[str, list[str]] = {}
            for key, entry, slugs in keyed:
                if key in slugs_by_key:
                    continue
                slugs_by_key[key] = slugs
                rows.append(
                    {
                        "title": entry.title,
                        "summary": entry.summary,
                        "url": None,
                        "author": entry.author,
                        "published_on": entry.published_on,
                        "reading_minutes": reading_minutes_for(
                            entry.reading_minutes, entry.word_count
                        ),
                        "word_count": entry.word_count,
                        "dedupe_key": key,
                        "source_id": source.id,
                        "owner_id": None,
                    }
                )
            created = db.session.execute(_insert_new_posts(), rows).all() if rows else []
            links = [
                {"post_id": post_id, "topic_id": topics[slug].id}
                for post_id, key in created
                for slug in slugs_by_key[key]
                if slug in topics
            ]
            if links:
                db.session.execute(post_topics.insert(), links)
            return len(created)

    created = _retrying(write)
    report.created += created
    report.duplicates += len(keyed) - created


def _insert_new_posts() -> Any:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key."""
    module = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    table = Post.__table__
    return (
        module.insert(table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id, table.c.dedupe_key)
    )


def _finish_source(source_name: str, report: ImportReport) -> None:
    with write_transaction():
        source = _listing_source(source_name)
        source.last_refreshed_at = utcnow()
        source.status = "ok"
        source.last_error = _describe_errors(report)


def _retrying(write: Callable[[], T]) -> T:
    """Run a write once more if it lost a race for a unique row (on PostgreSQL, two
    imports creating the same source or seeding the topics at once): the second
    time it finds the other's row."""
    try:
        return write()
    except IntegrityError:
        log.info("A listing import met a conflicting row; writing again")
        return write()


def load_demo() -> ImportReport | None:
    """Fill an empty catalog with the demo posts when the DEMO setting is on; else None."""
    if not current_app.config.get("DEMO"):
        return None
    if db.session.scalar(select(Post.id).limit(1)) is not None:
        return None
    if db.session.get(Setting, DEMO_REMOVED_KEY) is not None:
        return None
    text = resources.files("app.catalog").joinpath("demo.txt").read_text(encoding="utf-8")
    return import_listings([("demo.txt", text)], source_name=DEMO_SOURCE_NAME)


def _listing_source(name: str) -> Source:
    source = db.session.scalar(select(Source).where(Source.name == name))
    if source is None:
        source = Source(name=name, kind=SourceKind.LISTING.value)
        db.session.add(source)
        db.session.flush()
    return source


def _describe_errors(report: ImportReport) -> str:
    """What the source remembers of the entries it could not read ("" when none)."""
    if not report.errors:
        return ""
    first = report.errors[0]
    noun = "entry" if report.error_count == 1 else "entries"
    return (
        f"{report.error_count} {noun} could not be read; "
        f"first: {first.file} line {first.line}: {first.reason}"
    )

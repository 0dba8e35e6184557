"""Import listing files into the shared catalog: all of an import lands, or none of it."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.catalog.listing import ListingEntry, ListingError, parse_listing
from app.catalog.topics import assign_topics, load_vocabulary, seed_vocabulary
from app.db import write_transaction
from app.extensions import db
from app.models import Post, Setting, Source, SourceKind, Topic, utcnow

WORDS_PER_MINUTE = 230
DEMO_SOURCE_NAME = "Dogear demo catalog"
DEMO_REMOVED_KEY = "catalog.demo_removed"  # a Setting: an admin removed it, don't reload it
_KEYS_PER_QUERY = 500  # keeps `IN (...)` well under every database's parameter limit


@dataclass
class ImportReport:
    created: int
    duplicates: int
    errors: list[ListingError]

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "duplicates": self.duplicates,
            "errors": [
                {"file": error.file, "line": error.line, "reason": error.reason}
                for error in self.errors
            ],
        }


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
    in this import) count as duplicates. The writes happen in one transaction, so a
    database failure leaves the catalog as it was.
    """
    entries: list[ListingEntry] = []
    errors: list[ListingError] = []
    for filename, text in files:
        parsed = parse_listing(text, filename=filename)
        entries.extend(parsed.entries)
        errors.extend(parsed.errors)
    # Everything that needs no write happens before the write lock is taken.
    vocabulary = load_vocabulary()
    keyed = [
        (
            dedupe_key(entry.title, entry.published_on),
            entry,
            assign_topics(entry.title, entry.summary, vocabulary=vocabulary),
        )
        for entry in entries
    ]

    duplicates = 0
    posts: list[Post] = []
    with write_transaction():
        source = _listing_source(source_name)
        topics = ensure_topics()
        seen = _existing_keys([key for key, _entry, _slugs in keyed])
        for key, entry, slugs in keyed:
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            posts.append(
                Post(
                    title=entry.title,
                    summary=entry.summary,
                    url=None,
                    author=entry.author,
                    published_on=entry.published_on,
                    reading_minutes=reading_minutes_for(entry.reading_minutes, entry.word_count),
                    word_count=entry.word_count,
                    content=None,
                    dedupe_key=key,
                    source=source,
                    owner_id=None,
                    topics=[topics[slug] for slug in slugs if slug in topics],
                )
            )
        db.session.add_all(posts)
        source.last_refreshed_at = utcnow()
        source.status = "ok"
        source.last_error = _describe_errors(errors)
    return ImportReport(created=len(posts), duplicates=duplicates, errors=errors)


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
    return source


def _existing_keys(keys: list[str]) -> set[str]:
    """The keys among `keys` that a post already has (one query per 500 keys)."""
    unique = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(unique), _KEYS_PER_QUERY):
        chunk = unique[start : start + _KEYS_PER_QUERY]
        found.update(db.session.scalars(select(Post.dedupe_key).where(Post.dedupe_key.in_(chunk))))
    return found


def _describe_errors(errors: list[ListingError]) -> str:
    """What the source remembers of the entries it could not read ("" when none)."""
    if not errors:
        return ""
    first = errors[0]
    noun = "entry" if len(errors) == 1 else "entries"
    return (
        f"{len(errors)} {noun} could not be read; "
        f"first: {first.file} line {first.line}: {first.reason}"
    )

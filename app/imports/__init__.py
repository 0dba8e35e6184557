"""Bringing a reading life in from elsewhere, and taking it out again.

Each format under `formats/` turns the bytes of one kind of file into a stream of the
same plain records: an `ImportedEntry` for every row it could read and an
`ImportProblem` for every row it could not (with where and why). `detect.py` tells
the formats apart from the file itself; `preview.py` reads the stream into a preview
whatever it came from; `commit.py` commits it chunk by chunk (with `posts.py` for the
posts its entries point at, and `undo.py` to take it all back if it fails);
`services.py` is what the views and the CLI call; `tasks.py` runs the commit as a
background job; `exports.py` writes a reader's list out as JSON, CSV or bookmark HTML.

Nothing in here imports the views, and the formats import nothing from Dogear but
`app.urls` (and, for Omnivore's article HTML, `app.articles`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(slots=True)
class Activity:
    """One progress change Dogear's own export carries (reading statistics)."""

    at: datetime
    progress_from: int
    progress_to: int


@dataclass(slots=True)
class ImportedEntry:
    """One saved page as a file describes it, already checked and cleaned.

    `url` is normalised; `title`, `note` and tags are plain text; `state` and
    `progress` are Dogear's (the format module maps its own words onto them). A date
    the file lacks is None (the commit uses the time of the import) with a warning.
    Slotted: small in memory and when an import keeps its entries in a temporary
    file (preview.EntryStore) rather than in memory.
    """

    url: str | None
    where: str  # "line 12", "row 3", "element 7": where the file has it
    title: str = ""
    state: str = "saved"  # saved, reading, done, archived
    progress: int = 0
    added_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    touched_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    note: str = ""
    highlights: str = ""  # kept in the note, under its own heading
    rating: int | None = None
    resume_position: int | None = None  # thousandths of the article (Dogear's own)
    position: int | None = None  # place in the queue (Dogear's own export)
    # About the article itself: used only for a post this import creates.
    author: str = ""
    summary: str = ""
    site_name: str = ""
    published_on: date | None = None
    post_title: str = ""
    # The article's HTML, read from the file only when the entry is committed (an
    # Omnivore export can hold far more text than we want in memory at once).
    content: Callable[[], str | None] | None = None
    # Dogear's own export: a catalog post without an address is found by its key.
    post_key: str | None = None
    activity: list[Activity] = field(default_factory=list)
    # Dogear's own export: reading history of a post no longer on the list (it counts
    # in the statistics). Such a record makes no entry.
    history_only: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def identity(self) -> str:
        """What makes two rows the same page (duplicates in a file collapse on it)."""
        return self.url or f"key:{self.post_key}"

    @property
    def full_note(self) -> str:
        """The note as it is stored: the reader's words, then any highlights."""
        if not self.highlights:
            return self.note
        highlights = f"Highlights\n\n{self.highlights}"
        return f"{self.note}\n\n{highlights}" if self.note else highlights


@dataclass(frozen=True)
class ImportProblem:
    """A row Dogear leaves out, where it is in the file and why, in plain words."""

    where: str
    reason: str


class UnreadableFile(ValueError):
    """A file Dogear can't import at all: an unknown kind, undecodable, too large."""


__all__ = ["Activity", "ImportProblem", "ImportedEntry", "UnreadableFile"]

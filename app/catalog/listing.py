"""Parse a blog index in the listing format into entries and per-entry errors.

The format (see PRODUCT.md) is, per post, separated by blank lines::

    <title line>

    <summary paragraph>

    <Month D, YYYY> · <N> min · <N> words · <author>

Real files are sloppier than that, so the parser is built around the one line that is
easy to recognise: the meta line. Every line whose middle-dot separated fields include a
date, a reading time or a word count is a meta line and closes an entry; the text since
the previous meta line is that entry's title (its first line) and summary (the rest,
joined with spaces). Text that never reaches a meta line is reported, not guessed at.

The parser streams: `read_listing` decodes a binary file block by block and keeps at
most a few paragraphs (each capped) between meta lines, so time grows linearly with
the file and memory stays bounded whatever the file holds. A line longer than
MAX_LINE_CHARS, or an entry longer than MAX_ENTRY_CHARS, is an error for its entry.
Bytes that aren't UTF-8 make the whole file unreadable (`UndecodableListing`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

MAX_TITLE_LENGTH = 500  # Post.title is String(500)
MAX_AUTHOR_LENGTH = 200  # Post.author is String(200)
# Beyond these a number is a typo, not an article (and would overflow an INTEGER column):
# the field is treated as missing.
MAX_MINUTES = 10_000
MAX_WORDS = 10_000_000
# Only used to untangle text between two meta lines when entries lost their meta line:
# a title is one line, and rarely this long.
_TITLE_LIKE_LENGTH = 200
# Sane caps for one line and one entry's text (title + summary): beyond them the
# entry is reported, and only the start of the text is kept for the message.
MAX_LINE_CHARS = 100_000
MAX_ENTRY_CHARS = 200_000
_BLOCK_BYTES = 1 << 16  # read and decode a file this much at a time
# Orphan paragraphs are reported once this many wait: a meta line can claim at most
# the last two, and telling a title from a summary looks two paragraphs ahead.
_PENDING_KEPT = 4

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}

# Control characters that are not whitespace, and invisible format characters (zero-width
# spaces, bidi overrides, soft hyphens, BOMs). Zero-width joiners stay: emoji need them.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u061c\u180e\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
# The middle dot, and the dots it gets mistyped as (bullet, bullet operator, dot operator).
_SEPARATOR = re.compile(r"(\s*[\u00b7\u2022\u2219\u22c5]\s*)")
_MINUTES = re.compile(r"(\d[\d,]*)\s*(?:min|mins|minute|minutes)\.?(?:\s+read)?", re.IGNORECASE)
_WORDS = re.compile(r"(\d[\d,. ]*?)\s*words?", re.IGNORECASE)
_ISO_DATE = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_MONTH_DAY_YEAR = re.compile(r"([^\W\d_]+)\.?\s*(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([^\W\d_]+)\.?,?\s+(\d{4})")
# Anything else shaped like a date ("03/04/2026"): reported, never guessed.
_NUMERIC_DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


@dataclass(frozen=True)
class ListingEntry:
    title: str
    summary: str
    published_on: date | None
    reading_minutes: int | None
    word_count: int | None
    author: str
    line: int  # 1-based line of the title in its file


@dataclass(frozen=True)
class ListingError:
    file: str
    line: int
    reason: str  # a sentence for people, e.g. 'impossible date "February 30, 2026" ...'


class UndecodableListing(ValueError):
    """A file that isn't UTF-8 text: where the first bad byte is, for people."""

    def __init__(self, file: str, line: int, offset: int) -> None:
        self.file, self.line, self.offset = file, line, offset
        super().__init__(
            f"{file}: not UTF-8 text at line {line} (byte offset {offset:,}); "
            "save it as UTF-8 and try again"
        )


@dataclass
class ParsedListing:
    entries: list[ListingEntry] = field(default_factory=list)
    errors: list[ListingError] = field(default_factory=list)


@dataclass
class _Meta:
    line: int
    published_on: date | None = None
    minutes: int | None = None
    words: int | None = None
    authors: list[str] = field(default_factory=list)
    problem: str = ""  # set when a date-looking field can't be read


@dataclass
class _Paragraph:
    line: int
    lines: list[str]  # as many as fit in MAX_ENTRY_CHARS
    count: int = 0  # lines it has, kept or not
    chars: int = 0
    problem: str = ""  # a line or the paragraph is too long: its entry is an error

    @property
    def title_like(self) -> bool:
        return self.count == 1 and len(self.lines[0]) <= _TITLE_LIKE_LENGTH

    def add(self, line: str, number: int, overlong: bool) -> None:
        self.count += 1
        self.chars += len(line)
        if overlong and not self.problem:
            self.problem = f"line {number} is longer than {MAX_LINE_CHARS:,} characters"
        elif self.chars > MAX_ENTRY_CHARS and not self.problem:
            self.problem = f"the text is longer than {MAX_ENTRY_CHARS:,} characters"
        if not self.lines or self.chars <= MAX_ENTRY_CHARS:
            self.lines.append(line)


def clean_text(text: str) -> str:
    """Drop control and invisible characters and collapse every whitespace run to a space."""
    return " ".join(_INVISIBLE.sub("", text).split())


def parse_listing(text: str, *, filename: str = "<stdin>") -> ParsedListing:
    """Read every entry of a listing file; an unreadable entry becomes an error, not a stop."""
    result = ParsedListing()
    for item in iter_listing(split_lines([text]), filename=filename):
        if isinstance(item, ListingError):
            result.errors.append(item)
        else:
            result.entries.append(item)
    result.errors.sort(key=lambda error: error.line)
    return result


def read_listing(stream: BinaryIO, *, filename: str) -> Iterator[ListingEntry | ListingError]:
    """The entries and errors of a binary listing file, in the order of their lines,
    read block by block (UndecodableListing when it isn't UTF-8)."""
    return iter_listing(split_lines(decode_blocks(stream, filename)), filename=filename)


def check_encoding(stream: BinaryIO, *, filename: str) -> None:
    """Read the whole file once: UndecodableListing unless it is UTF-8 throughout."""
    for _ in decode_blocks(stream, filename):
        pass


def decode_blocks(stream: BinaryIO, filename: str) -> Iterator[str]:
    """The text of a binary UTF-8 stream (a BOM skipped), a block at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0  # bytes of the file before `block`
    breaks = 0  # line breaks in the text decoded so far (CRLF counts once)
    last_cr = False
    first = True
    while True:
        block = stream.read(_BLOCK_BYTES)
        final = not block
        if first and block.startswith(codecs.BOM_UTF8):
            block, offset = block[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        first = False
        held = decoder.getstate()[0]  # the start of a character split across blocks
        try:
            text = decoder.decode(block, final)
        except UnicodeDecodeError as error:
            valid = (held + block)[: error.start].decode("utf-8")
            breaks += _count_breaks(valid, last_cr)
            raise UndecodableListing(
                filename, breaks + 1, offset - len(held) + error.start
            ) from None
        if text:
            breaks += _count_breaks(text, last_cr)
            last_cr = text.endswith("\r")
            yield text
        if final:
            return
        offset += len(block)


def _count_breaks(text: str, after_cr: bool) -> int:
    count = text.count("\n") + text.count("\r") - text.count("\r\n")
    return count - 1 if after_cr and text.startswith("\n") else count


def split_lines(pieces: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """The lines of text arriving in pieces (CRLF, CR and LF all end a line), each as
    (line, overlong): an overlong line is cut to MAX_LINE_CHARS, the rest dropped."""
    partial: list[str] = []
    size = 0
    after_cr = False
    for piece in pieces:
        if after_cr and piece.startswith("\n"):
            piece = piece[1:]
        after_cr = piece.endswith("\r")
        parts = piece.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for index, part in enumerate(parts):
            if size <= MAX_LINE_CHARS:
                partial.append(part[: MAX_LINE_CHARS + 1 - size])
            size += len(part)
            if index < len(parts) - 1:
                line = "".join(partial)
                yield (line[:MAX_LINE_CHARS], True) if size > MAX_LINE_CHARS else (line, False)
                partial, size = [], 0
    line = "".join(partial)
    yield (line[:MAX_LINE_CHARS], True) if size > MAX_LINE_CHARS else (line, False)


def iter_listing(
    lines: Iterable[tuple[str, bool]], *, filename: str
) -> Iterator[ListingEntry | ListingError]:
    """Entries and errors as the lines arrive, in the order of their lines."""
    pending: list[_Paragraph] = []  # paragraphs since the last meta line (a few at most)
    current: _Paragraph | None = None
    for number, (raw, overlong) in enumerate(lines, start=1):
        line = clean_text(raw)
        if not line:
            current = None
            continue
        meta = None if overlong else _parse_meta(line, number)
        if meta is None:
            if current is None:
                current = _Paragraph(number, [])
                pending.append(current)
                if len(pending) > _PENDING_KEPT:
                    yield from _report_orphans(pending, filename, keep=_PENDING_KEPT - 1)
            current.add(line, number, overlong)
            continue
        current = None
        orphans, paragraphs = _split_before_meta(pending)
        yield from _report_orphans(orphans, filename)
        yield from _add_entry(paragraphs, meta, filename)
        pending = []
    yield from _report_orphans(pending, filename)


def _split_before_meta(
    paragraphs: list[_Paragraph],
) -> tuple[list[_Paragraph], list[_Paragraph]]:
    """Split the text before a meta line into (entries that lost their meta line, this entry).

    Normally there are one or two paragraphs (title, summary). More means earlier entries
    have no meta line: this entry is then the last title-like paragraph and its summary.
    """
    if len(paragraphs) <= 2:
        return [], paragraphs
    if paragraphs[-2].title_like:
        return paragraphs[:-2], paragraphs[-2:]
    return paragraphs[:-1], paragraphs[-1:]


def _report_orphans(
    paragraphs: list[_Paragraph], filename: str, *, keep: int = 0
) -> Iterator[ListingError]:
    """One error per title (+ summary) that no meta line follows, taken off the front
    of `paragraphs` until `keep` are left (those may still belong to an entry)."""
    while len(paragraphs) > keep:
        title = paragraphs.pop(0)
        # The next paragraph is this title's summary, unless it is a one-liner followed by
        # a longer paragraph: then it is the next title, with its own summary.
        rest = paragraphs
        if rest and not (rest[0].title_like and len(rest) > 1 and not rest[1].title_like):
            paragraphs.pop(0)
        yield ListingError(
            filename,
            title.line,
            f"no meta line (date · min · words · author) after {_quote(title.lines[0])}",
        )


def _add_entry(
    paragraphs: list[_Paragraph], meta: _Meta, filename: str
) -> Iterator[ListingEntry | ListingError]:
    if not paragraphs:
        yield ListingError(filename, meta.line, "no title before the meta line")
        return
    first = paragraphs[0]
    title = first.lines[0]
    if len(title) > MAX_TITLE_LENGTH:
        yield ListingError(
            filename,
            first.line,
            f"the title is {len(title)} characters long, more than {MAX_TITLE_LENGTH}",
        )
        return
    for paragraph in paragraphs:
        if paragraph.problem:
            yield ListingError(filename, first.line, f"{paragraph.problem} in this entry")
            return
    if sum(p.chars for p in paragraphs) > MAX_ENTRY_CHARS:
        reason = f"the entry's text is longer than {MAX_ENTRY_CHARS:,} characters"
        yield ListingError(filename, first.line, reason)
        return
    if meta.problem:
        yield ListingError(filename, meta.line, meta.problem)
        return
    summary_lines = first.lines[1:] + [line for p in paragraphs[1:] for line in p.lines]
    yield ListingEntry(
        title=title,
        summary=" ".join(summary_lines),
        published_on=meta.published_on,
        reading_minutes=meta.minutes,
        word_count=meta.words,
        author=", ".join(meta.authors)[:MAX_AUTHOR_LENGTH].strip(),
        line=first.line,
    )


def _parse_meta(line: str, number: int) -> _Meta | None:
    """The meta line's fields, or None when the line is not a meta line.

    A line is a meta line when one of its fields is a date (or looks like one), a reading
    time or a word count; the fields may come in any order and any may be missing. Fields
    that are none of those are the author.
    """
    meta = _Meta(number)
    recognised = False
    pieces = _SEPARATOR.split(line)  # field, separator, field, separator, field...
    after_author = False
    for index in range(0, len(pieces), 2):
        part = pieces[index]
        if not part:
            continue
        if minutes := _MINUTES.fullmatch(part):
            meta.minutes = _bounded_number(minutes.group(1), MAX_MINUTES)
        elif words := _WORDS.fullmatch(part):
            meta.words = _bounded_number(words.group(1), MAX_WORDS)
        elif _looks_like_date(part):
            if meta.published_on is None and not meta.problem:  # a second date is ignored
                meta.published_on, meta.problem = _parse_date(part)
        else:
            # A bare dot between letters of the author is Catalan's interpunct ("Gal·la").
            separator = pieces[index - 1] if index else ""
            if after_author and separator == "\u00b7" and _letters_around(meta.authors[-1], part):
                meta.authors[-1] += separator + part
            else:
                meta.authors.append(part)
            after_author = True
            continue
        recognised = True
        after_author = False
    return meta if recognised else None


def _letters_around(before: str, after: str) -> bool:
    return before[-1:].isalpha() and after[:1].isalpha()


def _bounded_number(digits: str, limit: int) -> int | None:
    value = int(re.sub(r"\D", "", digits))
    return value if value <= limit else None


def _looks_like_date(text: str) -> bool:
    return any(
        pattern.fullmatch(text)
        for pattern in (_ISO_DATE, _MONTH_DAY_YEAR, _DAY_MONTH_YEAR, _NUMERIC_DATE)
    )


def _parse_date(text: str) -> tuple[date | None, str]:
    """(the date, "") or (None, why it can't be read)."""
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(group) for group in match.groups())
    elif match := _MONTH_DAY_YEAR.fullmatch(text):
        month_name, day_text, year_text = match.groups()
        month, day, year = MONTHS.get(month_name.lower(), 0), int(day_text), int(year_text)
    elif match := _DAY_MONTH_YEAR.fullmatch(text):
        day_text, month_name, year_text = match.groups()
        month, day, year = MONTHS.get(month_name.lower(), 0), int(day_text), int(year_text)
    else:
        month = 0
    if not month:
        return None, (
            f"unreadable date {_quote(text)} in the meta line "
            '(write it like "April 3, 2026" or 2026-04-03)'
        )
    try:
        return date(year, month, day), ""
    except ValueError:
        return None, f"impossible date {_quote(text)} in the meta line: there is no such day"


def _quote(text: str, limit: int = 60) -> str:
    return f'"{text if len(text) <= limit else text[: limit - 1] + "…"}"'

"""What every format module needs: decoding bytes, reading CSV rows with their line
numbers, checking addresses, reading dates and tags, and opening zip files safely.

A format module exposes `parse(data: bytes) -> Iterator[ImportedEntry | ImportProblem]`
and raises `UnreadableFile` only when the file as a whole can't be read; a bad row
is a problem for that row, never for the rest.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any, BinaryIO, TextIO

import ijson
from charset_normalizer import from_bytes

from app.imports import ImportedEntry, ImportProblem, UnreadableFile
from app.tags.services import clean_tag_name
from app.urls import InvalidURL, normalize_url

TITLE_MAX = 500
NOTE_MAX = 100_000
AUTHOR_MAX = 200
SUMMARY_MAX = 2_000
# A member of a zip is read up to this many bytes (a zip bomb stops here).
MEMBER_MAX = 60_000_000
CONTENT_MAX = 5_000_000  # one article's HTML, as Dogear's own fetches are capped

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
# Plausible dates for a saved page: the web's first years to well into this century.
_EARLIEST = datetime(1990, 1, 1)
_LATEST = datetime(2100, 1, 1)


def decode(data: bytes) -> str:
    """The text of a file: a byte-order mark decides, else UTF-8, else the encoding
    charset_normalizer recognises. UnreadableFile when none fits."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as error:
                raise UnreadableFile(
                    f"The file starts like {codec.upper()} text but isn't valid {codec.upper()}."
                ) from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:2_000_000]).best()
    if best is not None:
        try:
            return data.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    raise UnreadableFile(
        "The file isn't text in an encoding Dogear recognises; save it as UTF-8 and try again."
    )


def decode_stream(data: bytes) -> TextIO:
    """The text of a file as a stream, decoded as it is read (so the file is never
    held twice, decoded and not), by the same rules as `decode`: a byte-order mark
    decides, else UTF-8, else what charset_normalizer recognises. The whole file is
    checked first, a block at a time; UnreadableFile when no encoding fits."""
    codec, start = _codec_of(data)
    raw = io.BytesIO(data)  # shares the bytes (a memoryview slice would be copied)
    raw.seek(start)
    return io.TextIOWrapper(raw, encoding=codec, newline="")


def _codec_of(data: bytes) -> tuple[str, int]:
    """The file's encoding (by `decode_stream`'s rules) and where its text starts
    (after any byte-order mark); UnreadableFile when no encoding fits."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            if not _decodes(data, len(bom), name):
                raise UnreadableFile(
                    f"The file starts like {name.upper()} text but isn't valid {name.upper()}."
                )
            return name, len(bom)
    if _decodes(data, 0, "utf-8"):
        return "utf-8", 0
    best = from_bytes(data[:2_000_000]).best()
    if best is None or not _decodes(data, 0, best.encoding):
        raise UnreadableFile(
            "The file isn't text in an encoding Dogear recognises; save it as UTF-8 and try again."
        )
    return best.encoding, 0


def json_source(data: bytes) -> Callable[[], BinaryIO]:
    """What ijson reads a JSON file from: each call opens the file afresh as UTF-8
    bytes (a read is one pass over the document; a format may take two). Decoded by
    `decode_stream`'s rules (checked once, here): UTF-8 is read as it is, without a
    copy; UTF-16 or a legacy encoding is re-encoded a block at a time."""
    codec, start = _codec_of(data)
    if codec == "utf-8":

        def same() -> BinaryIO:
            raw = io.BytesIO(data)  # shares the bytes
            raw.seek(start)
            return raw

        return same

    def recoded() -> BinaryIO:
        raw = io.BytesIO(data)
        raw.seek(start)
        return _Utf8(io.TextIOWrapper(raw, encoding=codec, newline=""))

    return recoded


class _Utf8(io.RawIOBase):
    """A text stream read back as UTF-8 bytes, a block at a time (ijson reads bytes)."""

    def __init__(self, text: TextIO) -> None:
        super().__init__()
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = self._text.read(max(1, len(buffer) // 4)).encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def json_items(open_source: Callable[[], BinaryIO], prefix: str, invalid: str) -> Iterator[Any]:
    """The values at `prefix` of a JSON document (ijson's prefixes: "item" for each
    value of a top-level array, "entries.item" for each of an object's "entries"),
    built one at a time, the document read to its end. UnreadableFile(`invalid`)
    when it isn't valid JSON, wherever the fault is."""
    return _json_errors(ijson.items(open_source(), prefix, use_float=True), invalid)


def json_events(
    open_source: Callable[[], BinaryIO], invalid: str
) -> Iterator[tuple[str, str, Any]]:
    """ijson's parse events of a JSON document, (prefix, event, value);
    UnreadableFile(`invalid`) when it isn't valid JSON."""
    return _json_errors(ijson.parse(open_source(), use_float=True), invalid)


def _json_errors(values: Iterator[Any], invalid: str) -> Iterator[Any]:
    """ijson's values, with its errors (and a number too large for a float) as
    UnreadableFile(`invalid`); a zip member's own UnreadableFile passes as it is."""
    while True:
        try:
            value = next(values)
        except StopIteration:
            return
        except UnreadableFile:
            raise
        except (ijson.JSONError, ValueError, OverflowError) as error:
            raise UnreadableFile(invalid) from error
        yield value


def _decodes(data: bytes, start: int, codec: str, block: int = 1 << 16) -> bool:
    """Whether `data[start:]` is valid `codec`, decoded a block at a time."""
    try:
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    except LookupError:
        return False
    view = memoryview(data)
    try:
        for offset in range(start, len(data), block):
            decoder.decode(view[offset : offset + block])
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        return False
    return True


def text_pieces(stream: TextIO, size: int = 1 << 16) -> Iterator[str]:
    """A text stream in pieces (for feeding an HTML parser)."""
    while piece := stream.read(size):
        yield piece


def plain(value: object, limit: int) -> str:
    """One line of plain text: whitespace collapsed, control characters gone, cut."""
    if value is None:
        return ""
    text = _CONTROL.sub("", str(value))
    return " ".join(text.split())[:limit]


def note_text(value: object) -> str:
    """Multi-line plain text (notes, highlights): line breaks kept, CRLF made LF."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()[:NOTE_MAX]


def check_url(raw: object) -> str:
    """The normalised address, or InvalidURL saying why a row's address can't be used.

    Stricter than the add form: a file's address must say http:// or https:// itself
    (a relative or scheme-less one has no site to guess)."""
    text = str(raw or "").strip()
    if not text:
        raise InvalidURL("The row has no address.")
    if not _HTTP.match(text):
        scheme = _SCHEME.match(text)
        if scheme and not text[scheme.end() :][:1].isdigit():  # not host:port
            raise InvalidURL(
                f"Only http and https addresses can be imported (this one is {scheme.group(1)}:)."
            )
        raise InvalidURL(
            f"“{text[:80]}” isn't a full web address (it has no http:// or https://)."
        )
    return normalize_url(text)


def from_unix(value: object) -> datetime | None:
    """A Unix timestamp in seconds (milli- and microseconds recognised) as naive UTC;
    None when there is none or it isn't a plausible date."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if number <= 0:
        return None
    for divisor in (1, 1_000, 1_000_000):
        if number / divisor < 10_000_000_000:  # before the year 2286
            number /= divisor
            break
    try:
        moment = datetime.fromtimestamp(number, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if _EARLIEST <= moment < _LATEST else None


def from_iso(value: object) -> datetime | None:
    """An ISO 8601 date or date-time (with any offset) as naive UTC, or None."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment if _EARLIEST <= moment < _LATEST else None


def day_from_iso(value: object) -> date | None:
    moment = from_iso(value)
    return moment.date() if moment else None


def saved_date(entry: ImportedEntry, raw: object, moment: datetime | None) -> None:
    """Set the entry's save date, with a warning when the file's is missing or broken."""
    entry.added_at = moment
    if moment is None:
        text = plain(raw, 40)
        entry.warnings.append(
            f"the save date “{text}” isn't a date; it gets the time of the import"
            if text
            else "no save date; it gets the time of the import"
        )


def tag_list(names: Iterable[object]) -> list[str]:
    """Tag names as Dogear keeps them (lower-cased, trimmed, no commas), each once."""
    seen: dict[str, None] = {}
    for name in names:
        tag = clean_tag_name(str(name or ""))
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


LINE_MAX = 1_000_000  # characters in one line of a CSV file; a longer one is left out


class _LineTooLong(Exception):
    """A line of a CSV file longer than LINE_MAX (skipped, never held whole)."""


class _Lines:
    """A text stream's lines for the csv module, each read in at most LINE_MAX + 1
    characters: a longer line is skipped, a piece at a time, and raises _LineTooLong
    (the csv module starts afresh at the next record). `count` is the lines read."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._stream.readline(LINE_MAX + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) <= LINE_MAX or line.endswith(("\n", "\r")):
            return line
        while line and not line.endswith(("\n", "\r")):
            line = self._stream.readline(1 << 16)
        raise _LineTooLong


def csv_rows(text: str | TextIO, where: str = "") -> Iterator[tuple[str, list[str] | None | str]]:
    """Each CSV record with where it starts ("line 12"), quoted commas, quotes and line
    breaks inside fields, and CRLF handled by the csv module. A blank line is [], a
    record the csv module can't read (or with a field longer than the csv module's
    limit, 128 KiB) is None, and one with a line longer than LINE_MAX is the reason
    (a string). A stream is read as the records are wanted, a line of at most
    LINE_MAX characters at a time."""
    lines = _Lines(io.StringIO(text, newline="") if isinstance(text, str) else text)
    reader = csv.reader(lines)
    prefix = f"{where} " if where else ""
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield f"{prefix}line {start}", None
        except _LineTooLong:
            yield (
                f"{prefix}line {start}",
                f"The row has a line longer than {LINE_MAX:,} characters; it is left out.",
            )
        else:
            yield f"{prefix}line {start}", row
        start = lines.count + 1


def records(
    text: str | TextIO, where: str = "", *, required: str
) -> Iterator[tuple[str, dict[str, str] | ImportProblem]]:
    """A CSV file's records as {lower-cased column: value} after its header row, with
    where each starts; unreadable records as problems, blank lines skipped."""
    rows = csv_rows(text, where)
    header: list[str] = []
    for _, row in rows:
        header = [cell.strip().lower() for cell in row] if isinstance(row, list) else []
        break
    if required not in header:
        raise UnreadableFile(f"{where or 'The file'} has no “{required}” column.")
    for at, row in rows:
        if row is None:
            yield at, ImportProblem(at, "The row isn't valid CSV (a stray quote?).")
        elif isinstance(row, str):
            yield at, ImportProblem(at, row)
        elif any(cell.strip() for cell in row):
            yield at, dict(zip(header, row, strict=False))


def header_of(text: str) -> list[str]:
    """The lower-cased column names of a CSV file's first record ([] if none)."""
    for _, row in csv_rows(text[:20_000]):
        return [cell.strip().lower() for cell in row] if isinstance(row, list) else []
    return []


def open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as error:
        raise UnreadableFile("The .zip file is damaged; Dogear can't open it.") from error


def read_member(archive: zipfile.ZipFile, name: str, limit: int = MEMBER_MAX) -> bytes:
    """A member's bytes, refusing one that unpacks to more than `limit` (whatever its
    header claims) and encrypted or damaged members."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise UnreadableFile(f"{name} in the .zip is too large to import.")
    try:
        with archive.open(info) as member:
            body = member.read(limit + 1)
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError) as error:
        raise UnreadableFile(f"{name} in the .zip can't be read.") from error
    if len(body) > limit:
        raise UnreadableFile(f"{name} in the .zip is too large to import.")
    return body


def member_source(
    archive: zipfile.ZipFile, name: str, limit: int = MEMBER_MAX
) -> Callable[[], BinaryIO]:
    """`json_source` for a member of a zip: each call opens it afresh as UTF-8 bytes,
    unpacked as it is read (never whole). Its encoding is checked first, in one pass:
    UTF-8 or a byte-order mark's; a member in another encoding is read whole (it is at
    most `limit` bytes) and decoded by `decode`'s rules. Refused like `read_member`."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise UnreadableFile(f"{name} in the .zip is too large to import.")
    codec, start = _member_codec(archive, info, limit)
    if codec is None:
        body = read_member(archive, name, limit)
        try:
            return json_source(body)
        except UnreadableFile as error:
            raise UnreadableFile(
                f"{name} in the .zip isn't text in an encoding Dogear recognises."
            ) from error

    def unpacked() -> BinaryIO:
        raw = io.BufferedReader(_Member(archive, info, limit), 1 << 16)
        raw.read(start)
        if codec == "utf-8":
            return raw
        return _Utf8(io.TextIOWrapper(raw, encoding=codec, newline=""))

    return unpacked


def _member_codec(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int
) -> tuple[str | None, int]:
    """A member's encoding (UTF-8 or its byte-order mark's) and where its text starts,
    checked a block at a time as it unpacks; None when it is neither."""
    with io.BufferedReader(_Member(archive, info, limit), 1 << 16) as member:
        first = member.read(1 << 16)
        codec, start = "utf-8", 0
        for bom, name in _BOMS:
            if first.startswith(bom):
                codec, start = name, len(bom)
                break
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        block = first[start:]
        try:
            while block:
                decoder.decode(block)
                block = member.read(1 << 16)
            decoder.decode(b"", True)
        except UnicodeDecodeError:
            return None, 0
    return codec, start


class _Member(io.RawIOBase):
    """A zip member's bytes as they unpack, refused past `limit` bytes (whatever its
    header claims) or when damaged or encrypted, as UnreadableFile."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> None:
        super().__init__()
        self._name, self._limit, self._read = info.filename, limit, 0
        try:
            self._member = archive.open(info)
        except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError) as error:
            raise UnreadableFile(f"{self._name} in the .zip can't be read.") from error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            piece = self._member.read(len(buffer))
        except (
            zipfile.BadZipFile,
            RuntimeError,
            OSError,
            EOFError,
            ValueError,
            zlib.error,
        ) as error:
            raise UnreadableFile(f"{self._name} in the .zip can't be read.") from error
        self._read += len(piece)
        if self._read > self._limit:
            raise UnreadableFile(f"{self._name} in the .zip is too large to import.")
        buffer[: len(piece)] = piece
        return len(piece)

    def close(self) -> None:
        if member := getattr(self, "_member", None):
            member.close()
        super().close()

"""Which export a file is, from the file itself (never from its name): the members of a
zip, the header of a CSV file, the markers of an HTML file, the shape of a JSON one."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app.imports import ImportedEntry, ImportProblem, UnreadableFile
from app.imports.formats import (
    dogear_json,
    header_of,
    instapaper,
    json_source,
    netscape,
    omnivore,
    open_zip,
    pocket,
    readwise,
)

Parser = Callable[[bytes], Iterator[ImportedEntry | ImportProblem]]

ACCEPTED = (
    "a Pocket export (the .zip, one of its part_….csv files, or the older .html)",
    "an Instapaper CSV export",
    "an Omnivore export (.zip)",
    "browser or linkding bookmarks (bookmark .html)",
    "a Readwise Reader CSV export",
    "a Dogear export (.json)",
)


@dataclass(frozen=True)
class Format:
    name: str  # kept in uploads.format
    label: str  # what the preview calls it
    parse: Parser


FORMATS = {
    f.name: f
    for f in (
        Format("pocket-zip", "Pocket export (.zip)", pocket.parse_zip),
        Format("pocket-csv", "Pocket export (CSV)", pocket.parse_csv),
        Format("pocket-html", "Pocket export (HTML)", pocket.parse_html),
        Format("instapaper", "Instapaper export (CSV)", instapaper.parse),
        Format("omnivore", "Omnivore export (.zip)", omnivore.parse),
        Format("omnivore-json", "Omnivore metadata (JSON)", omnivore.parse_metadata),
        Format("netscape", "Bookmarks (HTML)", netscape.parse),
        Format("readwise", "Readwise Reader export (CSV)", readwise.parse),
        Format("dogear-json", "Dogear export (JSON)", dogear_json.parse),
    )
}

_NETSCAPE = re.compile(r"<!doctype\s+netscape-bookmark-file|<dt>\s*<a\s[^>]*href", re.IGNORECASE)
_POCKET_HTML = re.compile(r"<title>\s*pocket export\s*</title>|<h1>\s*read archive\s*</h1>", re.I)


class UnknownFormat(UnreadableFile):
    """A file that is none of the exports Dogear reads."""

    def __init__(self, what: str = "Dogear doesn't recognise this file") -> None:
        super().__init__(f"{what}. It reads {', '.join(ACCEPTED[:-1])} and {ACCEPTED[-1]}.")


def detect(data: bytes) -> Format:
    """The format of an uploaded file; UnreadableFile (or UnknownFormat) if none fits."""
    if not data or data.isspace():  # (strip() would copy the file)
        raise UnreadableFile("The file is empty.")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _zip(data)
    head = _head(data).lstrip()
    if head.startswith(("{", "[")):
        return _json(head, data)
    lowered = head[:20_000].lower()
    if _NETSCAPE.search(lowered) and "<title>pocket export" not in lowered:
        return FORMATS["netscape"]
    if _POCKET_HTML.search(lowered):
        return FORMATS["pocket-html"]
    if lowered.startswith(("<!doctype", "<html", "<")):
        raise UnknownFormat("This HTML file isn't a bookmarks file or a Pocket export")
    return _csv(head)


def _zip(data: bytes) -> Format:
    names = open_zip(data).namelist()
    if pocket.parts_in(names):
        return FORMATS["pocket-zip"]
    if omnivore.metadata_in(names):
        return FORMATS["omnivore"]
    raise UnknownFormat("This .zip is neither a Pocket nor an Omnivore export")


def _json(head: str, data: bytes) -> Format:
    """By the opening of the document (the parser checks the rest): Dogear's export
    names itself first; Omnivore's metadata is a list of items with `savedAt`."""
    compact = re.sub(r"\s+", "", head[:5_000])
    if re.search(r'"format":"dogear"', compact):
        return FORMATS["dogear-json"]
    if compact.startswith("{"):  # keys in another order: read the document as a stream
        head = dogear_json.opening(
            json_source(data), "The file looks like JSON but isn't valid JSON."
        )
        if head and head.get("format") == dogear_json.FORMAT and "entries" in head:
            return FORMATS["dogear-json"]
    if compact.startswith("[{") and re.search(r'"(savedAt|slug)":', compact):
        return FORMATS["omnivore-json"]
    raise UnknownFormat("This JSON file isn't a Dogear or Omnivore export")


def _head(data: bytes) -> str:
    """The start of the file as text, enough to recognise it (any encoding will do
    for the ASCII markers looked for; the parser decodes the whole file properly)."""
    sample = data[:200_000]
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if sample.startswith(bom):
            return sample[len(bom) :].decode(codec, errors="replace")
    return sample.decode("utf-8", errors="replace")


def _csv(text: str) -> Format:
    columns = set(header_of(text))
    if columns >= pocket.COLUMNS:
        return FORMATS["pocket-csv"]
    if columns >= readwise.COLUMNS:
        return FORMATS["readwise"]
    if columns >= instapaper.COLUMNS:
        return FORMATS["instapaper"]
    raise UnknownFormat()

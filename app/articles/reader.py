"""Turn a fetched document (bytes plus its content type) into an Article for the reader view.

This module decides what a document is (HTML, plain text, PDF, or something Dogear can't
read) and decodes its bytes; extraction lives in extract.py and sanitizing in sanitize.py.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from html import escape
from urllib.parse import unquote, urlsplit

from charset_normalizer import from_bytes

from app.articles.extract import MAX_WORDS, TRUNCATION_NOTICE, extract_article, site_host
from app.articles.sanitize import count_words

WORDS_PER_MINUTE = 230
MIN_ARTICLE_WORDS = 25
SUMMARY_CHARS = 300

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
# Types that say nothing about the bytes: look at the bytes instead.
UNKNOWN_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True)
class Article:
    """A readable document: metadata, sanitized HTML for the reader view, and plain text."""

    kind: str  # "article" | "text" | "pdf"
    title: str
    author: str
    site_name: str
    published_on: date | None
    image_url: str | None
    summary: str
    content_html: str
    text: str
    word_count: int
    reading_minutes: int
    truncated: bool


class NotAnArticle(Exception):
    """The document can't be shown in the reader view; str(e) is a sentence for the reader."""

    UNSUPPORTED_TYPE = "unsupported_type"
    NO_CONTENT = "no_content"
    UNDECODABLE = "undecodable"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_document(
    body: bytes, *, url: str, content_type: str, charset: str | None = None
) -> Article:
    """Read fetched bytes as an article, a text file or a PDF, or raise NotAnArticle."""
    content_type = content_type.split(";", 1)[0].strip().lower()
    kind = _sniff(body) if content_type in UNKNOWN_TYPES else content_type
    if kind in HTML_TYPES:
        return _read_html(body, url, charset)
    if kind in TEXT_TYPES:
        return _read_text(body, url, charset)
    if kind in PDF_TYPES:
        return _read_pdf(body, url)
    described = kind or "unknown file type"
    raise NotAnArticle(NotAnArticle.UNSUPPORTED_TYPE, f"not an HTML page ({described})")


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode an HTML page: BOM, then the HTTP charset, then <meta>, then detection.

    A declared charset is used only when the bytes decode with it, so a wrong header falls
    through instead of producing mojibake; and a body that is valid non-ASCII UTF-8 is read
    as UTF-8 even when a legacy charset is declared, since legacy text practically never
    forms valid UTF-8 while servers that default to ISO-8859-1 are common.
    """
    text = _decode(body, [charset, _meta_charset(body)])
    return text if text is not None else body.decode("utf-8", errors="replace")


# --- kinds -----------------------------------------------------------------------------------


def _read_html(body: bytes, url: str, charset: str | None) -> Article:
    extraction = extract_article(decode_html(body, charset), url)
    words = count_words(extraction.text) if extraction else 0
    if extraction is None or words < MIN_ARTICLE_WORDS:
        raise NotAnArticle(NotAnArticle.NO_CONTENT, "no article text was found on the page")
    return Article(
        kind="article",
        title=extraction.title,
        author=extraction.author,
        site_name=extraction.site_name,
        published_on=extraction.published_on,
        image_url=extraction.image_url,
        summary=_summarize(extraction.description or extraction.lead),
        content_html=extraction.content_html,
        text=extraction.text,
        word_count=words,
        reading_minutes=reading_minutes(words),
        truncated=extraction.truncated,
    )


def _read_text(body: bytes, url: str, charset: str | None) -> Article:
    text = _decode_text(body, charset)
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    if not paragraphs:
        raise NotAnArticle(NotAnArticle.NO_CONTENT, "the text file is empty")
    truncated = False
    kept, words = [], 0
    for paragraph in paragraphs:
        paragraph_words = count_words(paragraph)
        if words + paragraph_words > MAX_WORDS:
            truncated = True
            break
        kept.append(paragraph)
        words += paragraph_words
    content_html = "\n".join(f"<p>{escape(p)}</p>" for p in kept)
    if truncated:
        content_html += f"\n<p><em>{TRUNCATION_NOTICE}</em></p>"
    first = kept[0].strip() if kept else ""
    title = first if first and "\n" not in first and len(first) <= 120 else _title_from_url(url)
    return Article(
        kind="text",
        title=title,
        author="",
        site_name=site_host(url),
        published_on=None,
        image_url=None,
        summary=_summarize(next((p for p in kept if p.strip() != title), "")),
        content_html=content_html,
        text="\n\n".join(" ".join(p.split()) for p in kept),
        word_count=words,
        reading_minutes=reading_minutes(words),
        truncated=truncated,
    )


def _read_pdf(body: bytes, url: str) -> Article:
    return Article(
        kind="pdf",
        title=_pdf_title(body) or _title_from_url(url),
        author="",
        site_name=site_host(url),
        published_on=None,
        image_url=None,
        summary="",
        content_html="",
        text="",
        word_count=0,
        reading_minutes=0,
        truncated=False,
    )


def reading_minutes(word_count: int) -> int:
    """Minutes at WORDS_PER_MINUTE, rounded up; at least 1 when there are words."""
    return math.ceil(word_count / WORDS_PER_MINUTE) if word_count > 0 else 0


def _summarize(text: str) -> str:
    """Plain text of at most SUMMARY_CHARS characters, cut at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text[: SUMMARY_CHARS - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


# --- sniffing --------------------------------------------------------------------------------

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\x1aE\xdf\xa3", "video/webm"),
)
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def _sniff(body: bytes) -> str:
    """Guess the MIME type of an untyped document from its bytes ("" when unknown)."""
    head = body[:1024]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"%PDF-"):
        return "application/pdf"
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", errors="ignore").encode("ascii", errors="ignore")
    lowered = head.lower()
    if any(marker in lowered for marker in _HTML_MARKERS):
        return "text/html"
    try:
        _decode_text(body[:65536], None)
    except NotAnArticle:
        return ""
    return "text/plain"


# --- decoding --------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.I)
# Labels browsers read as a superset (WHATWG Encoding), so pages written in the superset decode.
_SUPERSETS = {
    "ascii": "cp1252",
    "latin_1": "cp1252",
    "iso8859-1": "cp1252",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "tis-620": "cp874",
    "iso8859-9": "cp1254",
}
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf_16", "utf_32")


def _decode(body: bytes, declared: list[str | None]) -> str | None:
    """Decode with the first charset that fits; None when only a lossy decode would do."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace")
    utf8 = _as_utf8(body)
    for label in declared:
        codec = _codec(label)
        if codec is None:
            continue
        if utf8 is not None and not codec.startswith(_NOT_ASCII_COMPATIBLE):
            return utf8  # valid UTF-8 outranks a declared legacy charset (see decode_html)
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue
    if utf8 is not None:
        return utf8
    return _detect(body)


def _detect(body: bytes) -> str | None:
    """charset_normalizer's best guess; ties go to windows-1252, as in browsers.

    On short Western text cp1250, cp1252 and cp1257 often score the same, and picking
    the wrong one turns "crème" into "crčme".
    """
    matches = from_bytes(body)
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        tied = (match.chaos, match.coherence) == (best.chaos, best.coherence)
        if tied and "cp1252" in match.could_be_from_charset:
            return str(match)
    return str(best)


def _as_utf8(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:2048])
    if not match:
        return None
    label = match.group(1).decode("ascii", errors="ignore")
    # a page can't declare UTF-16 in a meta it could be read with: browsers take it as UTF-8
    return "utf-8" if label.lower().startswith(("utf-16", "utf-32")) else label


def _decode_text(body: bytes, charset: str | None) -> str:
    """Decode a text file, or raise NotAnArticle when the bytes are not text at all."""
    text = _decode(body, [charset])
    if text is None:
        text = body.decode("utf-8", errors="replace")
        if text.count("\ufffd") > max(3, len(text) // 100):
            raise NotAnArticle(NotAnArticle.UNDECODABLE, "the page's text could not be decoded")
    controls = sum(
        1 for char in text if unicodedata.category(char) == "Cc" and char not in "\t\n\r\f"
    )
    if controls > max(3, len(text) // 100):
        raise NotAnArticle(NotAnArticle.UNDECODABLE, "the page's text could not be decoded")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")


# --- PDFs and names --------------------------------------------------------------------------

_PDF_TITLE = re.compile(rb"/Title\s*(\((?:\\.|[^\\])*?\)|<[0-9A-Fa-f\s]*>)", re.S)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _pdf_title(body: bytes) -> str:
    """The /Title of the document info, when it sits uncompressed near the start or end."""
    for chunk in (body[:65536], body[-65536:]):
        match = _PDF_TITLE.search(chunk)
        if match:
            title = _pdf_string(match.group(1))
            if title:
                return title
    return ""


def _pdf_string(raw: bytes) -> str:
    if raw.startswith(b"<"):
        try:
            data = bytes.fromhex(raw[1:-1].decode("ascii"))
        except ValueError:
            return ""
    else:
        data = re.sub(
            rb"\\([0-7]{1,3}|.)",
            lambda m: (
                bytes([int(m.group(1), 8) & 0xFF])
                if m.group(1)[:1].isdigit()
                else _PDF_ESCAPES.get(m.group(1), m.group(1))
            ),
            raw[1:-1],
            flags=re.S,
        )
    if data.startswith(codecs.BOM_UTF16_BE):
        text = data[2:].decode("utf-16-be", errors="replace")
    elif data.startswith(codecs.BOM_UTF8):
        text = data[3:].decode("utf-8", errors="replace")
    else:
        text = data.decode("latin-1")  # close enough to PDFDocEncoding for titles
    return " ".join(text.replace("\x00", "").split())


def _title_from_url(url: str) -> str:
    """ "https://x/reports/annual-report-2025.pdf" -> "annual report 2025"."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    segment = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", segment)
    return " ".join(re.sub(r"[-_+.]+", " ", stem).split())

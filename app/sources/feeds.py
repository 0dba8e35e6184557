"""Read a feed (RSS 2.0, RSS 1.0, Atom 1.0 or JSON Feed) into plain `FeedEntry` records.

The bytes come from Dogear's guarded client; nothing here fetches anything. Two rules
keep parsing safe:

- XML goes through defusedxml first, as a gate: a document that declares entities
  (the "billion laughs" bomb) or refers to external ones (`SYSTEM "file:///etc/passwd"`)
  is refused before any other parser sees it. Only then does feedparser read it, for
  its tolerance of real-world feeds.
- feedparser only ever gets a file-like object over those bytes. Given a string (or
  bytes) it decides for itself whether that is a URL to fetch or a path to open.

Entries keep their HTML as the feed gave it (links made absolute); sanitizing is the
caller's job (`app.articles.sanitize_html`), as it is for every other HTML Dogear keeps.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from app.articles import html_to_text

MAX_GUID_LENGTH = 1024  # Post.guid is String(1024)
ENTITIES_REFUSED = "the feed uses XML entities Dogear refuses to expand"
NOT_A_FEED = "this address does not hold a feed (RSS, Atom or JSON Feed)"

JSON_TYPES = frozenset({"application/feed+json", "application/json"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_ATOM = "{http://www.w3.org/2005/Atom}feed"
_ATOM_03 = "{http://purl.org/atom/ns#}feed"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"
_RSS_090 = "http://my.netscape.com/rdf/simple/0.9/"
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# The first element's name, past the XML declaration, comments and a doctype.
_FIRST_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_PROLOGUE = re.compile(
    rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.S | re.I
)
_FEEDPARSER_FORMATS = {
    "rss090": "RSS 0.90",
    "rss10": "RSS 1.0",
    "rss20": "RSS 2.0",
    "atom10": "Atom 1.0",
    "atom03": "Atom 0.3",
}


class FeedError(Exception):
    """The bytes are not a feed Dogear can read; str(e) is a sentence for the admin."""


@dataclass(frozen=True)
class FeedEntry:
    guid: str | None  # the entry's id in its feed (RSS guid, Atom id, JSON id)
    url: str | None  # absolute http(s) link to the article
    title: str  # plain text ("" when the feed gives none)
    summary_html: str  # HTML (plain-text summaries are escaped), not sanitized
    content_html: str  # the full content when the feed carries it, else ""
    author: str
    published: datetime | None  # naive UTC
    updated: datetime | None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Feed:
    format: str  # "RSS 2.0", "Atom 1.0", "JSON Feed 1.1", …
    title: str
    site_url: str | None
    entries: list[FeedEntry] = field(default_factory=list)


def sniff(body: bytes, content_type: str = "") -> str:
    """What the bytes look like: "json", "xml" (a feed, probably), "html" or "other"."""
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    content_type = content_type.split(";", 1)[0].strip().lower()
    if head.startswith((b"{", b"[")):
        return "json"
    if not head.startswith(b"<"):
        return "json" if content_type in JSON_TYPES else "other"
    rest = head
    while match := _PROLOGUE.match(rest):
        rest = rest[match.end() :]
    tag = _FIRST_TAG.match(rest.lstrip())
    name = tag.group(1).lower() if tag else b""
    if name in (b"rss", b"feed", b"rdf:rdf", b"rdf", b"channel") or name.endswith(b":rdf"):
        return "xml"
    if name == b"html" or head[:15].lower().startswith(b"<!doctype html"):
        return "html"
    if content_type in HTML_TYPES:
        return "html"
    return "xml"


def parse_feed(body: bytes, url: str, content_type: str = "") -> Feed:
    """Read a feed fetched from `url`; raises FeedError for anything that is not one."""
    if sniff(body, content_type) == "json":
        return _parse_json_feed(body, url)
    return _parse_xml_feed(body, url, content_type)


# --- XML: RSS and Atom -----------------------------------------------------------------


def check_xml(body: bytes) -> Any:
    """The document's root element, parsed without entity expansion; FeedError when
    it declares or refers to entities. None when it is not well-formed XML (feedparser
    may still read it: real feeds are often sloppy)."""
    try:
        return defused_fromstring(
            body, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise FeedError(ENTITIES_REFUSED) from None
    except (ParseError, ValueError, LookupError):
        # Malformed before the gate saw a declaration: refuse if there is one anywhere.
        if _ENTITY_DECLARATION.search(body):
            raise FeedError(ENTITIES_REFUSED) from None
        return None


def _format_of(root: Any, version: str) -> str:
    if root is not None:
        if root.tag == _ATOM:
            return "Atom 1.0"
        if root.tag == _ATOM_03:
            return "Atom 0.3"
        if root.tag == _RDF:
            return "RSS 0.90" if any(_RSS_090 in c.tag for c in root) else "RSS 1.0"
        if root.tag == "rss":
            return f"RSS {root.get('version', '2.0')[:8]}"
    return _FEEDPARSER_FORMATS.get(version, "RSS" if version.startswith("rss") else "feed")


def _parse_xml_feed(body: bytes, url: str, content_type: str) -> Feed:
    root = check_xml(body)
    if root is not None and root.tag.lower() in ("html", "{http://www.w3.org/1999/xhtml}html"):
        raise FeedError(NOT_A_FEED)
    import feedparser  # here: only the job worker and the admin's feed check read feeds

    parsed = feedparser.parse(
        io.BytesIO(body),  # never a string: feedparser would open it as a URL or path
        response_headers={"content-location": url, "content-type": content_type or "text/xml"},
    )
    version = parsed.get("version") or ""
    if not version:
        raise FeedError(NOT_A_FEED)
    channel = parsed.get("feed", {})
    entries = [entry for raw in parsed.get("entries", []) if (entry := _xml_entry(raw, url))]
    return Feed(
        format=_format_of(root, version),
        title=_plain(channel.get("title_detail") or channel.get("title")),
        site_url=_absolute(channel.get("link"), url),
        entries=entries,
    )


def _xml_entry(raw: Any, feed_url: str) -> FeedEntry | None:
    link = _absolute(raw.get("link"), feed_url)
    guid = _guid(raw.get("id"))
    if link is None and guid and raw.get("guidislink"):
        link = _absolute(guid, feed_url)
    content = _best_content(raw.get("content") or [])
    summary_detail = raw.get("summary_detail")
    summary = _as_html(summary_detail) if summary_detail else ""
    if summary and summary == content:
        summary = ""  # feedparser copies lone content into the summary
    title = _plain(raw.get("title_detail") or raw.get("title"))
    if not (title or link or summary or content):
        return None
    author_detail = raw.get("author_detail") or {}
    author = author_detail.get("name") or raw.get("author") or ""
    categories = tuple(
        _clean(tag.get("term") or tag.get("label") or "") for tag in raw.get("tags") or []
    )
    return FeedEntry(
        guid=guid,
        url=link,
        title=title,
        summary_html=summary,
        content_html=content,
        author=_clean(html_to_text(author) if "<" in author else author)[:200],
        published=_struct_time(raw.get("published_parsed")),
        # dict.get: feedparser's own get falls back to the published date, with a warning.
        updated=_struct_time(dict.get(raw, "updated_parsed")),
        categories=tuple(c for c in categories if c),
    )


def _best_content(contents: list[Any]) -> str:
    """The richest of an entry's contents: HTML before plain text, then the longest."""
    if not contents:
        return ""
    ranked = sorted(
        contents,
        key=lambda c: ("html" in (c.get("type") or ""), len(c.get("value") or "")),
        reverse=True,
    )
    return _as_html(ranked[0])


def _as_html(detail: Any) -> str:
    """A feedparser text construct as HTML: plain text is escaped into paragraphs."""
    value = (detail.get("value") if hasattr(detail, "get") else str(detail or "")) or ""
    kind = (detail.get("type") if hasattr(detail, "get") else "") or "text/html"
    if "html" in kind:
        return value.strip()
    return _text_to_html(value)


def _plain(detail: Any) -> str:
    """A title as plain text; HTML titles lose their markup."""
    if detail is None:
        return ""
    if hasattr(detail, "get"):
        value, kind = detail.get("value") or "", detail.get("type") or ""
    else:
        value, kind = str(detail), "text/html"
    return _clean(html_to_text(value) if "html" in kind else value)


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime(*value[:6])  # feedparser gives UTC
    except (TypeError, ValueError, OverflowError):
        return None


# --- JSON Feed ---------------------------------------------------------------------------


def _parse_json_feed(body: bytes, url: str) -> Feed:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FeedError("the feed is not valid JSON") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not (isinstance(version, str) and version.startswith("https://jsonfeed.org/version/")):
        raise FeedError(NOT_A_FEED)
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError("the JSON Feed has no list of items")
    number = version.rsplit("/", 1)[-1][:8]
    entries = [
        entry for item in items if isinstance(item, dict) if (entry := _json_entry(item, url))
    ]
    return Feed(
        format=f"JSON Feed {number}",
        title=_clean(_text(data.get("title"))),
        site_url=_absolute(_text(data.get("home_page_url")), url),
        entries=entries,
    )


def _json_entry(item: dict[str, Any], feed_url: str) -> FeedEntry | None:
    link = _absolute(_text(item.get("url")), feed_url) or _absolute(
        _text(item.get("external_url")), feed_url
    )
    content_html = _text(item.get("content_html")).strip()
    if not content_html and (content_text := _text(item.get("content_text"))):
        content_html = _text_to_html(content_text)
    summary = _text(item.get("summary"))
    title = _clean(_text(item.get("title")))
    if not (title or link or summary or content_html):
        return None
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]
    names = [_text(a.get("name")) for a in authors if isinstance(a, dict)]
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    return FeedEntry(
        guid=_guid(_text(item.get("id")) or None),
        url=link,
        title=title,
        summary_html=_text_to_html(summary) if summary else "",
        content_html=content_html,
        author=_clean(", ".join(n for n in names if n))[:200],
        published=_iso_datetime(item.get("date_published")),
        updated=_iso_datetime(item.get("date_modified")),
        categories=tuple(_clean(t) for t in tags if isinstance(t, str) and t.strip()),
    )


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # JSON Feed ids are sometimes numbers
    return ""


# --- shared ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return " ".join((text or "").split())


def _text_to_html(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return "".join(f"<p>{escape(p)}</p>" for p in paragraphs)


def _absolute(link: Any, base: str) -> str | None:
    """An absolute http(s) address for a link (relative ones resolved), else None."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        resolved = urljoin(base, link.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return resolved


def _guid(value: Any) -> str | None:
    text = _clean(value) if isinstance(value, str) else ""
    if len(text) > MAX_GUID_LENGTH:  # kept whole in spirit: a long id is its hash
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text or None

"""Find the feeds a web page names in `<link rel="alternate" type="…" href="…">`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/rdf+xml": "RSS 1.0",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
    "application/xml": "XML feed",
    "text/xml": "XML feed",
}


@dataclass(frozen=True)
class FeedLink:
    url: str  # absolute
    title: str  # the link's title, "" when it has none
    kind: str  # "RSS", "Atom", "JSON Feed", …

    @property
    def label(self) -> str:
        return f"“{self.title}”" if self.title else self.kind


def find_feed_links(html: str, base_url: str) -> list[FeedLink]:
    """The page's feeds, most likely the main one first: in the page's order, but
    comment feeds after the others. Honours `<base href>`."""
    try:
        document = lxml.html.document_fromstring(html) if html.strip() else None
    except (etree.ParserError, ValueError):
        return []
    if document is None:
        return []
    base = base_url
    for element in document.iter("base"):
        if href := (element.get("href") or "").strip():
            base = urljoin(base_url, href)
        break
    found: list[FeedLink] = []
    seen: set[str] = set()
    for element in document.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        kind = FEED_TYPES.get((element.get("type") or "").split(";")[0].strip().lower())
        href = (element.get("href") or "").strip()
        if "alternate" not in rel or kind is None or not href:
            continue
        try:
            url = urljoin(base, href)
            scheme = urlsplit(url).scheme
        except ValueError:
            continue
        if scheme not in ("http", "https") or url in seen:
            continue
        seen.add(url)
        found.append(
            FeedLink(url=url, title=" ".join((element.get("title") or "").split()), kind=kind)
        )
    return sorted(found, key=lambda link: "comment" in link.title.lower())

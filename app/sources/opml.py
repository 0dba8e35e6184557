"""OPML subscription lists: read one (feeds to add as sources), write one (every feed).

Reading goes through defusedxml: an OPML file that declares entities or refers to
external ones is refused, like a feed that does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

MAX_FEEDS = 2000


class OpmlError(Exception):
    """The file is not an OPML list Dogear can read; str(e) says why."""


@dataclass(frozen=True)
class OpmlFeed:
    url: str  # xmlUrl, as written in the file
    title: str
    site_url: str  # htmlUrl, "" when absent
    categories: tuple[str, ...]  # enclosing folders and the `category` attribute


@dataclass(frozen=True)
class ExportedSource:
    name: str
    url: str
    site_url: str | None
    categories: tuple[str, ...]


def parse_opml(body: bytes) -> list[OpmlFeed]:
    """Every outline with an xmlUrl, in file order, folders turned into categories."""
    try:
        root = defused_fromstring(
            body, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise OpmlError("the file uses XML entities Dogear refuses to expand") from None
    except (ParseError, ValueError, LookupError):
        raise OpmlError("the file is not valid XML") from None
    if root.tag.lower() != "opml":
        raise OpmlError("the file is not an OPML list (its root element is not <opml>)")
    body_element = next((child for child in root if child.tag.lower() == "body"), None)
    if body_element is None:
        raise OpmlError("the OPML file has no <body>")
    feeds: list[OpmlFeed] = []
    _walk(body_element, (), feeds)
    return feeds


def _walk(parent: Any, folders: tuple[str, ...], feeds: list[OpmlFeed]) -> None:
    for outline in parent:
        if not isinstance(outline.tag, str) or outline.tag.lower() != "outline":
            continue
        if len(feeds) >= MAX_FEEDS:
            raise OpmlError(f"the file lists more than {MAX_FEEDS} feeds")
        attributes = {key.lower(): value for key, value in outline.attrib.items()}
        text = _clean(attributes.get("title") or attributes.get("text") or "")
        url = (attributes.get("xmlurl") or "").strip()
        if url:
            own = tuple(
                _clean(c.strip("/").rsplit("/", 1)[-1])
                for c in (attributes.get("category") or "").split(",")
                if c.strip(" /")
            )
            feeds.append(
                OpmlFeed(
                    url=url,
                    title=text,
                    site_url=(attributes.get("htmlurl") or "").strip(),
                    categories=tuple(dict.fromkeys(folders + own)),
                )
            )
        _walk(outline, folders + ((text,) if text and not url else ()), feeds)


def build_opml(sources: list[ExportedSource], *, title: str = "Dogear sources") -> bytes:
    """An OPML 2.0 document listing the feeds (topics in the `category` attribute)."""
    root = Element("opml", version="2.0")
    head = SubElement(root, "head")
    SubElement(head, "title").text = title
    SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC), usegmt=True)
    body = SubElement(root, "body")
    for source in sources:
        attributes = {"type": "rss", "text": source.name, "title": source.name}
        attributes["xmlUrl"] = source.url
        if source.site_url:
            attributes["htmlUrl"] = source.site_url
        if source.categories:
            attributes["category"] = ",".join(source.categories)
        SubElement(body, "outline", attributes)
    return tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _clean(text: str) -> str:
    return " ".join(text.split())

"""Reading an address when an admin adds it: a feed, a page that names one, or a
listing file, and the feed's title.

This is the one time adding a source waits on the network (within
SOURCES_PROBE_TIMEOUT seconds); the entries themselves are written later by the
refresh job (refresh.py). Kept apart from services.py because it is all fetching and
parsing, with no database.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from flask import current_app

from app.articles import decode_html
from app.catalog.listing import parse_listing
from app.fetching import FetchError, FetchPolicy, FetchResponse, fetch, policy_from_config
from app.models import SourceKind
from app.sources import discovery, feeds
from app.sources.common import (
    FEED_ACCEPT,
    MAX_NAME,
    SourceError,
    capital,
    count,
    decode_text,
    fetch_message,
    normalized,
)
from app.urls import InvalidURL, normalize_url


@dataclass(frozen=True)
class Probe:
    """What an address turned out to be, when an admin adds it."""

    kind: str  # "feed" or "listing"
    url: str  # the feed's own address (normalized), after discovery
    title: str
    site_url: str | None
    format: str  # "RSS 2.0", "Atom 1.0", "JSON Feed 1.1", "listing file"
    entries: int
    page_url: str | None = None  # the page the feed was found on
    picked: str = ""  # how that page names the feed ("“Posts”", "Atom")
    others: int = 0  # other feeds the page names

    def describe(self) -> str:
        """A sentence about what was found, for the flash after adding."""
        what = f"{self.phrase} with {count(self.entries, 'entry', 'entries')}"
        if self.page_url is None:
            return f"It is {what}."
        others = f" (of {self.others + 1} feeds the page names)" if self.others else ""
        return (
            f"The page {self.page_url} names a feed: Dogear picked {self.picked}{others}, "
            f"{what} at {self.url}."
        )

    @property
    def phrase(self) -> str:
        """ "an RSS 2.0 feed", "a JSON Feed 1.1", "a listing file"."""
        if self.kind == SourceKind.LISTING.value:
            return "a listing file"
        article = "an" if self.format.startswith(("RSS", "Atom")) else "a"
        noun = "" if self.format.startswith("JSON Feed") else " feed"
        return f"{article} {self.format}{noun}"


def probe(raw_url: str) -> Probe:
    """Fetch an address and say what it is: a feed, a page naming one, or a listing
    file. Raises SourceError with the reason otherwise. Opens no transaction."""
    url = normalized(raw_url)
    policy = _policy(current_app.config["SOURCES_PROBE_TIMEOUT"])
    response = _get(url, policy)
    kind = feeds.sniff(response.body, response.content_type)
    if kind == "html":
        return _probe_page(url, response, policy)
    if kind == "other":
        return _probe_listing(url, response)
    try:
        feed = feeds.parse_feed(response.body, response.url, response.content_type)
    except feeds.FeedError as error:
        if str(error) == feeds.NOT_A_FEED and response.content_type in feeds.HTML_TYPES:
            return _probe_page(url, response, policy)
        raise SourceError(capital(str(error)) + ".") from None
    return Probe(
        kind=SourceKind.FEED.value,
        url=url,
        title=feed.title,
        site_url=feed.site_url,
        format=feed.format,
        entries=len(feed.entries),
    )


def _probe_page(url: str, response: FetchResponse, policy: FetchPolicy) -> Probe:
    html = decode_html(response.body, response.charset)
    links = discovery.find_feed_links(html, response.url)
    if not links:
        raise SourceError(
            'That page names no feed (no <link rel="alternate"> to RSS, Atom or JSON Feed). '
            "Enter the feed's own address."
        )
    picked = links[0]
    try:
        feed_url = normalize_url(picked.url)
    except InvalidURL as error:
        raise SourceError(f"The page names a feed at an unusable address: {error}") from None
    feed_response = _get(feed_url, policy)
    try:
        feed = feeds.parse_feed(feed_response.body, feed_response.url, feed_response.content_type)
    except feeds.FeedError as error:
        raise SourceError(f"The page names a feed at {feed_url}, but {error}.") from None
    return Probe(
        kind=SourceKind.FEED.value,
        url=feed_url,
        title=feed.title or picked.title,
        site_url=feed.site_url or url,
        format=feed.format,
        entries=len(feed.entries),
        page_url=url,
        picked=picked.label,
        others=len(links) - 1,
    )


def _probe_listing(url: str, response: FetchResponse) -> Probe:
    parsed = parse_listing(decode_text(response.body, response.charset), filename=url)
    if not parsed.entries:
        raise SourceError(
            "That address holds no feed (RSS, Atom or JSON Feed), no page that names one, "
            "and no listing file."
        )
    name = url.split("://", 1)[-1].removeprefix("www.")
    return Probe(
        kind=SourceKind.LISTING.value,
        url=url,
        title=name[:MAX_NAME],
        site_url=None,
        format="listing file",
        entries=len(parsed.entries),
    )


def _policy(timeout: float | None = None) -> FetchPolicy:
    policy = policy_from_config(current_app.config)
    if timeout:
        policy = dataclasses.replace(policy, total_timeout=min(policy.total_timeout, timeout))
    return policy


def _get(url: str, policy: FetchPolicy) -> FetchResponse:
    try:
        return fetch(url, policy, headers={"Accept": FEED_ACCEPT})
    except FetchError as error:
        raise SourceError(f"Dogear could not read that address: {fetch_message(error)}.") from None

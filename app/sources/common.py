"""What the other modules of app/sources share: the error an admin reads, the
constants, and small text helpers.

It imports nothing else from app/sources, so every module here (and the views and the
CLI) can use it without an import cycle.
"""

from __future__ import annotations

from app.fetching import FetchError
from app.models import SourceKind
from app.urls import InvalidURL, normalize_url

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, text/plain;q=0.7, */*;q=0.5"
)
REFRESHABLE_KINDS = (SourceKind.FEED.value, SourceKind.LISTING.value)
REFRESH_ALL = "sources.refresh_all"
MAX_NAME = 200  # Source.name is String(200)


class SourceError(Exception):
    """A source that can't be added, changed or refreshed; str(e) is a sentence for the
    admin, `field` the form field it belongs to."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


def fetch_message(error: FetchError) -> str:
    """The fetcher's sentence, about a feed rather than a page."""
    return str(error).replace("the page is too large", "the feed is too large")


def normalized(raw_url: str) -> str:
    try:
        return normalize_url(raw_url)
    except InvalidURL as error:
        raise SourceError(str(error).replace("saved", "read")) from None


def decode_text(body: bytes, charset: str | None) -> str:
    for encoding in (charset, "utf-8-sig"):
        if not encoding:
            continue
        try:
            return body.decode(encoding).lstrip("\ufeff")
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def clean(text: str) -> str:
    return " ".join((text or "").split())


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis."""
    text = clean(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]

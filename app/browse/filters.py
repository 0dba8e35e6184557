"""The browse filter state: parsed from the query string, and back into URLs."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from werkzeug.datastructures import MultiDict

from app.pagination import page_number

LENGTHS = {
    "short": ("Short", "under 5 min"),
    "medium": ("Medium", "5–10 min"),
    "long": ("Long", "over 10 min"),
}
SORTS = {
    "newest": "Newest",
    "oldest": "Oldest",
    "shortest": "Shortest",
    "longest": "Longest",
}


@dataclass(frozen=True)
class BrowseFilters:
    """What the reader picked. Unknown or malformed values fall back to the default,
    so a hand-edited or stale link still shows something sensible."""

    topic: str = ""
    length: str = ""
    author: str = ""
    year: int | None = None
    source: int | None = None
    sort: str = "newest"
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> BrowseFilters:
        length = args.get("length", "")
        sort = args.get("sort", "newest")
        year = _int(args.get("year"))
        return cls(
            topic=args.get("topic", "").strip().lower()[:40],
            length=length if length in LENGTHS else "",
            author=" ".join(args.get("author", "").split())[:200],
            year=year if year and 1900 <= year <= 2999 else None,
            source=_int(args.get("source")),
            sort=sort if sort in SORTS else "newest",
            page=page_number(args.get("page")),
        )

    def with_changes(self, **changes: Any) -> BrowseFilters:
        """A copy with some fields changed; any filter change goes back to page 1."""
        if "page" not in changes:
            changes["page"] = 1
        return replace(self, **changes)

    def to_args(self) -> dict[str, Any]:
        """Query arguments that differ from the defaults (for url_for)."""
        return {
            name: getattr(self, name)
            for name, default in _DEFAULTS.items()
            if getattr(self, name) != default
        }

    @property
    def active(self) -> bool:
        return bool(self.topic or self.length or self.author or self.year or self.source)

    def cleared(self) -> BrowseFilters:
        """No filters, same sort."""
        return BrowseFilters(sort=self.sort)


def _int(raw: str | None) -> int | None:
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if 0 < value < 2**31 else None


_DEFAULTS = {f.name: f.default for f in fields(BrowseFilters)}

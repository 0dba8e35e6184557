"""Paging through query results without counting them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select

from app.extensions import db

T = TypeVar("T")

MAX_PAGE = 100_000


def page_number(raw: str | None, maximum: int = MAX_PAGE) -> int:
    """The page asked for in a query string; anything malformed is page 1."""
    try:
        number = int(raw or "1")
    except ValueError:
        return 1
    return min(max(number, 1), maximum)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results. No total count: counting 100,000 rows costs more than
    the page itself, and 'next' only needs to know whether one more row exists."""

    items: list[T]
    number: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.number > 1


def paginate(stmt: Select[tuple[T]], page: int, per_page: int) -> Page[T]:
    rows = list(db.session.scalars(stmt.limit(per_page + 1).offset((page - 1) * per_page)))
    return Page(items=rows[:per_page], number=page, has_next=len(rows) > per_page)

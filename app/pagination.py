"""Paging through query results without counting them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select

from app.db import defers_offset, plain_rows
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


def paginate(
    stmt: Select[tuple[T]],
    page: int,
    per_page: int,
    *,
    deferred: bool = False,
    plain: bool = False,
) -> Page[T]:
    """Page `page` of `stmt`'s rows. With `deferred`, on a database that needs it
    (`app.db.defers_offset`), the rows skipped by the offset are found by id alone
    and only the page's rows are read whole (a "deferred join"). With `plain`, the
    rows are read past the ORM (`app.db.plain_rows`): values for a one-column
    statement (ids), else `Row`s."""
    offset = (page - 1) * per_page
    if deferred and offset and defers_offset():
        entity = stmt.column_descriptions[0]["entity"]
        ids = stmt.with_only_columns(entity.id).limit(per_page + 1).offset(offset)
        stmt = stmt.where(entity.id.in_(ids)).limit(per_page + 1)
    else:
        stmt = stmt.limit(per_page + 1).offset(offset)
    if not plain:
        rows = list(db.session.scalars(stmt))
    elif len(stmt.selected_columns) == 1:
        rows = list(plain_rows(stmt).scalars())
    else:
        rows = list(plain_rows(stmt))
    return Page(items=rows[:per_page], number=page, has_next=len(rows) > per_page)

"""Reads of the catalog."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select

from app.access import visible_posts_clause
from app.browse.filters import BrowseFilters
from app.extensions import db
from app.models import Post, Source, Topic, User, post_topics

T = TypeVar("T")


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


def catalog_posts(user: User | None, filters: BrowseFilters) -> Select[tuple[Post]]:
    """The posts a reader can browse, filtered and sorted."""
    stmt = select(Post).where(visible_posts_clause(user))
    if filters.topic:
        stmt = stmt.where(
            Post.id.in_(
                select(post_topics.c.post_id)
                .join(Topic, Topic.id == post_topics.c.topic_id)
                .where(Topic.slug == filters.topic)
            )
        )
    if filters.author:
        stmt = stmt.where(Post.author == filters.author)
    if filters.year:
        stmt = stmt.where(
            Post.published_on >= date(filters.year, 1, 1),
            Post.published_on < date(filters.year + 1, 1, 1),
        )
    if filters.source:
        stmt = stmt.where(Post.source_id == filters.source)
    if filters.length == "short":
        stmt = stmt.where(Post.reading_minutes < 5)
    elif filters.length == "medium":
        stmt = stmt.where(Post.reading_minutes.between(5, 10))
    elif filters.length == "long":
        stmt = stmt.where(Post.reading_minutes > 10)
    order = {
        "newest": (Post.published_on.desc(), Post.id.desc()),
        "oldest": (Post.published_on.asc(), Post.id.asc()),
        "shortest": (Post.reading_minutes.asc(), Post.id.asc()),
        "longest": (Post.reading_minutes.desc(), Post.id.desc()),
    }[filters.sort]
    return stmt.order_by(*order)


@dataclass(frozen=True)
class Facet:
    value: str | int
    label: str
    count: int


@dataclass(frozen=True)
class CatalogFacets:
    """What the catalog can be narrowed by, with shared-catalog post counts."""

    topics: list[Facet]
    authors: list[Facet]
    years: list[Facet]
    sources: list[Facet]


TOP_AUTHORS = 12
_facets_cache: dict[str, tuple[float, CatalogFacets]] = {}


def catalog_facets(max_age: float) -> CatalogFacets:
    """Facet values with counts over the shared catalog.

    Counting groups over the whole catalog costs tens of milliseconds at 100,000
    posts, so each worker keeps the answer for `max_age` seconds; counts that lag
    a new import by that long are fine for a sidebar.
    """
    key = str(db.engine.url)
    cached = _facets_cache.get(key)
    now = time.monotonic()
    if cached and now - cached[0] < max_age:
        return cached[1]
    facets = _count_facets()
    _facets_cache[key] = (now, facets)
    return facets


def _count_facets() -> CatalogFacets:
    shared = Post.owner_id.is_(None)
    topic_count = func.count(post_topics.c.post_id)
    topics = db.session.execute(
        select(Topic.slug, Topic.name, topic_count)
        .join(post_topics, post_topics.c.topic_id == Topic.id)
        .join(Post, Post.id == post_topics.c.post_id)
        .where(shared)
        .group_by(Topic.id)
        .order_by(topic_count.desc(), Topic.slug)
    ).all()
    author_count = func.count(Post.id)
    authors = db.session.execute(
        select(Post.author, author_count)
        .where(shared, Post.author != "")
        .group_by(Post.author)
        .order_by(author_count.desc(), Post.author)
        .limit(TOP_AUTHORS)
    ).all()
    year = func.extract("year", Post.published_on)
    years = db.session.execute(
        select(year, func.count(Post.id))
        .where(shared, Post.published_on.is_not(None))
        .group_by(year)
        .order_by(year.desc())
    ).all()
    sources = db.session.execute(
        select(Source.id, Source.name, func.count(Post.id))
        .join(Post, Post.source_id == Source.id)
        .where(shared)
        .group_by(Source.id)
        .order_by(Source.name)
    ).all()
    return CatalogFacets(
        topics=[Facet(slug, name, n) for slug, name, n in topics],
        authors=[Facet(name, name, n) for name, n in authors],
        years=[Facet(int(y), str(int(y)), n) for y, n in years],
        sources=[Facet(source_id, name, n) for source_id, name, n in sources],
    )


def clear_facets_cache() -> None:
    _facets_cache.clear()


def facet_label(facets: CatalogFacets, filters: BrowseFilters) -> dict[str, str]:
    """Readable names for the active filters (a topic's name, a source's name)."""
    names: dict[str, str] = {}
    if filters.topic:
        names["topic"] = next(
            (f.label for f in facets.topics if f.value == filters.topic), filters.topic
        )
    if filters.source:
        names["source"] = next(
            (f.label for f in facets.sources if f.value == filters.source), "that source"
        )
    return names

"""Reads of the catalog."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, and_, case, func, select

from app.access import catalog_clause
from app.browse.filters import LENGTHS, BrowseFilters
from app.catalog import version
from app.db import nulls_smallest, unindexed
from app.extensions import db
from app.models import Post, Source, Topic, post_topics


def catalog_post_ids(filters: BrowseFilters, *, common_topic: bool = False) -> Select[tuple[int]]:
    """The ids of the catalog posts a reader can browse, filtered and sorted: a page
    shows them as cards (app/catalog/cards.py). (Articles readers added are not in the
    catalog: they live on their lists and in their searches.)

    `common_topic` picks the plan for the topic filter: for a topic on many posts,
    walk the sorted index and check each post (EXISTS) so the first page stops after
    a few dozen rows; for a rare topic, fetch its few posts first (IN) and sort them.

    The statement is built once per worker for each filter combination (the page
    number aside) and database: building it cost as much as running it.
    """
    return _catalog_post_ids(filters.with_changes(page=1), common_topic, db.engine.dialect.name)


@lru_cache(maxsize=512)
def _catalog_post_ids(
    filters: BrowseFilters, common_topic: bool, _dialect: str
) -> Select[tuple[int]]:
    order = {
        "newest": (nulls_smallest(Post.published_on, descending=True), Post.id.desc()),
        "oldest": (nulls_smallest(Post.published_on, descending=False), Post.id.asc()),
        "shortest": (Post.reading_minutes.asc(), Post.id.asc()),
        "longest": (Post.reading_minutes.desc(), Post.id.desc()),
    }[filters.sort]
    return (
        select(Post.id)
        .where(
            *_filter_clauses(
                filters,
                common_topic=common_topic,
                walk_by_date=filters.sort in ("newest", "oldest"),
            )
        )
        .order_by(*order)
    )


def _filter_clauses(
    filters: BrowseFilters, *, common_topic: bool, walk_by_date: bool
) -> list[Any]:
    """The WHERE conditions for the catalog narrowed by `filters`."""
    clauses: list[Any] = [catalog_clause()]
    if filters.topic:
        topic_id = select(Topic.id).where(Topic.slug == filters.topic).scalar_subquery()
        if common_topic:
            clauses.append(
                select(post_topics.c.post_id)
                .where(post_topics.c.post_id == Post.id, post_topics.c.topic_id == topic_id)
                .exists()
            )
        else:
            clauses.append(
                Post.id.in_(
                    select(post_topics.c.post_id).where(post_topics.c.topic_id == topic_id)
                )
            )
    if filters.author:
        clauses.append(Post.author == filters.author)
    if filters.year:
        clauses.append(Post.published_on >= date(filters.year, 1, 1))
        clauses.append(Post.published_on < date(filters.year + 1, 1, 1))
    if filters.source:
        clauses.append(Post.source_id == filters.source)
    # A length bucket holds a third of the catalog: when the page is sorted by date,
    # walking the date index and skipping other lengths beats fetching the whole
    # bucket and sorting it; SQLite's planner has to be kept off the minutes index.
    minutes = unindexed(Post.reading_minutes) if walk_by_date else Post.reading_minutes
    if filters.length == "short":
        clauses.append(minutes < 5)
    elif filters.length == "medium":
        clauses.append(minutes.between(5, 10))
    elif filters.length == "long":
        clauses.append(minutes > 10)
    return clauses


@dataclass(frozen=True)
class Facet:
    value: str | int
    label: str
    count: int


@dataclass(frozen=True, eq=False)
class CatalogFacets:
    """What the catalog can be narrowed by, with shared-catalog post counts.
    Compared by identity: each recount is a new object."""

    total: int
    topics: list[Facet]
    lengths: list[Facet]
    years: list[Facet]
    sources: list[Facet]
    authors: list[Facet]

    def is_common_topic(self, slug: str) -> bool:
        """On at least 2 % of the catalog: common enough to find by walking in order."""
        count = next((f.count for f in self.topics if f.value == slug), 0)
        return count * 50 >= self.total > 0


TOP_VALUES = 6  # authors and sources listed in the sidebar: the most prolific ones
FACETS_CACHED = 256  # filter combinations whose counts a worker keeps
_facets_cache: OrderedDict[tuple[Any, ...], tuple[float, CatalogFacets]] = OrderedDict()


def catalog_facets(filters: BrowseFilters, max_age: float) -> CatalogFacets:
    """Facet values with counts over the shared catalog narrowed by `filters` (as in
    search, the counts are of the posts the reader is looking at).

    Counting groups costs tens of milliseconds at 100,000 posts, so each worker keeps
    the counts per filter combination until the catalog version changes (any write to
    the catalog, on any host: one primary-key read per request tells), and for at most
    `max_age` seconds in any case.
    """
    counted = BrowseFilters(
        topic=filters.topic,
        length=filters.length,
        author=filters.author,
        year=filters.year,
        source=filters.source,
    )
    key = (str(db.engine.url), version.for_page(), counted)
    now = time.monotonic()
    cached = _facets_cache.get(key)
    if cached and now - cached[0] < max_age:
        _facets_cache.move_to_end(key)
        return cached[1]
    facets = _count_facets(counted)
    _facets_cache[key] = (now, facets)
    _facets_cache.move_to_end(key)
    while len(_facets_cache) > FACETS_CACHED:
        _facets_cache.popitem(last=False)
    return facets


def _count_facets(filters: BrowseFilters) -> CatalogFacets:
    shared = and_(*_filter_clauses(filters, common_topic=False, walk_by_date=False))
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
        .limit(TOP_VALUES)
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
        .order_by(func.count(Post.id).desc(), Source.name)
        .limit(TOP_VALUES)
    ).all()
    bucket = case(
        (Post.reading_minutes < 5, "short"), (Post.reading_minutes <= 10, "medium"), else_="long"
    )
    lengths = dict(
        db.session.execute(
            select(bucket, func.count(Post.id)).where(shared).group_by(bucket)
        ).all()
    )
    total = sum(lengths.values())
    return CatalogFacets(
        total=total,
        lengths=[
            Facet(value, f"{label} ({hint})", lengths[value])
            for value, (label, hint) in LENGTHS.items()
            if lengths.get(value)
        ],
        topics=[Facet(slug, name, n) for slug, name, n in topics],
        authors=[Facet(name, name, n) for name, n in authors],
        years=[Facet(int(y), str(int(y)), n) for y, n in years],
        sources=[Facet(source_id, name, n) for source_id, name, n in sources],
    )


def facet_labels(facets: CatalogFacets, filters: BrowseFilters) -> dict[str, str]:
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

"""Reads of the catalog."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, case, func, select

from app.access import catalog_clause
from app.browse.filters import LENGTHS, BrowseFilters
from app.db import unindexed
from app.extensions import db
from app.models import Post, Source, Topic, post_topics


def catalog_posts(filters: BrowseFilters, *, common_topic: bool = False) -> Select[tuple[Post]]:
    """The catalog posts a reader can browse, filtered and sorted. (Articles readers
    added are not in the catalog: they live on their lists and in their searches.)

    `common_topic` picks the plan for the topic filter: for a topic on many posts,
    walk the sorted index and check each post (EXISTS) so the first page stops after
    a few dozen rows; for a rare topic, fetch its few posts first (IN) and sort them.
    """
    stmt = select(Post).where(catalog_clause())
    if filters.topic:
        topic_id = select(Topic.id).where(Topic.slug == filters.topic).scalar_subquery()
        if common_topic:
            stmt = stmt.where(
                select(post_topics.c.post_id)
                .where(post_topics.c.post_id == Post.id, post_topics.c.topic_id == topic_id)
                .exists()
            )
        else:
            stmt = stmt.where(
                Post.id.in_(
                    select(post_topics.c.post_id).where(post_topics.c.topic_id == topic_id)
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
    # A length bucket holds a third of the catalog: when the page is sorted by date,
    # walking the date index and skipping other lengths beats fetching the whole
    # bucket and sorting it; SQLite's planner has to be kept off the minutes index.
    minutes = (
        unindexed(Post.reading_minutes)
        if filters.sort in ("newest", "oldest")
        else Post.reading_minutes
    )
    if filters.length == "short":
        stmt = stmt.where(minutes < 5)
    elif filters.length == "medium":
        stmt = stmt.where(minutes.between(5, 10))
    elif filters.length == "long":
        stmt = stmt.where(minutes > 10)
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

"""Reads of the catalog."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, bindparam, case, func, select

from app.access import catalog_clause, visible_to
from app.browse.filters import LENGTHS, BrowseFilters
from app.catalog import version
from app.db import columns_of, nulls_smallest, plain_rows, unindexed
from app.extensions import db
from app.lists.queries import POST_ENTRY_COLUMNS, PostEntry, tags_of
from app.models import ContentKind, Entry, Post, Source, Topic, post_topics

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

# Kinds of content the reader view shows (a PDF stays a link to the original).
READER_KINDS = (ContentKind.ARTICLE.value, ContentKind.TEXT.value)


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


@dataclass(frozen=True, slots=True)
class PostTopic:
    id: int
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class PostPage:
    """A post as its own page shows it (browse/post.html), as plain values."""

    id: int
    title: str
    summary: str
    url: str | None
    author: str
    published_on: date | None
    reading_minutes: int
    word_count: int | None
    site_name: str
    content_kind: str | None
    fetch_state: str
    fetch_error: str
    fetched_at: datetime | None
    owner_id: int | None
    updated_at: datetime
    content: str | None  # the article's HTML, read only for the reader view's kinds
    source_name: str | None
    topics: tuple[PostTopic, ...]


# What a PostPage reads of the post, in its field order (source and topics aside).
_PAGE_COLUMNS = columns_of(Post, PostPage, leaving=("source_name", "topics"))


def post_page(user: Reader | None, post_id: int) -> tuple[PostPage, PostEntry | None] | None:
    """A post the reader may see and their entry for it, or None: the post, its source
    and the entry in one statement, its topics and the entry's tags in one more each.

    Who may see it is `access.visible_to`, with the reader's entry (joined anyway)
    standing for "they saved it".
    """
    reader_id = user.id if user is not None and user.is_authenticated else None
    row = plain_rows(_post_page(), {"post_id": post_id, "user_id": reader_id}).first()
    if row is None:
        return None
    topics = tuple(PostTopic(*topic) for topic in plain_rows(_post_topics(), {"post_id": post_id}))
    post = PostPage(*row[: len(_PAGE_COLUMNS)], source_name=row.source_name, topics=topics)
    if row.entry_id is None:
        return post, None
    entry_values = row[len(_PAGE_COLUMNS) + 1 :]
    tags = tags_of([row.entry_id]).get(row.entry_id, ())
    return post, PostEntry(*entry_values, post=post, tags=tags)


@cache
def _post_page() -> Select[Any]:
    content = case((Post.content_kind.in_(READER_KINDS), Post.content)).label("content")
    columns = [content if col.key == "content" else col for col in _PAGE_COLUMNS]
    reader_id = bindparam("user_id")
    mine = (Entry.post_id == Post.id) & (Entry.user_id == reader_id)
    return (
        select(
            *columns,
            Source.name.label("source_name"),
            *(col.label(f"entry_{col.key}") for col in POST_ENTRY_COLUMNS),
        )
        .select_from(Post)
        .outerjoin(Source, Source.id == Post.source_id)
        .outerjoin(Entry, mine)
        .where(Post.id == bindparam("post_id"), visible_to(reader_id, Entry.id.is_not(None)))
    )


@cache
def _post_topics() -> Select[tuple[int, str, str]]:
    return (
        select(Topic.id, Topic.slug, Topic.name)
        .join(post_topics, post_topics.c.topic_id == Topic.id)
        .where(post_topics.c.post_id == bindparam("post_id"))
        .order_by(Topic.slug)
    )

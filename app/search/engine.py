"""Search behind one small interface; an implementation per database.

Views call `search()` and `related_posts()`; each picks the engine for the database
in use: `app.search.sqlite.SQLiteSearch` (FTS5, migrations 0002 and 0005) or
`app.search.postgres.PostgresSearch` (tsvector and GIN, migration 0008). Both take
the query `parser.parse()` made and answer with the same `SearchResults`, by the same
rules: every group of words must match, excluded words and filters apply as the parser
documents, a reader sees the shared catalog plus the private posts they have an entry
for, an exact title comes first, then relevance over every match, ties newest first;
counts stop at COUNT_CAP, facets count the POOL most recently added matches.

This module holds what the engines share: the result types, the plan (filters
resolved against the database), highlighting, loading the posts of a page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import defer, selectinload

from app.catalog import version
from app.db import columns_of, plain_rows
from app.extensions import db
from app.kept import Kept
from app.models import Post, Source, Topic
from app.pagination import Page
from app.search.facets import Facets
from app.search.parser import Filter, Query

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

SORTS = {
    "relevance": "Best match",
    "newest": "Newest",
    "oldest": "Oldest",
    "shortest": "Shortest",
    "longest": "Longest",
}
POOL = 500  # matches counted for the facets per query
COUNT_CAP = 2000  # results counted before saying "2,000+"
# Related posts: a word in more posts than this doesn't make two posts related.
RELATED_MAX_DOCS = 200
RELATED_CHOICES_KEPT = 2048  # posts whose related-post words each worker keeps

# Highlight markers: private-use characters, turned into <mark> after escaping.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
SNIPPET_TOKENS = 30


@dataclass(frozen=True)
class Hit:
    """One result: the post's id, its summary with the matches marked, and whether its
    title is exactly what was searched for. A results page shows its cards
    (app/catalog/cards.py), so the post itself is read only when asked for."""

    post_id: int
    summary_html: Markup | None = None
    exact_title: bool = False

    @property
    def post(self) -> Post:
        """The post (one query each unless already loaded: not for a results page)."""
        post = db.session.get(Post, self.post_id)
        if post is None:
            raise LookupError(f"post {self.post_id} is gone")
        return post


@dataclass(frozen=True)
class SearchResults:
    query: Query
    sort: str  # the sort applied: without words to rank by, relevance means newest
    page: Page[Hit]
    total: int
    more: bool  # counting stopped at `total`: there are more
    facets: Facets
    notes: tuple[str, ...] = ()
    last_page: int = 1


class RelatedTo(Protocol):
    """What finding related posts reads of a post: a `Post`, or the plain row the post
    page reads (`app.browse.queries.PostPage`)."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def topics(self) -> Sequence[TopicOf]: ...


class TopicOf(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def slug(self) -> str: ...


class SearchEngine(Protocol):
    def search(
        self, query: Query, user: Reader | None, *, sort: str, page: int, per_page: int
    ) -> SearchResults: ...

    def related_posts(
        self, post: RelatedTo, user: Reader | None, limit: int
    ) -> list[RelatedPost]: ...


def search(
    query: Query,
    user: Reader | None,
    *,
    sort: str = "relevance",
    page: int = 1,
    per_page: int = 20,
) -> SearchResults:
    """Search the posts `user` may see (anonymous: the shared catalog)."""
    user = user if user is not None and user.is_authenticated else None
    sort = sort if sort in SORTS else "relevance"
    return _engine().search(query, user, sort=sort, page=max(page, 1), per_page=per_page)


def related_posts(
    post: RelatedTo, limit: int = 5, *, user: Reader | None = None
) -> list[RelatedPost]:
    """Posts sharing `post`'s rarest words and its topics, best first (never `post`).

    Without `user` only shared-catalog posts are considered.
    """
    user = user if user is not None and user.is_authenticated else None
    return _engine().related_posts(post, user, limit)


def related_words(
    choose: Callable[[Sequence[str]], list[str]], post_id: int, words: Sequence[str]
) -> list[str]:
    """`choose(words)`, an engine's pick of the rarest of a post's words to find its
    related posts by, kept per worker for this post, database and catalog version.
    The pick counts how many posts hold each word, over every post whoever may see
    it, so it is the same for every reader; it cost more than looking up the posts by
    the words picked (on PostgreSQL, 20 of a post page's 40 ms). Every write to posts
    (this one's words included) changes the catalog version, and with it the key."""
    key = (post_id, db.engine.url, version.for_page())
    chosen = _related_words.get(key)
    if chosen is None:
        chosen = tuple(choose(words))
        _related_words.put(key, chosen)
    return list(chosen)


_related_words: Kept[tuple[int, Any, str], tuple[str, ...]] = Kept(RELATED_CHOICES_KEPT)


def _engine() -> SearchEngine:
    """The implementation for the database in use (imported here: each imports this)."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "sqlite":
        from app.search.sqlite import SQLiteSearch

        return SQLiteSearch()
    if dialect == "postgresql":
        from app.search.postgres import PostgresSearch

        return PostgresSearch()
    raise NotImplementedError(f"no search engine for {dialect}")


# --- Shared by the implementations ---------------------------------------------------


@dataclass
class _Plan:
    """A query made concrete for one reader: filters resolved against the database."""

    query: Query
    user: Reader | None
    notes: list[str] = field(default_factory=list)
    impossible: bool = False  # a filter names nothing (topic:nosuch): no results
    topic_slugs: list[str] = field(default_factory=list)  # all of them (AND)
    excluded_topic_slugs: list[str] = field(default_factory=list)
    topic_ids: list[int] = field(default_factory=list)  # the same topics, by id
    excluded_topic_ids: list[int] = field(default_factory=list)
    source_ids: list[int] | None = None  # any of them; None = no source filter
    excluded_source_ids: list[int] = field(default_factory=list)
    years: tuple[int, int] | None = None  # the catalog's first and last year, if asked

    @property
    def has_text(self) -> bool:
        return bool(self.query.groups)


def _plan(query: Query, user: Reader | None) -> _Plan:
    notes = list(query.notes)
    if user is None and any(f.field == "is" for f in query.filters):
        query = query.without_states()
        notes.append("Sign in to filter by your reading list (is:saved, is:done…).")
    plan = _Plan(query=query, user=user, notes=notes)
    if any(f.field == "topic" for f in query.filters):
        # By slug or by name, any case; topics are few, so compare them here.
        by_value: dict[str, str] = {}
        ids: dict[str, int] = {}
        for topic_id, slug, name in db.session.execute(select(Topic.id, Topic.slug, Topic.name)):
            by_value.setdefault(name.casefold(), slug)
            by_value[slug.casefold()] = slug
            ids[slug] = topic_id
        for f in query.filters_for("topic"):
            slug = by_value.get(str(f.value).casefold())
            if slug is None:
                plan.impossible = True
                plan.notes.append(f"There is no topic “{f.value}”.")
            else:
                plan.topic_slugs.append(slug)
        plan.excluded_topic_slugs = [
            by_value[str(f.value).casefold()]
            for f in query.filters_for("topic", negated=True)
            if str(f.value).casefold() in by_value
        ]
        plan.topic_ids = [ids[slug] for slug in plan.topic_slugs]
        plan.excluded_topic_ids = [ids[slug] for slug in plan.excluded_topic_slugs]
    if query.filters_for("before") or query.filters_for("after"):
        # Two scalar subqueries: each is one index lookup, min() and max() together a scan.
        first, last = db.session.execute(
            select(
                select(func.min(Post.published_on)).scalar_subquery(),
                select(func.max(Post.published_on)).scalar_subquery(),
            )
        ).one()
        if first and last:
            plan.years = (first.year, last.year)
    names = [str(f.value) for f in query.filters if f.field == "source"]
    if names:
        sources = db.session.execute(select(Source.id, Source.name)).all()

        def ids_for(name: str) -> list[int]:
            exact = [i for i, n in sources if n.casefold() == name.casefold()]
            return exact or [i for i, n in sources if name.casefold() in n.casefold()]

        positive = query.filters_for("source")
        if positive:
            plan.source_ids = sorted({i for f in positive for i in ids_for(str(f.value))})
            if not plan.source_ids:
                plan.impossible = True
                plan.notes.append("No source is called " + _or_list(positive) + ".")
        plan.excluded_source_ids = sorted(
            {i for f in query.filters_for("source", negated=True) for i in ids_for(str(f.value))}
        )
    return plan


def _or_list(filters: Iterable[Filter]) -> str:
    return " or ".join(f"“{f.value_text}”" for f in filters)


def _marked(fragment: str) -> Markup:
    """Escape text from the index, then turn marker pairs into <mark> elements.

    Everything but the <mark> tags we add here goes through escape(), so the result
    is safe to mark as Markup; stray or unbalanced markers are dropped.
    """
    out: list[str] = []
    is_open = False
    for part in re.split(f"([{MARK_OPEN}{MARK_CLOSE}])", fragment):
        if part == MARK_OPEN:
            if not is_open:
                out.append("<mark>")
                is_open = True
        elif part == MARK_CLOSE:
            if is_open:
                out.append("</mark>")
                is_open = False
        else:
            out.append(str(escape(part)))
    if is_open:
        out.append("</mark>")
    return Markup("".join(out))  # noqa: S704 - built from escaped text and our own tags


@dataclass(frozen=True, slots=True)
class RelatedPost:
    """A related post as the post page lists it: its link and meta line."""

    id: int
    title: str
    author: str | None
    published_on: date | None
    reading_minutes: int | None


def related_rows(ids: Sequence[int]) -> list[RelatedPost]:
    """These posts as `RelatedPost`s, in this order: plain rows, one query."""
    if not ids:
        return []
    rows = plain_rows(select(*columns_of(Post, RelatedPost)).where(Post.id.in_(ids)))
    by_id = {row.id: RelatedPost(*row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def load_posts(ids: Sequence[int]) -> list[Post]:
    """The posts with these ids, in this order (topics loaded in one more query)."""
    if not ids:
        return []
    posts = db.session.scalars(
        select(Post)
        .where(Post.id.in_(ids))
        # Content can be a whole article of HTML, and no result list shows it.
        .options(selectinload(Post.topics), defer(Post.content), defer(Post.content_text))
    ).all()
    by_id = {post.id: post for post in posts}
    return [by_id[i] for i in ids if i in by_id]


def _empty(plan: _Plan, sort: str, page: int) -> SearchResults:
    return SearchResults(
        query=plan.query,
        sort=sort,
        page=Page(items=[], number=page, has_next=False),
        total=0,
        more=False,
        facets=Facets(),
        notes=tuple(plan.notes),
    )


_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "your",
        "you",
        "are",
        "how",
        "why",
        "what",
        "this",
        "that",
        "into",
        "about",
        "using",
        "use",
        "our",
        "their",
        "its",
        "was",
        "were",
        "will",
        "can",
        "not",
        "all",
        "new",
        "more",
        "than",
        "then",
        "when",
        "which",
        "who",
    ]
)


def _distinctive_words(text_: str) -> list[str]:
    """Candidate words of a post for 'related': distinct, 3+ letters, not stop words."""
    words = re.findall(r"[^\W_]{3,}", text_.casefold())
    return [w for w in dict.fromkeys(words) if w not in _STOP and not w.isdigit()]

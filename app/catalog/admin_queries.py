"""Reads for the catalog admin: catalog posts only (never readers' saved articles),
topics with their post counts, the demo catalog, the re-tagging job."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import abort
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import selectinload

from app.access import catalog_clause
from app.catalog.admin_forms import PostFilters
from app.catalog.importer import DEMO_SOURCE_NAME
from app.catalog.topics import builtin_keywords, vocabulary_seeded
from app.extensions import db
from app.models import Activity, Entry, JobRun, Post, Source, Topic, post_topics
from app.search.engine import related_posts

RETAG = "retag"


def find_catalog_post(post_id: int) -> Post | None:
    return db.session.scalar(select(Post).where(Post.id == post_id, catalog_clause()))


def catalog_post(post_id: int) -> Post:
    """A catalog post, or 404: a reader's saved article is not the catalog admin's."""
    post = find_catalog_post(post_id)
    if post is None:
        abort(404)
    return post


def _contains_words(q: str) -> list:
    """Each word of `q` in the title, the author or the URL (any case)."""
    return [
        or_(
            Post.title.icontains(word, autoescape=True),
            Post.author.icontains(word, autoescape=True),
            Post.url.icontains(word, autoescape=True),
        )
        for word in q.split()[:8]
    ]


def admin_posts(filters: PostFilters) -> Select[tuple[Post]]:
    """Catalog posts matching the filters, the most recently added first."""
    stmt = (
        select(Post)
        .where(catalog_clause(), *_contains_words(filters.q))
        .options(selectinload(Post.source))
    )
    if filters.source == "none":
        stmt = stmt.where(Post.source_id.is_(None))
    elif filters.source:
        stmt = stmt.where(Post.source_id == int(filters.source))
    tagged = select(post_topics.c.post_id).where(post_topics.c.post_id == Post.id)
    if filters.topic == "none":
        stmt = stmt.where(~tagged.exists())
    elif filters.topic:
        topic_id = select(Topic.id).where(Topic.slug == filters.topic).scalar_subquery()
        stmt = stmt.where(tagged.where(post_topics.c.topic_id == topic_id).exists())
    if filters.content == "yes":
        stmt = stmt.where(Post.content.is_not(None))
    elif filters.content == "no":
        stmt = stmt.where(Post.content.is_(None))
    return stmt.order_by(Post.id.desc())


@dataclass(frozen=True)
class PostStats:
    """Per post on a page of the list: readers who have it, whether it has content."""

    readers: dict[int, int]
    with_content: set[int]


def post_stats(post_ids: Iterable[int]) -> PostStats:
    """Two queries for the whole page, however many posts it shows."""
    ids = list(post_ids)
    if not ids:
        return PostStats({}, set())
    readers = dict(
        db.session.execute(
            select(Entry.post_id, func.count())
            .where(Entry.post_id.in_(ids))
            .group_by(Entry.post_id)
        ).all()
    )
    with_content = set(
        db.session.scalars(select(Post.id).where(Post.id.in_(ids), Post.content.is_not(None)))
    )
    return PostStats(readers, with_content)


def reader_count(post_id: int) -> int:
    """How many readers have the post on their list."""
    return db.session.scalar(select(func.count()).where(Entry.post_id == post_id)) or 0


def sources() -> list[tuple[int, str]]:
    rows = db.session.execute(select(Source.id, Source.name).order_by(Source.name))
    return [(source_id, name) for source_id, name in rows]


def all_topics() -> list[Topic]:
    return list(db.session.scalars(select(Topic).order_by(func.lower(Topic.name), Topic.slug)))


def find_topic(topic_id: int) -> Topic | None:
    return db.session.get(Topic, topic_id)


def topic(topic_id: int) -> Topic:
    found = find_topic(topic_id)
    if found is None:
        abort(404)
    return found


def topic_post_counts() -> dict[int, int]:
    """Catalog posts per topic id."""
    return dict(
        db.session.execute(
            select(post_topics.c.topic_id, func.count())
            .join(Post, Post.id == post_topics.c.post_id)
            .where(catalog_clause())
            .group_by(post_topics.c.topic_id)
        ).all()
    )


def effective_keywords(topic: Topic) -> str:
    """The keywords the tagger uses for a topic: its own, or, until the database holds
    the vocabulary, the built-in ones (app/catalog/topics.py)."""
    if vocabulary_seeded():
        return topic.keywords
    return topic.keywords or builtin_keywords(topic.slug)


@dataclass(frozen=True)
class MergePlan:
    """What merging `duplicate` into `survivor` will do, for the confirmation."""

    duplicate: Post
    survivor: Post
    moving: int  # entries that move over as they are
    both: int  # readers who have both posts: one entry each is kept
    activities: int
    new_topics: list[Topic]


def merge_plan(duplicate: Post, survivor: Post) -> MergePlan:
    readers_of_survivor = select(Entry.user_id).where(Entry.post_id == survivor.id)
    both = (
        db.session.scalar(
            select(func.count()).where(
                Entry.post_id == duplicate.id, Entry.user_id.in_(readers_of_survivor)
            )
        )
        or 0
    )
    moving = reader_count(duplicate.id) - both
    activities = (
        db.session.scalar(select(func.count()).where(Activity.post_id == duplicate.id)) or 0
    )
    have = {t.id for t in survivor.topics}
    return MergePlan(
        duplicate=duplicate,
        survivor=survivor,
        moving=moving,
        both=both,
        activities=activities,
        new_topics=[t for t in duplicate.topics if t.id not in have],
    )


def merge_candidates(duplicate: Post, q: str, limit: int = 20) -> list[Post]:
    """Catalog posts the duplicate could be merged into: those matching every word of
    `q`, or without `q` the posts most like it (the search engine's related posts)."""
    if not q.strip():
        return related_posts(duplicate, 8)  # catalog posts only: no reader given
    return list(
        db.session.scalars(
            select(Post)
            .where(catalog_clause(), Post.id != duplicate.id, *_contains_words(q))
            .order_by(Post.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class DemoCatalog:
    source_id: int
    posts: int
    entries: int
    readers: int


def demo_catalog() -> DemoCatalog | None:
    """The posts the demo loader made (its source), or None when there are none."""
    source_id = db.session.scalar(select(Source.id).where(Source.name == DEMO_SOURCE_NAME))
    if source_id is None:
        return None
    demo = and_(Post.source_id == source_id, catalog_clause())
    posts = db.session.scalar(select(func.count()).select_from(Post).where(demo)) or 0
    if not posts:
        return None
    entries, readers = db.session.execute(
        select(func.count(), func.count(func.distinct(Entry.user_id)))
        .select_from(Entry)
        .join(Post, Post.id == Entry.post_id)
        .where(demo)
    ).one()
    return DemoCatalog(source_id=source_id, posts=posts, entries=entries, readers=readers)


def latest_run(kind: str = RETAG) -> JobRun | None:
    return db.session.scalar(
        select(JobRun).where(JobRun.kind == kind).order_by(JobRun.id.desc()).limit(1)
    )


def job_run(run_id: int, kind: str = RETAG) -> JobRun:
    run = db.session.scalar(select(JobRun).where(JobRun.id == run_id, JobRun.kind == kind))
    if run is None:
        abort(404)
    return run

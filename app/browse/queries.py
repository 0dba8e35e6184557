"""Reads of the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select

from app.access import visible_posts_clause
from app.browse.filters import BrowseFilters
from app.extensions import db
from app.models import Post, Topic, User, post_topics

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


def topics_in_use() -> list[tuple[Topic, int]]:
    """Topics with their number of catalog posts, most used first."""
    count = func.count(post_topics.c.post_id)
    rows = db.session.execute(
        select(Topic, count)
        .join(post_topics, post_topics.c.topic_id == Topic.id)
        .group_by(Topic.id)
        .order_by(count.desc(), Topic.slug)
    ).all()
    return [(topic, n) for topic, n in rows]


def topic_by_slug(slug: str) -> Topic | None:
    return db.session.scalar(select(Topic).where(Topic.slug == slug))

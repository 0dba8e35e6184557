"""The data model: readers, the catalog and each reader's reading list."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from flask_login import UserMixin
from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db


def utcnow() -> datetime:
    """Naive UTC 'now', the one timestamp convention of the schema (SQLite has no tz)."""
    return datetime.now(UTC).replace(tzinfo=None)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    # Set by the user loader: the login session this request is authenticated by.
    session_token = None  # type: str | None  (plain attribute, not a column)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return not self.is_disabled

    def get_id(self) -> str | None:
        """Flask-Login keeps this in the session and remember cookies: the login
        session's token, not the user id, so ending that session revokes both."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class LoginSession(db.Model):
    """One signed-in browser. Deleting the row signs that browser out for real."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(300), default="")

    user: Mapped[User] = relationship()


post_topics = Table(
    "post_topics",
    db.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_post_topics_topic_id_post_id", "topic_id", "post_id"),
)


class Topic(db.Model):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))


class SourceKind(enum.StrEnum):
    FEED = "feed"
    LISTING = "listing"
    MANUAL = "manual"


class Source(db.Model):
    """Where catalog posts come from; remembers how its last refresh went."""

    __tablename__ = "sources"
    __table_args__ = (CheckConstraint("kind IN ('feed', 'listing', 'manual')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default=SourceKind.MANUAL.value)
    url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_refreshed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="new")
    last_error: Mapped[str] = mapped_column(Text, default="")


class Post(db.Model):
    """An article: in the shared catalog, or private to the reader who added it."""

    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint("reading_minutes >= 0", name="reading_minutes"),
        CheckConstraint("word_count >= 0", name="word_count"),
        # Browse walks these in order; owner_id rides along so the visibility check
        # needs no table lookup.
        Index("ix_posts_published_on_id_owner_id", "published_on", "id", "owner_id"),
        Index("ix_posts_reading_minutes_id_owner_id", "reading_minutes", "id", "owner_id"),
        # Private posts only: an index over the mostly-NULL column would lure SQLite
        # into fetching every shared post and sorting them for "owner_id IS NULL".
        Index(
            "ix_posts_owner_id",
            "owner_id",
            sqlite_where=text("owner_id IS NOT NULL"),
            postgresql_where=text("owner_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(2048), unique=True)
    author: Mapped[str] = mapped_column(String(200), default="", index=True)
    published_on: Mapped[date | None] = mapped_column(Date)
    reading_minutes: Mapped[int] = mapped_column(Integer, default=0)
    word_count: Mapped[int | None] = mapped_column(Integer)
    # Sanitized HTML from feeds; can be large and only the post page shows it.
    content: Mapped[str | None] = mapped_column(Text, deferred=True)
    # Identifies the same post arriving twice without a URL: normalized title + date.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    topics: Mapped[list[Topic]] = relationship(
        secondary=post_topics, order_by=Topic.slug, lazy="selectin"
    )
    source: Mapped[Source | None] = relationship()


class EntryState(enum.StrEnum):
    SAVED = "saved"
    READING = "reading"
    DONE = "done"
    ARCHIVED = "archived"


class Entry(db.Model):
    """A post on one reader's list, with where they are in it."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("user_id", "post_id", name="uq_entries_user_id_post_id"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        CheckConstraint("state IN ('saved', 'reading', 'done', 'archived')", name="state"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        Index("ix_entries_user_id_state_position", "user_id", "state", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=EntryState.SAVED.value)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    rating: Mapped[int | None] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    touched_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[Post] = relationship()

    @property
    def minutes_left(self) -> int:
        minutes = self.post.reading_minutes or 0
        return -(-minutes * (100 - self.progress) // 100)  # ceiling


class Activity(db.Model):
    """One progress change; reading statistics are derived from these rows."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_user_id_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    progress_from: Mapped[int] = mapped_column(Integer)
    progress_to: Mapped[int] = mapped_column(Integer)


class Setting(db.Model):
    """Site-wide settings an admin can change (registration mode) and first-run state."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class RateLimit(db.Model):
    """A Flask-Limiter counter (see app/ratelimit.py): shared by every worker."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(index=True)  # unix time

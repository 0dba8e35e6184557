"""The data model: readers, the catalog and each reader's reading list."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    # Two-factor sign-in (app/auth/twofactor.py): the TOTP secret (base32), when it was
    # turned on (None: off), the time step of the last code accepted (a code works
    # once), and the SHA-256 of each unused recovery code, one per line.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    two_factor_since: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_codes: Mapped[str] = mapped_column(Text, default="")

    # Set by the user loader: the login session this request is authenticated by.
    session_token = None  # type: str | None  (plain attribute, not a column)
    login_session_id = None  # type: int | None  (its row's id: "this browser")
    open_entries = None  # type: int | None  (counted when the session was checked)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return not self.is_disabled

    @property
    def two_factor_enabled(self) -> bool:
        return self.two_factor_since is not None and bool(self.totp_secret)

    def get_id(self) -> str | None:
        """Flask-Login keeps this in the session and remember cookies: the login
        session's token, not the user id, so ending that session revokes both."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class LoginSession(db.Model):
    """One signed-in browser. Deleting the row signs that browser out for real.

    It ends on its own too (app/auth/sessions.py): at `expires_at`, or once unused for
    longer than the idle limit of its kind ("remember me" or not). `last_seen_at` and
    `ip` are refreshed every few minutes of use, not on every request."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # the absolute end, however busy the session is
    remember: Mapped[bool] = mapped_column(default=False)  # "Keep me signed in"
    ip: Mapped[str] = mapped_column(String(45), default="")  # as of last_seen_at

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
    # Keyword patterns that put this topic on posts, one per line (admins edit them).
    keywords: Mapped[str] = mapped_column(Text, default="")


source_topics = Table(
    "source_topics",
    db.metadata,
    Column("source_id", ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
)


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
    # Feeds: the page the feed belongs to, what to do with entries, conditional GET.
    site_url: Mapped[str | None] = mapped_column(String(2048))
    fetch_full_articles: Mapped[bool] = mapped_column(default=False)
    etag: Mapped[str] = mapped_column(String(255), default="")
    last_modified: Mapped[str] = mapped_column(String(255), default="")
    last_success_at: Mapped[datetime | None]
    next_refresh_at: Mapped[datetime | None] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, for back-off
    posts_created: Mapped[int] = mapped_column(Integer, default=0)
    posts_updated: Mapped[int] = mapped_column(Integer, default=0)
    refresh_claimed_at: Mapped[datetime | None]  # a worker's lease on a refresh

    topics: Mapped[list[Topic]] = relationship(secondary=source_topics, order_by=Topic.slug)


class FetchState(enum.StrEnum):
    """Where a post's article stands: never asked for, queued, stored, or given up on."""

    NONE = "none"
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class ContentKind(enum.StrEnum):
    ARTICLE = "article"  # HTML with main content, shown in the reader view
    TEXT = "text"  # a plain-text document, shown as text
    PDF = "pdf"  # kept as a link with its title


class Post(db.Model):
    """An article: in the shared catalog, or private to the readers who saved it.

    `owner_id` is NULL for catalog posts; for an article a reader added it is the
    reader who added it first. Other readers who save the same URL share the post
    (it is fetched once) and see it through their own entry (see app/access.py).
    """

    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint("reading_minutes >= 0", name="reading_minutes"),
        CheckConstraint("word_count >= 0", name="word_count"),
        CheckConstraint(
            "fetch_state IN ('none', 'pending', 'done', 'failed')", name="fetch_state"
        ),
        CheckConstraint(
            "content_kind IS NULL OR content_kind IN ('article', 'text', 'pdf')",
            name="content_kind",
        ),
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
        # A feed entry is matched to the post it made by its guid, per source.
        Index(
            "uq_posts_source_id_guid",
            "source_id",
            "guid",
            unique=True,
            sqlite_where=text("guid IS NOT NULL"),
            postgresql_where=text("guid IS NOT NULL"),
        ),
        # The fetch sweeper's queue: only the few posts waiting for their article.
        Index(
            "ix_posts_fetch_pending",
            "fetch_claimed_at",
            sqlite_where=text("fetch_state = 'pending'"),
            postgresql_where=text("fetch_state = 'pending'"),
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
    site_name: Mapped[str] = mapped_column(String(200), default="")
    image_url: Mapped[str | None] = mapped_column(String(2048))
    # Sanitized HTML (feeds, fetching, imports); large, and only the reader view shows it.
    content: Mapped[str | None] = mapped_column(Text, deferred=True)
    # Its plain text: what the search index reads (never the HTML).
    content_text: Mapped[str | None] = mapped_column(Text, deferred=True)
    content_kind: Mapped[str | None] = mapped_column(String(10))
    # Background fetching of the article (app/catalog/fetch.py).
    fetch_state: Mapped[str] = mapped_column(String(10), default=FetchState.NONE.value)
    fetch_error: Mapped[str] = mapped_column(Text, default="")
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0)
    fetch_claimed_at: Mapped[datetime | None]  # a worker's lease on the fetch
    fetched_at: Mapped[datetime | None]
    # Identifies the same post arriving twice without a URL: normalized title + date.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    guid: Mapped[str | None] = mapped_column(String(1024))  # a feed entry's id
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


class EntryDisplay:
    """What a list row shows of an entry, for an `Entry` and for the list's plain
    `ListRow` (app/lists/queries.py) alike."""

    __slots__ = ()
    if TYPE_CHECKING:
        title: str
        progress: int
        post: Any  # a Post, or the list row's ListPost

    @property
    def display_title(self) -> str:
        return self.title or self.post.title

    @property
    def minutes_left(self) -> int:
        """Reading time left at this progress, rounded up."""
        return -(-(self.post.reading_minutes or 0) * (100 - self.progress) // 100)


class Entry(EntryDisplay, db.Model):
    """A post on one reader's list, with where they are in it."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("user_id", "post_id", name="uq_entries_user_id_post_id"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        CheckConstraint("state IN ('saved', 'reading', 'done', 'archived')", name="state"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("resume_position BETWEEN 0 AND 1000", name="resume_position"),
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
    # Where the reader view reopens, in thousandths of the article's length. Unlike
    # progress it moves back when the reader scrolls up to re-read.
    resume_position: Mapped[int] = mapped_column(Integer, default=0)
    # The reader's own title for a page they added ("" for the post's own): kept on
    # the entry so readers who save the same page never see each other's words.
    title: Mapped[str] = mapped_column(String(500), default="")

    # The import (a job_runs id) that created the entry, so a failed import can be
    # undone whole. No foreign key: SQLite can only add one by rebuilding the table,
    # which would drop its full-text triggers.
    import_run_id: Mapped[int | None] = mapped_column(index=True)

    post: Mapped[Post] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary="entry_tags", order_by="Tag.name")


entry_tags = Table(
    "entry_tags",
    db.metadata,
    Column("entry_id", ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_entry_tags_tag_id_entry_id", "tag_id", "entry_id"),
)


class Tag(db.Model):
    """A reader's own label on their entries (unlike topics, nobody else sees it)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_tags_user_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))  # stored lower-cased, trimmed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Upload(db.Model):
    """A file a reader uploaded to import, kept until its import job has run (in the
    database, so any worker on any host can read it)."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    format: Mapped[str] = mapped_column(String(30), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    options: Mapped[str] = mapped_column(Text, default="")  # JSON: the reader's choices
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UploadPiece(db.Model):
    """A megabyte of an uploaded file, in order: storing or reading the file takes one
    piece at a time (migration 0013; `Upload.data` holds only older uploads)."""

    __tablename__ = "upload_pieces"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


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


class Invite(db.Model):
    """A single-use sign-up link an admin made; only its token's hash is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    is_admin: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]


class PasswordReset(db.Model):
    """A one-time password reset link; only its token's hash is stored."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AuditEvent(db.Model):
    """Who did what, to what, when and from where (see app/audit.py)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_email: Mapped[str] = mapped_column(String(254), default="")  # kept after deletion
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(45), default="")


class JobRun(db.Model):
    """A long job a person started and watches (refresh all, re-tag, an import): its
    progress, and a cursor so a job that a dead worker dropped resumes where it was."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    cursor: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class PeriodicRun(db.Model):
    """A periodic task's run for one period, claimed by the first worker on any host to
    start it (see app/jobs.py); the copies other hosts' schedulers queued see it and
    skip. Claims older than two days are deleted as new ones are made."""

    __tablename__ = "periodic_runs"

    task: Mapped[str] = mapped_column(String(200), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str] = mapped_column(String(200), default="")  # host:pid

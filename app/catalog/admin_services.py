"""Writes on the catalog by an admin. Each function takes the acting admin, owns one
short transaction, and records an audit event in that same transaction, so the
change and its record commit together or not at all.

Only catalog posts are touched (`owner_id IS NULL`); a reader's saved article is a
LookupError here, a 404 in the views. Search follows every change by itself: the
full-text index is kept by triggers on posts, post_topics and topics. The browse
sidebar's counts follow by the catalog version (app/catalog/version.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError

from app import audit
from app.access import catalog_clause
from app.catalog import fetch as fetch_service
from app.catalog.importer import DEMO_REMOVED_KEY, DEMO_SOURCE_NAME
from app.catalog.topics import keyword_lines, seed_vocabulary
from app.db import write_transaction
from app.extensions import db
from app.lists.services import state_for_progress
from app.models import (
    Activity,
    Entry,
    EntryState,
    FetchState,
    JobRun,
    Post,
    Setting,
    Source,
    Topic,
    post_topics,
    source_topics,
    utcnow,
)

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

RETAG = "retag"


class CatalogError(ValueError):
    """An admin's change that can't be made, with the form field it is about."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _catalog_post(post_id: int) -> Post:
    post = db.session.scalar(select(Post).where(Post.id == post_id, catalog_clause()))
    if post is None:
        raise LookupError(post_id)
    return post


def _label(post: Post) -> str:
    return f"post {post.id}: {post.title}"


# --- posts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostChanges:
    title: str
    summary: str
    author: str
    published_on: date | None
    url: str | None  # normalised already (app.urls.normalize_url)
    topic_ids: list[int]


def update_post(actor: Reader, post_id: int, changes: PostChanges) -> list[str]:
    """Save a catalog post's fields; returns the names of the fields that changed.

    The dedupe key stays as it was, so a re-import of the listing the post came from
    still recognises it after its title or date was corrected.
    """
    try:
        with write_transaction():
            post = _catalog_post(post_id)
            if changes.url and changes.url != post.url:
                _check_url_free(changes.url, post.id)
            changed = [
                name
                for name in ("title", "summary", "author", "published_on", "url")
                if getattr(post, name) != getattr(changes, name)
            ]
            for name in changed:
                setattr(post, name, getattr(changes, name))
            wanted = set(changes.topic_ids)
            if wanted != {topic.id for topic in post.topics}:
                topics = db.session.scalars(select(Topic).where(Topic.id.in_(wanted))).all()
                post.topics = sorted(topics, key=lambda t: t.slug)
                changed.append("topics")
            if changed:
                audit.record(
                    "post.edit",
                    target=_label(post),
                    detail="changed " + ", ".join(changed),
                    actor=actor,
                )
    except IntegrityError as error:  # another request took the URL meanwhile
        raise CatalogError("Another post already has this address.", "url") from error
    return changed


def _check_url_free(url: str, post_id: int) -> None:
    other = db.session.execute(
        select(Post.id, Post.owner_id).where(Post.url == url, Post.id != post_id)
    ).first()
    if other is None:
        return
    if other.owner_id is None:
        raise CatalogError(
            f"Post {other.id} already has this address. If they are the same article, "
            "merge one into the other instead.",
            "url",
        )
    raise CatalogError(
        "A reader's saved article already has this address; each address can belong "
        "to one post only.",
        "url",
    )


@dataclass(frozen=True)
class Refetch:
    queued: bool
    message: str


def refetch_post(actor: Reader, post_id: int) -> Refetch:
    """Fetch a post's article again, whatever came of the last fetch. The caller
    enqueues `app.catalog.tasks.fetch_article` when `queued` (after this commits)."""
    with write_transaction():
        post = _catalog_post(post_id)
        if not post.url:
            return Refetch(False, "This post has no address to fetch its article from.")
        if post.fetch_state == FetchState.PENDING.value:
            return Refetch(False, "Its article is being fetched already.")
        post.fetch_state = FetchState.NONE.value
        queued = fetch_service.request_fetch(post)
        audit.record("post.refetch", target=_label(post), actor=actor)
    return Refetch(queued, "Fetching the article again." if queued else "Nothing to fetch.")


@dataclass(frozen=True)
class Deleted:
    title: str
    entries: int


def delete_post(actor: Reader, post_id: int) -> Deleted:
    """Delete a catalog post with every reader's entry for it (and its activity)."""
    with write_transaction():
        post = _catalog_post(post_id)
        entries = db.session.scalar(select(func.count()).where(Entry.post_id == post.id)) or 0
        audit.record(
            "post.delete",
            target=_label(post),
            detail=f"{entries} list {'entry' if entries == 1 else 'entries'} removed",
            actor=actor,
        )
        title = post.title
        db.session.delete(post)  # entries and activity go by ON DELETE CASCADE
    return Deleted(title, entries)


@dataclass(frozen=True)
class Merged:
    survivor_id: int
    duplicate_title: str
    moved: int  # entries that moved over as they were
    combined: int  # readers who had both: their two entries became one
    activities: int


def merge_posts(actor: Reader, duplicate_id: int, survivor_id: int) -> Merged:
    """Merge a duplicate into the post that stays, then delete the duplicate.

    Readers' entries move to the survivor. A reader who has both keeps one entry,
    the survivor's row (so the unique reader-post pair never clashes), carrying the
    further progress and its reading position, done when either was done, the earlier
    added date, both notes. Activity rows move, topics are united, and fields the
    survivor lacks (address, summary, author, date, article) come from the duplicate.
    """
    if duplicate_id == survivor_id:
        raise CatalogError("A post can't be merged into itself.", "into")
    with write_transaction():
        duplicate = _catalog_post(duplicate_id)
        try:
            survivor = _catalog_post(survivor_id)
        except LookupError as error:
            raise CatalogError("Choose a catalog post to keep.", "into") from error
        moved, combined = _move_entries(duplicate.id, survivor.id)
        activities = db.session.execute(
            update(Activity)
            .where(Activity.post_id == duplicate.id)
            .values(post_id=survivor.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        have = {topic.id for topic in survivor.topics}
        extra = [topic for topic in duplicate.topics if topic.id not in have]
        if extra:
            survivor.topics = sorted([*survivor.topics, *extra], key=lambda t: t.slug)
        inherited = _inheritance(duplicate, survivor)
        title = duplicate.title
        audit.record(
            "post.merge",
            target=f"post {duplicate.id} into {_label(survivor)}",
            detail=(
                f"merged “{title}”: {moved} entries moved, {combined} combined, "
                f"{activities} activity rows moved"
            ),
            actor=actor,
        )
        db.session.delete(duplicate)
        db.session.flush()  # the duplicate's URL and guid are free from here
        for name, value in inherited.items():
            setattr(survivor, name, value)
    return Merged(survivor.id, title, moved, combined, activities)


def _move_entries(duplicate_id: int, survivor_id: int) -> tuple[int, int]:
    """Move the duplicate's entries; combine each reader's two entries into one."""
    theirs = db.session.scalars(select(Entry).where(Entry.post_id == duplicate_id)).all()
    ours = {
        entry.user_id: entry
        for entry in db.session.scalars(
            select(Entry).where(
                Entry.post_id == survivor_id,
                Entry.user_id.in_([entry.user_id for entry in theirs]),
            )
        )
    }
    combined = 0
    for entry in theirs:
        kept = ours.get(entry.user_id)
        if kept is None:
            continue
        _combine(kept, entry)
        db.session.delete(entry)
        combined += 1
    db.session.flush()  # the doubles are gone before the rest change post
    moved = db.session.execute(
        update(Entry)
        .where(Entry.post_id == duplicate_id)
        .values(post_id=survivor_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    return moved, combined


def _earliest(*values: datetime | None) -> datetime | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _combine(kept: Entry, other: Entry) -> None:
    """One reader's two entries for the same article, as one (written into `kept`)."""
    further = other if other.progress > kept.progress else kept
    states = {kept.state, other.state}
    progress = max(kept.progress, other.progress)
    if EntryState.DONE.value in states:
        state = EntryState.DONE.value
    elif states == {EntryState.ARCHIVED.value}:
        state = EntryState.ARCHIVED.value
    else:
        state = state_for_progress(progress)
    first = other if other.added_at < kept.added_at else kept
    notes = [note for note in (first.note, (other if first is kept else kept).note) if note]
    kept.progress = progress
    kept.state = state
    kept.resume_position = further.resume_position
    kept.position = first.position
    kept.added_at = first.added_at
    kept.started_at = _earliest(kept.started_at, other.started_at) if progress > 0 else None
    kept.finished_at = (
        _earliest(kept.finished_at, other.finished_at) or utcnow()
        if state == EntryState.DONE.value
        else None
    )
    kept.touched_at = max(kept.touched_at, other.touched_at)
    kept.note = "\n\n".join(dict.fromkeys(notes))  # both, once each
    kept.rating = further.rating or kept.rating or other.rating
    kept.title = kept.title or other.title


def _inheritance(duplicate: Post, survivor: Post) -> dict[str, object]:
    """What the survivor takes from the duplicate: the fields it lacks."""
    values: dict[str, object] = {}
    for name in ("url", "summary", "author", "published_on", "site_name", "image_url"):
        if not getattr(survivor, name) and getattr(duplicate, name):
            values[name] = getattr(duplicate, name)
    if survivor.guid is None and duplicate.guid and survivor.source_id == duplicate.source_id:
        values["guid"] = duplicate.guid  # the feed's entry keeps matching a post
    if survivor.content is None and duplicate.content is not None:
        for name in (
            "content",
            "content_text",
            "content_kind",
            "word_count",
            "reading_minutes",
            "fetch_state",
            "fetched_at",
        ):
            values[name] = getattr(duplicate, name)
    elif not survivor.reading_minutes and duplicate.reading_minutes:
        values["reading_minutes"] = duplicate.reading_minutes
        values["word_count"] = duplicate.word_count
    return values


# --- topics --------------------------------------------------------------------------


def _check_slug_free(slug: str, topic_id: int | None) -> None:
    """Slugs must differ in more than hyphens: search indexes "web-dev" as "webdev"."""
    squashed = slug.replace("-", "")
    for other_id, other_slug in db.session.execute(select(Topic.id, Topic.slug)):
        if other_id == topic_id:
            continue
        if other_slug == slug:
            raise CatalogError(f"Another topic already has the slug “{slug}”.", "slug")
        if other_slug.replace("-", "") == squashed:
            raise CatalogError(
                f"Too close to the slug “{other_slug}”: search can't tell them apart.", "slug"
            )


def create_topic(actor: Reader, name: str, slug: str, keywords: str) -> Topic:
    with write_transaction():
        seed_vocabulary()
        _check_slug_free(slug, None)
        topic = Topic(name=name, slug=slug, keywords="\n".join(keyword_lines(keywords)))
        db.session.add(topic)
        db.session.flush()
        audit.record("topic.create", target=f"topic {slug}", detail=name, actor=actor)
    return topic


def update_topic(actor: Reader, topic_id: int, name: str, slug: str, keywords: str) -> list[str]:
    """Rename a topic or change its keywords; returns the names of what changed. A new
    name or slug reaches the search index through its trigger."""
    with write_transaction():
        seed_vocabulary()
        topic = db.session.get(Topic, topic_id)
        if topic is None:
            raise LookupError(topic_id)
        _check_slug_free(slug, topic.id)
        before = topic.slug
        new = {"name": name, "slug": slug, "keywords": "\n".join(keyword_lines(keywords))}
        changed = [field for field, value in new.items() if getattr(topic, field) != value]
        for field in changed:
            setattr(topic, field, new[field])
        if changed:
            detail = ", ".join(changed)
            if "slug" in changed:
                detail += f" (slug was {before})"
            audit.record("topic.edit", target=f"topic {topic.slug}", detail=detail, actor=actor)
    return changed


@dataclass(frozen=True)
class TopicMerge:
    source_name: str
    target_name: str
    posts: int  # posts that were tagged with the merged topic


def merge_topics(actor: Reader, topic_id: int, into_id: int) -> TopicMerge:
    """Give the posts of one topic the other, add its keywords to the other's, and
    delete it (its own post_topics rows go by cascade, reindexing those posts)."""
    if topic_id == into_id:
        raise CatalogError("Choose two different topics.", "into")
    with write_transaction():
        seed_vocabulary()
        source = db.session.get(Topic, topic_id)
        target = db.session.get(Topic, into_id)
        if source is None or target is None:
            raise LookupError(topic_id if source is None else into_id)
        posts = (
            db.session.scalar(select(func.count()).where(post_topics.c.topic_id == source.id)) or 0
        )
        has_target = select(post_topics.c.post_id).where(post_topics.c.topic_id == target.id)
        db.session.execute(
            post_topics.insert().from_select(
                ["post_id", "topic_id"],
                select(post_topics.c.post_id, literal(target.id)).where(
                    post_topics.c.topic_id == source.id, post_topics.c.post_id.not_in(has_target)
                ),
            )
        )
        # Sources that put the merged topic on their posts put the other one on now.
        sources_with_target = select(source_topics.c.source_id).where(
            source_topics.c.topic_id == target.id
        )
        db.session.execute(
            source_topics.insert().from_select(
                ["source_id", "topic_id"],
                select(source_topics.c.source_id, literal(target.id)).where(
                    source_topics.c.topic_id == source.id,
                    source_topics.c.source_id.not_in(sources_with_target),
                ),
            )
        )
        lines = keyword_lines(target.keywords)
        target.keywords = "\n".join(dict.fromkeys([*lines, *keyword_lines(source.keywords)]))
        audit.record(
            "topic.merge",
            target=f"topic {source.slug} into {target.slug}",
            detail=f"{posts} posts",
            actor=actor,
        )
        merged = TopicMerge(source.name, target.name, posts)
        db.session.execute(delete(Topic).where(Topic.id == source.id))
    db.session.expire_all()  # posts' topic collections changed underneath the ORM
    return merged


# --- re-tagging and the demo ---------------------------------------------------------


def start_retag(actor: Reader) -> tuple[JobRun, bool]:
    """Start re-tagging the whole catalog in the background; returns the run and
    whether it is new (a run already queued or running is returned instead). The
    caller enqueues `admin_tasks.retag_catalog(run.id)` for a new run."""
    with write_transaction():
        seed_vocabulary()
        running = db.session.scalar(
            select(JobRun)
            .where(JobRun.kind == RETAG, JobRun.status.in_(("queued", "running")))
            .order_by(JobRun.id.desc())
            .limit(1)
        )
        if running is not None:
            return running, False
        total = db.session.scalar(select(func.count()).select_from(Post).where(catalog_clause()))
        run = JobRun(
            kind=RETAG,
            status="queued",
            total=total or 0,
            done=0,
            cursor="0",
            message="",
            created_by_id=actor.id,
        )
        db.session.add(run)
        db.session.flush()
        audit.record("topic.retag", target=f"job {run.id}", detail=f"{total} posts", actor=actor)
    return run, True


@dataclass(frozen=True)
class RemovedDemo:
    posts: int
    entries: int


def remove_demo_catalog(actor: Reader) -> RemovedDemo:
    """Delete the posts the demo loader made (its source, "Dogear demo catalog"),
    readers' entries for them, and the source itself; the demo never loads again."""
    with write_transaction():
        source = db.session.scalar(select(Source).where(Source.name == DEMO_SOURCE_NAME))
        if source is None:
            return RemovedDemo(0, 0)
        demo = select(Post.id).where(Post.source_id == source.id, catalog_clause())
        entries = db.session.scalar(select(func.count()).where(Entry.post_id.in_(demo))) or 0
        posts = db.session.execute(
            delete(Post).where(Post.id.in_(demo)).execution_options(synchronize_session=False)
        ).rowcount
        if not db.session.scalar(select(func.count()).where(Post.source_id == source.id)):
            db.session.delete(source)
        # `dogear posts load-demo` (run by `make run`) fills an empty catalog: not again.
        db.session.merge(Setting(key=DEMO_REMOVED_KEY, value="1"))
        audit.record(
            "catalog.remove_demo",
            target=DEMO_SOURCE_NAME,
            detail=f"{posts} posts and {entries} list entries deleted",
            actor=actor,
        )
    db.session.expire_all()
    return RemovedDemo(posts, entries)

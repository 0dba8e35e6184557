"""Fetching a post's article in the background: claim it, fetch, extract, store.

A fetch runs in the job worker, never in a web request. Each step is a short
transaction of its own; the network wait happens outside any transaction. A worker
claims the post with a lease (`fetch_claimed_at`) before it fetches, and stores the
result only while its claim still holds, so a job that is run twice (requeued after
a crash, or enqueued twice) writes its result once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from app.articles import Article, NotAnArticle, read_document
from app.db import write_transaction
from app.extensions import db
from app.fetching import FetchError, fetch, policy_from_config
from app.models import ContentKind, FetchState, Post, utcnow

log = logging.getLogger(__name__)

# Worth another try later: the site may answer next time.
RETRYABLE = {"timeout", "connection", "dns"}
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class FetchOutcome:
    """What one run of the job did: `stored`, `failed`, `retry` or `skipped`."""

    result: str
    message: str = ""


def placeholder_title(url: str) -> str:
    """The title an article has until its page is read: the address without scheme."""
    return url.split("://", 1)[-1].removeprefix("www.").rstrip("/")[:500]


def request_fetch(post: Post) -> bool:
    """Mark a post's article as wanted (in the caller's transaction). True when a job
    should be queued: the post has a URL and no article yet, nor a fetch under way."""
    if not post.url or post.fetch_state in (FetchState.PENDING.value, FetchState.DONE.value):
        return False
    post.fetch_state = FetchState.PENDING.value
    post.fetch_error = ""
    post.fetch_attempts = 0
    post.fetch_claimed_at = None
    return True


def claim(post_id: int, lease: timedelta) -> datetime | None:
    """Take the post's fetch for this worker; None when it is done, failed or held by
    a live lease (another worker is on it)."""
    now = utcnow()
    with write_transaction():
        claimed = db.session.execute(
            update(Post)
            .where(
                Post.id == post_id,
                Post.fetch_state == FetchState.PENDING.value,
                or_(Post.fetch_claimed_at.is_(None), Post.fetch_claimed_at < now - lease),
            )
            .values(fetch_claimed_at=now, fetch_attempts=Post.fetch_attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
    return now if claimed else None


def fetch_post(post_id: int) -> FetchOutcome:
    """Fetch and store one post's article (the job's body)."""
    config = current_app.config
    claimed_at = claim(post_id, timedelta(seconds=config["FETCH_LEASE_SECONDS"]))
    if claimed_at is None:
        return FetchOutcome("skipped")
    url, attempts = db.session.execute(
        select(Post.url, Post.fetch_attempts).where(Post.id == post_id)
    ).one()
    db.session.commit()  # no transaction stays open across the network wait
    try:
        response = fetch(url, policy_from_config(config))
        article = read_document(
            response.body,
            url=response.url,
            content_type=response.content_type,
            charset=response.charset,
        )
    except FetchError as error:
        retry = error.code in RETRYABLE or error.status in RETRYABLE_STATUS
        if retry and attempts < config["FETCH_MAX_ATTEMPTS"]:
            _release(post_id, claimed_at, str(error))
            return FetchOutcome("retry", str(error))
        _fail(post_id, claimed_at, str(error))
        return FetchOutcome("failed", str(error))
    except NotAnArticle as error:
        _fail(post_id, claimed_at, str(error))
        return FetchOutcome("failed", str(error))
    except Exception:
        log.exception("Reading the article of post %s failed", post_id)
        _fail(post_id, claimed_at, "Dogear could not read this page")
        return FetchOutcome("failed", "Dogear could not read this page")
    stored = _store(post_id, claimed_at, article)
    return FetchOutcome("stored" if stored else "skipped")


def _still_ours(post_id: int, claimed_at: datetime) -> list:
    return [
        Post.id == post_id,
        Post.fetch_state == FetchState.PENDING.value,
        Post.fetch_claimed_at == claimed_at,
    ]


def _store(post_id: int, claimed_at: datetime, article: Article) -> bool:
    """Write the article in one short transaction, if the claim is still ours."""
    with write_transaction():
        post = db.session.scalar(select(Post).where(*_still_ours(post_id, claimed_at)))
        if post is None:
            return False
        if article.title and post.title == placeholder_title(post.url or ""):
            post.title = article.title[:500]
        if article.summary and not post.summary:
            post.summary = article.summary
        if article.author and not post.author:
            post.author = article.author[:200]
        if article.published_on and not post.published_on:
            post.published_on = article.published_on
        post.site_name = article.site_name[:200]
        post.image_url = article.image_url[:2048] if article.image_url else None
        post.content_kind = article.kind
        post.content = article.content_html or None
        post.content_text = article.text or None
        if article.kind != ContentKind.PDF.value:
            post.word_count = article.word_count
            post.reading_minutes = article.reading_minutes
        post.fetch_state = FetchState.DONE.value
        post.fetch_error = ""
        post.fetch_claimed_at = None
        post.fetched_at = utcnow()
    return True


def _fail(post_id: int, claimed_at: datetime, reason: str) -> None:
    with write_transaction():
        db.session.execute(
            update(Post)
            .where(*_still_ours(post_id, claimed_at))
            .values(
                fetch_state=FetchState.FAILED.value,
                fetch_error=reason[:500],
                fetch_claimed_at=None,
                fetched_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )


def _release(post_id: int, claimed_at: datetime, reason: str) -> None:
    """Give the claim back so a later attempt can take it; keep the reason to show."""
    with write_transaction():
        db.session.execute(
            update(Post)
            .where(*_still_ours(post_id, claimed_at))
            .values(fetch_claimed_at=None, fetch_error=reason[:500])
            .execution_options(synchronize_session=False)
        )


def stalled_fetches(older_than: timedelta, lease: timedelta, limit: int = 500) -> list[int]:
    """Pending posts nobody is working on: never picked up for `older_than`, or whose
    worker's lease ran out (the worker died)."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(Post.id)
            .where(
                Post.fetch_state == FetchState.PENDING.value,
                or_(
                    Post.fetch_claimed_at < now - lease,
                    (Post.fetch_claimed_at.is_(None)) & (Post.updated_at < now - older_than),
                ),
            )
            .order_by(Post.id)
            .limit(limit)
        )
    )


def retry_fetch(post: Post) -> bool:
    """Ask for a failed article again (the reader's Retry button), in the caller's
    transaction. True when a job should be queued."""
    if post.fetch_state != FetchState.FAILED.value:
        return False
    post.fetch_state = FetchState.NONE.value
    return request_fetch(post)

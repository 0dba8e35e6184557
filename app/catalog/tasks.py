"""Background tasks of the catalog: fetching articles, and putting back fetches that a
dead worker dropped."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from huey import crontab

from app.catalog import fetch
from app.jobs import job, periodic


@job()
def fetch_article(post_id: int) -> str:
    """Fetch one post's article; a retryable failure comes back later by itself."""
    outcome = fetch.fetch_post(post_id)
    if outcome.result == "retry":
        fetch_article.schedule((post_id,), delay=current_app.config["FETCH_RETRY_DELAY"])
    return outcome.result


@periodic(crontab(minute="*"))
def requeue_stalled() -> int:
    """Every minute: put back fetches a dead worker dropped."""
    return requeue_stalled_fetches()


def requeue_stalled_fetches() -> int:
    """Queue again every pending fetch that nobody is working on (also run when the
    worker starts)."""
    config = current_app.config
    lease = timedelta(seconds=config["FETCH_LEASE_SECONDS"])
    older_than = timedelta(seconds=config["FETCH_RETRY_DELAY"] * 2)
    post_ids = fetch.stalled_fetches(older_than, lease)
    for post_id in post_ids:
        fetch_article(post_id)
    return len(post_ids)

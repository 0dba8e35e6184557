"""Refreshing one source: the refresh job's body, in the same shape as an article
fetch (app/catalog/fetch.py):

    claim the source (a lease in `refresh_claimed_at`, one short transaction)
    fetch through the guarded client, with If-None-Match / If-Modified-Since,
        no transaction open
    parse and sanitize every entry (entries.py), no transaction open
    write SOURCES_BATCH_SIZE entries per short transaction (entries.py), each renewing
        the lease and stopping if another worker took it over
    finish: status, counters, next refresh (later and later while it keeps failing)

It runs in the job worker (tasks.py) or `dogear sources refresh`, never in a web
request. When sources come due, and refreshing them all, live in schedule.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update

from app.db import write_transaction
from app.extensions import db
from app.fetching import FetchError, fetch, policy_from_config
from app.models import Source, SourceKind, utcnow
from app.sources import feeds
from app.sources.common import FEED_ACCEPT, REFRESHABLE_KINDS, fetch_message
from app.sources.entries import Batch, feed_items, listing_items, write_with_retry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    """What one refresh did: `updated`, `not_modified`, `failed` or `skipped`."""

    result: str
    created: int = 0
    updated: int = 0
    message: str = ""


@dataclass
class _Lease:
    source_id: int
    claimed_at: datetime


def refresh_source(source_id: int) -> RefreshOutcome:
    """Read one source and write its entries (the refresh job's body)."""
    config = current_app.config
    lease = _claim(source_id, timedelta(seconds=config["SOURCES_LEASE_SECONDS"]))
    if lease is None:
        return RefreshOutcome("skipped")
    source = db.session.get(Source, source_id)
    assert source is not None  # noqa: S101 - claimed just now
    url, kind, site_name = source.url, source.kind, source.name
    headers = {"Accept": FEED_ACCEPT}
    if source.etag:
        headers["If-None-Match"] = source.etag
    if source.last_modified:
        headers["If-Modified-Since"] = source.last_modified
    db.session.commit()  # no transaction stays open across the network wait
    if not url or kind not in REFRESHABLE_KINDS:
        return _fail(lease, "this source has no address to read from")
    try:
        response = fetch(url, policy_from_config(config), headers=headers)
    except FetchError as error:
        return _fail(lease, fetch_message(error))
    if response.status == 304:
        _finish(lease, not_modified=True)
        return RefreshOutcome("not_modified")
    note = ""
    try:
        if kind == SourceKind.FEED.value:
            feed = feeds.parse_feed(response.body, response.url, response.content_type)
            items = feed_items(feed, source_id, response.url, feed.title or site_name)
            site_url = feed.site_url
        else:
            items, note = listing_items(response, url)
            site_url, feed = None, None
    except feeds.FeedError as error:
        return _fail(lease, str(error))
    except Exception:
        log.exception("Reading source %s failed", source_id)
        return _fail(lease, "Dogear could not read this feed")
    site = (feed.title if feed is not None else "") or site_name
    total = Batch()
    size = max(1, int(config["SOURCES_BATCH_SIZE"]))
    for start in range(0, len(items), size):
        try:
            batch = write_with_retry(
                source_id, items[start : start + size], site, partial(_renew, lease)
            )
        except Exception:
            log.exception("Storing the entries of source %s failed", source_id)
            return _fail(lease, "Dogear could not store the feed's entries", total)
        if batch is None:  # another worker took the source over
            return RefreshOutcome("skipped", total.created, total.updated)
        total.created += batch.created
        total.updated += batch.updated
        _enqueue_fetches(batch.fetch)
    _finish(
        lease,
        batch=total,
        etag=response.etag or "",
        last_modified=response.last_modified or "",
        site_url=site_url,
        note=note,
    )
    return RefreshOutcome("updated", total.created, total.updated, note)


def _claim(source_id: int, lease: timedelta) -> _Lease | None:
    now = utcnow()
    with write_transaction():
        claimed = db.session.execute(
            update(Source)
            .where(
                Source.id == source_id,
                or_(Source.refresh_claimed_at.is_(None), Source.refresh_claimed_at < now - lease),
            )
            .values(refresh_claimed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    return _Lease(source_id, now) if claimed else None


def _renew(lease: _Lease) -> bool:
    """Extend our lease, inside the caller's transaction; False when it is not ours."""
    now = max(utcnow(), lease.claimed_at + timedelta(microseconds=1))
    renewed = db.session.execute(
        update(Source)
        .where(Source.id == lease.source_id, Source.refresh_claimed_at == lease.claimed_at)
        .values(refresh_claimed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if renewed:
        lease.claimed_at = now
    return bool(renewed)


def _fail(lease: _Lease, message: str, batch: Batch | None = None) -> RefreshOutcome:
    _finish(lease, error=message, batch=batch)
    created, updated = (batch.created, batch.updated) if batch else (0, 0)
    return RefreshOutcome("failed", created, updated, message)


def _finish(
    lease: _Lease,
    *,
    error: str = "",
    not_modified: bool = False,
    batch: Batch | None = None,
    etag: str = "",
    last_modified: str = "",
    site_url: str | None = None,
    note: str = "",
) -> None:
    """Record how the refresh went and when the next one is due, if still ours."""
    config = current_app.config
    with write_transaction():
        source = db.session.scalar(
            select(Source).where(
                Source.id == lease.source_id, Source.refresh_claimed_at == lease.claimed_at
            )
        )
        if source is None:
            return
        now = utcnow()
        source.refresh_claimed_at = None
        source.last_refreshed_at = now
        if batch is not None:
            source.posts_created += batch.created
            source.posts_updated += batch.updated
        if error:
            source.failures += 1
            source.status = "error"
            source.last_error = error[:1000]
            source.next_refresh_at = now + backoff(source.failures, config)
            return
        interval = timedelta(minutes=int(config["SOURCES_REFRESH_MINUTES"]))
        source.next_refresh_at = now + interval
        if not_modified:
            if source.status != "ok" or source.failures:  # answered, so not failing
                source.status, source.failures, source.last_error = "ok", 0, ""
            return
        source.status = "ok"
        source.failures = 0
        source.last_error = note[:1000]
        source.last_success_at = now
        source.etag = etag[:255]
        source.last_modified = last_modified[:255]
        if site_url and not source.site_url:
            source.site_url = site_url[:2048]


def backoff(failures: int, config: Any) -> timedelta:
    """How long a source that failed `failures` times in a row waits: the interval,
    doubled for each failure after the first, capped."""
    interval = int(config["SOURCES_REFRESH_MINUTES"])
    cap = int(config["SOURCES_MAX_BACKOFF_MINUTES"])
    return timedelta(minutes=min(interval * 2 ** min(max(failures - 1, 0), 20), cap))


def _enqueue_fetches(post_ids: Iterable[int]) -> None:
    from app.catalog.tasks import fetch_article

    for post_id in post_ids:
        fetch_article(post_id)

"""The posts an import's entries point at: finding them, creating the missing ones,
and asking for their articles politely.

Pages the reader saved that the catalog lacks become private posts the way
`app.lists.services.add_article` makes them (owned by the reader, shared by address
with other readers who save the same page, fetched in the background); their
fetches are spread out so that an import of thousands is polite to the sites and
never crowds out the pages readers add by hand. All of it runs in the transaction
of the chunk being committed (commit.py), except `queue_fetches`, which runs after
that commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, or_, select, update

from app.articles import html_to_text, sanitize_html
from app.articles.reader import reading_minutes
from app.articles.sanitize import count_words
from app.catalog.fetch import placeholder_title
from app.extensions import db
from app.imports import ImportedEntry
from app.models import ContentKind, FetchState, Post, utcnow
from app.tags.services import insert_ignoring

QUEUE_AHEAD = 90  # seconds: fetches due sooner are queued by the import itself
FETCHABLE = (FetchState.NONE.value, FetchState.FAILED.value)


@dataclass
class _PostRow:
    id: int
    url: str | None
    fetch_state: str


def posts_for(items: list[ImportedEntry]) -> dict[str, _PostRow]:
    """{identity: post} for the chunk's pages that Dogear has (by address, or by the
    catalog key of a post without one)."""
    found: dict[str, _PostRow] = {}
    urls = list({e.url for e in items if e.url})
    keys = list({e.post_key for e in items if e.post_key and not e.url})
    columns = (Post.id, Post.url, Post.fetch_state)
    if urls:
        for post_id, url, state in db.session.execute(select(*columns).where(Post.url.in_(urls))):
            found[url] = _PostRow(post_id, url, state)
    if keys:
        rows = db.session.execute(
            select(*columns, Post.dedupe_key).where(
                Post.dedupe_key.in_(keys), Post.owner_id.is_(None)
            )
        )
        for post_id, url, state, key in rows:
            found[f"key:{key}"] = _PostRow(post_id, url, state)
    return found


def url_dedupe_key(url: str) -> str:
    """A saved page's catalog key, as `app.lists.services.add_article` makes it."""
    return "url:" + hashlib.sha256(url.encode()).hexdigest()[:48]


def create_posts(user_id: int, items: list[ImportedEntry]) -> None:
    """New private posts for pages the catalog lacks, as `add_article` makes them
    (owned by the reader who saved them first; another reader saving the same
    address shares the post). An Omnivore export's article text makes the post
    ready to read at once."""
    now = utcnow()
    rows = []
    for item in items:
        url = item.url or ""
        row: dict[str, Any] = {
            "title": placeholder_title(url),
            "summary": item.summary,
            "url": url,
            "author": item.author,
            "site_name": item.site_name,
            "published_on": item.published_on,
            "reading_minutes": 0,
            "word_count": None,
            "content": None,
            "content_text": None,
            "content_kind": None,
            "dedupe_key": url_dedupe_key(url),
            "owner_id": user_id,
            "fetch_state": FetchState.NONE.value,
            "fetch_error": "",
            "fetch_attempts": 0,
            "fetched_at": None,
            "created_at": now,
            "updated_at": now,
        }
        html = item.content() if item.content else None
        content = sanitize_html(html, url) if html else ""
        text = html_to_text(content) if content else ""
        if text.strip():
            words = count_words(text)
            row.update(
                title=(item.post_title or item.title or row["title"])[:500],
                content=content,
                content_text=text,
                content_kind=ContentKind.ARTICLE.value,
                word_count=words,
                reading_minutes=reading_minutes(words),
                fetch_state=FetchState.DONE.value,
                fetched_at=now,
            )
        rows.append(row)
    db.session.execute(insert_ignoring(Post.__table__, "url"), rows)


# --- fetching their articles --------------------------------------------------------------


def request_fetches(
    wanted: list[tuple[int, bool]], cursor: dict[str, Any]
) -> list[tuple[int, int]]:
    """Mark the posts' articles as wanted (in the caller's transaction), each with its
    turn, one every IMPORT_FETCH_INTERVAL seconds: the pages still to read first (in
    the order of the list), then the ones already read. Counts the turns given in
    `cursor`; returns (post id, delay in seconds) pairs.

    The turn is written as the fetch's lease (`fetch_claimed_at`: a lease that ends
    when the post's turn comes). The stall sweeper of app/catalog/tasks.py, which
    runs every minute, queues a pending post once its lease is over, so each page is
    queued on its turn even when nobody queued it: a worker that dies loses nothing,
    and without the lease the sweeper would queue thousands at once."""
    if not wanted:
        return []
    config = current_app.config
    interval = config["IMPORT_FETCH_INTERVAL"]
    lease = timedelta(seconds=config["FETCH_LEASE_SECONDS"] + 1)
    now = utcnow()
    pairs = []
    for post_id, still_to_read in wanted:
        if still_to_read:
            cursor["fetched_open"] += 1
            turn = cursor["fetched_open"]
        else:
            cursor["fetched_closed"] += 1
            turn = cursor["open_total"] + cursor["fetched_closed"]
        pairs.append((post_id, turn * interval))
    posts = Post.__table__
    db.session.execute(
        update(posts)
        .where(
            posts.c.id == bindparam("post"),
            or_(*(posts.c.fetch_state == state for state in FETCHABLE)),  # executemany: no IN
        )
        .values(
            fetch_state=FetchState.PENDING.value,
            fetch_error="",
            fetch_attempts=0,
            fetch_claimed_at=bindparam("lease"),
        ),
        [
            {"post": post_id, "lease": now + timedelta(seconds=delay) - lease}
            for post_id, delay in pairs
        ],
    )
    return pairs


def queue_fetches(pairs: list[tuple[int, int]]) -> None:
    """Queue the fetches whose turn comes within QUEUE_AHEAD seconds (an import's
    first pages come in at once); the minute sweeper queues the others on their turn.
    (Queueing all of 20,000 would take over a minute on the SQLite queue, which
    commits each task on its own.)"""
    from app.catalog.tasks import fetch_article

    for post_id, delay in pairs:
        if delay <= QUEUE_AHEAD:
            fetch_article.schedule((post_id,), delay=delay)

"""Feed and listing entries to catalog posts: each entry made ready to write (sanitized,
keyed, tagged) with no transaction open, then written in batches.

Entries become catalog posts (owner NULL, source set) or update the post they made,
matched by guid (per source), then normalized URL, then title + date. A post that
came from somewhere else (another source, a listing, a reader's saved page) is left
alone and never duplicated.

Kept apart from refresh.py, which decides when to write and holds the source's lease:
this module only knows posts, and checks the lease through the `renew` it is given.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import undefer

from app.articles import html_to_text, sanitize_html
from app.articles.sanitize import count_words
from app.catalog.fetch import placeholder_title, request_fetch
from app.catalog.importer import dedupe_key, ensure_topics, reading_minutes_for
from app.catalog.listing import ListingEntry, parse_listing
from app.catalog.topics import assign_topics
from app.db import write_transaction
from app.extensions import db
from app.fetching import FetchResponse
from app.models import ContentKind, FetchState, Post, Source, Topic, utcnow
from app.sources import feeds
from app.sources.common import clean, decode_text, shorten
from app.urls import InvalidURL, normalize_url

log = logging.getLogger(__name__)

SUMMARY_CHARS = 500
# A feed whose summary runs this long carries the whole post in it (common in RSS 2.0).
FULL_TEXT_WORDS = 200


@dataclass
class _Item:
    """One entry, ready to write: everything computed before the write lock."""

    guid: str | None
    url: str | None  # normalized
    key: str  # the dedupe key a new post gets
    title_key: str  # title + date, to recognise the post arriving from elsewhere
    title: str
    summary: str
    author: str
    published_on: date | None
    content: str | None  # sanitized HTML when the entry carries the full text
    content_text: str | None
    word_count: int | None
    reading_minutes: int
    categories: tuple[str, ...]
    slugs: list[str]  # from the keyword vocabulary

    @property
    def full(self) -> bool:
        return self.content is not None


@dataclass
class Batch:
    created: int = 0
    updated: int = 0
    fetch: list[int] = field(default_factory=list)


def feed_items(feed: feeds.Feed, source_id: int, feed_url: str, site: str) -> list[_Item]:
    limit = int(current_app.config["SOURCES_MAX_ENTRIES"])
    items: list[_Item] = []
    seen: set[str] = set()
    for entry in feed.entries[:limit]:
        item = _feed_item(entry, source_id, feed_url)
        marks = {f"g:{item.guid}"} if item.guid else set()
        marks |= {f"u:{item.url}"} if item.url else set()
        marks.add(f"k:{item.key}")
        if marks & seen:  # the same entry twice in one feed: the first one counts
            continue
        seen |= marks
        items.append(item)
    return items


def _feed_item(entry: feeds.FeedEntry, source_id: int, feed_url: str) -> _Item:
    url = None
    if entry.url:
        try:
            url = normalize_url(entry.url)
        except InvalidURL:
            url = None
    base = entry.url or feed_url
    summary_html = sanitize_html(entry.summary_html, base) if entry.summary_html else ""
    summary_text = html_to_text(summary_html) if summary_html else ""
    content_html = sanitize_html(entry.content_html, base) if entry.content_html else ""
    content_text = html_to_text(content_html) if content_html else ""
    if not content_text and count_words(summary_text) >= FULL_TEXT_WORDS:
        content_html, content_text = summary_html, summary_text
    words = count_words(content_text) if content_text else None
    moment = entry.published or entry.updated
    published_on = moment.date() if moment else None
    plain_summary = clean(summary_text or content_text)
    title = entry.title or shorten(plain_summary, 120) or (placeholder_title(url) if url else "")
    title = (title or "Untitled")[:500]
    title_key = dedupe_key(title, published_on)
    if url:
        key = "url:" + hashlib.sha256(url.encode()).hexdigest()[:48]
    elif entry.guid:
        key = "guid:" + hashlib.sha256(f"{source_id}|{entry.guid}".encode()).hexdigest()[:48]
    else:
        key = title_key
    summary = shorten(plain_summary, SUMMARY_CHARS)
    return _Item(
        guid=entry.guid,
        url=url,
        key=key,
        title_key=title_key,
        title=title,
        summary=summary,
        author=entry.author[:200],
        published_on=published_on,
        content=content_html if content_text else None,
        content_text=content_text or None,
        word_count=words,
        reading_minutes=reading_minutes_for(None, words or count_words(summary_text)),
        categories=entry.categories,
        slugs=assign_topics(title, summary, content_text),
    )


def listing_items(response: FetchResponse, url: str) -> tuple[list[_Item], str]:
    parsed = parse_listing(decode_text(response.body, response.charset), filename=url)
    limit = int(current_app.config["SOURCES_MAX_ENTRIES"]) * 10
    items: list[_Item] = []
    seen: set[str] = set()
    for entry in parsed.entries[:limit]:
        item = _listing_item(entry)
        if item.key not in seen:
            seen.add(item.key)
            items.append(item)
    note = ""
    if parsed.errors:
        first = parsed.errors[0]
        noun = "entry" if len(parsed.errors) == 1 else "entries"
        note = (
            f"{len(parsed.errors)} {noun} could not be read; "
            f"first: line {first.line}: {first.reason}"
        )
    return items, note


def _listing_item(entry: ListingEntry) -> _Item:
    key = dedupe_key(entry.title, entry.published_on)
    return _Item(
        guid=None,
        url=None,
        key=key,
        title_key=key,
        title=entry.title,
        summary=entry.summary,
        author=entry.author,
        published_on=entry.published_on,
        content=None,
        content_text=None,
        word_count=entry.word_count,
        reading_minutes=reading_minutes_for(entry.reading_minutes, entry.word_count),
        categories=(),
        slugs=assign_topics(entry.title, entry.summary),
    )


def write_with_retry(
    source_id: int, items: list[_Item], site: str, renew: Callable[[], bool]
) -> Batch | None:
    """Write one batch; once more if a post with the same address appeared meanwhile
    (a reader saving it): the second pass finds it and leaves it alone.

    `renew` extends the refresh's lease inside the batch's transaction and says whether
    it is still ours; when it is not (another worker took the source over), nothing is
    written and the result is None."""
    try:
        return _write_batch(source_id, items, site, renew)
    except IntegrityError:
        log.info("Source %s: a conflicting post appeared; writing the batch again", source_id)
        return _write_batch(source_id, items, site, renew)


def _write_batch(
    source_id: int, items: list[_Item], site: str, renew: Callable[[], bool]
) -> Batch | None:
    """Create or update the posts of up to one batch of entries, in one transaction."""
    result = Batch()
    wanted: list[Post] = []
    with write_transaction():
        if not renew():
            return None
        source = db.session.get(Source, source_id)
        if source is None:
            return None
        vocabulary = ensure_topics()
        lookup = topic_lookup(db.session.scalars(select(Topic)))
        lookup.update({slug.lower(): topic for slug, topic in vocabulary.items()})
        by_guid, by_url, by_key = _existing_posts(source.id, items)
        for item in items:
            post = (
                (by_guid.get(item.guid) if item.guid else None)
                or (by_url.get(item.url) if item.url else None)
                or by_key.get(item.key)
                or by_key.get(item.title_key)
            )
            topics = _item_topics(item, source, vocabulary, lookup)
            if post is not None and (post.source_id != source.id or post.owner_id is not None):
                continue  # from elsewhere: neither updated nor made twice
            if post is None:
                post = _new_post(item, source, site, topics)
                db.session.add(post)
                result.created += 1
                by_key[item.key] = post
                if item.guid:
                    by_guid[item.guid] = post
                if item.url:
                    by_url[item.url] = post
            elif _update_post(post, item, topics, by_guid, by_url):
                result.updated += 1
            if (
                source.fetch_full_articles
                and not item.full
                and post.fetch_state == FetchState.NONE.value
                and request_fetch(post)
            ):
                wanted.append(post)
        db.session.flush()
        result.fetch = [post.id for post in wanted]
    return result


def _existing_posts(
    source_id: int, items: list[_Item]
) -> tuple[dict[str, Post], dict[str, Post], dict[str, Post]]:
    """The posts the batch's entries may match: by guid (this source's), URL, key."""
    guids = sorted({i.guid for i in items if i.guid})
    urls = sorted({i.url for i in items if i.url})
    keys = sorted({i.key for i in items} | {i.title_key for i in items})
    load = select(Post).options(undefer(Post.content), undefer(Post.content_text))
    by_guid: dict[str, Post] = {}
    by_url: dict[str, Post] = {}
    by_key: dict[str, Post] = {}
    if guids:
        for post in db.session.scalars(
            load.where(Post.source_id == source_id, Post.guid.in_(guids))
        ):
            by_guid[post.guid or ""] = post
    if urls:
        for post in db.session.scalars(load.where(Post.url.in_(urls))):
            by_url[post.url or ""] = post
    for post in db.session.scalars(load.where(Post.dedupe_key.in_(keys))):
        by_key[post.dedupe_key] = post
    return by_guid, by_url, by_key


def _new_post(item: _Item, source: Source, site: str, topics: list[Topic]) -> Post:
    now = utcnow()
    return Post(
        title=item.title,
        summary=item.summary,
        url=item.url,
        author=item.author,
        published_on=item.published_on or now.date(),
        reading_minutes=item.reading_minutes,
        word_count=item.word_count,
        site_name=site[:200],
        content=item.content,
        content_text=item.content_text,
        content_kind=ContentKind.ARTICLE.value if item.full else None,
        fetch_state=FetchState.DONE.value if item.full else FetchState.NONE.value,
        fetch_error="",
        fetch_attempts=0,
        fetched_at=now if item.full else None,
        dedupe_key=item.key,
        source_id=source.id,
        owner_id=None,
        guid=item.guid,
        topics=topics,
    )


def _update_post(
    post: Post,
    item: _Item,
    topics: list[Topic],
    by_guid: dict[str, Post],
    by_url: dict[str, Post],
) -> bool:
    """Bring a post this source made up to date with its entry; True if anything
    changed. Topics are only ever added (an admin may have added others by hand)."""
    changed = False

    def put(attribute: str, value: Any) -> None:
        nonlocal changed
        if getattr(post, attribute) != value:
            setattr(post, attribute, value)
            changed = True

    put("title", item.title)
    if item.summary:
        put("summary", item.summary)
    if item.author:
        put("author", item.author)
    if item.published_on:
        put("published_on", item.published_on)
    if item.url and item.url != post.url and item.url not in by_url:
        by_url[item.url] = post
        put("url", item.url)
    if item.guid and item.guid != post.guid and item.guid not in by_guid:
        by_guid[item.guid] = post
        put("guid", item.guid)
    if item.full:
        put("content", item.content)
        put("content_text", item.content_text)
        put("content_kind", ContentKind.ARTICLE.value)
        put("word_count", item.word_count)
        put("reading_minutes", item.reading_minutes)
        if post.fetch_state != FetchState.DONE.value:
            put("fetch_state", FetchState.DONE.value)
            post.fetch_error = ""
            post.fetched_at = utcnow()
    elif post.fetch_state != FetchState.DONE.value:
        put("reading_minutes", item.reading_minutes)
    have = {topic.id for topic in post.topics}
    for topic in topics:
        if topic.id not in have:
            post.topics.append(topic)
            changed = True
    return changed


def _item_topics(
    item: _Item, source: Source, vocabulary: dict[str, Topic], lookup: dict[str, Topic]
) -> list[Topic]:
    """The source's topics, the entry's categories that name a topic, and the
    keyword vocabulary's."""
    found: dict[str, Topic] = {}
    for topic in source.topics:
        found[topic.slug] = topic
    for category in item.categories:
        if topic := match_topic(lookup, category):
            found[topic.slug] = topic
    for slug in item.slugs:
        if slug in vocabulary:
            found[slug] = vocabulary[slug]
    return [found[slug] for slug in sorted(found)]


def topic_lookup(topics: Iterable[Topic]) -> dict[str, Topic]:
    lookup: dict[str, Topic] = {}
    for topic in topics:
        lookup.setdefault(topic.name.lower(), topic)
        lookup[topic.slug.lower()] = topic
    return lookup


def match_topic(lookup: dict[str, Topic], category: str) -> Topic | None:
    words = category.strip().lower()
    return lookup.get(words) or lookup.get("-".join(words.split()))

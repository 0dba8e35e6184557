"""Writing sources, as the admin page and the CLI ask: add, edit, delete, ask for a
refresh (of one source or of all), and import or export OPML.

Adding a source does wait on the network once: Dogear reads the address to learn
what it is (probe.py) within SOURCES_PROBE_TIMEOUT seconds. Its entries are written
by the refresh job (tasks.py, refresh.py), queued here once the change has committed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.db import write_transaction
from app.extensions import db
from app.models import JobRun, Post, Source, SourceKind, Topic, utcnow
from app.sources import opml, schedule, tasks
from app.sources.common import (
    MAX_NAME,
    REFRESHABLE_KINDS,
    SourceError,
    capital,
    clean,
    count,
    normalized,
)
from app.sources.entries import match_topic, topic_lookup
from app.sources.probe import Probe, probe
from app.urls import InvalidURL, normalize_url

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

# --- adding, editing, deleting ---------------------------------------------------------


def add_source(
    actor: Reader | None,
    raw_url: str,
    *,
    name: str = "",
    topic_ids: Iterable[int] = (),
    fetch_full_articles: bool = False,
) -> tuple[Source, Probe]:
    """Add a feed or listing by its address and queue its first refresh."""
    url = normalized(raw_url)
    _check_address_free(url)  # before waiting on the network
    db.session.commit()  # and no transaction stays open while we wait
    found = probe(url)
    name = clean(name)[:MAX_NAME]
    try:
        with write_transaction():
            _check_address_free(found.url)
            if name:
                _check_name_free(name)
            else:
                name = _unique_name(found.title or _host(found.url))
            source = Source(
                name=name,
                kind=found.kind,
                url=found.url,
                site_url=found.site_url,
                fetch_full_articles=fetch_full_articles,
                topics=_topics(topic_ids),
                status="queued",
                next_refresh_at=_reserved_until(),
            )
            db.session.add(source)
            db.session.flush()
            detail = f"{found.format} at {found.url}"
            if found.page_url:
                detail += f", found on {found.page_url}"
            audit.record("source.add", target=name, detail=detail, actor=actor)
    except IntegrityError:  # another admin added the same name or address just now
        raise SourceError("That source was just added by someone else.") from None
    _enqueue_refreshes([source.id])
    return source, found


def edit_source(
    actor: Reader | None,
    source_id: int,
    *,
    name: str,
    url: str | None,
    topic_ids: Iterable[int],
    fetch_full_articles: bool,
) -> Source:
    """Change a source's name, address, topics or full-article setting. A new address
    is read afresh (no conditional request) on a refresh queued at once."""
    name = clean(name)[:MAX_NAME]
    if not name:
        raise SourceError("Give the source a name.", "name")
    refresh = False
    with write_transaction():
        source = _source(source_id)
        changes = []
        if name != source.name:
            _check_name_free(name, source.id)
            changes.append(f"name “{source.name}” → “{name}”")
            source.name = name
        if url and source.url is not None:
            new_url = normalized(url)
            if new_url != source.url:
                _check_address_free(new_url, source.id)
                changes.append(f"address → {new_url}")
                source.url = new_url
                source.etag = source.last_modified = ""
                source.status = "queued"
                source.next_refresh_at = _reserved_until()
                refresh = True
        topics = _topics(topic_ids)
        if {t.id for t in topics} != {t.id for t in source.topics}:
            changes.append("topics: " + (", ".join(t.name for t in topics) or "none"))
            source.topics = topics
        if bool(fetch_full_articles) != source.fetch_full_articles:
            changes.append(f"fetch full articles: {'on' if fetch_full_articles else 'off'}")
            source.fetch_full_articles = bool(fetch_full_articles)
        if changes:
            audit.record("source.edit", target=source.name, detail="; ".join(changes), actor=actor)
    if refresh:
        _enqueue_refreshes([source.id])
    return source


def delete_source(actor: Reader | None, source_id: int) -> tuple[str, int]:
    """Delete a source; its posts stay in the catalog (their source is cleared by the
    foreign key). Returns the source's name and how many posts it had."""
    with write_transaction():
        source = _source(source_id)
        name = source.name
        kept = db.session.scalar(select(func.count()).where(Post.source_id == source_id)) or 0
        audit.record(
            "source.delete",
            target=name,
            detail=f"{source.url or source.kind}; {count(kept, 'post', 'posts')} kept",
            actor=actor,
        )
        db.session.delete(source)
    return name, kept


def request_refresh(actor: Reader | None, source_id: int) -> Source:
    """Queue a refresh of one source now (the Refresh button)."""
    with write_transaction():
        source = _source(source_id)
        if not is_refreshable(source):
            raise SourceError("This source has no address to read from.")
        source.status = "queued"
        source.next_refresh_at = _reserved_until()
        audit.record("source.refresh", target=source.name, actor=actor)
    _enqueue_refreshes([source.id])
    return source


def start_refresh_all(actor: Reader | None) -> tuple[JobRun, bool]:
    """Queue a refresh of every source, watched through a JobRun. Returns the run and
    whether it is new (one already under way is returned instead of a second)."""
    run, new = schedule.open_refresh_all(actor)
    if new:
        tasks.refresh_all(run.id)
    return run, new


def is_refreshable(source: Source) -> bool:
    return bool(source.url) and source.kind in REFRESHABLE_KINDS


def refresh_state(source: Source) -> str:
    """Where a source stands, for the table: `refreshing` (a worker holds it),
    `queued`, `ok`, `error`, `new`, or `file` (imported once, nothing to refresh)."""
    if not is_refreshable(source):
        return "file"
    lease = timedelta(seconds=current_app.config["SOURCES_LEASE_SECONDS"])
    claimed = source.refresh_claimed_at
    if claimed is not None and claimed > utcnow() - lease:
        return "refreshing"
    if source.status in ("queued", "ok", "error"):
        return source.status
    return "new"


# --- OPML ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpmlCandidate:
    url: str  # normalized, or as written when invalid
    title: str
    site_url: str
    categories: tuple[str, ...]
    problem: str = ""  # why it is skipped: a duplicate, an invalid address


@dataclass
class OpmlPreview:
    new: list[OpmlCandidate] = field(default_factory=list)
    skipped: list[OpmlCandidate] = field(default_factory=list)

    def new_json(self) -> str:
        """The new feeds as JSON, carried by the preview form to the confirm step."""
        return json.dumps([dataclasses.asdict(candidate) for candidate in self.new])


def preview_opml(body: bytes) -> OpmlPreview:
    """What importing the file would add, and what it would skip and why."""
    try:
        listed = opml.parse_opml(body)
    except opml.OpmlError as error:
        raise SourceError(capital(str(error)) + ".", "file") from None
    if not listed:
        raise SourceError("The file lists no feeds (no outline with an xmlUrl).", "file")
    existing = dict(
        db.session.execute(select(Source.url, Source.name).where(Source.url.is_not(None))).all()
    )
    preview = OpmlPreview()
    seen: set[str] = set()
    for item in listed:
        title, site, cats = item.title[:MAX_NAME], item.site_url, item.categories
        try:
            url = _absolute_url(item.url)
        except InvalidURL as error:
            preview.skipped.append(OpmlCandidate(item.url, title, site, cats, str(error)))
            continue
        if url in existing:
            problem = f"already a source: “{existing[url]}”"
        elif url in seen:
            problem = "listed twice in the file"
        else:
            problem = ""
        seen.add(url)
        candidate = OpmlCandidate(url, title, site, cats, problem)
        (preview.skipped if problem else preview.new).append(candidate)
    return preview


def import_opml(actor: Reader | None, candidates: Sequence[OpmlCandidate]) -> tuple[int, int]:
    """Add the chosen feeds as sources (all or none) and queue their first refresh.
    Returns (added, skipped): feeds that became sources meanwhile are skipped."""
    added: list[Source] = []
    skipped = 0
    with write_transaction():
        taken = set(db.session.scalars(select(Source.url).where(Source.url.is_not(None))))
        names = set(db.session.scalars(select(Source.name)))
        lookup = topic_lookup(db.session.scalars(select(Topic)))
        for candidate in candidates:
            try:
                url = _absolute_url(candidate.url)
            except InvalidURL:
                skipped += 1
                continue
            if url in taken:
                skipped += 1
                continue
            taken.add(url)
            name = _unique_name(clean(candidate.title) or _host(url), names)
            names.add(name)
            topics = {t.id: t for c in candidate.categories if (t := match_topic(lookup, c))}
            site = candidate.site_url.strip()
            source = Source(
                name=name,
                kind=SourceKind.FEED.value,
                url=url,
                site_url=site if site.startswith(("http://", "https://")) else None,
                topics=list(topics.values()),
                status="queued",
                next_refresh_at=_reserved_until(),
            )
            db.session.add(source)
            added.append(source)
        db.session.flush()
        audit.record(
            "source.opml_import",
            detail=f"{count(len(added), 'feed', 'feeds')} added, {skipped} skipped",
            actor=actor,
        )
    _enqueue_refreshes([source.id for source in added])
    return len(added), skipped


def export_sources() -> list[opml.ExportedSource]:
    sources = db.session.scalars(
        select(Source)
        .where(Source.kind == SourceKind.FEED.value, Source.url.is_not(None))
        .order_by(Source.name)
    )
    return [
        opml.ExportedSource(
            name=s.name,
            url=s.url or "",
            site_url=s.site_url,
            categories=tuple(t.name for t in s.topics),
        )
        for s in sources
    ]


# --- helpers -----------------------------------------------------------------------------


def _enqueue_refreshes(source_ids: Iterable[int]) -> None:
    for source_id in source_ids:
        tasks.refresh_source(source_id)


def _reserved_until() -> datetime:
    return utcnow() + timedelta(seconds=current_app.config["SOURCES_LEASE_SECONDS"])


def _absolute_url(raw: str) -> str:
    """A feed address from a file: it must say http:// or https:// itself."""
    if not raw.strip().lower().startswith(("http://", "https://")):
        raise InvalidURL("not a web address (http or https)")
    return normalize_url(raw)


def _source(source_id: int) -> Source:
    source = db.session.get(Source, source_id)
    if source is None:
        raise LookupError(source_id)
    return source


def _check_address_free(url: str, own_id: int | None = None) -> None:
    query = select(Source.name).where(Source.url == url)
    if own_id is not None:
        query = query.where(Source.id != own_id)
    if (name := db.session.scalar(query)) is not None:
        raise SourceError(f"That feed is already a source: “{name}”.")


def _check_name_free(name: str, own_id: int | None = None) -> None:
    query = select(Source.id).where(func.lower(Source.name) == name.lower())
    if own_id is not None:
        query = query.where(Source.id != own_id)
    if db.session.scalar(query) is not None:
        raise SourceError(f"Another source is called “{name}”.", "name")


def _unique_name(wanted: str, taken: set[str] | None = None) -> str:
    """`wanted`, or `wanted (2)`, `(3)`… when another source has that name."""
    base = clean(wanted)[: MAX_NAME - 6] or "Feed"
    if taken is None:
        taken = set(
            db.session.scalars(select(Source.name).where(Source.name.like(f"{base[:40]}%")))
        )
    lowered = {name.lower() for name in taken}
    name, number = base, 1
    while name.lower() in lowered:
        number += 1
        name = f"{base} ({number})"
    return name


def _topics(topic_ids: Iterable[int]) -> list[Topic]:
    ids = sorted({int(i) for i in topic_ids})
    if not ids:
        return []
    return list(db.session.scalars(select(Topic).where(Topic.id.in_(ids)).order_by(Topic.slug)))


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].removeprefix("www.")

"""Re-tagging the whole catalog in the background, resumable after a crash.

The run's state lives in its JobRun row, not in the queue: `cursor` is the id of the
last post re-tagged and `done` how many were. Each chunk of posts is read, tagged
outside any transaction, then written in one short write transaction together with
the new cursor, on condition that the cursor is still what this worker read (so two
workers on the same run, after a requeue, never apply a chunk twice). A worker killed
mid-run leaves the run "running" with its cursor; the periodic sweep below notices
that it stopped moving and queues it again, and it goes on from the cursor.

What re-tagging sets: each post gets the topics the vocabulary finds in its title,
summary and article text (app/catalog/topics.py) plus its source's topics. Topics
without keywords are assigned by hand only and left as they are.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from huey import crontab
from sqlalchemy import and_, bindparam, select

from app.access import catalog_clause
from app.catalog.topics import assign_topics, load_vocabulary
from app.db import write_transaction
from app.extensions import db
from app.jobs import job, periodic
from app.models import JobRun, Post, Topic, post_topics, source_topics, utcnow

log = logging.getLogger(__name__)

RETAG = "retag"
CHUNK_SIZE = 500
ACTIVE = ("queued", "running")


@job()
def retag_catalog(run_id: int) -> str:
    """Re-tag the catalog for this run (also picks up a run another worker dropped)."""
    return run_retag(run_id)


def run_retag(run_id: int, *, max_chunks: int | None = None) -> str:
    """Work through the run chunk by chunk from its cursor; returns its status, or
    "partial" when `max_chunks` stopped it early (tests simulate a crash with it)."""
    if not _claim(run_id):
        return "skipped"
    chunks = 0
    try:
        while max_chunks is None or chunks < max_chunks:
            run = db.session.get(JobRun, run_id, populate_existing=True)
            if run is None or run.status != "running":
                return run.status if run else "skipped"
            if not _retag_chunk(run_id, run.cursor):
                return _finish(run_id)
            chunks += 1
    except Exception as error:
        db.session.rollback()
        log.exception("Re-tagging (job run %s) failed", run_id)
        with write_transaction():
            run = db.session.get(JobRun, run_id, populate_existing=True)
            if run is not None:
                run.status = "failed"
                run.finished_at = utcnow()
                run.message = f"Re-tagging stopped after {run.done:,} posts: {error}"[:500]
        return "failed"
    return "partial"


def _claim(run_id: int) -> bool:
    with write_transaction():
        run = db.session.get(JobRun, run_id, populate_existing=True)
        if run is None or run.kind != RETAG or run.status not in ACTIVE:
            return False
        if run.status == "queued":
            run.status = "running"
            run.started_at = utcnow()
    return True


def _retag_chunk(run_id: int, cursor: str) -> bool:
    """Re-tag the next chunk after `cursor`; False when there is none left."""
    after = int(cursor or 0)
    rows = db.session.execute(
        select(Post.id, Post.title, Post.summary, Post.content_text, Post.source_id)
        .where(catalog_clause(), Post.id > after)
        .order_by(Post.id)
        .limit(CHUNK_SIZE)
    ).all()
    if not rows:
        return False
    ids = [row.id for row in rows]
    vocabulary = load_vocabulary()
    topic_ids = {slug: id_ for slug, id_ in db.session.execute(select(Topic.slug, Topic.id))}
    managed = {topic_ids[slug] for slug in vocabulary.patterns if slug in topic_ids}
    current: dict[int, set[int]] = defaultdict(set)
    for post_id, topic_id in db.session.execute(
        select(post_topics.c.post_id, post_topics.c.topic_id).where(post_topics.c.post_id.in_(ids))
    ):
        current[post_id].add(topic_id)
    by_source: dict[int, set[int]] = defaultdict(set)
    source_ids = {row.source_id for row in rows if row.source_id is not None}
    if source_ids:
        for source_id, topic_id in db.session.execute(
            select(source_topics.c.source_id, source_topics.c.topic_id).where(
                source_topics.c.source_id.in_(source_ids)
            )
        ):
            by_source[source_id].add(topic_id)
    db.session.rollback()  # no transaction stays open while the chunk is tagged

    added: list[dict[str, int]] = []
    removed: list[dict[str, int]] = []
    changed = 0
    for row in rows:
        found = assign_topics(row.title, row.summary, row.content_text or "", vocabulary)
        wanted = {topic_ids[slug] for slug in found if slug in topic_ids}
        wanted |= by_source.get(row.source_id, set())
        have = current.get(row.id, set())
        # Hand-assigned topics without keywords stay; the others follow the vocabulary.
        wanted |= have - managed
        plus, minus = wanted - have, have - wanted
        added += [{"p": row.id, "t": t} for t in plus]
        removed += [{"p": row.id, "t": t} for t in minus]
        changed += bool(plus or minus)

    with write_transaction():
        run = db.session.get(JobRun, run_id, populate_existing=True)
        if run is None or run.status != "running" or run.cursor != cursor:
            return True  # another worker moved on meanwhile: read the run again
        if removed:
            db.session.execute(
                post_topics.delete().where(
                    and_(
                        post_topics.c.post_id == bindparam("p"),
                        post_topics.c.topic_id == bindparam("t"),
                    )
                ),
                removed,
            )
        if added:
            # A topic deleted meanwhile would fail the foreign key: keep only live ones.
            live = set(db.session.scalars(select(Topic.id)))
            rows_to_add = [
                {"post_id": a["p"], "topic_id": a["t"]} for a in added if a["t"] in live
            ]
            if rows_to_add:
                db.session.execute(post_topics.insert(), rows_to_add)
        run.cursor = str(ids[-1])
        run.done += len(rows)
        run.total = max(run.total, run.done)
        run.message = f"{_changed(run.message) + changed}"
    return True


def _changed(message: str) -> int:
    """Posts whose topics changed so far (kept in `message` while the run works)."""
    return int(message) if message.isdigit() else 0


def _finish(run_id: int) -> str:
    with write_transaction():
        run = db.session.get(JobRun, run_id, populate_existing=True)
        if run is None or run.status != "running":
            return run.status if run else "skipped"
        changed = _changed(run.message)
        run.status = "done"
        run.finished_at = utcnow()
        run.total = run.done
        noun = "post" if run.done == 1 else "posts"
        run.message = (
            f"Re-tagged {run.done:,} {noun}; the topics of {changed:,} changed."
            if run.done
            else "The catalog is empty: nothing to re-tag."
        )
    return "done"


# --- picking up runs a dead worker dropped -------------------------------------------

# run id -> (status, cursor) at the previous sweep of this process.
_last_seen: dict[int, tuple[str, str]] = {}


@periodic(crontab(minute="*"))
def resume_stalled_retags() -> int:
    """Every minute: queue again a re-tag run that made no progress since the last
    sweep (its worker died, or its queued job was lost)."""
    return requeue_stalled_retags()


def requeue_stalled_retags(seen: dict[int, tuple[str, str]] | None = None) -> int:
    """Queue again every active run whose status and cursor are what they were at the
    previous call; returns how many. A live run moves its cursor every few seconds;
    one queued twice is harmless (see `_retag_chunk`)."""
    seen = _last_seen if seen is None else seen
    now = {
        run_id: (status, cursor)
        for run_id, status, cursor in db.session.execute(
            select(JobRun.id, JobRun.status, JobRun.cursor).where(
                JobRun.kind == RETAG, JobRun.status.in_(ACTIVE)
            )
        )
    }
    db.session.rollback()
    stalled = [run_id for run_id, state in now.items() if seen.get(run_id) == state]
    for run_id in stalled:
        retag_catalog(run_id)
        del now[run_id]  # give it a whole interval to move before judging it again
    seen.clear()
    seen.update(now)
    return len(stalled)

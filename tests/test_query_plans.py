"""On PostgreSQL, browse and search read posts through indexes, never a sequential scan.

The statements are the app's own: each case calls the query function a view calls
(browse: `catalog_post_ids()` paged by `paginate()`; search: `engine.search()` and
`engine.related_posts()`), records every statement it sends and runs each one that
reads posts through `EXPLAIN (FORMAT JSON)` with the same parameters. A plan with a
"Seq Scan" node on posts fails, whatever its estimated cost.

The catalog: 20,000 generated posts (1 % private) COPYed into a freshly migrated
schema with the search triggers of migration 0008 disabled, their search vectors
computed in one UPDATE, then the table compacted and the schema vacuumed and analyzed
(what autovacuum leaves a catalog that grew over time; right after a bulk load the
table is twice its size and the planner's choices are not the ones production sees).
Words are drawn by a Zipf-like law, so there are common words (in 10-25 % of posts)
and rare ones; topics are skewed too: "python" is on half the posts, "celery" on
under 1 %, below the 2 % above which browse walks the date index for a topic.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event, select, text

from app.browse.filters import BrowseFilters
from app.browse.queries import catalog_post_ids
from app.extensions import db
from app.models import Entry, Post, User
from app.pagination import paginate
from app.search import engine
from app.search.parser import parse
from tests import pg

pytestmark = pg.MARKS

POSTS = 20_000
PER_PAGE = 20
SEED = 20261121
TOPICS = [
    "python",
    "rust",
    "go",
    "javascript",
    "flask",
    "django",
    "htmx",
    "postgres",
    "sqlite",
    "docker",
    "testing",
    "security",
    "performance",
    "tooling",
    "celery",
]
COMMON_TOPIC, RARE_TOPIC = "python", "celery"
RARE_WORD = "zyzzyva"  # in 5 posts
PHRASE = "event loop"  # in about 8 % of summaries
TRIGGERS = {"posts": "posts_search_insert", "post_topics": "post_topics_search_insert"}


# --- The catalog -----------------------------------------------------------------------


def _vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        n = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)))
    return sorted(words)


def _rows(rng: random.Random, owner_id: int) -> Iterator[tuple[tuple[Any, ...], list[int]]]:
    """(post row, topic ids) for POSTS posts."""
    vocab = _vocabulary(rng)
    weights = list(itertools.accumulate(1 / (rank + 2.7) for rank in range(len(vocab))))
    topic_weights = list(
        itertools.accumulate(1 / (rank + 1) ** 1.6 for rank in range(len(TOPICS)))
    )
    rare = set(rng.sample(range(1, POSTS + 1), 5))
    start, now = date(2012, 1, 1), datetime(2026, 1, 1)
    for post_id in range(1, POSTS + 1):
        title = " ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(4, 10)))
        summary = rng.choices(vocab, cum_weights=weights, k=rng.randint(22, 42))
        if rng.random() < 0.08:
            summary.insert(rng.randrange(len(summary)), PHRASE)
        if post_id in rare:
            summary.append(RARE_WORD)
        topics = {
            1 + TOPICS.index(t)
            for t in rng.choices(TOPICS, cum_weights=topic_weights, k=rng.choice((0, 1, 2, 3)))
        }
        minutes = max(1, min(60, int(rng.lognormvariate(1.7, 0.6))))
        row = (
            post_id,
            title.capitalize(),
            " ".join(summary) + ".",
            f"https://blog{post_id % 997}.example/posts/{post_id}",
            f"Author {int(2000 ** rng.random())}",
            start + timedelta(days=int(5400 * rng.random() ** 0.5)),
            minutes,
            minutes * 220,
            f"plan-{post_id}",
            1 + post_id % 40,
            owner_id if post_id % 100 == 0 else None,
            now + timedelta(seconds=post_id),
            now + timedelta(seconds=post_id),
        )
        yield row, sorted(topics)


POST_COLUMNS = (
    "id, title, summary, url, author, published_on, reading_minutes, word_count, dedupe_key,"
    " source_id, owner_id, created_at, updated_at"
)


def _load(owner_id: int) -> None:
    """COPY the posts and their topics in with the search triggers off, then index
    every post in one UPDATE (the statement migration 0008 backfills with)."""
    connection = db.session.connection()
    for table, trigger in TRIGGERS.items():
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    rows = list(_rows(random.Random(SEED), owner_id))
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY posts ({POST_COLUMNS}) FROM STDIN") as copy:
            for row, _ in rows:
                copy.write_row(row)
        with cursor.copy("COPY post_topics (post_id, topic_id) FROM STDIN") as copy:
            for row, topic_ids in rows:
                for topic_id in topic_ids:
                    copy.write_row((row[0], topic_id))
    connection.exec_driver_sql(
        "UPDATE posts AS p SET search_vector ="
        " dogear_post_vector(p.id, p.title, p.summary, p.author, p.content_text)"
    )
    for table, trigger in TRIGGERS.items():
        connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    connection.exec_driver_sql(
        "SELECT setval(pg_get_serial_sequence('posts', 'id'), max(id)) FROM posts"
    )


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The migrated, loaded and analyzed schema; the app bound to it, in its context."""
    with pg.fresh_schema() as schema:
        app = pg.pg_app(tmp_path_factory.mktemp("plans"), schema)
        with app.app_context():
            upgrade()
            reader = User(email="reader@example.com", password_hash="-")
            owner = User(email="owner@example.com", password_hash="-")
            db.session.add_all([reader, owner])
            db.session.execute(
                text(
                    "INSERT INTO sources (id, name, kind, status, last_error, created_at)"
                    " SELECT n, 'Source ' || n, 'manual', 'new', '', now()"
                    " FROM generate_series(1, 40) AS n"
                )
            )
            db.session.execute(
                text("INSERT INTO topics (id, slug, name) VALUES (:id, :slug, :name)"),
                [{"id": i, "slug": s, "name": s.title()} for i, s in enumerate(TOPICS, 1)],
            )
            db.session.flush()
            _load(owner.id)
            # The reader's list: shared posts, and two private posts they saved.
            saved = db.session.scalars(
                select(Post.id).where(Post.id % 97 == 0).order_by(Post.id)
            ).all()
            db.session.add_all(
                Entry(user_id=reader.id, post_id=post_id, position=i, state="saved")
                for i, post_id in enumerate(saved, 1)
            )
            loaded_by = db.session.scalar(text("SELECT txid_current()"))
            db.session.commit()
            pg.settle(db.engine, loaded_by)
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()


@pytest.fixture(scope="module")
def words(catalog: Flask) -> dict[str, str]:
    """A common word (in 10-25 % of posts); the rare word and the topics checked."""
    common = db.session.scalar(
        text(
            "SELECT word FROM ts_stat('SELECT search_vector FROM posts')"
            " WHERE ndoc BETWEEN :low AND :high ORDER BY ndoc DESC LIMIT 1"
        ),
        {"low": POSTS // 10, "high": POSTS // 4},
    )
    assert common
    assert _count("search_vector @@ to_tsquery('dogear', :w)", w=RARE_WORD) == 5
    # As the browse view decides (CatalogFacets.is_common_topic: on 2 % of posts).
    on_topic = "id IN (SELECT post_id FROM post_topics AS pt JOIN topics AS t"
    on_topic += " ON t.id = pt.topic_id WHERE t.slug = :slug)"
    assert _count(on_topic, slug=COMMON_TOPIC) * 50 >= POSTS
    assert _count(on_topic, slug=RARE_TOPIC) * 50 < POSTS
    return {"common": common}


def _count(condition: str, **params: Any) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM posts WHERE {condition}"), params)


@pytest.fixture(scope="module")
def reader(catalog: Flask) -> User:
    return db.session.scalars(select(User).where(User.email == "reader@example.com")).one()


# --- Plans -----------------------------------------------------------------------------


@contextmanager
def recorded() -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent to the server in the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def seq_scans_on_posts(seen: list[tuple[str, Any]]) -> list[str]:
    """The statements among `seen` that read posts with a sequential scan, each with
    its plan; asserts there was at least one statement reading posts."""
    connection = db.session.connection()
    explained, found = 0, []
    for statement, parameters in seen:
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        if "posts" not in statement:
            continue
        (plan,) = connection.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + statement, parameters
        ).scalar_one()
        explained += 1
        scans = [
            node
            for node in _nodes(plan["Plan"])
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "posts"
        ]
        if scans:
            text_plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            found.append(statement + "\n" + "\n".join(row[0] for row in text_plan))
    db.session.rollback()
    assert explained, "no statement read posts"
    return found


BROWSE = {
    "first page, newest": BrowseFilters(),
    "page 500": BrowseFilters(page=500),
    "oldest": BrowseFilters(sort="oldest"),
    "a common topic": BrowseFilters(topic=COMMON_TOPIC),
    "a rare topic": BrowseFilters(topic=RARE_TOPIC),
    "topic and length": BrowseFilters(topic=COMMON_TOPIC, length="medium"),
    "rare topic and length": BrowseFilters(topic=RARE_TOPIC, length="short"),
    "a source": BrowseFilters(source=7),
    "a year": BrowseFilters(year=2020),
    "shortest": BrowseFilters(sort="shortest"),
    "longest, page 50": BrowseFilters(sort="longest", page=50),
    "length, shortest": BrowseFilters(length="long", sort="shortest"),
}


@pytest.mark.parametrize("name", list(BROWSE))
def test_browse_reads_posts_through_indexes(catalog, name):
    filters = BROWSE[name]
    # The view's choice (CatalogFacets.is_common_topic), known here from the data.
    common = filters.topic == COMMON_TOPIC
    with recorded() as seen:
        page = paginate(catalog_post_ids(filters, common_topic=common), filters.page, PER_PAGE)
    assert page.items
    scans = seq_scans_on_posts(seen)
    assert not scans, "\n\n".join(scans)


SEARCHES = {
    "a rare word": (RARE_WORD, "relevance"),
    "a common word": ("{common}", "relevance"),
    "a common word, newest": ("{common}", "newest"),
    "a common word, shortest": ("{common}", "shortest"),
    "a phrase": (f'"{PHRASE}"', "relevance"),
    "a phrase and a topic": (f'"{PHRASE}" topic:{COMMON_TOPIC}', "relevance"),
    "a word and a topic": (f"{{common}} topic:{COMMON_TOPIC}", "relevance"),
    "a word and a rare topic": (f"{{common}} topic:{RARE_TOPIC}", "relevance"),
    "a word and a year": ("{common} year:2020", "relevance"),
    "a word, excluding another": ("{common} -" + RARE_WORD, "relevance"),
    "only a topic": (f"topic:{COMMON_TOPIC}", "relevance"),
}


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "reader"])
@pytest.mark.parametrize("name", list(SEARCHES))
def test_search_reads_posts_through_indexes(catalog, words, reader, name, signed_in):
    q, sort = SEARCHES[name]
    with recorded() as seen:
        results = engine.search(parse(q.format(**words)), reader if signed_in else None, sort=sort)
    assert results.page.items
    scans = seq_scans_on_posts(seen)
    assert not scans, "\n\n".join(scans)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "reader"])
def test_related_posts_read_posts_through_indexes(catalog, reader, signed_in):
    post = db.session.scalars(
        select(Post).where(Post.summary.contains(RARE_WORD), Post.owner_id.is_(None)).limit(1)
    ).one()
    with recorded() as seen:
        related = engine.related_posts(post, 5, user=reader if signed_in else None)
    assert related
    scans = seq_scans_on_posts(seen)
    assert not scans, "\n\n".join(scans)

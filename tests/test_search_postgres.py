"""PostgreSQL search beyond the shared behaviour tests: the migration, the triggers,
and the plans of the search and browse endpoints on a catalog big enough for the
planner to choose between an index and a table scan.

The plan tests run every statement a request made through EXPLAIN, with the same
parameters, with enable_seqscan on: none may read posts with a sequential scan. The
catalog: 20,000 generated posts, the table compacted after loading (adding topics
rewrites every row) and vacuumed and analyzed, as autovacuum would leave a catalog
that grew over time. (Left twice its size right after a bulk load, the planner
counts a word found in a quarter of the posts with a sequential scan at this size;
at 100,000 posts it doesn't.) The browse sidebar's facet counts are a grouped pass
over the whole catalog by design; they are cached, and the requests checked here
come after the cache is warm.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import event, text

from app.auth.services import create_user
from app.db import include_in_autogenerate
from app.extensions import db
from app.models import Post, Topic
from app.search import engine
from app.search.parser import parse
from app.search.postgres import RANK
from tests import pg
from tests.conftest import HTMX, PASSWORD, sign_in

pytestmark = pg.MARKS

POSTS = 20_000
TOPICS = [f"topic-{n}" for n in range(20)]
RARE = "zyzzyva"  # in 5 posts
PHRASE = "event loop"  # in about 8 % of summaries


# --- Migration and triggers ----------------------------------------------------------


@pytest.fixture
def pg_app(tmp_path) -> Iterator[Flask]:
    with pg.migrated_app(tmp_path) as app:
        yield app


def search_titles(q: str, user=None, sort: str = "relevance") -> list[str]:
    results = engine.search(parse(q), user, sort=sort)
    return [hit.post.title for hit in results.page.items]


def test_the_models_match_the_migrations_except_the_search_objects(pg_app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        unfiltered = str(compare_metadata(context, db.metadata))
        context = MigrationContext.configure(
            connection, opts={"include_object": include_in_autogenerate}
        )
        filtered = str(compare_metadata(context, db.metadata))
    assert "search_vector" in unfiltered and "ix_posts_search_title_key" in unfiltered
    assert "search_vector" not in filtered and "ix_posts_search" not in filtered


def test_downgrade_removes_the_search_objects_and_upgrade_restores_them(pg_app):
    post = Post(title="Quokka facts", dedupe_key="q", reading_minutes=3)
    db.session.add(post)
    db.session.commit()
    db.session.remove()
    downgrade(revision="0007")
    columns = db.session.scalars(
        text(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'posts'"
        )
    ).all()
    assert "search_vector" not in columns
    assert db.session.scalar(text("SELECT to_regproc('dogear_title_key')")) is None
    db.session.remove()
    upgrade()
    assert search_titles("quokka") == ["Quokka facts"]  # the backfill


def test_triggers_index_only_what_changed(pg_app):
    post = Post(title="Ferret facts", dedupe_key="f", reading_minutes=3)
    post.topics = [Topic(slug="machine-learning", name="Machine Learning")]
    db.session.add(post)
    db.session.commit()
    assert search_titles("machine learning") == ["Ferret facts"]
    vector = text("SELECT search_vector::text FROM posts WHERE id = :id")
    before = db.session.scalar(vector, {"id": post.id})
    post.fetch_state = "done"  # not indexed: the vector is left alone
    db.session.commit()
    assert db.session.scalar(vector, {"id": post.id}) == before
    post.content_text = "A long article about wombats."
    db.session.commit()
    assert search_titles("wombat") == ["Ferret facts"]
    # Topics added in one statement, a topic renamed, a topic deleted.
    db.session.add_all([Topic(slug="rust", name="Rust"), Topic(slug="go", name="Go")])
    db.session.commit()
    db.session.execute(
        text(
            "INSERT INTO post_topics (post_id, topic_id)"
            " SELECT :id, id FROM topics WHERE slug IN ('rust', 'go')"
        ),
        {"id": post.id},
    )
    db.session.commit()
    assert search_titles("rust go") == ["Ferret facts"]
    db.session.execute(text("UPDATE topics SET name = 'Oxidation' WHERE slug = 'rust'"))
    db.session.commit()
    assert search_titles("oxidation") == ["Ferret facts"]
    db.session.execute(text("DELETE FROM topics WHERE slug = 'go'"))
    db.session.commit()
    assert search_titles("go") == []


def test_a_very_long_article_is_indexed_in_part_and_saves(pg_app):
    words = " ".join(f"w{n}x{n * 7919 % 100_003}" for n in range(60_000))
    post = Post(title="Huge", dedupe_key="h", reading_minutes=300, content_text=words)
    db.session.add(post)
    db.session.commit()
    assert search_titles("w1x7919") == ["Huge"]


# --- Plans on a generated catalog ----------------------------------------------------


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        n = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)))
    return sorted(words)


LOAD = [
    "SELECT setseed(0.20261121)",
    # Words by a Zipf-like law (word k drawn with probability ~ 1/k), dates and lengths
    # independent of the order rows are added in, as in bench/catalog.py.
    """
    INSERT INTO posts (title, summary, author, published_on, reading_minutes, word_count,
                       dedupe_key, source_id, owner_id, created_at, updated_at)
    SELECT
        initcap((SELECT string_agg(x.w, ' ') FROM (SELECT v.w[floor(power(v.n, random()))::int]
                 AS w FROM generate_series(1, 4 + g % 7) AS k) AS x)),
        (SELECT string_agg(x.w, ' ') FROM (SELECT v.w[floor(power(v.n, random()))::int]
         AS w FROM generate_series(1, 22 + g % 21) AS k) AS x)
        || CASE WHEN g % 13 = 0 THEN ' :phrase' ELSE '' END
        || CASE WHEN g % 4001 = 17 THEN ' :rare' ELSE '' END || '.',
        'Author ' || (floor(power(2000, random())))::int,
        date '2012-01-01' + floor(5400 * sqrt(random()))::int,
        1 + floor(power(60, random()))::int,
        1000,
        'gen-' || g,
        1 + g % 40,
        CASE WHEN g % 100 = 0 THEN :owner END,
        now(), now()
    FROM generate_series(1, :posts) AS g,
         (SELECT CAST(:vocab AS text[]) AS w, :size AS n) AS v
    """,
    """
    INSERT INTO post_topics (post_id, topic_id)
    SELECT p.id, t.ids[1 + floor(power(20, random()))::int - 1]
    FROM posts AS p, generate_series(1, 3) AS k,
         (SELECT array_agg(id ORDER BY id) AS ids FROM topics) AS t
    WHERE random() < 0.5
    ON CONFLICT DO NOTHING
    """,
    """
    INSERT INTO entries (user_id, post_id, state, progress, position, note, added_at,
                         touched_at)
    SELECT :reader, p.id, s.state, s.progress, row_number() OVER (ORDER BY p.id), '',
           now(), now()
    FROM posts AS p
    JOIN (VALUES (0, 'saved', 0), (1, 'reading', 40), (2, 'done', 100), (3, 'archived', 0))
         AS s(k, state, progress) ON s.k = p.id % 4
    WHERE p.owner_id IS NULL AND p.id % 61 = 0
    """,
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Iterator[Flask]:
    """A migrated schema with POSTS generated posts (1 % private), compacted and
    analyzed; a reader with ~300 entries (reader@example.com) and the owner of the
    private posts."""
    tmp = tmp_path_factory.mktemp("catalog")
    with pg.fresh_schema() as schema:
        app = pg.pg_app(tmp, schema, FACETS_MAX_AGE=3600)
        with app.app_context():
            upgrade()
            reader = create_user("reader@example.com", PASSWORD)
            owner = create_user("owner@example.com", PASSWORD)
            db.session.add_all(Topic(slug=slug, name=slug.title()) for slug in TOPICS)
            db.session.execute(
                text(
                    "INSERT INTO sources (name, kind, status, last_error, created_at)"
                    " SELECT 'Source ' || n, 'manual', 'new', '', now()"
                    " FROM generate_series(1, 40) AS n"
                )
            )
            db.session.commit()
            vocab = _vocabulary(random.Random(20261121))
            for statement in LOAD:
                statement = statement.replace(":phrase", PHRASE).replace(":rare", RARE)
                db.session.execute(
                    text(statement),
                    {
                        "vocab": vocab,
                        "size": len(vocab),
                        "posts": POSTS,
                        "owner": owner.id,
                        "reader": reader.id,
                    },
                )
            loaded_by = db.session.scalar(text("SELECT txid_current()"))
            db.session.commit()
            # Adding the topics rewrote every post (its vector changed): compact the
            # table, as a catalog that grew over time and reused that space would be.
            pg.settle(db.engine, loaded_by)
            yield app
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="module")
def words(catalog) -> dict[str, str]:
    """A common word (in 10-25 % of posts) and a topic on many posts."""
    common = db.session.scalar(
        text(
            "SELECT word FROM ts_stat('SELECT search_vector FROM posts')"
            " WHERE ndoc BETWEEN :low AND :high ORDER BY ndoc DESC LIMIT 1"
        ),
        {"low": POSTS // 10, "high": POSTS // 4},
    )
    assert common
    assert (
        db.session.scalar(
            text("SELECT count(*) FROM posts WHERE search_vector @@ to_tsquery('dogear', :w)"),
            {"w": RARE},
        )
        == 5
    )
    return {"common": common, "topic": TOPICS[1]}


@contextmanager
def statements() -> Iterator[list[tuple[str, object]]]:
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, *args):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def plans_of(client, url: str, **kwargs) -> list[str]:
    """The plans of every statement reading posts that the request made."""
    client.get(url, **kwargs)  # warm: the facet cache, the user's session
    with statements() as seen:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    plans = []
    connection = db.session.connection()
    for statement, parameters in seen:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "posts" in statement:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plans.append(statement + "\n" + "\n".join(row[0] for row in rows))
    db.session.rollback()
    assert plans
    return plans


def assert_no_seq_scan_on_posts(plans: list[str]) -> None:
    scans = [plan for plan in plans if "Seq Scan on posts" in plan]
    assert not scans, "\n\n".join(scans)


@pytest.fixture(scope="module")
def reader_client(catalog):
    client = catalog.test_client()
    assert sign_in(client, "reader@example.com").status_code == 303
    return client


@pytest.mark.parametrize(
    "q",
    [
        RARE,
        "{common}",
        "{common} sort=newest",
        "{common} sort=shortest",
        f'"{PHRASE}" topic:{{topic}}',
        "topic:{topic}",
        "topic:{topic} length:short year:2020",
        "is:saved",
        "is:unread {common}",
        "{common} -" + RARE,
        "-{common}",
        'author:"author 7"',
        "min:30 after:2025",
    ],
)
def test_search_reads_posts_through_indexes(catalog, reader_client, words, q):
    q = q.format(**words)
    args = {}
    if " sort=" in q:
        q, sort = q.split(" sort=")
        args["sort"] = sort
    for headers in ({}, HTMX):
        plans = plans_of(reader_client, "/search", query_string={"q": q, **args}, headers=headers)
        assert_no_seq_scan_on_posts(plans)
    assert_no_seq_scan_on_posts(plans_of(catalog.test_client(), "/search", query_string={"q": q}))


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?topic={topic}&length=short",
        "/?topic={topic}&length=long&sort=oldest",
        "/?page=500",
        "/?sort=longest&page=50",
        "/?year=2020",
    ],
)
def test_browse_reads_posts_through_indexes(catalog, reader_client, words, url):
    assert_no_seq_scan_on_posts(plans_of(reader_client, url.format(**words)))


def test_the_post_page_and_its_related_posts_read_posts_through_indexes(
    catalog, reader_client, words
):
    post_id = db.session.scalar(
        text("SELECT id FROM posts WHERE owner_id IS NULL AND summary LIKE :p LIMIT 1"),
        {"p": f"%{RARE}%"},
    )
    assert_no_seq_scan_on_posts(plans_of(reader_client, f"/posts/{post_id}"))


def test_results_on_the_generated_catalog(catalog, words):
    """Counts stop at the cap, relevance ranks every match, the rare word is found."""
    common = engine.search(parse(words["common"]), None)
    assert common.more and common.total == engine.COUNT_CAP
    assert len(common.page.items) == 20
    # The first page is the true top 20 of every match (brute force), not of the newest.
    truth = db.session.scalars(
        text(
            "SELECT p.id FROM posts AS p, to_tsquery('dogear', :w) AS q"
            " WHERE p.search_vector @@ q AND p.owner_id IS NULL"
            f" ORDER BY {RANK.format(q='q')} DESC, p.published_on DESC NULLS LAST, p.id DESC"
            " LIMIT 20"
        ),
        {"w": words["common"]},
    ).all()
    assert [hit.post.id for hit in common.page.items] == truth
    assert engine.search(parse(RARE), None).total == 5

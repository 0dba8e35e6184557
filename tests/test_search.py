"""Search as a reader meets it: ranking, syntax, filters, facets, htmx and no-JS.

Every test runs on SQLite and on PostgreSQL (skipped without a server, see tests/pg.py):
both engines must give the same answers to everything the query syntax documents.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event

from app.extensions import db
from app.lists import services
from app.models import Entry, Source, Topic
from app.search import engine
from app.search.parser import parse
from tests import pg
from tests.conftest import HTMX, make_app, sign_in
from tests.pg import pg_schema  # noqa: F401 - a fixture the PostgreSQL app uses

TITLE = re.compile(r'class="post-title"[^>]*>\s*<a href="[^"]*/posts/(\d+)"[^>]*>([^<]*)</a>')
STATUS = re.compile(r'id="search-status"[^>]*>([^<]*)</p>')


def titles(response) -> list[str]:
    assert response.status_code == 200
    return [title for _, title in TITLE.findall(response.get_data(as_text=True))]


def status(response) -> str:
    match = STATUS.search(response.get_data(as_text=True))
    return match.group(1).strip() if match else ""


def search(client, q: str, **args) -> list[str]:
    return titles(client.get("/search", query_string={"q": q, **args}))


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite_only),
        pytest.param("postgres", marks=pg.MARKS),
    ]
)
def app(request, tmp_path, migrated_db):
    """The app on a fresh database: SQLite, then PostgreSQL."""
    if request.param == "postgres":
        with pg.emptied_app(tmp_path, request.getfixturevalue("pg_schema")) as app:
            yield app
        return
    shutil.copy(migrated_db, tmp_path / "test.db")
    app = make_app(tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def corpus(make_post):
    """A small fixed catalog."""
    posts = {
        "exact": make_post(
            title="Python Packaging",
            summary="The short version.",
            published_on=date(2019, 1, 1),
            topics=["python"],
        ),
        "packaging": make_post(
            title="Python packaging, packaging and more packaging for python people",
            summary="Python packaging explained: wheels, python packaging tools, packaging.",
            published_on=date(2026, 2, 1),
            topics=["python", "tooling"],
        ),
        "running": make_post(
            title="Running the event loop",
            summary="How asyncio schedules callbacks on the loop.",
            author="Jane Doe",
            published_on=date(2026, 5, 3),
            reading_minutes=12,
            topics=["python", "asyncio"],
        ),
        "loop": make_post(
            title="Loop over events in JavaScript",
            summary="Events, then a loop.",
            author="John Smith",
            published_on=date(2025, 7, 9),
            reading_minutes=3,
            topics=["javascript"],
        ),
        "cafe": make_post(
            title="Café culture for developers",
            summary="Naïve résumé of coffee-driven development.",
            author="Zoë Brontë",
            published_on=date(2024, 4, 4),
            reading_minutes=5,
        ),
        "django": make_post(
            title="Asyncio with Django views",
            summary="Async views in Django with asyncio.",
            published_on=date(2025, 1, 15),
            topics=["python", "django", "asyncio"],
        ),
        "asynchronous": make_post(
            title="Asynchronous Rust",
            summary="Futures and tokio.",
            published_on=date(2026, 8, 1),
            reading_minutes=25,
            topics=["rust"],
        ),
    }
    return posts


# --- Ranking and syntax --------------------------------------------------------------


def test_exact_title_match_ranks_first(client, corpus):
    found = search(client, "python packaging")
    assert found[0] == "Python Packaging"
    assert "Python packaging, packaging and more packaging for python people" in found


def test_exact_title_ignores_case_accents_and_punctuation(client, make_post, corpus):
    make_post(title="Polars in 2026 — The DataFrame Library!", summary="x")
    make_post(title="Polars in 2026: the dataframe library, benchmarked", summary="polars " * 5)
    assert search(client, "polars in 2026 the dataframe library")[0] == (
        "Polars in 2026 — The DataFrame Library!"
    )
    assert search(client, "cafe culture for developers")[0] == "Café culture for developers"


def test_ranking_prefers_title_over_summary_then_recency(client, make_post):
    make_post(title="Notes", summary="Something about tokio.", published_on=date(2026, 1, 1))
    make_post(title="Tokio internals", summary="Other things.", published_on=date(2020, 1, 1))
    make_post(title="Tokio tour", summary="Other things.", published_on=date(2024, 1, 1))
    assert search(client, "tokio") == ["Tokio tour", "Tokio internals", "Notes"]


def test_words_are_stemmed(client, corpus):
    assert "Running the event loop" in search(client, "runs")
    assert "Loop over events in JavaScript" in search(client, "event")


def test_accents_are_ignored_both_ways(client, corpus):
    assert search(client, "cafe") == ["Café culture for developers"]
    assert search(client, "CAFÉ naive resume") == ["Café culture for developers"]
    assert search(client, 'author:"zoe bronte"') == ["Café culture for developers"]


def test_phrase_needs_the_words_in_a_row(client, corpus):
    assert search(client, '"event loop"') == ["Running the event loop"]
    assert set(search(client, "event loop")) == {
        "Running the event loop",
        "Loop over events in JavaScript",
    }


def test_excluded_words(client, corpus):
    assert set(search(client, "asyncio")) == {
        "Running the event loop",
        "Asyncio with Django views",
    }
    assert search(client, "asyncio -django") == ["Running the event loop"]
    assert search(client, "asyncio NOT django") == ["Running the event loop"]


def test_only_excluded_words_lists_everything_else(client, corpus):
    found = search(client, "-python")
    assert "Café culture for developers" in found
    assert not any("Python" in title for title in found)


def test_prefix(client, corpus):
    assert set(search(client, "async*")) == {
        "Running the event loop",
        "Asyncio with Django views",
        "Asynchronous Rust",
    }


def test_or(client, corpus):
    assert set(search(client, "tokio OR javascript")) == {
        "Asynchronous Rust",
        "Loop over events in JavaScript",
    }


def test_unknown_field_is_searched_as_words(client, make_post):
    make_post(title="Read the foo bar manual")
    assert search(client, "foo:bar") == ["Read the foo bar manual"]


def test_a_word_is_not_a_prefix_of_longer_words(client, make_post):
    make_post(title="Go concurrency patterns")
    make_post(title="Good habits")
    assert search(client, "go") == ["Go concurrency patterns"]
    assert set(search(client, "go*")) == {"Go concurrency patterns", "Good habits"}


def test_words_split_at_punctuation_as_the_index_splits_them(client, make_post):
    make_post(title="Coffee-driven development", summary="See docs.example.com now.")
    make_post(title="Snake_case names", summary="Don't panic.")
    assert search(client, "driven") == ["Coffee-driven development"]
    assert search(client, "coffee-driven") == ["Coffee-driven development"]
    assert search(client, "example") == ["Coffee-driven development"]
    assert search(client, "snake") == ["Snake_case names"]
    assert search(client, "don't") == ["Snake_case names"]


def test_a_phrase_does_not_run_from_one_field_into_the_next(client, make_post):
    make_post(title="All about the event", summary="Loop after loop.")
    make_post(title="Inside the event loop", summary="Callbacks.")
    assert search(client, '"event loop"') == ["Inside the event loop"]


def test_topics_and_the_plain_text_of_articles_are_searched(client, make_post):
    make_post(title="Untitled", topics=["machine-learning"])
    make_post(
        title="Field notes",
        content='<p class="pangolin">Sighting of an <em>okapi</em>.</p>',
        content_text="Sighting of an okapi.",
    )
    assert search(client, "machine learning") == ["Untitled"]
    assert search(client, "okapi") == ["Field notes"]
    assert search(client, "pangolin") == []  # only in the HTML
    assert search(client, "em") == []


def test_a_title_hit_beats_a_word_repeated_in_the_content(client, make_post):
    make_post(title="Marmot", summary="Short.", published_on=date(2020, 1, 1))
    make_post(
        title="Mountain fauna",
        summary="Long.",
        content_text="marmot " * 200,
        published_on=date(2026, 1, 1),
    )
    assert search(client, "marmot") == ["Marmot", "Mountain fauna"]


# --- Filters -------------------------------------------------------------------------


def test_topic_filter_by_slug_or_name(client, corpus):
    assert set(search(client, "topic:asyncio")) == {
        "Running the event loop",
        "Asyncio with Django views",
    }
    assert search(client, "loop topic:Python") == ["Running the event loop"]
    assert search(client, "topic:python -topic:asyncio -topic:tooling") == ["Python Packaging"]


def test_unknown_topic_says_so(client, corpus):
    response = client.get("/search", query_string={"q": "topic:cobol"})
    assert titles(response) == []
    assert "There is no topic “cobol”." in response.get_data(as_text=True)


def test_author_filter(client, corpus):
    assert search(client, 'author:"Jane Doe"') == ["Running the event loop"]
    assert search(client, "loop -author:smith") == ["Running the event loop"]


def test_source_filter(client, make_post):
    weekly = Source(name="Python Weekly")
    db.session.add(weekly)
    db.session.commit()
    make_post(title="From the weekly", source_id=weekly.id)
    make_post(title="From elsewhere")
    assert search(client, "source:weekly") == ["From the weekly"]
    assert search(client, 'source:"python weekly"') == ["From the weekly"]
    assert search(client, "from -source:weekly") == ["From elsewhere"]


def test_source_names_are_matched_literally(client, make_post):
    """`_` and `%` are characters, not patterns."""
    for name in ("Data_Weekly", "DataXWeekly", "100% Python", "1000 Pythons"):
        db.session.add(Source(name=name))
    db.session.commit()
    ids = {s.name: s.id for s in db.session.query(Source)}
    for name, source_id in ids.items():
        make_post(title=f"From {name}", source_id=source_id)
    assert search(client, "source:data_weekly") == ["From Data_Weekly"]
    assert search(client, "source:100%") == ["From 100% Python"]
    assert "From DataXWeekly" in search(client, "from -source:data_weekly")


def test_two_years_are_either_year(client, corpus, make_post):
    make_post(title="Undated", published_on=None)
    assert search(client, "year:2019 year:2024", sort="oldest") == [
        "Python Packaging",
        "Café culture for developers",
    ]
    found = search(client, "-year:2026 -year:2025")
    assert set(found) == {"Python Packaging", "Café culture for developers", "Undated"}


def test_undated_posts_sort_last_newest_first_and_first_oldest_first(client, make_post):
    make_post(title="Lemur undated", published_on=None)
    make_post(title="Lemur old", published_on=date(2010, 1, 1))
    make_post(title="Lemur new", published_on=date(2020, 1, 1))
    assert search(client, "lemur", sort="newest") == ["Lemur new", "Lemur old", "Lemur undated"]
    assert search(client, "lemur", sort="oldest") == ["Lemur undated", "Lemur old", "Lemur new"]


def test_date_filters(client, corpus):
    assert search(client, "year:2025", sort="oldest") == [
        "Asyncio with Django views",
        "Loop over events in JavaScript",
    ]
    assert search(client, "before:2019-01-02") == ["Python Packaging"]
    assert search(client, "after:2026-05-03 before:2026-06") == ["Running the event loop"]
    assert search(client, "after:2026-08") == ["Asynchronous Rust"]
    assert search(client, "after:2026 before:2025") == []


def test_reading_minutes_filters(client, corpus):
    assert set(search(client, "min:12")) == {"Running the event loop", "Asynchronous Rust"}
    assert search(client, "max:4") == ["Loop over events in JavaScript"]
    assert search(client, "min:5 max:5") == ["Café culture for developers"]
    assert set(search(client, "length:long")) == {"Running the event loop", "Asynchronous Rust"}
    assert search(client, "length:short") == ["Loop over events in JavaScript"]


def test_reading_states_are_each_readers_own(app, client, make_user, corpus):
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    services.save_post(ada, corpus["running"].id)
    entry = services.save_post(ada, corpus["loop"].id)
    services.update_progress(ada, entry.id, 40)
    services.save_post(bob, corpus["cafe"].id)

    sign_in(client, ada)
    assert search(client, "is:saved") == ["Running the event loop"]
    assert search(client, "is:reading") == ["Loop over events in JavaScript"]
    assert set(search(client, "is:saved is:reading")) == {
        "Running the event loop",
        "Loop over events in JavaScript",
    }
    assert "Café culture for developers" in search(client, "is:unread")
    assert "Loop over events in JavaScript" not in search(client, "is:unread")
    assert "Running the event loop" in search(client, "is:unread")  # saved, not started
    assert "Running the event loop" not in search(client, "-is:saved")

    other = app.test_client()
    sign_in(other, bob)
    assert search(other, "is:saved") == ["Café culture for developers"]
    assert search(other, "is:reading") == []


def test_reading_states_for_anonymous_are_ignored_with_a_note(client, corpus):
    response = client.get("/search", query_string={"q": "asyncio is:saved"})
    assert set(titles(response)) == {"Running the event loop", "Asyncio with Django views"}
    assert "Sign in to filter by your reading list" in response.get_data(as_text=True)


def test_private_posts_are_found_by_their_owner_only(app, client, make_user, make_post):
    owner = make_user("owner@example.com")
    make_user("other@example.com")
    make_post(title="My secret zeppelin notes", owner_id=owner.id)
    make_post(title="Public zeppelin history")
    assert search(client, "zeppelin") == ["Public zeppelin history"]
    assert search(client, "-nothing") == ["Public zeppelin history"]
    sign_in(client, "other@example.com")
    assert search(client, "zeppelin") == ["Public zeppelin history"]
    assert status(client.get("/search?q=zeppelin")) == "1 result"
    mine = app.test_client()
    sign_in(mine, owner)
    assert set(search(mine, "zeppelin")) == {"My secret zeppelin notes", "Public zeppelin history"}
    assert "My secret zeppelin notes" in search(mine, "min:0")


def test_a_private_post_is_found_by_every_reader_who_saved_it(app, client, make_user, make_post):
    owner = make_user("owner@example.com")
    saver = make_user("saver@example.com")
    make_user("stranger@example.com")
    post = make_post(title="Shared capybara article", owner_id=owner.id)
    db.session.add(Entry(user_id=saver.id, post_id=post.id))
    db.session.commit()
    sign_in(client, saver)
    assert search(client, "capybara") == ["Shared capybara article"]
    assert search(client, "is:saved") == ["Shared capybara article"]
    stranger = app.test_client()
    sign_in(stranger, "stranger@example.com")
    assert search(stranger, "capybara") == []
    assert search(stranger, "-nothing") == []
    db.session.query(Entry).delete()
    db.session.commit()
    assert search(client, "capybara") == []


# --- Sorting, counting, paging -------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["Asynchronous Rust", "Running the event loop", "Asyncio with Django views"]),
        ("oldest", ["Asyncio with Django views", "Running the event loop", "Asynchronous Rust"]),
        ("shortest", ["Asyncio with Django views", "Running the event loop", "Asynchronous Rust"]),
        ("longest", ["Asynchronous Rust", "Running the event loop", "Asyncio with Django views"]),
    ],
)
def test_sorts(client, corpus, sort, expected):
    assert search(client, "async*", sort=sort) == expected


def test_sorted_results_are_the_same_when_there_are_many(client, corpus, monkeypatch):
    """Above COUNT_CAP matches the engine walks the posts index instead of sorting the
    matches; both plans must agree."""
    expected = search(client, "topic:python", sort="newest")
    monkeypatch.setattr(engine, "COUNT_CAP", 1)
    response = client.get("/search", query_string={"q": "topic:python", "sort": "newest"})
    assert titles(response) == expected
    assert status(response) == "1+ results"


def test_relevance_ranks_past_the_facet_pool(client, make_post, monkeypatch):
    for n in range(6):
        make_post(title=f"Zebra number {n}", published_on=date(2020, 1, 1 + n))
    monkeypatch.setattr(engine, "POOL", 4)
    response = client.get("/search", query_string={"q": "zebra"})
    assert len(titles(response)) == 6
    assert "most recently added" not in response.get_data(as_text=True)
    assert status(response) == "6 results"


def test_pagination(app, client, make_post):
    for n in range(25):
        make_post(title=f"Walrus {n}", published_on=date(2020, 1, 1 + n))
    first = client.get("/search", query_string={"q": "walrus", "sort": "newest"})
    assert status(first) == "25 results"
    assert titles(first)[0] == "Walrus 24" and len(titles(first)) == 20
    assert 'rel="next"' in first.get_data(as_text=True)
    second = client.get("/search", query_string={"q": "walrus", "sort": "newest", "page": 2})
    assert titles(second) == [f"Walrus {n}" for n in range(4, -1, -1)]
    assert len(titles(client.get("/search?q=walrus&page=2"))) == 5
    assert len(titles(client.get("/search?q=walrus&page=999"))) == 5  # clamped to the last


# --- Facets --------------------------------------------------------------------------


def facet_links(response) -> dict[str, tuple[int, str]]:
    html = response.get_data(as_text=True)
    links = re.findall(
        r'<li><a href="([^"]+)"[^>]*>([^<]+) <span class="count">(\d+)</span></a></li>', html
    )
    return {
        html_lib.unescape(label).strip(): (int(count), html_lib.unescape(href))
        for href, label, count in links
    }


def test_facet_counts_match_the_results(client, corpus):
    facets = facet_links(client.get("/search", query_string={"q": "python OR asyncio OR rust"}))
    assert facets["Python"][0] == 4
    assert facets["Asyncio"][0] == 2
    assert facets["Rust"][0] == 1
    assert facets["2026"][0] == 3 and facets["2025"][0] == 1 and facets["2019"][0] == 1
    assert facets["Jane Doe"][0] == 1 and facets["Ada Writer"][0] == 4
    assert facets["Long (> 10 min)"][0] == 2 and facets["Medium (5–10 min)"][0] == 3
    assert "Short (< 5 min)" not in facets


def test_facet_link_narrows_and_then_widens_again(client, corpus):
    href = facet_links(client.get("/search", query_string={"q": "async*"}))["Rust"][1]
    assert parse_qs(urlsplit(href).query)["q"] == ["async* topic:rust"]
    narrowed = client.get(href)
    assert titles(narrowed) == ["Asynchronous Rust"]
    active = facet_links(narrowed)["Rust"]
    assert active[0] == 1
    assert titles(client.get(active[1])) == search(client, "async*")


# --- Index kept in sync --------------------------------------------------------------


def test_index_follows_inserts_edits_and_deletes(client, make_post):
    post = make_post(title="Quokka handbook", summary="About marsupials.")
    assert search(client, "quokka") == ["Quokka handbook"]
    post.title = "Wombat handbook"
    db.session.commit()
    assert search(client, "quokka") == []
    assert search(client, "wombat") == ["Wombat handbook"]
    assert search(client, "wombat handbook") == ["Wombat handbook"]  # exact title key too
    post.published_on = date(2011, 5, 5)
    post.reading_minutes = 30
    db.session.commit()
    assert search(client, "year:2011 length:long") == ["Wombat handbook"]
    db.session.delete(post)
    db.session.commit()
    assert search(client, "wombat") == []


def test_index_follows_topic_changes(client, make_post):
    post = make_post(title="Ferret facts", topics=["python"])
    assert search(client, "topic:python") == ["Ferret facts"]
    post.topics = [Topic(slug="machine-learning", name="Machine Learning")]
    db.session.commit()
    assert search(client, "topic:python") == []
    assert search(client, "topic:machine-learning") == ["Ferret facts"]
    assert search(client, "machine learning") == ["Ferret facts"]  # topic names are words
    topic = db.session.query(Topic).filter_by(slug="machine-learning").one()
    topic.name = "Statistical Learning"
    db.session.commit()
    assert search(client, "statistical") == ["Ferret facts"]
    db.session.delete(topic)
    db.session.commit()
    assert search(client, "statistical") == []
    assert search(client, "ferret") == ["Ferret facts"]


# --- Pages: htmx, no JavaScript, safety ----------------------------------------------


def test_full_page_without_javascript(client, corpus):
    response = client.get("/search?q=loop")
    html = response.get_data(as_text=True)
    assert "<html" in html and 'method="get"' in html and 'action="/search"' in html
    assert 'name="q" value="loop"' in html
    assert status(response) == "2 results"
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_gets_the_results_fragment(client, corpus):
    response = client.get("/search?q=loop", headers=HTMX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and "search-form" not in html
    assert '<div id="search-results"' in html
    assert 'id="search-status"' in html and 'hx-swap-oob="innerHTML"' in html
    assert set(titles(response)) == {"Running the event loop", "Loop over events in JavaScript"}
    assert "HX-Request" in response.headers["Vary"]


def test_form_searches_as_you_type(client):
    html = client.get("/search").get_data(as_text=True)
    box = html.split('id="search-q"')[1].split(">")[0]
    assert 'hx-trigger="input changed delay:' in box
    assert 'hx-replace-url="true"' in box  # a pause in typing adds no history entry
    assert 'hx-sync="#search-form:replace"' in box
    form = html.split('id="search-form"')[1].split(">")[0]
    assert 'hx-push-url="true"' in form and 'hx-trigger="change from:#search-sort, submit"' in form
    assert 'hx-indicator="#search-indicator"' in html
    assert "Type a few words" in html


def test_the_word_being_typed_matches_as_a_prefix(client, make_post):
    make_post(title="Running Kubernetes at home", summary="A small cluster.")
    make_post(title="Celery task queues", summary="Workers and brokers.")
    typing = {**HTMX, "HX-Trigger": "search-q"}

    def typed(q: str) -> list[str]:
        return titles(client.get("/search", query_string={"q": q}, headers=typing))

    assert typed("kube") == ["Running Kubernetes at home"]
    assert typed("celer") == ["Celery task queues"]
    assert typed("running kube") == ["Running Kubernetes at home"]
    assert typed("kube ") == []  # a space ends the word: it is matched whole
    # A submitted search is exact, as the search tips say (`kube*` for a prefix).
    assert search(client, "kube") == []
    assert search(client, "kube*") == ["Running Kubernetes at home"]
    response = client.get("/search", query_string={"q": "kube"}, headers=typing)
    assert "HX-Trigger" in response.headers["Vary"]


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"unbalanced quote',
        "-",
        "- - -",
        "OR",
        "AND OR NOT",
        "*",
        "***",
        "a" * 1001,
        "word " * 300,
        "NEAR(a b)",
        "title:x {title}: y",
        "^start",
        "foo:",
        'author:"',
        "before:2026-99-99",
        "is:",
        "\x00 nul",
        "'; DROP TABLE posts; --",
        "(((",
        "🐍 python",
        "dgxprivate",
    ],
)
def test_malformed_queries_never_fail(client, corpus, q):
    for headers in ({}, HTMX):
        response = client.get("/search", query_string={"q": q}, headers=headers)
        assert response.status_code == 200
        body = response.get_data(as_text=True).lower()
        assert "fts5" not in body and "syntax error" not in body


def test_bad_page_and_sort_arguments_fall_back(client, corpus):
    assert client.get("/search?q=loop&page=abc&sort=sideways").status_code == 200
    assert client.get("/search?q=loop&page=-4").status_code == 200


def test_highlighting_escapes_markup(client, make_post):
    make_post(
        title="<script>alert('title')</script> gecko",
        summary="A gecko <script>alert('summary')</script> & <b>bold</b> \ue000stray",
    )
    make_post(title="Gecko care", summary="Feed your gecko <img src=x onerror=alert(1)>.")
    html = client.get("/search?q=gecko").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; gecko" in html
    assert "Feed your <mark>gecko</mark> &lt;img src=x onerror=alert(1)&gt;." in html


# --- Query count ---------------------------------------------------------------------


def count_statements(client, url: str) -> int:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


@pytest.mark.parametrize("sort", ["relevance", "newest"])
def test_statements_per_page_do_not_grow_with_results(client, reader, make_post, sort):
    def add(n: int) -> None:
        for _ in range(n):
            post = make_post(title="Narwhal study", topics=["python", "rust"])
            services.save_post(reader, post.id)

    add(1)
    few = count_statements(client, f"/search?q=narwhal&sort={sort}")
    add(19)
    many = count_statements(client, f"/search?q=narwhal&sort={sort}")
    assert len(search(client, "narwhal", sort=sort)) == 20
    assert many == few


# --- Related posts -------------------------------------------------------------------


def test_related_posts_share_rare_words_and_topics(app, make_post, make_user):
    post = make_post(title="Tuning the zymurgy pipeline", summary="Zymurgy at scale.")
    make_post(title="Zymurgy basics", summary="Brewing.")
    make_post(title="Unrelated", summary="Nothing in common.", topics=["rust"])
    owner = make_user("brewer@example.com")
    make_post(title="My zymurgy diary", owner_id=owner.id)
    related = [p.title for p in engine.related_posts(post)]
    assert related == ["Zymurgy basics"]
    assert "My zymurgy diary" in [p.title for p in engine.related_posts(post, user=owner)]

    tagged = make_post(title="Solo", summary="Lonely words.", topics=["rust"])
    assert [p.title for p in engine.related_posts(tagged, limit=3)] == ["Unrelated"]


def test_related_posts_follow_a_new_post_at_once(client, make_post):
    """The words a post's related posts are found by are picked once per catalog
    version: a post that makes one of them shared shows on the very next view."""
    post = make_post(title="Narwhal migration routes", summary="Tusks.")
    make_post(title="Something else", summary="Other words.")
    for _ in range(2):
        page = client.get(f"/posts/{post.id}").get_data(as_text=True)
        assert "Related posts" not in page
    make_post(title="Narwhal notes", summary="Seen from a boat.")
    page = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "Related posts" in page and "Narwhal notes" in page


def test_related_posts_never_include_the_post_itself(app, make_post):
    post = make_post(title="Okapi", summary="Okapi okapi.")
    assert engine.related_posts(post) == []


def test_the_engine_answers_directly(app, client, corpus, reader):
    """search() without a request, as other modules may call it."""
    results = engine.search(parse("loop -javascript topic:python"), reader, sort="newest")
    assert [hit.post.title for hit in results.page.items] == ["Running the event loop"]
    assert results.total == 1 and not results.more
    assert [v.value for v in results.facets.topics] == ["asyncio", "python"]

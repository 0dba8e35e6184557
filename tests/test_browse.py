"""Browse the catalog: filters, sorting, paging, htmx fragments and the post page."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date

from sqlalchemy import event, select, update

from app.browse.filters import BrowseFilters
from app.extensions import db
from app.models import Entry, Post, Source, Topic
from tests.conftest import sign_in


@contextmanager
def count_queries():
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _titles(html: str, titles: list[str]) -> list[str]:
    """The given titles in the order they appear on the page."""
    found = [t for t in titles if t in html]
    return sorted(found, key=html.index)


def test_catalog_is_newest_first_and_paginated(client, app, make_post):
    app.config["POSTS_PER_PAGE"] = 2
    make_post(title="Post A from 2024", published_on=date(2024, 1, 1))
    make_post(title="Post B from 2025", published_on=date(2025, 1, 1))
    make_post(title="Post C from 2026", published_on=date(2026, 1, 1))
    titles = ["Post A from 2024", "Post B from 2025", "Post C from 2026"]
    first = client.get("/").get_data(as_text=True)
    assert _titles(first, titles) == ["Post C from 2026", "Post B from 2025"]
    assert 'rel="next" href="/?page=2"' in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert _titles(second, titles) == ["Post A from 2024"]
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_filters_by_topic_and_length(client, make_post):
    make_post(title="Short Rust", reading_minutes=3, topics=["rust"])
    make_post(title="Long Rust", reading_minutes=14, topics=["rust"])
    make_post(title="Medium Python", reading_minutes=7, topics=["python"])
    make_post(title="Ten minute Python", reading_minutes=10, topics=["python"])
    everything = ["Short Rust", "Long Rust", "Medium Python", "Ten minute Python"]
    rust = client.get("/?topic=rust").get_data(as_text=True)
    assert set(_titles(rust, everything)) == {"Short Rust", "Long Rust"}
    short = client.get("/?length=short").get_data(as_text=True)
    assert _titles(short, everything) == ["Short Rust"]
    medium = client.get("/?length=medium").get_data(as_text=True)
    assert set(_titles(medium, everything)) == {"Medium Python", "Ten minute Python"}
    both = client.get("/?topic=rust&length=long").get_data(as_text=True)
    assert _titles(both, everything) == ["Long Rust"]


def test_sorts(client, make_post):
    make_post(title="Three", reading_minutes=3)
    make_post(title="Twenty", reading_minutes=20)
    make_post(title="Nine", reading_minutes=9)
    titles = ["Three", "Twenty", "Nine"]
    shortest = client.get("/?sort=shortest").get_data(as_text=True)
    assert _titles(shortest, titles) == ["Three", "Nine", "Twenty"]
    longest = client.get("/?sort=longest").get_data(as_text=True)
    assert _titles(longest, titles) == ["Twenty", "Nine", "Three"]


def test_bad_filter_values_fall_back_instead_of_failing(client, make_post):
    make_post(title="Still here")
    for query in [
        "?page=abc",
        "?page=-4",
        "?length=huge",
        "?sort=random",
        "?topic=%00",
        "?page=99999999",
    ]:
        response = client.get("/" + query)
        assert response.status_code == 200, query
    assert "Still here" in client.get("/?length=huge&sort=random").get_data(as_text=True)


def test_htmx_gets_only_the_results_fragment(client, make_post):
    make_post(title="Fragmented")
    full = client.get("/?sort=oldest")
    fragment = client.htmx_get("/?sort=oldest")
    assert "<html" in full.get_data(as_text=True)
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="browse-results"')
    assert "Fragmented" in html and "<html" not in html
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in full.headers["Vary"]
    # A boosted navigation or a history restore wants the whole page.
    boosted = client.get("/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)


def test_every_facet_is_a_plain_link(client, make_post):
    make_post(
        title="Tagged",
        topics=["docker"],
        reading_minutes=3,
        author="Ann Lee",
        published_on=date(2025, 5, 1),
    )
    html = client.get("/").get_data(as_text=True)
    sidebar = html[html.index('<aside class="sidebar facets browse-facets"') :]
    for href in [
        'href="/?topic=docker"',
        'href="/?length=short"',
        'href="/?year=2025"',
        'href="/?author=Ann+Lee"',
        'href="/?sort=oldest"',
    ]:
        assert href in sidebar, href
    assert "<form" not in sidebar
    # An active value links back to the wider list; the other facets keep it.
    narrowed = client.get("/?topic=docker").get_data(as_text=True)
    assert 'href="/" aria-current="true" class="is-active">Docker' in narrowed
    assert 'href="/?length=short&amp;topic=docker"' in narrowed


def test_facet_links_are_boosted_to_swap_the_browse_region(client, make_post):
    make_post(title="Tagged", topics=["docker"])
    html = client.get("/?topic=docker").get_data(as_text=True)
    boost = 'hx-boost="true" hx-target="#browse" hx-select="#browse" hx-swap="outerHTML"'
    assert f'aria-labelledby="facets-title" {boost}>' in html  # the facets
    assert f'<div class="active-filters" {boost}>' in html  # the chips
    assert '<div id="browse" class="with-sidebar">' in html  # cards keep their own targets
    boosted = client.get("/?topic=docker", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert '<div id="browse"' in boosted.get_data(as_text=True)


def test_saved_state_shows_on_browse_for_the_reader_only(app, client, reader, make_post):
    post = make_post(title="Mine to read")
    client.submit(f"/list/save/{post.id}", htmx=True)
    assert 'aria-pressed="true"' in client.get("/").get_data(as_text=True)
    stranger = app.test_client()
    assert "Sign in to save" in stranger.get("/").get_data(as_text=True)


def test_query_count_does_not_grow_with_results(client, reader, make_post):
    for n in range(3):
        post = make_post(topics=["python", "rust"])
        if n % 2:
            client.submit(f"/list/save/{post.id}", htmx=True)
    with count_queries() as few:
        client.get("/")
    for n in range(15):
        post = make_post(topics=["python", "go"])
        if n % 2:
            client.submit(f"/list/save/{post.id}", htmx=True)
    with count_queries() as many:
        client.get("/")
    assert len(many) == len(few)


def test_the_session_user_and_list_count_come_in_one_statement(client, reader, make_post):
    for _ in range(3):
        client.submit(f"/list/save/{make_post().id}", htmx=True)
    with count_queries() as seen:
        html = client.get("/").get_data(as_text=True)
    assert ">3<" in html.split('id="list-count"')[1][:120]  # the header's badge
    checks = [s for s in seen if "login_sessions" in s]
    assert len(checks) == 1 and "FROM list_summaries" in checks[0] and "users" in checks[0]
    counts = [s for s in seen if "list_summaries" in s or ("count(" in s and "FROM entries" in s)]
    assert counts == checks  # no second count for the badge


def test_private_posts_are_visible_to_their_owner_only_and_never_browsed(
    app, client, make_user, make_post
):
    owner = make_user("owner@example.com")
    private = make_post(title="My private note", owner_id=owner.id)
    make_post(title="Public post")
    assert "My private note" not in client.get("/").get_data(as_text=True)
    assert client.get(f"/posts/{private.id}").status_code == 404
    sign_in(client, owner)
    assert client.get(f"/posts/{private.id}").status_code == 200
    # Browse is the shared catalog: an article a reader added lives on their list.
    page = client.get("/").get_data(as_text=True)
    assert "Public post" in page
    assert "My private note" not in page


def test_post_page_shows_details_and_reader_controls(client, reader, make_post):
    source = Source(name="Logbook Weekly", kind="manual")
    db.session.add(source)
    db.session.commit()
    post = make_post(
        title="All about WAL",
        summary="Write-ahead logging explained.",
        word_count=2400,
        reading_minutes=11,
        topics=["wal", "sqlite"],
        source_id=source.id,
    )
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "All about WAL" in html and "Write-ahead logging explained." in html
    assert "2,400" in html and "11 min" in html and "<dd>Logbook Weekly</dd>" in html
    assert html.index('href="/?topic=sqlite"') < html.index('href="/?topic=wal"')
    assert f'id="post-entry-{post.id}"' in html and "Save it to put it on your list" in html
    client.submit(f"/list/save/{post.id}", htmx=True)
    panel = client.htmx_get(f"/list/post/{post.id}").get_data(as_text=True)
    assert panel.lstrip().startswith(f'<div id="post-entry-{post.id}"')
    assert 'name="progress"' in panel
    # The reader's tags show beside their progress, on the page and in the refreshed panel.
    entry_id = db.session.scalar(select(Entry.id).where(Entry.post_id == post.id))
    client.submit(f"/list/{entry_id}/tags", {"tags": "storage, later"}, htmx=True)
    for shown in (
        client.get(f"/posts/{post.id}").get_data(as_text=True),
        client.htmx_get(f"/list/post/{post.id}").get_data(as_text=True),
    ):
        assert shown.index(">later<") < shown.index(">storage<")


def test_unknown_post_is_a_404_page(client):
    response = client.get("/posts/12345")
    assert response.status_code == 404
    assert "doesn" in response.get_data(as_text=True) and "<html" in response.get_data(
        as_text=True
    )


def test_titles_are_escaped(client, make_post):
    make_post(title="<script>alert(1)</script> tricks", summary="<img src=x onerror=alert(1)>")
    html = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html


def test_author_year_and_source_facets_narrow_and_combine(client, make_post):
    from app.extensions import db
    from app.models import Source

    feed = Source(name="Async Weekly", kind="feed")
    db.session.add(feed)
    db.session.commit()
    make_post(title="Ann in 2025", author="Ann Lee", published_on=date(2025, 3, 1))
    make_post(
        title="Ann in 2026", author="Ann Lee", published_on=date(2026, 3, 1), source_id=feed.id
    )
    make_post(
        title="Bo in 2026", author="Bo Chen", published_on=date(2026, 4, 1), source_id=feed.id
    )
    titles = ["Ann in 2025", "Ann in 2026", "Bo in 2026"]

    html = client.get("/").get_data(as_text=True)
    assert 'href="/?author=Ann+Lee"' in html
    assert 'href="/?year=2026">2026 <span class="count">2</span>' in html

    by_ann = client.get("/?author=Ann+Lee").get_data(as_text=True)
    assert set(_titles(by_ann, titles)) == {"Ann in 2025", "Ann in 2026"}
    assert 'href="/?author=Ann+Lee&amp;year=2026"' in by_ann  # other facets keep the author
    in_2026 = client.get("/?year=2026").get_data(as_text=True)
    assert set(_titles(in_2026, titles)) == {"Ann in 2026", "Bo in 2026"}
    combined = client.get(f"/?author=Ann+Lee&year=2026&source={feed.id}").get_data(as_text=True)
    assert _titles(combined, titles) == ["Ann in 2026"]
    # Each active filter is a chip that removes just itself.
    assert f'href="/?year=2026&amp;source={feed.id}"' in combined
    assert "from Async Weekly" in combined


def test_post_entry_panel_without_htmx_goes_to_the_post_page(client, reader, make_post):
    post = make_post()
    response = client.get(f"/list/post/{post.id}")
    assert response.status_code == 302 and response.location == f"/posts/{post.id}"


def test_topic_filter_gives_the_same_posts_for_common_and_rare_topics(app, client, make_post):
    """Both query plans for the topic filter (walk in order, or fetch then sort)."""
    from app.browse import queries
    from app.pagination import paginate

    rusty = [
        make_post(title=f"Rusty {n}", topics=["rust"], published_on=date(2026, 1, n + 1)).id
        for n in range(6)
    ]
    make_post(title="Pythonic", topics=["python"])
    filters = BrowseFilters(topic="rust")
    walked = paginate(queries.catalog_post_ids(filters, common_topic=True), 1, 4)
    fetched = paginate(queries.catalog_post_ids(filters, common_topic=False), 1, 4)
    assert walked.items == fetched.items == rusty[::-1][:4]
    facets = queries.catalog_facets(BrowseFilters(), 0)
    assert facets.total == 7
    assert facets.is_common_topic("rust") and not facets.is_common_topic("haskell")


def test_post_page_lists_related_posts(client, make_post):
    post = make_post(
        title="Tuning PostgreSQL autovacuum",
        topics=["postgres"],
        summary="Autovacuum settings for busy tables.",
    )
    make_post(
        title="PostgreSQL autovacuum in practice",
        topics=["postgres"],
        summary="How autovacuum keeps tables healthy.",
    )
    make_post(title="Baking sourdough", topics=["cooking"], summary="Flour and water.")
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    related = html.split('id="related-title"')[1]
    assert "PostgreSQL autovacuum in practice" in related
    assert "Baking sourdough" not in related
    assert "Tuning PostgreSQL autovacuum</a>" not in related  # not itself


def test_a_page_past_the_end_offers_the_first_page(client, make_post):
    make_post(title="Only one", topics=["rust"])
    html = client.get("/?topic=rust&page=9").get_data(as_text=True)
    assert "This page is past the end" in html and 'href="/?topic=rust"' in html


FACET = re.compile(r'<a href="/(?:\?[^"]*)?"[^>]*>([^<]+?) <span class="count">([\d,]+)</span>')


def sidebar_counts(client, query: str = "") -> dict[str, int]:
    """The sidebar's facet links as {label: count}."""
    html = client.get(f"/?{query}").get_data(as_text=True)
    sidebar = html.split('id="facets-title"')[1].split("</aside>")[0]
    return {label.strip(): int(count.replace(",", "")) for label, count in FACET.findall(sidebar)}


def test_sidebar_counts_narrow_with_the_filters_already_chosen(client, make_post):
    make_post(title="Py long", topics=["python"], reading_minutes=20)
    make_post(title="Py short", topics=["python", "redis"], reading_minutes=2)
    make_post(title="Py short 2", topics=["python"], reading_minutes=3)
    make_post(title="Redis short", topics=["redis"], reading_minutes=2)
    everything = sidebar_counts(client)
    assert everything["Python"] == 3 and everything["Redis"] == 2
    assert everything["Short (under 5 min)"] == 3

    python = sidebar_counts(client, "topic=python")
    assert python["Python"] == 3
    assert python["Redis"] == 1  # only the Redis post that is also about Python
    assert python["Short (under 5 min)"] == 2 and python["Long (over 10 min)"] == 1

    # Every count offered leads to that many posts.
    both = sidebar_counts(client, "topic=python&length=short")
    assert both["Redis"] == 1
    html = client.get("/?topic=python&length=short").get_data(as_text=True)
    assert "Py short" in html and "Py long" not in html


def test_sidebar_counts_follow_a_write_made_by_another_worker_at_once(
    tmp_path, database, make_post
):
    """Two apps on one database stand for two workers or hosts. The counts are cached
    for an hour here, yet a post added through the other app shows on the next page:
    the catalog version in the database tells every worker its counts are stale."""
    from tests.conftest import make_app

    reader_side = make_app(tmp_path / "a", FACETS_MAX_AGE=3600, **database)
    writer_side = make_app(tmp_path / "b", **database)
    make_post(title="First", topics=["python"])
    with reader_side.app_context():
        browser = reader_side.test_client()
        assert sidebar_counts(browser)["Python"] == 1
        assert sidebar_counts(browser)["Python"] == 1  # now cached

    with writer_side.app_context():
        db.session.add(Post(title="Second", dedupe_key="second", topics=[python_topic()]))
        db.session.commit()
        db.session.remove()
    with reader_side.app_context():
        assert sidebar_counts(browser)["Python"] == 2

    with writer_side.app_context():  # a bulk statement, not an ORM object, and a rename
        db.session.execute(update(Topic).where(Topic.slug == "python").values(name="Python 3"))
        db.session.commit()
        db.session.remove()
    with reader_side.app_context():
        counts = sidebar_counts(browser)
        assert counts.get("Python 3") == 2 and "Python" not in counts
        db.session.remove()
        db.engine.dispose()
    with writer_side.app_context():
        db.engine.dispose()


def python_topic() -> Topic:
    return db.session.scalars(select(Topic).where(Topic.slug == "python")).one()


def test_undated_posts_come_last_when_newest_first_and_first_when_oldest(client, make_post):
    make_post(title="Undated", published_on=None)
    make_post(title="Older", published_on=date(2020, 1, 1))
    make_post(title="Newer", published_on=date(2024, 1, 1))

    def order(query: str) -> list[str]:
        html = client.get(f"/?{query}").get_data(as_text=True)
        return [t for t in re.findall(r">(Undated|Older|Newer)</a>", html)]

    assert order("") == ["Newer", "Older", "Undated"]
    assert order("sort=oldest") == ["Undated", "Older", "Newer"]


def test_cards_are_rendered_once_and_follow_every_change_on_any_worker(
    tmp_path, database, make_post, make_user
):
    """A card's shared parts are kept per worker (app/catalog/cards.py), yet an edit of
    the post or a rename of its topic made through another worker shows at once, and
    the reader's own Save state is never taken from another reader's page."""
    from app.catalog import cards
    from tests.conftest import make_app

    reader_side = make_app(tmp_path / "a", **database)
    writer_side = make_app(tmp_path / "b", **database)
    post = make_post(title="Cached card", summary="Kept once.", topics=["python"])
    cards.clear()
    with reader_side.app_context():
        browser = reader_side.test_client()
        html = browser.get("/").get_data(as_text=True)
        assert "Cached card" in html and "Kept once." in html and ">Python<" in html
        assert cards.cached_count() == 1
        browser.get("/")
        assert cards.cached_count() == 1  # the same card, reused

    with writer_side.app_context():
        db.session.execute(update(Post).where(Post.id == post.id).values(title="Edited card"))
        db.session.execute(update(Topic).where(Topic.slug == "python").values(name="Python 3"))
        db.session.commit()
        db.session.remove()
    with reader_side.app_context():
        html = browser.get("/").get_data(as_text=True)
        assert "Edited card" in html and "Cached card" not in html
        assert ">Python 3<" in html
        # Another reader signed in sees the same card with their own Save toggle.
        make_user("cards@example.com")
        other = reader_side.test_client()
        sign_in(other, "cards@example.com")
        other.submit(f"/list/save/{post.id}", htmx=True)
        assert 'aria-pressed="true"' in other.get("/").get_data(as_text=True)
        assert 'aria-pressed="true"' not in browser.get("/").get_data(as_text=True)
        assert "Sign in to save" in browser.get("/").get_data(as_text=True)
        # The card keeps the Save button of a reader who hasn't saved the post; a third
        # reader gets that one, not the saver's toggle.
        make_user("third@example.com")
        third = reader_side.test_client()
        sign_in(third, "third@example.com")
        html = third.get("/").get_data(as_text=True)
        assert 'aria-pressed="false"' in html and 'aria-pressed="true"' not in html
        assert f'formaction="/list/save/{post.id}"' in html
        other.submit(f"/list/unsave/{post.id}", htmx=True)
        html = other.get("/").get_data(as_text=True)
        assert 'aria-pressed="false"' in html and 'aria-pressed="true"' not in html
        db.session.remove()
        db.engine.dispose()
    with writer_side.app_context():
        db.engine.dispose()

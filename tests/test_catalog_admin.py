"""Admin: the catalog's posts and topics. Only catalog posts are listed or editable,
every change is audited, the no-JavaScript and htmx paths both work."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import event, func, select

from app import jobs
from app.catalog import admin_services, admin_tasks
from app.catalog.importer import DEMO_SOURCE_NAME, load_demo
from app.catalog.topics import SEEDED_KEY, vocabulary_seeded
from app.extensions import db
from app.lists import services as list_services
from app.models import (
    Activity,
    AuditEvent,
    Entry,
    FetchState,
    JobRun,
    Post,
    Setting,
    Source,
    Topic,
    post_topics,
)

HTMX = {"HX-Request": "true"}


def actions() -> list[str]:
    """The catalog's audit events so far (sign-ins and the like left out)."""
    return [
        action
        for action in db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))
        if action.split(".")[0] in ("post", "topic", "catalog")
    ]


def last_event() -> AuditEvent:
    return db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))


def topic(slug: str) -> Topic:
    return db.session.scalar(select(Topic).where(Topic.slug == slug))


def slugs(post_id: int) -> list[str]:
    db.session.expire_all()
    return sorted(t.slug for t in db.session.get(Post, post_id).topics)


def entries_of(post_id: int) -> list[Entry]:
    return list(db.session.scalars(select(Entry).where(Entry.post_id == post_id)))


@pytest.fixture
def private_post(make_post, make_user):
    owner = make_user("owner@example.com")
    post = make_post(title="A reader's secret article", url="https://example.org/secret")
    post.owner_id = owner.id
    db.session.add(Entry(user_id=owner.id, post_id=post.id))
    db.session.commit()
    return post


# --- access --------------------------------------------------------------------------


def test_readers_get_403_everywhere(client, reader, make_post):
    post = make_post()
    for path in (
        "/admin/posts",
        f"/admin/posts/{post.id}",
        "/admin/topics",
        f"/admin/posts/{post.id}/merge",
        "/admin/posts/remove-demo",
    ):
        assert client.get(path).status_code == 403, path
    for path in (
        f"/admin/posts/{post.id}",
        f"/admin/posts/{post.id}/delete",
        f"/admin/posts/{post.id}/fetch",
        "/admin/topics",
        "/admin/topics/retag",
        "/admin/posts/remove-demo",
    ):
        assert client.submit(path, {"title": "Hacked"}).status_code == 403, path
    db.session.refresh(post)
    assert post.title != "Hacked" and db.session.get(Post, post.id) is not None


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/posts")
    assert response.status_code == 302 and "/login" in response.location


def test_every_change_needs_the_csrf_token(client, admin, make_post):
    post = make_post(title="Stays")
    for path in (
        f"/admin/posts/{post.id}",
        f"/admin/posts/{post.id}/delete",
        "/admin/topics",
        "/admin/topics/retag",
        "/admin/posts/remove-demo",
    ):
        response = client.post(path, data={"title": "Changed", "name": "x", "slug": "x"})
        assert response.status_code == 400, path
    db.session.refresh(post)
    assert post.title == "Stays"
    assert actions() == []


# --- the posts list ------------------------------------------------------------------


def test_list_searches_title_author_and_url(client, admin, make_post):
    make_post(title="Tuning autovacuum", author="Zoë Martín")
    make_post(title="Another thing", url="https://blog.example.org/vacuum-notes")
    make_post(title="Unrelated", author="Ada")
    html = client.get("/admin/posts?q=vacuum").get_data(as_text=True)
    assert "Tuning autovacuum" in html and "Another thing" in html
    assert "Unrelated" not in html
    html = client.get("/admin/posts?q=martín").get_data(as_text=True)
    assert "Tuning autovacuum" in html and "Another thing" not in html
    # Every word must match; LIKE wildcards are literal.
    assert "No catalog post matches" in client.get("/admin/posts?q=vacuum+zzz").get_data(
        as_text=True
    )
    assert "No catalog post matches" in client.get("/admin/posts?q=%25").get_data(as_text=True)


def test_list_filters_by_source_topic_and_content(client, admin, make_post):
    feed = Source(name="Some feed", kind="feed")
    db.session.add(feed)
    db.session.commit()
    a = make_post(title="From the feed", source_id=feed.id, topics=["rust"])
    b = make_post(title="Tagged python", topics=["python"], content="<p>x</p>", content_text="x")
    c = make_post(title="Untagged and bare")

    def titles(query: str) -> set[str]:
        html = client.get(f"/admin/posts?{query}").get_data(as_text=True)
        return {p.title for p in (a, b, c) if p.title in html}

    assert titles(f"source={feed.id}") == {a.title}
    assert titles("source=none") == {b.title, c.title}
    assert titles("topic=python") == {b.title}
    assert titles("topic=none") == {c.title}
    assert titles("content=yes") == {b.title}
    assert titles("content=no") == {a.title, c.title}
    assert titles("topic=rust&content=no") == {a.title}
    # Nonsense filters are ignored, never an error.
    response = client.get("/admin/posts?source=abc&topic=NOT+A+SLUG&content=maybe&page=x")
    assert response.status_code == 200
    assert titles("source=abc&topic=%3Cb%3E") == {a.title, b.title, c.title}


def test_list_pages_through_the_catalog(client, admin, make_post):
    for n in range(55):
        make_post(title=f"Paged post {n:02d}")
    first = client.get("/admin/posts").get_data(as_text=True)
    assert first.count('class="row-title"') == 50
    assert "Paged post 54" in first and "Paged post 04" not in first
    assert 'rel="next"' in first and "page=2" in first
    second = client.get("/admin/posts?page=2").get_data(as_text=True)
    assert second.count('class="row-title"') == 5 and "Paged post 00" in second
    past = client.get("/admin/posts?page=9").get_data(as_text=True)
    assert "past the end" in past


def test_private_articles_are_never_listed_and_404(client, admin, make_post, private_post):
    make_post(title="A catalog post")
    html = client.get("/admin/posts?q=secret").get_data(as_text=True)
    assert "secret article" not in html
    assert "secret article" not in client.get("/admin/posts").get_data(as_text=True)
    pid = private_post.id
    assert client.get(f"/admin/posts/{pid}").status_code == 404
    assert client.submit(f"/admin/posts/{pid}", {"title": "Mine now"}).status_code == 404
    assert client.get(f"/admin/posts/{pid}/delete").status_code == 404
    assert client.submit(f"/admin/posts/{pid}/delete").status_code == 404
    assert client.submit(f"/admin/posts/{pid}/fetch").status_code == 404
    assert client.get(f"/admin/posts/{pid}/merge").status_code == 404
    assert client.get("/admin/posts/99999999999999999999999").status_code == 404
    assert db.session.get(Post, pid).title == "A reader's secret article"


def test_list_is_a_page_or_an_htmx_fragment(client, admin, make_post):
    make_post(title="Shown both ways")
    page = client.get("/admin/posts")
    assert "<h1>Posts</h1>" in page.get_data(as_text=True)
    assert "HX-Request" in page.headers["Vary"]
    fragment = client.htmx_get("/admin/posts?q=shown")
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="post-rows"')
    assert "Shown both ways" in html and "<h1>" not in html
    assert "HX-Request" in fragment.headers["Vary"]


def test_list_query_count_does_not_grow_with_rows(app, client, admin, make_post, make_user):
    reader = make_user()

    def count_queries() -> int:
        statements: list[str] = []

        def before(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            assert client.get("/admin/posts").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return len(statements)

    feed = Source(name="Feed", kind="feed")
    db.session.add(feed)
    db.session.commit()
    for _ in range(3):
        post = make_post(topics=["python"], source_id=feed.id)
        list_services.save_post(reader, post.id)
    few = count_queries()
    for _ in range(30):
        post = make_post(topics=["rust", "go"], source_id=feed.id)
        list_services.save_post(reader, post.id)
    assert count_queries() == few


# --- editing a post ------------------------------------------------------------------


def test_edit_saves_fields_and_topics_then_303_back(client, admin, make_post):
    make_post(topics=["rust"])
    post = make_post(title="Old title", topics=["python"])
    page = client.get(f"/admin/posts/{post.id}?next=/admin/posts?q=old")
    html = page.get_data(as_text=True)
    assert 'value="Old title"' in html and "admin-nav" in html
    rust = topic("rust")
    response = client.submit(
        f"/admin/posts/{post.id}",
        {
            "title": "  New   title ",
            "summary": "A better summary.",
            "author": "Grace",
            "published_on": "2025-02-03",
            "url": "HTTPS://Example.ORG/new?utm_source=x#frag",
            "topics": [str(rust.id)],
            "next": f"/admin/posts/{post.id}?next=/admin/posts",
        },
    )
    assert response.status_code == 303
    assert response.location.endswith(f"/admin/posts/{post.id}?next=/admin/posts")
    db.session.expire_all()
    post = db.session.get(Post, post.id)
    assert post.title == "New title" and post.author == "Grace"
    assert post.url == "https://example.org/new"
    assert str(post.published_on) == "2025-02-03"
    assert [t.slug for t in post.topics] == ["rust"]
    assert actions() == ["post.edit"]
    event_row = last_event()
    assert "title" in event_row.detail and "topics" in event_row.detail
    assert event_row.actor_email == "admin@example.com"
    # The search index followed.
    results = client.get("/search?q=topic:rust").get_data(as_text=True)
    assert "New title" in results


def test_edit_with_htmx_answers_the_form_and_a_flash(client, admin, make_post):
    post = make_post(title="Before")
    response = client.submit(
        f"/admin/posts/{post.id}", {"title": "After", "author": "A"}, htmx=True
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="post-form"')
    assert 'value="After"' in html and "Post saved." in html and "hx-swap-oob" in html
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": "   "}, "A post needs a title."),
        ({"title": "T", "url": "ftp://example.org/x"}, "Only http and https"),
        ({"title": "T", "url": "not an address"}, "spaces"),
        ({"title": "T", "published_on": "31/31/2020"}, "Enter a date like 2026-05-01."),
        ({"title": "T", "published_on": "0001-01-01"}, "between 1900 and 2200"),
        ({"title": "T", "topics": ["999999"]}, "is not a valid choice"),
        ({"title": "x" * 501}, "500"),
    ],
)
def test_edit_validation_is_422_inline(client, admin, make_post, data, message):
    post = make_post(title="Unchanged")
    for htmx in (False, True):
        response = client.submit(f"/admin/posts/{post.id}", data, htmx=htmx)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert message in html
        if htmx:
            assert html.lstrip().startswith('<form id="post-form"')
        else:
            assert "<h1>Edit post</h1>" in html
    db.session.refresh(post)
    assert post.title == "Unchanged"
    assert actions() == []


def test_edit_refuses_an_address_another_post_has(client, admin, make_post, private_post):
    other = make_post(title="Has it", url="https://example.org/taken")
    post = make_post(title="Wants it")
    response = client.submit(
        f"/admin/posts/{post.id}", {"title": "Wants it", "url": "https://EXAMPLE.org/taken#x"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f"Post {other.id} already has this address" in html and "merge" in html
    response = client.submit(
        f"/admin/posts/{post.id}", {"title": "Wants it", "url": "https://example.org/secret"}
    )
    assert response.status_code == 422
    assert "A reader&#39;s saved article already has this address" in response.get_data(
        as_text=True
    )
    db.session.refresh(post)
    assert post.url is None
    # Its own address is of course fine.
    assert (
        client.submit(
            f"/admin/posts/{other.id}", {"title": "Has it", "url": "https://example.org/taken"}
        ).status_code
        == 303
    )


# --- re-fetching ---------------------------------------------------------------------


def test_refetch_resets_a_done_post_and_queues_a_job(client, admin, make_post):
    post = make_post(url="https://example.org/article", fetch_state=FetchState.DONE.value)
    before = jobs.pending_count()
    response = client.submit(f"/admin/posts/{post.id}/fetch", {"next": f"/admin/posts/{post.id}"})
    assert response.status_code == 303 and response.location.endswith(f"/admin/posts/{post.id}")
    db.session.refresh(post)
    assert post.fetch_state == FetchState.PENDING.value
    assert jobs.pending_count() == before + 1
    assert actions() == ["post.refetch"]
    # Already pending: nothing more is queued; htmx gets the panel, which polls.
    response = client.submit(f"/admin/posts/{post.id}/fetch", htmx=True)
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="post-fetch"') and 'hx-trigger="every 2s"' in html
    assert "being fetched already" in html
    assert jobs.pending_count() == before + 1
    poll = client.htmx_get(f"/admin/posts/{post.id}/fetch")
    assert poll.get_data(as_text=True).lstrip().startswith('<div id="post-fetch"')
    assert "<h1>Edit post</h1>" in client.get(f"/admin/posts/{post.id}/fetch").get_data(
        as_text=True
    )


def test_refetch_without_an_address_says_so(client, admin, make_post):
    post = make_post(fetch_state=FetchState.FAILED.value)
    response = client.submit(f"/admin/posts/{post.id}/fetch", follow_redirects=True)
    assert "no address to fetch" in response.get_data(as_text=True)
    db.session.refresh(post)
    assert post.fetch_state == FetchState.FAILED.value


# --- deleting ------------------------------------------------------------------------


def test_delete_confirms_with_the_reader_count_then_removes_entries(
    client, admin, make_post, make_user
):
    post = make_post(title="Doomed post")
    keep = make_post(title="Kept post")
    for _ in range(2):
        reader = make_user()
        list_services.save_post(reader, post.id)
        list_services.save_post(reader, keep.id)
    back = "next=%2Fadmin%2Fposts%3Fq%3Ddoomed"
    page = client.get(f"/admin/posts/{post.id}/delete?{back}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "2 readers have it on their list" in html
    assert f'action="/admin/posts/{post.id}/delete?next=/admin/posts?q%3Ddoomed"' in html
    fragment = client.htmx_get(f"/admin/posts/{post.id}/delete")
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="post-danger"')
    assert "HX-Request" in fragment.headers["Vary"]

    post_id = post.id
    response = client.submit(f"/admin/posts/{post_id}/delete?{back}")
    assert response.status_code == 303 and response.location.endswith("/admin/posts?q=doomed")
    assert db.session.scalar(select(Post).where(Post.id == post_id)) is None
    assert entries_of(post_id) == []
    assert len(entries_of(keep.id)) == 2
    assert actions() == ["post.delete"]
    assert "2 list entries" in last_event().detail
    followed = client.get("/admin/posts?q=doomed").get_data(as_text=True)
    assert "Deleted “Doomed post” and 2 list entries." in followed  # the flash
    assert "No catalog post matches" in followed
    assert "Doomed post" not in client.get("/search?q=doomed").get_data(as_text=True)
    # An unsafe next goes to the list instead.
    other = make_post()
    response = client.submit(f"/admin/posts/{other.id}/delete?next=https://evil.example/")
    assert response.location.endswith("/admin/posts")


# --- merging duplicates --------------------------------------------------------------


def _entry(user, post_id: int) -> Entry | None:
    return db.session.scalar(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
    )


def test_merge_keeps_the_further_progress_and_the_earlier_date(
    client, admin, make_post, make_user
):
    survivor = make_post(title="Async patterns", topics=["python"])
    duplicate = make_post(
        title="Async patterns (again)", topics=["asyncio"], url="https://example.org/async"
    )
    both, only_dup, only_surv, finished = (make_user() for _ in range(4))

    # `both` saved the duplicate first and got further in it.
    dup_entry = list_services.save_post(both, duplicate.id)
    list_services.update_progress(both, dup_entry.id, 60)
    surv_entry = list_services.save_post(both, survivor.id)
    list_services.update_progress(both, surv_entry.id, 20)
    db.session.execute(
        Entry.__table__.update()
        .where(Entry.id == dup_entry.id)
        .values(added_at=datetime(2024, 1, 1), note="from the duplicate")
    )
    db.session.execute(
        Entry.__table__.update()
        .where(Entry.id == surv_entry.id)
        .values(added_at=datetime(2025, 6, 1), note="from the survivor")
    )
    db.session.commit()
    moved = list_services.save_post(only_dup, duplicate.id)
    list_services.update_progress(only_dup, moved.id, 30)
    list_services.save_post(only_surv, survivor.id)
    done_dup = list_services.save_post(finished, duplicate.id)
    list_services.update_progress(finished, done_dup.id, 100)
    reading = list_services.save_post(finished, survivor.id)
    list_services.update_progress(finished, reading.id, 50)
    activities_before = db.session.scalar(select(func.count()).select_from(Activity))

    review = client.get(f"/admin/posts/{duplicate.id}/merge?into={survivor.id}")
    html = review.get_data(as_text=True)
    assert review.status_code == 200 and f"Merge into #{survivor.id}" in html
    assert "2 readers have both" in html and "1 reader&#39;s entry moves" in html

    duplicate_id, survivor_id = duplicate.id, survivor.id
    response = client.submit(f"/admin/posts/{duplicate_id}/merge", {"into": str(survivor_id)})
    assert response.status_code == 303
    assert response.location.endswith(f"/admin/posts/{survivor_id}")
    db.session.expire_all()
    assert db.session.scalar(select(Post).where(Post.id == duplicate_id)) is None
    assert entries_of(duplicate_id) == []

    kept = _entry(both, survivor_id)
    assert kept.progress == 60 and kept.state == "reading"
    assert kept.added_at == datetime(2024, 1, 1)
    assert kept.note == "from the duplicate\n\nfrom the survivor"
    assert _entry(only_dup, survivor_id).progress == 30
    assert _entry(only_surv, survivor_id) is not None
    done = _entry(finished, survivor_id)
    assert done.state == "done" and done.progress == 100 and done.finished_at is not None
    # One entry per reader, nothing lost.
    per_user = db.session.execute(
        select(Entry.user_id, func.count())
        .where(Entry.post_id == survivor_id)
        .group_by(Entry.user_id)
    ).all()
    assert sorted(n for _, n in per_user) == [1, 1, 1, 1]
    # Reading activity moved with the entries.
    assert db.session.scalar(select(func.count()).select_from(Activity)) == activities_before
    assert (
        db.session.scalar(
            select(func.count()).select_from(Activity).where(Activity.post_id == duplicate_id)
        )
        == 0
    )
    assert slugs(survivor_id) == ["asyncio", "python"]
    survivor = db.session.get(Post, survivor_id)
    assert survivor.url == "https://example.org/async"  # it had none: taken over
    assert actions() == ["post.merge"]
    flash = client.get(response.location).get_data(as_text=True)
    assert "Merged “Async patterns (again)” into this post" in flash
    # Search forgot the duplicate and finds the survivor by its new topic.
    assert "Async patterns (again)" not in client.get("/search?q=again").get_data(as_text=True)
    assert "Async patterns" in client.get("/search?q=topic:asyncio").get_data(as_text=True)


def test_merge_page_finds_candidates_and_refuses_bad_choices(
    client, admin, make_post, private_post
):
    duplicate = make_post(title="Field guide to asyncio")
    make_post(title="A field guide to asyncio cancellation")
    make_post(title="Something else")
    page = client.get(f"/admin/posts/{duplicate.id}/merge")
    html = page.get_data(as_text=True)
    # Without a search, the posts most like it are offered, the likeliest first.
    assert "Posts most like this one" in html
    first = html.index("A field guide to asyncio cancellation")
    assert "Something else" not in html or first < html.index("Something else")
    html = client.get(f"/admin/posts/{duplicate.id}/merge?q=field+asyncio").get_data(as_text=True)
    assert "A field guide to asyncio cancellation" in html and "Something else" not in html
    header_box = html.split('id="header-q"', 1)[1].split(">", 1)[0]
    assert "field asyncio" not in header_box  # the merge search's words stay in its own box
    fragment = client.htmx_get(f"/admin/posts/{duplicate.id}/merge?q=something")
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="merge-candidates"') and "Something else" in html
    assert "HX-Request" in fragment.headers["Vary"]
    for into, message in (
        (duplicate.id, "can&#39;t be merged into itself"),
        (private_post.id, f"There is no catalog post {private_post.id}"),
        ("abc", "There is no catalog post abc"),
        ("99999999999999999999999", "There is no catalog post"),
    ):
        assert client.get(f"/admin/posts/{duplicate.id}/merge?into={into}").status_code == 422
        response = client.submit(f"/admin/posts/{duplicate.id}/merge", {"into": str(into)})
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert client.submit(f"/admin/posts/{duplicate.id}/merge").status_code == 422
    assert db.session.get(Post, duplicate.id) is not None
    assert actions() == []


# --- topics --------------------------------------------------------------------------


def test_topics_page_lists_the_vocabulary_with_counts(client, admin, make_post):
    make_post(topics=["python"])
    make_post(topics=["python", "rust"])
    html = client.get("/admin/topics").get_data(as_text=True)
    assert "<h1>Topics</h1>" in html and "admin-nav" in html
    assert "Python" in html and "2 posts tagged Python" in html
    # Until the vocabulary is seeded, the built-in keywords show.
    assert "pythonic" in html
    assert not vocabulary_seeded()


def test_create_topic_seeds_the_vocabulary_and_is_audited(client, admin):
    response = client.submit(
        "/admin/topics", {"name": "Web dev", "slug": "web-dev", "keywords": "webdev\n\nhtml5\n"}
    )
    assert response.status_code == 303 and response.location.endswith("/admin/topics")
    created = topic("web-dev")
    assert created.name == "Web dev" and created.keywords == "webdev\nhtml5"
    assert vocabulary_seeded() and "pythonic" in topic("python").keywords
    assert actions() == ["topic.create"]
    again = client.submit("/admin/topics", {"name": "Again", "slug": "web-dev"})
    assert again.status_code == 422 and "already has the slug" in again.get_data(as_text=True)
    close = client.submit("/admin/topics", {"name": "Close", "slug": "webdev"})
    assert close.status_code == 422 and "can&#39;t tell them apart" in close.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "slug": "ok"}, "A topic needs a name."),
        ({"name": "Bad", "slug": "Not OK"}, "Use lower-case letters"),
        ({"name": "Bad", "slug": "-x"}, "Use lower-case letters"),
        ({"name": "Bad", "slug": "ok", "keywords": "fine\nfoo(\n"}, "Line 2 (“foo(”)"),
        ({"name": "Bad", "slug": "ok", "keywords": "a\n(?i)b"}, "Line 2 (“(?i)b”)"),
        ({"name": "Bad", "slug": "ok", "keywords": "x*"}, "every post"),
    ],
)
def test_topic_validation_is_422_naming_the_problem(client, admin, make_post, data, message):
    make_post(topics=["python"])
    python = topic("python")
    for url in ("/admin/topics", f"/admin/topics/{python.id}"):
        response = client.submit(url, data)
        assert response.status_code == 422, url
        assert message in response.get_data(as_text=True)
    response = client.submit(f"/admin/topics/{python.id}", data, htmx=True)
    assert response.get_data(as_text=True).lstrip().startswith('<form id="topic-form"')
    db.session.refresh(python)
    assert python.slug == "python"
    assert actions() == []


def test_topic_rename_reaches_search(client, admin, make_post):
    post = make_post(title="Snakes and ladders", topics=["python"])
    python = topic("python")
    assert "Snakes and ladders" in client.get("/search?q=topic:python").get_data(as_text=True)
    page = client.get(f"/admin/topics/{python.id}").get_data(as_text=True)
    assert 'value="python"' in page and "pythonic" in page  # built-in keywords shown
    response = client.submit(
        f"/admin/topics/{python.id}",
        {
            "name": "Python 3",
            "slug": "py3",
            "keywords": "python3?\npythonic",
            "next": f"/admin/topics/{python.id}",
        },
    )
    assert response.status_code == 303
    assert response.location.endswith(f"/admin/topics/{python.id}")
    assert "Snakes and ladders" in client.get("/search?q=topic:py3").get_data(as_text=True)
    assert "There is no topic" in client.get("/search?q=topic:python").get_data(as_text=True)
    assert "Snakes and ladders" in client.get("/search?q=topic:%22Python 3%22").get_data(
        as_text=True
    )
    assert slugs(post.id) == ["py3"]
    assert actions() == ["topic.edit"]
    assert "slug was python" in last_event().detail
    # With htmx, the form comes back with a flash.
    response = client.submit(
        f"/admin/topics/{python.id}",
        {"name": "Python", "slug": "py3", "keywords": "python3?"},
        htmx=True,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<form id="topic-form"')
    assert "Re-tag the catalog" in html


def test_topic_merge_moves_posts_and_deletes_the_topic(client, admin, make_post):
    one = make_post(title="Only postgres", topics=["postgres"])
    two = make_post(title="Both of them", topics=["postgres", "databases"])
    three = make_post(title="Only databases", topics=["databases"])
    postgres, databases = topic("postgres"), topic("databases")
    postgres.keywords, databases.keywords = "postgres\npsql", "sql\npsql"
    db.session.commit()
    review = client.get(f"/admin/topics/merge?topic={postgres.id}&into={databases.id}")
    html = review.get_data(as_text=True)
    assert review.status_code == 200 and "2 posts are tagged" in html
    assert "topic:postgres</code> finds nothing" in html

    response = client.submit(
        "/admin/topics/merge", {"topic": str(postgres.id), "into": str(databases.id)}
    )
    assert response.status_code == 303
    assert topic("postgres") is None
    assert slugs(one.id) == ["databases"] and slugs(two.id) == ["databases"]
    assert slugs(three.id) == ["databases"]
    assert topic("databases").keywords == "sql\npsql\npostgres"
    assert actions() == ["topic.merge"]
    results = client.get("/search?q=topic:databases").get_data(as_text=True)
    assert all(t in results for t in ("Only postgres", "Both of them", "Only databases"))


def test_topic_merge_refuses_bad_choices(client, admin, make_post):
    make_post(topics=["rust"])
    rust = topic("rust")
    for query in (f"topic={rust.id}&into={rust.id}", "topic=abc&into=", "", "topic=999&into=1"):
        assert client.get(f"/admin/topics/merge?{query}").status_code == 422, query
    response = client.submit("/admin/topics/merge", {"topic": str(rust.id), "into": str(rust.id)})
    assert response.status_code == 422 and "two different topics" in response.get_data(
        as_text=True
    )
    assert topic("rust") is not None and actions() == []


# --- re-tagging ----------------------------------------------------------------------


def test_retag_runs_in_the_background_to_done(client, admin, make_post):
    wrong = make_post(title="Fearless concurrency in Rust", topics=["python"])
    make_post(title="Plain words only", topics=["flask"])
    handpicked = make_post(title="A Rust release", topics=["featured"])
    featured = topic("featured")
    response = client.submit("/admin/topics/retag")
    assert response.status_code == 303
    run = db.session.scalar(select(JobRun))
    assert response.location.endswith(f"/admin/topics/retag/{run.id}")
    assert run.kind == "retag" and run.status == "queued" and run.total == 3
    page = client.get(response.location).get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and "Queued" in page
    poll = client.htmx_get(f"/admin/topics/retag/{run.id}").get_data(as_text=True)
    assert poll.lstrip().startswith('<div id="retag-job"') and 'hx-trigger="every 1s"' in poll

    jobs.run_pending()
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert run.status == "done" and run.done == run.total == 3
    assert "Re-tagged 3 posts" in run.message
    assert slugs(wrong.id) == ["rust"]
    assert slugs(handpicked.id) == ["featured", "rust"]  # no keywords: kept by hand
    assert featured.id in {t.id for t in db.session.get(Post, handpicked.id).topics}
    done = client.htmx_get(f"/admin/topics/retag/{run.id}").get_data(as_text=True)
    assert "hx-trigger" not in done and "Done" in done
    assert 'http-equiv="refresh"' not in client.get(f"/admin/topics/retag/{run.id}").get_data(
        as_text=True
    )
    assert actions() == ["topic.retag"]
    assert "Re-tagged 3 posts" in client.get("/admin/topics").get_data(as_text=True)


def test_retag_uses_edited_keywords_and_htmx_gets_the_progress(client, admin, make_post):
    post = make_post(title="Notes on Gleam", summary="A friendly language.")
    client.submit("/admin/topics", {"name": "Gleam", "slug": "gleam", "keywords": "gleam"})
    response = client.submit("/admin/topics/retag", htmx=True)
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="retag-job"') and "Queued" in html
    # A second start while it is queued shows the same run.
    again = client.submit("/admin/topics/retag", htmx=True).get_data(as_text=True)
    assert "already under way" in again
    assert db.session.scalar(select(func.count()).select_from(JobRun)) == 1
    jobs.run_pending()
    assert slugs(post.id) == ["gleam"]


def test_retag_resumes_from_its_cursor_after_a_crash(app, admin, make_post, monkeypatch):
    posts = [make_post(title=f"Rust post {n}", topics=["go"]) for n in range(5)]
    monkeypatch.setattr(admin_tasks, "CHUNK_SIZE", 2)
    tagged: list[str] = []
    real = admin_tasks.assign_topics

    def spy(title, *args, **kwargs):
        tagged.append(title)
        return real(title, *args, **kwargs)

    monkeypatch.setattr(admin_tasks, "assign_topics", spy)
    run, new = admin_services.start_retag(admin)
    assert new
    # The worker gets through one chunk and dies.
    assert admin_tasks.run_retag(run.id, max_chunks=1) == "partial"
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert run.status == "running" and run.done == 2 and run.cursor == str(posts[1].id)
    # The sweep sees it stop moving and queues it again; a worker picks it up.
    seen: dict = {}
    assert admin_tasks.requeue_stalled_retags(seen) == 0
    assert admin_tasks.requeue_stalled_retags(seen) == 1
    jobs.run_pending()
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert run.status == "done" and run.done == run.total == 5
    assert sorted(tagged) == sorted(p.title for p in posts)  # each post once
    for post in posts:
        assert slugs(post.id) == ["rust"]
    pairs = db.session.execute(select(post_topics.c.post_id, post_topics.c.topic_id)).all()
    assert len(pairs) == len(set(pairs)) == 5
    # A status reset by hand resumes too, and does nothing twice.
    run.status = "queued"
    db.session.commit()
    assert admin_tasks.run_retag(run.id) == "done"
    assert db.session.get(JobRun, run.id).done == 5


def test_retag_run_that_fails_says_why(app, admin, make_post, monkeypatch):
    make_post()
    run, _ = admin_services.start_retag(admin)

    def boom(*args, **kwargs):
        raise RuntimeError("the tagger broke")

    monkeypatch.setattr(admin_tasks, "assign_topics", boom)
    assert admin_tasks.run_retag(run.id) == "failed"
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert run.status == "failed" and "the tagger broke" in run.message
    assert admin_tasks.requeue_stalled_retags({}) == 0  # a failed run stays failed


def test_import_after_seeding_uses_the_database_vocabulary(app, admin, make_post):
    from app.catalog.importer import import_listings

    admin_services.create_topic(admin, "Gleam", "gleam", "gleam")
    rust = topic("rust")
    admin_services.update_topic(admin, rust.id, "Rust", "rust", "")  # by hand only now
    text = "Gleam and Rust together\n\nA summary.\n\nMay 1, 2026\u00a0·\u00a05 min"
    report = import_listings([("x.txt", text)])
    assert report.created == 1
    post = db.session.scalar(select(Post).where(Post.title == "Gleam and Rust together"))
    assert [t.slug for t in post.topics] == ["gleam"]
    assert db.session.get(Setting, SEEDED_KEY) is not None


# --- the demo catalog ----------------------------------------------------------------


def test_remove_the_demo_catalog(app, client, admin, make_post, make_user):
    app.config["DEMO"] = True
    report = load_demo()
    assert report is not None and report.created >= 40
    own = make_post(title="One of our own")
    demo_ids = list(
        db.session.scalars(select(Post.id).join(Source).where(Source.name == DEMO_SOURCE_NAME))
    )
    reader = make_user()
    list_services.save_post(reader, demo_ids[0])
    list_services.save_post(reader, own.id)

    html = client.get("/admin/posts").get_data(as_text=True)
    assert f"{len(demo_ids)} posts came with Dogear as a demo" in html
    confirm = client.get("/admin/posts/remove-demo")
    assert confirm.status_code == 200
    assert "1 reader has 1 of them on their lists" in confirm.get_data(as_text=True)
    fragment = client.htmx_get("/admin/posts/remove-demo").get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="demo-catalog"')

    response = client.submit("/admin/posts/remove-demo")
    assert response.status_code == 303 and response.location.endswith("/admin/posts")
    assert db.session.scalar(select(func.count()).where(Post.id.in_(demo_ids))) == 0
    assert db.session.scalar(select(Source).where(Source.name == DEMO_SOURCE_NAME)) is None
    assert db.session.get(Post, own.id) is not None
    assert [e.post_id for e in db.session.scalars(select(Entry))] == [own.id]
    assert actions() == ["catalog.remove_demo"]
    demo_title = "How we cut our PostgreSQL vacuum debt in half"
    assert demo_title not in client.get("/search?q=vacuum").get_data(as_text=True)
    after = client.get("/admin/posts").get_data(as_text=True)
    assert "came with Dogear as a demo" not in after and "One of our own" in after
    # The next `make run` doesn't bring it back, even into an empty catalog.
    db.session.delete(db.session.get(Post, own.id))
    db.session.commit()
    assert load_demo() is None
    # Nothing left to remove: still fine.
    assert client.submit("/admin/posts/remove-demo").status_code == 303
    assert "no demo catalog" in client.get("/admin/posts/remove-demo").get_data(as_text=True)

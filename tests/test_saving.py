"""Saving any page by its address: the add form, the background fetch, what the reader
sees while it runs and when it fails, one post per normalised URL, and privacy.

Pages come from a local server on 127.0.0.1 that the tests start (allowed through
FETCH_ALLOW_PRIVATE); jobs run when the test says so, as the worker would."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import pending_count, run_pending
from app.models import Entry, Post
from tests.conftest import sign_in

ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Quiet harbours of the northern coast | Tidewater Notes</title>
<meta name="author" content="Maren Holt">
<meta property="og:site_name" content="Tidewater Notes">
</head><body>
<nav><a href="/">Home</a> <a href="/about">About</a> <a href="/subscribe">Subscribe now</a></nav>
<article>
<h1>Quiet harbours of the northern coast</h1>
<p>The harbour at Skarvik wakes before the gulls do. Fishing boats slip their moorings
in the grey light, and the harbourmaster walks the breakwater with a thermos of coffee,
counting hulls against the list pinned inside his door.</p>
<p>Nobody remembers when the list was last wrong. The boats go out, the boats come
back, and the chalk marks on the board by the slipway tell the rest of the village
which families can stop worrying for the day.</p>
<h2>The breakwater</h2>
<p>Built from granite hauled down from the quarry above the fjord, the breakwater has
outlasted three storms that each took a house from the shore road. Its stones carry
the initials of the men who set them, worn soft by a century of spray.</p>
<p>On calm evenings children fish for pollock from its end, and the older ones dare each
other to walk the outer edge where the kelp makes the granite slick as soap.</p>
</article>
<footer>Copyright Tidewater Notes. Cookie settings. Newsletter.</footer>
</body></html>"""


@pytest.fixture
def site(app, web):
    """The local test site, reachable by Dogear's guarded client."""
    app.config["FETCH_ALLOW_PRIVATE"] = ["127.0.0.1/32"]
    app.config["FETCH_TIMEOUT"] = 5
    web.add("/harbours", ARTICLE)
    return web


def add(client, url: str, title: str = "", *, htmx: bool = False):
    return client.submit("/list/add", {"url": url, "title": title}, htmx=htmx)


def entries_of(user) -> list[Entry]:
    return list(db.session.scalars(select(Entry).where(Entry.user_id == user.id)))


def post_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Post))


# --- the form -----------------------------------------------------------------------


def test_header_and_empty_list_lead_to_the_add_form(client, reader):
    page = client.get("/list").get_data(as_text=True)
    assert page.count('href="/list/add"') >= 2  # header and the empty Up next
    assert client.get("/list/add").status_code == 200


def test_add_form_is_prefilled_by_the_bookmarklet_and_a_get_saves_nothing(client, reader):
    response = client.get("/list/add?url=https%3A%2F%2Fexample.org%2Fa&title=An+article")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'value="https://example.org/a"' in html
    assert 'value="An article"' in html
    assert entries_of(reader) == []
    assert post_count() == 0


def test_share_target_text_carrying_the_address_fills_the_url(client, reader):
    html = client.get(
        "/list/add?title=Shared&text=Look+at+this+https%3A%2F%2Fexample.org%2Fshared+wow"
    ).get_data(as_text=True)
    assert 'value="https://example.org/shared"' in html


def test_signed_out_visitor_is_sent_to_sign_in_and_back_to_the_prefilled_form(client, make_user):
    user = make_user()
    response = client.get("/list/add?url=https%3A%2F%2Fexample.org%2Fb")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    response = sign_in(client, user, next="/list/add?url=https%3A%2F%2Fexample.org%2Fb")
    assert response.headers["Location"].endswith("/list/add?url=https%3A%2F%2Fexample.org%2Fb")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the address of a page."),
        ("javascript:alert(1)", "Only http and https addresses can be saved."),
        ("ftp://example.org/file", "Only http and https addresses can be saved."),
        ("https://user:secret@example.org/", "user name or password"),
        ("https://example.org/" + "a" * 2100, "too long"),
        ("https://exa mple.org/", "spaces"),
    ],
)
def test_invalid_addresses_are_refused_with_a_reason_and_nothing_is_saved(
    client, reader, url, message
):
    response = add(client, url, "Kept title")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert 'value="Kept title"' in html  # nothing the reader typed is lost
    fragment = add(client, url, htmx=True)
    assert fragment.status_code == 422
    assert 'id="add-form"' in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert post_count() == 0


def test_adding_needs_the_csrf_token(client, reader):
    response = client.post("/list/add", data={"url": "https://example.org/x"})
    assert response.status_code == 400
    assert post_count() == 0


# --- saving and fetching ------------------------------------------------------------


def test_a_saved_page_appears_at_once_and_is_fetched_in_the_background(
    client, reader, site, make_post
):
    older = make_post(title="Saved earlier")
    client.submit(f"/list/save/{older.id}")
    response = add(client, site.url("/harbours"))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/list?state=saved")
    assert site.hits("/harbours") == 0  # the request only queued the fetch
    assert pending_count() == 1

    page = client.get("/list").get_data(as_text=True)
    assert "Fetching the page" in page
    assert page.index("127.0.0.1") < page.index("Saved earlier")  # added on top

    assert run_pending() == 1
    assert site.hits("/harbours") == 1
    post = db.session.scalar(select(Post).where(Post.url == site.url("/harbours")))
    assert post.title == "Quiet harbours of the northern coast"
    assert post.fetch_state == "done"
    assert post.owner_id == reader.id
    assert "breakwater" in post.content
    assert "Subscribe now" not in post.content_text
    assert post.word_count > 100
    assert post.reading_minutes == 1

    page = client.get("/list").get_data(as_text=True)
    assert "Quiet harbours of the northern coast" in page
    assert "Fetching the page" not in page
    # Searching finds it by a word of its body, and only the body's plain text.
    results = client.get("/search?q=pollock").get_data(as_text=True)
    assert "Quiet harbours of the northern coast" in results
    assert "Quiet harbours" not in client.get("/search?q=href").get_data(as_text=True)


def test_the_same_address_saved_again_points_to_the_entry_the_reader_has(client, reader, site):
    add(client, site.url("/harbours") + "?utm_source=feed&utm_medium=rss#comments")
    response = add(client, site.url("/harbours").replace("http://", "HTTP://"))
    assert response.status_code == 303
    post = db.session.scalar(select(Post))
    assert response.headers["Location"].endswith(f"/posts/{post.id}")
    assert post.url == site.url("/harbours")
    assert len(entries_of(reader)) == 1
    assert "You saved this page already" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )


def test_an_address_the_catalog_has_links_to_the_catalog_post(client, reader, make_post):
    catalog = make_post(title="From the catalog", url="https://example.org/catalog-post")
    add(client, "https://EXAMPLE.org:443/catalog-post?fbclid=abc")
    assert post_count() == 1
    [entry] = entries_of(reader)
    assert entry.post_id == catalog.id
    db.session.refresh(catalog)
    assert catalog.owner_id is None  # still in the catalog


def test_two_readers_saving_one_page_share_one_fetch_and_learn_nothing_of_each_other(
    app, client, reader, site, make_user
):
    add(client, site.url("/harbours"), "My own words for it")
    first = client.get("/list").get_data(as_text=True)
    other_user = make_user("other@example.com")
    other = app.test_client()
    sign_in(other, other_user)
    response = add(other, site.url("/harbours"))
    # The same answer as for a page nobody had saved.
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/list?state=saved")
    run_pending()
    run_pending()
    assert site.hits("/harbours") == 1
    assert post_count() == 1
    assert len(entries_of(reader)) == len(entries_of(other_user)) == 1
    assert "My own words for it" in first
    # The first reader's own title is theirs alone.
    assert "My own words for it" in client.get("/list").get_data(as_text=True)
    assert "My own words for it" not in other.get("/list").get_data(as_text=True)
    assert "Quiet harbours of the northern coast" in other.get("/list").get_data(as_text=True)
    for someone in (client, other):
        assert "Quiet harbours" in someone.get("/search?q=pollock").get_data(as_text=True)

    stranger_user = make_user("stranger@example.com")
    stranger = app.test_client()
    sign_in(stranger, stranger_user)
    post = db.session.scalar(select(Post))
    assert stranger.get(f"/posts/{post.id}").status_code == 404
    # Both savers read it in Dogear; the second doesn't see the first one's title.
    assert "My own words for it" in client.get(f"/posts/{post.id}").get_data(as_text=True)
    page = other.get(f"/posts/{post.id}")
    assert page.status_code == 200 and "Quiet harbours" in page.get_data(as_text=True)
    assert "My own words for it" not in page.get_data(as_text=True)
    assert "Quiet harbours" not in stranger.get("/search?q=pollock").get_data(as_text=True)
    assert "Quiet harbours" not in stranger.get("/").get_data(as_text=True)
    assert "Quiet harbours" not in client.get("/").get_data(as_text=True)  # not the catalog


def test_removing_the_last_entry_removes_an_article_readers_added(
    app, client, reader, site, make_user
):
    add(client, site.url("/harbours"))
    other_user = make_user()
    other = app.test_client()
    sign_in(other, other_user)
    add(other, site.url("/harbours"))
    [mine] = entries_of(reader)
    [theirs] = entries_of(other_user)
    client.submit(f"/list/{mine.id}/remove")
    assert post_count() == 1  # the other reader still has it
    assert other.get(f"/posts/{theirs.post_id}").status_code == 200
    other.submit(f"/list/{theirs.id}/remove")
    assert post_count() == 0


# --- what the reader sees while and after it runs -----------------------------------


def test_the_row_polls_while_fetching_and_stops_when_done(client, reader, site):
    add(client, site.url("/harbours"))
    [entry] = entries_of(reader)
    row = client.htmx_get(f"/list/{entry.id}")
    html = row.get_data(as_text=True)
    assert row.status_code == 200
    assert "HX-Request" in row.headers["Vary"]
    assert f'id="entry-{entry.id}"' in html
    assert 'hx-trigger="every 2s"' in html
    run_pending()
    html = client.htmx_get(f"/list/{entry.id}").get_data(as_text=True)
    assert "every 2s" not in html
    assert "Quiet harbours of the northern coast" in html
    # Without htmx the same URL is the post itself.
    response = client.get(f"/list/{entry.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/posts/{entry.post_id}")


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ({"status": 403, "body": "no"}, "the site answered 403"),
        ({"status": 404, "body": "gone"}, "the site answered 404"),
        ({"body": b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "content_type": "image/png"}, "image/png"),
    ],
)
def test_a_failed_fetch_says_why_and_offers_retry(client, reader, app, web, route, reason):
    app.config["FETCH_ALLOW_PRIVATE"] = ["127.0.0.1/32"]
    web.add("/page", **route)
    add(client, web.url("/page"), "Title I gave it")
    run_pending()
    [entry] = entries_of(reader)
    assert entry.post.fetch_state == "failed"
    page = client.get("/list").get_data(as_text=True)
    assert reason in page
    assert "Retry" in page
    assert "Title I gave it" in page  # the entry stays usable with the title given

    web.add("/page", ARTICLE)
    response = client.submit(f"/list/{entry.id}/refetch", htmx=True)
    assert response.status_code == 200
    assert "every 2s" in response.get_data(as_text=True)
    run_pending()
    db.session.refresh(entry.post)
    assert entry.post.fetch_state == "done"
    assert entry.post.title == "Quiet harbours of the northern coast"
    assert "Title I gave it" in client.get("/list").get_data(as_text=True)  # still theirs


def test_a_retryable_failure_stays_pending_and_is_tried_again(client, reader, app, web):
    app.config["FETCH_ALLOW_PRIVATE"] = ["127.0.0.1/32"]
    web.add("/flaky", "busy", status=503)
    add(client, web.url("/flaky"))
    run_pending()
    [entry] = entries_of(reader)
    assert entry.post.fetch_state == "pending"
    assert entry.post.fetch_attempts == 1
    assert "the site answered 503" in client.get("/list").get_data(as_text=True)


def test_private_addresses_are_refused_and_never_contacted(client, reader, web):
    web.add("/internal", ARTICLE)  # FETCH_ALLOW_PRIVATE is empty by default
    add(client, web.url("/internal"))
    run_pending()
    assert web.connections == 0
    [entry] = entries_of(reader)
    assert entry.post.fetch_state == "failed"
    assert "private network" in client.get("/list").get_data(as_text=True)


def test_other_readers_rows_and_retries_are_404(app, client, reader, site, make_user):
    add(client, site.url("/harbours"))
    [entry] = entries_of(reader)
    other = app.test_client()
    sign_in(other, make_user())
    assert other.htmx_get(f"/list/{entry.id}").status_code == 404
    assert other.submit(f"/list/{entry.id}/refetch").status_code == 404
    assert other.submit(f"/list/{entry.id}/position", {"position": 500}).status_code == 404


def test_command_line_adds_for_a_reader(app, make_user, site):
    user = make_user("cli@example.com")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["posts", "add", site.url("/harbours"), "--user", user.email])
    assert result.exit_code == 0, result.output
    assert re.search(r"Saved .*harbours to cli@example.com's list", result.output)
    again = runner.invoke(args=["posts", "add", site.url("/harbours"), "--user", user.email])
    assert "Already on" in again.output
    bad = runner.invoke(args=["posts", "add", "javascript:x", "--user", user.email])
    assert bad.exit_code != 0
    assert "Only http and https" in bad.output
    nobody = runner.invoke(args=["posts", "add", site.url("/x"), "--user", "no@example.com"])
    assert nobody.exit_code != 0
    run_pending()
    assert db.session.scalar(select(Post.fetch_state)) == "done"


def test_a_fetch_queued_twice_runs_once(client, reader, site):
    from app.catalog.tasks import fetch_article

    add(client, site.url("/harbours"))
    [entry] = entries_of(reader)
    fetch_article(entry.post_id)  # e.g. requeued by the sweep while the first waits
    assert pending_count() == 2
    assert run_pending() == 2
    assert site.hits("/harbours") == 1
    db.session.refresh(entry.post)
    assert entry.post.fetch_attempts == 1


LATIN1_ARTICLE = (
    "<html><head><meta charset='iso-8859-1'><title>Caf\xe9 cr\xe8me</title></head><body>"
    "<article><h1>Caf\xe9 cr\xe8me</h1>"
    + "".join(
        f"<p>Le {n}e caf\xe9 cr\xe8me du matin se boit au comptoir, pr\xe8s de la fen\xeatre "
        f"o\xf9 le patron range {n} tasses \xe0 c\xf4t\xe9 des journaux de la veille.</p>"
        for n in range(2, 14)
    )
    + "</article></body></html>"
).encode("latin-1")


@pytest.mark.parametrize(
    ("route", "state", "shown"),
    [
        # A page with a wrong charset header: the text still comes out right.
        (
            {"body": LATIN1_ARTICLE, "content_type": "text/html; charset=utf-8"},
            "done",
            "Café crème",
        ),
        (
            {
                "body": "Plain notes.\n\nSecond <b>paragraph</b> of notes. " * 20,
                "content_type": "text/plain; charset=utf-8",
            },
            "done",
            "&lt;b&gt;paragraph&lt;/b&gt;",
        ),
        (
            {
                "body": b"%PDF-1.4\n1 0 obj << /Title (Annual report) >> endobj\n%%EOF",
                "content_type": "application/pdf",
            },
            "done",
            "A PDF",
        ),
        ({"body": "x" * 3000, "content_type": "text/html"}, "failed", "too large"),
        ({"body": ARTICLE, "delay": 3}, "pending", "took too long"),
        ({"body": "<html><body><nav>Home</nav></body></html>"}, "failed", "no article"),
    ],
    ids=["wrong-charset", "plain-text", "pdf", "too-large", "timeout", "no-content"],
)
def test_each_kind_of_page_ends_in_a_clear_state(client, reader, app, web, route, state, shown):
    app.config.update(FETCH_ALLOW_PRIVATE=["127.0.0.1/32"], FETCH_MAX_BYTES=2000, FETCH_TIMEOUT=1)
    web.add("/doc", **route)
    web.redirect("/moved", web.url("/doc"))  # every fetch follows a redirect first
    add(client, web.url("/moved"))
    run_pending()
    [entry] = entries_of(reader)
    assert entry.post.fetch_state == state
    html = client.get("/list").get_data(as_text=True) + client.get(
        f"/posts/{entry.post_id}"
    ).get_data(as_text=True)
    assert shown in html
    if state == "failed":
        assert entry.post.content is None  # nothing half-written


def test_a_page_found_by_a_word_of_its_body_shows_that_word_in_its_snippet(client, reader, site):
    add(client, site.url("/harbours"))
    run_pending()
    html = client.get("/search?q=kelp").get_data(as_text=True)
    assert "Quiet harbours of the northern coast" in html
    assert "<mark>kelp</mark>" in html

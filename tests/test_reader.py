"""The post page as a reader view: the article, the reader's bar, the position endpoint
that keeps their place, and the notices for posts without readable text."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.lists import services
from app.models import Entry
from tests.conftest import HTMX, sign_in

ARTICLE = (
    "<h2>Why it matters</h2><p>First paragraph with <a href='https://example.com/x' "
    "rel='noopener noreferrer' target='_blank'>a link</a>.</p>"
    "<pre><code>print('hello')</code></pre>"
    "<p><a class='image-placeholder' href='https://example.com/a.png'>Image: a chart</a></p>"
    "<p hx-get='/list'>Not for htmx.</p>"
)


@pytest.fixture
def article(make_post):
    def make(**overrides):
        values = {
            "title": "A long read",
            "url": "https://example.com/long-read",
            "site_name": "Example Journal",
            "content": ARTICLE,
            "content_text": "Why it matters. First paragraph.",
            "content_kind": "article",
            "fetch_state": "done",
        }
        values.update(overrides)
        return make_post(**values)

    return make


def _entry(user, post_id) -> Entry:
    db.session.rollback()
    return db.session.scalar(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
    )


def _save(client, user, post) -> Entry:
    assert client.submit(f"/list/save/{post.id}", htmx=True).status_code == 200
    return _entry(user, post.id)


def _position(client, entry_id, position, **kwargs):
    return client.submit(f"/list/{entry_id}/position", {"position": position}, htmx=True, **kwargs)


# --- the page ------------------------------------------------------------------------


def test_reader_view_shows_the_article_inside_an_htmx_free_container(client, reader, article):
    post = article(author="Ada Writer", reading_minutes=12)
    entry = _save(client, reader, post)
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    content = re.search(
        r'<div class="reader-content" hx-disable>(.*?)</div>\s*<footer', html, re.S
    )
    assert content, "the article sits in .reader-content[hx-disable]"
    assert "<h2>Why it matters</h2>" in content.group(1)
    assert "Image: a chart" in content.group(1) and "<pre><code>" in content.group(1)
    assert "css/reader.css" in html and re.search(r'<script src="[^"]*js/reader\.js" defer>', html)
    # Byline and the original, opened safely.
    assert "Ada Writer" in html and "Example Journal" in html and "12 min read" in html
    assert re.search(
        r'<a class="reader-original" href="https://example.com/long-read" '
        r'rel="noopener noreferrer"',
        html,
    )
    # The article carries where to save the reader's place and where to resume.
    assert f'data-position-url="/list/{entry.id}/position"' in html
    assert 'data-resume="0"' in html and 'data-state="saved"' in html
    # The bar: Done, Archive and the original, as form buttons that work without JS.
    bar = html.split(f'id="post-entry-{post.id}"')[1].split("</progress>")[0]
    assert 'value="100"' in bar and "Done" in bar and "Archive" in bar and "Original" in bar
    assert 'name="progress"' in bar  # the no-JS slider, in the bar's "More" panel
    assert "<dialog" in html and "Keyboard shortcuts" in html


def test_reader_view_without_an_entry_tracks_nothing(client, reader, article):
    post = article()
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "reader-content" in html
    assert "data-position-url" not in html and "data-resume" not in html
    assert f'formaction="/list/save/{post.id}"' in html  # Save, in the bar


def test_reader_view_for_a_visitor_offers_sign_in(client, article):
    post = article()
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "reader-content" in html and "data-position-url" not in html
    assert "Sign in" in html and 'href="https://example.com/long-read"' in html


def test_text_documents_use_the_reader_view(client, article):
    post = article(content="<p>Line one &lt;b&gt;</p><p>Line two</p>", content_kind="text")
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert '<div class="reader-content" hx-disable><p>Line one &lt;b&gt;</p>' in html


def test_a_post_page_resumes_from_the_server(client, reader, article):
    post = article()
    entry = _save(client, reader, post)
    _position(client, entry.id, 420)
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert 'data-resume="420"' in html and 'data-progress="42"' in html
    assert 'data-state="reading"' in html and "42 %" in html


def test_another_readers_private_article_is_a_404(client, make_user, article):
    owner = make_user("owner@example.com")
    post = article(owner_id=owner.id)
    sign_in(client, make_user("other@example.com"))
    assert client.get(f"/posts/{post.id}").status_code == 404


def test_a_done_entry_offers_not_done_yet(client, reader, article):
    post = article()
    entry = _save(client, reader, post)
    _position(client, entry.id, 640)
    _position(client, entry.id, 1000)
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "Not done yet" in html and "data-reader-undone" in html
    assert "data-reader-done" not in html
    # Undo through the progress endpoint: reading again, as far as they were.
    response = client.submit(f"/list/{entry.id}/progress", {"step": "99"}, htmx=True)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "list-changed"
    assert (_entry(reader, post.id).state, _entry(reader, post.id).progress) == ("reading", 99)


def test_the_bar_refreshes_as_a_fragment_with_the_list_count(client, reader, article):
    post = article()
    entry = _save(client, reader, post)
    _position(client, entry.id, 1000)
    response = client.htmx_get(f"/list/post/{post.id}")
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(
        f'<div id="post-entry-{post.id}" class="post-entry reader-bar"'
    )
    assert 'data-state="done"' in html and "Not done yet" in html
    assert 'id="list-count"' in html and 'hx-swap-oob="true"' in html
    assert "HX-Request" in response.headers["Vary"]
    # On the page itself the badge is in the header once, not swapped out of band.
    page = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert page.count('id="list-count"') == 1


def test_the_bars_no_js_buttons_post_back_to_the_post(client, reader, article):
    post = article()
    entry = _save(client, reader, post)
    response = client.submit(
        f"/list/{entry.id}/progress", {"step": "100", "next": f"/posts/{post.id}"}
    )
    assert response.status_code == 303 and response.location == f"/posts/{post.id}"
    assert _entry(reader, post.id).state == "done"


# --- the position endpoint -----------------------------------------------------------


def test_position_only_grows_progress_but_moves_the_resume_point(client, reader, article):
    entry = _save(client, reader, article())
    answer = _position(client, entry.id, 500).get_json()
    assert answer == {"progress": 50, "state": "reading", "resume_position": 500}
    answer = _position(client, entry.id, 200).get_json()
    assert answer == {"progress": 50, "state": "reading", "resume_position": 200}
    answer = _position(client, entry.id, 730).get_json()
    assert answer == {"progress": 73, "state": "reading", "resume_position": 730}


def test_position_at_the_end_marks_done(client, reader, article):
    entry = _save(client, reader, article())
    answer = _position(client, entry.id, 1000).get_json()
    assert answer == {"progress": 100, "state": "done", "resume_position": 1000}
    assert _entry(reader, entry.post_id).finished_at is not None


@pytest.mark.parametrize("junk", ["abc", "-1", "1001", ""])
def test_position_refuses_junk_with_422(client, reader, article, junk):
    entry = _save(client, reader, article())
    response = _position(client, entry.id, junk)
    assert response.status_code == 422 and "error" in response.get_json()
    assert _entry(reader, entry.post_id).resume_position == 0


def test_position_of_another_readers_entry_is_a_404(client, make_user, article):
    post = article()
    owner = make_user("owner@example.com")
    entry = services.save_post(owner, post.id)
    sign_in(client, make_user("other@example.com"))
    assert _position(client, entry.id, 500).status_code == 404
    assert _entry(owner, post.id).resume_position == 0


def test_position_needs_the_csrf_token(client, reader, article):
    entry = _save(client, reader, article())
    response = client.post(f"/list/{entry.id}/position", data={"position": "500"}, headers=HTMX)
    assert response.status_code == 400
    assert _entry(reader, entry.post_id).resume_position == 0


def test_position_takes_the_token_in_the_body_like_a_beacon(client, reader, article):
    entry = _save(client, reader, article())
    token = client.csrf_token()
    response = client.post(
        f"/list/{entry.id}/position", data={"position": "610", "csrf_token": token}
    )
    assert response.status_code == 200 and response.get_json()["progress"] == 61


# --- posts without readable text -----------------------------------------------------


def test_pending_post_shows_a_notice_that_polls_the_page(client, reader, article):
    post = article(content=None, content_kind=None, fetch_state="pending")
    _save(client, reader, post)
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "Dogear is fetching this page…" in html and "reader-content" not in html
    assert re.search(
        rf'hx-get="/posts/{post.id}" hx-trigger="every 2s"\s+hx-select="#post-view" '
        r'hx-target="#post-view" hx-swap="outerHTML"',
        html,
    )
    # The poll gets the page (hx-select takes the post from it), without related posts.
    poll = client.htmx_get(f"/posts/{post.id}")
    assert poll.status_code == 200 and 'id="post-view"' in poll.get_data(as_text=True)


def test_once_fetched_the_poll_gets_the_reader_view_and_stops(client, reader, article):
    post = article(fetch_state="pending", content=None, content_kind=None)
    _save(client, reader, post)
    post.content, post.content_kind, post.fetch_state = ARTICLE, "article", "done"
    db.session.commit()
    html = client.htmx_get(f"/posts/{post.id}").get_data(as_text=True)
    view = html.split('id="post-view"')[1]
    assert "reader-content" in view and 'hx-trigger="every 2s"' not in view


def test_failed_post_shows_why_with_retry_and_the_original(client, reader, article):
    post = article(
        content=None,
        content_kind=None,
        fetch_state="failed",
        fetch_error="The site answered 404: the page is not there",
    )
    entry = _save(client, reader, post)
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "Dogear couldn't fetch this page." in html
    assert "The site answered 404: the page is not there" in html
    assert f'formaction="/list/{entry.id}/refetch"' in html
    assert 'href="https://example.com/long-read" rel="noopener noreferrer"' in html


def test_pdf_post_links_to_the_original(client, reader, article):
    post = article(content=None, content_kind="pdf", url="https://example.com/paper.pdf")
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "This is a PDF." in html and "Open the PDF on the original site" in html
    assert "reader-content" not in html


def test_a_post_without_content_or_url_shows_its_details_beside_the_controls(
    client, reader, make_post
):
    post = make_post(title="Catalog only", summary="Just a summary.", word_count=2400)
    html = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert 'class="post-layout"' in html and 'class="post-aside"' in html
    assert "Just a summary." in html and "2,400" in html
    assert "reader-content" not in html and "post-notice" not in html

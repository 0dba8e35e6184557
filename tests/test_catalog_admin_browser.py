"""The catalog admin in a real browser: live filtering, editing, merging duplicates,
the inline delete confirmation, re-tagging with a polled progress bar, and the same
without JavaScript. Screenshots of the pages go to /tmp/shots for a person to look at."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest
from browsing import ADMIN, DESKTOP, PHONE, Live, Pages, mark, sign_in
from playwright.sync_api import Page, expect

from app.extensions import db
from app.jobs import run_pending
from app.models import Post

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("DOGEAR_SHOTS", "/tmp/shots"))  # noqa: S108 - a person looks


def add_post(live: Live, title: str, **values) -> int:
    def add() -> int:
        post = Post(
            title=title,
            summary=values.pop("summary", "A copy of a post that came in twice."),
            author=values.pop("author", "Priya Raghunathan"),
            published_on=values.pop("published_on", date(2026, 10, 21)),
            reading_minutes=18,
            dedupe_key=f"browser-{title}",
            **values,
        )
        db.session.add(post)
        db.session.commit()
        return post.id

    return live.run(add)


def test_admin_edits_a_post_merges_two_and_sees_the_result_in_browse(pages: Pages, live: Live):
    survivor = live.post_ids()[0]
    title = live.title(survivor)
    duplicate = add_post(live, "Cancellation in asyncio, the field guide")
    live.save(survivor, progress=20)
    live.save(duplicate, progress=70)

    page = pages.open()
    sign_in(page, email=ADMIN, then="/admin/posts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Posts")
    mark(page)
    page.get_by_label("Search", exact=True).fill("field guide")
    expect(page).to_have_url(re.compile(r"/admin/posts\?q=field\+guide$"))  # tidy, pushed
    rows = page.locator("#post-rows tbody tr")
    expect(rows.filter(has_text="Cancellation in asyncio")).to_have_count(1)
    expect(rows.filter(has_text="Plain words only")).to_have_count(0)
    assert page.evaluate("window.__dogearMarker") == "still here"

    # Edit the duplicate's title in place (htmx), keeping the list's filters for later.
    rows.filter(has_text="Cancellation in asyncio").get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(rf"/admin/posts/{duplicate}\?next="))
    mark(page)
    page.get_by_label("Title").fill("Asyncio cancellation, a field guide (copy)")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#flashes")).to_contain_text("Post saved.")
    expect(page.get_by_label("Title")).to_have_value("Asyncio cancellation, a field guide (copy)")
    assert page.evaluate("window.__dogearMarker") == "still here"

    # Merge it into the original: find it, review, merge.
    page.get_by_role("link", name="Merge into another post…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merge a duplicate")
    # A full page load: typing before htmx has started would go unheard (no reader
    # types within milliseconds of the page appearing; a loaded machine's test does).
    page.wait_for_load_state()
    page.get_by_label("Search the catalog by title, author or address").fill(title)
    candidate = page.locator("#merge-candidates label.candidate", has_text=title)
    expect(candidate).to_have_count(1)
    candidate.click()
    page.get_by_role("button", name="Review the merge").click()
    expect(page.locator("#merge-review")).to_contain_text("1 reader has both")
    page.get_by_role("button", name=f"Merge into #{survivor}").click()
    expect(page).to_have_url(re.compile(rf"/admin/posts/{survivor}(\?|$)"))
    expect(page.locator("#flashes")).to_contain_text("into this post")

    # Browse shows one post, and the reader kept the further progress.
    page.goto("/")
    expect(page.locator("#browse-results .post-title", has_text=title)).to_have_count(1)
    expect(page.locator("#browse-results")).not_to_contain_text("Asyncio cancellation, a field")
    assert live.entry(survivor) == ("reading", 70)
    assert live.entry(duplicate) is None
    pages.assert_clean()


def test_delete_asks_inline_then_deletes(pages: Pages, live: Live):
    post_id = live.post_ids()[2]
    title = live.title(post_id)
    live.save(post_id, progress=40)
    page = pages.open()
    sign_in(page, email=ADMIN, then=f"/admin/posts/{post_id}")
    mark(page)
    page.get_by_role("link", name="Delete this post…").click()
    danger = page.locator("#post-danger")
    expect(danger).to_contain_text("1 reader has it on their list")
    expect(danger.get_by_role("button", name="Delete the post")).to_be_focused()
    assert page.evaluate("window.__dogearMarker") == "still here"  # inline, no reload
    danger.get_by_role("button", name="Delete the post").click()
    expect(page).to_have_url(re.compile(r"/admin/posts$"))
    expect(page.locator("#flashes")).to_contain_text(f"Deleted “{title}” and 1 list entry.")
    assert live.entry(post_id) is None
    pages.assert_clean()


def test_retag_shows_progress_until_done(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page, email=ADMIN, then="/admin/topics")
    mark(page)
    page.get_by_role("button", name="Re-tag all posts").click()
    job = page.locator("#retag-job")
    expect(job).to_contain_text("Queued")
    live.run(run_pending)  # the worker's turn; the bar polls by itself
    expect(job).to_contain_text("Done", timeout=5000)
    expect(job).to_contain_text("Re-tagged")
    expect(job.locator("progress")).to_have_attribute("value", "100")
    assert page.evaluate("window.__dogearMarker") == "still here"
    pages.assert_clean()


def test_without_javascript_filter_edit_and_delete(pages: Pages, live: Live):
    post_id = live.post_ids()[1]
    page = pages.open(java_script_enabled=False)
    sign_in(page, email=ADMIN, then="/admin/posts")
    page.get_by_label("Topic").select_option("rust")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"topic=rust"))
    list_url = page.url
    page.goto(f"/admin/posts/{post_id}")
    page.get_by_label("Author").fill("Somebody Else")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#flashes")).to_contain_text("Post saved.")
    expect(page.get_by_label("Author")).to_have_value("Somebody Else")
    page.get_by_role("link", name="Delete this post…").click()
    expect(page).to_have_url(re.compile(rf"/admin/posts/{post_id}/delete"))
    page.get_by_role("button", name="Delete the post").click()
    expect(page).to_have_url(re.compile(r"/admin/posts$"))
    expect(page.locator("#flashes")).to_contain_text("Deleted")
    page.goto(list_url)
    expect(page.get_by_label("Topic")).to_have_value("rust")
    expect(page.locator("#post-rows")).not_to_contain_text("Somebody Else")
    pages.assert_clean()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.one_database
def test_screenshots(pages: Pages, live: Live, scheme: str):
    """Not pixel assertions: PNGs for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    post_id = live.post_ids()[0]
    live.save(post_id, progress=30)
    screens = {
        "catalog-posts": "/admin/posts",
        "catalog-edit": f"/admin/posts/{post_id}",
        "catalog-topics": "/admin/topics",
    }
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = pages.open(viewport=viewport, color_scheme=scheme)
        sign_in(page, email=ADMIN, then="/admin/posts")
        for screen, path in screens.items():
            response = page.goto(path)
            assert response is not None and response.ok, path
            _shot(page, f"{screen}-{name}-{scheme}")
        if name == "desktop":
            page.goto(f"/admin/posts/{post_id}/merge?into={live.post_ids()[1]}")
            _shot(page, f"catalog-merge-{name}-{scheme}")
    pages.assert_clean()


def _shot(page: Page, name: str) -> None:
    """What a person sees first (the viewport), and the whole page."""
    page.screenshot(path=SHOTS / f"{name}.png")
    page.screenshot(path=SHOTS / f"{name}-full.png", full_page=True)

"""Saving a page in a real browser, with and without JavaScript: the row appears at
once, marked as being fetched, and fills in when the worker has fetched the page."""

from __future__ import annotations

import re

import pytest
from browsing import Live, Pages, mark, sign_in
from playwright.sync_api import expect

from app.jobs import run_pending
from tests.test_saving import ARTICLE

pytestmark = pytest.mark.browser


@pytest.fixture
def site(live: Live, web):
    live.app.config["FETCH_ALLOW_PRIVATE"] = ["127.0.0.1/32"]
    web.add("/harbours", ARTICLE)
    return web


def test_add_a_page_and_watch_its_row_fill_in(pages: Pages, live: Live, site):
    page = pages.open()
    sign_in(page)
    page.get_by_role("link", name="Add").click()
    expect(page).to_have_url(re.compile(r"/list/add$"))
    page.get_by_label("Address").fill("not a web address at all")
    page.get_by_role("button", name="Save to my list").click()
    expect(page.locator("#add-form")).to_contain_text("spaces")  # inline, 422
    # Chromium logs every 4xx as a console error; this one is the expected answer.
    pages.problems[:] = [p for p in pages.problems if "status of 422" not in p]
    page.get_by_label("Address").fill(site.url("/harbours"))
    page.get_by_role("button", name="Save to my list").click()

    expect(page).to_have_url(re.compile(r"/list\?state=saved$"))
    row = page.locator("article.entry").first
    expect(row).to_contain_text("Fetching the page")
    expect(page.locator("#flashes")).to_contain_text("to the top of Up next")
    mark(page)
    assert site.hits("/harbours") == 0

    live.run(run_pending)  # the worker's turn
    expect(row.get_by_role("heading")).to_have_text(
        "Quiet harbours of the northern coast", timeout=8000
    )
    expect(row).not_to_contain_text("Fetching the page")
    expect(row).to_contain_text("Tidewater Notes")
    expect(page.locator("#list-time-left")).to_contain_text("1 min")
    assert page.evaluate("window.__dogearMarker") == "still here"  # no reload
    pages.assert_clean()


def test_add_a_page_without_javascript(pages: Pages, live: Live, site):
    page = pages.open(java_script_enabled=False)
    sign_in(page)
    page.goto(f"/list/add?url={site.url('/harbours')}&title=Harbours")
    expect(page.get_by_label("Address")).to_have_value(site.url("/harbours"))
    page.get_by_role("button", name="Save to my list").click()
    expect(page).to_have_url(re.compile(r"/list\?state=saved$"))
    row = page.locator("article.entry").first
    expect(row).to_contain_text("Fetching the page")
    live.run(run_pending)
    page.reload()
    expect(row).not_to_contain_text("Fetching the page")
    expect(row.get_by_role("heading")).to_have_text("Harbours")  # the reader's own title
    row.get_by_role("link", name="Read", exact=True).click()
    expect(page).to_have_url(re.compile(r"/posts/\d+$"))
    expect(page.locator("body")).to_contain_text("pollock")
    pages.assert_clean()

"""Imports, exports and tags in a real browser: upload a Pocket export, check the
preview, confirm, watch the progress bar fill (the worker's job runs when the test
says so), find the entries in the right tabs with their tags, tag one, filter by a
tag; and screenshots of each page at 1280 and 390 px, light and dark (/tmp/shots).

Every test ends by asserting no console errors, CSP violations or server exceptions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browsing import DESKTOP, PHONE, READER, Live, Pages, sign_in
from playwright.sync_api import Page, expect
from sqlalchemy import update

from app.auth.services import find_user_by_email
from app.extensions import db
from app.imports import services
from app.jobs import run_pending
from app.models import JobRun
from tests.test_imports import fixture, pocket_zip

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")


def _upload(page: Page) -> None:
    page.goto("/account")
    page.get_by_role("link", name="Import a list").click()
    expect(page).to_have_url(re.compile(r"/account/import$"))
    page.get_by_label("Export file", exact=True).set_input_files(
        {"name": "pocket.zip", "mimeType": "application/zip", "buffer": pocket_zip()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    expect(page).to_have_url(re.compile(r"/account/import/\d+$"))


def test_import_a_pocket_export_and_find_it_on_the_list(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page)
    _upload(page)
    stats = page.locator(".import-stats")
    expect(stats).to_contain_text("8 new entries")
    expect(stats).to_contain_text("4 up next · 4 done")
    expect(stats).to_contain_text("3 left out")
    problems = page.locator(".import-problems")
    expect(problems).to_contain_text("part_000000.csv line 7")
    expect(problems).to_contain_text("javascript:")
    # A title with a script in it is shown as text.
    expect(page.get_by_text("<script>alert('x')</script> <b>Fancy</b> title")).to_be_visible()

    page.get_by_role("button", name="Import 8 entries").click()
    expect(page).to_have_url(re.compile(r"/account/import/runs/\d+$"))
    status = page.locator("#import-run")
    expect(status).to_contain_text("Waiting to start")

    # Half way (as the worker would leave it between two chunks): the bar follows.
    run_id = int(page.url.rsplit("/", 1)[1])
    live.run(lambda: _set_progress(run_id, 4))
    expect(status).to_contain_text("4 of 8 entries")
    expect(status.locator("progress")).to_have_attribute("value", "4")
    live.run(lambda: _set_progress(run_id, 0, status="queued"))

    assert live.run(run_pending) >= 1
    expect(status).to_contain_text("Import finished", timeout=5_000)
    expect(status).to_contain_text("8 of 8 entries")
    expect(status.locator("progress")).to_have_attribute("value", "8")
    expect(status).not_to_have_attribute("hx-trigger", re.compile("."))
    expect(page.locator("#import-announce")).to_contain_text("Imported 8 new entries")

    page.get_by_role("link", name="Open my list").click()
    expect(page).to_have_url(re.compile(r"/list$"))
    rows = page.locator("article.entry")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("Über die Brücke")
    page.get_by_role("link", name=re.compile(r"^Done")).click()
    expect(page).to_have_url(re.compile(r"state=done"))
    expect(page.locator("article.entry")).to_have_count(4)
    harbours = page.locator("article.entry").filter(has_text="Quiet harbours")
    harbours.locator("details.entry-more > summary").click()
    expect(harbours.locator(".tag-chip a")).to_have_text(["pocket-tag", "sea", "travel"])

    # Tag an entry from its row: the row is swapped in place, its panel stays open.
    page.get_by_role("link", name=re.compile(r"^Up next")).click()
    row = page.locator("article.entry").filter(has_text="Über die Brücke")
    row.locator("details.entry-more > summary").click()
    row.get_by_label(re.compile("Add tags to")).fill("Favourite, later")
    row.get_by_role("button", name="Add", exact=True).click()
    expect(row.locator(".tag-chip a")).to_have_text(["deutsch", "favourite", "later"])
    expect(row.locator("details.entry-more")).to_have_attribute("open", "")
    expect(page.locator("#flashes")).to_contain_text("Tagged")

    # Filter the list by a tag, then take the filter off.
    row.locator(".entry-tags").get_by_role(
        "link", name="#favourite"
    ).click()  # shown on the row itself
    expect(page).to_have_url(re.compile(r"/list\?tag=favourite$"))
    expect(page.locator("article.entry")).to_have_count(1)
    expect(page.locator(".list-filter")).to_contain_text("favourite")
    page.locator(".list-filter .chip").click()
    expect(page.locator("article.entry")).to_have_count(4)

    # Remove a tag with its × button.
    row = page.locator("article.entry").filter(has_text="Über die Brücke")
    row.locator("details.entry-more > summary").click()
    row.get_by_role("button", name="Remove the tag later").click()
    expect(row.locator(".tag-chip a")).to_have_text(["deutsch", "favourite"])
    pages.assert_clean()


def _set_progress(run_id: int, done: int, status: str = "running") -> None:
    db.session.execute(update(JobRun).where(JobRun.id == run_id).values(status=status, done=done))
    db.session.commit()


def test_without_javascript_the_whole_import_works(pages: Pages, live: Live):
    page = pages.open(java_script_enabled=False)
    sign_in(page)
    _upload(page)
    page.get_by_role("button", name="Import 8 entries").click()
    expect(page).to_have_url(re.compile(r"/account/import/runs/\d+$"))
    expect(page.locator("#import-run")).to_contain_text("Waiting to start")
    live.run(run_pending)
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator("#import-run")).to_contain_text("Import finished")
    page.goto("/list/tags")
    expect(page.locator(".tag-row")).to_have_count(8)
    row = page.locator(".tag-row").filter(has_text="deutsch")
    row.get_by_label("New name for deutsch").fill("german")
    row.get_by_role("button", name="Rename deutsch").click()
    expect(page.locator("#flashes")).to_contain_text("Renamed “deutsch” to “german”.")
    page.get_by_role("link", name="german").click()
    expect(page.locator("article.entry")).to_have_count(1)
    pages.assert_clean()


def _stage(live: Live) -> dict[str, str]:
    """An imported list with tags, an import half way, and a Pocket export waiting for
    its go-ahead, for the screenshots."""

    def stage() -> dict[str, str]:
        user = find_user_by_email(READER)
        data = fixture("instapaper.csv")
        run = services.start_import(
            user, services.store_upload(user, "instapaper.csv", data)[0].id, "skip",
            enqueue=False,
        )  # fmt: skip
        services.run_import(run.id)
        upload, _ = services.store_upload(user, "readwise.csv", fixture("readwise.csv"))
        halfway = services.start_import(user, upload.id, "skip", enqueue=False)
        db.session.execute(
            update(JobRun)
            .where(JobRun.id == halfway.id)
            .values(status="running", done=2, total=4, message="Imported 2 of 4.")
        )
        preview, _ = services.store_upload(user, "pocket.zip", pocket_zip())
        db.session.commit()
        return {
            "import": "/account/import",
            "preview": f"/account/import/{preview.id}",
            "progress": f"/account/import/runs/{halfway.id}",
            "done": f"/account/import/runs/{run.id}",
            "export": "/account/export",
            "tags": "/list/tags",
            "list": "/list",
        }

    return live.run(stage)


@pytest.mark.one_database
def test_screenshots_of_import_export_and_tags(pages: Pages, live: Live):
    SHOTS.mkdir(parents=True, exist_ok=True)
    urls = _stage(live)
    for size, viewport in (("1280", DESKTOP), ("390", PHONE)):
        for scheme in ("light", "dark"):
            page = pages.open(viewport=viewport, color_scheme=scheme)
            sign_in(page)
            for name, url in urls.items():
                page.goto(url)
                if name == "list":
                    row = page.locator("article.entry").filter(has_text="In a folder")
                    row.locator("details.entry-more > summary").click()
                    row.scroll_into_view_if_needed()
                    if size == "390":
                        page.evaluate("window.scrollBy(0, 300)")
                full = name in ("preview", "import", "export", "tags")
                page.screenshot(path=SHOTS / f"imports-{name}-{size}-{scheme}.png", full_page=full)
            page.context.close()
    assert len(list(SHOTS.glob("imports-*.png"))) >= 28
    pages.assert_clean()

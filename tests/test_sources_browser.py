"""The sources page in a real browser: add a feed, watch its row fill in while the
worker refreshes it, refresh all with progress, delete with and without JavaScript,
and screenshots of the page on desktop and phone, light and dark."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from browsing import ADMIN, DESKTOP, PHONE, Live, Pages, sign_in
from playwright.sync_api import expect

from app.extensions import db
from app.jobs import run_pending
from app.models import Source, utcnow
from app.sources.refresh import refresh_source

pytestmark = pytest.mark.browser

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
SHOTS = Path("/tmp/shots")


@pytest.fixture
def site(live: Live, web):
    live.app.config["FETCH_ALLOW_PRIVATE"] = ["127.0.0.1/32"]
    for name, kind in (
        ("rss2.xml", "application/rss+xml"),
        ("atom.xml", "application/atom+xml"),
        ("feed.json", "application/feed+json"),
    ):
        web.add(f"/{name}", (FEEDS / name).read_bytes(), content_type=kind)
    web.add("/blog", (FEEDS / "page.html").read_bytes())
    web.add("/down.xml", "gone", status=503)
    return web


def test_add_a_feed_refresh_it_and_see_its_posts_in_browse(pages: Pages, live: Live, site):
    page = pages.open()
    sign_in(page, ADMIN, then="/admin/sources")
    expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    page.get_by_label("Address").fill(site.url("/rss2.xml"))
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#flashes")).to_contain_text("Added “Tidewater Notes”")
    expect(page.get_by_label("Address")).to_have_value("")
    row = page.locator("#sources-table tr", has_text="Tidewater Notes")
    expect(row).to_contain_text("Queued")
    page.evaluate("window.__dogearMarker = 'still here'")

    live.run(run_pending)  # the worker's turn; the row polls and fills in
    expect(row).to_contain_text("OK", timeout=8000)
    expect(row).to_contain_text("3 new")
    expect(row).not_to_contain_text("Queued")

    page.get_by_role("button", name="Refresh all").click()
    progress = page.locator("#refresh-all")
    expect(progress).to_contain_text("of 1 source")  # the demo listing has no address
    live.run(run_pending)
    expect(progress).to_contain_text("Done.", timeout=8000)
    expect(progress).to_contain_text("Refreshed 1 source")
    assert page.evaluate("window.__dogearMarker") == "still here"

    page.goto("/")
    titles = page.locator("#browse-results .post-title").all_inner_texts()
    for title in ("Quiet harbours of the northern coast", "The breakwater", "An undated note"):
        assert title in [t.strip() for t in titles]
    pages.assert_clean()


def test_discovery_and_inline_errors(pages: Pages, live: Live, site):
    page = pages.open()
    sign_in(page, ADMIN, then="/admin/sources")
    page.get_by_label("Address").fill(site.url("/nothing-here"))
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#source-add")).to_contain_text("the site answered 404")
    expect(page.get_by_label("Address")).to_be_focused()
    # Chromium logs every 4xx as a console error; this one is the expected 422.
    pages.problems[:] = [p for p in pages.problems if "status of 422" not in p]
    page.get_by_label("Address").fill(site.url("/blog"))
    page.get_by_label("Name (optional)").fill("Field Notes")
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#flashes")).to_contain_text("Dogear picked “Field Notes”")
    expect(page.locator("#sources-table")).to_contain_text(site.url("/atom.xml"))
    pages.assert_clean()


def test_delete_with_and_without_javascript(pages: Pages, live: Live, site):
    def seed() -> None:
        for name, path in (("First", "/rss2.xml"), ("Second", "/atom.xml")):
            db.session.add(Source(name=name, kind="feed", url=site.url(path), status="ok"))
        db.session.commit()

    live.run(seed)
    page = pages.open()
    sign_in(page, ADMIN, then="/admin/sources")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete First").click()
    expect(page.locator("#flashes")).to_contain_text("Deleted “First”")
    expect(page.locator("#sources-table")).not_to_contain_text("First")

    plain = pages.open(java_script_enabled=False)
    sign_in(plain, ADMIN, then="/admin/sources")
    plain.get_by_role("button", name="Delete Second").click()
    expect(plain).to_have_url(re.compile(r"/admin/sources/\d+/delete\?$|/delete$"))
    expect(plain.get_by_role("heading", level=1)).to_have_text("Delete “Second”?")
    plain.get_by_role("button", name="Delete source").click()
    expect(plain).to_have_url(re.compile(r"/admin/sources$"))
    expect(plain.locator("#flashes")).to_contain_text("Deleted “Second”")
    pages.assert_clean()


def _seed_states(live: Live, site) -> None:
    """Sources in every state the table shows."""

    def seed() -> None:
        now = utcnow()
        for name, path in (("Tidewater Notes", "/rss2.xml"), ("Kettle & Code", "/feed.json")):
            db.session.add(Source(name=name, kind="feed", url=site.url(path)))
        db.session.add(Source(name="Flaky host", kind="feed", url=site.url("/down.xml")))
        db.session.add(
            Source(
                name="A feed with a rather long name that wraps",
                kind="feed",
                url=site.url("/atom.xml") + "?" + "x" * 60,
                status="queued",
                next_refresh_at=now + timedelta(minutes=10),
            )
        )
        db.session.commit()
        for source in db.session.scalars(db.select(Source).where(Source.url.is_not(None))):
            if source.status != "queued":
                refresh_source(source.id)
        flaky = db.session.scalar(db.select(Source).where(Source.name == "Flaky host"))
        refresh_source(flaky.id)
        refresh_source(flaky.id)

    live.run(seed)


@pytest.mark.one_database
def test_screenshots_of_the_sources_page(pages: Pages, live: Live, site):
    """Not pixel assertions: PNGs in /tmp/shots for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    _seed_states(live, site)
    for scheme in ("light", "dark"):
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page = pages.open(viewport=viewport, color_scheme=scheme)
            sign_in(page, ADMIN, then="/admin/sources")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} {scheme}: the page scrolls sideways by {overflow}px"
            page.screenshot(path=SHOTS / f"sources-{name}-{scheme}.png", full_page=True)
            if name == "phone":  # also in screen-sized parts, to look at closely
                height = page.evaluate("document.documentElement.scrollHeight")
                for part, top in enumerate(range(0, height, PHONE["height"])):
                    clip = {"x": 0, "y": top, "width": PHONE["width"], "height": PHONE["height"]}
                    clip["height"] = min(clip["height"], height - top)
                    page.screenshot(
                        path=SHOTS / f"sources-phone-{scheme}-{part + 1}.png",
                        full_page=True,
                        clip=clip,
                    )
            if name == "desktop":
                page.get_by_role("button", name="Refresh all").click()
                expect(page.locator("#refresh-all")).to_contain_text("0 of 4 sources")
                page.locator("#refresh-all").screenshot(path=SHOTS / f"sources-run-{scheme}.png")
                opml = (FEEDS / "subscriptions.opml").read_bytes()
                page.get_by_label("OPML file").set_input_files(
                    files=[{"name": "feeds.opml", "mimeType": "text/x-opml", "buffer": opml}]
                )
                page.get_by_role("button", name="Preview import").click()
                expect(page.locator("#opml-panel")).to_contain_text("Import these feeds?")
                page.screenshot(path=SHOTS / f"sources-opml-{scheme}.png", full_page=True)
                page.get_by_role("link", name="Edit Flaky host").click()
                page.screenshot(path=SHOTS / f"sources-edit-desktop-{scheme}.png", full_page=True)
    pages.assert_clean()

"""Real-browser tests of the installable app and the bookmarklet: what only Chromium can
tell us (the manifest as it parses it, the service worker's life, popups, offline).

They reuse test_browser's Chromium, live server and problem collector, so every test
also asserts no console errors, page errors, CSP violations or server exceptions.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from browsing import Live, Page, Pages, expect, sign_in

pytestmark = pytest.mark.browser

ELSEWHERE_TITLE = "Tea & biscuits — a field guide"
ELSEWHERE_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>{ELSEWHERE_TITLE.replace("&", "&amp;")}</title></head>
<body><h1>Somebody else's site</h1><p>A page worth keeping.</p></body></html>
""".encode()


class _Elsewhere(BaseHTTPRequestHandler):
    """Another site, on another port of 127.0.0.1: where a reader uses the bookmarklet."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(ELSEWHERE_HTML)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def elsewhere() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Elsewhere)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def bookmarklet(page: Page) -> str:
    """The JavaScript the bookmarks bar would run: the link's href as the browser read it,
    percent-decoded as browsers do for a javascript: URL."""
    page.goto("/account")
    link = page.get_by_role("link", name="Save to Dogear")
    expect(link).to_be_visible()
    href = link.get_attribute("href") or ""
    assert href.startswith("javascript:")
    return unquote(href.removeprefix("javascript:"))


def wait_for_service_worker(page: Page) -> str:
    """Wait until the page's service worker is active and controls the page; its scope."""
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    if not page.evaluate("!!navigator.serviceWorker.controller"):
        page.reload()  # clients.claim() may race the first load; a reload is controlled
    assert page.evaluate("!!navigator.serviceWorker.controller")
    return scope


# --- the bookmarklet -----------------------------------------------------------------


def test_bookmarklet_opens_dogear_with_the_pages_address_and_title(
    pages: Pages, live: Live, elsewhere: str
):
    page = pages.open()
    sign_in(page)
    code = bookmarklet(page)
    assert f'"{live.url}/list/add?url="' in code

    there = f"{elsewhere}/posts/tea?ref=a&b=two%20words"
    page.goto(there)
    with page.expect_popup() as opened:
        page.evaluate(code)
    popup = opened.value
    popup.wait_for_load_state()
    assert popup.url.startswith(f"{live.url}/list/add?")
    expect(popup.locator("input[name='url']")).to_have_value(there)
    expect(popup.locator("input[name='title']")).to_have_value(ELSEWHERE_TITLE)
    assert page.url == there, "the page the reader was on stays where it was"
    pages.assert_clean()


def test_bookmarklet_navigates_when_popups_are_blocked(pages: Pages, live: Live, elsewhere: str):
    page = pages.open()
    sign_in(page)
    code = bookmarklet(page)
    page.goto(f"{elsewhere}/article")
    page.evaluate("window.open = () => null")  # what a popup blocker returns
    page.evaluate(code)
    expect(page).to_have_url(re.compile(re.escape(f"{live.url}/list/add?url=")))
    expect(page.locator("input[name='url']")).to_have_value(f"{elsewhere}/article")
    expect(page.locator("input[name='title']")).to_have_value(ELSEWHERE_TITLE)
    pages.assert_clean()


# --- manifest and service worker ----------------------------------------------------


def test_chromium_reads_the_manifest_without_errors(pages: Pages, live: Live):
    page = pages.open()
    page.goto("/")
    fetched = page.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.json())"
    )
    assert fetched["name"] == "Dogear"

    cdp = page.context.new_cdp_session(page)
    result = cdp.send("Page.getAppManifest")
    assert result["url"] == f"{live.url}/manifest.webmanifest"
    assert result["errors"] == [], result["errors"]
    parsed = result["manifest"]  # Chromium's own reading of it
    assert parsed["name"] == "Dogear"
    assert parsed["startUrl"] == f"{live.url}/list"
    assert parsed["scope"] == f"{live.url}/"
    assert parsed["display"] == "kStandalone"
    assert parsed["shareTarget"]["action"] == f"{live.url}/list/add"
    assert {icon["url"].rsplit("/", 1)[-1] for icon in parsed["icons"]} == {
        "dogear.svg",
        "icon-192.png",
        "icon-512.png",
        "icon-maskable-512.png",
    }
    wait_for_service_worker(page)
    installability = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    # A Playwright context is incognito-like; nothing else may stand in the way.
    assert [e["errorId"] for e in installability if e["errorId"] != "in-incognito"] == []
    pages.assert_clean()


def test_service_worker_registers_at_the_root_with_no_errors(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page, then="/list")
    assert wait_for_service_worker(page) == f"{live.url}/"
    # What it keeps: static files and the offline page, never a page with the reader in it.
    cached = page.evaluate(
        """async () => {
            const urls = [];
            for (const key of await caches.keys()) {
                const cache = await caches.open(key);
                for (const request of await cache.keys()) urls.push(request.url);
            }
            return urls;
        }"""
    )
    assert f"{live.url}/offline" in cached
    paths = [url.removeprefix(live.url) for url in cached]
    assert all(p == "/offline" or p.startswith("/static/") for p in paths), paths
    pages.assert_clean()


def test_offline_a_reader_list_is_never_shown_from_a_cache(pages: Pages, live: Live):
    post_id = live.post_ids()[0]
    title = live.title(post_id)
    live.save(post_id)
    page = pages.open()
    sign_in(page, then="/list")
    expect(page.get_by_role("link", name=title)).to_be_visible()
    wait_for_service_worker(page)

    context = page.context
    context.set_offline(True)
    page.goto("/list")
    expect(page.get_by_role("heading", name="You're offline")).to_be_visible()
    expect(page.get_by_text(title)).to_have_count(0)
    # Styled from the cached stylesheet: the light theme's background.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(250, 248, 245)"
    )

    context.set_offline(False)
    page.goto("/list")
    expect(page.get_by_role("link", name=title)).to_be_visible()
    page.get_by_role("button", name="Sign out").first.click()
    expect(page).to_have_url(re.compile(r"/login$"))

    context.set_offline(True)
    for path in ("/list", "/account", "/"):
        page.goto(path)
        expect(page.get_by_role("heading", name="You're offline")).to_be_visible()
        expect(page.get_by_text(title)).to_have_count(0)
        expect(page.get_by_text("reader@example.com")).to_have_count(0)
    context.set_offline(False)
    pages.assert_clean()


# --- error pages ---------------------------------------------------------------------


def test_404_page_offers_ways_on_and_its_search_works(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page)
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.get_by_text("That page doesn't exist, or it isn't yours to see.")).to_be_visible()
    main = page.locator("main")
    expect(main.get_by_role("link", name="Browse the catalog")).to_be_visible()
    expect(main.get_by_role("link", name="My list")).to_be_visible()
    main.get_by_label("Looking for a post? Search the catalog").fill("rust")
    main.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search\?q=rust$"))
    # Chromium logs the 404 document itself as a failed load; that one is expected.
    expected = f"status of 404 (NOT FOUND) ({live.url}/no/such/page)"
    pages.problems = [p for p in pages.problems if not p.endswith(expected)]
    pages.assert_clean()

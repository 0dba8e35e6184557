"""Real-browser tests: what only a browser shows (htmx swaps, history, no-JS forms, CSP).

They drive Debian's Chromium through Playwright's sync API against the app served by
werkzeug on a random port, with a fresh migrated database per test. Every test also
asserts that the browser logged no console errors, page errors or CSP violations and
that the server raised nothing.

Without Chromium the module skips, unless DOGEAR_BROWSER_TESTS=required (as in CI).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask, got_request_exception
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from app.auth.services import create_user, find_user_by_email
from app.catalog.importer import import_listings
from app.extensions import db
from app.lists import services as list_services
from app.models import Entry, Post, Topic
from tests.conftest import PASSWORD, make_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DOGEAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
HTMX_JS = ROOT / "static" / "vendor" / "htmx.min.js"
SCREENSHOTS = ROOT / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
READER = "reader@example.com"
ADMIN = "admin@example.com"
TIMEOUT_MS = 10_000

# Chromium reports CSP violations as console errors already; this makes them explicit
# (init scripts are injected by the browser, not the page, so the CSP doesn't block it).
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extras install it
    if os.environ.get("DOGEAR_BROWSER_TESTS") == "required":
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

T = TypeVar("T")


# --- the browser and the live server -------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, shared by the whole module (a context per test)."""
    if not Path(CHROMIUM).is_file():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("DOGEAR_BROWSER_TESTS") == "required":
            pytest.fail(f"DOGEAR_BROWSER_TESTS=required but {reason}", pytrace=False)
        pytest.skip(reason)
    if not HTMX_JS.is_file():
        pytest.skip(f"{HTMX_JS.relative_to(ROOT)} is missing: run `make setup` first")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Live:
    """The app served over HTTP, and a way to look at or seed its database."""

    url: str
    app: Flask
    exceptions: list[str] = field(default_factory=list)

    def run(self, fn: Callable[[], T]) -> T:
        """Call `fn` in an app context of the served app (for seeding and checks)."""
        with self.app.app_context():
            try:
                return fn()
            finally:
                db.session.remove()

    def post_ids(self, topic: str | None = None) -> list[int]:
        """Catalog post ids, newest first (the browse order), optionally of one topic."""

        def query() -> list[int]:
            stmt = select(Post.id).order_by(Post.published_on.desc(), Post.id.desc())
            if topic:
                stmt = stmt.where(Post.topics.any(Topic.slug == topic))
            return list(db.session.scalars(stmt))

        return self.run(query)

    def title(self, post_id: int) -> str:
        return self.run(lambda: db.session.get(Post, post_id).title)

    def save(self, post_id: int, progress: int = 0, email: str = READER) -> int:
        """Put a post on a reader's list directly; returns the entry id."""

        def save() -> int:
            user = find_user_by_email(email)
            entry = list_services.save_post(user, post_id)
            if progress:
                list_services.update_progress(user, entry.id, progress)
            return entry.id

        return self.run(save)

    def entry(self, post_id: int, email: str = READER) -> tuple[str, int] | None:
        """(state, progress) of a reader's entry for a post, or None."""

        def query() -> tuple[str, int] | None:
            user = find_user_by_email(email)
            entry = db.session.scalar(
                select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
            )
            return (entry.state, entry.progress) if entry else None

        return self.run(query)


class QuietHandler(WSGIRequestHandler):
    """No access log on the test output; failures say what went wrong themselves."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _seed() -> None:
    text = resources.files("app.catalog").joinpath("demo.txt").read_text(encoding="utf-8")
    report = import_listings([("demo.txt", text)])
    assert report.created >= 40, report.to_dict()
    create_user(READER, PASSWORD)
    create_user(ADMIN, PASSWORD, is_admin=True)


@pytest.fixture
def live(tmp_path: Path, migrated_db: Path) -> Iterator[Live]:
    """A fresh copy of the migrated database, seeded, served on 127.0.0.1:<random>."""
    shutil.copy(migrated_db, tmp_path / "test.db")
    app = make_app(tmp_path, TESTING=False, RATELIMIT_ENABLED=False)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    live = Live(url=f"http://127.0.0.1:{server.server_port}", app=app)
    live.run(_seed)

    def record(sender: Flask, exception: BaseException, **extra: Any) -> None:
        live.exceptions.append(repr(exception))

    got_request_exception.connect(record, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        got_request_exception.disconnect(record, app)
        with app.app_context():
            db.engine.dispose()


class Pages:
    """Opens browser contexts for one test and collects everything that went wrong."""

    def __init__(self, browser: Browser, live: Live) -> None:
        self.browser = browser
        self.live = live
        self.contexts: list[Any] = []
        self.problems: list[str] = []

    def open(self, viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = self.browser.new_context(
            base_url=self.live.url, viewport=viewport or DESKTOP, **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_REPORTER)
        context.on("page", self._watch)
        self.contexts.append(context)
        page = context.new_page()
        return page

    def _watch(self, page: Page) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                self.problems.append(f"console error: {message.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on(
            "response",
            lambda r: r.status >= 500 and self.problems.append(f"HTTP {r.status} {r.url}"),
        )

    def assert_clean(self) -> None:
        """No console errors, page errors, CSP violations, 5xx or server exceptions."""
        assert not self.problems, "the browser reported:\n" + "\n".join(self.problems)
        assert not self.live.exceptions, "the server raised:\n" + "\n".join(self.live.exceptions)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, live: Live) -> Iterator[Pages]:
    opened = Pages(browser, live)
    yield opened
    opened.close()


# --- helpers -------------------------------------------------------------------------


def sign_in(page: Page, email: str = READER, then: str = "/") -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"/login?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def list_count(n: int) -> re.Pattern[str]:
    """The header badge's text holds the count (and visually hidden words around it)."""
    return re.compile(rf"(^|\D){n}(\D|$)")


def mark(page: Page) -> None:
    """Set a marker that only survives if the page is never reloaded."""
    page.evaluate("window.__dogearMarker = 'still here'")


def assert_no_reload(page: Page) -> None:
    assert page.evaluate("window.__dogearMarker") == "still here", "the page was reloaded"


def card(page: Page, title: str) -> Any:
    return page.locator("article.post-card").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )


def card_titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#browse-results .post-title").all_inner_texts()]


# --- the tests -----------------------------------------------------------------------


def test_sign_in_and_save_swaps_the_toggle_and_counter_in_place(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page)
    ids = live.post_ids()
    per_page = live.app.config["POSTS_PER_PAGE"]
    expect(page.locator("#browse-results article.post-card")).to_have_count(per_page)
    assert card_titles(page)[:3] == [live.title(i) for i in ids[:3]]
    expect(page.locator("#list-count")).to_have_text(list_count(0))

    title = live.title(ids[1])
    target = card(page, title)
    mark(page)
    target.get_by_role("button", name="Save", exact=True).click()

    saved = target.get_by_role("button", name="Saved")
    expect(saved).to_be_visible()
    expect(saved).to_have_attribute("aria-pressed", "true")
    expect(target.locator(".state-badge")).to_have_text("Up next")
    expect(page.locator("#list-count")).to_have_text(list_count(1))
    assert_no_reload(page)
    assert page.url == f"{live.url}/"
    assert live.entry(ids[1]) == ("saved", 0)
    # The other cards are untouched.
    expect(
        card(page, live.title(ids[0])).get_by_role("button", name="Save", exact=True)
    ).to_be_visible()
    pages.assert_clean()


def test_topic_filter_swaps_results_pushes_url_and_back_restores(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page)
    everything = card_titles(page)
    topic = "rust"
    expected = [live.title(i) for i in live.post_ids(topic)]
    assert 1 < len(expected) < len(everything), "the demo catalog should have a few rust posts"

    mark(page)
    facets = page.locator(".browse-facets")
    facets.get_by_role("link", name=re.compile(r"^Rust \d")).click()
    expect(page).to_have_url(re.compile(rf"/\?(.*&)?topic={topic}(&|$)"))
    expect(page.locator("#browse-results .active-filters")).to_contain_text("Rust")
    expect(page.locator("#browse-results article.post-card")).to_have_count(len(expected))
    assert card_titles(page) == expected
    assert_no_reload(page)
    assert page.title().startswith("Browse")

    page.go_back()
    expect(page).to_have_url(f"{live.url}/")
    expect(page.locator("#browse-results .active-filters")).to_have_count(0)
    expect(page.locator("#browse-results article.post-card")).to_have_count(len(everything))
    assert card_titles(page) == everything
    expect(facets.locator("a[aria-current]", has_text="Rust")).to_have_count(0)

    page.go_forward()
    expect(page).to_have_url(re.compile(rf"topic={topic}"))
    expect(page.locator("#browse-results article.post-card")).to_have_count(len(expected))
    pages.assert_clean()


def test_filters_combine_across_swaps_and_survive_back(pages: Pages, live: Live):
    """Topic, then an author, then a length: each swap keeps the others (the links are
    re-rendered with the region), and going back shows facets matching the results."""
    page = pages.open()
    page.goto("/")
    mark(page)
    facets = page.locator(".browse-facets")
    facets.get_by_role("link", name=re.compile(r"^Python \d")).click()
    expect(page).to_have_url(re.compile(r"/\?topic=python$"))
    author = facets.locator("h3:has-text('Author') + ul a").first
    name = author.inner_text().rsplit(" ", 1)[0]
    author.click()
    expect(page.locator("#browse-results .active-filters")).to_contain_text(f"by {name}")
    facets.get_by_role("link", name=re.compile(r"^Long \(")).click()
    expect(page).to_have_url(re.compile(r"length=long"))
    expect(page).to_have_url(re.compile(r"topic=python"))
    expect(page.locator("#browse-results .active-filters")).to_contain_text(f"by {name}")
    expect(facets.locator("a[aria-current]")).to_have_count(4)  # sort, topic, length, author
    assert_no_reload(page)
    page.go_back()
    expect(page.locator("#browse-results .active-filters")).not_to_contain_text("Long")
    expect(facets.locator("a[aria-current]", has_text="Python")).to_have_count(1)
    pages.assert_clean()


def test_progress_quick_steps_slider_and_done(pages: Pages, live: Live):
    post_id = live.post_ids()[0]
    entry_id = live.save(post_id)
    page = pages.open()
    sign_in(page, then="/list")
    row = page.locator(f"#entry-{entry_id}")
    expect(row.locator(".state-badge")).to_have_text("Up next")
    expect(page.locator("#tab-count-saved")).to_have_text("1")
    expect(page.locator("#tab-count-reading")).to_have_text("0")
    mark(page)

    row.get_by_role("button", name="50 %", exact=True).click()
    # It left "Up next": the row becomes a note pointing at its new tab, and keeps focus.
    expect(row).to_contain_text("moved to Reading")
    expect(row.get_by_role("link", name="Reading")).to_be_focused()
    expect(page.locator("#flashes")).to_contain_text("is at 50 %")
    expect(page.locator("#tab-count-reading")).to_have_text("1")
    expect(page.locator("#tab-count-saved")).to_have_text("0")
    assert live.entry(post_id) == ("reading", 50)

    row.get_by_role("link", name="Reading").click()
    expect(page).to_have_url(re.compile(r"/list\?state=reading$"))
    expect(row.locator(".state-badge")).to_have_text("Reading")
    expect(row.locator(".progress-text")).to_contain_text("50 % read")
    expect(row.get_by_role("button", name="25 %", exact=True)).to_have_count(0)
    mark(page)

    slider = row.get_by_role("slider", name="Progress")
    expect(slider).to_have_value("50")
    slider.focus()
    slider.press("ArrowRight")
    expect(row.locator(".progress-text")).to_contain_text("55 % read")
    expect(row.locator("output")).to_have_text("55 %")

    # A drag ends with one change event: set the value, then dispatch it.
    row.get_by_role("slider", name="Progress").evaluate(
        "el => { el.value = 80; el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }"
    )
    expect(row.locator(".progress-text")).to_contain_text("80 % read")
    assert live.entry(post_id) == ("reading", 80)

    row.get_by_role("button", name="Mark done").click()
    expect(row).to_contain_text("moved to Done")
    expect(page.locator("#tab-count-done")).to_have_text("1")
    expect(page.locator("#tab-count-reading")).to_have_text("0")
    expect(page.locator("#list-count")).to_have_text(list_count(0))
    assert live.entry(post_id) == ("done", 100)
    assert_no_reload(page)

    page.locator(".tabs a.tab", has_text="Done").click()
    expect(page).to_have_url(re.compile(r"/list\?state=done$"))
    expect(page.locator(f"#entry-{entry_id}")).to_be_visible()
    expect(page.locator(".tabs a.tab", has_text="Done")).to_have_attribute("aria-current", "page")
    assert_no_reload(page)
    pages.assert_clean()


def test_remove_from_list_swaps_row_and_decrements_counter(pages: Pages, live: Live):
    first, second = live.post_ids()[:2]
    entry_id = live.save(first)
    live.save(second)
    page = pages.open()
    sign_in(page, then="/list")
    expect(page.locator("#list-count")).to_have_text(list_count(2))
    expect(page.locator("#tab-count-saved")).to_have_text("2")
    mark(page)

    title = live.title(first)
    page.locator("article.entry", has_text=title).get_by_role("button", name="Remove").click()
    note = page.locator(f"#entry-{entry_id}")
    expect(note).to_have_text("Removed from your list.")
    expect(note).to_be_focused()  # focus stays where the row was
    expect(note.get_by_role("button")).to_have_count(0)
    expect(page.locator("#list-count")).to_have_text(list_count(1))
    expect(page.locator("#tab-count-saved")).to_have_text("1")
    expect(page.get_by_role("link", name=live.title(second))).to_be_visible()
    assert live.entry(first) is None
    assert_no_reload(page)
    pages.assert_clean()


def test_saving_on_the_post_page_brings_up_progress_controls(pages: Pages, live: Live):
    post_id = live.post_ids()[3]
    page = pages.open()
    sign_in(page, then=f"/posts/{post_id}")
    region = page.locator(f"#post-entry-{post_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(live.title(post_id))
    expect(region).to_contain_text("Save it to put it on your list")
    expect(region.get_by_role("slider", name="Progress")).to_have_count(0)
    mark(page)

    region.get_by_role("button", name="Save", exact=True).click()
    expect(region.get_by_role("slider", name="Progress")).to_be_visible()
    expect(region.get_by_role("button", name="Mark done")).to_be_visible()
    expect(region.get_by_role("button", name="Saved")).to_be_visible()
    expect(page.locator("#list-count")).to_have_text(list_count(1))

    region.get_by_role("button", name="25 %", exact=True).click()
    expect(region.locator(".progress-text")).to_contain_text("25 % read")
    expect(region.locator(".save-toggle .state-badge")).to_have_text("Reading · 25 %")
    assert live.entry(post_id) == ("reading", 25)
    assert_no_reload(page)
    pages.assert_clean()


def test_without_javascript_save_and_finish_a_post(pages: Pages, live: Live):
    page = pages.open(java_script_enabled=False)
    sign_in(page)
    # Facets are plain links.
    facets = page.locator(".browse-facets")
    facets.get_by_role("link", name=re.compile(r"^Python \d")).click()
    facets.get_by_role("link", name="Oldest").click()
    expect(page).to_have_url(re.compile(r"/\?(?=.*topic=python)(?=.*sort=oldest)"))
    filtered_url = page.url

    title = card_titles(page)[0]
    card(page, title).get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#flashes")).to_contain_text("Saved to your list.")
    assert page.url == filtered_url, "the redirect should keep the reader's filters"
    expect(card(page, title).get_by_role("button", name="Saved")).to_be_visible()
    expect(page.locator("#list-count")).to_have_text(list_count(1))

    page.get_by_role("link", name=re.compile(r"^My list")).click()
    expect(page).to_have_url(re.compile(r"/list$"))
    page.get_by_role("button", name="Mark done").click()
    expect(page.locator("#flashes")).to_contain_text(f"Done: “{title}”.")
    expect(page.locator("#tab-count-done")).to_have_text("1")

    page.locator(".tabs a.tab", has_text="Done").click()
    expect(page).to_have_url(re.compile(r"/list\?state=done$"))
    entry = page.locator("article.entry")
    expect(entry).to_have_count(1)
    expect(entry.get_by_role("heading")).to_have_text(title)
    expect(entry.locator(".progress-text")).to_contain_text("Finished")
    pages.assert_clean()


def test_expired_session_on_htmx_save_goes_to_login(pages: Pages, live: Live):
    page = pages.open()
    sign_in(page)
    page.context.clear_cookies()
    title = live.title(live.post_ids()[0])
    card(page, title).get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login\?next=/"))
    expect(page.get_by_role("heading", name="Sign in to Dogear")).to_be_visible()
    pages.assert_clean()


def test_slash_focuses_the_header_search(pages: Pages, live: Live):
    page = pages.open()
    page.goto("/")
    expect(page.locator("#header-q")).not_to_be_focused()
    page.locator("body").press("/")
    expect(page.locator("#header-q")).to_be_focused()
    expect(page.locator("#header-q")).to_have_value("")  # the "/" itself is not typed
    # Typing "/" inside a field is left alone.
    page.locator("#header-q").fill("rust")
    page.locator("#header-q").press("/")
    expect(page.locator("#header-q")).to_have_value("rust/")
    pages.assert_clean()


def test_screenshots_desktop_phone_and_dark(pages: Pages, live: Live):
    """Not pixel assertions: PNGs in screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    ids = live.post_ids()
    live.save(ids[0], email=ADMIN)
    live.save(ids[1], progress=40, email=ADMIN)
    live.save(ids[2], email=ADMIN)
    screens = {
        "browse": "/",
        "list": "/list",
        "post": f"/posts/{ids[1]}",
        "admin-users": "/admin/users",
    }

    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = pages.open(viewport=viewport)
        page.goto("/login")
        _screenshot(page, f"login-{name}")
        sign_in(page, email=ADMIN)
        for screen, path in screens.items():
            response = page.goto(path)
            assert response is not None and response.ok, path
            _screenshot(page, f"{screen}-{name}")

    dark = pages.open(color_scheme="dark")
    sign_in(dark, email=ADMIN)
    dark.goto("/list?state=reading")
    _screenshot(dark, "list-dark")
    dark.goto("/")
    _screenshot(dark, "browse-dark")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert _luminance(background) < 0.3, f"dark mode body background is {background}"
    pages.assert_clean()


def _screenshot(page: Page, name: str) -> None:
    """What a person sees first (the viewport), and the whole page."""
    page.screenshot(path=SCREENSHOTS / f"{name}.png")
    page.screenshot(path=SCREENSHOTS / f"{name}-full.png", full_page=True)


def _luminance(css_color: str) -> float:
    """Rough relative luminance (0 black .. 1 white) of an `rgb()`/`rgba()` colour."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css_color)[:3]]
    r, g, b = (n / 255 for n in numbers)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_no_horizontal_overflow_on_phone_for_each_screen(pages: Pages, live: Live):
    ids = live.post_ids()
    live.save(ids[0], progress=40, email=ADMIN)
    page = pages.open(viewport=PHONE)
    sign_in(page, email=ADMIN)
    problems = {}
    for path in ("/", "/list?state=reading", f"/posts/{ids[0]}", "/admin/users", "/search?q=rust"):
        page.goto(path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            problems[path] = overflow
    assert problems == {}, "pages that scroll sideways on a 390px phone (px)"
    pages.assert_clean()

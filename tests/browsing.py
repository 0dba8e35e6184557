"""Real-browser test support, loaded by conftest.py as a plugin: Debian's Chromium
driven by Playwright, the app served on 127.0.0.1 with a fresh seeded database, and
a collector of everything that went wrong in the browser.

One Chromium serves the whole run: Playwright's sync API allows one instance per
thread, so the `browser` fixture lives here, once, and test modules use the fixtures
by name (never import them). Helpers and constants are imported from here.

Without Chromium the browser tests skip, unless DOGEAR_BROWSER_TESTS=required (CI).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask, got_request_exception
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from app.auth.services import create_user, find_user_by_email
from app.catalog.importer import import_listings
from app.extensions import db
from app.lists import services as list_services
from app.models import Entry, Post, Topic
from tests.conftest import PASSWORD, make_app

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
# Assertions wait as long as actions do (Playwright's default for `expect` is 5 s): with
# two test workers and a browser each, a page can take longer than that on 2 CPUs.
expect.set_options(timeout=TIMEOUT_MS)

# Chromium reports CSP violations as console errors already; this makes them explicit
# (init scripts are injected by the browser, not the page, so the CSP doesn't block it).
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

T = TypeVar("T")


# --- the browser and the live server -------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, shared by the whole run (a context per test)."""
    if not Path(CHROMIUM).is_file():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("DOGEAR_BROWSER_TESTS") == "required":
            pytest.fail(f"DOGEAR_BROWSER_TESTS=required but {reason}", pytrace=False)
        pytest.skip(reason)
    if not HTMX_JS.is_file():
        pytest.skip(f"{HTMX_JS.relative_to(ROOT)} is missing: run `make setup` first")
    yield chromium(CHROMIUM, CHROMIUM_ARGS)


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
def live(tmp_path: Path, database: dict[str, Any]) -> Iterator[Live]:
    """A fresh migrated database, seeded, served on 127.0.0.1:<random>."""
    app = make_app(tmp_path, TESTING=False, RATELIMIT_ENABLED=False, **database)
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
    # The URL changes as soon as the response starts; what tests look at next (layout,
    # key handlers) needs the styles and scripts, which a busy machine loads later.
    page.wait_for_load_state("load")


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


# --- one Chromium per run ---------------------------------------------------------

_state: dict[str, Any] = {}


def chromium(executable: str, args: list[str]) -> Any:
    """The shared Chromium, launched on first use."""
    if "browser" not in _state:
        playwright = sync_playwright().start()
        _state["playwright"] = playwright
        _state["browser"] = playwright.chromium.launch(
            executable_path=executable, headless=True, args=args
        )
    return _state["browser"]


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    browser = _state.pop("browser", None)
    if browser is not None:
        browser.close()
        _state.pop("playwright").stop()

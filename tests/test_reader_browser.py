"""The reader view in a real browser: automatic progress as the reader scrolls, resume,
the undo after an automatic "done", keyboard shortcuts, the beacon on leaving, the poll
while an article is fetched, and screenshots of it all for a person to look at.

Every test ends by asserting no console errors, CSP violations or server exceptions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date

import pytest
from browsing import DESKTOP, PHONE, READER, SCREENSHOTS, Live, Pages, sign_in
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.auth.services import find_user_by_email
from app.extensions import db
from app.lists import services as list_services
from app.models import Entry, Post

pytestmark = pytest.mark.browser

_SECTION = (
    "<p>Every reading list starts the same way: a handful of tabs you mean to get back to, "
    "a note to self, a bookmark folder called <em>later</em>. What changes is whether the "
    "list remembers where you were. A dog-ear does, and so should software that keeps "
    "articles for you; otherwise each return is a small search for your own place.</p>"
    "<p>The trick is to measure the article, not the page. Headers, footers and related "
    "links come and go, but the text is what the reader is working through, so progress "
    "is the share of the text that has scrolled past the bottom of the screen.</p>"
)
LONG_ARTICLE = "".join(
    [
        "<p>Most of what we read on the web is read in pieces: a few paragraphs on the train, "
        "the rest after lunch, the end a week later. This article is long on purpose.</p>",
        _SECTION * 2,
        "<h2>Measuring how far the reader got</h2>",
        _SECTION,
        "<blockquote><p>The reader's place is the one thing a reading app must never lose. "
        "Everything else, from tags to statistics, can be rebuilt; a lost place means "
        "reading the same four screens again, hunting for the sentence where you stopped, "
        "and quietly deciding the article was not worth finishing after all.</p>"
        "<p>— An old bookbinder, probably</p></blockquote>",
        _SECTION,
        "<h3>A small function</h3>",
        "<pre><code>def progress(article_top: float, article_height: float, viewport: float) "
        "-&gt; int:\n    '''Thousandths of the article above the viewport's bottom.'''\n"
        "    passed = viewport - article_top\n"
        "    return max(0, min(1000, round(passed / article_height * 1000)))  "
        "# clamp both ends, so overscroll never counts\n</code></pre>",
        "<p>Inline code such as <code>navigator.sendBeacon()</code> keeps the last position "
        "when the tab closes.</p>",
        _SECTION,
        "<h2>Numbers from a week of reading</h2>",
        "<table><thead><tr><th>Day</th><th>Articles opened</th><th>Finished</th>"
        "<th>Resumed</th><th>Median minutes</th><th>Longest session</th><th>Device</th></tr>"
        "</thead><tbody>"
        + "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in row.split(",")) + "</tr>"
            for row in (
                "Monday,12,5,4,7,38 min,Laptop",
                "Tuesday,9,6,3,9,25 min,Phone",
                "Wednesday,14,4,8,6,41 min,Tablet",
                "Thursday,7,7,2,11,19 min,Phone",
            )
        )
        + "</tbody></table>",
        _SECTION,
        '<figure><a class="image-placeholder" href="https://example.com/chart.png" '
        'rel="noopener noreferrer" target="_blank">Image: a chart of finished articles '
        "per day</a><figcaption>Finished articles per day, over one week.</figcaption></figure>",
        "<h2>What to do next</h2>",
        "<ul><li>Save the article and start reading.</li><li>Close the tab halfway.</li>"
        "<li>Open it again on another device, right where you were.</li></ul>",
        _SECTION * 2,
        "<p>And that is the end of the article.</p>",
    ]
)


def _seed_article(live: Live, **overrides) -> int:
    def make() -> int:
        values = {
            "title": "Keeping your place in a long article",
            "summary": "How a reading app measures progress and brings you back.",
            "url": f"{live.url}/?original=1",
            "author": "Ada Writer",
            "site_name": "The Reading Room",
            "published_on": date(2026, 3, 2),
            "reading_minutes": 14,
            "word_count": 3100,
            "dedupe_key": f"reader-{time.monotonic_ns()}",
            "content": LONG_ARTICLE,
            "content_text": "Keeping your place.",
            "content_kind": "article",
            "fetch_state": "done",
        }
        values.update(overrides)
        post = Post(**values)
        db.session.add(post)
        db.session.commit()
        return post.id

    return live.run(make)


def _entry(live: Live, post_id: int) -> tuple[str, int, int]:
    """(state, progress, resume_position) of the reader's entry."""

    def query() -> tuple[str, int, int]:
        user = find_user_by_email(READER)
        entry = db.session.scalar(
            select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
        )
        return entry.state, entry.progress, entry.resume_position

    return live.run(query)


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _scroll_y_for(page: Page, position: int) -> float:
    """The scrollY at which `position` thousandths of the article are above the
    viewport's bottom (how reader.js measures)."""
    return page.evaluate(
        """(position) => {
          const rect = document.querySelector('.reader-content').getBoundingClientRect();
          return window.scrollY + rect.top + position / 1000 * rect.height - window.innerHeight;
        }""",
        position,
    )


def _wheel_to(page: Page, y: float) -> None:
    """Scroll with the mouse wheel, as a reader would, until scrollY is about `y`."""
    page.mouse.move(640, 450)
    for _ in range(200):
        current = page.evaluate("window.scrollY")
        if abs(current - y) < 60:
            return
        step = max(-400, min(400, y - current))
        page.mouse.wheel(0, step)
        page.wait_for_timeout(30)
    raise AssertionError(f"could not wheel to {y}")


def test_scrolling_saves_progress_resumes_and_marks_done(pages: Pages, live: Live):
    post_id = _seed_article(live)
    live.save(post_id)
    page = pages.open(viewport={"width": 1280, "height": 720})
    sign_in(page, then=f"/posts/{post_id}")
    expect(page.locator(".reader-content")).to_be_visible()
    assert page.evaluate("window.scrollY") == 0

    # Halfway down with the wheel: the entry follows (saved at most every 3 s).
    _wheel_to(page, _scroll_y_for(page, 500))
    _wait_for(lambda: 44 <= _entry(live, post_id)[1] <= 56, "progress near 50 %")
    state, progress, resume = _entry(live, post_id)
    assert state == "reading" and abs(resume - progress * 10) < 10
    expect(page.locator("[data-reader-percent]")).to_have_text(f"{progress} %")
    expect(page.locator(".reader-bar [data-reader-state]")).to_have_text("Reading")
    halfway = page.evaluate("window.scrollY")

    # Reload: back where the reader was, with a note that says so.
    page.reload()
    note = page.locator(".reader-toast", has_text="Resumed where you left off")
    expect(note).to_be_visible()
    expect(note.get_by_role("button", name="Back to the top")).to_be_visible()
    assert abs(page.evaluate("window.scrollY") - halfway) < 40

    # Scrolling up keeps the progress but moves the resume point back.
    _wheel_to(page, _scroll_y_for(page, 250))
    _wait_for(lambda: _entry(live, post_id)[2] < resume - 150, "the resume point to move back")
    assert _entry(live, post_id)[:2] == ("reading", progress)
    expect(page.locator("[data-reader-percent]")).to_have_text(f"{progress} %")

    # The end of the article marks it done, with an undo.
    page.locator("body").press("End")
    toast = page.locator(".reader-toast", has_text="Marked as done")
    expect(toast).to_be_visible()
    assert _entry(live, post_id)[:2] == ("done", 100)
    expect(page.locator(".reader-bar [data-reader-state]")).to_have_text("Done")  # refreshed
    toast.get_by_role("button", name="Not done yet").click()
    expect(page.locator(".reader-toast", has_text="Back to reading")).to_be_visible()
    _wait_for(lambda: _entry(live, post_id)[0] == "reading", "reading again")
    assert _entry(live, post_id)[1] == progress  # what the reader had before the end
    expect(page.locator(".reader-bar [data-reader-state]")).to_have_text("Reading")
    # Still at the end: it isn't marked done again until the reader leaves it and returns.
    page.wait_for_timeout(800)
    assert _entry(live, post_id)[0] == "reading"
    pages.assert_clean()


def test_keyboard_shortcuts(pages: Pages, live: Live):
    post_id = _seed_article(live)
    live.save(post_id)
    page = pages.open()
    sign_in(page, then=f"/posts/{post_id}")
    body = page.locator("body")

    body.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Mark as done")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    body.press("j")
    _wait_for(lambda: page.evaluate("window.scrollY") > 100, "j to scroll down")
    down = page.evaluate("window.scrollY")
    body.press("ArrowDown")
    _wait_for(lambda: page.evaluate("window.scrollY") > down + 50, "ArrowDown to scroll")
    body.press("k")
    _wait_for(lambda: page.evaluate("window.scrollY") < down + 50, "k to scroll up")

    # Typing in the search box is typing, not a shortcut.
    search = page.locator("#header-q")
    search.click()
    search.type("dog")
    expect(search).to_have_value("dog")
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(300)
    assert _entry(live, post_id)[0] != "done"
    # Nor with a modifier.
    body.press("Control+d")
    page.wait_for_timeout(300)
    assert _entry(live, post_id)[0] != "done"

    # "o" opens the original in a new tab.
    page.locator("main").click(position={"x": 5, "y": 5})
    with page.context.expect_page() as opened:
        body.press("o")
    opened.value.wait_for_load_state()
    assert opened.value.url.endswith("/?original=1")
    opened.value.close()

    body.press("d")
    expect(page.locator(".reader-toast", has_text="Marked as done")).to_be_visible()
    _wait_for(lambda: _entry(live, post_id)[:2] == ("done", 100), "d to mark it done")
    expect(page.locator(".reader-bar [data-reader-state]")).to_have_text("Done")
    # The bar's own "Not done yet" goes back to what the reader had (the page knows it),
    # not to the 99 % the server would guess.
    page.locator(".reader-bar").get_by_role("button", name="Not done yet").click()
    expect(page.locator(".reader-bar [data-reader-state]")).to_have_text("Reading")
    state, progress, _ = _entry(live, post_id)
    assert state == "reading" and 1 <= progress < 90
    pages.assert_clean()


def test_leaving_the_page_sends_the_last_position_with_a_beacon(pages: Pages, live: Live):
    post_id = _seed_article(live)
    live.save(post_id)
    page = pages.open(viewport={"width": 1280, "height": 720})
    sign_in(page, then=f"/posts/{post_id}")
    _wheel_to(page, _scroll_y_for(page, 300))
    _wait_for(lambda: _entry(live, post_id)[1] >= 25, "the first save")
    # Within the 3 s between saves: only the beacon can carry this one.
    _wheel_to(page, _scroll_y_for(page, 700))
    page.wait_for_timeout(200)
    assert _entry(live, post_id)[1] < 60
    page.goto("/list")
    _wait_for(lambda: _entry(live, post_id)[1] >= 65, "the beacon's position")
    assert _entry(live, post_id)[0] == "reading"
    pages.assert_clean()


def test_reading_without_an_entry_saves_nothing(pages: Pages, live: Live):
    post_id = _seed_article(live)
    page = pages.open()
    positions: list[str] = []
    page.on("request", lambda r: "/position" in r.url and positions.append(r.url))
    sign_in(page, then=f"/posts/{post_id}")
    page.locator("body").press("End")
    page.wait_for_timeout(500)
    assert positions == [] and live.entry(post_id) is None
    # Save from the bar: the page comes back with the reader's place being kept.
    page.locator(".reader-bar").get_by_role("button", name="Save").click()
    expect(page.locator(".reader-bar [data-reader-state]")).to_have_text("Up next")
    expect(page.locator("article.reader")).to_have_attribute(
        "data-position-url", re.compile("/position$")
    )
    pages.assert_clean()


def test_without_javascript_the_bar_still_sets_progress(pages: Pages, live: Live):
    post_id = _seed_article(live)
    live.save(post_id)
    page = pages.open(java_script_enabled=False)
    sign_in(page, then=f"/posts/{post_id}")
    bar = page.locator(".reader-bar")
    bar.locator("summary").click()
    bar.get_by_role("slider", name="Progress").fill("40")
    bar.get_by_role("button", name="Set").click()
    expect(page).to_have_url(re.compile(rf"/posts/{post_id}$"))
    expect(page.locator("#flashes")).to_contain_text("is at 40 %")
    assert _entry(live, post_id)[:2] == ("reading", 40)
    bar.get_by_role("button", name="Done").click()
    expect(page.locator("#flashes")).to_contain_text("Done:")
    assert _entry(live, post_id)[:2] == ("done", 100)
    pages.assert_clean()


def test_a_pending_article_swaps_in_when_fetched(pages: Pages, live: Live):
    post_id = _seed_article(live, content=None, content_kind=None, fetch_state="pending")
    live.save(post_id)
    page = pages.open()
    sign_in(page, then=f"/posts/{post_id}")
    expect(page.locator(".notice-pending")).to_contain_text("Dogear is fetching this page…")
    page.evaluate("window.__dogearMarker = 'still here'")

    def finish() -> None:
        post = db.session.get(Post, post_id)
        post.content, post.content_kind, post.fetch_state = LONG_ARTICLE, "article", "done"
        db.session.commit()

    live.run(finish)
    expect(page.locator(".reader-content h2").first).to_be_visible(timeout=6000)
    expect(page.locator(".notice-pending")).to_have_count(0)
    assert page.evaluate("window.__dogearMarker") == "still here"
    # The swapped-in article is tracked like one loaded with the page.
    page.locator("body").press("End")
    expect(page.locator(".reader-toast", has_text="Marked as done")).to_be_visible()
    pages.assert_clean()


def test_phone_reader_view_never_scrolls_sideways(pages: Pages, live: Live):
    post_id = _seed_article(live)
    live.save(post_id)
    page = pages.open(viewport=PHONE)
    sign_in(page, then=f"/posts/{post_id}")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the reader view scrolls sideways by {overflow}px on a phone"
    # The wide table and the long code line scroll inside themselves instead.
    for selector in (".reader-content table", ".reader-content pre"):
        inner = page.locator(selector).evaluate("el => el.scrollWidth > el.clientWidth")
        assert inner, f"{selector} should scroll inside itself"
    pages.assert_clean()


def _set_progress(live: Live, post_id: int, progress: int) -> None:
    def update() -> None:
        user = find_user_by_email(READER)
        entry = db.session.scalar(
            select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
        )
        list_services.update_progress(user, entry.id, progress)

    live.run(update)


def _shoot(page: Page, name: str, full_page: bool = False) -> None:
    # caret="initial": Playwright's default hides the caret with a style attribute on
    # inputs, which htmx would then copy while settling a swap (a CSP violation).
    page.screenshot(path=SCREENSHOTS / name, full_page=full_page, caret="initial")


@pytest.mark.one_database
def test_screenshots_of_the_reader_and_post_states(pages: Pages, live: Live):
    """Not pixel assertions: PNGs in screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    article = _seed_article(live, topics=[])
    live.save(article)
    pending = _seed_article(
        live,
        title="A page being fetched",
        url=f"{live.url}/?p=1",
        content=None,
        content_kind=None,
        fetch_state="pending",
    )
    failed = _seed_article(
        live,
        title="A page that could not be fetched",
        url=f"{live.url}/?f=1",
        content=None,
        content_kind=None,
        fetch_state="failed",
        fetch_error="The site answered 404: the page is not there",
    )
    pdf = _seed_article(
        live, title="A paper in PDF", url=f"{live.url}/?pdf=1", content=None, content_kind="pdf"
    )
    for post_id in (pending, failed, pdf):
        live.save(post_id)
    catalog = live.post_ids()[2]
    live.save(catalog, progress=20)

    for scheme in ("light", "dark"):
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            _set_progress(live, article, 0)
            page = pages.open(viewport=viewport, color_scheme=scheme)
            sign_in(page, then=f"/posts/{article}")
            shot = f"reader-{name}-{scheme}"
            _shoot(page, f"{shot}.png")
            _shoot(page, f"{shot}-full.png", full_page=True)
            for part, selector in (
                ("code", ".reader-content pre"),
                ("table", ".reader-content table"),
            ):
                page.evaluate(
                    "s => window.scrollTo(0, document.querySelector(s).getBoundingClientRect().top"
                    " + window.scrollY - 200)",
                    selector,
                )
                page.wait_for_timeout(400)
                _shoot(page, f"{shot}-{part}.png")
            page.locator("body").press("End")
            expect(page.locator(".reader-toast", has_text="Marked as done")).to_be_visible()
            page.wait_for_timeout(400)
            _shoot(page, f"{shot}-done.png")
            if scheme == "dark":
                continue
            for state, post_id in (
                ("pending", pending),
                ("failed", failed),
                ("pdf", pdf),
                ("details", catalog),
            ):
                page.goto(f"/posts/{post_id}")
                _shoot(page, f"post-{state}-{name}.png", full_page=True)
            _set_progress(live, article, 35)
            page.goto(f"/posts/{article}")
            expect(page.locator(".reader-toast", has_text="Resumed")).to_be_visible()
            page.wait_for_timeout(400)
            _shoot(page, f"reader-{name}-resumed.png")
            page.locator(".reader-more summary").click()
            _shoot(page, f"reader-{name}-more.png")
            page.keyboard.press("Escape")
            page.locator("body").press("?")
            expect(page.get_by_role("dialog")).to_be_visible()
            _shoot(page, f"reader-{name}-keys.png")
    pages.assert_clean()

"""Real-browser tests: what only a browser shows (htmx swaps, history, no-JS forms, CSP).

They drive Debian's Chromium through Playwright's sync API against the app served by
werkzeug on a random port, with a fresh migrated database per test. Every test also
asserts that the browser logged no console errors, page errors or CSP violations and
that the server raised nothing.

Without Chromium the module skips, unless DOGEAR_BROWSER_TESTS=required (as in CI).
"""

from __future__ import annotations

import re

import pytest
from browsing import (
    ADMIN,
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    Live,
    Pages,
    assert_no_reload,
    card,
    card_titles,
    list_count,
    mark,
    sign_in,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


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

    # The row's one main action reads the post; the rest is one step away, under More.
    expect(row.get_by_role("link", name="Read", exact=True)).to_have_attribute(
        "href", f"/posts/{post_id}"
    )
    expect(row.get_by_role("button", name="50 %", exact=True)).to_be_hidden()
    row.locator("summary", has_text="More").click()
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
    expect(row.get_by_role("link", name="Continue", exact=True)).to_be_visible()
    row.locator("summary", has_text="More").click()
    expect(row.get_by_role("button", name="25 %", exact=True)).to_have_count(0)
    mark(page)

    slider = row.get_by_role("slider", name="Progress")
    expect(slider).to_have_value("50")
    slider.focus()
    # Arrow keys move the slider; it saves once the reader settles, not on each press,
    # and says so until then.
    slider.press("ArrowRight")
    slider.press("ArrowRight")
    expect(row.locator("output")).to_have_text("60 % (not saved yet)")
    expect(row.locator(".progress-text")).to_contain_text("60 % read")
    expect(row.locator("output")).to_have_text("60 %")
    assert live.entry(post_id) == ("reading", 60)
    expect(slider).to_be_focused()  # the More panel stayed open through the swap

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
    row = page.locator("article.entry", has_text=title)
    row.locator("summary", has_text="More").click()
    row.get_by_role("button", name="Remove").click()
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
    # "More" opens on a link to the entry's controls (loaded in place with JavaScript).
    page.locator("summary", has_text="More").click()  # a <details>: no script needed
    page.get_by_role("link", name="Progress, archive and tags").click()
    expect(page).to_have_url(re.compile(r"/list/\d+/more$"))
    page.get_by_role("button", name="Mark done").click()
    expect(page).to_have_url(re.compile(r"/list\?state=saved$"))  # back to the list
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


@pytest.mark.one_database
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


def test_search_as_you_type_finds_unfinished_words_and_keeps_history_short(
    pages: Pages, live: Live
):
    page = pages.open()
    page.goto("/search")
    start = page.evaluate("history.length")
    box = page.locator("#search-q")
    box.press_sequentially("pyth", delay=20)
    expect(page.locator("#search-status")).to_contain_text("result")
    assert page.locator("#search-results .post-title").count() > 0  # "pyth" is unfinished
    expect(page).to_have_url(re.compile(r"q=pyth(&|$)"))
    box.press_sequentially("on", delay=20)
    expect(page).to_have_url(re.compile(r"q=python(&|$)"))
    assert page.evaluate("history.length") == start  # pauses replaced the entry
    box.press("Enter")  # a submitted search is a new entry
    for _ in range(50):  # (wait_for_function would need eval, which the CSP forbids)
        if page.evaluate("history.length") > start:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("history.length") == start + 1
    pages.assert_clean()

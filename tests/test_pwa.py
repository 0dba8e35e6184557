"""The installable app (manifest, share target, service worker, offline page), the
bookmarklet on the Account page, and the error pages."""

from __future__ import annotations

import html
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from flask import abort, url_for

from app.auth.services import create_user
from app.extensions import db
from tests.conftest import HTMX, PASSWORD, make_app, sign_in

JS_TYPES = {"application/javascript", "text/javascript"}
_LINK = re.compile(r'<link rel="manifest" href="([^"]+)">')
_BOOKMARKLET = re.compile(r'<a class="bookmarklet" href="([^"]+)"[^>]*>([^<]+)</a>')


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "textarea") and found.get("name"):
            self.values.setdefault(found["name"] or "", found.get("value") or "")


def input_values(page_html: str) -> dict[str, str]:
    """The form fields' names and values on a page, as a browser would fill them."""
    parser = _Inputs()
    parser.feed(page_html)
    return parser.values


def manifest(client, path: str = "/manifest.webmanifest") -> dict:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    return json.loads(response.get_data(as_text=True))


def bookmarklet_code(page_html: str) -> tuple[str, str]:
    """(the JavaScript a browser runs from the bookmarklet, the link's text)."""
    match = _BOOKMARKLET.search(page_html)
    assert match, "no bookmarklet link on the page"
    href = html.unescape(match.group(1))  # what the browser reads from the attribute
    assert href.startswith("javascript:")
    return unquote(href.removeprefix("javascript:")), match.group(2).strip()


# --- manifest ------------------------------------------------------------------------


def test_every_page_links_the_manifest_and_theme_colours(client):
    page = client.get("/").get_data(as_text=True)
    assert _LINK.search(page).group(1) == "/manifest.webmanifest"
    assert (
        '<meta name="theme-color" content="#ffffff" media="(prefers-color-scheme: light)">' in page
    )
    assert 'media="(prefers-color-scheme: dark)"' in page
    assert '<link rel="apple-touch-icon" href="/static/img/apple-touch-icon.png">' in page


def test_manifest_has_what_installing_needs(client):
    data = manifest(client)
    assert data["name"] == "Dogear"
    assert data["short_name"]
    assert data["description"]
    assert data["start_url"] == "/list"
    assert data["scope"] == "/"
    assert data["display"] == "standalone"
    # The CSS light theme: page background and header surface.
    css = client.get("/static/css/dogear.css").get_data(as_text=True)
    assert f"--bg: {data['background_color']};" in css
    assert f"--surface: {data['theme_color']};" in css
    purposes = {(i["sizes"], i.get("purpose", "any")) for i in data["icons"]}
    assert {("any", "any"), ("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= (
        purposes
    )


def test_every_icon_answers_with_its_type_and_real_size(client):
    icons = manifest(client)["icons"]
    for icon in icons:
        response = client.get(icon["src"])
        assert response.status_code == 200, icon["src"]
        assert response.mimetype == icon["type"], icon["src"]
        if icon["type"] == "image/png":
            width, height = png_size(response.data)
            assert f"{width}x{height}" == icon["sizes"], icon["src"]
        else:
            assert b"<svg" in response.data
    page = client.get("/").get_data(as_text=True)
    touch = re.search(r'<link rel="apple-touch-icon" href="([^"]+)">', page).group(1)
    assert png_size(client.get(touch).data) == (180, 180)


def test_share_target_sends_url_title_and_text_to_the_add_page(client, reader):
    share = manifest(client)["share_target"]
    assert share["method"] == "GET"
    assert share["params"] == {"url": "url", "title": "title", "text": "text"}
    assert share["action"] == "/list/add"
    # What a phone's share sheet opens: the add page, filled in, for a signed-in reader.
    shared = client.get(
        share["action"],
        query_string={"url": "https://example.org/a", "title": "A post", "text": ""},
    )
    assert shared.status_code == 200
    fields = input_values(shared.get_data(as_text=True))
    assert fields["url"] == "https://example.org/a"
    assert fields["title"] == "A post"


def test_manifest_and_worker_urls_follow_a_path_prefix(client):
    """Mounted under /reading (SCRIPT_NAME from the proxy), every URL keeps the prefix."""
    prefixed = client.get("/manifest.webmanifest", base_url="http://localhost/reading")
    data = json.loads(prefixed.get_data(as_text=True))
    assert data["start_url"] == "/reading/list"
    assert data["scope"] == "/reading/"
    assert data["share_target"]["action"] == "/reading/list/add"
    assert all(icon["src"].startswith("/reading/static/") for icon in data["icons"])
    page = client.get("/", base_url="http://localhost/reading").get_data(as_text=True)
    assert _LINK.search(page).group(1) == "/reading/manifest.webmanifest"
    assert '<meta name="dogear-service-worker" content="/reading/sw.js">' in page


# --- service worker and offline page ------------------------------------------------


def test_service_worker_is_served_from_the_root_uncached_with_the_csp(client):
    page = client.get("/").get_data(as_text=True)
    assert '<meta name="dogear-service-worker" content="/sw.js">' in page
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype in JS_TYPES
    assert response.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    source = response.get_data(as_text=True)
    assert 'addEventListener("fetch"' in source


def test_service_worker_never_stores_pages():
    """Only the static list and the offline page go into the cache; a navigation is
    answered from the network, or with the offline page."""
    source = (Path(__file__).parents[1] / "static" / "js" / "sw.js").read_text()
    navigate = source.split('request.mode === "navigate"')[1].split("return;")[0]
    assert "cache.put" not in navigate and "caches.open" not in navigate
    assert navigate.count("fetch(request)") == 1
    puts = re.findall(r"cache\.put\(([^,]+),", source)
    assert puts == ["request.url"]
    assert "STATIC_URLS.includes(request.url)" in source


def test_offline_page_carries_nothing_about_the_reader(client, reader):
    response = client.get("/offline")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You're offline" in page
    assert reader.email not in page
    assert "csrf" not in page.lower()
    assert "Sign out" not in page
    # The same bytes whoever asks, so one cached copy is safe for everyone.
    client.post("/logout", data={"csrf_token": client.csrf_token()})
    assert client.get("/offline").get_data(as_text=True) == page


# --- the bookmarklet -----------------------------------------------------------------


def test_account_page_offers_the_bookmarklet(client, reader):
    page = client.get("/account").get_data(as_text=True)
    assert "Save from any page" in page
    assert "Drag it, don't click it." in page
    assert "share pages to it" in page
    code, text = bookmarklet_code(page)
    assert text == "Save to Dogear"
    # Nothing runs on our page: no inline handlers, draggable left as is.
    link = _BOOKMARKLET.search(page).group(0)
    assert " on" not in link.split(">")[0] and "draggable" not in link


def test_bookmarklet_opens_the_add_page_with_the_pages_url_and_title(client, reader):
    code, _ = bookmarklet_code(client.get("/account").get_data(as_text=True))
    base = "http://localhost/list/add?url="
    assert code == (
        "(()=>{const u="
        + json.dumps(base)
        + '+encodeURIComponent(location.href)+"&title="+encodeURIComponent(document.title);'
        + 'window.open(u,"dogear","width=520,height=640")||(location.href=u)})()'
    )


def test_bookmarklet_uses_the_host_the_reader_came_in_by(tmp_path, database):
    """Behind a proxy (DOGEAR_PROXY_FIX), the public scheme and host, not gunicorn's."""
    app = make_app(tmp_path, PROXY_FIX=1, **database)
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "read.example.org",
        "X-Forwarded-For": "203.0.113.9",
        # Flask-WTF checks the Referer of an HTTPS form post, as a browser sends it.
        "Referer": "https://read.example.org/login",
    }
    with app.app_context():
        create_user("proxied@example.com", PASSWORD)
        db.session.commit()
        client = app.test_client()
        client.environ_base.update(
            {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        )
        assert sign_in(client, "proxied@example.com").status_code == 303
        code, _ = bookmarklet_code(client.get("/account").get_data(as_text=True))
        db.session.remove()
        db.engine.dispose()
    assert '"https://read.example.org/list/add?url="' in code


def test_bookmarklet_percent_signs_survive_the_browsers_decoding(app, client, reader):
    """A browser percent-decodes a javascript: URL before running it; a "%" in the base
    URL must arrive as "%", not as the character it would spell."""
    mount = "http://localhost/read%2541ing"  # mounted at "/read%41ing", a literal "%41"
    page = client.get("/account", base_url=mount).get_data(as_text=True)
    code, _ = bookmarklet_code(page)
    with app.test_request_context("/account", base_url=mount):
        base = url_for("lists.add", _external=True)
    assert "/read%41ing/" in base
    assert json.dumps(base + "?url=") in code


# --- error pages ---------------------------------------------------------------------


def test_404_page_says_what_happened_and_offers_ways_on(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<title>Page not found · Dogear</title>" in page
    assert '<h1 id="error-title">Page not found</h1>' in page
    assert "That page doesn&#39;t exist, or it isn&#39;t yours to see." in page
    assert 'href="/">Browse the catalog</a>' in page
    assert 'href="/login?next=/no/such/page">Sign in</a>' in page
    assert '<input id="error-q" type="search" name="q"' in page
    assert 'action="/search"' in page
    assert "Error 404" in page


def test_404_page_for_a_reader_links_their_list(client, reader):
    page = client.get("/posts/999999").get_data(as_text=True)
    assert 'href="/list">My list</a>' in page
    assert ">Sign in</a>" not in page


def test_htmx_404_is_still_an_inline_message(client, reader):
    response = client.submit("/list/424242/progress", {"progress": "5"}, htmx=True)
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#flashes"
    assert response.headers["HX-Reswap"] == "innerHTML"
    body = response.get_data(as_text=True)
    assert "Page not found. That page doesn&#39;t exist" in body
    assert "<html" not in body and "error-title" not in body


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (403, "Not yours to see"),
        (405, "That can&#39;t be done here"),
        (413, "That upload is too large"),
        (500, "Something went wrong on our side"),
    ],
)
def test_each_error_status_has_a_title(app, client, status, title):
    app.add_url_rule(f"/boom-{status}", f"boom_{status}", lambda: abort(status))
    page = client.get(f"/boom-{status}").get_data(as_text=True)
    assert f'<h1 id="error-title">{title}</h1>' in page
    assert f"Error {status}" in page


def test_method_not_allowed_is_a_page_not_a_bare_number(client):
    response = client.put("/")
    assert response.status_code == 405
    assert "That can&#39;t be done here" in response.get_data(as_text=True)


def test_expired_form_keeps_its_message(client, reader, make_post):
    post = make_post()
    page = client.post(f"/list/save/{post.id}").get_data(as_text=True)
    assert "Your form expired or came from another site." in page
    inline = client.post(f"/list/save/{post.id}", headers=HTMX).get_data(as_text=True)
    assert "Your form expired or came from another site." in inline


def test_too_many_attempts_says_how_long_to_wait(tmp_path, database):
    app = make_app(
        tmp_path,
        **database,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="2 per minute",
    )
    with app.app_context():
        client = app.test_client()
        for _ in range(2):
            sign_in(client, "x@example.com", "wrong")
        response = sign_in(client, "x@example.com", "wrong")
        page = response.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert '<h1 id="error-title">Too many attempts</h1>' in page
    unit = "second" if wait == 1 else "seconds"
    expected = f"Wait {wait} {unit}, then try again." if wait < 60 else "Wait a minute"
    assert expected in page

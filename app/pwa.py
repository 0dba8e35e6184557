"""The installable app: web app manifest (with a share target), service worker, offline
page, and the bookmarklet that saves any page from the bookmarks bar."""

from __future__ import annotations

import json
import string
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, current_app, render_template, send_file, url_for
from flask.typing import ResponseReturnValue

bp = Blueprint("pwa", __name__)

# The light theme's page background (--bg) and header (--surface) in dogear.css.
BACKGROUND_COLOR = "#faf8f5"
THEME_COLOR = "#ffffff"

# Browsers percent-decode a javascript: URL before running it, so a literal "%" in the
# code must be sent as %25; every other printable character can stay readable.
_BOOKMARKLET_SAFE = "".join(c for c in string.punctuation if c != "%")


def _static(filename: str) -> str:
    return url_for("static", filename=filename)


@bp.get("/manifest.webmanifest")
def manifest() -> ResponseReturnValue:
    """What a browser needs to install Dogear, and to list it in the phone's share sheet."""
    start_url = url_for("lists.index")
    data = {
        "id": start_url,
        "name": "Dogear",
        "short_name": "Dogear",
        "description": "Your reading list: save posts, keep your place, finish what you start.",
        "lang": "en",
        "start_url": start_url,
        "scope": url_for("browse.index"),
        "display": "standalone",
        "background_color": BACKGROUND_COLOR,
        "theme_color": THEME_COLOR,
        "icons": [
            {"src": _static("img/dogear.svg"), "sizes": "any", "type": "image/svg+xml"},
            {"src": _static("img/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": _static("img/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": _static("img/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
        # Android puts a shared page's address in `text` more often than in `url`; the
        # add page reads all three and never saves without the reader's click.
        "share_target": {
            "action": url_for("lists.add"),
            "method": "GET",
            "enctype": "application/x-www-form-urlencoded",
            "params": {"url": "url", "title": "title", "text": "text"},
        },
    }
    response = current_app.response_class(
        json.dumps(data, indent=2), mimetype="application/manifest+json"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js")
def service_worker() -> ResponseReturnValue:
    """The service worker, from the site's root so its scope is the whole app.

    `no-cache` makes browsers check for a new version on every visit; the app's CSP
    headers still apply (the after-request hook adds them) and bind the worker too."""
    path = Path(current_app.static_folder or "") / "js" / "sw.js"
    response = send_file(path, mimetype="application/javascript", conditional=True)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/offline")
def offline() -> ResponseReturnValue:
    """What the service worker shows when a page can't be reached. It is cached, so it
    is rendered without the session: no reader's name, list or form token in it."""
    return render_template("pwa/offline.html")


@bp.app_template_global()
def bookmarklet_href() -> str:
    """The href of the "Save to Dogear" bookmarklet: a javascript: URL that only opens
    this Dogear's add page (a popup, or the same tab when popups are blocked) with the
    current page's address and title filled in. The base URL is the request's own, so
    it is right behind a reverse proxy (with DOGEAR_PROXY_FIX) and under a prefix."""
    add_url = json.dumps(url_for("lists.add", _external=True) + "?url=")
    code = (
        f"(()=>{{const u={add_url}+encodeURIComponent(location.href)"
        '+"&title="+encodeURIComponent(document.title);'
        'window.open(u,"dogear","width=520,height=640")||(location.href=u)})()'
    )
    return "javascript:" + quote(code, safe=_BOOKMARKLET_SAFE)

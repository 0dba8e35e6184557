"""Rendering helpers: one URL, two renderings (page or htmx fragment), flashes and filters."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    get_flashed_messages,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from jinja2.ext import Extension
from werkzeug.exceptions import RequestEntityTooLarge

from app.models import utcnow
from app.security import safe_next_url


def wants_fragment() -> bool:
    """True for an htmx request that swaps part of a page (not a boosted navigation
    and not a history restore, which want the whole page)."""
    htmx = request.htmx  # type: ignore[attr-defined]
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(
    page_template: str, fragment_template: str, status: int = 200, /, **context: Any
) -> Response:
    """Render the fragment for htmx, else the page (which includes the fragment)."""
    template = fragment_template if wants_fragment() else page_template
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def render_fragment(template: str, status: int = 200, /, **context: Any) -> Response:
    """A fragment-only response (the answer to an htmx state change)."""
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def htmx_current_url() -> SplitResult | None:
    """The page an htmx request was made from (`HX-Current-URL`), or None when the
    header is missing or not a URL (it comes from the client: never trust its form)."""
    current = request.headers.get("HX-Current-URL")
    if not current:
        return None
    try:
        return urlsplit(current)
    except ValueError:
        return None


def htmx_from(endpoint: str) -> bool:
    """Whether this htmx request was made from the page served by `endpoint`, so a
    response only updates (out of band) the elements that page has."""
    current = htmx_current_url()
    return current is not None and current.path == url_for(endpoint)


def redirect_back(fallback: str, **values: Any) -> Response:
    """303 to the form's `next` field if it is on this site, else to `fallback`.

    Used after a no-JavaScript POST so the reader lands where they were, filters kept.
    """
    target = safe_next_url(request.form.get("next")) or url_for(fallback, **values)
    return redirect(target, code=303)


def hx_redirect(location: str) -> Response:
    """Full navigation from an htmx request: htmx follows HX-Redirect on a 2xx."""
    response = make_response("", 200)
    response.headers["HX-Redirect"] = location
    return response


def _add_flashes_out_of_band(response: Response) -> Response:
    """Flashes raised during an htmx request ride along out of band into #flashes."""
    if (
        wants_fragment()
        and response.status_code < 300
        and response.mimetype == "text/html"
        and "HX-Redirect" not in response.headers
    ):
        messages = get_flashed_messages(with_categories=True)
        if messages:
            html = render_template("partials/flashes.html", messages=messages, oob=True)
            response.set_data(response.get_data(as_text=True) + html)
    return response


def _minutes(value: int | None) -> str:
    """12 -> '12 min', 95 -> '1 h 35 min'."""
    minutes = int(value or 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _date(value: date | None) -> str:
    return f"{value:%b} {value.day}, {value.year}" if value else ""


def _list_count() -> int:
    """Entries up next or in progress for the signed-in reader (the header badge)."""
    if not current_user.is_authenticated:
        return 0
    from app.lists.queries import count_open_entries

    return count_open_entries(current_user)


@lru_cache(maxsize=8192)
def _cached_url(script_root: str, endpoint: str, values: tuple[tuple[str, Any], ...]) -> str:
    return url_for(endpoint, **dict(values))


def link(endpoint: str, **values: Any) -> str:
    """`url_for` for links repeated on every card (post pages, topics, save buttons).

    A results page builds a hundred of these; werkzeug's URL building is the costliest
    part of rendering one, and the answer only depends on these arguments (and the
    mount point), so each worker remembers them.
    """
    items = tuple(sorted((k, v) for k, v in values.items() if v is not None and v != ""))
    return _cached_url(request.script_root, endpoint, items)


def _current_page() -> str:
    """Where a form on this page should send the reader back to after a no-JS POST."""
    if request.method == "POST":
        try:
            next_url = request.form.get("next")
        except RequestEntityTooLarge:  # rendering the 413 page itself: the body is unread
            next_url = None
        return safe_next_url(next_url) or url_for("browse.index")
    return request.full_path.rstrip("?")


def _url_with(**changes: Any) -> str:
    """The current URL with some query arguments changed (None removes one); page resets."""
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = [value]
    return url_for(request.endpoint or "browse.index", **(request.view_args or {}), **args)


class StripIndentation(Extension):
    """Drop the indentation of template lines when templates compile.

    Indentation keeps templates readable but is a fifth of a results page's bytes;
    removing it here costs nothing per request. (No template uses <pre> or <textarea>,
    where leading spaces would matter.)"""

    _indent = re.compile(r"\n[ \t]+")

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return self._indent.sub("\n", source)


def _poll_every(since: datetime | None) -> str:
    """How often a row waiting on the worker asks again: every 2 s for a page saved
    just now, every 30 s for one queued long ago (a big import's pages)."""
    recent = since is not None and utcnow() - since < timedelta(minutes=2)
    return "2s" if recent else "30s"


def _has_endpoint(name: str) -> bool:
    return name in current_app.view_functions


def register(app: Flask) -> None:
    app.jinja_env.add_extension(StripIndentation)
    app.after_request(_add_flashes_out_of_band)
    app.jinja_env.filters["minutes"] = _minutes
    app.jinja_env.filters["date"] = _date
    app.jinja_env.globals["list_count"] = _list_count
    app.jinja_env.globals["url_with"] = _url_with
    app.jinja_env.globals["link"] = link
    app.jinja_env.globals["current_page"] = _current_page
    app.jinja_env.globals["wants_fragment"] = wants_fragment
    app.jinja_env.globals["has_endpoint"] = _has_endpoint
    app.jinja_env.globals["poll_every"] = _poll_every
    # A global as well as Flask-Login's context variable, so macro files can be
    # imported without the page's context: Jinja then builds their module once per
    # worker instead of on every render.
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

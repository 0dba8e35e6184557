"""Response headers and redirect-target checks shared by every blueprint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, current_app, request
from werkzeug.datastructures import ImmutableMultiDict

# No inline scripts or styles, no eval: htmx is configured accordingly in base.html.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def set_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        # Pages differ per reader and per HX-Request: never let a shared cache keep them.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def safe_next_url(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None.

    Only relative paths are allowed: no scheme, no host, and no `//` or `\\` tricks
    that browsers read as another host.
    """
    if not target:
        return None
    target = target.strip()
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


F = TypeVar("F", bound=Callable[..., Any])


def accepts_files(view: F) -> F:
    """Mark a view whose form takes file uploads (see `refuse_unexpected_files`)."""
    view.accepts_files = True  # type: ignore[attr-defined]
    return view


def refuse_unexpected_files() -> Response | None:
    """A file part sent where a form expects text is refused with a 400, before any
    form sees an object it can't read as text. Views that take uploads say so with
    `@accepts_files`."""
    if request.mimetype != "multipart/form-data" or not request.files:
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "accepts_files", False):
        return None
    from app.errors import render_error

    return render_error(400, "This form doesn't take files; send it as text.")


def refuse_unstorable_text() -> Response | None:
    """Characters no database column can hold (NUL, lone surrogates) never reach a
    query: removed from query parameters (a filter then falls back as for any bad
    value), and a form that carries them is refused with a 400 that says why."""
    if any(_unstorable(v) for _, v in request.args.items(multi=True)):
        request.args = ImmutableMultiDict(  # type: ignore[misc]
            [(k, _storable(v)) for k, v in request.args.items(multi=True)]
        )
    if (
        request.method in ("POST", "PUT", "PATCH")
        and request.mimetype
        in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
        and any(_unstorable(v) for _, v in request.form.items(multi=True))
    ):
        from app.errors import render_error

        return render_error(400, "Text with a NUL or other invalid character can't be stored.")
    return None


def _unstorable(value: str) -> bool:
    return "\x00" in value or _has_surrogate(value)


def _storable(value: str) -> str:
    return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

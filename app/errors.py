"""Error pages, handled once for the whole app and aware of htmx."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    make_response,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, TooManyRequests

from app.extensions import db, limiter, login_manager
from app.templating import wants_fragment


@dataclass(frozen=True)
class ErrorText:
    """What an error page says: a heading, and a sentence about what to do next."""

    title: str
    detail: str

    @property
    def inline(self) -> str:
        """The one-line message an htmx request gets in #flashes."""
        return f"{self.title}. {self.detail}"


ERRORS = {
    400: ErrorText("That request didn't make sense", "Reload the page and try again."),
    403: ErrorText("Not yours to see", "You don't have access to that page."),
    404: ErrorText("Page not found", "That page doesn't exist, or it isn't yours to see."),
    405: ErrorText("That can't be done here", "Go back and use the page's own buttons and links."),
    413: ErrorText("That upload is too large", "Choose a smaller file and try again."),
    422: ErrorText("Something isn't right", "Some of what you sent isn't valid."),
    429: ErrorText("Too many attempts", "Wait a minute, then try again."),
    500: ErrorText(
        "Something went wrong on our side", "Nothing you sent was lost; try again in a moment."
    ),
}
FALLBACK = ErrorText("Something went wrong", "Go back and try again.")


def render_error(status: int, message: str | None = None, *, title: str | None = None) -> Response:
    """A full error page, or for htmx a small message swapped into #flashes.

    `message` and `title` replace the status's own sentence and heading.
    """
    text = ERRORS.get(status, FALLBACK)
    text = ErrorText(title or text.title, message or text.detail)
    if wants_fragment():
        html = render_template(
            "partials/flashes.html", messages=[("error", text.inline)], oob=False
        )
        response = make_response(html, status)
        response.headers["HX-Retarget"] = "#flashes"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template(
                "errors/error.html", status=status, title=text.title, message=text.detail
            ),
            status,
        )
    response.vary.add("HX-Request")
    return response


def _http_error(error: HTTPException) -> Response:
    return render_error(error.code or 500)


def _too_many_requests(error: TooManyRequests) -> Response:
    wait = _seconds_to_wait(error)
    response = render_error(429, f"Wait {_duration(wait)}, then try again.")
    response.headers["Retry-After"] = str(wait)
    return response


def _seconds_to_wait(error: TooManyRequests) -> int:
    """Until the breached limit's window ends; at most its whole window (a minute for
    the default sign-in limit) when the storage can't say."""
    window = 60
    limit = getattr(error, "limit", None)  # flask-limiter's RateLimitExceeded
    if limit is not None:
        window = int(limit.limit.get_expiry())
    current = limiter.current_limit
    if current is not None:
        try:
            return max(1, min(window, math.ceil(current.reset_at - time.time())))
        except Exception:  # noqa: BLE001 - the storage is unreachable: say the window
            db.session.rollback()
    return window


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return "a minute" if minutes == 1 else f"{minutes} minutes"


EXPIRED_FORM = (
    "This form expired (it was open a long time, or you signed in or out in another "
    "tab), so nothing was sent. Check it and send it again."
)

F = TypeVar("F", bound=Callable[..., Any])


def resends_expired_form(view: F) -> F:
    """Mark a view whose POST changes nothing unless its FlaskForm validates (which
    checks the CSRF token again). When the token is refused, the view runs once more
    and shows its form again, with what the reader typed (never a password) and a
    fresh token, under a message: a 400 with the form rather than an error page.
    (Forged from another site, the same happens: nothing is done, and that site can't
    read the page with the new token.)"""
    view.resends_expired_form = True  # type: ignore[attr-defined]
    return view


def _csrf_error(error: CSRFError) -> ResponseReturnValue:
    # A signed-out visitor's session (and its CSRF token) is gone: what they need is to
    # sign in again, not a message about forms. The auth pages themselves are exempt
    # from this so a stale login form can't loop.
    if not current_user.is_authenticated and request.blueprint != "auth":
        return login_manager.unauthorized()
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "resends_expired_form", False) and not wants_fragment():
        flash(EXPIRED_FORM, "error")
        try:
            response = current_app.make_response(
                current_app.ensure_sync(view)(**(request.view_args or {}))
            )
        except HTTPException as raised:
            return current_app.handle_user_exception(raised)
        if response.status_code in (200, 422):  # the form again; nothing was done
            response.status_code = 400  # (nor counted as a failed sign-in: not a 422)
        return response
    # htmx, or a button that is a form of its own: say so where the reader looks.
    return render_error(
        400,
        "Your form expired or came from another site. Reload the page and try again.",
        title="That form can't be sent",
    )


def _server_error(error: InternalServerError) -> Response:
    db.session.rollback()
    return render_error(500)


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(TooManyRequests, _too_many_requests)
    app.register_error_handler(HTTPException, _http_error)

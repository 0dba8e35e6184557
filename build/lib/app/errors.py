"""Error pages, handled once for the whole app and aware of htmx."""

from __future__ import annotations

from flask import Flask, Response, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db, login_manager
from app.templating import wants_fragment

MESSAGES = {
    400: "That request could not be understood.",
    403: "You don't have access to that page.",
    404: "That page doesn't exist, or it isn't yours to see.",
    405: "That action isn't allowed here.",
    413: "That upload is too large.",
    422: "Some of what you sent isn't valid.",
    429: "Too many attempts. Wait a minute, then try again.",
    500: "Something went wrong on our side. Nothing you sent was lost; try again.",
}


def render_error(status: int, message: str | None = None) -> Response:
    """A full error page, or for htmx a small message swapped into #flashes."""
    message = message or MESSAGES.get(status, "Something went wrong.")
    if wants_fragment():
        html = render_template("partials/flashes.html", messages=[("error", message)], oob=False)
        response = make_response(html, status)
        response.headers["HX-Retarget"] = "#flashes"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template("errors/error.html", status=status, message=message), status
        )
    response.vary.add("HX-Request")
    return response


def _http_error(error: HTTPException) -> Response:
    return render_error(error.code or 500)


def _csrf_error(error: CSRFError) -> ResponseReturnValue:
    # A signed-out visitor's session (and its CSRF token) is gone: what they need is to
    # sign in again, not a message about forms. The auth pages themselves are exempt
    # from this so a stale login form can't loop.
    if not current_user.is_authenticated and request.blueprint != "auth":
        return login_manager.unauthorized()
    return render_error(
        400, "Your form expired or came from another site. Reload the page and try again."
    )


def _server_error(error: InternalServerError) -> Response:
    db.session.rollback()
    return render_error(500)


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(HTTPException, _http_error)

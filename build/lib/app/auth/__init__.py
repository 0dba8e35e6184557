"""Accounts: sign in and out, registration, first-run set-up, password changes."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager

from app.auth.services import load_user_by_session_token
from app.models import User
from app.templating import hx_redirect, wants_fragment


def configure_login(login_manager: LoginManager) -> None:
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)


def _load_user(token: str) -> User | None:
    return load_user_by_session_token(token)


def _unauthorized() -> ResponseReturnValue:
    """Send the reader to sign in, then back; htmx gets a full navigation."""
    if request.method == "GET":
        back = request.full_path.rstrip("?")
    else:  # after signing in, return to the page the form was on, not to a POST URL
        htmx_from = request.headers.get("HX-Current-URL")
        back = request.form.get("next") or (htmx_from and _path_of(htmx_from)) or None
    login_url = url_for("auth.login", next=back)
    if wants_fragment() or request.headers.get("HX-Request"):
        return hx_redirect(login_url)
    flash("Please sign in to continue.", "info")
    return redirect(login_url)


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")

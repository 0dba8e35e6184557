"""The Account page's signed-in browsers: ending one of them. Routes of the `auth`
blueprint (`register` adds them), plus the check that sends a reader whose session
expired to sign in again."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, logout_user

from app.auth import sessions
from app.templating import hx_redirect, render_fragment, wants_fragment


def register(bp: Blueprint) -> None:
    bp.before_app_request(sessions.refuse_expired_session)
    bp.add_url_rule(
        "/account/sessions/<int:session_id>/end", view_func=end_session, methods=["POST"]
    )


@login_required
def end_session(session_id: int) -> ResponseReturnValue:
    """End one of the reader's sessions: that browser is signed out at once. With htmx
    its row says so in place; without, the Account page reloads with a message."""
    try:
        ended = sessions.end_session(current_user._get_current_object(), session_id)
    except LookupError:
        abort(404)  # another reader's session looks like no session
    if ended.current:  # "sign out" from this browser's own row
        logout_user()
        session.clear()
        flash("You are signed out.", "success")
        login = url_for("auth.login")
        return hx_redirect(login) if wants_fragment() else redirect(login, code=303)
    if wants_fragment():
        return render_fragment("auth/partials/session_ended.html", row=ended)
    flash(f"Signed out: {ended.device}.", "success")
    return redirect(url_for("auth.account", _anchor="sessions"), code=303)

"""My list: the reader's queue, saving posts and moving progress to done."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from app import access
from app.lists import queries, services
from app.lists.forms import ProgressForm
from app.models import Entry, EntryState
from app.pagination import page_number, paginate
from app.templating import htmx_from, redirect_back, render, render_fragment, wants_fragment

bp = Blueprint("lists", __name__, url_prefix="/list")


def _state_arg() -> str:
    state = request.args.get("state", EntryState.SAVED.value)
    return state if state in dict(queries.TABS) else EntryState.SAVED.value


def _list_context(state: str, page_number: int = 1) -> dict:
    page = paginate(
        queries.entries_in_state(current_user, state),
        page_number,
        current_app.config["POSTS_PER_PAGE"],
    )
    return {
        "state": state,
        "tabs": queries.TABS,
        "summary": queries.list_summary(current_user),
        "page": page,
        "entries": page.items,
    }


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    """The reader's list, one tab at a time, with time left."""
    context = _list_context(_state_arg(), page_number(request.args.get("page")))
    return render("lists/index.html", "lists/partials/tab.html", **context)


@bp.post("/save/<int:post_id>")
@login_required
def save(post_id: int) -> ResponseReturnValue:
    """Save a post: htmx swaps the toggle in place; otherwise back where the reader was."""
    entry = services.save_post(current_user, post_id)
    return _toggle_response(post_id, entry, "Saved to your list.")


@bp.post("/unsave/<int:post_id>")
@login_required
def unsave(post_id: int) -> ResponseReturnValue:
    """Take a post off the list from anywhere the Save toggle shows."""
    services.unsave_post(current_user, post_id)
    entry = queries.entry_for_post(current_user, post_id)
    if entry is not None:  # started or finished: kept, see unsave_post
        return _toggle_response(post_id, entry, "You've started this one; remove it from My list.")
    return _toggle_response(post_id, None, "Removed from your list.")


def _toggle_response(post_id: int, entry: object, message: str) -> ResponseReturnValue:
    flash(message, "success")  # htmx: rides out of band into #flashes, announced politely
    if not wants_fragment():
        return redirect_back("browse.post", post_id=post_id)
    post = access.visible_post(current_user, post_id)
    response = render_fragment(
        "lists/partials/save_toggle.html", post=post, entry=entry, with_counter=True
    )
    response.headers["HX-Trigger"] = "list-changed"
    return response


@bp.post("/<int:entry_id>/progress")
@login_required
def update_progress(entry_id: int) -> ResponseReturnValue:
    """Move an entry's progress; its state follows (reading, done)."""
    entry = access.own_entry(current_user, entry_id)
    form = ProgressForm(formdata=_progress_formdata())
    if not form.validate():
        error = form.progress.errors[0]
        if wants_fragment():
            return render_fragment("lists/partials/entry.html", entry=entry, error=error), 422
        context = _list_context(entry.state)
        context.update(error_entry_id=entry.id, error=error)
        return render("lists/index.html", "lists/partials/tab.html", 422, **context)
    entry = services.update_progress(current_user, entry_id, form.progress.data)
    flash(_progress_message(entry.progress, entry.post.title), "success")
    if not wants_fragment():
        return redirect_back("lists.index", state=entry.state)
    return _entry_response(entry)


def _progress_formdata() -> MultiDict[str, str]:
    """The slider sends `progress`; a quick-step button in the same form adds `step`,
    which is what the reader pressed."""
    value = request.form.get("step", request.form.get("progress", ""))
    return (
        MultiDict({"progress": value})
        if "progress" in request.form or "step" in request.form
        else MultiDict()
    )


def _progress_message(progress: int, title: str) -> str:
    if progress >= 100:
        return f"Done: “{title}”."
    return f"“{title}” is at {progress} %."


@bp.post("/<int:entry_id>/archive")
@login_required
def archive(entry_id: int) -> ResponseReturnValue:
    """Archive an entry, or bring it back with `archived=0`."""
    archived = request.form.get("archived", "1") != "0"
    entry = services.set_archived(current_user, entry_id, archived)
    title = entry.post.title
    flash(f"Archived “{title}”." if archived else f"“{title}” is back on your list.", "success")
    if not wants_fragment():
        return redirect_back("lists.index")
    return _entry_response(entry)


@bp.post("/<int:entry_id>/remove")
@login_required
def remove(entry_id: int) -> ResponseReturnValue:
    """Remove an entry from the list; htmx removes its row."""
    post = services.remove_entry(current_user, entry_id)
    flash(f"Removed “{post.title}” from your list.", "success")
    if not wants_fragment():
        return redirect_back("lists.index")
    response = render_fragment(
        "lists/partials/removed.html",
        entry_id=entry_id,
        summary=queries.list_summary(current_user) if htmx_from("lists.index") else None,
    )
    response.headers["HX-Trigger"] = "list-changed"
    return response


def _entry_response(entry: Entry) -> ResponseReturnValue:
    """The updated row; on the list, a row whose state left the open tab becomes a
    short 'moved to …' note, and the tab counts update out of band."""
    on_list_page = htmx_from("lists.index")
    summary = queries.list_summary(current_user) if on_list_page else None
    moved = on_list_page and entry.state != _tab_of_current_page()
    response = render_fragment(
        "lists/partials/moved.html" if moved else "lists/partials/entry.html",
        entry=entry,
        summary=summary,
        with_counters=True,
        tabs=dict(queries.TABS),
    )
    response.headers["HX-Trigger"] = "list-changed"
    return response


def _tab_of_current_page() -> str:
    """The tab the reader is looking at, from htmx's HX-Current-URL."""
    query = parse_qs(urlsplit(request.headers.get("HX-Current-URL", "")).query)
    state = query.get("state", [EntryState.SAVED.value])[0]
    return state if state in dict(queries.TABS) else EntryState.SAVED.value


@bp.get("/post/<int:post_id>")
@login_required
def post_entry(post_id: int) -> ResponseReturnValue:
    """The reader's controls for one post (refreshed on the post page after a save)."""
    post = access.visible_post(current_user, post_id)
    if not wants_fragment():
        return redirect(url_for("browse.post", post_id=post_id))
    entry = queries.entry_for_post(current_user, post_id)
    return render_fragment("lists/partials/post_entry.html", post=post, entry=entry)

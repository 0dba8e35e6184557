"""My list: the reader's queue, saving posts and moving progress to done."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from app import access
from app.lists import queries, services
from app.lists.forms import AddForm, PositionForm, ProgressForm
from app.models import Entry, EntryState, FetchState
from app.pagination import page_number, paginate
from app.templating import (
    htmx_current_url,
    htmx_from,
    hx_redirect,
    redirect_back,
    render,
    render_fragment,
    wants_fragment,
)

bp = Blueprint("lists", __name__, url_prefix="/list")


@bp.after_request
def _vary_on_htmx(response: Response) -> Response:
    """Every answer here depends on HX-Request (a fragment or a page, `HX-Redirect` or
    a redirect): say so on all of them, redirects included, so no cache mixes them."""
    response.vary.add("HX-Request")
    return response


def _state_arg() -> str:
    state = request.args.get("state", EntryState.SAVED.value)
    return state if state in dict(queries.TABS) else EntryState.SAVED.value


def _tag_arg() -> str | None:
    """`?tag=name`: the list narrowed to one of the reader's tags (app/tags/)."""
    tag = " ".join(request.args.get("tag", "").split()).lower()[:60]
    return tag or None


def _list_context(state: str, page_number: int = 1, tag: str | None = None) -> dict:
    page = paginate(
        queries.entries_in_state(current_user, state, tag),
        page_number,
        current_app.config["POSTS_PER_PAGE"],
        plain=True,
    )
    return {
        "state": state,
        "tabs": queries.TABS,
        "summary": queries.list_summary(current_user),
        "page": page,
        "entries": queries.list_rows(page.items),
        "tag": tag,
    }


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    """The reader's list, one tab at a time, with time left."""
    context = _list_context(_state_arg(), page_number(request.args.get("page")), _tag_arg())
    return render("lists/index.html", "lists/partials/tab.html", **context)


@bp.route("/add", methods=["GET", "POST"])
@login_required
def add() -> ResponseReturnValue:
    """Save any page by its address. GET only fills the form in (the bookmarklet and
    the share target land here); one press of Save saves."""
    if request.method == "GET":
        form = AddForm(formdata=None, data=_prefill())
        return render("lists/add.html", "lists/partials/add_form.html", form=form)
    form = AddForm()
    if not form.validate():
        return render("lists/add.html", "lists/partials/add_form.html", 422, form=form)
    added = services.add_article(current_user, form.url.data, form.title.data or "")
    entry = added.entry
    if added.added:
        flash(f"Saved “{entry.display_title}” to the top of Up next.", "success")
        target = url_for("lists.index", state="saved")
    else:
        tab = dict(queries.TABS)[entry.state]
        flash(f"You saved this page already; it's in {tab}.", "info")
        target = url_for("browse.post", post_id=entry.post_id)
    if wants_fragment():
        return hx_redirect(target)
    return redirect(target, code=303)


_URL_IN_TEXT = re.compile(r"https?://\S+")


def _prefill() -> dict[str, str]:
    """What the bookmarklet or a share sheet sent. Phones often put the address in
    `text` (with words around it) rather than in `url`."""
    url = request.args.get("url", "").strip()
    text = request.args.get("text", "").strip()
    if not url and (found := _URL_IN_TEXT.search(text)):
        url = found.group(0)
    return {"url": url[:4096], "title": " ".join(request.args.get("title", "").split())[:500]}


@bp.get("/<int:entry_id>")
@login_required
def entry(entry_id: int) -> ResponseReturnValue:
    """One row of the list (polled while its page is being fetched); a plain request
    goes to the post itself."""
    entry = access.own_entry(current_user, entry_id)
    if not wants_fragment():
        return redirect(url_for("browse.post", post_id=entry.post_id))
    # Once the page is in, its reading time counts in the list's totals.
    done = entry.post.fetch_state != FetchState.PENDING.value
    summary = queries.list_summary(current_user) if done and htmx_from("lists.index") else None
    return render_fragment(
        "lists/partials/entry.html", entry=entry, with_counters=done, summary=summary
    )


@bp.get("/<int:entry_id>/more")
@login_required
def more(entry_id: int) -> ResponseReturnValue:
    """An entry's progress, archive and tag controls: what the list row's "More" panel
    loads when opened, and without JavaScript a page of their own."""
    entry = access.own_entry(current_user, entry_id)
    back_to = url_for("lists.index", state=entry.state)
    return render("lists/more.html", "lists/partials/more.html", entry=entry, back_to=back_to)


@bp.post("/<int:entry_id>/refetch")
@login_required
def refetch(entry_id: int) -> ResponseReturnValue:
    """Try fetching a page that failed once more."""
    entry = services.retry_fetch(current_user, entry_id)
    flash(f"Fetching “{entry.display_title}” again.", "success")
    if not wants_fragment():
        return redirect_back("lists.index")
    return render_fragment("lists/partials/entry.html", entry=entry)


@bp.post("/<int:entry_id>/position")
@login_required
def record_position(entry_id: int) -> ResponseReturnValue:
    """The reader view saves how far the reader got; answers the entry's new state as
    JSON (`navigator.sendBeacon` ignores the answer)."""
    access.own_entry(current_user, entry_id)
    form = PositionForm()
    if not form.validate():
        return jsonify(error=form.position.errors[0]), 422
    entry = services.record_reading(current_user, entry_id, form.position.data)
    return jsonify(
        progress=entry.progress, state=entry.state, resume_position=entry.resume_position
    )


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
    form = ProgressForm(formdata=_progress_formdata())
    if not form.validate():
        entry = access.own_entry(current_user, entry_id)  # another reader's: a 404
        error = form.progress.errors[0]
        if wants_fragment():
            return render_fragment("lists/partials/entry.html", entry=entry, error=error), 422
        context = _list_context(entry.state)
        context.update(error_entry_id=entry.id, error=error)
        return render("lists/index.html", "lists/partials/tab.html", 422, **context)
    entry = services.update_progress(current_user, entry_id, form.progress.data)
    flash(_progress_message(entry.progress, entry.display_title), "success")
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
    title = entry.display_title
    flash(f"Archived “{title}”." if archived else f"“{title}” is back on your list.", "success")
    if not wants_fragment():
        return redirect_back("lists.index")
    return _entry_response(entry)


@bp.post("/<int:entry_id>/remove")
@login_required
def remove(entry_id: int) -> ResponseReturnValue:
    """Remove an entry from the list; htmx removes its row."""
    title = services.remove_entry(current_user, entry_id)
    flash(f"Removed “{title}” from your list.", "success")
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
        more_open=True,  # the action came from the row's "More" panel: keep it whole
        tabs=dict(queries.TABS),
    )
    response.headers["HX-Trigger"] = "list-changed"
    return response


def _tab_of_current_page() -> str:
    """The tab the reader is looking at, from htmx's HX-Current-URL."""
    current = htmx_current_url()
    query = parse_qs(current.query) if current else {}
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

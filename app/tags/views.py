"""Tags: on an entry (from the list row's More panel and the post page), and the
reader's tags page where they are renamed and deleted. The list filtered by a tag
is the list itself (`/list?tag=name`, app/lists/views.py)."""

from __future__ import annotations

from flask import Blueprint, flash, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app import access
from app.models import Entry
from app.tags import services
from app.tags.services import TagError
from app.templating import redirect_back, render, render_fragment, wants_fragment

bp = Blueprint("tags", __name__, url_prefix="/list")


@bp.get("/tags")
@login_required
def index() -> ResponseReturnValue:
    """The reader's tags with how many entries carry each; rename or delete them."""
    return _tags_page()


def _tags_page(status: int = 200, **context: object) -> ResponseReturnValue:
    return render(
        "tags/index.html",
        "tags/partials/tag_list.html",
        status,
        tags=services.tags_with_counts(current_user),
        **context,
    )


@bp.post("/tags/<int:tag_id>/rename")
@login_required
def rename(tag_id: int) -> ResponseReturnValue:
    """Rename a tag (to another of the reader's tags: the two become one)."""
    tag = services.own_tag(current_user, tag_id)
    try:
        name = services.parse_tag_name(request.form.get("name", ""))
    except TagError as error:
        return _tags_page(422, error_tag_id=tag.id, error=str(error))
    renamed = services.rename_tag(current_user, tag_id, name)
    if renamed.merged:
        flash(f"Merged “{renamed.old}” into “{renamed.new}”.", "success")
    elif renamed.old != renamed.new:
        flash(f"Renamed “{renamed.old}” to “{renamed.new}”.", "success")
    if not wants_fragment():
        return redirect_back("tags.index")
    return _tags_page()


@bp.post("/tags/<int:tag_id>/delete")
@login_required
def delete(tag_id: int) -> ResponseReturnValue:
    """Delete a tag; the entries that had it stay on the list."""
    name = services.delete_tag(current_user, tag_id)
    flash(f"Deleted the tag “{name}”. Its entries are still on your list.", "success")
    if not wants_fragment():
        return redirect_back("tags.index")
    return _tags_page()


@bp.get("/<int:entry_id>/tags")
@login_required
def entry(entry_id: int) -> ResponseReturnValue:
    """One entry's tags, to add and remove (the post page's reader bar links here)."""
    entry = access.own_entry(current_user, entry_id)
    return _entry_page(entry)


def _entry_page(entry: Entry, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    return render(
        "tags/entry.html",
        "lists/partials/entry.html",
        status,
        entry=entry,
        tag_error=error,
        tags_open=True,
        all_tags=services.tags_with_counts(current_user),
    )


@bp.post("/<int:entry_id>/tags")
@login_required
def add(entry_id: int) -> ResponseReturnValue:
    """Tag an entry (comma-separated names); htmx swaps its row."""
    entry = access.own_entry(current_user, entry_id)
    try:
        names = services.parse_tag_input(request.form.get("tags", ""))
    except TagError as error:
        if wants_fragment():
            return render_fragment(
                "lists/partials/entry.html", 422, entry=entry, tag_error=str(error)
            )
        return _entry_page(entry, 422, str(error))
    entry = services.add_tags(current_user, entry_id, names)
    quoted = ", ".join(f"“{name}”" for name in names)
    flash(f"Tagged “{entry.display_title}” {quoted}.", "success")
    return _entry_response(entry)


@bp.post("/<int:entry_id>/tags/<int:tag_id>/remove")
@login_required
def remove(entry_id: int, tag_id: int) -> ResponseReturnValue:
    """Take a tag off an entry; htmx swaps its row."""
    entry, name = services.remove_tag(current_user, entry_id, tag_id)
    flash(f"Removed the tag “{name}” from “{entry.display_title}”.", "success")
    return _entry_response(entry)


def _entry_response(entry: Entry) -> ResponseReturnValue:
    if not wants_fragment():
        return redirect_back("tags.entry", entry_id=entry.id)
    return render_fragment(
        "lists/partials/entry.html", entry=entry, tags_open=True, more_open=True
    )

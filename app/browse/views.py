"""Browse the catalog and read about one post."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app import access
from app.browse import queries
from app.browse.filters import LENGTHS, SORTS, BrowseFilters
from app.lists.queries import entries_for_posts, entry_for_post
from app.templating import render

bp = Blueprint("browse", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    """The catalog, newest first, with topic and length filters and sorting."""
    filters = BrowseFilters.from_args(request.args)
    page = queries.paginate(
        queries.catalog_posts(current_user, filters),
        filters.page,
        current_app.config["POSTS_PER_PAGE"],
    )
    facets = queries.catalog_facets(current_app.config["FACETS_MAX_AGE"])
    return render(
        "browse/index.html",
        "browse/partials/results.html",
        filters=filters,
        page=page,
        entries=entries_for_posts(current_user, (post.id for post in page.items)),
        facets=facets,
        names=queries.facet_label(facets, filters),
        lengths=LENGTHS,
        sorts=SORTS,
    )


@bp.get("/posts/<int:post_id>")
def post(post_id: int) -> ResponseReturnValue:
    """One post: its details and, for a signed-in reader, their controls."""
    post = access.visible_post(current_user, post_id)
    entry = entry_for_post(current_user, post_id) if current_user.is_authenticated else None
    return render("browse/post.html", "browse/post.html", post=post, entry=entry)

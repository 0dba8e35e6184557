"""Browse the catalog and read about one post."""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from markupsafe import Markup

from app.browse import queries
from app.browse.filters import LENGTHS, SORTS, BrowseFilters
from app.catalog.cards import cards
from app.lists.queries import entries_for_posts
from app.pagination import paginate
from app.search.engine import related_posts
from app.templating import render, wants_fragment

bp = Blueprint("browse", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    """The catalog, newest first, narrowed by facet links and sorted."""
    filters = BrowseFilters.from_args(request.args)
    max_age = current_app.config["FACETS_MAX_AGE"]
    catalog = queries.catalog_facets(BrowseFilters(), max_age)
    post_ids = queries.catalog_post_ids(
        filters, common_topic=catalog.is_common_topic(filters.topic)
    )
    page = paginate(
        post_ids, filters.page, current_app.config["POSTS_PER_PAGE"], deferred=True, plain=True
    )
    fragment = wants_fragment()
    return render(
        "browse/index.html",
        "browse/partials/results.html",
        filters=filters,
        page=page,
        cards=cards(page.items),
        entries=entries_for_posts(current_user, page.items),
        names=queries.facet_labels(catalog, filters),
        lengths=LENGTHS,
        sidebar=None
        if fragment
        else _sidebar(
            catalog if not filters.active else queries.catalog_facets(filters, max_age),
            filters.with_changes(page=1),
        ),
    )


@lru_cache(maxsize=128)
def _sidebar(facets: queries.CatalogFacets, filters: BrowseFilters) -> Markup:
    """The sidebar's HTML for these facet counts and filters (both immutable, so they
    key the cache; new counts are a new `facets` object and miss it). 128 of them,
    about 8 KB each, keep a worker within its memory budget with every cache full."""
    return Markup(  # noqa: S704 - our own template's output, escaped by Jinja
        render_template(
            "browse/partials/sidebar.html",
            facets=facets,
            filters=filters,
            lengths=LENGTHS,
            sorts=SORTS,
        )
    )


@bp.get("/posts/<int:post_id>")
def post(post_id: int) -> ResponseReturnValue:
    """One post: the article in the reader view when Dogear has its text, else its
    details and where fetching it stands; for a signed-in reader, their controls and
    their place in it. htmx polls it while the article is being fetched."""
    found = queries.post_page(current_user, post_id)
    if found is None:
        abort(404)
    post, entry = found
    # The article's HTML is read only for the kinds the reader view shows.
    reader_view = bool(post.content)
    # A poll swaps only the post itself (hx-select): no related posts to look up.
    related = [] if wants_fragment() else related_posts(post, 5, user=current_user)
    return render(
        "browse/post.html",
        "browse/post.html",
        post=post,
        entry=entry,
        related=related,
        reader_view=reader_view,
    )

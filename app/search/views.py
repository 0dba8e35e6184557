"""Search the catalog: ranked full-text search with query syntax and facets."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.catalog.cards import cards
from app.lists.queries import entries_for_posts
from app.pagination import page_number
from app.search import engine
from app.search.facets import FacetValue
from app.search.parser import MAX_LENGTH, Filter, Query, as_typed, parse
from app.templating import link, render

bp = Blueprint("search", __name__)

MAX_PAGE_ARG = 10_000
_URL_SAFE = "!$'()*,/:;?@"  # what werkzeug leaves unquoted in a query string
TYPING_TRIGGER = "search-q"  # the id of the search box, sent by htmx as HX-Trigger


@bp.get("/search")
def index() -> ResponseReturnValue:
    """Results for `q`, best match first (or by date or length), with facets to
    narrow them; htmx gets the results region alone, which search-as-you-type swaps."""
    raw = request.args.get("q", "")
    # The search box itself asks while the reader types: the word being typed counts
    # as a prefix, so results come before it is finished. A submitted query is exact.
    typing = request.headers.get("HX-Trigger") == TYPING_TRIGGER
    query = parse(as_typed(raw) if typing else raw)
    q = raw[:MAX_LENGTH]
    sort = request.args.get("sort", "relevance")
    sort = sort if sort in engine.SORTS else "relevance"
    results = None
    if not query.is_empty:
        results = engine.search(
            query,
            current_user,
            sort=sort,
            page=page_number(request.args.get("page"), MAX_PAGE_ARG),
            per_page=current_app.config["POSTS_PER_PAGE"],
        )
    post_ids = [hit.post_id for hit in results.page.items] if results else []
    response = render(
        "search/index.html",
        "search/partials/results.html",
        q=q,
        query=query,
        sort=sort,
        sorts=engine.SORTS,
        results=results,
        cards={card.post_id: card for card in cards(post_ids, heading="h3")},
        entries=entries_for_posts(current_user, post_ids),
        facet_url=lambda value: _facet_url(q, query, sort, value),
        remove_url=lambda f: _search_url(str(query.without_filter(f.field, f.value)), sort),
    )
    response.vary.add("HX-Trigger")
    return response


def _search_url(q: str, sort: str) -> str:
    """A search's URL, as `url_for` builds it. A page has two dozen (its facets), and
    werkzeug's URL building was a tenth of the page: the path is built once, the
    query string here, with werkzeug's encoding."""
    args = {"q": q or None, "sort": None if sort == "relevance" else sort}
    query = urlencode([(k, v) for k, v in args.items() if v is not None], safe=_URL_SAFE)
    return link("search.index") + (f"?{query}" if query else "")


def _facet_url(q: str, query: Query, sort: str, value: FacetValue) -> str:
    """Narrow to the value (the reader's words kept as typed), or widen again."""
    if value.active:
        return _search_url(str(query.without_filter(value.field, value.value)), sort)
    return _search_url(f"{q.strip()} {Filter(value.field, value.value)}".strip(), sort)

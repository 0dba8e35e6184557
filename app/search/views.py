"""Search the catalog."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import or_, select

from app.access import visible_posts_clause
from app.browse.queries import paginate
from app.lists.queries import entries_for_posts
from app.models import Post
from app.templating import render

bp = Blueprint("search", __name__)


@bp.get("/search")
def index() -> ResponseReturnValue:
    """Results for the query in `q` (titles and summaries for now)."""
    q = request.args.get("q", "").strip()[:1000]
    try:
        page_number = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        page_number = 1
    page = None
    if q:
        stmt = (
            select(Post)
            .where(visible_posts_clause(current_user))
            .where(
                or_(
                    Post.title.contains(q, autoescape=True),
                    Post.summary.contains(q, autoescape=True),
                )
            )
            .order_by(Post.published_on.desc(), Post.id.desc())
        )
        page = paginate(stmt, page_number, current_app.config["POSTS_PER_PAGE"])
    return render(
        "search/index.html",
        "search/partials/results.html",
        q=q,
        page=page,
        entries=entries_for_posts(current_user, (p.id for p in page.items) if page else ()),
    )

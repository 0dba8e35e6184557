"""The sources page (/admin/sources): feeds and listing files that fill the catalog,
how their refreshes go, adding, editing, deleting, refreshing, OPML. Admins only."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, Response, abort, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from markupsafe import Markup, escape

from app import access
from app.extensions import db
from app.models import JobRun, Source, utcnow
from app.security import accepts_files
from app.sources import queries, services
from app.sources.common import SourceError
from app.sources.forms import EditSourceForm, OpmlForm, SourceForm
from app.sources.opml import build_opml
from app.sources.services import OpmlCandidate
from app.templating import hx_redirect, redirect_back, render, render_fragment, wants_fragment

bp = Blueprint("sources", __name__, url_prefix="/admin/sources")
bp.before_request(access.require_admin)

ACTIVE = ("queued", "running")


def _page(
    status: int = 200,
    *,
    form: SourceForm | None = None,
    opml_form: OpmlForm | None = None,
    preview: services.OpmlPreview | None = None,
    run: JobRun | None = None,
) -> Response:
    topics = queries.topics()
    if run is None:
        run_id = request.args.get("run", type=int)
        run = queries.refresh_run(run_id) if run_id else queries.current_refresh_run()
    return render(
        "sources/index.html",
        "sources/partials/table.html",
        status,
        sources=db.session.scalars(queries.sources()).all(),
        form=form or SourceForm(formdata=None).with_topics(topics),
        opml_form=opml_form or OpmlForm(formdata=None),
        preview=preview,
        run=run,
        has_topics=bool(topics),
        interval=_duration_words(_interval_minutes()),
    )


@bp.get("")
def index() -> ResponseReturnValue:
    """Every source with its refresh status, the add form, refresh all and OPML."""
    return _page()


@bp.post("")
def add() -> ResponseReturnValue:
    """Add a feed (or a page naming one, or a listing file); its posts come from the
    refresh the worker runs next."""
    form = SourceForm().with_topics(queries.topics())
    if form.validate():
        try:
            source, found = services.add_source(
                current_user,
                form.url.data or "",
                name=form.name.data or "",
                topic_ids=form.topics.data or [],
                fetch_full_articles=bool(form.fetch_full_articles.data),
            )
        except SourceError as error:
            _field(form, error.field).errors.append(str(error))
        else:
            flash(
                f"Added “{source.name}”. {found.describe()} Its posts arrive in a moment.",
                "success",
            )
            if wants_fragment():
                return render_fragment(
                    "sources/partials/added.html",
                    form=SourceForm(formdata=None).with_topics(queries.topics()),
                    sources=db.session.scalars(queries.sources()).all(),
                    oob=True,
                )
            return redirect(url_for("sources.index"), code=303)
    if wants_fragment():
        return render_fragment("sources/partials/add_form.html", 422, form=form)
    return _page(422, form=form)


@bp.get("/<int:source_id>/row")
def row(source_id: int) -> ResponseReturnValue:
    """One row of the table (polled while its refresh is queued or running)."""
    source = _source(source_id)
    if not wants_fragment():
        return redirect(url_for("sources.edit", source_id=source.id))
    return render_fragment("sources/partials/row.html", source=source)


@bp.route("/<int:source_id>", methods=["GET", "POST"])
def edit(source_id: int) -> ResponseReturnValue:
    """A source's settings and history; saving goes back to the table."""
    source = _source(source_id)
    topics = queries.topics()
    if request.method == "GET":
        form = EditSourceForm(formdata=None, obj=source).with_topics(topics)
        form.topics.data = [topic.id for topic in source.topics]
        return _edit_page(source, form)
    form = EditSourceForm().with_topics(topics)
    if form.validate():
        try:
            services.edit_source(
                current_user,
                source.id,
                name=form.name.data or "",
                url=form.url.data or None,
                topic_ids=form.topics.data or [],
                fetch_full_articles=bool(form.fetch_full_articles.data),
            )
        except SourceError as error:
            db.session.rollback()
            source = _source(source_id)
            _field(form, error.field).errors.append(str(error))
        else:
            flash("Source saved.", "success")
            if wants_fragment():
                return hx_redirect(url_for("sources.index"))
            return redirect(url_for("sources.index"), code=303)
    return _edit_page(source, form, 422)


def _edit_page(source: Source, form: EditSourceForm, status: int = 200) -> Response:
    return render(
        "sources/edit.html",
        "sources/partials/edit_form.html",
        status,
        source=source,
        form=form,
        post_count=queries.post_count(source.id),
    )


@bp.get("/<int:source_id>/delete")
def confirm_delete(source_id: int) -> ResponseReturnValue:
    """Are you sure? (the no-JavaScript way to delete; htmx asks in a dialog)"""
    source = _source(source_id)
    return render(
        "sources/delete.html",
        "sources/delete.html",
        source=source,
        post_count=queries.post_count(source.id),
    )


@bp.post("/<int:source_id>/delete")
def delete(source_id: int) -> ResponseReturnValue:
    """Delete a source; its posts stay in the catalog."""
    try:
        name, kept = services.delete_source(current_user, source_id)
    except LookupError:
        abort(404)
    flash(f"Deleted “{name}”. Its {_posts(kept)} stay in the catalog.", "success")
    if wants_fragment():
        return render_fragment(
            "sources/partials/table.html", sources=db.session.scalars(queries.sources()).all()
        )
    return redirect(url_for("sources.index"), code=303)


@bp.post("/<int:source_id>/refresh")
def refresh(source_id: int) -> ResponseReturnValue:
    """Queue a refresh of one source now."""
    try:
        source = services.request_refresh(current_user, source_id)
    except LookupError:
        abort(404)
    except SourceError as error:
        flash(str(error), "error")
    else:
        flash(f"Refreshing “{source.name}”.", "info")
    if wants_fragment():
        return render_fragment("sources/partials/row.html", source=_source(source_id))
    return redirect_back("sources.index")


@bp.post("/refresh")
def refresh_all() -> ResponseReturnValue:
    """Queue a refresh of every source, with progress on the page."""
    try:
        run, started = services.start_refresh_all(current_user)
    except SourceError as error:
        flash(str(error), "error")
        if wants_fragment():
            return render_fragment("sources/partials/refresh_all.html", run=None)
        return redirect(url_for("sources.index"), code=303)
    if not started:
        flash("A refresh of all sources is already under way.", "info")
    if wants_fragment():
        return render_fragment("sources/partials/refresh_all.html", run=run)
    return redirect(url_for("sources.index", run=run.id), code=303)


@bp.get("/runs/<int:run_id>")
def run_status(run_id: int) -> ResponseReturnValue:
    """How far a refresh of all sources is (polled every second while it runs)."""
    run = queries.refresh_run(run_id)
    if run is None:
        abort(404)
    if not wants_fragment():
        return redirect(url_for("sources.index", run=run.id))
    finished = run.status not in ACTIVE
    if finished and run.message:
        flash(run.message, "success" if run.status == "done" else "error")
    return render_fragment(
        "sources/partials/refresh_all.html",
        run=run,
        # The last poll brings the table up to date too.
        sources=db.session.scalars(queries.sources()).all() if finished else None,
        oob=finished,
    )


@bp.get("/opml")
def export_opml() -> ResponseReturnValue:
    """Every feed source as an OPML 2.0 file."""
    body = build_opml(services.export_sources())
    response = make_response(body)
    response.mimetype = "text/x-opml"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="dogear-sources-{utcnow():%Y-%m-%d}.opml"'
    )
    return response


@bp.post("/opml")
@accepts_files
def preview_opml() -> ResponseReturnValue:
    """Read an uploaded OPML file and show what importing it would add."""
    form = OpmlForm()
    preview = None
    if form.validate():
        data = form.file.data.read(_opml_limit() + 1)
        if len(data) > _opml_limit():
            form.file.errors.append(f"That file is larger than {_opml_limit() // 1_000_000} MB.")
        else:
            try:
                preview = services.preview_opml(data)
            except SourceError as error:
                form.file.errors.append(str(error))
    status = 200 if preview is not None else 422
    if wants_fragment():
        return render_fragment(
            "sources/partials/opml_panel.html", status, opml_form=form, preview=preview
        )
    return render(
        "sources/opml.html", "sources/opml.html", status, opml_form=form, preview=preview
    )


@bp.post("/opml/import")
def import_opml() -> ResponseReturnValue:
    """Add the feeds chosen in the preview as sources."""
    candidates = _chosen_feeds()
    if not candidates:
        flash("Choose at least one feed to import.", "error")
        return redirect(url_for("sources.index"), code=303)
    added, skipped = services.import_opml(current_user, candidates)
    message = f"Imported {_count(added, 'feed', 'feeds')}; their posts arrive in a moment."
    if skipped:
        message += f" {_count(skipped, 'feed was', 'feeds were')} skipped (already sources)."
    flash(message, "success")
    if wants_fragment():
        return hx_redirect(url_for("sources.index"))
    return redirect(url_for("sources.index"), code=303)


def _chosen_feeds() -> list[OpmlCandidate]:
    """The preview's feeds (a JSON list in a hidden field) the admin left ticked."""
    try:
        listed = json.loads(request.form.get("feeds", "[]"))
        chosen = {int(i) for i in request.form.getlist("add")}
    except (ValueError, TypeError):
        return []
    if not isinstance(listed, list):
        return []
    candidates = []
    for index, item in enumerate(listed):
        if index not in chosen or not isinstance(item, dict):
            continue
        categories = item.get("categories")
        candidates.append(
            OpmlCandidate(
                url=str(item.get("url", ""))[:4096],
                title=str(item.get("title", ""))[:200],
                site_url=str(item.get("site_url", ""))[:2048],
                categories=tuple(str(c)[:60] for c in categories[:20])
                if isinstance(categories, list)
                else (),
            )
        )
    return candidates


# --- helpers -----------------------------------------------------------------------------


def _source(source_id: int) -> Source:
    source = queries.source(source_id)
    if source is None:
        abort(404)
    return source


def _field(form: SourceForm, name: str):  # noqa: ANN202 - a WTForms field
    field = getattr(form, name, None) or form.url
    if not isinstance(field.errors, list):
        field.errors = list(field.errors)
    return field


def _opml_limit() -> int:
    from flask import current_app

    return int(current_app.config["SOURCES_OPML_MAX_BYTES"])


def _interval_minutes() -> int:
    from flask import current_app

    return int(current_app.config["SOURCES_REFRESH_MINUTES"])


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _posts(n: int) -> str:
    return _count(n, "post", "posts")


def _duration_words(minutes: int) -> str:
    if minutes % 60 == 0 and minutes >= 60:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return "minute" if minutes == 1 else f"{minutes} minutes"


@bp.app_template_global("source_state")
def source_state(source: Source) -> str:
    return services.refresh_state(source)


@bp.app_template_global("source_kind")
def source_kind(source: Source) -> str:
    """What a source is, in a few words."""
    if source.kind == "feed":
        return "Feed"
    if source.kind == "listing":
        return "Listing file" if source.url else "Imported listing"
    return "Added by hand"


@bp.app_template_filter("source_time")
def source_time(moment: datetime | None, never: str = "Never") -> Markup:
    """`<time>` saying how long ago (or how soon) a moment is, the date in its title."""
    if moment is None:
        return Markup('<span class="muted">{}</span>').format(never)
    seconds = (moment - utcnow()).total_seconds()
    words = _relative(abs(seconds))
    text = "just now" if words is None else (f"in {words}" if seconds > 0 else f"{words} ago")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(timespec="seconds") + "Z",
        f"{moment:%b} {moment.day}, {moment:%Y %H:%M} UTC",
        escape(text),
    )


def _relative(seconds: float) -> str | None:
    if seconds < 45:
        return None
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours = round(minutes / 60)
    if hours < 48:
        return f"{hours} h"
    return f"{round(hours / 24)} days"

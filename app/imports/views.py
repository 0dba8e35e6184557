"""Account › Import and Export: upload a file, check the preview, confirm, watch it
land; download everything as JSON, CSV or bookmark HTML."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import render_error
from app.imports import UnreadableFile, exports, services
from app.imports.forms import ConfirmForm, UploadForm
from app.imports.preview import FileTooLarge
from app.security import accepts_files
from app.templating import hx_redirect, render, wants_fragment

bp = Blueprint("imports", __name__)


def _limit() -> str:
    size = current_app.config["IMPORT_MAX_BYTES"]
    return f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size:,} bytes"


def _too_large() -> Response:
    return render_error(
        413,
        f"Dogear imports files up to {_limit()}; this one is larger. Split the export "
        "(or export a part of your list) and import the parts one after another.",
        title="That file is too large to import",
    )


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> Response:
    """An upload over the size limit (refused before it is read at all). The body is
    never read, so the page that says so must not look for a form in it."""
    request.form = ImmutableMultiDict()  # type: ignore[misc]
    request.files = ImmutableMultiDict()  # type: ignore[misc]
    return _too_large()


def _go(endpoint: str, **values: object) -> Response:
    """After a state change: a full navigation, with or without htmx."""
    target = url_for(endpoint, **values)
    return hx_redirect(target) if wants_fragment() else redirect(target, code=303)


@bp.get("/account/import")
@login_required
def index() -> ResponseReturnValue:
    """The upload form, the formats Dogear reads, and the reader's recent imports."""
    return _index(UploadForm(formdata=None))


def _index(form: UploadForm, status: int = 200) -> Response:
    return render(
        "imports/index.html",
        "imports/partials/upload_form.html",
        status,
        form=form,
        runs=services.recent_runs(current_user),
        limit=_limit(),
    )


@bp.post("/account/import")
@accepts_files
@login_required
def upload() -> ResponseReturnValue:
    """Read the uploaded file and show what importing it would do; nothing is
    imported yet. A file Dogear can't read is refused with the reason (422)."""
    form = UploadForm()
    if not form.validate():
        return _index(form, 422)
    limit = current_app.config["IMPORT_MAX_BYTES"]
    data = form.file.data.read(limit + 1)
    if len(data) > limit:
        return _too_large()
    try:
        stored, _ = services.store_upload(current_user, form.file.data.filename or "", data)
    except FileTooLarge:
        return _too_large()
    except UnreadableFile as error:
        form.file.errors = [str(error)]
        return _index(form, 422)
    return _go("imports.preview", upload_id=stored.id)


@bp.get("/account/import/<int:upload_id>")
@login_required
def preview(upload_id: int) -> ResponseReturnValue:
    """The preview: how many entries are new, already listed, or left out (and why)."""
    upload = services.own_upload(current_user, upload_id)
    run_id = services.upload_run_id(upload)
    if run_id is not None:
        return redirect(url_for("imports.run", run_id=run_id))
    return _preview(upload, ConfirmForm(formdata=None))


def _preview(upload: object, form: ConfirmForm, status: int = 200) -> Response:
    return render(
        "imports/preview.html",
        "imports/partials/confirm_form.html",
        status,
        upload=upload,
        preview=services.upload_preview(upload),  # type: ignore[arg-type]
        form=form,
    )


@bp.post("/account/import/<int:upload_id>")
@login_required
def confirm(upload_id: int) -> ResponseReturnValue:
    """Start the import the reader checked; it runs in the background."""
    upload = services.own_upload(current_user, upload_id)
    form = ConfirmForm()
    if not form.validate():
        return _preview(upload, form, 422)
    run = services.start_import(current_user, upload.id, form.existing.data)
    return _go("imports.run", run_id=run.id)


@bp.post("/account/import/<int:upload_id>/discard")
@login_required
def discard(upload_id: int) -> ResponseReturnValue:
    """Forget the uploaded file without importing anything."""
    services.discard_upload(current_user, upload_id)
    flash("Nothing was imported. Choose another file when you're ready.", "info")
    return _go("imports.index")


@bp.get("/account/import/runs/<int:run_id>")
@login_required
def run(run_id: int) -> ResponseReturnValue:
    """An import's progress (htmx polls it every second while it runs; without
    JavaScript the page refreshes itself), then its outcome."""
    job = services.own_run(current_user, run_id)
    return render(
        "imports/run.html",
        "imports/partials/run_status.html",
        run=job,
        result=services.run_result(job),
    )


@bp.get("/account/export")
@login_required
def export() -> ResponseReturnValue:
    """The three downloads, with what each is for."""
    return render_template("imports/export.html", summary=exports.summary(current_user))


_EXPORTS = {
    "json": ("application/json", exports.export_json),
    "csv": ("text/csv", exports.export_csv),
    "html": ("text/html", exports.export_html),
}


@bp.get("/account/export.<any(json, csv, html):kind>")
@login_required
def download(kind: str) -> ResponseReturnValue:
    """The reader's whole list as a file, written as it is read (never whole in memory)."""
    mimetype, writer = _EXPORTS[kind]
    filename = f"dogear-{date.today().isoformat()}.{kind}"
    response = Response(
        stream_with_context(writer(current_user._get_current_object())),  # type: ignore[attr-defined]
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
    response.charset = "utf-8"
    return response

"""The `dogear` command: the Flask CLI bound to this app, plus admin tasks."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext


def _create_app() -> Flask:
    from app import create_app
    from app.config import ConfigurationError

    try:
        return create_app()
    except ConfigurationError as error:  # a setting to fix: say which, no traceback
        raise click.ClickException(str(error)) from error


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """Dogear admin tasks (`dogear db upgrade`, `dogear posts import`, `dogear users create`)."""


posts_cli = click.Group("posts", help="Fill and inspect the catalog.")
users_cli = click.Group("users", help="Manage accounts.")


@posts_cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--source", "source_name", default="Listing import", show_default=True)
@with_appcontext
def import_posts(paths: tuple[str, ...], as_json: bool, source_name: str) -> None:
    """Import listing files (or - for stdin) into the catalog.

    Every file is read through first: one that can't be read (missing, or not UTF-8)
    stops the import before anything is written. Entries that can't be read are
    reported (file:line: why) and skipped. The posts are then written a few hundred
    per transaction, so the site stays responsive; if an import stops part-way, run
    it again: posts already in the catalog count as duplicates, so the second run
    adds just what the first did not.
    """
    import tempfile
    from contextlib import ExitStack
    from shutil import copyfileobj

    from app.catalog.importer import import_files
    from app.catalog.listing import UndecodableListing

    with ExitStack() as stack:
        files = []
        for path in paths:
            if path == "-":  # kept aside (on disk past a few MB) to be read twice
                spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=8_000_000))
                copyfileobj(sys.stdin.buffer, spool)
                spool.seek(0)
                files.append(("<stdin>", spool))
                continue
            try:
                files.append((path, stack.enter_context(open(path, "rb"))))  # noqa: SIM115
            except OSError as error:
                raise click.ClickException(f"cannot read {path}: {error}") from error
        try:
            report = import_files(files, source_name=source_name)
        except UndecodableListing as error:
            raise click.ClickException(f"cannot read {error}") from error
        except OSError as error:
            raise click.ClickException(f"cannot read the files: {error}") from error
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(
        f"created: {report.created}, duplicates: {report.duplicates}, errors: {report.error_count}"
    )
    for error in report.errors:
        click.echo(f"{error.file}:{error.line}: {error.reason}", err=True)
    if report.error_count > len(report.errors):
        click.echo(f"… and {report.error_count - len(report.errors)} more errors", err=True)


@posts_cli.command("load-demo")
@with_appcontext
def load_demo_command() -> None:
    """Load the demo catalog into an empty database (unless DOGEAR_DEMO=0)."""
    from app.catalog.importer import load_demo

    report = load_demo()
    if report is not None:
        click.echo(f"Demo catalog loaded: {report.created} posts.")


@posts_cli.command("add")
@click.argument("url")
@click.option("--user", "email", required=True, help="The reader whose list gets it.")
@click.option("--title", default="", help="A title until the page's own is read.")
@with_appcontext
def add_post_command(url: str, email: str, title: str) -> None:
    """Save a page to a reader's list by its address; the worker fetches it."""
    from app.auth.services import find_user_by_email
    from app.lists.services import add_article
    from app.urls import InvalidURL

    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no account with the address {email}")
    try:
        added = add_article(user, url, title)
    except InvalidURL as error:
        raise click.ClickException(str(error)) from error
    post = added.entry.post
    if added.added:
        click.echo(f"Saved {post.url} to {user.email}'s list (entry {added.entry.id}).")
    else:
        click.echo(f"Already on {user.email}'s list: {post.url} (entry {added.entry.id}).")


@click.command("worker")
@click.option("--workers", type=int, default=None, help="Jobs run at once (JOBS_WORKERS).")
@with_appcontext
def worker_command(workers: int | None) -> None:
    """Run the background job worker (fetching articles) until stopped."""
    from app.jobs import run_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_worker(app, workers or int(app.config["JOBS_WORKERS"]))


@click.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
def serve_command(bind: str) -> None:
    """Run gunicorn and the job worker together; Ctrl-C (or SIGTERM) stops both."""
    from app.supervisor import serve

    sys.exit(serve(bind))


@users_cli.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the account an admin.")
@with_appcontext
def create_user_command(email: str, admin: bool) -> None:
    """Create an account; the password is prompted for, or read from stdin."""
    from app.auth.forms import MAX_PASSWORD, MIN_PASSWORD, email_problem
    from app.auth.services import AccountError, create_user

    problem = email_problem(email)  # the same check as the web forms'
    if problem is not None:
        raise click.ClickException(f"{email!r} is not a valid email address: {problem}")
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise click.ClickException(f"the password needs at least {MIN_PASSWORD} characters")
    try:
        user = create_user(email, password, is_admin=admin)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Created {'admin' if user.is_admin else 'reader'} {user.email}.")


@users_cli.command("reset-password")
@click.argument("email")
@with_appcontext
def reset_password_command(email: str) -> None:
    """Print a one-time link that sets a new password for the account (for when the
    only admin forgot theirs)."""
    from app.auth.services import create_reset_link, external_link, find_user_by_email

    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no account with the address {email}")
    link = create_reset_link(user.id, actor=None, detail="printed by the command line")
    minutes = current_app.config["RESET_LINK_MINUTES"]
    click.echo(f"A one-time link to choose a new password for {user.email}")
    click.echo(f"(works once, for {minutes} minutes, until the account signs in):")
    click.echo(external_link("auth.reset", token=link.token))


audit_cli = click.Group("audit", help="Read the audit log.")


@audit_cli.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=20, show_default=True)
@with_appcontext
def audit_tail_command(count: int) -> None:
    """Print the latest audit events, oldest first (times in UTC)."""
    from app.admin.queries import latest_audit_events

    for event in latest_audit_events(count):
        fields = [
            f"{event.at:%Y-%m-%d %H:%M:%S}Z",
            event.actor_email or "-",
            event.action,
            event.target or "-",
        ]
        if event.detail:
            fields.append(event.detail)
        if event.ip:
            fields.append(f"[{event.ip}]")
        click.echo("  ".join(fields))


@click.command("setup-link")
@with_appcontext
def setup_link_command() -> None:
    """Print a fresh one-time link that creates the first admin (while there is none)."""
    link = announce_setup_link()
    if link is None:
        click.echo("An admin exists already; sign in at /login.")


def announce_setup_link(*, fresh: bool = True) -> str | None:
    """Log the first-run set-up link when the database has no admin yet.

    `fresh` makes a new link and ends the ones shown before (`dogear setup-link`);
    gunicorn's start-up hook passes False, so every host shows the same, current link.
    """
    from flask import url_for

    from app.auth.services import issue_setup_token

    token = issue_setup_token(fresh=fresh)
    if token is None:
        return None
    base = current_app.config["BASE_URL"].rstrip("/")
    with current_app.test_request_context():
        path = url_for("auth.setup", token=token)
    link = f"{base}{path}"
    banner = "=" * 72
    message = (
        f"\n{banner}\n  No admin yet. Open this one-time link to create the first admin:\n"
        f"  {link}\n{banner}"
    )
    current_app.logger.warning(message)
    return link


# --- sources: feeds and listing files (app/sources/) ---------------------------------

sources_cli = click.Group("sources", help="Feeds and listing files that fill the catalog.")


@sources_cli.command("add")
@click.argument("url")
@click.option("--name", default="", help="The source's name (default: the feed's title).")
@with_appcontext
def add_source_command(url: str, name: str) -> None:
    """Add a feed (or a page that names one, or a listing file) by its address."""
    from app.sources.common import SourceError
    from app.sources.services import add_source

    try:
        source, found = add_source(None, url, name=name)
    except SourceError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Added source {source.id} “{source.name}”. {found.describe()}")
    click.echo(f"The worker reads it next; or run `dogear sources refresh {source.id}`.")


@sources_cli.command("list")
@with_appcontext
def list_sources_command() -> None:
    """Every source with its refresh status."""
    from app.extensions import db
    from app.sources import queries
    from app.sources.services import refresh_state

    for source in db.session.scalars(queries.sources()):
        state = refresh_state(source)
        when = f"{source.last_success_at:%Y-%m-%d %H:%M}" if source.last_success_at else "never"
        click.echo(
            f"{source.id:>4}  {state:<10}  {source.name}  {source.url or '(no address)'}  "
            f"last success: {when}, posts: {source.posts_created} new, "
            f"{source.posts_updated} updated"
        )
        if state == "error":
            click.echo(f"      last error: {source.last_error}")


@sources_cli.command("refresh")
@click.argument("source_id", type=int, required=False)
@click.option("--all", "refresh_all", is_flag=True, help="Every source, due or not.")
@with_appcontext
def refresh_sources_command(source_id: int | None, refresh_all: bool) -> None:
    """Refresh one source, every source (--all), or those that are due (for cron)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Source
    from app.sources import refresh, schedule
    from app.sources.common import REFRESHABLE_KINDS

    if source_id is not None and refresh_all:
        raise click.UsageError("give a source id or --all, not both")
    if source_id is not None:
        if db.session.get(Source, source_id) is None:
            raise click.ClickException(f"no source with id {source_id}")
        ids = [source_id]
    elif refresh_all:
        ids = list(
            db.session.scalars(
                select(Source.id)
                .where(Source.kind.in_(REFRESHABLE_KINDS), Source.url.is_not(None))
                .order_by(Source.id)
            )
        )
    else:
        ids = schedule.reserve_due_sources()
    failed = 0
    for each in ids:
        name = db.session.get(Source, each).name
        outcome = refresh.refresh_source(each)
        if outcome.result == "updated":
            text = f"{outcome.created} new, {outcome.updated} updated"
        elif outcome.result == "not_modified":
            text = "not modified"
        elif outcome.result == "skipped":
            text = "skipped (another worker is refreshing it)"
        else:
            failed += 1
            text = f"failed: {outcome.message}"
        click.echo(f"{each:>4}  {name}: {text}")
    if not ids:
        click.echo("No source is due.")
    if failed:
        raise SystemExit(1)


# --- imports and exports (app/imports/) -----------------------------------------------


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--user", "email", required=True, help="The reader whose list gets it.")
@click.option("--dry-run", is_flag=True, help="Print the preview as JSON; write nothing.")
@click.option(
    "--update", is_flag=True, help="Update entries already on the list (default: leave them)."
)
@with_appcontext
def import_command(path: str, email: str, dry_run: bool, update: bool) -> None:
    """Import a Pocket, Instapaper, Omnivore, bookmarks, Readwise or Dogear export
    into a reader's list, here and now (no worker needed); prints the result as JSON."""
    from app.auth.services import find_user_by_email
    from app.extensions import db
    from app.imports import UnreadableFile, commit, services
    from app.imports.preview import preview
    from app.models import JobRun

    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no account with the address {email}")
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error}") from error
    name = "<stdin>" if path == "-" else path.rsplit("/", 1)[-1]
    try:
        if dry_run:
            found = preview(user, data, name)
            click.echo(json.dumps(found.to_dict(), ensure_ascii=False, indent=2))
            return
        upload, _ = services.store_upload(user, name, data)
    except UnreadableFile as error:
        raise click.ClickException(str(error)) from error
    run = services.start_import(user, upload.id, "update" if update else "skip", enqueue=False)
    commit.run_import(run.id)
    run = db.session.get(JobRun, run.id)
    db.session.refresh(run)
    result = {"run": run.id, "status": run.status, "message": run.message, "total": run.total}
    click.echo(json.dumps({**result, **services.run_result(run)}, ensure_ascii=False))
    if run.status != "done":
        sys.exit(1)


@click.command("export")
@click.option("--user", "email", required=True, help="The reader whose list to write.")
@click.option(
    "--format",
    "kind",
    type=click.Choice(["json", "csv", "html"]),
    default="json",
    show_default=True,
)
@with_appcontext
def export_command(email: str, kind: str) -> None:
    """Write a reader's whole list to stdout: Dogear JSON, CSV or bookmark HTML."""
    from app.auth.services import find_user_by_email
    from app.imports import exports

    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no account with the address {email}")
    writer = {"json": exports.export_json, "csv": exports.export_csv, "html": exports.export_html}
    for piece in writer[kind](user):
        click.echo(piece, nl=False)


def register(app: Flask) -> None:
    from app.backup import backup_command, restore_command
    from app.dbcopy import copy_database_command
    from app.search.tasks import search_cli

    app.cli.add_command(posts_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(sources_cli)
    app.cli.add_command(setup_link_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(import_command)
    app.cli.add_command(export_command)
    app.cli.add_command(copy_database_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(search_cli)


if __name__ == "__main__":  # `python -m app.cli`, used by `dogear serve`
    main()

"""The `dogear` command: the Flask CLI bound to this app, plus admin tasks."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext


def _create_app() -> Flask:
    from app import create_app

    return create_app()


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
    """Import listing files (or - for stdin) in one transaction."""
    from app.catalog.importer import import_listings

    files = []
    for path in paths:
        if path == "-":
            files.append(("<stdin>", sys.stdin.read()))
            continue
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                files.append((path, fh.read()))
        except (OSError, UnicodeDecodeError) as error:
            raise click.ClickException(f"cannot read {path}: {error}") from error
    report = import_listings(files, source_name=source_name)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(
        f"created: {report.created}, duplicates: {report.duplicates}, errors: {len(report.errors)}"
    )
    for error in report.errors:
        click.echo(f"{error.file}:{error.line}: {error.reason}", err=True)


@posts_cli.command("load-demo")
@with_appcontext
def load_demo_command() -> None:
    """Load the demo catalog into an empty database (unless DOGEAR_DEMO=0)."""
    from app.catalog.importer import load_demo

    report = load_demo()
    if report is not None:
        click.echo(f"Demo catalog loaded: {report.created} posts.")


@users_cli.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the account an admin.")
@with_appcontext
def create_user_command(email: str, admin: bool) -> None:
    """Create an account; the password is prompted for, or read from stdin."""
    from app.auth.forms import MAX_PASSWORD, MIN_PASSWORD
    from app.auth.services import AccountError, create_user

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


@click.command("setup-link")
@with_appcontext
def setup_link_command() -> None:
    """Print a fresh one-time link that creates the first admin (while there is none)."""
    link = announce_setup_link()
    if link is None:
        click.echo("An admin exists already; sign in at /login.")


def announce_setup_link() -> str | None:
    """Log the first-run set-up link when the database has no admin yet."""
    from flask import url_for

    from app.auth.services import issue_setup_token

    token = issue_setup_token()
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


def register(app: Flask) -> None:
    app.cli.add_command(posts_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(setup_link_command)

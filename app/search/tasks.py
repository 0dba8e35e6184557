"""Background work of search: keeping the impact-ordered lists current."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from huey import crontab

from app.jobs import periodic
from app.search import impacts


@periodic(crontab(minute="*/5"))
def refresh_impacts() -> int:
    """Every five minutes, when posts changed since the lists were built: rebuild them
    (SQLite; a no-op elsewhere). Searches stay exact meanwhile, only slower."""
    if impacts.pending_changes() == 0:
        return 0
    return impacts.rebuild()


@click.group("search", help="Maintain the search index.")
def search_cli() -> None:
    pass


@search_cli.command("rebuild")
@with_appcontext
def rebuild_command() -> None:
    """Rebuild the impact-ordered lists of frequent words now (SQLite)."""
    count = impacts.rebuild()
    click.echo(f"{count} word lists built.")

"""The `dogear` command a self-hoster uses: import, users, first-run link."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.auth.services import setup_token_is_valid
from app.extensions import db
from app.models import Post, User
from tests.conftest import SEEDS


def _run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_import_both_seed_files_gives_17_posts_then_none(app):
    files = sorted(str(path) for path in SEEDS.glob("*.txt"))
    first = _run(app, "posts", "import", *files, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report == {"created": 17, "duplicates": 3, "errors": []}
    assert db.session.scalar(select(func.count()).select_from(Post)) == 17

    again = json.loads(_run(app, "posts", "import", *files, "--json").output)
    assert again["created"] == 0 and again["duplicates"] == 20
    assert db.session.scalar(select(func.count()).select_from(Post)) == 17


def test_import_from_stdin_reports_bad_entries_with_line_numbers(app):
    listing = (
        "A fine post\n\nIt is fine.\n\nMay 1, 2026 · 3 min · 600 words · Ann\n\n"
        "A broken post\n\nIts date is impossible.\n\nFebruary 30, 2026 · 3 min · 600 words · Ann\n"
    )
    result = _run(app, "posts", "import", "-", "--json", input=listing)
    report = json.loads(result.output)
    assert report["created"] == 1
    assert [(e["file"], e["line"]) for e in report["errors"]] == [("<stdin>", 11)]


def test_import_of_a_missing_file_is_a_clear_error(app):
    result = _run(app, "posts", "import", "/nonexistent/listing.txt")
    assert result.exit_code != 0
    assert "cannot read /nonexistent/listing.txt" in result.output


def test_users_create_reads_the_password_from_stdin(app):
    result = _run(app, "users", "create", "Boss@Example.com", "--admin", input="a long password\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "boss@example.com"))
    assert user.is_admin
    short = _run(app, "users", "create", "x@example.com", input="short\n")
    assert short.exit_code != 0 and "at least 8 characters" in short.output
    taken = _run(app, "users", "create", "boss@example.com", input="a long password\n")
    assert taken.exit_code != 0 and "already exists" in taken.output


def test_setup_link_is_printed_until_an_admin_exists(app, caplog):
    result = _run(app, "setup-link")
    assert result.exit_code == 0
    link = next(line for line in caplog.text.splitlines() if "/setup/" in line).strip()
    token = link.rsplit("/", 1)[1]
    assert link.startswith("http://127.0.0.1:8000/setup/") and setup_token_is_valid(token)
    _run(app, "users", "create", "boss@example.com", "--admin", input="a long password\n")
    assert "An admin exists already" in _run(app, "setup-link").output


def test_load_demo_fills_an_empty_catalog_once(app):
    app.config["DEMO"] = True
    assert "Demo catalog loaded" in _run(app, "posts", "load-demo").output
    count = db.session.scalar(select(func.count()).select_from(Post))
    assert count >= 40
    _run(app, "posts", "load-demo")
    assert db.session.scalar(select(func.count()).select_from(Post)) == count

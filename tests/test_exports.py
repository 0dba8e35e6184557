"""Exports: Dogear JSON, CSV (formulas neutralised) and bookmark HTML; written as they
are read (memory doesn't grow with the list); only the reader's own entries."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime

from sqlalchemy import insert, select

from app.extensions import db
from app.imports import exports
from app.imports.formats import netscape
from app.lists import services as list_services
from app.models import Entry, Post, User, utcnow
from app.tags.services import add_tags
from tests.conftest import sign_in


def _download(client, kind: str):
    return client.get(f"/account/export.{kind}", buffered=True)


def _seed(user: User) -> dict[str, Entry]:
    """A small list with every state, tags, a note and hostile text."""
    first = list_services.add_article(user, "https://example.org/one", '=HYPERLINK("x")').entry
    add_tags(user, first.id, ["reading", "+plus"])
    second = list_services.add_article(
        user, "https://example.org/two", 'Quotes " and <tags>'
    ).entry
    list_services.update_progress(user, second.id, 40)
    third = list_services.add_article(user, "https://example.org/three").entry
    list_services.update_progress(user, third.id, 100)
    fourth = list_services.add_article(user, "https://example.org/four", "Put away").entry
    list_services.set_archived(user, fourth.id, True)
    entry = db.session.get(Entry, first.id)
    entry.note = "@mention, then\ta tab"
    db.session.commit()
    return {"one": first, "two": second, "three": third, "four": fourth}


def test_export_page_offers_three_downloads(client, reader):
    _seed(reader)
    page = client.get("/account/export").get_data(as_text=True)
    assert "4 entries and 2 tags" in page
    for kind in ("json", "csv", "html"):
        assert f'href="/account/export.{kind}"' in page


def test_json_export_has_everything_and_a_format_version(client, reader):
    _seed(reader)
    response = _download(client, "json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="dogear-')
    assert "Content-Length" not in response.headers  # streamed, not built whole
    document = json.loads(response.get_data())
    assert (document["format"], document["format_version"]) == ("dogear", 1)
    assert document["account"] == reader.email and document["tags"] == ["+plus", "reading"]
    by_url = {item["url"]: item for item in document["entries"]}
    one = by_url["https://example.org/one"]
    assert one["tags"] == ["+plus", "reading"] and one["note"] == "@mention, then\ta tab"
    assert one["post"]["in_catalog"] is False
    two = by_url["https://example.org/two"]
    assert (two["state"], two["progress"], two["resume_position"]) == ("reading", 40, 400)
    assert [a["to"] for a in two["activity"]] == [40]
    assert by_url["https://example.org/three"]["finished_at"].endswith("Z")
    assert by_url["https://example.org/four"]["state"] == "archived"
    assert document["activity"] == []


def test_csv_export_one_row_per_entry_and_no_formulas(client, reader):
    _seed(reader)
    response = _download(client, "csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 4
    by_url = {row["url"]: row for row in rows}
    one = by_url["https://example.org/one"]
    assert one["title"] == '\'=HYPERLINK("x")'
    assert one["tags"] == "'+plus, reading"
    assert one["note"] == "'@mention, then\ta tab"
    assert by_url["https://example.org/two"]["title"] == 'Quotes " and <tags>'
    assert by_url["https://example.org/two"]["progress"] == "40"
    # Dogear's own numbers stay numbers, even negative ones.
    positions = sorted(int(row["position"]) for row in rows)
    assert positions == [-3, -2, -1, 0]


def test_every_formula_start_is_neutralised():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert exports.safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert exports.safe_cell("plain") == "plain"
    assert exports.safe_cell(-5) == -5


def test_bookmark_export_reads_back_as_the_same_states(client, reader):
    _seed(reader)
    response = _download(client, "html")
    html = response.get_data(as_text=True)
    assert html.startswith("<!DOCTYPE NETSCAPE-Bookmark-file-1>")
    assert 'TOREAD="1"' in html and 'TOREAD="0"' in html
    assert "Quotes &quot; and &lt;tags&gt;" in html
    assert 'TAGS="+plus,reading"' in html
    rows = {row.url: row for row in netscape.parse(response.get_data())}
    assert rows["https://example.org/one"].state == "saved"
    assert rows["https://example.org/two"].state == "saved"  # still to read
    assert rows["https://example.org/three"].state == "done"
    assert rows["https://example.org/four"].state == "archived"
    assert rows["https://example.org/one"].note == "@mention, then\ta tab"
    assert rows["https://example.org/one"].tags == ["+plus", "reading"]
    assert rows["https://example.org/two"].title == 'Quotes " and <tags>'
    assert rows["https://example.org/three"].added_at is not None  # ADD_DATE


def test_exports_hold_only_the_reader_s_own_entries(client, make_user):
    other = make_user("other@example.com")
    _seed(other)
    me = make_user("me@example.com")
    list_services.add_article(me, "https://example.org/mine")
    sign_in(client, me)
    document = json.loads(_download(client, "json").get_data())
    assert [e["url"] for e in document["entries"]] == ["https://example.org/mine"]
    assert "example.org/one" not in _download(client, "csv").get_data(as_text=True)
    assert "example.org/one" not in _download(client, "html").get_data(as_text=True)


def test_cli_export_writes_to_stdout(app, make_user):
    user = make_user("cli@example.com")
    _seed(user)
    for kind, marker in (
        ("json", '"format_version": 1'),
        ("csv", "url,title,state"),
        ("html", "NETSCAPE"),
    ):
        result = app.test_cli_runner().invoke(
            args=["export", "--user", user.email, "--format", kind]
        )
        assert result.exit_code == 0, result.output
        assert marker in result.output
    missing = app.test_cli_runner().invoke(args=["export", "--user", "nobody@example.com"])
    assert missing.exit_code != 0 and "no account" in missing.output


def _bulk_list(user: User, count: int, start: int) -> None:
    """`count` catalog posts on the reader's list, inserted in bulk."""
    now = utcnow()
    db.session.execute(
        insert(Post),
        [
            {
                "title": f"Post {n} with a title of some length",
                "url": f"https://example.org/bulk/{n}",
                "dedupe_key": f"bulk-{n}",
                "summary": "A summary that takes some room. " * 3,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(start, start + count)
        ],
    )
    post_ids = db.session.scalars(
        select(Post.id).where(
            Post.dedupe_key.in_([f"bulk-{n}" for n in range(start, start + count)])
        )
    ).all()
    db.session.execute(
        insert(Entry),
        [
            {
                "user_id": user.id,
                "post_id": post_id,
                "position": i,
                "note": "A short note.",
                "added_at": datetime(2024, 1, 1),
                "touched_at": now,
            }
            for i, post_id in enumerate(post_ids)
        ],
    )
    db.session.commit()


def _peak(writer, user: User) -> tuple[int, int]:
    """Peak memory while writing the whole export (and its size), discarding pieces."""
    db.session.expire_all()
    tracemalloc.start()
    size = 0
    for piece in writer(user):
        size += len(piece)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, size


def test_export_memory_does_not_grow_with_the_list(app, make_user):
    small, large = make_user("small@example.com"), make_user("large@example.com")
    _bulk_list(small, 2_000, 0)
    _bulk_list(large, 20_000, 2_000)
    for writer in (exports.export_json, exports.export_csv, exports.export_html):
        _peak(writer, small)  # warm caches (compiled SQL, …)
        small_peak, small_size = _peak(writer, small)
        large_peak, large_size = _peak(writer, large)
        print(
            f"\n{writer.__name__}: 2,000 entries {small_size / 1e6:.1f} MB written, "
            f"peak {small_peak / 1e6:.2f} MB; 20,000 entries {large_size / 1e6:.1f} MB "
            f"written, peak {large_peak / 1e6:.2f} MB"
        )
        assert large_size > 9 * small_size
        assert large_peak < 2 * small_peak

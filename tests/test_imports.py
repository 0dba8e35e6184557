"""Imports: every format read from files written for these tests (tests/fixtures/
imports/), the preview's exact counts, the background commit (chunks, resume, undo
on failure), what lands on the list, the limits, the CLI, and privacy.

Zips are built here from the fixture folders, so what they hold stays readable."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.imports import UnreadableFile, commit, services
from app.imports.detect import UnknownFormat, detect
from app.imports.formats import check_url
from app.jobs import huey, pending_count, run_pending
from app.lists import services as list_services
from app.models import Activity, Entry, JobRun, Post, Tag, Upload, User, entry_tags, utcnow
from app.tags.services import add_tags
from app.urls import InvalidURL
from tests.conftest import sign_in

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


def zipped(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def pocket_zip() -> bytes:
    return zipped(FIXTURES / "pocket")


def omnivore_zip() -> bytes:
    return zipped(FIXTURES / "omnivore", prefix="omnivore-export/")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def import_now(user: User, data: bytes, existing: str = "skip", name: str = "f") -> JobRun:
    """Preview, confirm and run an import here and now (as `dogear import` does)."""
    upload, _ = services.store_upload(user, name, data)
    run = services.start_import(user, upload.id, existing, enqueue=False)
    services.run_import(run.id)
    db.session.expire_all()
    return db.session.get(JobRun, run.id)


def entries_by_url(user: User) -> dict[str, Entry]:
    rows = db.session.scalars(select(Entry).join(Entry.post).where(Entry.user_id == user.id))
    return {entry.post.url: entry for entry in rows}


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def upload_file(client, data: bytes, name: str = "export.zip", *, htmx: bool = False):
    return client.submit(
        "/account/import", {"file": (io.BytesIO(data), name)}, htmx=htmx,
        content_type="multipart/form-data",
    )  # fmt: skip


# --- recognising files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (pocket_zip(), "pocket-zip"),
        ((FIXTURES / "pocket" / "part_000000.csv").read_bytes(), "pocket-csv"),
        ((FIXTURES / "pocket" / "part_000001.csv").read_bytes(), "pocket-csv"),
        (fixture("pocket.html"), "pocket-html"),
        (fixture("instapaper.csv"), "instapaper"),
        (fixture("instapaper_old.csv"), "instapaper"),
        (omnivore_zip(), "omnivore"),
        (fixture("bookmarks_firefox.html"), "netscape"),
        (fixture("linkding.html"), "netscape"),
        (fixture("readwise.csv"), "readwise"),
        (b'{"format": "dogear", "format_version": 1, "entries": []}', "dogear-json"),
        (b'{"entries": [], "format": "dogear", "format_version": 1}', "dogear-json"),
        (b'[{"url": "https://example.org/", "savedAt": "2024-01-01"}]', "omnivore-json"),
    ],
)
def test_the_format_is_recognised_from_the_file_itself(app, data, name):
    assert detect(data).name == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some words\nand more words\n", "It reads a Pocket export"),
        (b"<html><body><p>A page</p></body></html>", "isn't a bookmarks file"),
        (b'{"hello": "world"}', "isn't a Dogear or Omnivore export"),
        (b"PK\x03\x04 broken zip", "damaged"),
        (zipped(FIXTURES / "omnivore" / "content"), "neither a Pocket nor an Omnivore"),
        (b"name,address\nx,https://example.org\n", "Instapaper CSV"),
    ],
)
def test_an_unknown_file_says_which_formats_are_accepted(app, data, message):
    with pytest.raises(UnreadableFile) as raised:
        detect(data)
    assert message in str(raised.value)


def test_an_unknown_format_lists_every_accepted_one(app):
    text = str(UnknownFormat())
    words = ("Pocket", "Instapaper", "Omnivore", "bookmarks", "linkding", "Readwise", "Dogear")
    assert all(word in text for word in words)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("javascript:alert(1)", "this one is javascript:"),
        ("data:text/html,hi", "this one is data:"),
        ("ftp://example.org/x", "this one is ftp:"),
        ("place:parent=toolbar", "this one is place:"),
        ("/relative/path", "isn't a full web address"),
        ("example.org/no-scheme", "isn't a full web address"),
        ("", "no address"),
        ("https://exa mple.org/", "spaces"),
    ],
)
def test_addresses_that_are_not_http_are_refused_with_the_reason(raw, reason):
    with pytest.raises(InvalidURL) as raised:
        check_url(raw)
    assert reason in str(raised.value)


def test_a_legacy_encoding_is_decoded_and_utf16_with_a_bom_too(app):
    latin = (
        "title,url,time_added,tags,status\nCafé crème,https://example.org/c,1700000000,,unread\n"
    )
    for data in (latin.encode("cp1252"), b"\xff\xfe" + latin.encode("utf-16-le")):
        rows = list(detect(data).parse(data))
        assert rows[0].title == "Café crème"


# --- the preview ---------------------------------------------------------------------------


def test_pocket_zip_preview_counts_are_exact(app, make_user):
    user = make_user()
    result = services.preview(user, pocket_zip(), "pocket.zip")
    assert result.label == "Pocket export (.zip)"
    # 12 rows in three parts: 3 refused (javascript:, relative, data:), 1 repeats an
    # address of an earlier part, 8 distinct pages remain.
    assert (result.new, result.existing, result.problems, result.duplicates) == (8, 0, 3, 1)
    assert result.states == {"saved": 4, "reading": 0, "done": 4, "archived": 0}
    assert result.warnings == 2  # no date, a date that isn't one
    assert [p["where"] for p in result.sample_problems] == [
        "part_000000.csv line 7",
        "part_000001.csv line 3",
        "part_000001.csv line 4",
    ]
    assert "javascript:" in result.sample_problems[0]["reason"]
    assert "data:" in result.sample_problems[2]["reason"]
    assert len(result.sample_new) == services.SAMPLE
    warned = {w["title"]: w["reason"] for w in result.sample_warnings}
    assert "no save date" in warned["No date at all"]
    assert "“yesterday” isn't a date" in warned["Broken date"]
    assert count(Entry) == 0 and count(Upload) == 0  # a preview writes nothing


def test_preview_counts_pages_already_on_the_list(app, make_user):
    user = make_user()
    list_services.add_article(user, "https://example.net/plain")
    list_services.add_article(user, "https://example.com/last")
    result = services.preview(user, pocket_zip())
    assert (result.new, result.existing) == (6, 2)
    assert {row["current"] for row in result.sample_existing} == {"Up next"}


def test_upload_shows_the_preview_page_and_keeps_the_file(client, reader):
    response = upload_file(client, pocket_zip(), "pocket.zip")
    assert response.status_code == 303
    upload = db.session.scalar(select(Upload))
    assert response.location == f"/account/import/{upload.id}"
    assert upload.user_id == reader.id and upload.format == "pocket-zip"
    assert b"".join(commit.stored_pieces(upload.id)) == pocket_zip()
    page = client.get(response.location).get_data(as_text=True)
    assert "Pocket export (.zip)" in page
    assert "part_000000.csv line 7" in page and "javascript:" in page
    assert "Import 8 entries" in page
    # HTML in a title is text: shown escaped, never run.
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert count(Entry) == 0


def test_upload_with_htmx_redirects_to_the_preview(client, reader):
    response = upload_file(client, fixture("instapaper.csv"), "instapaper.csv", htmx=True)
    upload = db.session.scalar(select(Upload))
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/account/import/{upload.id}"


@pytest.mark.parametrize("htmx", [False, True])
def test_an_unreadable_file_is_refused_inline_and_nothing_is_written(client, reader, htmx):
    response = upload_file(client, b"these are not the droids", "notes.txt", htmx=htmx)
    html = unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "Dogear doesn't recognise this file" in html and "Readwise" in html
    assert 'id="import-upload"' in html
    assert ("<html" in html) is not htmx
    assert "HX-Request" in response.headers["Vary"]
    assert count(Upload) == 0 and count(Entry) == 0


def test_no_file_chosen_is_a_422(client, reader):
    response = client.submit("/account/import", {}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose the file" in response.get_data(as_text=True)


def test_a_file_over_the_limit_is_a_413_with_the_limit(client, reader, app):
    app.config["IMPORT_MAX_BYTES"] = 1_000
    response = upload_file(client, fixture("bookmarks_firefox.html") * 2, "big.html")
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "too large" in html and "1,000 bytes" in html
    assert count(Upload) == 0


def test_a_request_over_max_content_length_is_a_413_before_it_is_read(client, reader, app):
    app.config["MAX_CONTENT_LENGTH"] = 2_000
    response = upload_file(client, b"x" * 5_000, "big.csv")
    assert response.status_code == 413
    assert "Dogear imports files up to 50 MB" in response.get_data(as_text=True)
    assert count(Upload) == 0


def test_max_content_length_follows_the_import_limit(app):
    assert app.config["IMPORT_MAX_BYTES"] == 50_000_000
    assert app.config["IMPORT_MAX_ENTRIES"] == 100_000
    assert 50_000_000 < app.config["MAX_CONTENT_LENGTH"] <= 52_000_000


def test_a_file_with_too_many_entries_is_refused(client, reader, app):
    app.config["IMPORT_MAX_ENTRIES"] = 5
    response = upload_file(client, pocket_zip(), "pocket.zip")
    assert response.status_code == 422
    assert "more than 5 entries" in response.get_data(as_text=True)
    assert count(Upload) == 0


def test_upload_without_a_csrf_token_is_refused(client, reader):
    response = client.post(
        "/account/import",
        data={"file": (io.BytesIO(pocket_zip()), "pocket.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert count(Upload) == 0


def test_a_dogear_export_of_another_version_says_so(client, reader):
    data = b'{"format": "dogear", "format_version": 7, "entries": []}'
    response = upload_file(client, data, "dogear.json")
    assert response.status_code == 422
    assert "format version 7" in response.get_data(as_text=True)


def test_a_new_upload_replaces_one_never_confirmed(client, reader):
    upload_file(client, pocket_zip())
    upload_file(client, fixture("readwise.csv"), "readwise.csv")
    assert [u.format for u in db.session.scalars(select(Upload))] == ["readwise"]


# --- confirming and the progress page --------------------------------------------------------


def test_confirm_runs_the_import_in_the_background_with_progress(client, reader):
    location = upload_file(client, pocket_zip()).location
    response = client.submit(location, {"existing": "skip"})
    run = db.session.scalar(select(JobRun))
    assert response.status_code == 303
    assert response.location == f"/account/import/runs/{run.id}"
    assert (run.kind, run.status, run.created_by_id) == ("import", "queued", reader.id)
    assert count(Entry) == 0  # nothing until the worker runs it

    page = client.get(response.location)
    html = page.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in html and "Waiting to start" in html
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
    fragment = client.htmx_get(response.location)
    assert 'id="import-run"' in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]

    assert run_pending(limit=1) == 1
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.done, run.total) == ("done", 8, 8)
    assert count(Upload) == 0  # the file goes once it is imported
    done = client.htmx_get(response.location).get_data(as_text=True)
    assert "Import finished" in done and "every 1s" not in done
    assert 'id="import-announce"' in done and "hx-swap-oob" in done
    assert "Imported 8 new entries." in done
    assert "refresh" not in client.get(response.location).get_data(as_text=True).split("<body")[0]
    listed = client.get("/list").get_data(as_text=True)
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &lt;b&gt;Fancy&lt;/b&gt; title" in listed
    )
    assert "<script>alert" not in listed


def test_the_worker_s_periodic_tasks_resume_imports_and_forget_old_uploads(app, make_user):
    from app.imports import tasks

    user = make_user()
    upload, _ = services.store_upload(user, "pocket.zip", pocket_zip())
    run = services.start_import(user, upload.id, "skip", enqueue=False)
    db.session.execute(
        JobRun.__table__.update().values(created_at=utcnow() - timedelta(minutes=10))
    )
    unconfirmed, _ = services.store_upload(make_user(), "r.csv", fixture("readwise.csv"))
    db.session.execute(
        Upload.__table__.update()
        .where(Upload.id == unconfirmed.id)
        .values(created_at=utcnow() - timedelta(days=2))
    )
    db.session.commit()
    assert tasks.resume_stalled_imports.call_local() == 1  # queued again …
    assert run_pending() >= 1  # … and run by the worker (its fetches wait their turn)
    db.session.expire_all()
    assert db.session.get(JobRun, run.id).status == "done"
    assert tasks.forget_unconfirmed_uploads.call_local() == 1
    db.session.rollback()  # the task ran in an app context (and session) of its own
    assert count(Upload) == 0


def test_confirm_with_htmx_redirects_and_twice_starts_one_import(client, reader):
    location = upload_file(client, pocket_zip()).location
    first = client.submit(location, {"existing": "skip"}, htmx=True)
    second = client.submit(location, {"existing": "skip"}, htmx=True)
    assert first.headers["HX-Redirect"] == second.headers["HX-Redirect"]
    assert count(JobRun) == 1
    assert client.get(location).location == first.headers["HX-Redirect"]


def test_confirm_with_an_invalid_choice_is_a_422(client, reader):
    list_services.add_article(reader, "https://example.com/last")
    location = upload_file(client, pocket_zip()).location
    response = client.submit(location, {"existing": "overwrite-everything"}, htmx=True)
    assert response.status_code == 422
    assert 'id="import-confirm"' in response.get_data(as_text=True)
    assert count(JobRun) == 0


def test_discard_forgets_the_file(client, reader):
    location = upload_file(client, pocket_zip()).location
    response = client.submit(location + "/discard")
    assert response.status_code == 303 and response.location == "/account/import"
    assert count(Upload) == 0
    assert "Nothing was imported" in client.get("/account/import").get_data(as_text=True)


def test_import_page_lists_formats_and_recent_imports(client, reader):
    page = client.get("/account/import").get_data(as_text=True)
    for word in ("Pocket", "Instapaper", "Omnivore", "linkding", "Readwise", "Dogear"):
        assert word in page
    assert 'enctype="multipart/form-data"' in page
    import_now(reader, pocket_zip())
    assert "Imported 8 new entries" in client.get("/account/import").get_data(as_text=True)
    account = client.get("/account").get_data(as_text=True)
    assert 'href="/account/import"' in account and 'href="/account/export"' in account


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in ("/account/import", "/account/export", "/account/export.json"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.location


# --- what lands on the list, per format ------------------------------------------------------


def test_pocket_zip_lands_with_states_dates_tags_and_queue_order(app, make_user):
    user = make_user()
    before = utcnow()
    run = import_now(user, pocket_zip())
    assert (run.status, run.done, run.total) == ("done", 8, 8)
    entries = entries_by_url(user)
    assert len(entries) == 8
    harbours = entries["https://tidewater.example/harbours"]
    # Two rows, one page: as far along as either, saved on the earlier date, every tag.
    assert (harbours.state, harbours.progress) == ("done", 100)
    assert harbours.added_at == datetime(2020, 9, 13, 12, 26, 40)
    assert [t.name for t in harbours.tags] == ["pocket-tag", "sea", "travel"]
    assert harbours.title == "Quiet harbours, and the boats that leave them"
    multiline = entries["https://example.org/multiline"]
    assert multiline.title == 'A title with a "quote" and a line break'
    assert (multiline.state, multiline.finished_at) == ("done", None)
    brucke = entries["https://example.de/br%C3%BCcke"]
    assert brucke.title == "Über die Brücke — Ünïcödé"
    assert [t.name for t in brucke.tags] == ["deutsch"]  # lower-cased
    assert entries["https://example.org/script"].title.startswith("<script>")
    assert entries["https://example.org/nodate"].added_at >= before
    assert entries["https://example.net/plain"].state == "saved"
    assert {e.import_run_id for e in entries.values()} == {run.id}
    # The saved list follows the original save dates (undated ones last).
    up_next = [
        e.post.url
        for e in sorted(entries.values(), key=lambda e: e.position)
        if e.state == "saved"
    ]
    assert up_next == [
        "https://example.de/br%C3%BCcke",
        "https://example.org/script",
        "https://example.net/plain",
        "https://example.org/nodate",
    ]


def test_pocket_html_export(app, make_user):
    user = make_user()
    import_now(user, fixture("pocket.html"))
    entries = entries_by_url(user)
    assert set(entries) == {
        "https://example.org/unread-one",
        "https://example.org/no-title",
        "https://example.org/read-one",
    }
    unread = entries["https://example.org/unread-one"]
    assert (unread.state, unread.title) == ("saved", "Unread one & more")
    assert [t.name for t in unread.tags] == ["async", "python"]
    assert unread.added_at == datetime(2023, 7, 22, 4, 26, 40)
    assert entries["https://example.org/read-one"].state == "done"
    assert entries["https://example.org/no-title"].title == ""


def test_instapaper_folders_stars_and_selections(app, make_user):
    user = make_user()
    result = services.preview(user, fixture("instapaper.csv"))
    assert (result.new, result.problems, result.warnings) == (5, 1, 1)
    import_now(user, fixture("instapaper.csv"))
    entries = entries_by_url(user)
    tags = {url: [t.name for t in e.tags] for url, e in entries.items()}
    assert entries["https://example.org/i1"].state == "saved"
    archived = entries["https://example.org/i2"]
    assert (archived.state, archived.progress) == ("done", 100)
    assert archived.note == 'A highlighted, "quoted" passage'
    assert tags["https://example.org/i2"] == ["history"]
    assert (entries["https://example.org/i3"].state, tags["https://example.org/i3"]) == (
        "saved",
        ["starred"],
    )
    assert tags["https://example.org/i4"] == ["food", "recipes", "weekend"]
    assert entries["https://example.org/i4"].added_at == datetime(2022, 4, 15, 5, 25)


def test_instapaper_older_export_without_timestamps(app, make_user):
    user = make_user()
    result = services.preview(user, fixture("instapaper_old.csv"))
    assert (result.new, result.warnings) == (2, 2)
    import_now(user, fixture("instapaper_old.csv"))
    entries = entries_by_url(user)
    assert entries["https://example.org/old2"].state == "done"
    assert entries["https://example.org/old2"].note == "Some words"


def test_omnivore_zip_keeps_progress_labels_highlights_and_the_article(app, make_user):
    user = make_user()
    result = services.preview(user, omnivore_zip())
    assert (result.new, result.problems, result.with_content) == (2, 2, 1)
    assert {p["reason"] for p in result.sample_problems} >= {"Deleted in Omnivore."}
    import_now(user, omnivore_zip())
    entries = entries_by_url(user)
    slow = entries["https://example.org/slow-reading"]
    assert (slow.state, slow.progress, slow.resume_position) == ("reading", 40, 400)
    assert slow.added_at == datetime(2024, 2, 3, 10, 15)
    assert slow.touched_at == datetime(2024, 2, 5, 18, 0)
    assert [t.name for t in slow.tags] == ["long reads", "research"]
    assert "Highlights" in slow.note and "Reading slowly is not the same" in slow.note
    post = slow.post
    assert (post.owner_id, post.fetch_state, post.content_kind) == (user.id, "done", "article")
    assert post.title == "Notes on slow reading" and post.author == "Ada Writer"
    assert post.published_on.isoformat() == "2024-01-30"
    assert post.summary == "Why reading slowly is a skill worth keeping."
    assert "<script" not in post.content and "onclick" not in post.content
    assert "<img" not in post.content and "Image: a chart" in post.content
    assert 'href="https://example.org/elsewhere"' in post.content
    assert "Reading slowly" in post.content_text and post.word_count > 50
    archived = entries["https://example.org/archived-piece"]
    assert (archived.state, archived.finished_at) == ("done", datetime(2023, 11, 22, 9, 30))
    assert archived.post.fetch_state == "pending"


def test_browser_bookmarks_folders_become_tags(app, make_user):
    user = make_user()
    result = services.preview(user, fixture("bookmarks_firefox.html"))
    assert (result.new, result.problems) == (4, 1)
    assert "place:" in result.sample_problems[0]["reason"]
    import_now(user, fixture("bookmarks_firefox.html"))
    entries = entries_by_url(user)
    tags = {url: [t.name for t in e.tags] for url, e in entries.items()}
    assert tags["https://example.org/b1"] == ["essays", "longform", "reading"]
    assert tags["https://example.org/b2"] == ["reading", "rust"]
    assert tags["https://example.org/b3"] == []  # the toolbar is not a tag
    assert all(e.state == "saved" for e in entries.values())  # bookmarks are to read
    b1 = entries["https://example.org/b1"]
    assert b1.note == "My own description, with <angle brackets>."
    assert b1.added_at == datetime(2021, 1, 7, 6, 13, 20)
    assert b1.touched_at == datetime(2021, 1, 7, 6, 21, 40)


def test_linkding_read_unread_archived_and_notes(app, make_user):
    user = make_user()
    import_now(user, fixture("linkding.html"))
    entries = entries_by_url(user)
    unread = entries["https://example.org/l1"]
    assert unread.state == "saved"
    assert unread.note == "A description\n\nMy note\non two lines"
    assert [t.name for t in unread.tags] == ["django", "web"]
    assert entries["https://example.org/l2"].state == "done"
    archived = entries["https://example.org/l3"]
    assert (archived.state, archived.progress) == ("archived", 100)
    assert [t.name for t in archived.tags] == ["old"]


def test_readwise_progress_and_locations(app, make_user):
    user = make_user()
    result = services.preview(user, fixture("readwise.csv"))
    assert (result.new, result.problems, result.warnings) == (4, 1, 1)
    assert "feed item" in result.sample_problems[0]["reason"]
    import_now(user, fixture("readwise.csv"))
    entries = entries_by_url(user)
    half = entries["https://example.org/r1"]
    assert (half.state, half.progress) == ("reading", 35)
    assert half.added_at == datetime(2023, 5, 14, 10, 22, 11)
    assert [t.name for t in half.tags] == ["ml", "papers"]
    assert entries["https://example.org/r2"].state == "done"
    assert entries["https://example.org/r3"].state == "saved"
    assert [t.name for t in entries["https://example.org/r5"].tags] == ["fav", "shortlist"]


# --- posts: catalog, private, shared, fetched politely -----------------------------------------


def test_catalog_posts_are_linked_and_new_pages_become_private_posts(app, make_user, make_post):
    catalog = make_post(url="https://example.org/i1", title="The catalog's own title")
    other = make_user()
    shared = list_services.add_article(other, "https://example.org/i3").entry.post_id
    user = make_user()
    import_now(user, fixture("instapaper.csv"))
    entries = entries_by_url(user)
    assert entries["https://example.org/i1"].post_id == catalog.id
    assert entries["https://example.org/i3"].post_id == shared  # one post per address
    own = entries["https://example.org/i2"].post
    assert own.owner_id == user.id and own.title == "example.org/i2"  # until it is fetched
    assert entries["https://example.org/i2"].title == "Archived thing"  # the reader's own
    assert count(Post, Post.url == "https://example.org/i3") == 1
    # The other reader sees none of this reader's titles, notes or tags.
    mine = {e.post_id for e in entries.values()}
    theirs = db.session.scalars(select(Entry).where(Entry.user_id == other.id)).all()
    assert [e.title for e in theirs] == [""]
    assert count(Tag, Tag.user_id == other.id) == 0
    assert shared in mine


def test_new_pages_are_fetched_later_one_after_another(app, make_user, make_post):
    make_post(url="https://example.org/i1")  # a catalog post without an article yet
    user = make_user()
    before = utcnow()
    import_now(user, fixture("instapaper.csv"))
    pending = db.session.scalars(
        select(Post).where(Post.fetch_state == "pending").order_by(Post.fetch_claimed_at)
    ).all()
    assert len(pending) == 5
    lease = timedelta(seconds=app.config["FETCH_LEASE_SECONDS"] + 1)
    turns = [round((p.fetch_claimed_at + lease - before).total_seconds()) for p in pending]
    assert turns == [2, 4, 6, 8, 10]  # IMPORT_FETCH_INTERVAL apart
    # Pages still to read come first; the one already read (Archive) last.
    assert pending[-1].url == "https://example.org/i2"
    queued = sorted(
        (task.args[0], task.eta) for task in huey.pending() if task.name.endswith("fetch_article")
    )
    assert len(queued) == 5 and all(eta is not None for _, eta in queued)
    assert pending_count() == 5
    # None of them runs now: the queue holds them until their turn.
    run_pending()
    assert count(Post, Post.fetch_state == "pending") == 5


def test_stall_sweeper_leaves_an_import_s_later_fetches_alone(app, make_user):
    from app.catalog import fetch

    app.config["IMPORT_FETCH_INTERVAL"] = 60
    user = make_user()
    import_now(user, fixture("instapaper.csv"))
    lease = timedelta(seconds=app.config["FETCH_LEASE_SECONDS"])
    assert fetch.stalled_fetches(timedelta(seconds=0), lease) == []


# --- existing entries: left alone or updated -------------------------------------------------


def test_entries_already_listed_are_left_alone_by_default(app, make_user):
    user = make_user()
    entry = list_services.add_article(user, "https://example.org/i2").entry
    list_services.update_progress(user, entry.id, 30)
    run = import_now(user, fixture("instapaper.csv"))
    db.session.refresh(entry)
    assert (entry.state, entry.progress, entry.note) == ("reading", 30, "")
    assert entry.import_run_id is None
    assert "left 1 already on your list as they were" in run.message


def test_entries_already_listed_are_updated_when_the_reader_says_so(app, make_user):
    user = make_user()
    entry = list_services.add_article(user, "https://example.org/i2", "My title").entry
    add_tags(user, entry.id, ["mine"])
    run = import_now(user, fixture("instapaper.csv"), existing="update")
    db.session.expire_all()
    entry = db.session.get(Entry, entry.id)
    assert (entry.state, entry.progress) == ("done", 100)
    assert entry.note == 'A highlighted, "quoted" passage'
    assert entry.title == "Archived thing"
    assert entry.added_at == datetime(2022, 4, 15, 5, 21, 40)  # the earlier date
    assert [t.name for t in entry.tags] == ["history", "mine"]  # added, never replaced
    assert entry.import_run_id is None  # not made by the import
    assert "updated 1 already on your list" in run.message


# --- all or nothing ----------------------------------------------------------------------------


def _account(user: User) -> dict[str, Any]:
    """Everything of the reader's an import could touch, to compare before and after."""
    db.session.expire_all()
    columns = [c for c in Entry.__table__.columns]
    return {
        "entries": sorted(
            db.session.execute(select(*columns).where(Entry.user_id == user.id)).all()
        ),
        "tags": sorted(db.session.execute(select(Tag.id, Tag.name).where(Tag.user_id == user.id))),
        "entry_tags": sorted(db.session.execute(select(entry_tags)).all()),
        "posts": sorted(db.session.scalars(select(Post.id))),
        "activity": sorted(
            db.session.execute(
                select(Activity.id, Activity.post_id, Activity.at, Activity.progress_to)
            ).all()
        ),
    }


def test_a_failure_mid_import_leaves_the_account_exactly_as_before(app, make_user, monkeypatch):
    user = make_user()
    kept = list_services.add_article(user, "https://example.org/l2", "Keep me").entry
    list_services.update_progress(user, kept.id, 20)
    add_tags(user, kept.id, ["django", "untouched"])
    list_services.add_article(user, "https://example.org/unrelated")
    before = _account(user)

    monkeypatch.setattr(commit, "CHUNK_SIZE", 1)
    real = commit._apply_chunk
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the disk is full")
        return real(*args, **kwargs)

    monkeypatch.setattr(commit, "_apply_chunk", failing)
    run = import_now(user, fixture("linkding.html"), existing="update")
    assert calls["n"] == 3  # two chunks had landed (one of them updated "Keep me")
    assert run.status == "failed"
    assert "undone" in run.message and run.finished_at is not None
    assert _account(user) == before
    assert count(Upload) == 0


def test_a_job_a_dead_worker_dropped_resumes_without_duplicates(app, make_user, monkeypatch):
    user = make_user()
    monkeypatch.setattr(commit, "CHUNK_SIZE", 2)
    real = commit._commit_chunk
    calls = {"n": 0}

    class WorkerKilled(BaseException):
        """Not an Exception: like SIGKILL, nothing gets to clean up."""

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise WorkerKilled
        return real(*args, **kwargs)

    monkeypatch.setattr(commit, "_commit_chunk", dying)
    upload, _ = services.store_upload(user, "pocket.zip", pocket_zip())
    run = services.start_import(user, upload.id, "skip", enqueue=False)
    with pytest.raises(WorkerKilled):
        services.run_import(run.id)
    db.session.rollback()
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.done) == ("running", 4)
    assert count(Entry, Entry.user_id == user.id) == 4
    # The sweeper finds it once its heartbeat is old enough, and the job resumes.
    assert services.stalled_runs(timedelta(minutes=5)) == []
    assert services.stalled_runs(timedelta(seconds=-1)) == [run.id]
    monkeypatch.setattr(commit, "_commit_chunk", real)
    assert services.run_import(run.id) == "done"
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.done, run.total) == ("done", 8, 8)
    assert count(Entry, Entry.user_id == user.id) == 8
    assert len({e.position for e in entries_by_url(user).values()}) == 8
    assert services.run_import(run.id) == "skipped"  # done is done


# --- Dogear JSON: a round trip -------------------------------------------------------------------


def test_dogear_json_round_trip_into_an_empty_account_is_exact(client, app, make_user, make_post):
    source = make_user("mover@example.com")
    listing = make_post(title="A catalog post without an address", url=None)
    catalog = make_post(title="A catalog post", url="https://example.org/catalog")
    gone = make_post(title="Read and removed", url="https://example.org/gone")
    saved = list_services.add_article(source, "https://example.org/a", "Title of mine").entry
    add_tags(source, saved.id, ["zeta", "Ünïcode tag"])
    reading = list_services.save_post(source, listing.id)
    list_services.update_progress(source, reading.id, 35)
    list_services.record_reading(source, reading.id, 310)
    done = list_services.save_post(source, catalog.id)
    list_services.update_progress(source, done.id, 60)
    list_services.update_progress(source, done.id, 100)
    archived = list_services.add_article(source, "https://example.org/b").entry
    list_services.update_progress(source, archived.id, 10)
    list_services.set_archived(source, archived.id, True)
    removed = list_services.save_post(source, gone.id)
    list_services.update_progress(source, removed.id, 100)
    list_services.remove_entry(source, removed.id)
    saved = db.session.get(Entry, saved.id)
    saved.note = "A note\nwith two lines, “quotes” and <b>tags</b>"
    saved.rating = 4
    db.session.commit()

    sign_in(client, source)
    exported = client.get("/account/export.json", buffered=True).get_data()
    document = json.loads(exported)
    assert document["format_version"] == 1 and len(document["entries"]) == 4

    target = make_user("arrival@example.com")
    run = import_now(target, exported, name="dogear.json")
    assert run.status == "done", run.message

    def snapshot(user: User) -> Any:
        db.session.expire_all()
        rows = []
        for entry in db.session.scalars(select(Entry).where(Entry.user_id == user.id)):
            values = {
                c.name: getattr(entry, c.name)
                for c in Entry.__table__.columns
                if c.name not in ("id", "user_id", "import_run_id")
            }
            values["tags"] = [t.name for t in entry.tags]
            rows.append(values)
        activity = db.session.execute(
            select(Activity.post_id, Activity.at, Activity.progress_from, Activity.progress_to)
            .where(Activity.user_id == user.id)
            .order_by(Activity.at, Activity.id)
        ).all()
        return sorted(rows, key=lambda r: r["position"]), activity

    mine, theirs = snapshot(target), snapshot(source)
    for a, b in zip(mine[0], theirs[0], strict=True):
        assert a == b
    assert mine[1] == theirs[1]


def test_dogear_json_problems_are_per_entry(app, make_user):
    data = json.dumps(
        {
            "format": "dogear",
            "format_version": 1,
            "entries": [
                {"url": "javascript:alert(1)", "state": "saved"},
                {"post_key": "no-such-catalog-post", "state": "done"},
                {"url": "https://example.org/ok", "state": "sideways", "progress": 500},
                "not an entry",
            ],
        }
    ).encode()
    result = services.preview(make_user(), data)
    assert (result.new, result.problems, result.warnings) == (1, 3, 1)
    reasons = " ".join(p["reason"] for p in result.sample_problems)
    assert "javascript:" in reasons and "lacks" in reasons and "isn't an object" in reasons


# --- privacy -------------------------------------------------------------------------------------


def test_another_reader_can_neither_see_nor_touch_an_import(client, make_user):
    owner = make_user("owner@example.com")
    run = import_now(owner, fixture("instapaper.csv"))
    pending = services.store_upload(owner, "r.csv", fixture("readwise.csv"))[0]
    intruder = make_user("intruder@example.com")
    sign_in(client, intruder)
    assert client.get(f"/account/import/{pending.id}").status_code == 404
    assert client.submit(f"/account/import/{pending.id}", {"existing": "skip"}).status_code == 404
    assert client.submit(f"/account/import/{pending.id}/discard").status_code == 404
    assert client.get(f"/account/import/runs/{run.id}").status_code == 404
    assert client.htmx_get(f"/account/import/runs/{run.id}").status_code == 404
    assert count(JobRun) == 1 and count(Upload) == 1
    page = client.get("/account/import").get_data(as_text=True)
    assert "Imported" not in page
    assert "Starred one" not in client.get("/list").get_data(as_text=True)
    assert "starred" not in client.get("/list/tags").get_data(as_text=True)
    export = client.get("/account/export.json", buffered=True).get_json()
    assert export["entries"] == [] and export["tags"] == []


# --- the CLI ---------------------------------------------------------------------------------


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def test_cli_dry_run_prints_the_preview_and_writes_nothing(app, make_user, tmp_path):
    user = make_user("cli@example.com")
    path = tmp_path / "pocket.zip"
    path.write_bytes(pocket_zip())
    result = _cli(app, "import", "--user", user.email, str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    preview = json.loads(result.output)
    assert (preview["new"], preview["problems"], preview["duplicates"]) == (8, 3, 1)
    assert preview["format"] == "pocket-zip"
    assert count(Entry) == 0 and count(Upload) == 0


def test_cli_import_runs_in_process_and_prints_the_result(app, make_user, tmp_path):
    user = make_user("cli@example.com")
    path = tmp_path / "readwise.csv"
    path.write_bytes(fixture("readwise.csv"))
    result = _cli(app, "import", "--user", user.email, str(path))
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert (outcome["status"], outcome["created"], outcome["total"]) == ("done", 4, 4)
    assert count(Entry, Entry.user_id == user.id) == 4


def test_cli_import_errors_are_clear(app, make_user, tmp_path):
    user = make_user("cli@example.com")
    (tmp_path / "x.txt").write_bytes(b"nothing to see")
    unknown = _cli(app, "import", "--user", user.email, str(tmp_path / "x.txt"))
    assert unknown.exit_code != 0 and "doesn't recognise" in unknown.output
    nobody = _cli(app, "import", "--user", "nobody@example.com", str(tmp_path / "x.txt"))
    assert nobody.exit_code != 0 and "no account" in nobody.output
    missing = _cli(app, "import", "--user", user.email, str(tmp_path / "missing.csv"))
    assert missing.exit_code != 0 and "cannot read" in missing.output


# --- 20,000 entries -------------------------------------------------------------------------


def test_twenty_thousand_entries_import_in_the_background(client, reader):
    """The time is printed, not asserted (speed is the benchmark's job; see
    bench/README.md for the measurement)."""
    rows = ["title,url,time_added,tags,status"]
    for n in range(20_000):
        status = "archive" if n % 3 == 0 else "unread"
        tags = f"tag{n % 40}|batch{n % 7}"
        url = f"https://site{n % 50}.example/post/{n}"
        rows.append(f"Article number {n},{url},{1_500_000_000 + n},{tags},{status}")
    data = ("\n".join(rows) + "\n").encode()

    started = time.perf_counter()
    location = upload_file(client, data, "big.csv").location
    previewed = time.perf_counter()
    client.submit(location, {"existing": "skip"})
    run = db.session.scalar(select(JobRun))
    assert run_pending(limit=1) == 1  # the import job itself (its fetches wait their turn)
    finished = time.perf_counter()
    print(
        f"\n20,000 entries: upload and preview {previewed - started:.1f} s, "
        f"import {finished - previewed:.1f} s, total {finished - started:.1f} s"
    )
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.done, run.total) == ("done", 20_000, 20_000)
    assert count(Entry, Entry.user_id == reader.id) == 20_000
    assert count(Tag, Tag.user_id == reader.id) == 47

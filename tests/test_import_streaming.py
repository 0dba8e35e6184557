"""Imports read as streams: a 50 MB export is previewed, and imported by the job, in
under 100 MB with the file's own bytes (measured in a process of its own), and a file
that turns out broken half-way, or a CSV file with one enormous line, is a clear error
that writes nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.imports.formats import LINE_MAX
from app.models import Entry, JobRun, Post, Upload
from tests.conftest import sign_in

ROOT = Path(__file__).resolve().parents[1]
SIZE = 49_900_000  # about 50 MB, under IMPORT_MAX_BYTES (50,000,000)
MEMORY = 100_000_000  # the acceptance: a 50 MB file in under 100 MB of memory
WORDS = ("slow", "reading", "is", "a", "skill", "worth", "keeping", "and", "a", "habit")
WORDS += ("worth", "the", "time", "it", "takes")
STATES = ("saved", "reading", "done", "archived")


def words(n: int, count: int) -> str:
    return " ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(count))


def count(model: Any) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


# --- files in the shapes real exports have --------------------------------------------------


def dogear_entry(n: int, longer: int = 0) -> dict[str, Any]:
    """One entry as app/imports/exports.py writes it; `longer` words more of note."""
    day = f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}"
    return {
        "url": f"https://example.org/articles/{n}-{words(n, 4).replace(' ', '-')}",
        "post_key": None,
        "title": words(n, 8).capitalize() if n % 5 == 0 else None,
        "state": STATES[n % 4],
        "progress": (n * 13) % 101,
        "position": n,
        "resume_position": (n * 7) % 1000 if n % 3 else None,
        "note": words(n, 40 if n % 4 == 0 else 0) + words(n + 1, longer),
        "rating": 1 + n % 5 if n % 6 == 0 else None,
        "added_at": f"{day}T10:15:00Z",
        "started_at": f"{day}T11:00:00Z" if n % 4 else None,
        "finished_at": f"{day}T12:00:00Z" if n % 4 == 2 else None,
        "touched_at": f"{day}T12:00:00Z",
        "tags": [WORDS[n % 7], WORDS[(n + 3) % 11]][: n % 3],
        "post": {
            "title": words(n, 9).capitalize(),
            "author": "Ada Writer",
            "site_name": "Example Review",
            "summary": words(n, 45),
            "published_on": day,
            "in_catalog": False,
        },
        "activity": [
            {"at": f"{day}T11:0{i}:00Z", "from": i * 10, "to": i * 10 + 10} for i in range(n % 3)
        ],
    }


def write_dogear_export(
    path: Path, size: int, *, broken_at: float | None = None, longer: int = 0
) -> int:
    """A Dogear export of about `size` bytes, written as exports.py writes it (the
    head, then an entry a line, then the reading history); `broken_at` (a fraction)
    cuts the file there and goes on with text that isn't JSON; `longer`: words more
    in each entry's note (fewer entries). The entries written."""
    head = {
        "format": "dogear",
        "format_version": 1,
        "exported_at": "2026-11-30T05:00:00Z",
        "account": "reader@example.com",
        "tags": sorted(set(WORDS)),
    }
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(head, indent=1)[:-2] + ',\n "entries": [')
        n = 0
        while out.tell() < size - 10_000:
            if broken_at is not None and out.tell() > size * broken_at:
                out.write(',\n  {"url": "https://example.org/x", "state": saved}')
                broken_at = None
            entry = json.dumps(dogear_entry(n, longer), ensure_ascii=False)
            out.write(("\n  " if n else "") + entry)
            out.write(",")
            n += 1
        out.write("\n  " + json.dumps(dogear_entry(n, longer)) + '\n ],\n "activity": [')
        written = n + 1
        history = {"url": "https://example.org/gone", "post_key": None, "from": 0, "to": 50}
        out.write(
            ",".join(json.dumps({**history, "at": "2024-01-01T10:00:00Z"}) for _ in range(3))
        )
        out.write("\n ]\n}\n")
    return written


def omnivore_item(n: int, longer: int = 0) -> dict[str, Any]:
    """One saved item as Omnivore's export lists it in metadata_*.json; `longer`
    words more of description."""
    return {
        "id": f"5d2f0a1c-{n:08d}",
        "slug": f"{words(n, 4).replace(' ', '-')}-{n:x}",
        "title": words(n, 8).capitalize(),
        "description": words(n, 30 + longer),
        "author": "Ada Writer",
        "url": f"https://example.org/omnivore/{n}",
        "state": "ARCHIVED" if n % 5 == 0 else "SUCCEEDED",
        "readingProgress": (n * 13) % 101,
        "thumbnail": f"https://example.org/thumbs/{n}.png",
        "labels": [WORDS[n % 7], {"name": WORDS[(n + 2) % 9]}][: n % 3],
        "savedAt": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T10:15:00.000Z",
        "updatedAt": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T18:00:00.000Z",
        "publishedAt": None,
    }


def write_omnivore_metadata(path: Path, size: int, longer: int = 0) -> int:
    """One metadata JSON of about `size` bytes (Omnivore's indented style), `longer`
    words more in each item's description; the items."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        while out.tell() < size - 1_000:
            out.write(("," if n else "") + "\n" + json.dumps(omnivore_item(n, longer), indent=2))
            n += 1
        out.write("\n]\n")
    return n


def write_omnivore_zip(path: Path, size: int) -> int:
    """An Omnivore .zip of about `size` bytes: metadata_0_to_49.json, … with an
    article (content/<slug>.html) and highlights (highlights/<slug>.md) for each item."""
    n = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        # What is written so far, and the central directory still to come; a batch
        # of 50 items adds about 250 KB.
        while archive.fp.tell() + sum(46 + len(i.filename) for i in archive.filelist) < (
            size - 400_000
        ):
            items = [omnivore_item(i) for i in range(n, n + 50)]
            name = f"omnivore-export/metadata_{n}_to_{n + 49}.json"
            archive.writestr(name, json.dumps(items, indent=2))
            for i, item in enumerate(items, start=n):
                paragraphs = "".join(
                    f"<p>{os.urandom(300).hex()} {words(i + p, 30)}</p>" for p in range(12)
                )
                archive.writestr(f"omnivore-export/content/{item['slug']}.html", paragraphs)
                archive.writestr(
                    f"omnivore-export/highlights/{item['slug']}.md", f"> {words(i, 20)}\n"
                )
            n += 50
    return n


# --- memory, in a process of its own ----------------------------------------------------------

# Memory is the process's own: its high-water mark of resident memory (VmHWM) against
# its resident memory before the file's bytes are read, after Dogear and its libraries
# are imported and the app is made, so what is measured includes the file itself (the
# web upload and the stored Upload hold it). The mark is reset there. Not ru_maxrss:
# it carries the mark of the process image before exec, the forked pytest process.
# Resident memory counts the parsers' C allocations (ijson's, zlib's) and the
# database driver's, which tracemalloc would not see, and a process of its own is not
# disturbed by other tests.
#
# `preview`: the file is read, then as a stream of rows (the format's parser alone:
# bounded whatever the size, measured from once the bytes are in), then
# `services.preview`, what the web upload and `dogear import` call. With `store`, the
# upload is then kept (as `services.store_upload` keeps it) and confirmed, and the run
# printed: `job` runs it in another fresh process, `commit.run_import` as the worker
# does, which reads the stored file from the database itself.
MEASURE = """
import hashlib, json, sys, time
from app import create_app
from app.extensions import db
from app.imports import commit, services
from app.imports.detect import detect
from app.models import Entry, JobRun, Upload, User
from sqlalchemy import func, select

def status(name):
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024

def resident():
    return status("VmRSS")

def peak():
    return status("VmHWM")

mode, uri, instance, user_id, path = sys.argv[1:6]
app = create_app({
    "TESTING": True, "INSTANCE_PATH": instance, "SQLALCHEMY_DATABASE_URI": uri,
    "SECRET_KEY": "test-secret-key-that-is-long-enough-123456", "DEMO": False,
})
with app.app_context():
    user = db.session.get(User, int(user_id))
    db.session.commit()
    try:
        with open("/proc/self/clear_refs", "w") as marks:
            marks.write("5")  # the high-water mark starts again from here
    except OSError:
        pass  # (then what came before counts too)
    empty = resident()
    report = {}
    if mode == "upload":
        # The web upload: the request's file read (as the view reads it), previewed
        # and kept (services.store_upload), then confirmed.
        with open(path, "rb") as stream:
            data = stream.read(app.config["IMPORT_MAX_BYTES"] + 1)
        started = time.perf_counter()
        upload, result = services.store_upload(user, "upload", data)
        stored, seconds = peak() - empty, time.perf_counter() - started
        upload_id, size = upload.id, len(data)
        del data, upload
        db.session.commit()
        digest, kept = hashlib.sha256(), 0
        for piece in commit.stored_pieces(upload_id):
            digest.update(piece)
            kept += len(piece)
        db.session.commit()
        run = services.start_import(user, upload_id, "skip", enqueue=False)
        report = {
            "format": result.format, "new": result.new, "size": size, "kept": kept,
            "digest": digest.hexdigest(), "stored": stored, "confirmed": peak() - empty,
            "run": run.id,
            "seconds": round(seconds, 1),
        }
    elif mode == "job":
        started = time.perf_counter()
        outcome = services.run_import(int(path))
        with_file, seconds = peak() - empty, time.perf_counter() - started
        db.session.rollback()
        run = db.session.get(JobRun, int(path))
        report = {
            "outcome": outcome, "status": run.status, "done": run.done, "total": run.total,
            "result": services.run_result(run), "with_file": with_file,
            "entries": db.session.scalar(
                select(func.count()).select_from(Entry).where(Entry.user_id == user.id)
            ),
            "seconds": round(seconds, 1),
        }
    else:
        with open(path, "rb") as stream:
            data = stream.read()
        loaded = resident()
        started = time.perf_counter()
        rows = sum(1 for _ in detect(data).parse(data))
        streamed, stream_seconds = peak() - loaded, time.perf_counter() - started
        started = time.perf_counter()
        result = services.preview(user, data, path)
        report = {
            "format": result.format, "new": result.new, "problems": result.problems,
            "history": result.history, "rows": rows, "size": len(data),
            "stream_growth": streamed, "stream_seconds": round(stream_seconds, 1),
            "with_file": peak() - empty,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if mode == "store":
            upload = Upload(
                user_id=user.id, filename="upload", format=result.format, size=len(data),
                data=data, options=json.dumps({"preview": result.to_dict()}),
            )
            db.session.add(upload)
            db.session.commit()
            report["run"] = services.start_import(user, upload.id, "skip", enqueue=False).id
    print(json.dumps(report))
"""


def measure_apart(app, user, mode: str, what: Path | int, tmp_path: Path) -> dict[str, Any]:
    """MEASURE in a fresh Python process: `preview` (or `store`) of the file at `what`,
    or the `job` of the run `what`, with how much memory it took."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            "-c",
            MEASURE,
            mode,
            app.config["SQLALCHEMY_DATABASE_URI"],
            str(tmp_path / "apart"),
            str(user.id),
            str(what),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(mode, what, report)  # shown with -s: the measurements the report quotes
    return report


def preview_apart(app, user, path: Path, tmp_path: Path) -> dict[str, Any]:
    """`services.preview` (what the web upload and `dogear import` call) of the file."""
    return measure_apart(app, user, "preview", path, tmp_path)


def assert_bounded(report: dict[str, Any]) -> None:
    assert report["size"] > 49_000_000
    # The parser holds a row or so (and a zip's directory: 30,000 members here).
    assert report["stream_growth"] < 20_000_000, report
    assert report["with_file"] < MEMORY, report  # the file's 50 MB included


def assert_job_bounded(app, user, run_id: int, entries: int, tmp_path: Path) -> None:
    """The confirmed import, run as the worker runs it: every entry written, the
    file's bytes (read from the database) included in under 100 MB."""
    report = measure_apart(app, user, "job", run_id, tmp_path)
    assert (report["outcome"], report["status"]) == ("done", "done"), report
    assert report["entries"] == entries
    assert report["result"] == {"created": entries, "updated": 0, "unchanged": 0}
    assert report["with_file"] < MEMORY, report


def test_a_50_mb_dogear_export_is_read_in_under_100_mb(app, make_user, tmp_path: Path):
    path = tmp_path / "dogear.json"
    written = write_dogear_export(path, SIZE)
    user = make_user()

    report = preview_apart(app, user, path, tmp_path)

    assert report["format"] == "dogear-json"
    assert (report["new"], report["problems"], report["history"]) == (written, 0, 3)
    assert report["rows"] == written + 3
    assert_bounded(report)


def test_a_50_mb_dogear_export_is_imported_in_under_100_mb(app, make_user, tmp_path: Path):
    # Longer notes: fewer entries to write (a quicker test), as many bytes to hold.
    path = tmp_path / "dogear.json"
    written = write_dogear_export(path, SIZE, longer=900)
    user = make_user()

    report = measure_apart(app, user, "store", path, tmp_path)

    assert (report["format"], report["new"], report["history"]) == ("dogear-json", written, 3)
    assert_bounded(report)
    assert_job_bounded(app, user, report["run"], written, tmp_path)


def test_a_50_mb_upload_is_kept_and_confirmed_in_bounded_memory(app, make_user, tmp_path: Path):
    # As the web upload keeps it: the request's bytes, previewed and written to the
    # database (`services.store_upload`), then confirmed (`services.start_import`).
    path = tmp_path / "dogear.json"
    written = write_dogear_export(path, SIZE, longer=900)
    user = make_user()

    report = measure_apart(app, user, "upload", path, tmp_path)

    assert (report["format"], report["new"]) == ("dogear-json", written)
    assert report["size"] > 49_000_000
    assert report["kept"] == report["size"]
    assert report["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # The file's 50 MB included: it is stored a megabyte per row (migration 0013), so
    # neither the driver nor the database builds a row holding all of it.
    assert report["stored"] < MEMORY, report
    assert report["confirmed"] < MEMORY, report
    db.session.rollback()
    assert db.session.get(JobRun, report["run"]).status == "queued"


def test_a_50_mb_omnivore_metadata_file_is_read_in_under_100_mb(app, make_user, tmp_path: Path):
    path = tmp_path / "metadata_0_to_99999.json"
    written = write_omnivore_metadata(path, SIZE)
    user = make_user()

    report = preview_apart(app, user, path, tmp_path)

    assert report["format"] == "omnivore-json"
    assert (report["new"], report["problems"], report["rows"]) == (written, 0, written)
    assert_bounded(report)


def test_a_50_mb_omnivore_metadata_file_is_imported_in_under_100_mb(
    app, make_user, tmp_path: Path
):
    # Longer descriptions: fewer entries to write (a quicker test), as many bytes.
    path = tmp_path / "metadata_0_to_9999.json"
    written = write_omnivore_metadata(path, SIZE, longer=900)
    user = make_user()

    report = measure_apart(app, user, "store", path, tmp_path)

    assert (report["format"], report["new"], report["problems"]) == ("omnivore-json", written, 0)
    assert_bounded(report)
    assert_job_bounded(app, user, report["run"], written, tmp_path)


def test_a_50_mb_omnivore_zip_is_read_in_under_100_mb(app, make_user, tmp_path: Path):
    path = tmp_path / "omnivore.zip"
    written = write_omnivore_zip(path, SIZE)
    user = make_user()

    report = preview_apart(app, user, path, tmp_path)

    assert report["format"] == "omnivore"
    assert (report["new"], report["problems"], report["rows"]) == (written, 0, written)
    assert_bounded(report)


# --- broken half-way: a clear error, nothing written ----------------------------------------


def test_a_large_export_broken_half_way_is_refused_and_writes_nothing(
    client, make_user, tmp_path: Path
):
    path = tmp_path / "dogear.json"
    write_dogear_export(path, 20_000_000, broken_at=0.5)
    assert sign_in(client, make_user()).status_code == 303

    response = client.submit(
        "/account/import",
        {"file": (path.open("rb"), "dogear.json")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 422
    assert "The file isn&#39;t valid JSON." in response.get_data(as_text=True)
    assert (count(Upload), count(Entry), count(Post)) == (0, 0, 0)


def test_an_omnivore_file_cut_off_half_way_is_refused_and_writes_nothing(
    app, make_user, tmp_path: Path
):
    whole = tmp_path / "metadata_0_to_9999.json"
    write_omnivore_metadata(whole, 5_000_000)
    path = tmp_path / "cut.json"
    path.write_bytes(whole.read_bytes()[:2_500_000])
    user = make_user()

    result = app.test_cli_runner().invoke(args=["import", "--user", user.email, str(path)])

    assert result.exit_code == 1
    assert "The file isn't valid JSON." in result.output and "Traceback" not in result.output
    assert (count(Upload), count(Entry), count(Post)) == (0, 0, 0)


def test_an_omnivore_zip_with_a_broken_second_part_is_refused_and_writes_nothing(
    app, make_user, tmp_path: Path
):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for first in (0, 50):
            body = json.dumps([omnivore_item(n) for n in range(first, first + 50)], indent=2)
            if first:
                body = body[: len(body) // 2]
            archive.writestr(f"omnivore-export/metadata_{first}_to_{first + 49}.json", body)
    path = tmp_path / "omnivore.zip"
    path.write_bytes(buffer.getvalue())
    user = make_user()

    result = app.test_cli_runner().invoke(args=["import", "--user", user.email, str(path)])

    assert result.exit_code == 1
    assert "metadata_50_to_99.json in the .zip isn't valid JSON." in result.output
    assert (count(Upload), count(Entry), count(Post)) == (0, 0, 0)


# --- a CSV file with one enormous line ----------------------------------------------------------


def write_csv_with_a_long_line(path: Path, length: int) -> None:
    """A Pocket CSV export: two rows, one whose line is `length` characters long (an
    address that never ends), and two rows after it."""
    row = "A title {n},https://example.org/{n},1700000000,a|b,unread\r\n"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("title,url,time_added,tags,status\r\n")
        out.write(row.format(n=1) + row.format(n=2))
        out.write("Runaway,https://example.org/?q=")
        for _ in range(length // 1_000_000):
            out.write("a" * 1_000_000)
        out.write(",1700000000,,unread\r\n")
        out.write(row.format(n=3) + row.format(n=4))


def test_a_csv_line_of_50_mb_is_left_out_in_bounded_memory(app, make_user, tmp_path: Path):
    path = tmp_path / "part_000000.csv"
    write_csv_with_a_long_line(path, 49_000_000)
    user = make_user()

    report = preview_apart(app, user, path, tmp_path)

    assert report["format"] == "pocket-csv"
    assert (report["new"], report["problems"], report["rows"]) == (4, 1, 5)
    assert report["stream_growth"] < 5_000_000, report  # never the line whole
    assert report["with_file"] < MEMORY, report
    assert (count(Upload), count(Entry), count(Post)) == (0, 0, 0)


def test_a_csv_line_of_50_mb_is_named_in_the_preview_and_nothing_is_written(
    client, make_user, tmp_path: Path
):
    path = tmp_path / "part_000000.csv"
    write_csv_with_a_long_line(path, 49_000_000)
    assert sign_in(client, make_user()).status_code == 303

    response = client.submit(
        "/account/import",
        {"file": (path.open("rb"), "part_000000.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)

    assert "line 4" in page
    assert f"a line longer than {LINE_MAX:,} characters" in page
    assert (count(Upload), count(Entry), count(Post)) == (1, 0, 0)  # until it is confirmed

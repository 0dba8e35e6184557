"""Imports under load: big listing imports write in short transactions (readers' writes
and a second import go on beside them), junk input is a clear error, and parsing is
linear in time and bounded in memory (measured by counting work and by tracemalloc,
never by the clock)."""

from __future__ import annotations

import io
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.catalog import listing
from app.catalog.importer import import_files
from app.catalog.listing import MAX_LINE_CHARS, read_listing
from app.extensions import db
from app.lists import services as lists
from app.models import Post, Source
from tests.conftest import sign_in

NBSP_DOT = "\u00a0\u00b7\u00a0"
WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


def listing_text(first: int, count: int) -> str:
    """`count` well-formed entries, numbered from `first` (the same number is the same post)."""
    return "\n\n".join(
        f"Load test post number {n}\n\nA summary of post {n}, about nothing much.\n\n"
        + NBSP_DOT.join([f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}", "4 min", "900 words", "Ann"])
        for n in range(first, first + count)
    )


def junk_bytes(size: int) -> bytes:
    """Paragraphs of words and no meta line at all, `size` bytes or a little more."""
    paragraphs = [
        " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 37)) for i in range(997)
    ]
    block = "\n\n".join(paragraphs).encode() + b"\n\n"
    return block * (size // len(block) + 1)


def count(model: type) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def _run(app, *args: str, input: Any = None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


# --- short transactions ---------------------------------------------------------------


def test_two_big_imports_and_a_readers_writes_all_go_through(app, client, make_user, make_post):
    reader = make_user()
    entry_id = lists.save_post(reader, make_post().id).id
    assert sign_in(client, reader).status_code == 303
    token = client.csrf_token()
    first = io.BytesIO(listing_text(0, 10_000).encode())
    second = io.BytesIO(listing_text(5_000, 10_000).encode())  # half of it is in the first
    reports: dict[str, Any] = {}
    errors: list[BaseException] = []
    started = threading.Barrier(3)

    def run(name: str, stream: io.BytesIO) -> None:
        with app.app_context():
            try:
                started.wait()
                reports[name] = import_files([(name, stream)], source_name="Load")
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=run, args=("first.txt", first)),
        threading.Thread(target=run, args=("second.txt", second)),
    ]
    for thread in threads:
        thread.start()
    started.wait()
    statuses = []
    progress = 0
    while any(thread.is_alive() for thread in threads):
        progress = progress % 99 + 1
        response = client.post(
            f"/list/{entry_id}/progress",
            data={"progress": str(progress)},
            headers={"HX-Request": "true", "X-CSRFToken": token},
        )
        statuses.append(response.status_code)
    for thread in threads:
        thread.join()

    assert errors == []
    assert statuses and all(200 <= status < 400 for status in statuses), statuses
    created = reports["first.txt"].created + reports["second.txt"].created
    duplicates = reports["first.txt"].duplicates + reports["second.txt"].duplicates
    assert (created, duplicates) == (15_000, 5_000)
    assert count(Post) == 15_000 + 1
    titles = db.session.scalar(select(func.count(func.distinct(Post.title))))
    assert titles == 15_000 + 1
    assert count(Source) == 1


def test_an_import_stopped_part_way_completes_on_a_second_run(app, monkeypatch):
    from app.catalog import importer

    text = listing_text(0, 1_000).encode()
    real = importer._write_chunk
    chunks = []

    def crash_after_two(*args: Any) -> None:
        if len(chunks) == 2:
            raise RuntimeError("the process died")
        chunks.append(args)
        real(*args)

    monkeypatch.setattr(importer, "_write_chunk", crash_after_two)
    with pytest.raises(RuntimeError):
        import_files([("big.txt", io.BytesIO(text))])
    assert count(Post) == 2 * importer.CHUNK_SIZE
    monkeypatch.setattr(importer, "_write_chunk", real)

    report = import_files([("big.txt", io.BytesIO(text))])

    assert (report.created, report.duplicates) == (1_000 - 2 * importer.CHUNK_SIZE, 500)
    assert count(Post) == 1_000


# --- junk input -------------------------------------------------------------------------


def test_binary_junk_on_stdin_is_a_clear_error_and_writes_nothing(app):
    junk = bytes(range(256)) * 64

    result = _run(app, "posts", "import", "-", input=junk)

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # click's error, not a traceback
    assert "Traceback" not in result.output
    assert "cannot read <stdin>: not UTF-8 text at line 3 (byte offset 128)" in result.output
    assert count(Post) == 0 and count(Source) == 0


def test_a_bad_byte_late_in_a_file_names_its_line_and_writes_nothing(app, tmp_path: Path):
    good = listing_text(0, 300).encode()
    path = tmp_path / "listing.txt"
    path.write_bytes(good + b"\n\nAnother post\n\nBroken \xc3( here\n")
    line = good.count(b"\n") + 5

    result = _run(app, "posts", "import", str(path), "--json")

    assert result.exit_code == 1
    assert f"{path}: not UTF-8 text at line {line} (byte offset " in result.output
    assert count(Post) == 0


def test_an_overlong_line_is_an_error_for_its_entry_only(app):
    text = (
        "A fine post\n\nFine.\n\nMay 1, 2026 · 3 min\n\n"
        "A post with a runaway summary\n\n" + "x" * (MAX_LINE_CHARS + 10) + "\n\n"
        "May 2, 2026 · 3 min\n\nAnother fine post\n\nAlso fine.\n\nMay 3, 2026 · 3 min\n"
    )

    result = _run(app, "posts", "import", "-", "--json", input=text.encode())

    assert result.exit_code == 0, result.output
    assert '"created": 2' in result.output
    assert f"line 9 is longer than {MAX_LINE_CHARS:,} characters" in result.output


# --- linear time, bounded memory ----------------------------------------------------------


def _parse_work(data: bytes, monkeypatch) -> tuple[int, int]:
    """(paragraphs handled, the most ever waiting at once) while parsing `data`."""
    handled: list[int] = []
    real = listing._report_orphans

    def counted(paragraphs: list, filename: str, **kwargs: Any):
        handled.append(len(paragraphs))
        return real(paragraphs, filename, **kwargs)

    monkeypatch.setattr(listing, "_report_orphans", counted)
    errors = sum(1 for _ in read_listing(io.BytesIO(data), filename="junk.txt"))
    assert errors > 0
    return sum(handled), max(handled)


def test_parsing_junk_does_work_linear_in_its_size(monkeypatch):
    small_work, small_most = _parse_work(junk_bytes(500_000), monkeypatch)
    large_work, large_most = _parse_work(junk_bytes(2_000_000), monkeypatch)

    # Each paragraph is looked at a bounded number of times: 4x the file, 4x the work.
    assert small_most <= listing._PENDING_KEPT + 1 and large_most <= listing._PENDING_KEPT + 1
    assert 3.5 < large_work / small_work < 4.5


def _peak_while_parsing(path: Path) -> int:
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            for _ in read_listing(stream, filename=path.name):
                pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_20_mb_file_of_junk_paragraphs_parses_in_bounded_memory(tmp_path: Path):
    path = tmp_path / "junk.txt"
    path.write_bytes(junk_bytes(20_000_000))

    assert _peak_while_parsing(path) < 5_000_000


def test_a_single_20_mb_line_parses_in_bounded_memory(tmp_path: Path):
    path = tmp_path / "line.txt"
    path.write_bytes(b"word " * 4_000_000)

    assert _peak_while_parsing(path) < 5_000_000


def test_a_readers_csv_export_is_read_as_a_stream():
    from app.imports.formats import pocket

    row = "A title,https://example.com/{n},1700000000,a|b,unread\r\n"
    data = (
        "title,url,time_added,tags,status\r\n" + "".join(row.format(n=n) for n in range(20_000))
    ).encode()
    tracemalloc.start()
    try:
        rows = sum(1 for _ in pocket.parse_csv(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert rows == 20_000
    assert len(data) > 1_000_000 and peak < 500_000  # never the decoded file, only a row

"""The catalog: reading listing files, assigning topics, importing posts, the demo."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from app.catalog.importer import (
    DEMO_SOURCE_NAME,
    dedupe_key,
    import_listings,
    load_demo,
    reading_minutes_for,
)
from app.catalog.listing import MAX_TITLE_LENGTH, parse_listing
from app.catalog.topics import assign_topics
from app.extensions import db
from app.models import Post, Source, Topic

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))
DEMO = Path(__file__).resolve().parents[1] / "app" / "catalog" / "demo.txt"
NBSP_DOT = "\u00a0\u00b7\u00a0"


def seed_texts() -> list[tuple[str, str]]:
    return [(path.name, path.read_text(encoding="utf-8")) for path in SEED_FILES]


def meta(*fields: str) -> str:
    return NBSP_DOT.join(fields)


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


THREE_POSTS = "\n".join(
    [
        "First post",
        "",
        "The first summary.",
        "",
        meta("April 3, 2026", "5 min", "1000 words", "Ann Author"),
        "",
        "Second post",
        "",
        "The second summary.",
        "",
        meta("April 2, 2026", "6 min", "1200 words", "Bo Writer"),
        "",
        "Third post",
        "",
        "The third summary.",
        "",
        meta("April 1, 2026", "7 min", "1400 words", "Cy Scribe"),
    ]
)


# --- parsing -----------------------------------------------------------------------


def test_parse_seed_files_reads_every_entry() -> None:
    assert len(SEED_FILES) == 2
    for name, text in seed_texts():
        parsed = parse_listing(text, filename=name)
        assert parsed.errors == [], name
        assert len(parsed.entries) == 10, name

    first, *_, last = parse_listing(SEED_FILES[0].read_text(encoding="utf-8")).entries
    assert first.title == (
        "Polars in 2026 \u2014 The DataFrame Library Replacing Pandas in Production"
    )
    assert first.summary.startswith("Why Polars is the right DataFrame library")
    assert first.published_on == date(2026, 4, 30)
    assert (first.reading_minutes, first.word_count) == (5, 1026)
    assert first.author == "Manvendra Rajpoot"
    assert first.line == 1
    # The file ends without a newline right after this entry's author.
    assert last.title == "Python Virtual Environments: uv vs venv vs Poetry in 2026"
    assert (last.author, last.word_count, last.line) == ("Manvendra Rajpoot", 1182, 55)


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda t: "\ufeff" + t.replace("\n", "\r\n"), id="bom-crlf"),
        pytest.param(lambda t: t.replace("\n", "\r"), id="cr"),
        pytest.param(lambda t: "\ufeff" + t + "\n", id="bom-final-newline"),
        pytest.param(lambda t: t.replace("\u00a0\u00b7\u00a0", " \u00b7 "), id="plain-dot"),
        pytest.param(lambda t: t.replace("\u00a0\u00b7\u00a0", "\u00b7"), id="bare-dot"),
    ],
)
def test_parse_accepts_encodings_line_endings_and_separators(transform) -> None:
    text = SEED_FILES[0].read_text(encoding="utf-8")
    expected = parse_listing(text).entries

    parsed = parse_listing(transform(text))

    assert parsed.errors == []
    assert parsed.entries == expected


def test_parse_extra_blank_lines_keep_true_line_numbers() -> None:
    text = (
        "\n\n"
        + THREE_POSTS.replace("\n\nSecond post", "\n\n \u00a0\n\t\n\nSecond post")
        + "\n\n\n"
    )

    parsed = parse_listing(text)

    assert parsed.errors == []
    assert [(e.title, e.line) for e in parsed.entries] == [
        ("First post", 3),
        ("Second post", 12),
        ("Third post", 18),
    ]


def test_parse_entry_without_summary() -> None:
    text = THREE_POSTS.replace("The second summary.\n\n", "")

    parsed = parse_listing(text)

    assert parsed.errors == []
    assert [e.summary for e in parsed.entries] == ["The first summary.", "", "The third summary."]
    assert parsed.entries[1].published_on == date(2026, 4, 2)


def test_parse_joins_summary_lines_and_cleans_titles() -> None:
    text = (
        "  A\x00 title\u200b  with\tgaps\u202e \n\n"
        "A summary that\nruns over\r\nthree lines.\n\n"
        "April 3, 2026 \u00b7 4 min"
    )

    (entry,) = parse_listing(text).entries

    assert entry.title == "A title with gaps"
    assert entry.summary == "A summary that runs over three lines."


def test_parse_title_summary_and_meta_without_blank_lines() -> None:
    (entry,) = parse_listing("A title\nIts summary.\nApril 3, 2026 \u00b7 4 min").entries

    assert (entry.title, entry.summary, entry.reading_minutes) == ("A title", "Its summary.", 4)


@pytest.mark.parametrize(
    ("meta_line", "published_on", "minutes", "words", "author"),
    [
        ("April 3, 2026", date(2026, 4, 3), None, None, ""),
        (meta("Apr 3, 2026", "1 min"), date(2026, 4, 3), 1, None, ""),
        (meta("Sept. 9, 2025", "1 minute", "Kim Lee"), date(2025, 9, 9), 1, None, "Kim Lee"),
        (meta("2026-04-03", "12 mins", "1,234 words"), date(2026, 4, 3), 12, 1234, ""),
        (meta("3 April 2026", "8 min read", "Jo Doe"), date(2026, 4, 3), 8, None, "Jo Doe"),
        (meta("Dec 1, 2025", "950 words", "Al Bo"), date(2025, 12, 1), None, 950, "Al Bo"),
        (meta("5 min", "800 words", "No Date"), None, 5, 800, "No Date"),
        (
            "April 3, 2026\u00b75 min\u00b7Gal\u00b7la Puig",
            date(2026, 4, 3),
            5,
            None,
            "Gal\u00b7la Puig",
        ),
        (meta("April 3, 2026", "99999999999 min", "Al"), date(2026, 4, 3), None, None, "Al"),
    ],
)
def test_parse_meta_line_with_missing_or_varied_fields(
    meta_line, published_on, minutes, words, author
) -> None:
    parsed = parse_listing(f"Title\n\nSummary.\n\n{meta_line}")

    assert parsed.errors == []
    (entry,) = parsed.entries
    assert (entry.published_on, entry.reading_minutes, entry.word_count, entry.author) == (
        published_on,
        minutes,
        words,
        author,
    )


def test_parse_malformed_entry_in_the_middle_is_reported_and_skipped() -> None:
    name, text = seed_texts()[0]
    text = text.replace("April 29, 2026", "February 30, 2026")  # the second entry, line 11

    parsed = parse_listing(text, filename=name)

    assert len(parsed.entries) == 9
    assert "Background Jobs in Python" not in " ".join(e.title for e in parsed.entries)
    assert parsed.entries[1].title.startswith("Modern AsyncIO Patterns")
    (error,) = parsed.errors
    assert (error.file, error.line) == (name, 11)
    assert "impossible date" in error.reason
    assert "February 30, 2026" in error.reason


@pytest.mark.parametrize(
    ("broken", "line", "reason"),
    [
        pytest.param(
            "Bad date\n\nSummary.\n\nAprl 2, 2026 \u00b7 6 min",
            11,  # date problems point at the meta line
            'unreadable date "Aprl 2, 2026"',
            id="unreadable-date",
        ),
        pytest.param(
            "Bad date\n\nSummary.\n\n04/02/2026 \u00b7 6 min",
            11,
            'unreadable date "04/02/2026"',
            id="ambiguous-date",
        ),
        pytest.param(
            "No meta\n\nIts summary, but the meta line was lost.", 7, "no meta line", id="no-meta"
        ),
        pytest.param(
            "T" * (MAX_TITLE_LENGTH + 1) + "\n\nSummary.\n\nApril 2, 2026",
            7,
            "more than 500",
            id="long-title",
        ),
        pytest.param("April 2, 2026 \u00b7 6 min", 7, "no title", id="no-title"),
    ],
)
def test_parse_hard_errors_skip_only_their_entry(broken, line, reason) -> None:
    second = "\n\n".join(
        [
            "Second post",
            "The second summary.",
            meta("April 2, 2026", "6 min", "1200 words", "Bo Writer"),
        ]
    )
    assert second in THREE_POSTS
    text = THREE_POSTS.replace(second, broken)

    parsed = parse_listing(text, filename="posts.txt")

    assert [e.title for e in parsed.entries] == ["First post", "Third post"]
    assert parsed.entries[1].line == (text.split("\n").index("Third post") + 1)
    (error,) = parsed.errors
    assert error.file == "posts.txt"
    assert error.line == line
    assert reason in error.reason


def test_parse_entries_that_lost_their_meta_line_are_reported_each() -> None:
    text = (
        "Lost one\n\nIts summary.\n\n"  # lines 1-3: no meta line
        "Lost two\n\nAnother summary.\n\n"  # lines 5-7: no meta line
        "Kept\n\nKept summary.\n\nApril 3, 2026\n\n"  # lines 9-13
        "Trailing\n\nNo meta at the end."  # lines 15-17
    )

    parsed = parse_listing(text)

    assert [(e.title, e.line) for e in parsed.entries] == [("Kept", 9)]
    assert [e.line for e in parsed.errors] == [1, 5, 15]
    assert all("no meta line" in e.reason for e in parsed.errors)


def test_demo_listing_parses_cleanly() -> None:
    parsed = parse_listing(DEMO.read_text(encoding="utf-8"), filename="demo.txt")

    assert parsed.errors == []
    assert len(parsed.entries) >= 40
    assert all(e.published_on and e.reading_minutes and e.author for e in parsed.entries)
    assert len({e.title for e in parsed.entries}) == len(parsed.entries)


# --- topics ------------------------------------------------------------------------


def test_topics_for_seed_posts() -> None:
    entries = [e for _, text in seed_texts() for e in parse_listing(text).entries]
    topics = {e.title: assign_topics(e.title, e.summary) for e in entries}

    def of(prefix: str) -> list[str]:
        (title,) = [t for t in topics if t.startswith(prefix)]
        return topics[title]

    assert of("FastAPI + SQLAlchemy + PostgreSQL") == [
        "databases",
        "fastapi",
        "postgres",
        "python",
    ]
    assert of("Tokio Async Fundamentals") == ["rust"]
    assert of("Production HTTP Service in Rust") == ["databases", "postgres", "rust"]
    assert of("Modern AsyncIO Patterns") == ["asyncio", "python"]
    assert of("A Practical Guide to Python Async/Await") == ["asyncio", "python"]
    assert of("Modern Python Tooling") == ["python", "tooling"]
    assert of("Flask in 2026") == ["flask", "python"]
    assert of("Docker for Python Developers") == ["docker", "python"]
    assert of("Background Jobs in Python") == ["celery", "python", "redis"]
    assert "django" in of("Django 5 Async")
    assert {"asyncio", "postgres", "sqlite"} <= set(of("Async Python Database Drivers"))
    assert all(topics.values()), "every seed post gets at least one topic"


@pytest.mark.parametrize(
    "text",
    [
        "I wrote this ten years ago",
        "Good code is boring",
        "Let's go shopping for a new ORM",
        "Go ahead and refactor it",
        "The go-to library for dates",
        "MongoDB or Django?",
        "Google Cloud Run notes",
        "GO TEAM",
    ],
)
def test_go_is_only_the_language(text: str) -> None:
    assert "go" not in assign_topics(text, "")


@pytest.mark.parametrize(
    "text",
    ["Go generics, three years in", "Why we wrote it in Go.", "Golang tips", "Goroutines leak"],
)
def test_go_language_mentions(text: str) -> None:
    assert "go" in assign_topics(text, "")


def test_topics_match_whole_words_only() -> None:
    assert assign_topics("Trust your pipeline", "Entrust the rusty uvula with a gitignore") == []
    assert assign_topics("Rust in anger", "") == ["rust"]
    assert assign_topics("psycopg 3 and asyncpg", "") == [
        "asyncio",
        "databases",
        "postgres",
        "python",
    ]


@pytest.mark.parametrize("keyword", ["asyncio", "async/await", "anyio", "TaskGroup"])
def test_asyncio_keywords_imply_python(keyword: str) -> None:
    assert assign_topics(f"Notes on {keyword}", "") == ["asyncio", "python"]


def test_topics_from_content_need_several_mentions() -> None:
    once = "<p>We also tried <b>Kubernetes</b> once.</p>"
    often = "<p>Kubernetes</p><p>kubectl apply</p><p>More k8s&nbsp;notes</p>"

    assert assign_topics("A post", "A summary", once) == []
    assert assign_topics("A post", "A summary", often) == ["kubernetes"]


# --- import ------------------------------------------------------------------------


def test_dedupe_key_ignores_case_width_and_spacing_but_not_the_date() -> None:
    key = dedupe_key("Flask in 2026: Quickstart", date(2026, 4, 28))

    assert len(key) == 64 and int(key, 16) >= 0
    assert dedupe_key("  FLASK in 2026:\u00a0 quickstart ", date(2026, 4, 28)) == key
    assert dedupe_key("Ｆｌａｓｋ in 2026: Quickstart", date(2026, 4, 28)) == key
    assert dedupe_key("Flask in 2026: Quickstart", date(2026, 4, 29)) != key
    assert dedupe_key("Flask in 2026: Quickstart", None) != key


@pytest.mark.parametrize(
    ("minutes", "words", "expected"),
    [(7, 1401, 7), (None, 1401, 7), (None, 230, 1), (None, 231, 2), (None, 5, 1), (None, None, 0)],
)
def test_reading_minutes_from_source_else_words(minutes, words, expected) -> None:
    assert reading_minutes_for(minutes, words) == expected


def test_import_seed_files(app) -> None:
    report = import_listings(seed_texts(), source_name="Seeds")

    assert (report.created, report.duplicates, report.errors) == (17, 3, [])
    assert report.to_dict() == {"created": 17, "duplicates": 3, "errors": []}
    db.session.rollback()  # read what was committed, not what the session remembers
    assert count(Post) == 17
    (source,) = db.session.scalars(select(Source)).all()
    assert (source.name, source.kind, source.status, source.last_error) == (
        "Seeds",
        "listing",
        "ok",
        "",
    )
    assert source.last_refreshed_at is not None
    post = db.session.scalar(select(Post).where(Post.title.startswith("FastAPI + SQLAlchemy")))
    assert [t.slug for t in post.topics] == ["databases", "fastapi", "postgres", "python"]
    assert (post.reading_minutes, post.word_count, post.published_on) == (
        7,
        1364,
        date(2026, 4, 28),
    )
    assert (post.url, post.owner_id, post.source_id) == (None, None, source.id)


def test_reimport_creates_nothing(app) -> None:
    import_listings(seed_texts())

    report = import_listings(seed_texts())

    assert (report.created, report.duplicates) == (0, 20)
    assert count(Post) == 17
    assert count(Source) == 1


def test_import_duplicates_within_one_file(app) -> None:
    text = (
        "Same Title\n\nOne.\n\nApril 3, 2026\n\n"
        "same  title\n\nTwo.\n\nApr 3, 2026\n\n"
        "Same Title\n\nA later post with the same title.\n\nApril 4, 2026"
    )

    report = import_listings([("dupes.txt", text)])

    assert (report.created, report.duplicates) == (2, 1)
    assert sorted(p.summary for p in db.session.scalars(select(Post))) == [
        "A later post with the same title.",
        "One.",
    ]


def test_import_skips_unreadable_entries_and_keeps_the_rest(app) -> None:
    name, text = seed_texts()[0]
    text = text.replace("April 29, 2026", "Aprill 29, 2026")

    report = import_listings([(name, text)])

    assert (report.created, report.duplicates) == (9, 0)
    assert report.to_dict()["errors"] == [
        {
            "file": name,
            "line": 11,
            "reason": 'unreadable date "Aprill 29, 2026" in the meta line '
            '(write it like "April 3, 2026" or 2026-04-03)',
        }
    ]
    assert count(Post) == 9
    source = db.session.scalar(select(Source))
    assert source.status == "ok"
    assert f"{name} line 11" in source.last_error


def test_import_keeps_existing_topics(app) -> None:
    db.session.add(Topic(slug="python", name="Python (renamed by an admin)"))
    db.session.commit()

    import_listings(seed_texts())

    assert db.session.scalar(select(Topic.name).where(Topic.slug == "python")) == (
        "Python (renamed by an admin)"
    )
    assert db.session.scalar(select(func.count()).where(Topic.slug == "python")) == 1


def test_database_failure_rolls_back_the_whole_import(app) -> None:
    statements: list[str] = []

    def fail_on_topic_links(conn, cursor, statement, *args) -> None:
        statements.append(statement)
        if statement.startswith("INSERT INTO post_topics"):
            raise RuntimeError("disk full")

    event.listen(db.engine, "before_cursor_execute", fail_on_topic_links)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            import_listings(seed_texts())
    finally:
        event.remove(db.engine, "before_cursor_execute", fail_on_topic_links)

    assert any(s.startswith("INSERT INTO posts") for s in statements), "posts were written"
    assert count(Post) == 0
    assert count(Source) == 0
    assert count(Topic) == 0
    # The next import works normally.
    assert import_listings(seed_texts()).created == 17


def test_load_demo_once_when_enabled(app) -> None:
    app.config["DEMO"] = True
    demo_entries = len(parse_listing(DEMO.read_text(encoding="utf-8")).entries)

    report = load_demo()

    assert report is not None
    assert (report.created, report.duplicates, report.errors) == (demo_entries, 0, [])
    assert count(Post) == demo_entries
    assert db.session.scalar(select(Source.name)) == DEMO_SOURCE_NAME
    assert load_demo() is None
    assert count(Post) == demo_entries


def test_load_demo_does_nothing_when_disabled(app) -> None:
    app.config["DEMO"] = False

    assert load_demo() is None
    assert count(Post) == 0


def test_load_demo_leaves_a_filled_catalog_alone(app) -> None:
    import_listings(seed_texts())
    app.config["DEMO"] = True

    assert load_demo() is None
    assert count(Post) == 17

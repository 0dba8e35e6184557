"""The search box's query language: unit tests, and properties over any input for
both engines' compilers (SQLite's FTS5 expression, PostgreSQL's tsquery)."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from app.extensions import db
from app.search import postgres
from app.search.engine import _Plan
from app.search.parser import MAX_LENGTH, MAX_TERMS, Filter, Query, Term, as_typed, parse
from app.search.sqlite import KEY_SEPARATORS, _compile, _fts_string, _is_single_token, title_key
from tests import pg
from tests.pg import pg_schema  # noqa: F401 - a fixture pg_search uses


def words(query: Query) -> list[str]:
    return [term.text for term in query.terms]


class TestWords:
    def test_plain_words_must_all_match(self):
        query = parse("python  asyncio\ttutorial")
        assert query.groups == ((Term("python"),), (Term("asyncio"),), (Term("tutorial"),))

    def test_phrase(self):
        query = parse('"event   loop" python')
        assert query.groups[0] == (Term("event loop", phrase=True),)

    def test_exclusion_of_words_and_phrases(self):
        query = parse('asyncio -django -"class based"')
        assert words(query) == ["asyncio"]
        assert query.excluded == (Term("django"), Term("class based", phrase=True))

    def test_not_keyword_excludes_the_next_term(self):
        assert parse("asyncio NOT django").excluded == (Term("django"),)

    def test_prefix(self):
        assert parse("async*").groups == ((Term("async", prefix=True),),)
        assert parse('"event lo"*').groups == ((Term("event lo", phrase=True, prefix=True),),)

    def test_one_letter_prefix_is_searched_as_a_word_with_a_note(self):
        query = parse("p*")
        assert query.groups == ((Term("p"),),)
        assert "too short" in query.notes[0]

    def test_or_binds_tighter_than_and(self):
        query = parse("flask OR django tutorial")
        assert query.groups == ((Term("flask"), Term("django")), (Term("tutorial"),))

    def test_lowercase_or_is_a_word(self):
        assert words(parse("this or that")) == ["this", "or", "that"]

    def test_stray_operators_are_dropped(self):
        for text in ("OR", "OR python", "python OR", "AND", "-", "- -", "*", '""', "NOT", "+"):
            query = parse(text)
            assert all(t.text not in ("OR", "AND", "NOT") for t in query.terms), text
        assert parse("OR python OR").groups == ((Term("python"),),)

    def test_operators_only_is_an_empty_query(self):
        assert parse('- OR * "" AND ( ) :').is_empty

    def test_unbalanced_quote_runs_to_the_end(self):
        assert parse('asyncio "event loop').groups[1] == (Term("event loop", phrase=True),)

    def test_punctuation_only_words_are_dropped(self):
        assert words(parse("— ... !!! python ???")) == ["python"]

    def test_unknown_field_is_kept_as_words(self):
        query = parse("foo:bar python")
        assert words(query) == ["foo:bar", "python"]
        assert query.filters == ()

    def test_long_input_is_cut_with_a_note(self):
        query = parse("a" * (MAX_LENGTH + 500))
        assert len(query.terms[0].text) == MAX_LENGTH
        assert "1,000 characters" in query.notes[0]

    def test_too_many_terms_are_cut_with_a_note(self):
        query = parse(" ".join(f"w{i}" for i in range(MAX_TERMS + 10)))
        assert len(query.terms) == MAX_TERMS
        assert query.notes


class TestFilters:
    def test_every_field(self):
        query = parse(
            'topic:Python author:"Jane Doe" source:weekly year:2026 before:2026-05-01 '
            "after:2025-02 min:5 max:10 length:short is:saved"
        )
        assert query.filters == (
            Filter("topic", "python"),
            Filter("author", "Jane Doe"),
            Filter("source", "weekly"),
            Filter("year", 2026),
            Filter("before", date(2026, 5, 1)),
            Filter("after", date(2025, 2, 1)),
            Filter("min", 5),
            Filter("max", 10),
            Filter("length", "short"),
            Filter("is", "saved"),
        )
        assert query.groups == ()

    def test_field_names_are_case_insensitive(self):
        assert parse("TOPIC:rust").filters == (Filter("topic", "rust"),)

    def test_negated_filters(self):
        query = parse("-topic:django -is:done")
        assert query.filters == (
            Filter("topic", "django", negated=True),
            Filter("is", "done", negated=True),
        )

    def test_negated_range_is_dropped_with_a_note(self):
        query = parse("-before:2020 python")
        assert query.filters == ()
        assert "isn't supported" in query.notes[0]

    @pytest.mark.parametrize(
        "text",
        [
            "year:26",
            "year:abcd",
            "before:2026-13-01",
            "after:yesterday",
            "min:-3",
            "max:ten",
            "is:nope",
            "length:huge",
            "topic:",
            'author:""',
            "before:2026-02-30",
        ],
    )
    def test_malformed_values_are_ignored_with_a_note(self, text):
        query = parse(f"{text} python")
        assert query.filters == ()
        assert words(query) == ["python"]
        assert len(query.notes) == 1

    def test_canonical_text(self):
        query = parse('flask OR django "event loop" -java async* author:"Jane Doe" year:2026')
        assert (
            str(query) == 'flask OR django "event loop" async* -java author:"Jane Doe" year:2026'
        )

    def test_with_and_without_filter(self):
        query = parse("python")
        narrowed = query.with_filter("topic", "asyncio")
        assert str(narrowed) == "python topic:asyncio"
        assert narrowed.with_filter("topic", "asyncio") == narrowed
        assert narrowed.without_filter("topic", "asyncio") == query


# --- Properties ----------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        '"',
        "-",
        "*",
        "OR",
        "AND",
        "NOT",
        "NEAR",
        "(",
        ")",
        ":",
        "^",
        "{",
        "}",
        "+",
        " ",
        "topic:",
        "author:",
        'author:"',
        "is:",
        "is:saved",
        "is:unread",
        "year:2026",
        "before:",
        "after:2026-05",
        "min:5",
        "max:",
        "length:short",
        "source:x",
        "foo:",
        "café",
        "python",
        "a",
        "asyncio",
        "ß",
        "İ",
        "\u00a0",
        "\ue000",
        "\ue001",
        "—",
        "'",
        "\\",
        "\x00",
        "🐍",
        "a*b",
        "--x",
        "title:",
        "meta:",
        "dgxprivate",
        "''",
    ]
)
QUERY_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(FRAGMENTS, max_size=40).map("".join),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=30).map(" ".join),
)


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    """The search tables' shapes and tokenizers, in memory."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE posts_fts USING fts5(title, summary, author, topics, content,"
        " meta, tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3')"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE post_title_fts USING fts5(key,"
        " tokenize = \"unicode61 remove_diacritics 2 tokenchars ' '\", detail = none)"
    )
    conn.execute(
        "INSERT INTO posts_fts VALUES ('Café python', 'asyncio event loop', 'Jane Doe',"
        " 'Python', '', 'dgxtpython dgxy2026 dgxlshort dgxpublic')"
    )
    return conn


class FakeUser:
    id = 7
    is_authenticated = True


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=QUERY_TEXT, signed_in=st.booleans())
def test_any_input_parses_and_gives_a_valid_engine_query(fts, text, signed_in):
    """No input makes the parser raise, nor the FTS5 expression we build fail."""
    query = parse(text)
    assert parse(str(query)) == query
    user = FakeUser() if signed_in else None
    plan = _Plan(query=query if signed_in else query.without_states(), user=user)
    plan.topic_slugs = [str(f.value) for f in query.filters_for("topic")]
    plan.excluded_topic_slugs = [str(f.value) for f in query.filters_for("topic", negated=True)]
    if query.filters_for("source"):
        plan.source_ids = [1, 2]
    sql = _compile(plan)
    if sql.match is not None:
        fts.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?", (sql.match,))
    key = title_key(" ".join(t.text for t in query.terms))
    if _is_single_token(key):
        try:
            fts.execute(
                "SELECT count(*) FROM post_title_fts WHERE post_title_fts MATCH ?",
                (_fts_string(key),),
            )
        except sqlite3.OperationalError as error:
            # Documented: a letter newer than unicode61's tables splits the key; the
            # engine takes the error as "no exact title match".
            assert "phrase queries are not supported" in str(error)


@given(st.text(max_size=200))
def test_title_key_is_one_space_separated_run(text):
    key = title_key(text)
    assert "  " not in key or len(text) > 64
    assert not any(c in key for c in KEY_SEPARATORS if c != " ")


# --- PostgreSQL: the query as tsquery text -------------------------------------------


def tsquery(text_: str) -> str | None:
    return postgres._compile(_Plan(query=parse(text_), user=None)).params.get("match")


class TestTsquery:
    def test_words_groups_and_exclusions(self):
        assert tsquery("flask OR django tutorial -java") == (
            "(('flask' | 'django')) & ('tutorial') & !'java'"
        )

    def test_prefix(self):
        assert tsquery("async*") == "('async':*)"

    def test_a_phrase_is_matched_within_one_field(self):
        assert tsquery('"event lo"*') == (
            "((('event':A <-> 'lo':*A) | ('event':B <-> 'lo':*B)"
            " | ('event':C <-> 'lo':*C) | ('event':D <-> 'lo':*D)))"
        )

    def test_author_is_weight_c(self):
        assert tsquery('author:"Jane Doe" -author:smith') == (
            "((('Jane':C <-> 'Doe':C))) & !'smith':C"
        )

    def test_words_are_split_as_the_index_splits_them(self):
        # No quote, backslash or operator can reach an operand.
        assert tsquery("don't") == (
            "((('don':A <-> 't':A) | ('don':B <-> 't':B)"
            " | ('don':C <-> 't':C) | ('don':D <-> 't':D)))"
        )
        assert tsquery("foo_bar") is not None and "_" not in tsquery("foo_bar")

    def test_ranking_and_highlighting_query_has_no_weights(self):
        sql = postgres._compile(_Plan(query=parse('"event loop" -x author:y'), user=None))
        assert sql.ranked == "(('event' <-> 'loop'))"

    def test_only_excluded_words(self):
        sql = postgres._compile(_Plan(query=parse("-python"), user=None))
        assert sql.params["match"] == "'python'"
        assert "NOT (p.search_vector @@" in sql.where


@pytest.fixture(scope="module")
def pg_search(tmp_path_factory, request):
    """An app context on a migrated PostgreSQL schema with one post."""
    schema = request.getfixturevalue("pg_schema")
    with pg.emptied_app(tmp_path_factory.mktemp("pg"), schema):
        db.session.execute(
            sql(
                "INSERT INTO posts (title, summary, author, reading_minutes, dedupe_key,"
                " created_at, updated_at) VALUES ('Café python', 'asyncio event loop',"
                " 'Jane Doe', 3, 'one', now(), now())"
            )
        )
        db.session.commit()
        yield


@pytest.mark.parametrize("_db", [pytest.param("postgres", marks=pg.MARKS)])
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=QUERY_TEXT, signed_in=st.booleans())
def test_any_input_gives_a_valid_postgres_query(pg_search, _db, text, signed_in):
    """Whatever the input, the statement we build runs (no tsquery syntax error)."""
    query = parse(text)
    user = FakeUser() if signed_in else None
    plan = _Plan(query=query if signed_in else query.without_states(), user=user)
    plan.topic_slugs = [str(f.value) for f in query.filters_for("topic")]
    plan.topic_ids = [1 for f in query.filters_for("topic")]
    plan.excluded_topic_ids = [2 for f in query.filters_for("topic", negated=True)]
    if query.filters_for("source"):
        plan.source_ids = [1, 2]
    compiled = postgres._compile(plan)
    try:
        db.session.execute(
            sql(f"SELECT count(*) FROM posts AS p WHERE {compiled.where}"),  # noqa: S608
            compiled.params,
        )
        if compiled.ranked:
            db.session.execute(
                sql("SELECT to_tsquery('dogear', :ranked), dogear_title_key(:ranked)"),
                compiled.params,
            )
    finally:
        db.session.rollback()


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("kube", "kube*"),
        ("running kube", "running kube*"),
        ("-djan", "-djan*"),
        ("kube ", "kube "),
        ("k", "k"),
        ('"event lo', '"event lo'),
        ('"event loop"', '"event loop"'),
        ("topic:pyth", "topic:pyth"),
        ("flask OR", "flask OR"),
        ("asyn*", "asyn*"),
        ("", ""),
    ],
)
def test_as_typed_makes_only_the_unfinished_last_word_a_prefix(typed, searched):
    assert as_typed(typed) == searched

"""Input: whatever arrives, the answer is a documented error, never a 500 (issue 11's
fault and attack suite).

Hypothesis fuzzing of every form, query string and importer: whatever arrives, the
answer is a documented error (a 4xx page, an UnreadableFile, an OpmlError, a listing
error), never a 500 and never an exception in the log. Each test builds one app (the
fixtures are function-scoped) and Hypothesis runs its examples against it;
`derandomize=True` makes every run try the same examples, so CI is reproducible.
Fetching never reaches the network: name lookups fail at once. A POST route missing
from the tables fails `test_every_post_route_is_in_the_tables`.

Protections proven here, with the issue 11 case each covers ("case:") and the test
that shows its checker can fail ("can fail:"):

- File parts where a form expects text: case "a form field sent as a file part on
  `/login`, `/account` and `/admin/users` answers 500"
  (`test_a_file_sent_where_a_form_expects_text_is_a_clear_400`; can fail:
  `test_the_file_part_check_can_fail`, `refuse_unexpected_files` removed).
- Request size: case "no `MAX_CONTENT_LENGTH` (an anonymous 10 MB body is read in
  full)" (`test_an_anonymous_big_body_is_a_413_before_it_is_read`; can fail:
  `test_the_request_size_check_can_fail`, no MAX_CONTENT_LENGTH). The upload caps
  are in tests/test_imports.py.
- NUL and other unstorable text: a 400 in forms, dropped from query strings.
- Addresses: case "`dogear users create` accepts `<img src=x onerror=…>@example.com`"
  (`test_users_create_refuses_what_the_forms_refuse`).
- Importer input: case "`dogear posts import -` with binary junk on stdin ends in a
  traceback" (`test_binary_junk_on_stdin_is_a_clear_error_and_writes_nothing`); case
  "a 48 MB file of junk paragraphs took 12x the time of a 12 MB one"
  (`test_parsing_junk_does_work_linear_in_its_size`, by counting work, never the
  clock); case "a single 50 MB line took 943 MB of memory"
  (`test_a_single_20_mb_line_parses_in_bounded_memory` and the 20 MB junk file, by
  tracemalloc); the uploaded formats' 50 MB cases are in tests/test_import_streaming.py.

The malformed `HX-Current-URL` case is tested in tests/test_lists.py
(`test_a_malformed_hx_current_url_is_ignored_not_a_500`), and fuzzed here with the
other htmx headers.
"""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, got_request_exception
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.auth import twofactor
from app.catalog import listing
from app.catalog.listing import (
    MAX_LINE_CHARS,
    ListingEntry,
    ListingError,
    UndecodableListing,
    parse_listing,
    read_listing,
)
from app.extensions import db
from app.fetching import client as fetch_client
from app.imports import ImportedEntry, ImportProblem, UnreadableFile, services
from app.imports.detect import FORMATS, detect
from app.imports.preview import read_file
from app.lists import services as list_services
from app.models import Invite, Post, Source, User, utcnow
from app.sources.opml import OpmlError, parse_opml
from app.tags.services import add_tags
from tests.conftest import Client, sign_in

# Generated zips may repeat a member's name on purpose; zipfile warns as it writes them.
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imports"


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --- what a fuzzed request is made of ------------------------------------------------------

# Any character werkzeug can send (lone surrogates can't be encoded), NUL included.
sendable = st.characters(blacklist_categories=["Cs"])
TRICKY = [
    "",
    " ",
    "0",
    "-1",
    "-0",
    "1.5",
    "1e309",
    "NaN",
    "inf",
    "²",  # str.isdigit() but not int()
    "١٢٣",  # Arabic-Indic digits: int() reads them
    "9" * 19,
    "9" * 40,
    "-" + "9" * 40,
    "\x00",
    "a\x00b",
    "\ufeff",
    "\u202e",
    "<script>alert(1)</script>",
    "%00",
    "%ff",
    "../../etc/passwd",
    "//evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "https://example.org/",
    "http://[::1]/",
    "http://127.0.0.1:1/",
    "https://",
    "https://例え.テスト/パス",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "[]",
    "{}",
    "null",
    '[{"url": 1, "categories": 5}]',
    '[{"url": "https://example.org/feed", "title": "T", "categories": "ab"}]',
    "y",
    "1",
    "true",
    "on",
    "reader@example.com",
    "admin@example.com",
    "x" * 100_000,
    "é" * 20_000,
]
text_value = st.one_of(
    st.text(sendable, max_size=40),
    st.sampled_from(TRICKY),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
# Not latin-1 control characters: a header value the test client can send at all.
header_value = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")),
    st.sampled_from(
        ["true", "false", "", "/", "http://localhost/list", "//evil", "search-typing"]
    ),
)
htmx_headers = st.fixed_dictionaries(
    {},
    optional={
        "HX-Request": header_value,
        "HX-Current-URL": header_value,
        "HX-Target": header_value,
        "HX-Trigger": header_value,
        "HX-Boosted": header_value,
    },
)
ODD_NAMES = ["a[b]", "a[b][c]", "topics[]", "add[]", "[]", "[", "x]]", "__proto__", "csrf_token"]


def field_names(real: list[str]) -> st.SearchStrategy[str]:
    choices = [st.sampled_from(ODD_NAMES), st.text(sendable, min_size=1, max_size=12)]
    if real:
        choices.insert(0, st.sampled_from(real))
    return st.one_of(*choices)


@st.composite
def request_body(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    """Keyword arguments for the test client: a form (urlencoded or multipart, with
    repeated keys, odd names, a file where text is expected), raw bytes that may not be
    UTF-8, or JSON."""
    kind = draw(st.sampled_from(["form", "form", "form", "multipart", "bytes", "json"]))
    weighted = st.one_of(st.sampled_from(names), field_names(names)) if names else field_names([])
    pairs = draw(st.lists(st.tuples(weighted, text_value), max_size=8))
    if kind == "form":
        return {"data": MultiDict(pairs)}
    if kind == "multipart":
        data: dict[str, Any] = {}
        for name, value in pairs:
            data.setdefault(name, []).append(value)
        name = draw(weighted)
        payload = draw(st.binary(max_size=200))
        filename = draw(st.sampled_from(["x.txt", "", "a.csv", "../../x", "é.json"]))
        data.setdefault(name, []).append((io.BytesIO(payload), filename))
        return {"data": data, "content_type": "multipart/form-data"}
    if kind == "bytes":
        raw = draw(
            st.one_of(
                st.binary(max_size=300),
                st.sampled_from(
                    [b"a=%ff%fe", b"title=\xff\xfe\xc0\xaf", b"%", b"=&=&&", b"a[b]=1&a[b]=2"]
                ),
            )
        )
        return {"data": raw, "content_type": "application/x-www-form-urlencoded"}
    return {"data": json.dumps(dict(pairs)), "content_type": "application/json"}


path_id = st.one_of(
    st.just(None),  # the world's own id: most examples reach the real view
    st.just(None),
    st.sampled_from([0, 1, 2**31 - 1]),  # larger: test_ids_past_int32_are_not_found
)


# --- the world the requests land in --------------------------------------------------------


@contextmanager
def no_errors_logged(app: Flask) -> Iterator[list[BaseException]]:
    """Every exception a request raised (Flask logs each as it turns it into a 500)."""
    raised: list[BaseException] = []

    def record(sender: Flask, exception: BaseException, **extra: Any) -> None:
        raised.append(exception)

    got_request_exception.connect(record, app)
    try:
        yield raised
    finally:
        got_request_exception.disconnect(record, app)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fuzzed address is ever looked up: every name fails to resolve."""

    def no_dns(host: str, port: int) -> list[str]:
        raise OSError("no network in the fuzz tests")

    monkeypatch.setattr(fetch_client, "_system_resolver", no_dns)


@pytest.fixture
def world(app: Flask, make_user, make_post) -> dict[str, int]:
    """Something for every id in a route to point at."""
    owner = make_user("owner@example.com")
    post = make_post(topics=["coast"])
    other_post = make_post(topics=["hills"])
    entry = list_services.save_post(owner, post.id)
    add_tags(owner, entry.id, ["fuzz"])
    source = Source(name="Fuzz source", kind="manual")
    invite = Invite(token_hash="f" * 64, expires_at=utcnow() + timedelta(days=3))
    db.session.add_all([source, invite])
    db.session.commit()
    upload, _ = services.store_upload(
        owner, "instapaper.csv", (FIXTURES / "instapaper.csv").read_bytes()
    )
    return {
        "owner": owner.id,
        "post": post.id,
        "other_post": other_post.id,
        "entry": entry.id,
        "tag": entry.tags[0].id if getattr(entry, "tags", None) else 1,
        "topic": post.topics[0].id,
        "source": source.id,
        "invite": invite.id,
        "upload": upload.id,
    }


def take_over(world: dict[str, int], user_id: int) -> dict[str, int]:
    """Give the world's entry, tag and upload to the signed-in user (so the reader's
    routes find their own things rather than 404s)."""
    from app.models import Entry, Tag, Upload

    for model, key in ((Entry, "entry"), (Tag, "tag"), (Upload, "upload")):
        if (thing := db.session.get(model, world[key])) is not None:  # not removed yet
            thing.user_id = user_id
    db.session.commit()
    return world


class Fuzzer:
    """Sends fuzzed requests as one signed-in user and checks each answer."""

    def __init__(self, app: Flask, client: Client, user: Any, raised: list[BaseException]):
        self.app, self.client, self.user, self.raised = app, client, user, raised
        self.last_location: str | None = None
        # One token per session, kept on the client across examples.
        if getattr(client, "fuzz_token", None) is None:
            client.fuzz_token = client.csrf_token("/" if user is not None else "/login")
        self.token = client.fuzz_token

    def sign_in_again(self) -> None:
        if self.user is None:
            return
        if self.client.get("/account").status_code == 200:
            return  # still signed in (only the other sessions ended)
        assert sign_in(self.client, self.user).status_code == 303
        self.token = self.client.fuzz_token = self.client.csrf_token("/")

    def send(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> int:
        headers = {**headers, "X-CSRFToken": self.token}
        try:
            response = self.client.open(url, method=method, headers=headers, **kwargs)
        except Exception as error:  # noqa: BLE001 - raised out of the app: a 500
            pytest.fail(f"{method} {url} raised {error!r}")
        status = response.status_code
        self.last_location = response.headers.get("Location") or response.headers.get(
            "HX-Redirect"
        )
        response.close()
        assert status < 500, f"{method} {url} answered {status}"
        assert not self.raised, f"{method} {url} logged {self.raised!r}"
        return status


def fill(template: str, world: dict[str, int], override: int | None) -> str:
    values = {k: (override if override is not None else v) for k, v in world.items()}
    return template.format(**values)


# --- the routes ----------------------------------------------------------------------------

ACCOUNT = ["email", "password", "confirm", "current"]
READER_POSTS = [
    ("/list/add", ["url", "title"]),
    ("/list/{entry}/refetch", []),
    ("/list/{entry}/position", ["position"]),
    ("/list/save/{post}", []),
    ("/list/save/{other_post}", []),
    ("/list/unsave/{other_post}", []),
    ("/list/{entry}/progress", ["progress", "step"]),
    ("/list/{entry}/archive", ["archived"]),
    ("/list/{entry}/tags", ["tags"]),
    ("/list/tags/{tag}/rename", ["name"]),
    ("/list/{entry}/tags/{tag}/remove", []),
    ("/account/sessions/{entry}/end", []),
    ("/account/two-factor/enable", ["code", "secret"]),
    ("/account/two-factor/disable", ["password", "code"]),
    ("/account/two-factor/recovery-codes", ["password", "code"]),
    ("/login/code", ["code", "remember"]),
    ("/account", [*ACCOUNT, "form", "action"]),
    ("/account/delete", ["email", "password"]),
    ("/account/import", ["file", "existing"]),
    ("/account/import/{upload}", ["existing"]),
    ("/logout", ["next"]),
    ("/account/sign-out-everywhere", ["next"]),
    # Last of all: they may remove what the others point at.
    ("/list/tags/{tag}/delete", []),
    ("/list/{entry}/remove", []),
    ("/account/import/{upload}/discard", []),
]
SIGNS_OUT = {"/logout", "/account/sign-out-everywhere", "/account", "/account/delete"}

ADMIN_POSTS = [
    ("/admin/users", [*ACCOUNT, "is_admin"]),
    ("/admin/invites", ["note", "days", "is_admin"]),
    ("/admin/invites/{invite}/revoke", []),
    ("/admin/users/{owner}/admin", ["is_admin"]),
    ("/admin/users/{owner}/disabled", ["disabled"]),
    ("/admin/users/{owner}/reset-link", []),
    ("/admin/users/{owner}/delete", ["confirm_email"]),
    ("/admin/settings/registration", ["mode"]),
    ("/admin/settings/two-factor", ["required"]),
    (
        "/admin/posts/{post}",
        ["title", "summary", "author", "published_on", "url", "topics", "next"],
    ),
    ("/admin/posts/{post}/fetch", ["next"]),
    ("/admin/posts/{post}/merge", ["q", "into", "next"]),
    ("/admin/posts/remove-demo", []),
    ("/admin/topics", ["name", "slug", "keywords"]),
    ("/admin/topics/{topic}", ["name", "slug", "keywords", "next"]),
    ("/admin/topics/merge", ["topic", "into"]),
    ("/admin/topics/retag", []),
    ("/admin/sources", ["url", "name", "topics", "fetch_full_articles"]),
    ("/admin/sources/{source}", ["url", "name", "topics", "fetch_full_articles"]),
    ("/admin/sources/{source}/refresh", []),
    ("/admin/sources/refresh", []),
    ("/admin/sources/opml", ["file"]),
    ("/admin/sources/opml/import", ["feeds", "add"]),
    ("/admin/posts/{post}/delete", ["next"]),
    ("/admin/sources/{source}/delete", []),
]

QUERY_NAMES = [
    "q",
    "page",
    "sort",
    "state",
    "tag",
    "topic",
    "length",
    "year",
    "author",
    "source",
    "role",
    "status",
    "start",
    "end",
    "actor",
    "action",
    "content",
    "url",
    "title",
    "text",
    "next",
    "run",
    "into",
    "deep",
]
READER_GETS = [
    "/",
    "/search",
    "/list",
    "/list/add",
    "/list/tags",
    "/list/{entry}",
    "/list/{entry}/tags",
    "/list/post/{post}",
    "/posts/{post}",
    "/account",
    "/account/import",
    "/account/import/{upload}",
    "/account/import/runs/{entry}",
    "/account/export",
    "/account/two-factor",
    "/account/two-factor/recovery-codes",
    "/account/delete",
    "/offline",
    "/healthz",
]
ADMIN_GETS = [
    "/admin",
    "/admin/users",
    "/admin/users/{owner}",
    "/admin/users/{owner}/disable",
    "/admin/users/{owner}/delete",
    "/admin/invites",
    "/admin/invites/{invite}/revoke",
    "/admin/audit",
    "/admin/posts",
    "/admin/posts/{post}",
    "/admin/posts/{post}/fetch",
    "/admin/posts/{post}/delete",
    "/admin/posts/{post}/merge",
    "/admin/posts/remove-demo",
    "/admin/topics",
    "/admin/topics/{topic}",
    "/admin/topics/merge",
    "/admin/topics/retag/{entry}",
    "/admin/sources",
    "/admin/sources/{source}",
    "/admin/sources/{source}/row",
    "/admin/sources/{source}/delete",
    "/admin/sources/runs/{entry}",
]
SIGNED_OUT_POSTS = [
    ("/login", ["email", "password", "remember", "next"]),
    ("/register", ["email", "password", "confirm"]),
    ("/forgot", ["email"]),
    ("/invite/{token}", ["email", "password", "confirm"]),
    ("/reset/{token}", ["password", "confirm"]),
    ("/setup/{token}", ["email", "password", "confirm"]),
    ("/login/code", ["code", "remember"]),
]


def every_post_route_is_fuzzed(app: Flask) -> None:
    """A new POST route fails this until it is added to a table above."""
    known = {t for t, _ in READER_POSTS + ADMIN_POSTS + SIGNED_OUT_POSTS}
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        template = rule.rule
        for converter in ("int:", ""):
            template = template.replace(f"<{converter}", "{")
        template = template.replace(">", "}")
        pattern = [part.startswith("{") for part in template.split("/")]
        assert any(
            len(k.split("/")) == len(pattern)
            and all(
                (kp.startswith("{") and is_id) or kp == tp
                for kp, tp, is_id in zip(k.split("/"), template.split("/"), pattern, strict=True)
            )
            for k in known
        ), f"POST {rule.rule} is not fuzzed: add it to tests/faults/test_input.py"


def test_every_post_route_is_in_the_tables(app):
    every_post_route_is_fuzzed(app)


# --- forms ----------------------------------------------------------------------------------


def _send_all(fuzzer: Fuzzer, world: dict[str, int], data: st.DataObject, routes) -> None:
    """One fuzzed request to every route of the table, each drawn afresh."""
    for template, names in routes:
        body = data.draw(request_body(names), label=template)
        headers = data.draw(htmx_headers, label="headers")
        override = data.draw(path_id, label="id")
        fuzzer.send("POST", fill(template, world, override), headers, **body)
        if template in SIGNS_OUT:
            fuzzer.sign_in_again()
        if template == "/admin/settings/two-factor":  # or every later page asks for a code
            twofactor.set_admin_two_factor(fuzzer.user, False)
            db.session.commit()


@fuzz_settings(examples=12)
@given(data=st.data())
def test_reader_forms_never_fail(app, client, reader, world, offline, data):
    take_over(world, reader.id)
    with no_errors_logged(app) as raised:
        _send_all(Fuzzer(app, client, reader, raised), world, data, READER_POSTS)


@fuzz_settings(examples=12)
@given(data=st.data())
def test_admin_forms_never_fail(app, client, admin, world, offline, data):
    with no_errors_logged(app) as raised:
        _send_all(Fuzzer(app, client, admin, raised), world, data, ADMIN_POSTS)


@fuzz_settings(examples=12)
@given(data=st.data())
def test_signed_out_forms_never_fail(app, client, world, offline, data):
    token = st.one_of(
        st.text(sendable.filter(lambda c: c not in "/?#"), max_size=60), st.just("x" * 5000)
    )
    with no_errors_logged(app) as raised:
        fuzzer = Fuzzer(app, client, None, raised)
        for template, names in SIGNED_OUT_POSTS:
            url = template.replace("{token}", data.draw(token) or "t")
            fuzzer.send("POST", url, data.draw(htmx_headers), **data.draw(request_body(names)))


# --- query strings -------------------------------------------------------------------------


query_string = st.lists(
    st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), field_names([])), text_value), max_size=6
)


def _get_all(fuzzer: Fuzzer, world: dict[str, int], data: st.DataObject, paths: list[str]) -> None:
    """One fuzzed query to every page of the list: named parameters with any values,
    or raw bytes (%-escapes and all, maybe not UTF-8)."""
    for template in paths:
        url = fill(template, world, data.draw(path_id, label="id"))
        headers = data.draw(htmx_headers, label="headers")
        query = data.draw(st.one_of(query_string, query_string, st.binary(max_size=120)))
        if isinstance(query, bytes):
            overrides = {"QUERY_STRING": query.decode("latin-1")}
            fuzzer.send("GET", url, headers, environ_overrides=overrides)
        else:
            fuzzer.send("GET", url, headers, query_string=MultiDict(query))


@fuzz_settings(examples=12)
@given(data=st.data())
def test_reader_pages_take_any_query(app, client, reader, world, data):
    take_over(world, reader.id)
    with no_errors_logged(app) as raised:
        _get_all(Fuzzer(app, client, reader, raised), world, data, READER_GETS)


@fuzz_settings(examples=12)
@given(data=st.data())
def test_admin_pages_take_any_query(app, client, admin, world, data):
    with no_errors_logged(app) as raised:
        _get_all(Fuzzer(app, client, admin, raised), world, data, ADMIN_GETS)


# --- importers -----------------------------------------------------------------------------


def _csv(rows: list[list[str]]) -> str:
    return "\n".join(",".join(row) for row in rows)


csv_cell = st.one_of(
    st.text(sendable, max_size=20),
    st.sampled_from(
        [
            '"',
            '""',
            '"a""b',
            'a"b',
            '"unterminated',
            "\r",
            "\r\n",
            "https://example.org/a",
            "ftp://x",
            "1700000000",
            "-1",
            "1e400",
            "2026-02-30",
            "archive",
            "unread",
            "9" * 30,
        ]
    ),
)
HEADERS = [
    "URL,Title,Selection,Folder,Timestamp",  # Instapaper
    "title,url,time_added,tags,status",  # Pocket CSV
    "URL,Title,Document tags,Saved date,Reading progress,Location,Seen",  # Readwise
    "url",
    "",
]
csv_file = st.builds(
    lambda header, rows: (header + "\n" + _csv(rows)).encode(),
    st.sampled_from(HEADERS),
    st.lists(st.lists(csv_cell, max_size=8), max_size=6),
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(sendable, max_size=15),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "url",
                    "title",
                    "entries",
                    "history",
                    "tags",
                    "state",
                    "progress",
                    "savedAt",
                    "labels",
                    "version",
                    "format",
                    "dogear",
                    "posts",
                    "added_at",
                    "activity",
                    "id",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=15,
)
json_file = json_value.map(lambda v: json.dumps(v, allow_nan=True).encode())
DOGEAR_JSON = [
    b'{"format": "dogear", "version": 1, "entries": [{"url": 5, "tags": {"a": 1}}]}',
    b'{"format": "dogear", "version": "x", "entries": {}}',
    b'[{"url": "https://example.org", "labels": [1, null, {"name": []}]}]',
    b'[{"id": 1, "url": "https://example.org", "savedAt": 1e400}]',
]
html_fragment = st.lists(
    st.sampled_from(
        [
            "<!DOCTYPE NETSCAPE-Bookmark-file-1>",
            "<DL><p>",
            "<DT>",
            '<A HREF="https://example.org/a"',
            ' ADD_DATE="99999999999999999999"',
            ' TAGS="a,,b"',
            ' HREF="javascript:x"',
            ">",
            "</A>",
            "<title>Pocket Export</title>",
            "<h1>Read Archive</h1>",
            "<ul><li>",
            "<a href=",
            '"',
            "&amp;",
            "&#xffffff;",
            "&bogus;",
            "<!--",
            "<![CDATA[",
            "</DL>",
            "\x00",
            "é",
        ]
    ),
    max_size=30,
).map(lambda parts: "".join(parts).encode())


@st.composite
def zip_file(draw: st.DrawFn) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for _ in range(draw(st.integers(0, 3))):
            name = draw(
                st.sampled_from(
                    [
                        "part_000000.csv",
                        "omnivore-export/metadata_0_to_20.json",
                        "omnivore-export/content/x.html",
                        "../evil.csv",
                        "a/",
                        "readme.txt",
                    ]
                )
            )
            body = draw(st.one_of(csv_file, json_file, html_fragment, st.binary(max_size=100)))
            archive.writestr(name, body)
    data = buffer.getvalue()
    if draw(st.booleans()):
        cut = draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:cut]  # a damaged zip
    return data


import_file = st.one_of(
    st.binary(max_size=400),
    csv_file,
    json_file,
    st.sampled_from(DOGEAR_JSON),
    html_fragment,
    zip_file(),
    st.sampled_from(
        [
            b"\xef\xbb\xbf",
            b"\xff\xfe\x00",
            b"\xfe\xff\xd8\x00",
            b"PK\x03\x04",
            b"PK\x05\x06" + b"\0" * 18,
        ]
    ),
)


def _check_parsed(items: Iterator[Any]) -> None:
    for item in items:
        assert isinstance(item, ImportedEntry | ImportProblem), item


@fuzz_settings(examples=300)
@given(data=import_file, name=st.sampled_from(sorted(FORMATS)))
def test_every_format_parses_or_says_why(app, data, name):
    """Each format's parse(), given anything: entries and problems, or UnreadableFile."""
    with suppress(UnreadableFile):
        _check_parsed(FORMATS[name].parse(data))
    try:
        detected = detect(data)
    except UnreadableFile:
        return
    try:
        _check_parsed(detected.parse(data))
        read_file(data)
    except UnreadableFile:
        pass


listing_text = st.one_of(
    st.text(sendable, max_size=300),
    st.lists(
        st.sampled_from(
            [
                "A title",
                "\n",
                "\n\n",
                "\r\n",
                "\r",
                "By Ada Writer · March 3, 2026 · 7 min read",
                "February 30, 2026",
                "· 99999999999999999999 min read",
                "· 12,000,000,000 words",
                "Summary text here.",
                "\u200b",
                "\x00",
                "·",
                "2026-13-45",
                "x" * 1000,
            ]
        ),
        max_size=20,
    ).map("".join),
)


@fuzz_settings(examples=200)
@given(text=listing_text, raw=st.binary(max_size=300))
def test_the_listing_parser_reads_or_reports(text, raw):
    parsed = parse_listing(text)
    assert all(isinstance(e, ListingEntry) for e in parsed.entries)
    assert all(isinstance(e, ListingError) for e in parsed.errors)
    for data in (raw, text.encode("utf-8", "surrogatepass")):
        try:
            for item in read_listing(io.BytesIO(data), filename="fuzz.txt"):
                assert isinstance(item, ListingEntry | ListingError)
        except UndecodableListing:
            pass


opml_file = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                '<?xml version="1.0"?>',
                "<opml>",
                "<OPML>",
                "<body>",
                "<head/>",
                "<outline",
                ' xmlUrl="https://example.org/feed"',
                ' xmlUrl=""',
                ' text="T"',
                ' category="a,/b"',
                ' htmlUrl="javascript:x"',
                ">",
                "/>",
                "</outline>",
                "</body>",
                "</opml>",
                '<!DOCTYPE x [<!ENTITY a "b">]>',
                "&a;",
                "\x00",
                "é",
            ]
        ),
        max_size=25,
    ).map(lambda parts: "".join(parts).encode()),
)


@fuzz_settings(examples=200)
@given(data=opml_file)
def test_opml_parses_or_says_why(data):
    with suppress(OpmlError):
        parse_opml(data)


@fuzz_settings(examples=40)
@given(
    data=import_file,
    filename=st.sampled_from(["x.csv", "x.zip", "", "é.json", "../x.html", "a" * 400]),
    headers=htmx_headers,
)
def test_uploads_never_fail(app, client, reader, data, filename, headers):
    with no_errors_logged(app) as raised:
        fuzzer = Fuzzer(app, client, reader, raised)
        status = fuzzer.send(
            "POST",
            "/account/import",
            headers,
            data={"file": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
        )
        assert status in (303, 400, 413, 422) or (status == 200 and headers.get("HX-Request"))
        preview = fuzzer.last_location
        if preview:  # a preview: show it, then confirm it
            fuzzer.send("GET", preview, {})
            fuzzer.send("POST", preview, {}, data={"existing": "skip"})


HUGE_IDS = [
    "/posts/{n}",
    "/list/{n}",
    "/list/tags/{n}/delete",
    "/admin/users/{n}",
    "/admin/posts/{n}",
    "/account/import/{n}",
]


def test_ids_past_int32_are_not_found(app, client, admin):
    with no_errors_logged(app) as raised:
        fuzzer = Fuzzer(app, client, admin, raised)
        for template in HUGE_IDS:
            for n in (2**31, 2**63 - 1, 2**63, 10**30):
                for method in ("GET", "POST"):
                    fuzzer.send(method, template.format(n=n), {})


# === fields no form should take (from tests/test_app.py) ================================


@pytest.mark.parametrize("path", ["/login", "/account", "/admin/users", "/list/add"])
def test_a_file_sent_where_a_form_expects_text_is_a_clear_400(admin, client, path):
    a_file_part_is_a_clear_400(client, path)


def a_file_part_is_a_clear_400(client: Client, path: str) -> None:
    """The checker: text fields sent as file parts (multipart/form-data) get a 400
    that says why, whatever the form."""
    from io import BytesIO

    token = client.csrf_token()
    response = client.post(
        path,
        data={
            "csrf_token": token,
            "email": (BytesIO(b"x@example.com"), "email.txt"),
            "url": (BytesIO(b"https://example.org/"), "u.txt"),
            "current": (BytesIO(b"x"), "p.txt"),
            "password": (BytesIO(b"x"), "p.txt"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "take files; send it as text" in response.get_data(as_text=True)


def test_the_file_part_check_can_fail(app, admin, client):
    """Without `refuse_unexpected_files`, /login reads a file part as its email (the
    issue's 500), and the checker catches it."""
    from app.security import refuse_unexpected_files

    app.before_request_funcs[None].remove(refuse_unexpected_files)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 page, as in production
    with pytest.raises(AssertionError):
        a_file_part_is_a_clear_400(client, "/login")


# --- request size: MAX_CONTENT_LENGTH ---------------------------------------------------


class _CountingStream(io.BytesIO):
    """A request body that counts how much of it the app read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.taken += len(line)
        return line


def a_big_body_is_a_413_before_it_is_read(app: Flask, size: int) -> None:
    """The checker: an anonymous POST of `size` bytes (more than MAX_CONTENT_LENGTH)
    gets a 413 with next to nothing of its body read."""
    body = _CountingStream(b"email=" + b"x" * (size - 6))
    response = app.test_client().post(
        "/login",
        input_stream=body,
        content_type="application/x-www-form-urlencoded",
        content_length=size,
    )
    assert response.status_code == 413, response.status_code
    assert body.taken < 64 * 1024, f"{body.taken:,} of {size:,} bytes read"


def test_an_anonymous_big_body_is_a_413_before_it_is_read(app):
    assert 50_000_000 < app.config["MAX_CONTENT_LENGTH"] <= 52_000_000  # the import limit's
    app.config["MAX_CONTENT_LENGTH"] = 100_000  # as the default's 51 MB, only quicker
    a_big_body_is_a_413_before_it_is_read(app, 1_000_000)


def test_the_request_size_check_can_fail(app, monkeypatch):
    """With no MAX_CONTENT_LENGTH (as before issue 11), the body is read in full and
    the checker catches it."""
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", None)
    with pytest.raises(AssertionError):
        a_big_body_is_a_413_before_it_is_read(app, 1_000_000)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/list/add", {"url": "https://example.org/\x00", "title": "t"}),
        ("/login", {"email": "a\x00@example.com", "password": "x"}),
        ("/account", {"current": "x\x00", "password": "y", "confirm": "y"}),
    ],
)
def test_a_form_with_text_no_database_can_store_is_a_clear_400(reader, client, path, data):
    response = client.submit(path, data)
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["/search?q=a%00b", "/?author=x%00", "/list?tag=%00a"])
def test_a_nul_in_a_query_parameter_is_dropped_not_a_500(reader, client, query):
    assert client.get(query).status_code == 200


# === `dogear users create` checks the address as the forms do (from tests/test_csrf.py) ===


@pytest.mark.parametrize(
    "address", ["<img src=x onerror=alert(1)>@example.com", "no-at-sign", "a@b@example.com"]
)
def test_users_create_refuses_what_the_forms_refuse(app: Flask, address: str):
    result = app.test_cli_runner().invoke(
        args=["users", "create", address], input="a long password\n"
    )
    assert result.exit_code != 0
    assert "is not a valid email address" in result.output
    assert "Enter an email address like name@example.com." in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_takes_a_good_address(app: Flask):
    result = app.test_cli_runner().invoke(
        args=["users", "create", " Ada@Example.com "], input="a long password\n"
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User.email)) == "ada@example.com"


# === importer input (from tests/test_import_load.py) =====================================

# Junk input is a clear error, and parsing is linear in time and bounded in memory
# (measured by counting work and by tracemalloc, never by the clock). These helpers
# also make the big imports of test_load_and_concurrency.py and test_crash_and_recovery.py.

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

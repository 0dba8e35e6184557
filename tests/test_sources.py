"""Sources and feeds: parsing every feed format, adding by address (with discovery),
refreshing in the worker (conditional requests, back-off, dedupe), refusing hostile
XML, OPML in and out, listing files by URL, the CLI, and the admin page's htmx and
no-JavaScript paths.

Feeds come from a local server on 127.0.0.1 (allowed through FETCH_ALLOW_PRIVATE);
jobs run when the test says so, as the worker would."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import feedparser
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import pending_count, run_pending
from app.models import AuditEvent, FetchState, JobRun, Post, Source, Topic, utcnow
from app.sources import feeds, opml, services
from app.sources.discovery import find_feed_links
from app.sources.refresh import RefreshOutcome, _claim, refresh_source
from app.sources.schedule import _RunCursor
from app.sources.tasks import enqueue_due_refreshes
from tests.conftest import HTMX, sign_in
from tests.test_saving import ARTICLE

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
RSS = "application/rss+xml"
ATOM = "application/atom+xml"


def fixture(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


@pytest.fixture
def site(app, web):
    """The local test site with every fixture feed, reachable by the guarded client."""
    app.config["FETCH_ALLOW_PRIVATE"] = ["127.0.0.1/32"]
    app.config["FETCH_TIMEOUT"] = 5
    web.add("/rss2.xml", fixture("rss2.xml"), content_type=f"{RSS}; charset=utf-8")
    web.add("/rss1.rdf", fixture("rss1.rdf"), content_type="application/rdf+xml")
    web.add("/atom.xml", fixture("atom.xml"), content_type=ATOM)
    web.add("/feed.json", fixture("feed.json"), content_type="application/feed+json")
    web.add("/blog", fixture("page.html"))
    web.add("/nofeed", fixture("nofeed.html"))
    web.add("/bomb.xml", fixture("billion_laughs.xml"), content_type=RSS)
    web.add("/xxe.xml", fixture("xxe.xml"), content_type=RSS)
    web.add("/listing.txt", fixture("listing.txt"), content_type="text/plain; charset=utf-8")
    return web


def posts(**where) -> list[Post]:
    stmt = select(Post).order_by(Post.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(Post, key) == value)
    return list(db.session.scalars(stmt))


def post_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Post))


def source_named(name: str) -> Source:
    return db.session.scalar(select(Source).where(Source.name == name))


def make_source(url: str, name: str = "Feed", **values) -> Source:
    source = Source(name=name, kind=values.pop("kind", "feed"), url=url, **values)
    db.session.add(source)
    db.session.commit()
    return source


def refresh(source: Source) -> RefreshOutcome:
    outcome = refresh_source(source.id)
    db.session.rollback()
    db.session.refresh(source)
    return outcome


def add(client, url: str, *, htmx: bool = False, **fields):
    return client.submit("/admin/sources", {"url": url, **fields}, htmx=htmx)


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# --- parsing ---------------------------------------------------------------------------


def test_rss2_entries_are_plain_records_with_absolute_links():
    feed = feeds.parse_feed(fixture("rss2.xml"), "http://example.org/feeds/rss2.xml", RSS)
    assert feed.format == "RSS 2.0"
    assert feed.title == "Tidewater Notes"
    assert feed.site_url == "http://example.org/"
    first = feed.entries[0]
    assert first.guid == "tidewater-1"
    assert first.url == "http://example.org/posts/harbours?utm_source=rss"
    assert first.title == "Quiet harbours of the northern coast"  # HTML in the title dropped
    assert first.author == "Maren Holt"
    assert first.published is not None and first.published.date() == date(2026, 11, 24)
    assert 'href="http://example.org/breakwater"' in first.content_html  # relative resolved
    assert first.categories == ("Sailing", "python")
    undated = feed.entries[2]
    assert undated.published is None and undated.updated is None


def test_rss1_atom_and_json_feed_parse():
    rdf = feeds.parse_feed(fixture("rss1.rdf"), "http://example.org/rss1.rdf")
    assert rdf.format == "RSS 1.0"
    assert [e.title for e in rdf.entries] == [
        "Ownership in Rust, explained with library books",
        "Reading tide tables",
    ]
    assert rdf.entries[0].url == "http://example.org/ledger/rust-ownership"
    assert rdf.entries[0].guid == "/ledger/rust-ownership"  # rdf:about, as written
    assert rdf.entries[0].updated.date() == date(2026, 11, 20)  # dc:date

    atom = feeds.parse_feed(fixture("atom.xml"), "http://example.org/atom.xml", ATOM)
    assert atom.format == "Atom 1.0"
    entry = atom.entries[0]
    assert entry.title == "Async TaskGroups in practice"
    assert entry.url == "http://example.org/atomblog/posts/taskgroups"  # xml:base
    assert entry.published.isoformat() == "2026-11-25T08:00:00"  # UTC
    assert 'href="http://example.org/docs/asyncio"' in entry.content_html
    assert entry.author == "Sela Okafor"
    assert "XHTML" in atom.entries[1].content_html
    assert atom.entries[1].summary_html == ""

    json_feed = feeds.parse_feed(fixture("feed.json"), "http://example.org/feed.json")
    assert json_feed.format == "JSON Feed 1.1"
    assert json_feed.title == "Kettle & Code"
    assert json_feed.site_url == "http://example.org/kettle/"
    docker, plain, untitled = json_feed.entries
    assert docker.url == "http://example.org/kettle/docker-layers"
    assert docker.published.isoformat() == "2026-11-22T12:00:00"
    assert docker.categories == ("Docker", "containers")
    assert plain.guid == "17"
    assert "&lt;angle brackets&gt;" in plain.content_html
    assert untitled.url is None and untitled.title == ""


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>not a feed</body></html>",
        b'{"hello": "world"}',
        b"{not json",
        b"[" * 100_000,
        b'<?xml version="1.0"?><note>hi</note>',
    ],
)
def test_what_is_not_a_feed_is_a_clear_error(body):
    with pytest.raises(feeds.FeedError):
        feeds.parse_feed(body, "http://example.org/x")


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml"])
def test_entity_declarations_are_refused_before_feedparser(name, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("feedparser must not see this document")

    monkeypatch.setattr(feedparser, "parse", never)
    with pytest.raises(feeds.FeedError, match="XML entities Dogear refuses to expand"):
        feeds.parse_feed(fixture(name), "http://example.org/feed.xml", RSS)


def test_feedparser_gets_a_file_object_never_a_string(monkeypatch):
    seen = []
    real = feedparser.parse

    def spy(source, *args, **kwargs):
        seen.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(feedparser, "parse", spy)
    # A "feed" whose body is a path: a string would make feedparser open the file.
    with pytest.raises(feeds.FeedError):
        feeds.parse_feed(b"/etc/passwd", "http://example.org/feed.xml", RSS)
    feeds.parse_feed(fixture("rss2.xml"), "http://example.org/feed.xml", RSS)
    assert seen and all(hasattr(source, "read") for source in seen)


def test_discovery_prefers_the_main_feed_over_comments():
    links = find_feed_links(fixture("page.html").decode(), "http://example.org/blog")
    assert [link.url for link in links] == [
        "http://example.org/atom.xml",
        "http://example.org/rss2.xml",
        "http://example.org/atomblog/comments.xml",
    ]
    assert links[0].label == "“Field Notes”"
    assert find_feed_links("<p>nothing</p>", "http://example.org/") == []


# --- refreshing: entries to posts -------------------------------------------------------


def test_refresh_creates_catalog_posts_from_an_rss_feed(app, site):
    source = make_source(site.url("/rss2.xml"), "Tidewater")
    outcome = refresh(source)
    assert outcome.result == "updated"
    assert (outcome.created, outcome.updated) == (3, 0)  # the repeated guid is skipped
    made = posts(source_id=source.id)
    assert [p.title for p in made] == [
        "Quiet harbours of the northern coast",
        "The breakwater",
        "An undated note",
    ]
    harbours, breakwater, undated = made
    assert harbours.owner_id is None and harbours.guid == "tidewater-1"
    assert harbours.url == site.url("/posts/harbours")  # normalized: utm_ gone
    assert harbours.published_on == date(2026, 11, 24)
    assert harbours.author == "Maren Holt"
    assert harbours.site_name == "Tidewater Notes"
    # Full content: sanitized, links absolute, images as links, kept for the reader view.
    assert harbours.fetch_state == FetchState.DONE.value
    assert harbours.content_kind == "article"
    assert "<script" not in harbours.content and "onclick" not in harbours.content
    assert f'href="{site.url("/breakwater")}"' in harbours.content
    assert "Image: A boat at dawn" in harbours.content
    assert "Nobody remembers" in harbours.content_text
    assert harbours.word_count and harbours.reading_minutes == 1
    assert harbours.summary == "The harbour at Skarvik wakes before the gulls do."
    assert {t.slug for t in harbours.topics} == {"python"}  # category matched by slug
    # Summary only: nothing to read in Dogear yet, the summary's reading time.
    assert breakwater.fetch_state == FetchState.NONE.value and breakwater.content is None
    assert breakwater.reading_minutes == 1
    # No date in the feed: the day it arrived.
    assert undated.published_on == utcnow().date()
    assert source.status == "ok" and source.last_error == ""
    assert source.posts_created == 3 and source.posts_updated == 0
    assert source.last_success_at is not None
    assert source.next_refresh_at - source.last_refreshed_at == timedelta(minutes=60)


def test_every_format_refreshes(app, site):
    counts = {}
    for path in ("/rss1.rdf", "/atom.xml", "/feed.json"):
        source = make_source(site.url(path), path)
        counts[path] = refresh(source).created
    assert counts == {"/rss1.rdf": 2, "/atom.xml": 2, "/feed.json": 3}
    taskgroups = posts(url=site.url("/atomblog/posts/taskgroups"))[0]
    assert taskgroups.title == "Async TaskGroups in practice"
    assert "<h2>Cancelling</h2>" in taskgroups.content  # h1 demoted in content
    assert {"asyncio", "python"} <= {t.slug for t in taskgroups.topics}  # category + keywords
    docker = posts(url=site.url("/kettle/docker-layers"))[0]
    assert "docker" in {t.slug for t in docker.topics}  # category matched by name
    untitled = posts(source_id=source.id)[-1]
    assert untitled.title.startswith("An item without a title")
    assert untitled.url is None


def test_a_changed_entry_is_updated_not_duplicated(app, site):
    source = make_source(site.url("/rss2.xml"))
    refresh(source)
    changed = fixture("rss2.xml").replace(
        b"<title>The breakwater</title>", b"<title>The breakwater, revised</title>"
    )
    site.add("/rss2.xml", changed, content_type=RSS)
    outcome = refresh(source)
    assert (outcome.created, outcome.updated) == (0, 1)
    assert post_count() == 3
    assert posts(guid="tidewater-2")[0].title == "The breakwater, revised"
    assert source.posts_updated == 1
    # Unchanged again: nothing counts as updated.
    assert refresh(source).updated == 0


def test_entries_without_guid_match_by_url_then_title_and_date(app, site):
    day = b"<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate>"
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>No ids</title>'
        b"<item><title>With a link</title><link>/a</link>" + day + b"</item>"
        b"<item><title>Without a link</title>" + day + b"<description>Text only.</description>"
        b"</item></channel></rss>"
    )
    site.add("/noids.xml", body, content_type=RSS)
    source = make_source(site.url("/noids.xml"))
    assert refresh(source).created == 2
    site.add("/noids.xml", body.replace(b"Text only.", b"Text, edited."), content_type=RSS)
    outcome = refresh(source)
    assert (outcome.created, outcome.updated) == (0, 1)
    assert posts(title="Without a link")[0].summary == "Text, edited."
    assert post_count() == 2


def test_a_post_already_in_the_catalog_from_elsewhere_is_left_alone(app, site, make_post):
    other = make_post(url=site.url("/posts/breakwater"), title="Imported elsewhere")
    source = make_source(site.url("/rss2.xml"))
    outcome = refresh(source)
    assert outcome.created == 2  # the harbours and the undated note
    db.session.refresh(other)
    assert other.title == "Imported elsewhere" and other.source_id is None
    assert len(posts(url=site.url("/posts/breakwater"))) == 1
    changed = fixture("rss2.xml").replace(b"The breakwater<", b"The breakwater, revised<")
    site.add("/rss2.xml", changed, content_type=RSS)
    assert refresh(source).created == 0
    db.session.refresh(other)
    assert other.title == "Imported elsewhere"


def test_title_and_date_recognise_a_post_a_listing_made(app, site):
    from app.catalog.importer import import_listings

    import_listings(
        [("coast.txt", "The breakwater\n\nGranite.\n\nNovember 23, 2026 · 4 min · 900 words · M")]
    )
    source = make_source(site.url("/rss2.xml"))
    assert refresh(source).created == 2
    assert len(posts(title="The breakwater")) == 1


def test_a_reader_s_saved_page_is_not_touched(app, site, make_user):
    from app.lists.services import add_article

    reader = make_user()
    added = add_article(reader, site.url("/posts/breakwater"), "My title")
    source = make_source(site.url("/rss2.xml"))
    refresh(source)
    private = db.session.get(Post, added.entry.post_id)
    assert private.owner_id == reader.id and private.source_id is None
    assert len(posts(url=site.url("/posts/breakwater"))) == 1


def test_source_topics_go_on_every_post(app, site):
    sailing = Topic(slug="sailing", name="Sailing")
    coast = Topic(slug="coast", name="Coast")
    db.session.add_all([sailing, coast])
    db.session.commit()
    source = make_source(site.url("/rss2.xml"), topics=[coast])
    refresh(source)
    for post in posts(source_id=source.id):
        assert "coast" in {t.slug for t in post.topics}
    harbours = posts(guid="tidewater-1")[0]
    assert {"coast", "sailing", "python"} <= {t.slug for t in harbours.topics}


def test_fetch_full_articles_queues_the_summary_only_entries(app, site):
    site.add("/posts/breakwater", ARTICLE)
    source = make_source(site.url("/rss2.xml"), fetch_full_articles=True)
    refresh(source)
    breakwater = posts(guid="tidewater-2")[0]
    assert breakwater.fetch_state == FetchState.PENDING.value
    harbours = posts(guid="tidewater-1")[0]
    assert harbours.fetch_state == FetchState.DONE.value  # the feed carried it
    assert pending_count() == 2  # breakwater and the undated note
    run_pending()
    db.session.rollback()
    breakwater = posts(guid="tidewater-2")[0]
    assert breakwater.fetch_state == FetchState.DONE.value
    assert "pollock" in breakwater.content_text
    assert breakwater.title == "The breakwater"  # the feed's title stays
    assert site.hits("/posts/breakwater") == 1
    refresh(source)
    assert pending_count() == 0  # never asked for twice


def test_writes_go_in_short_batches(app, site):
    items = "".join(
        f"<item><title>Entry {n}</title><link>/e/{n}</link><guid>g{n}</guid></item>"
        for n in range(25)
    )
    site.add(
        "/many.xml",
        f'<rss version="2.0"><channel><title>Many</title>{items}</channel></rss>',
        content_type=RSS,
    )
    app.config["SOURCES_BATCH_SIZE"] = 10
    begun = []
    from sqlalchemy import event

    listener = lambda conn: begun.append(1)  # noqa: E731
    event.listen(db.engine, "begin", listener)
    try:
        source = make_source(site.url("/many.xml"))
        assert refresh(source).created == 25
    finally:
        event.remove(db.engine, "begin", listener)
    assert len(begun) >= 3 + 2  # three batches, plus the claim and the finish


def test_a_lost_lease_stops_the_refresh(app, site):
    source = make_source(site.url("/rss2.xml"))
    lease = _claim(source.id, timedelta(minutes=10))
    assert refresh_source(source.id).result == "skipped"  # held by "another worker"
    assert lease is not None and post_count() == 0


# --- conditional requests, failures, hostile feeds --------------------------------------


def test_304_changes_nothing_but_the_refresh_times(app, site):
    body = fixture("rss2.xml")
    seen_etags = []

    def handler(request):
        seen_etags.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            request.send_response(304)
            request.send_header("ETag", '"v1"')
            request.send_header("Connection", "close")
            request.end_headers()
            return
        request.send_response(200)
        request.send_header("Content-Type", RSS)
        request.send_header("ETag", '"v1"')
        request.send_header("Last-Modified", "Tue, 24 Nov 2026 08:00:00 GMT")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(body)

    site.add_handler("/etag.xml", handler)
    source = make_source(site.url("/etag.xml"))
    refresh(source)
    assert source.etag == '"v1"' and source.last_modified.startswith("Tue, 24 Nov")
    before = {
        c: getattr(source, c)
        for c in ("etag", "last_modified", "last_success_at", "posts_created", "posts_updated")
    }
    snapshot = [(p.id, p.title, p.updated_at) for p in posts()]
    first_refresh = source.last_refreshed_at
    assert refresh(source).result == "not_modified"
    assert seen_etags == [None, '"v1"']
    assert site.hits("/etag.xml") == 2
    assert site.requests[-1].headers.get("If-Modified-Since") == "Tue, 24 Nov 2026 08:00:00 GMT"
    assert {c: getattr(source, c) for c in before} == before
    assert [(p.id, p.title, p.updated_at) for p in posts()] == snapshot
    assert source.last_refreshed_at > first_refresh
    assert source.next_refresh_at > source.last_refreshed_at


def test_a_failing_source_backs_off(app, site):
    site.add("/down.xml", "oops", status=503)
    source = make_source(site.url("/down.xml"))
    waits = []
    for _ in range(4):
        assert refresh(source).result == "failed"
        waits.append(source.next_refresh_at - source.last_refreshed_at)
    assert source.status == "error" and source.failures == 4
    assert source.last_error == "the site answered 503"
    assert waits == [timedelta(minutes=m) for m in (60, 120, 240, 480)]
    app.config["SOURCES_MAX_BACKOFF_MINUTES"] = 300
    refresh(source)
    assert source.next_refresh_at - source.last_refreshed_at == timedelta(minutes=300)
    # It works again: back to the normal interval.
    site.add("/down.xml", fixture("rss2.xml"), content_type=RSS)
    refresh(source)
    assert source.status == "ok" and source.failures == 0 and source.last_error == ""
    assert source.next_refresh_at - source.last_refreshed_at == timedelta(minutes=60)


@pytest.mark.parametrize("path", ["/bomb.xml", "/xxe.xml"])
def test_hostile_xml_is_refused_and_nothing_is_written(app, site, path):
    source = make_source(site.url(path))
    outcome = refresh(source)
    assert outcome.result == "failed"
    assert source.last_error == "the feed uses XML entities Dogear refuses to expand"
    assert post_count() == 0
    assert source.posts_created == 0


def test_an_oversize_feed_is_cut_at_the_cap(app, site):
    app.config["FETCH_MAX_BYTES"] = 1000
    source = make_source(site.url("/rss2.xml"))
    assert refresh(source).result == "failed"
    assert source.last_error == "the feed is too large (over 1 KB)"
    assert post_count() == 0


def test_a_private_address_is_refused_unless_allowed(app, web, client, admin):
    web.add("/rss2.xml", fixture("rss2.xml"), content_type=RSS)
    response = add(client, web.url("/rss2.xml"))
    assert response.status_code == 422
    assert "private network" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Source)) == 0
    source = make_source(web.url("/rss2.xml"))
    assert refresh(source).result == "failed"
    assert "private network" in source.last_error
    assert web.hits("/rss2.xml") == 0


# --- the periodic job and refresh-all ---------------------------------------------------


def test_the_periodic_job_picks_due_sources_only(app, site):
    now = utcnow()
    due = make_source(site.url("/rss2.xml"), "Due", next_refresh_at=now - timedelta(minutes=1))
    new = make_source(site.url("/atom.xml"), "Never read")
    later = make_source(site.url("/rss1.rdf"), "Later", next_refresh_at=now + timedelta(hours=1))
    busy = make_source(
        site.url("/feed.json"),
        "Held by a worker",
        next_refresh_at=now - timedelta(minutes=1),
        refresh_claimed_at=now,
    )
    make_source(None, "Imported file", kind="listing")
    assert enqueue_due_refreshes() == 2
    assert enqueue_due_refreshes() == 0  # queued once, not every minute
    run_pending()
    db.session.rollback()
    assert {s.name for s in db.session.scalars(select(Source).where(Source.status == "ok"))} == {
        due.name,
        new.name,
    }
    assert site.hits("/rss1.rdf") == 0 and site.hits("/feed.json") == 0
    assert later.id and busy.id


def test_a_dropped_refresh_comes_back_when_its_reservation_runs_out(app, site):
    source = make_source(site.url("/rss2.xml"))
    assert enqueue_due_refreshes() == 1
    from app.jobs import huey

    huey.flush()  # the worker died with the job
    db.session.execute(db.update(Source).values(next_refresh_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert enqueue_due_refreshes() == 1
    run_pending()
    db.session.refresh(source)
    assert source.status == "ok"


def test_refresh_all_reports_progress_on_a_job_run(app, site, client, admin):
    for path in ("/rss2.xml", "/atom.xml", "/down.xml"):
        make_source(site.url(path), path)
    site.add("/down.xml", "nope", status=500)
    response = client.submit("/admin/sources/refresh", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    run = db.session.scalar(select(JobRun))
    assert run.status == "queued" and run.total == 3 and run.done == 0
    assert f'hx-get="/admin/sources/runs/{run.id}"' in html and "every 1s" in html
    # Asking again while it runs returns the same run.
    client.submit("/admin/sources/refresh", htmx=True)
    assert db.session.scalar(select(func.count()).select_from(JobRun)) == 1
    run_pending()
    db.session.rollback()
    run = db.session.get(JobRun, run.id)
    assert run.status == "done" and run.done == 3
    assert run.message == "Refreshed 3 sources: 5 new posts, 0 updated; 1 failed."
    poll = client.htmx_get(f"/admin/sources/runs/{run.id}")
    text = poll.get_data(as_text=True)
    assert "every 1s" not in text  # polling stops
    assert 'id="sources-table"' in text and "hx-swap-oob" in text
    assert "Refreshed 3 sources" in text
    assert "HX-Request" in poll.headers["Vary"]
    assert "source.refresh_all" in audit_actions()


def test_refresh_all_without_javascript(app, site, client, admin):
    make_source(site.url("/rss2.xml"))
    response = client.submit("/admin/sources/refresh")
    assert response.status_code == 303
    run = db.session.scalar(select(JobRun))
    assert response.headers["Location"] == f"/admin/sources?run={run.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reload to see how far it is" in page
    run_pending()
    page = client.get(f"/admin/sources?run={run.id}").get_data(as_text=True)
    assert "Refreshed 1 source: 3 new posts" in page
    assert client.get(f"/admin/sources/runs/{run.id}").status_code == 302


def test_a_refresh_all_a_dead_worker_dropped_resumes_from_its_cursor(app, site):
    sources = [make_source(site.url(p), p) for p in ("/rss2.xml", "/atom.xml", "/rss1.rdf")]
    run, _ = services.start_refresh_all(None)
    from app.jobs import huey

    huey.flush()
    # The dead worker had done the first source and stopped reporting long ago.
    cursor = _RunCursor.of(run)
    cursor.after, cursor.owner = sources[0].id, "dead-worker"
    cursor.beat = (utcnow() - timedelta(hours=1)).isoformat()
    cursor.save(run)
    run.status, run.done = "running", 1
    db.session.commit()
    enqueue_due_refreshes()  # also requeues the stalled run
    huey_tasks = pending_count()
    assert huey_tasks >= 1
    run_pending()
    db.session.rollback()
    run = db.session.get(JobRun, run.id)
    assert run.status == "done" and run.done == 3
    assert site.hits("/rss2.xml") <= 1  # the first source was not refreshed by the run again


# --- adding from the admin page ---------------------------------------------------------


def test_add_a_feed_by_address(app, site, client, admin):
    response = add(client, site.url("/rss2.xml"))
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/sources"
    source = source_named("Tidewater Notes")
    assert source.kind == "feed" and source.url == site.url("/rss2.xml")
    assert source.status == "queued"
    page = client.get("/admin/sources").get_data(as_text=True)
    assert "Added “Tidewater Notes”. It is an RSS 2.0 feed with 4 entries." in page
    assert "Queued" in page
    assert post_count() == 0  # the worker writes the entries, not the request
    run_pending()
    assert len(posts(source_id=source.id)) == 3
    assert "source.add" in audit_actions()


def test_add_discovers_the_feed_a_page_names_and_says_which(app, site, client, admin):
    response = add(client, site.url("/blog"), name="My field notes")
    assert response.status_code == 303
    source = source_named("My field notes")
    assert source.url == site.url("/atom.xml")
    page = client.get("/admin/sources").get_data(as_text=True)
    assert (
        f"The page {site.url('/blog')} names a feed: Dogear picked “Field Notes” "
        "(of 3 feeds the page names), an Atom 1.0 feed with 2 entries at"
    ) in page


def test_add_with_topics_and_full_articles(app, site, client, admin):
    topic = Topic(slug="coast", name="Coast")
    db.session.add(topic)
    db.session.commit()
    response = add(client, site.url("/rss2.xml"), topics=[str(topic.id)], fetch_full_articles="y")
    assert response.status_code == 303
    source = source_named("Tidewater Notes")
    assert [t.slug for t in source.topics] == ["coast"] and source.fetch_full_articles


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/nofeed", "That page names no feed"),
        ("/missing.xml", "the site answered 404"),
        ("/bomb.xml", "The feed uses XML entities Dogear refuses to expand."),
        ("/xxe.xml", "The feed uses XML entities Dogear refuses to expand."),
    ],
)
def test_add_refuses_what_it_cannot_read_inline(app, site, client, admin, path, message):
    response = add(client, site.url(path), htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("{#") is False
    assert 'id="source-add"' in html and message in html
    assert db.session.scalar(select(func.count()).select_from(Source)) == 0
    assert post_count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the address of a feed"),
        ("javascript:alert(1)", "Only http and https addresses can be read."),
        ("https://exa mple.org/", "spaces"),
    ],
)
def test_add_validates_the_address(app, client, admin, url, message):
    response = add(client, url)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and "<h1>Sources</h1>" in html


def test_add_refuses_a_feed_that_is_already_a_source(app, site, client, admin):
    make_source(site.url("/atom.xml"), "Existing")
    response = add(client, site.url("/blog"))
    assert response.status_code == 422
    assert "That feed is already a source: “Existing”." in response.get_data(as_text=True)
    response = add(client, site.url("/rss2.xml"), name="Existing")
    assert "Another source is called “Existing”." in response.get_data(as_text=True)


def test_same_title_twice_gets_a_number(app, site, client, admin):
    make_source("https://example.org/other.xml", "Tidewater Notes")
    add(client, site.url("/rss2.xml"))
    assert source_named("Tidewater Notes (2)") is not None


def test_add_with_htmx_swaps_the_form_and_the_table(app, site, client, admin):
    response = add(client, site.url("/rss2.xml"), htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    form = html.split('id="sources-table"')[0]
    assert 'id="source-add"' in form and site.url("/rss2.xml") not in form  # empty again
    assert 'id="sources-table" class="table-wrap sources-table" hx-swap-oob="outerHTML"' in html
    assert "Tidewater Notes" in html
    assert 'id="flashes"' in html and "Added “Tidewater Notes”" in html
    assert "HX-Request" in response.headers["Vary"]


def test_add_a_listing_file_by_url(app, site, client, admin):
    response = add(client, site.url("/listing.txt"))
    assert response.status_code == 303
    source = db.session.scalar(select(Source))
    assert source.kind == "listing" and source.url == site.url("/listing.txt")
    run_pending()
    db.session.refresh(source)
    made = posts(source_id=source.id)
    assert [p.title for p in made] == ["Tide tables for beginners", "Mending nets in winter"]
    assert made[0].reading_minutes == 6 and made[0].word_count == 1300
    assert made[0].published_on == date(2026, 11, 10)
    assert source.status == "ok"
    assert "1 entry could not be read" in source.last_error
    assert "line 13" in source.last_error
    assert refresh(source).created == 0  # no duplicates on the next refresh
    assert post_count() == 2


# --- edit, refresh one, delete ----------------------------------------------------------


def test_edit_a_source(app, site, client, admin):
    source = make_source(site.url("/rss2.xml"), "Old name")
    page = client.get(f"/admin/sources/{source.id}")
    assert page.status_code == 200 and 'value="Old name"' in page.get_data(as_text=True)
    response = client.submit(
        f"/admin/sources/{source.id}",
        {"name": "New name", "url": site.url("/rss2.xml"), "fetch_full_articles": "y"},
    )
    assert response.status_code == 303
    db.session.refresh(source)
    assert source.name == "New name" and source.fetch_full_articles
    assert pending_count() == 0  # same address: nothing to read again
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "source.edit"))
    assert "name “Old name” → “New name”" in event.detail


def test_edit_a_source_address_reads_it_again(app, site, client, admin):
    source = make_source(site.url("/rss2.xml"), "Feed", etag='"old"')
    response = client.submit(
        f"/admin/sources/{source.id}", {"name": "Feed", "url": site.url("/atom.xml")}, htmx=True
    )
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/admin/sources"
    db.session.refresh(source)
    assert source.url == site.url("/atom.xml") and source.etag == ""
    assert pending_count() == 1


def test_edit_validation_is_422(app, site, client, admin):
    make_source(site.url("/atom.xml"), "Taken")
    source = make_source(site.url("/rss2.xml"), "Feed")
    response = client.submit(f"/admin/sources/{source.id}", {"name": ""}, htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="source-form"' in html and "Give the source a name." in html
    response = client.submit(f"/admin/sources/{source.id}", {"name": "Taken"})
    assert response.status_code == 422 and "Another source is called" in response.get_data(
        as_text=True
    )
    response = client.submit(
        f"/admin/sources/{source.id}", {"name": "Feed", "url": site.url("/atom.xml")}
    )
    assert "That feed is already a source" in response.get_data(as_text=True)


def test_refresh_one_with_and_without_javascript(app, site, client, admin):
    source = make_source(site.url("/rss2.xml"), "Feed")
    response = client.submit(f"/admin/sources/{source.id}/refresh", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<tr id="source-{source.id}"' in html and "every 2s" in html and "Queued" in html
    assert pending_count() == 1
    run_pending()
    row = client.htmx_get(f"/admin/sources/{source.id}/row").get_data(as_text=True)
    assert "every 2s" not in row and "OK" in row and "3 new" in row
    assert client.get(f"/admin/sources/{source.id}/row").status_code == 302

    response = client.submit(f"/admin/sources/{source.id}/refresh", {"next": "/admin/sources?x=1"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/sources?x=1"
    assert audit_actions().count("source.refresh") == 2


def test_delete_keeps_the_posts(app, site, client, admin):
    source = make_source(site.url("/rss2.xml"), "Doomed")
    refresh(source)
    source_id = source.id
    confirm = client.get(f"/admin/sources/{source_id}/delete").get_data(as_text=True)
    assert "Delete “Doomed”?" in confirm and "3 posts stay in the catalog" in confirm
    response = client.submit(f"/admin/sources/{source_id}/delete")
    assert response.status_code == 303
    db.session.expunge_all()
    assert db.session.get(Source, source_id) is None
    assert post_count() == 3 and all(p.source_id is None for p in posts())
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "source.delete"))
    assert event.target == "Doomed" and "3 posts kept" in event.detail


def test_delete_with_htmx_returns_the_table(app, site, client, admin):
    source_id = make_source(site.url("/rss2.xml"), "Doomed").id
    response = client.submit(f"/admin/sources/{source_id}/delete", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="sources-table"' in html and "No sources yet" in html
    assert "Deleted “Doomed”" in html
    assert client.submit(f"/admin/sources/{source_id}/delete").status_code == 404


def test_unknown_source_is_404(app, client, admin):
    assert client.get("/admin/sources/999").status_code == 404
    assert client.submit("/admin/sources/999/refresh").status_code == 404
    assert client.get("/admin/sources/runs/999", headers=HTMX).status_code == 404


# --- OPML -------------------------------------------------------------------------------


def test_opml_round_trip(app, site, client, admin):
    make_source(site.url("/rss1.rdf"), "Already here")
    db.session.add(Topic(slug="testing", name="Testing"))
    db.session.commit()
    body = fixture("subscriptions.opml").replace(b'Url="/', f'Url="{site.base}/'.encode())
    preview = client.submit("/admin/sources/opml", {"file": (io.BytesIO(body), "feeds.opml")})
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "Import these feeds?" in html
    assert "2 new feeds, 3 skipped" in html
    assert "already a source: “Already here”" in html
    assert "listed twice in the file" in html
    assert "not a web address (http or https)" in html
    feeds_json = re.search(r'name="feeds" value="([^"]+)"', html).group(1)
    import html as html_lib

    response = client.submit(
        "/admin/sources/opml/import", {"feeds": html_lib.unescape(feeds_json), "add": ["0", "1"]}
    )
    assert response.status_code == 303
    added = {s.name: s for s in db.session.scalars(select(Source))}
    assert set(added) == {"Already here", "Tidewater Notes", "Field Notes"}
    assert [t.slug for t in added["Field Notes"].topics] == ["testing"]  # category attribute
    assert added["Tidewater Notes"].status == "queued"
    assert pending_count() == 2
    assert "source.opml_import" in audit_actions()

    export = client.get("/admin/sources/opml")
    assert export.status_code == 200
    assert export.mimetype == "text/x-opml"
    assert "attachment" in export.headers["Content-Disposition"]
    listed = opml.parse_opml(export.data)
    assert sorted(f.url for f in listed) == sorted(
        site.url(p) for p in ("/rss1.rdf", "/rss2.xml", "/atom.xml")
    )
    field_notes = next(f for f in listed if f.title == "Field Notes")
    assert field_notes.categories == ("Testing",)


def test_opml_preview_with_htmx_and_bad_files(app, client, admin):
    response = client.submit(
        "/admin/sources/opml",
        {"file": (io.BytesIO(b"<html>nope</html>"), "x.opml")},
        htmx=True,
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "not an OPML list" in html and '<h2 id="opml-title">OPML</h2>' in html
    bomb = fixture("billion_laughs.xml").replace(b"<rss", b"<opml").replace(b"</rss>", b"</opml>")
    response = client.submit(
        "/admin/sources/opml",
        {"file": (io.BytesIO(bomb), "x.opml")},
    )
    assert response.status_code == 422
    assert "entities Dogear refuses to expand" in response.get_data(as_text=True)
    response = client.submit("/admin/sources/opml", {"file": (io.BytesIO(b""), "")})
    assert response.status_code == 422 and "Choose an OPML file." in response.get_data(
        as_text=True
    )
    response = client.submit("/admin/sources/opml/import", {"feeds": "not json", "add": "x"})
    assert response.status_code == 303


# --- the page, permissions, CSRF --------------------------------------------------------


def test_the_page_shows_each_source_s_state(app, site, client, admin):
    ok = make_source(site.url("/rss2.xml"), "Works")
    refresh(ok)
    site.add("/down.xml", "", status=500)
    bad = make_source(site.url("/down.xml"), "Broken")
    refresh(bad)
    refresh(bad)
    make_source(None, "Old import", kind="listing")
    response = client.get("/admin/sources")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert '<nav class="tabs admin-nav"' in html
    assert "The site answered 500." in html and "2 failures in a row" in html
    assert "3 new" in html and "Imported once" in html
    assert "in 2 h" in html  # the broken one's next try
    fragment = client.htmx_get("/admin/sources").get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="sources-table"')


def test_readers_get_403(client, reader):
    for path in ("/admin/sources", "/admin/sources/1", "/admin/sources/opml"):
        assert client.get(path).status_code == 403
    for path in ("/admin/sources", "/admin/sources/refresh", "/admin/sources/1/delete"):
        assert client.submit(path, {"url": "https://example.org/feed"}).status_code == 403


def test_signed_out_visitors_go_to_sign_in(client):
    response = client.get("/admin/sources")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_state_changes_need_the_csrf_token(app, client, admin):
    source = make_source("https://example.org/feed.xml")
    for path in (
        "/admin/sources",
        "/admin/sources/refresh",
        f"/admin/sources/{source.id}/refresh",
        f"/admin/sources/{source.id}/delete",
        f"/admin/sources/{source.id}",
    ):
        assert (
            client.post(path, data={"url": "https://example.org/x", "name": "x"}).status_code
            == 400
        )
    assert db.session.get(Source, source.id) is not None


# --- the command line -------------------------------------------------------------------


def test_cli_add_list_and_refresh(app, site):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sources", "add", site.url("/rss2.xml"), "--name", "Coast"])
    assert result.exit_code == 0, result.output
    assert "Added source" in result.output and "“Coast”" in result.output
    source = source_named("Coast")
    result = runner.invoke(args=["sources", "refresh", str(source.id)])
    assert result.exit_code == 0, result.output
    assert "Coast: 3 new, 0 updated" in result.output
    result = runner.invoke(args=["sources", "list"])
    assert "Coast" in result.output and "ok" in result.output and "3 new" in result.output
    result = runner.invoke(args=["sources", "refresh"])
    assert "No source is due." in result.output
    result = runner.invoke(args=["sources", "refresh", "--all"])
    assert "Coast: not modified" in result.output or "Coast: 0 new" in result.output
    site.add("/down.xml", "", status=500)
    make_source(site.url("/down.xml"), "Down", next_refresh_at=utcnow() - timedelta(minutes=1))
    result = runner.invoke(args=["sources", "refresh"])
    assert result.exit_code == 1 and "Down: failed: the site answered 500" in result.output
    result = runner.invoke(args=["sources", "refresh", "999"])
    assert result.exit_code != 0 and "no source with id 999" in result.output
    result = runner.invoke(args=["sources", "add", "ftp://example.org/x"])
    assert result.exit_code != 0 and "Only http and https" in result.output


def test_admin_page_for_signed_in_admin_only(client, make_user):
    admin = make_user("boss@example.com", is_admin=True)
    sign_in(client, admin)
    assert client.get("/admin/sources").status_code == 200


def test_adding_with_htmx_updates_the_table_and_its_count(app, site, client, admin):
    add(client, site.url("/rss2.xml"))
    response = add(client, site.url("/feed.json"), htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="sources-count" hx-swap-oob="true">2<' in html

"""Tags: added and removed from the list row and the entry's tags page (htmx, and plain
forms), the list filtered by one, renamed, merged and deleted on /list/tags; nobody
sees or touches another reader's tags."""

from __future__ import annotations

from contextlib import contextmanager
from html import unescape

from sqlalchemy import event, select

from app.extensions import db
from app.lists import services as list_services
from app.models import Entry, Tag
from app.tags import services
from tests.conftest import sign_in

FROM_LIST = {"HX-Current-URL": "http://localhost/list?state=saved"}


def _entry(user, url: str = "https://example.org/a", title: str = "A page") -> Entry:
    return list_services.add_article(user, url, title).entry


def _tags(entry_id: int) -> list[str]:
    db.session.expire_all()
    return [t.name for t in db.session.get(Entry, entry_id).tags]


# --- adding and removing --------------------------------------------------------------------


def test_tag_an_entry_with_htmx_swaps_its_row(client, reader):
    entry = _entry(reader)
    response = client.submit(
        f"/list/{entry.id}/tags", {"tags": "  Python, async IO ,python,"}, htmx=True,
        headers=FROM_LIST,
    )  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith("<article") or f'id="entry-{entry.id}"' in html
    assert 'href="/list?tag=python"' in html and 'href="/list?tag=async+io"' in html
    assert "<html" not in html and "HX-Request" in response.headers["Vary"]
    assert "Tagged “A page” “python”, “async io”." in unescape(html)  # flash, out of band
    assert _tags(entry.id) == ["async io", "python"]


def test_tag_an_entry_without_javascript_redirects_back(client, reader):
    entry = _entry(reader)
    response = client.submit(f"/list/{entry.id}/tags", {"tags": "later", "next": "/list?page=1"})
    assert response.status_code == 303 and response.location == "/list?page=1"
    assert _tags(entry.id) == ["later"]
    page = client.get("/list").get_data(as_text=True)
    assert "Tagged “A page” “later”." in unescape(page)
    assert 'href="/list?tag=later"' in page  # the chip, in the row's More panel


def test_invalid_tags_are_a_422_inline(client, reader):
    entry = _entry(reader)
    long = "x" * 61
    fragment = client.submit(f"/list/{entry.id}/tags", {"tags": long}, htmx=True)
    assert fragment.status_code == 422
    html = fragment.get_data(as_text=True)
    assert "at most 60 characters" in html and 'aria-invalid="true"' in html
    assert f'id="entry-{entry.id}"' in html and "<html" not in html
    page = client.submit(f"/list/{entry.id}/tags", {"tags": " , "})
    assert page.status_code == 422
    assert "Type a tag to add" in page.get_data(as_text=True)
    assert "<html" in page.get_data(as_text=True)
    assert _tags(entry.id) == []


def test_remove_a_tag_from_an_entry(client, reader):
    entry = _entry(reader)
    services.add_tags(reader, entry.id, ["keep", "drop"])
    drop = db.session.scalar(select(Tag).where(Tag.name == "drop"))
    response = client.submit(f"/list/{entry.id}/tags/{drop.id}/remove", htmx=True)
    assert response.status_code == 200
    assert 'href="/list?tag=drop"' not in response.get_data(as_text=True)
    assert _tags(entry.id) == ["keep"]
    assert db.session.get(Tag, drop.id) is not None  # the tag itself stays
    plain = client.submit(f"/list/{entry.id}/tags/{drop.id}/remove")
    assert plain.status_code == 303


def test_the_entry_tags_page_works_without_javascript(client, reader):
    entry = _entry(reader)
    services.add_tags(reader, entry.id, ["one"])
    page = client.get(f"/list/{entry.id}/tags")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Tags</h1>" in html
    assert f'id="entry-tags-{entry.id}"' in html and 'hx-select="#entry-tags-' in html
    assert '<datalist id="tag-suggestions">' in html
    response = client.submit(
        f"/list/{entry.id}/tags", {"tags": "two", "next": f"/list/{entry.id}/tags"}
    )
    assert response.location == f"/list/{entry.id}/tags"
    assert _tags(entry.id) == ["one", "two"]


# --- the list filtered by a tag ------------------------------------------------------------


def test_list_filtered_by_tag(client, reader):
    tagged = _entry(reader, "https://example.org/t", "Tagged page")
    _entry(reader, "https://example.org/u", "Untagged page")
    services.add_tags(reader, tagged.id, ["python"])
    page = client.get("/list?tag=python").get_data(as_text=True)
    assert "Tagged page" in page and "Untagged page" not in page
    assert "Only entries tagged" in page and 'href="/list?state=saved"' in page
    assert 'href="/list?state=reading&amp;tag=python"' in page  # tabs keep the filter
    fragment = client.htmx_get("/list?tag=python&state=saved")
    assert 'id="list-tab"' in fragment.get_data(as_text=True)
    assert "Tagged page" in fragment.get_data(as_text=True)
    assert "Untagged page" in client.get("/list").get_data(as_text=True)
    assert "Tagged page" not in client.get("/list?tag=rust").get_data(as_text=True)
    assert "Tagged page" in client.get("/list?tag=%20PYTHON%20").get_data(as_text=True)


def test_list_page_queries_do_not_grow_with_tagged_entries(client, reader):
    @contextmanager
    def counting():
        statements: list[str] = []

        def count(*args, **kwargs) -> None:
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            yield statements
        finally:
            event.remove(db.engine, "before_cursor_execute", count)

    first = _entry(reader, "https://example.org/0")
    services.add_tags(reader, first.id, ["a", "b"])
    with counting() as few:
        client.get("/list")
    for n in range(1, 12):
        entry = _entry(reader, f"https://example.org/{n}")
        services.add_tags(reader, entry.id, [f"t{n}", "common"])
    with counting() as many:
        client.get("/list")
    assert len(many) == len(few)


# --- the tags page: rename, merge, delete --------------------------------------------------


def test_tags_page_lists_tags_with_counts(client, reader):
    one, two = _entry(reader, "https://example.org/1"), _entry(reader, "https://example.org/2")
    services.add_tags(reader, one.id, ["shared", "solo"])
    services.add_tags(reader, two.id, ["shared"])
    page = client.get("/list/tags")
    html = page.get_data(as_text=True)
    assert "2 entries" in html and "1 entry" in html
    assert 'href="/list?tag=shared"' in html
    fragment = client.htmx_get("/list/tags")
    assert fragment.get_data(as_text=True).count('id="tag-list"') == 1
    assert "<html" not in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_rename_a_tag(client, reader):
    entry = _entry(reader)
    services.add_tags(reader, entry.id, ["old"])
    tag = db.session.scalar(select(Tag))
    response = client.submit(f"/list/tags/{tag.id}/rename", {"name": " New Name "}, htmx=True)
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    assert 'id="tag-list"' in html and "Renamed “old” to “new name”." in html
    assert _tags(entry.id) == ["new name"]
    plain = client.submit(f"/list/tags/{tag.id}/rename", {"name": "again"})
    assert plain.status_code == 303 and plain.location == "/list/tags"


def test_rename_onto_another_tag_merges_them(client, reader):
    one, two = _entry(reader, "https://example.org/1"), _entry(reader, "https://example.org/2")
    services.add_tags(reader, one.id, ["py", "python"])
    services.add_tags(reader, two.id, ["py"])
    py = db.session.scalar(select(Tag).where(Tag.name == "py"))
    response = client.submit(f"/list/tags/{py.id}/rename", {"name": "python"}, htmx=True)
    assert "Merged “py” into “python”." in unescape(response.get_data(as_text=True))
    assert _tags(one.id) == ["python"] and _tags(two.id) == ["python"]
    assert [t.name for t in db.session.scalars(select(Tag))] == ["python"]


def test_invalid_rename_is_a_422(client, reader):
    entry = _entry(reader)
    services.add_tags(reader, entry.id, ["fine"])
    tag = db.session.scalar(select(Tag))
    for name, message in (("a, b", "comma"), ("", "Type a tag"), ("y" * 61, "at most 60")):
        response = client.submit(f"/list/tags/{tag.id}/rename", {"name": name}, htmx=True)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    page = client.submit(f"/list/tags/{tag.id}/rename", {"name": ""})
    assert page.status_code == 422 and "<html" in page.get_data(as_text=True)
    assert _tags(entry.id) == ["fine"]


def test_delete_a_tag_keeps_its_entries(client, reader):
    entry = _entry(reader)
    services.add_tags(reader, entry.id, ["gone", "stays"])
    gone = db.session.scalar(select(Tag).where(Tag.name == "gone"))
    response = client.submit(f"/list/tags/{gone.id}/delete", htmx=True)
    html = unescape(response.get_data(as_text=True))
    assert "Deleted the tag “gone”" in html and 'href="/list?tag=gone"' not in html
    assert _tags(entry.id) == ["stays"]
    assert db.session.get(Entry, entry.id) is not None
    other = db.session.scalar(select(Tag).where(Tag.name == "stays"))
    assert client.submit(f"/list/tags/{other.id}/delete").status_code == 303


# --- privacy and protection ---------------------------------------------------------------


def test_another_reader_s_tags_and_entries_are_404(client, make_user):
    owner = make_user("owner@example.com")
    entry = _entry(owner, "https://example.org/secret", "Secret page")
    services.add_tags(owner, entry.id, ["secret"])
    tag = db.session.scalar(select(Tag))
    intruder = make_user("intruder@example.com")
    sign_in(client, intruder)
    mine = _entry(intruder, "https://example.org/mine", "Mine")
    assert client.submit(f"/list/{entry.id}/tags", {"tags": "x"}).status_code == 404
    assert client.get(f"/list/{entry.id}/tags").status_code == 404
    assert client.submit(f"/list/{entry.id}/tags/{tag.id}/remove").status_code == 404
    assert client.submit(f"/list/{mine.id}/tags/{tag.id}/remove").status_code == 404
    assert client.submit(f"/list/tags/{tag.id}/rename", {"name": "mine"}).status_code == 404
    assert client.submit(f"/list/tags/{tag.id}/delete").status_code == 404
    assert "secret" not in client.get("/list/tags").get_data(as_text=True)
    assert "Secret page" not in client.get("/list?tag=secret").get_data(as_text=True)
    # The intruder's own tag of the same name is theirs alone.
    services.add_tags(intruder, mine.id, ["secret"])
    assert _tags(entry.id) == ["secret"] and _tags(mine.id) == ["secret"]
    assert db.session.get(Tag, tag.id).user_id == owner.id


def test_tag_changes_need_the_csrf_token(client, reader):
    entry = _entry(reader)
    assert client.post(f"/list/{entry.id}/tags", data={"tags": "x"}).status_code == 400
    assert (
        client.post(
            f"/list/{entry.id}/tags", data={"tags": "x"}, headers={"HX-Request": "true"}
        ).status_code
        == 400
    )
    assert _tags(entry.id) == []


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/list/tags")
    assert response.status_code == 302 and "/login" in response.location


def test_a_rows_tags_show_on_the_list_and_link_to_the_filter(client, reader, make_post):
    post = make_post(title="Tagged row")
    client.submit(f"/list/save/{post.id}")
    entry = db.session.scalar(select(Entry).where(Entry.post_id == post.id))
    client.submit(f"/list/{entry.id}/tags", {"tags": "deep dive"})
    html = client.get("/list").get_data(as_text=True)
    row = html[html.index(f'id="entry-{entry.id}"') :]
    head = row[: row.index("entry-actions")]  # outside the More panel
    assert 'href="/list?tag=deep+dive">#deep dive</a>' in head

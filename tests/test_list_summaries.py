"""The list summary (entries per tab, minutes left, the header's badge) is kept on
writes by the database's triggers (migration 0014), not counted on every view.
Every test checks the kept summary against a count over the entries themselves,
after writes made every way entries change: the list's own buttons, an admin's
delete and merge, a page fetched again, a bulk statement, a reader leaving."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from sqlalchemy import func, insert, select, text, update

from app.extensions import db
from app.models import Entry, Post, User
from tests.conftest import sign_in


def kept(user: User) -> dict[str, tuple[int, int]]:
    """The summary as stored: state -> (entries, minutes_left_x100), empty states left out."""
    rows = db.session.execute(
        text(
            "SELECT state, entries, minutes_left_x100 FROM list_summaries"
            " WHERE user_id = :id AND entries > 0"
        ),
        {"id": user.id},
    )
    return {state: (entries, minutes) for state, entries, minutes in rows}


def counted(user: User) -> dict[str, tuple[int, int]]:
    """The same, counted over the reader's entries."""
    rows = db.session.execute(
        select(
            Entry.state,
            func.count(),
            func.sum(Post.reading_minutes * (100 - Entry.progress)),
        )
        .join(Post, Post.id == Entry.post_id)
        .where(Entry.user_id == user.id)
        .group_by(Entry.state)
    )
    return {state: (entries, int(minutes or 0)) for state, entries, minutes in rows}


def assert_kept(*users: User) -> None:
    db.session.rollback()  # read what the requests committed
    for user in users:
        assert kept(user) == counted(user)


def list_page(client: Any) -> dict[str, Any]:
    """What the list page says: the count on each tab, the minutes left, the badge."""
    html = client.get("/list").get_data(as_text=True)
    tabs = dict(re.findall(r'id="tab-count-(\w+)"[^>]*>(\d+)<', html))
    left = re.search(r"<strong>(?:(\d+) h ?)?(?:(\d+) min)?</strong> of reading left", html)
    badge = re.search(r'id="list-count".*?</span>(\d+)<', html)
    return {
        "tabs": {state: int(n) for state, n in tabs.items()},
        "minutes_left": int(left[1] or 0) * 60 + int(left[2] or 0) if left else 0,
        "badge": int(badge.group(1)) if badge else 0,
    }


def _entry_id(user: User, post: Post) -> int:
    return db.session.scalar(
        select(Entry.id).where(Entry.user_id == user.id, Entry.post_id == post.id)
    )


def test_the_list_buttons_keep_the_summary(client, reader, make_post, make_user, app: Flask):
    other = make_user("other@example.com")
    other_client = app.test_client()
    sign_in(other_client, other)
    posts = [make_post(reading_minutes=minutes) for minutes in (12, 8, 5, 30)]
    for post in posts:
        client.submit(f"/list/save/{post.id}", htmx=True)
    other_client.submit(f"/list/save/{posts[0].id}", htmx=True)
    assert_kept(reader, other)
    assert list_page(client) == {
        "tabs": {"saved": 4, "reading": 0, "done": 0, "archived": 0},
        "minutes_left": 55,
        "badge": 4,
    }

    first, second, third, fourth = (_entry_id(reader, post) for post in posts)
    client.submit(f"/list/{first}/progress", {"progress": "25"}, htmx=True)  # 9 min left
    client.submit(f"/list/{second}/progress", {"progress": "100"}, htmx=True)  # done
    client.submit(f"/list/{third}/archive", htmx=True)
    client.submit(f"/list/{fourth}/remove", htmx=True)
    assert_kept(reader, other)
    assert list_page(client) == {
        "tabs": {"saved": 0, "reading": 1, "done": 1, "archived": 1},
        "minutes_left": 9,
        "badge": 1,
    }
    # The other reader's summary never moved.
    assert list_page(other_client)["tabs"]["saved"] == 1
    assert list_page(other_client)["minutes_left"] == 12

    client.submit(f"/list/unsave/{posts[3].id}", htmx=True)  # not on the list: no change
    client.submit(f"/list/{first}/progress", {"progress": "0"}, htmx=True)  # back to up next
    assert_kept(reader, other)
    assert list_page(client)["tabs"]["saved"] == 1 and list_page(client)["minutes_left"] == 12


def test_a_post_read_again_at_a_new_length_moves_the_minutes(client, reader, make_post):
    post = make_post(reading_minutes=10)
    untouched = make_post(reading_minutes=4)
    for saved in (post, untouched):
        client.submit(f"/list/save/{saved.id}", htmx=True)
    client.submit(f"/list/{_entry_id(reader, post)}/progress", {"progress": "50"}, htmx=True)
    assert list_page(client)["minutes_left"] == 9  # 5 + 4

    # What fetching the page again does when the article turns out longer.
    db.session.execute(update(Post).where(Post.id == post.id).values(reading_minutes=30))
    db.session.commit()
    assert_kept(reader)
    assert list_page(client)["minutes_left"] == 19  # 15 + 4


def test_an_admin_deleting_or_merging_posts_moves_every_readers_summary(
    client, reader, make_post, make_user, app: Flask
):
    admin = make_user("admin@example.com", is_admin=True)
    admin_client = app.test_client()
    sign_in(admin_client, admin)
    doomed, duplicate, survivor, kept_post = (
        make_post(reading_minutes=m, url=f"https://example.com/{m}") for m in (6, 7, 9, 11)
    )
    for post in (doomed, duplicate, survivor, kept_post):
        client.submit(f"/list/save/{post.id}", htmx=True)
    admin_client.submit(f"/list/save/{duplicate.id}", htmx=True)
    assert_kept(reader, admin)

    response = admin_client.submit(f"/admin/posts/{doomed.id}/delete")
    assert response.status_code == 303
    assert_kept(reader, admin)
    assert list_page(client)["tabs"]["saved"] == 3

    # The reader had both copies (combined into one), the admin only the duplicate
    # (moved to the survivor).
    response = admin_client.submit(
        f"/admin/posts/{duplicate.id}/merge", {"into": str(survivor.id)}
    )
    assert response.status_code == 303
    assert_kept(reader, admin)
    assert list_page(client) == {
        "tabs": {"saved": 2, "reading": 0, "done": 0, "archived": 0},
        "minutes_left": 20,
        "badge": 2,
    }
    assert list_page(admin_client)["minutes_left"] == 9


def test_bulk_writes_and_a_reader_leaving_keep_it_too(client, reader, make_post, make_user):
    posts = [make_post(reading_minutes=3) for _ in range(50)]
    other = make_user("other@example.com")
    # One statement for many rows, as the importers write them.
    db.session.execute(
        insert(Entry),
        [
            {"user_id": reader.id, "post_id": post.id, "position": n}
            for n, post in enumerate(posts)
        ],
    )
    db.session.execute(insert(Entry), [{"user_id": other.id, "post_id": posts[0].id}])
    db.session.execute(
        update(Entry)
        .where(Entry.user_id == reader.id, Entry.post_id.in_([p.id for p in posts[:10]]))
        .values(state="reading", progress=50)
    )
    db.session.commit()
    assert_kept(reader, other)
    page = list_page(client)
    assert page["tabs"]["saved"] == 40 and page["tabs"]["reading"] == 10
    assert page["minutes_left"] == 40 * 3 + 15 and page["badge"] == 50

    other_id = other.id
    db.session.delete(other)
    db.session.commit()
    left = db.session.scalar(
        text("SELECT count(*) FROM list_summaries WHERE user_id = :id"), {"id": other_id}
    )
    assert left == 0
    assert_kept(reader)

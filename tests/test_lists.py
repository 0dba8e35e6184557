"""My list: saving, progress to done, ownership, and each interaction three ways
(full page, htmx fragment, no-JavaScript POST)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.lists import services
from app.models import Activity, Entry, User
from tests.conftest import HTMX, run_concurrently, sign_in

FROM_LIST = {"HX-Current-URL": "http://localhost/list?state=saved"}


def _entry(user: User, post_id: int) -> Entry | None:
    return db.session.scalar(
        select(Entry).where(Entry.user_id == user.id, Entry.post_id == post_id)
    )


# --- saving ------------------------------------------------------------------------


def test_save_with_htmx_swaps_the_toggle_and_updates_the_counter(client, reader, make_post):
    post = make_post(title="Understanding WAL")
    response = client.submit(f"/list/save/{post.id}", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'id="save-{post.id}"' in html
    assert 'aria-pressed="true"' in html and "Up next" in html
    assert '<span id="list-count" class="badge" hx-swap-oob="true">' in html
    assert ">1<" in html.split('id="list-count"')[1][:120]
    assert "<html" not in html
    assert response.headers["HX-Trigger"] == "list-changed"
    assert 'id="flashes"' in html and "Saved to your list." in html  # announced out of band
    assert _entry(reader, post.id).state == "saved"


def test_save_without_javascript_redirects_back_with_filters(client, reader, make_post):
    post = make_post()
    response = client.submit(f"/list/save/{post.id}", {"next": "/?topic=rust&page=2"})
    assert response.status_code == 303
    assert response.location == "/?topic=rust&page=2"
    page = client.get(response.location).get_data(as_text=True)
    assert "Saved to your list." in page


def test_save_rejects_an_offsite_next(client, reader, make_post):
    post = make_post()
    response = client.submit(f"/list/save/{post.id}", {"next": "https://evil.example/"})
    assert response.location == f"/posts/{post.id}"


def test_saving_twice_keeps_one_entry(client, reader, make_post):
    post = make_post()
    client.submit(f"/list/save/{post.id}", htmx=True)
    client.submit(f"/list/save/{post.id}", htmx=True)
    count = db.session.scalar(
        select(func.count()).select_from(Entry).where(Entry.user_id == reader.id)
    )
    assert count == 1


def test_saving_at_the_same_time_gives_one_entry(app: Flask, make_user, make_post):
    """Two workers saving the same post at once: one entry, no 'database is locked'."""
    user_id, post_id = make_user().id, make_post().id

    def save() -> None:
        services.save_post(db.session.get(User, user_id), post_id)

    assert run_concurrently(app, save) == []
    assert db.session.scalar(select(func.count()).select_from(Entry)) == 1


def test_concurrent_progress_updates_all_land(app: Flask, make_user, make_post):
    """Deferred read-then-write transactions would fail with 'database is locked'."""
    user = make_user()
    entry_ids = iter([services.save_post(user, make_post().id).id for _ in range(4)])
    user_id = user.id

    def update() -> None:
        reader, entry_id = db.session.get(User, user_id), next(entry_ids)
        for progress in (10, 20, 30, 40, 50):
            services.update_progress(reader, entry_id, progress)

    assert run_concurrently(app, update) == []
    assert db.session.scalar(select(func.count()).select_from(Activity)) == 5 * 4


def test_unsave_with_htmx(client, reader, make_post):
    post = make_post()
    client.submit(f"/list/save/{post.id}", htmx=True)
    response = client.submit(f"/list/unsave/{post.id}", htmx=True)
    assert response.status_code == 200
    assert 'aria-pressed="false"' in response.get_data(as_text=True)
    assert _entry(reader, post.id) is None


def test_saving_an_unknown_post_is_404(client, reader):
    assert client.submit("/list/save/999999", htmx=True).status_code == 404
    assert client.submit("/list/save/999999").status_code == 404


def test_saving_another_readers_private_post_is_404(client, reader, make_user, make_post):
    other = make_user()
    private = make_post(owner_id=other.id)
    assert client.submit(f"/list/save/{private.id}").status_code == 404


# --- the list page --------------------------------------------------------------


def _saved(client, reader, make_post, **post_fields) -> Entry:
    post = make_post(**post_fields)
    client.submit(f"/list/save/{post.id}", htmx=True)
    return _entry(reader, post.id)


def test_list_page_shows_tabs_entries_and_time_left(client, reader, make_post):
    _saved(client, reader, make_post, title="First in line", reading_minutes=12)
    _saved(client, reader, make_post, title="Second in line", reading_minutes=8)
    page = client.get("/list")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("First in line") < html.index("Second in line")
    assert "20 min</strong> of reading left" in html
    assert 'id="tab-count-saved">2<' in html


def test_list_tab_with_htmx_returns_the_fragment(client, reader, make_post):
    entry = _saved(client, reader, make_post, title="Half read")
    client.submit(f"/list/{entry.id}/progress", {"progress": "50"}, htmx=True)
    full = client.get("/list?state=reading")
    fragment = client.htmx_get("/list?state=reading")
    assert "<html" in full.get_data(as_text=True)
    frag = fragment.get_data(as_text=True)
    assert "<html" not in frag and frag.lstrip().startswith('<section id="list-tab"')
    assert "Half read" in frag
    assert "HX-Request" in fragment.headers["Vary"]


def test_list_requires_sign_in_and_htmx_gets_hx_redirect(client):
    assert client.get("/list").status_code == 302
    response = client.get("/list", headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login?next=/list")


def test_expired_session_on_an_htmx_post_redirects_to_login(client, make_post):
    post = make_post()
    response = client.submit(
        f"/list/save/{post.id}",
        htmx=True,
        headers={"HX-Current-URL": "http://localhost/?topic=go"},
    )
    assert response.headers["HX-Redirect"] == "/login?next=/?topic%3Dgo"


# --- progress ----------------------------------------------------------------


def test_progress_moves_state_and_records_activity(client, reader, make_post):
    entry = _saved(client, reader, make_post, reading_minutes=10)
    on_reading_tab = {"HX-Current-URL": "http://localhost/list?state=reading"}
    response = client.submit(
        f"/list/{entry.id}/progress", {"progress": "40"}, htmx=True, headers=on_reading_tab
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<article class="entry state-reading" id="entry-{entry.id}"')
    assert "40 % read · 6 min left" in html
    assert 'id="tab-count-reading" hx-swap-oob="true">1<' in html
    assert 'id="list-time-left" class="time-left" hx-swap-oob="true"' in html
    db.session.refresh(entry)
    assert entry.state == "reading" and entry.started_at is not None and entry.finished_at is None

    client.submit(f"/list/{entry.id}/progress", {"progress": "100"}, htmx=True)
    db.session.refresh(entry)
    assert entry.state == "done" and entry.finished_at is not None
    changes = db.session.execute(
        select(Activity.progress_from, Activity.progress_to).order_by(Activity.id)
    ).all()
    assert changes == [(0, 40), (40, 100)]


def test_progress_from_the_post_page_updates_only_what_that_page_has(client, reader, make_post):
    entry = _saved(client, reader, make_post)
    response = client.submit(
        f"/list/{entry.id}/progress",
        {"progress": "25"},
        htmx=True,
        headers={"HX-Current-URL": f"http://localhost/posts/{entry.post_id}"},
    )
    html = response.get_data(as_text=True)
    assert 'id="list-count"' in html  # the header badge is on every page
    assert "tab-count-" not in html and "list-time-left" not in html


def test_htmx_post_after_the_session_expired_goes_to_login(client, make_post):
    """No session cookie at all means no CSRF token either: sign in, not 'form expired'."""
    post = make_post()
    response = client.post(
        f"/list/save/{post.id}", headers={**HTMX, "HX-Current-URL": "http://localhost/?page=2"}
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login?next=/?page%3D2"
    plain = client.post(f"/list/save/{post.id}", data={"next": "/?page=2"})
    assert plain.status_code == 302 and plain.location.startswith("/login?next=")


def test_a_quick_step_wins_over_the_slider_in_the_same_form(client, reader, make_post):
    entry = _saved(client, reader, make_post)
    client.submit(f"/list/{entry.id}/progress", {"progress": "10", "step": "75"}, htmx=True)
    db.session.refresh(entry)
    assert entry.progress == 75
    bad = client.submit(f"/list/{entry.id}/progress", {"progress": "10", "step": "x"}, htmx=True)
    assert bad.status_code == 422
    db.session.refresh(entry)
    assert entry.progress == 75


def test_an_entry_leaving_the_open_tab_becomes_a_note(client, reader, make_post):
    entry = _saved(client, reader, make_post, title="Moving on")
    response = client.submit(
        f"/list/{entry.id}/progress", {"progress": "100"}, htmx=True, headers=FROM_LIST
    )
    html = response.get_data(as_text=True)
    assert html.startswith(f'<p class="entry-note" id="entry-{entry.id}"')
    assert '“Moving on” moved to <a href="/list?state=done">Done</a>' in html
    assert 'id="tab-count-done" hx-swap-oob="true">1<' in html
    assert "Done: “Moving on”." in html  # announced in #flashes, out of band


def test_progress_back_to_zero_returns_to_up_next(client, reader, make_post):
    entry = _saved(client, reader, make_post)
    client.submit(f"/list/{entry.id}/progress", {"progress": "100"}, htmx=True)
    client.submit(f"/list/{entry.id}/progress", {"progress": "0"}, htmx=True)
    db.session.refresh(entry)
    assert entry.state == "saved" and entry.finished_at is None


def test_progress_without_javascript_redirects_back(client, reader, make_post):
    entry = _saved(client, reader, make_post, title="A long read")
    response = client.submit(
        f"/list/{entry.id}/progress", {"progress": "100", "next": "/list?state=saved"}
    )
    assert response.status_code == 303
    assert response.location == "/list?state=saved"
    page = client.get("/list?state=done").get_data(as_text=True)
    assert "Done: “A long read”." in page and "A long read" in page


def test_invalid_progress_is_422_inline_and_changes_nothing(client, reader, make_post):
    entry = _saved(client, reader, make_post)
    for value, message in [
        ("150", "Progress goes from 0 to 100 %."),
        ("-1", "Progress goes from 0 to 100 %."),
        ("abc", "Not a valid integer value."),
        ("", "Give a progress between 0 and 100."),
    ]:
        fragment = client.submit(f"/list/{entry.id}/progress", {"progress": value}, htmx=True)
        assert fragment.status_code == 422, value
        html = fragment.get_data(as_text=True)
        assert message in html and 'role="alert"' in html and "<html" not in html
        page = client.submit(f"/list/{entry.id}/progress", {"progress": value})
        assert page.status_code == 422
        assert message in page.get_data(as_text=True) and "<html" in page.get_data(as_text=True)
    db.session.refresh(entry)
    assert entry.progress == 0
    assert db.session.scalar(select(func.count()).select_from(Activity)) == 0


def test_archive_and_unarchive(client, reader, make_post):
    entry = _saved(client, reader, make_post)
    client.submit(f"/list/{entry.id}/progress", {"progress": "30"}, htmx=True)
    response = client.submit(f"/list/{entry.id}/archive", {"archived": "1"}, htmx=True)
    assert "state-archived" in response.get_data(as_text=True)
    db.session.refresh(entry)
    assert entry.state == "archived" and entry.progress == 30
    client.submit(f"/list/{entry.id}/archive", {"archived": "0"})
    db.session.refresh(entry)
    assert entry.state == "reading"


def test_remove_with_htmx_and_without(client, reader, make_post):
    first = _saved(client, reader, make_post, title="Gone soon")
    second = _saved(client, reader, make_post)
    response = client.submit(f"/list/{first.id}/remove", htmx=True, headers=FROM_LIST)
    assert response.status_code == 200
    assert "Removed from your list." in response.get_data(as_text=True)
    assert 'id="tab-count-saved" hx-swap-oob="true">1<' in response.get_data(as_text=True)
    plain = client.submit(f"/list/{second.id}/remove", {"next": "/list"})
    assert plain.status_code == 303 and plain.location == "/list"
    assert db.session.scalar(select(func.count()).select_from(Entry)) == 0


# --- the "More" panel -----------------------------------------------------------------


def test_a_rows_more_panel_loads_when_opened(client, reader, make_post):
    entry = services.save_post(reader, make_post(title="Lazy panels").id)
    row = client.get("/list").get_data(as_text=True)
    more_url = f"/list/{entry.id}/more"
    # The row carries a link (no JavaScript) that dogear.js turns into a load.
    assert f'data-more-src="{more_url}"' in row and f'href="{more_url}"' in row
    assert 'name="progress"' not in row and "Mark done" not in row
    panel = client.get(more_url, headers={**HTMX, **FROM_LIST})
    html = panel.get_data(as_text=True)
    assert panel.status_code == 200 and "<html" not in html
    assert "HX-Request" in panel.headers["Vary"]
    assert f'hx-post="/list/{entry.id}/progress"' in html and "Mark done" in html
    assert f'id="entry-tags-{entry.id}-input"' in html and "Archive" in html


def test_without_javascript_more_is_a_page_whose_forms_return_to_the_list(
    client, reader, make_post
):
    entry = services.save_post(reader, make_post(title="Lazy panels").id)
    page = client.get(f"/list/{entry.id}/more").get_data(as_text=True)
    assert "<h1>Lazy panels</h1>" in page and "hx-disable" in page
    assert page.count('name="next" value="/list?state=saved"') >= 3  # progress, tags, actions
    response = client.submit(
        f"/list/{entry.id}/progress", {"step": "100", "next": "/list?state=saved"}
    )
    assert response.status_code == 303 and response.location == "/list?state=saved"
    db.session.refresh(entry)
    assert entry.state == "done"


def test_an_action_from_the_panel_answers_with_the_panel(client, reader, make_post):
    """Swapping the row keeps its opened panel whole, so focus stays where it was."""
    entry = services.save_post(reader, make_post().id)
    services.update_progress(reader, entry.id, 20)
    reading = {"HX-Current-URL": "http://localhost/list?state=reading"}
    html = client.submit(
        f"/list/{entry.id}/progress", {"progress": "40"}, htmx=True, headers=reading
    ).get_data(as_text=True)
    assert f'id="progress-{entry.id}"' in html and "data-more-src" not in html


def test_twenty_entries_make_a_light_list_page(client, reader, make_post):
    for n in range(20):
        entry = services.save_post(reader, make_post(title=f"Entry {n}").id)
        services.update_progress(reader, entry.id, 30)
    page = client.get("/list?state=reading").get_data(as_text=True)
    assert page.count('class="entry ') == 20
    assert len(page.encode()) < 30 * 1024  # was 70 KB with every panel inline


# --- ownership ------------------------------------------------------------------


def test_another_readers_entry_is_404_by_every_url(app: Flask, make_user, make_post):
    owner = make_user("owner@example.com")
    post = make_post()
    entry = services.save_post(owner, post.id)
    intruder = app.test_client()
    make_user("intruder@example.com")
    sign_in(intruder, "intruder@example.com")
    for url, data in [
        (f"/list/{entry.id}/progress", {"progress": "50"}),
        (f"/list/{entry.id}/progress", {"progress": "500"}),  # not a 422 that shows it
        (f"/list/{entry.id}/archive", {"archived": "1"}),
        (f"/list/{entry.id}/remove", {}),
    ]:
        assert intruder.submit(url, data).status_code == 404, url
        assert intruder.submit(url, data, htmx=True).status_code == 404, url
    assert "owner" not in intruder.get("/list").get_data(as_text=True)
    assert intruder.get(f"/list/{entry.id}/more").status_code == 404
    assert intruder.get(f"/list/{entry.id}/more", headers=HTMX).status_code == 404
    db.session.refresh(entry)
    assert entry.progress == 0 and entry.state == "saved"


def test_an_htmx_404_answers_with_an_inline_message(client, reader):
    response = client.submit("/list/424242/progress", {"progress": "5"}, htmx=True)
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#flashes"
    assert "exist, or it isn" in response.get_data(as_text=True)


# --- CSRF ----------------------------------------------------------------------------


def test_state_changes_without_a_csrf_token_are_refused(client, reader, make_post):
    post = make_post()
    plain = client.post(f"/list/save/{post.id}")
    htmx = client.post(f"/list/save/{post.id}", headers=HTMX)
    forged = client.post(f"/list/save/{post.id}", headers={**HTMX, "X-CSRFToken": "forged"})
    assert plain.status_code == htmx.status_code == forged.status_code == 400
    assert "form expired" in plain.get_data(as_text=True)
    assert _entry(reader, post.id) is None


def test_logout_needs_csrf_too(client, reader):
    assert client.post("/logout").status_code == 400
    assert client.get("/list").status_code == 200


def test_the_save_toggle_never_throws_away_progress(client, reader, make_post):
    entry = _saved(client, reader, make_post, title="Half way")
    client.submit(f"/list/{entry.id}/progress", {"progress": "60"}, htmx=True)
    html = client.get("/").get_data(as_text=True)
    assert "In my list" in html and f"/list/unsave/{entry.post_id}" not in html
    response = client.submit(f"/list/unsave/{entry.post_id}", htmx=True)  # a crafted POST
    assert response.status_code == 200
    db.session.refresh(entry)
    assert entry.progress == 60 and entry.state == "reading"


def test_absurd_ids_are_404_not_500(client, reader):
    huge = "9" * 30
    assert client.get(f"/posts/{huge}").status_code == 404
    assert client.submit(f"/list/save/{huge}", htmx=True).status_code == 404
    assert client.submit(f"/list/{huge}/progress", {"progress": "5"}).status_code == 404
    assert client.get("/posts/0").status_code == 404


def test_a_malformed_hx_current_url_is_ignored_not_a_500(client, reader, make_post):
    post = make_post()
    headers = {"HX-Current-URL": "http://[::1"}
    response = client.submit(f"/list/save/{post.id}", htmx=True, headers=headers)
    assert response.status_code == 200
    entry = db.session.scalar(select(Entry).where(Entry.post_id == post.id))
    response = client.submit(
        f"/list/{entry.id}/progress", {"progress": 40}, htmx=True, headers=headers
    )
    assert response.status_code == 200
    assert "40 %" in response.get_data(as_text=True)

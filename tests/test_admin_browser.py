"""The admin's accounts pages in a real browser: an invite that a new reader signs up
through, deleting an account after typing its address (in place with htmx, on a page
of its own without JavaScript), the audit log's live filters, and screenshots of the
pages for a person to look at (/tmp/shots). Every test also asserts no console
errors, CSP violations or server exceptions."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from browsing import ADMIN, DESKTOP, PHONE, READER, Live, Pages, sign_in
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.auth import services as auth_services
from app.extensions import db
from app.models import AuditEvent, Entry, User, utcnow
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("DOGEAR_SHOTS", "/tmp/shots"))  # noqa: S108 - a person looks


def _allow_statuses(pages: Pages, *statuses: int) -> None:
    """Chromium logs every 4xx page as a console error; drop the ones this test asked
    for on purpose (a used invite's 410, a refused confirmation's 422), keep the rest."""
    expected = re.compile(
        r"console error: Failed to load resource: the server responded with a status of "
        rf"({'|'.join(str(s) for s in statuses)}) "
    )
    pages.problems[:] = [p for p in pages.problems if not expected.match(p)]


def _user_id(live: Live, email: str) -> int | None:
    return live.run(lambda: db.session.scalar(select(User.id).where(User.email == email)))


# --- an invite, then a deletion ---------------------------------------------------------


def test_admin_invites_a_reader_who_signs_up_then_deletes_the_account(pages: Pages, live: Live):
    admin = pages.open()
    sign_in(admin, email=ADMIN, then="/admin/users")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Users")

    admin.get_by_label("Note for admins").fill("Ada from the book club")
    admin.get_by_role("button", name="Make an invite link").click()
    link_box = admin.locator("#new-invite-url")
    expect(link_box).to_be_visible()
    expect(link_box).to_be_focused()  # ready to copy
    invite_url = link_box.input_value()
    assert re.fullmatch(rf"{re.escape(live.url)}/invite/[A-Za-z0-9_-]+", invite_url)
    expect(admin.locator("#invites .invite-note")).to_contain_text("Ada from the book club")
    _shoot(admin, "admin-users-new-invite-desktop-light")

    visitor = pages.open()
    visitor.goto(invite_url)
    expect(visitor.get_by_role("heading", level=1)).to_have_text("You're invited to Dogear")
    visitor.get_by_label("Email").fill("ada@example.com")
    visitor.get_by_label("Password", exact=True).fill("ada's long password")
    visitor.get_by_label("Repeat password").fill("ada's long password")
    visitor.get_by_role("button", name="Create account").click()
    expect(visitor).to_have_url(f"{live.url}/")
    expect(visitor.locator("#flashes")).to_contain_text("Welcome to Dogear")
    visitor.goto(invite_url)  # the link worked once
    expect(visitor.get_by_role("heading", level=1)).to_have_text("This link was already used")

    # The admin finds the new account with the live search (its URL is pushed, tidy).
    admin.goto("/admin/users")
    expect(admin.locator("#invites")).to_contain_text("No open invites.")
    admin.get_by_label("Search by email").fill("ada@")
    expect(admin).to_have_url(re.compile(r"/admin/users\?q=ada(@|%40)$"))
    expect(admin.locator("#user-rows tbody tr")).to_have_count(1)
    admin.get_by_role("link", name="ada@example.com").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("ada@example.com")
    admin.wait_for_load_state()  # htmx has bound the page's links (a CI run clicked first)

    # Delete: the confirmation appears in place, focused; a wrong address is refused.
    admin.get_by_role("link", name="Delete account…").click()
    confirm = admin.get_by_label("Type the account's email address to confirm")
    expect(confirm).to_be_focused()
    expect(admin).to_have_url(re.compile(r"/admin/users/\d+$"))  # asking isn't a page
    confirm.fill("ada@example.org")
    admin.get_by_role("button", name="Delete account and data").click()
    expect(admin.locator("#confirm-error")).to_contain_text("type ada@example.com exactly")
    assert _user_id(live, "ada@example.com") is not None
    admin.get_by_label("Type the account's email address to confirm").fill("ada@example.com")
    admin.get_by_role("button", name="Delete account and data").click()
    expect(admin).to_have_url(f"{live.url}/admin/users")
    expect(admin.locator("#flashes")).to_contain_text("Deleted ada@example.com")
    expect(admin.locator("#user-rows")).not_to_contain_text("ada@example.com")
    assert _user_id(live, "ada@example.com") is None

    # Ada's browser is signed out for good.
    visitor.goto("/list")
    expect(visitor).to_have_url(re.compile(r"/login"))
    _allow_statuses(pages, 410, 422)
    pages.assert_clean()


def test_disable_confirms_in_place_and_cancel_changes_nothing(pages: Pages, live: Live):
    reader_id = _user_id(live, READER)
    page = pages.open()
    sign_in(page, email=ADMIN, then=f"/admin/users/{reader_id}")
    page.get_by_role("link", name="Disable…").click()
    expect(page.locator("#access")).to_contain_text(f"Disable {READER}?")
    page.locator("#access").get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("link", name="Disable…")).to_be_visible()
    page.get_by_role("link", name="Disable…").click()
    page.get_by_role("button", name="Disable account").click()
    expect(page.locator("#access")).to_contain_text("can't sign in")
    expect(page.locator("#flashes")).to_contain_text("disabled and was signed out")
    page.get_by_role("button", name="Enable account").click()
    expect(page.locator("#access")).to_contain_text("Active: can sign in.")
    pages.assert_clean()


def test_without_javascript_every_step_is_a_page(pages: Pages, live: Live):
    reader_id = _user_id(live, READER)
    page = pages.open(java_script_enabled=False)
    sign_in(page, email=ADMIN, then="/admin/users")

    page.get_by_label("Note for admins").fill("For Bo")
    page.get_by_role("button", name="Make an invite link").click()
    expect(page).to_have_url(f"{live.url}/admin/users#invites")
    assert "/invite/" in page.locator("#new-invite-url").input_value()
    page.reload()
    expect(page.locator("#new-invite-url")).to_have_count(0)  # shown once
    page.get_by_role("link", name=re.compile("Revoke the invite For Bo")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke an invite")
    page.get_by_role("button", name="Revoke invite").click()
    expect(page.locator("#flashes")).to_contain_text("Invite revoked")

    page.goto(f"/admin/users/{reader_id}")
    page.get_by_role("button", name="Make a reset link").click()
    expect(page).to_have_url(re.compile(rf"/admin/users/{reader_id}#password$"))
    assert "/reset/" in page.locator("#new-reset-url").input_value()

    page.get_by_role("link", name="Delete account…").click()
    expect(page).to_have_url(re.compile(rf"/admin/users/{reader_id}/delete#delete$"))
    page.get_by_label("Type the account's email address to confirm").fill(READER)
    page.get_by_role("button", name="Delete account and data").click()
    expect(page).to_have_url(f"{live.url}/admin/users")
    expect(page.locator("#flashes")).to_contain_text(f"Deleted {READER}")
    assert _user_id(live, READER) is None
    pages.assert_clean()


def test_audit_filters_swap_results_and_push_the_url(pages: Pages, live: Live):
    def seed() -> None:
        now = utcnow()
        for n in range(3):
            db.session.add(
                AuditEvent(
                    action="auth.sign_in_failed",
                    actor_email="mallory@evil.example",
                    at=now - timedelta(minutes=n),
                    detail="wrong address or password",
                    ip="203.0.113.9",
                )
            )
        db.session.commit()

    live.run(seed)
    page = pages.open()
    sign_in(page, email=ADMIN, then="/admin/audit")
    expect(page.locator("#audit-results tbody tr")).to_have_count(4)  # and the admin's sign-in
    page.get_by_label("Action").select_option("auth.sign_in_failed")
    expect(page).to_have_url(re.compile(r"/admin/audit\?action=auth\.sign_in_failed$"))
    expect(page.locator("#audit-results tbody tr")).to_have_count(3)
    page.get_by_label("Who").fill("nobody-like-this")
    expect(page.locator("#audit-results")).to_contain_text("No events match")
    page.go_back()
    expect(page.locator("#audit-results tbody tr")).to_have_count(3)
    pages.assert_clean()


# --- how the pages look ------------------------------------------------------------------


def _seed_for_screenshots(live: Live) -> dict[str, str]:
    post_ids = live.post_ids()[:5]

    def seed() -> dict[str, str]:
        admin = auth_services.find_user_by_email(ADMIN)
        reader = auth_services.find_user_by_email(READER)
        for n, email in enumerate(
            [
                "ada.lovelace@example.com",
                "grace@navy.example.mil",
                "a.very.long.address.for.testing.wrapping@subdomain.example.org",
            ]
        ):
            user = auth_services.create_user(email, PASSWORD, is_admin=n == 1)
            user.last_login_at = utcnow() - timedelta(days=n)
            user.is_disabled = n == 2
        db.session.commit()
        for post_id in post_ids:
            db.session.add(Entry(user_id=reader.id, post_id=post_id))
        db.session.add(Entry(user_id=admin.id, post_id=post_ids[0], state="done", progress=100))
        db.session.commit()
        auth_services.create_invite(admin, is_admin=False, note="Ada from the book club", days=7)
        auth_services.create_invite(admin, is_admin=True, note="", days=2)
        _, invite_token = auth_services.create_invite(admin, is_admin=False, note="Bo", days=7)
        reset = auth_services.create_reset_link(reader.id, actor=admin)
        now = utcnow()
        for n, (action, actor, target, detail) in enumerate(
            [
                (
                    "auth.sign_in_failed",
                    "mallory@evil.example",
                    "mallory@evil.example",
                    "wrong address or password",
                ),
                ("user.role", ADMIN, "grace@navy.example.mil", "reader → admin"),
                ("source.refresh", "", "Python weekly", "12 new posts, 3 updated"),
                (
                    "user.delete",
                    ADMIN,
                    "old@example.com",
                    "14 list entries, 2 private posts deleted; 1 shared private post handed on",
                ),
            ]
        ):
            db.session.add(
                AuditEvent(
                    action=action,
                    actor_email=actor,
                    target=target,
                    detail=detail,
                    at=now - timedelta(hours=n + 1),
                    ip="198.51.100.7",
                )
            )
        db.session.commit()
        return {"invite": invite_token, "reset": reset.token, "reader": str(reader.id)}

    return live.run(seed)


def _shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


@pytest.mark.one_database
def test_screenshots_and_no_sideways_scrolling(pages: Pages, live: Live):
    seeded = _seed_for_screenshots(live)
    admin_pages = {
        "admin-users": "/admin/users",
        "admin-user": f"/admin/users/{seeded['reader']}",
        "admin-user-delete": f"/admin/users/{seeded['reader']}/delete",
        "admin-audit": "/admin/audit",
        "admin-audit-bad-date": "/admin/audit?start=2026-05-02&end=2026-05-01",
    }
    public_pages = {
        "invite-signup": f"/invite/{seeded['invite']}",
        "reset-password": f"/reset/{seeded['reset']}",
        "forgot-password": "/forgot",
        "invite-gone": "/invite/not-a-real-token",
    }
    overflow: dict[str, int] = {}
    for scheme in ("light", "dark"):
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            visitor = pages.open(viewport=viewport, color_scheme=scheme)
            for name, path in public_pages.items():
                visitor.goto(path)
                _shoot(visitor, f"{name}-{size}-{scheme}")
            admin = pages.open(viewport=viewport, color_scheme=scheme)
            sign_in(admin, email=ADMIN, then="/admin/users")
            for name, path in admin_pages.items():
                response = admin.goto(path)
                assert response is not None and response.status in (200, 422), path
                _shoot(admin, f"{name}-{size}-{scheme}")
                if size == "phone":
                    extra = admin.evaluate(
                        "document.documentElement.scrollWidth"
                        " - document.documentElement.clientWidth"
                    )
                    if extra > 0:
                        overflow[path] = extra
    assert overflow == {}, "pages that scroll sideways on a 390px phone (px)"
    _allow_statuses(pages, 404, 422)
    pages.assert_clean()

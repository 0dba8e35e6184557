"""The audit log: what is written for each action, the admin page and its filters,
pruning, and `dogear audit tail`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.admin.services import prune_audit_events
from app.admin.tasks import prune_audit_log
from app.extensions import db
from app.models import AuditEvent, utcnow
from tests.conftest import PASSWORD, sign_in


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _add(action: str, at: datetime, actor: str = "x@example.com", **fields) -> None:
    db.session.add(AuditEvent(action=action, at=at, actor_email=actor, **fields))
    db.session.commit()


# --- what is written ---------------------------------------------------------------------


def test_sign_in_failed_sign_in_and_sign_out_are_recorded(client, make_user):
    ada = make_user("ada@example.com")
    sign_in(client, "ada@example.com", "wrong password")
    sign_in(client, "Nobody@Example.com", "whatever it is")
    sign_in(client, ada)
    client.submit("/logout")
    events = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == [
        "auth.sign_in_failed",
        "auth.sign_in_failed",
        "auth.sign_in",
        "auth.sign_out",
    ]
    assert events[0].actor_email == "ada@example.com" and events[0].actor_id is None
    assert events[1].actor_email == "nobody@example.com"
    assert events[2].actor_id == ada.id and events[3].actor_id == ada.id
    assert all(e.ip == "127.0.0.1" for e in events)


def test_a_disabled_account_signing_in_is_a_failed_sign_in(client, make_user):
    make_user("gone@example.com", is_disabled=True)
    sign_in(client, "gone@example.com")
    event = db.session.scalar(select(AuditEvent))
    assert event.action == "auth.sign_in_failed" and "disabled" in event.detail


def test_a_password_change_is_recorded(client, reader):
    client.submit(
        "/account", {"current": PASSWORD, "password": "new password!", "confirm": "new password!"}
    )
    assert _actions()[-1] == "auth.password_change"


def test_registration_and_admin_actions_are_recorded(app, client, admin, make_user):
    from app.auth.services import set_setting

    reader = make_user("ada@example.com")
    client.submit(
        "/admin/users",
        {"email": "new@example.com", "password": "long enough", "confirm": "long enough"},
    )
    client.submit(f"/admin/users/{reader.id}/admin", {"is_admin": "1"})
    client.submit(f"/admin/users/{reader.id}/admin", {"is_admin": "0"})
    client.submit(f"/admin/users/{reader.id}/disabled", {"disabled": "1"})
    client.submit(f"/admin/users/{reader.id}/disabled", {"disabled": "0"})
    client.submit(f"/admin/users/{reader.id}/reset-link")
    client.submit("/admin/settings/registration", {"mode": "open"})
    client.submit("/admin/invites", {"days": "2"})
    client.submit(f"/admin/users/{reader.id}/delete", {"confirm_email": "ada@example.com"})
    assert _actions()[1:] == [  # after the admin's own sign-in
        "user.create",
        "user.role",
        "user.role",
        "user.disable",
        "user.enable",
        "user.reset_link",
        "settings.registration",
        "invite.create",
        "user.delete",
    ]
    set_setting("registration", "open")
    visitor = app.test_client()
    visitor.submit(
        "/register",
        {"email": "self@example.com", "password": "long enough", "confirm": "long enough"},
    )
    created = db.session.scalar(
        select(AuditEvent).where(
            AuditEvent.target == "self@example.com", AuditEvent.action == "user.create"
        )
    )
    assert created.detail == "registered" and created.actor_email == "self@example.com"


def test_a_failed_action_writes_no_event(client, admin):
    client.submit(f"/admin/users/{admin.id}/admin", {"is_admin": "0"})  # the last admin
    assert "user.role" not in _actions()


# --- the page -------------------------------------------------------------------------------


def test_readers_get_403(client, reader):
    assert client.get("/admin/audit").status_code == 403
    assert client.htmx_get("/admin/audit").status_code == 403


def test_the_audit_page_lists_events_newest_first(client, admin):
    now = utcnow()
    _add("source.refresh", now - timedelta(hours=2), target="Python weekly")
    _add("user.disable", now - timedelta(hours=1), target="ada@example.com")
    response = client.get("/admin/audit")
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert html.index("user.disable") < html.index("Python weekly")
    # The action filter lists whatever actions the log holds, other features' too.
    assert '<option value="source.refresh"' in html and '<option value="auth.sign_in"' in html


def test_filters_by_actor_action_and_days(client, admin):
    day = datetime(2026, 3, 10, 12, 0)
    _add("user.disable", day, actor="boss@example.com", target="t-one")
    _add("user.enable", day + timedelta(days=1), actor="boss@example.com", target="t-two")
    _add(
        "auth.sign_in_failed",
        day + timedelta(days=2),
        actor="mallory@evil.example",
        target="t-three",
    )

    def targets(query: str) -> list[str]:
        response = client.htmx_get(f"/admin/audit?{query}")
        assert response.status_code == 200, query
        html = response.get_data(as_text=True)
        assert html.lstrip().startswith('<div id="audit-results"')
        return [t for t in ["t-one", "t-two", "t-three"] if t in html]

    assert targets("actor=boss") == ["t-one", "t-two"]
    assert targets("actor=MALLORY") == ["t-three"]
    assert targets("action=user.enable") == ["t-two"]
    assert targets("start=2026-03-11") == ["t-two", "t-three"]
    assert targets("end=2026-03-11") == ["t-one", "t-two"]
    assert targets("start=2026-03-11&end=2026-03-11") == ["t-two"]
    assert targets("action=nothing.like.this") == []
    response = client.htmx_get("/admin/audit?actor=boss&action=&start=&end=")
    assert response.headers["HX-Push-Url"] == "/admin/audit?actor=boss"
    page = client.get("/admin/audit?actor=boss").get_data(as_text=True)
    assert 'value="boss"' in page and "<html" in page


def test_bad_dates_are_422_inline_never_500(client, admin):
    for query in [
        "start=yesterday",
        "end=2026-02-30",
        "start=2026-05-02&end=2026-05-01",
        "start=0001-01-01",
    ]:
        full = client.get(f"/admin/audit?{query}")
        assert full.status_code == 422, query
        assert 'aria-invalid="true"' in full.get_data(as_text=True)
        fragment = client.htmx_get(f"/admin/audit?{query}")
        assert fragment.status_code == 422
        assert 'role="alert"' in fragment.get_data(as_text=True)


def test_the_audit_log_is_paginated(app, client, admin):
    app.config["ADMIN_PER_PAGE"] = 2
    now = utcnow()
    for n in range(4):
        _add("catalog.edit", now + timedelta(minutes=n), target=f"item-{n}")
    first = client.get("/admin/audit?action=catalog.edit").get_data(as_text=True)
    assert "item-3" in first and "item-2" in first and "item-1" not in first
    assert 'href="/admin/audit?action=catalog.edit&amp;page=2"' in first
    second = client.htmx_get("/admin/audit?action=catalog.edit&page=2").get_data(as_text=True)
    assert "item-1" in second and "item-0" in second and "item-3" not in second


# --- keeping and pruning ----------------------------------------------------------------------


def test_pruning_drops_events_older_than_the_retention(app):
    now = utcnow()
    _add("old.event", now - timedelta(days=366))
    _add("kept.event", now - timedelta(days=364))
    assert prune_audit_events(365, now=now) == 1
    assert _actions() == ["kept.event"]
    app.config["AUDIT_KEEP_DAYS"] = 30
    assert prune_audit_log.call_local() == 1  # the nightly job uses AUDIT_KEEP_DAYS
    db.session.rollback()  # the job ran in an app context (and session) of its own
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_the_pruning_job_runs_every_night():
    from app.jobs import huey

    assert prune_audit_log.task_class in huey._registry._periodic_tasks
    validate = prune_audit_log.task_class().validate_datetime
    assert validate(datetime(2026, 5, 1, 3, 17))
    assert not validate(datetime(2026, 5, 1, 3, 18))


def test_cli_tail_prints_the_latest_events(app):
    now = utcnow()
    for n in range(25):
        _add("user.enable", now + timedelta(seconds=n), target=f"user-{n:02d}", ip="10.0.0.1")
    result = app.test_cli_runner().invoke(args=["audit", "tail"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 20
    assert "user-05" in lines[0] and "user-24" in lines[-1]
    assert "x@example.com  user.enable  user-24" in lines[-1] and "[10.0.0.1]" in lines[-1]
    three = app.test_cli_runner().invoke(args=["audit", "tail", "-n", "3"]).output
    assert len(three.strip().splitlines()) == 3
    assert app.test_cli_runner().invoke(args=["audit", "tail", "-n", "0"]).exit_code != 0

"""Rules that read and then write, under concurrency: on SQLite (writes queue for the
lock) and on the PostgreSQL pass (where the unique constraint decides, and the
IntegrityError must come back as the same clear message)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.auth import services
from app.extensions import db
from app.models import User
from tests.conftest import run_concurrently

SIGN_UP = {"email": "same@example.com", "password": "long enough", "confirm": "long enough"}


def test_two_accounts_registered_with_one_address_at_once_make_one(app):
    services.set_setting("registration", "open")
    statuses: list[int] = []
    pages: list[str] = []

    def register() -> None:
        client = app.test_client()
        response = client.submit("/register", SIGN_UP)
        statuses.append(response.status_code)
        pages.append(response.get_data(as_text=True))

    assert run_concurrently(app, register, workers=4) == []
    assert sorted(statuses) == [303, 422, 422, 422]
    refused = [page for status, page in zip(statuses, pages, strict=True) if status == 422]
    assert all("An account with that email already exists." in page for page in refused)
    count = select(func.count()).select_from(User).where(User.email == "same@example.com")
    assert db.session.scalar(count) == 1

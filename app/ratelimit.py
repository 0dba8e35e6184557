"""Flask-Limiter counters kept in Dogear's own database.

The limits library ships memory, Redis, Memcached and MongoDB storage. Memory is per
gunicorn worker, so with two workers an attacker gets twice the attempts, and which
worker answers decides whether a request is refused. Self-hosters shouldn't need Redis
for login throttling to mean what it says, so by default the counters live in a small
table: `DOGEAR_RATELIMIT_STORAGE_URI=dogear+db://`. A Redis URI still works.

Only a hit (`incr`) writes, in a short `BEGIN IMMEDIATE` transaction. Checking a limit
(`get`, `get_expiry`, `check`) is a plain read: on SQLite in WAL mode it never waits for
the write lock, so signing in works while a long import holds it. The sign-in limits
count failed attempts only (see app/auth/throttle.py), so a sign-in with the right
password reads the counters and writes nothing here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import has_app_context
from limits.storage import Storage
from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.db import immediate_connection, insert_ignoring_conflicts
from app.extensions import db
from app.models import RateLimit

SCHEME = "dogear+db"
_PURGE_ONE_IN = 100  # drop long-expired counters now and then, on a write


@contextmanager
def _read_connection() -> Iterator[Any]:
    """A connection of its own in a plain (deferred) read transaction: on SQLite it
    takes no write lock, so it never waits behind a long write."""
    with db.engine.connect() as connection:
        yield connection


class DatabaseStorage(Storage):
    """Fixed-window counters: one row per limit key, reset once its window ends."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        table = RateLimit.__table__
        expired = RateLimit.expires_at <= now
        with immediate_connection() as conn:
            conn.execute(
                insert_ignoring_conflicts(
                    table, {"key": key, "hits": 0, "expires_at": now + expiry}, "key"
                )
            )
            conn.execute(
                update(RateLimit)
                .where(RateLimit.key == key)
                .values(
                    hits=case((expired, amount), else_=RateLimit.hits + amount),
                    expires_at=case((expired, now + expiry), else_=RateLimit.expires_at),
                )
            )
            if random.randrange(_PURGE_ONE_IN) == 0:
                conn.execute(delete(RateLimit).where(RateLimit.expires_at < now - 3600))
            return conn.execute(select(RateLimit.hits).where(RateLimit.key == key)).scalar_one()

    def get(self, key: str) -> int:
        with _read_connection() as conn:
            hits = conn.execute(
                select(RateLimit.hits).where(
                    RateLimit.key == key, RateLimit.expires_at > time.time()
                )
            ).scalar()
        return hits or 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with _read_connection() as conn:
            expires = conn.execute(
                select(RateLimit.expires_at).where(RateLimit.key == key)
            ).scalar()
        return expires if expires is not None and expires > now else now

    def check(self) -> bool:
        if not has_app_context():  # asked at start-up, before any request
            return True
        try:
            with _read_connection() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with immediate_connection() as conn:
            return conn.execute(delete(RateLimit)).rowcount

    def clear(self, key: str) -> None:
        with immediate_connection() as conn:
            conn.execute(delete(RateLimit).where(RateLimit.key == key))

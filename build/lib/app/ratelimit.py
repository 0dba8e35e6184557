"""Flask-Limiter counters kept in Dogear's own database.

The limits library ships memory, Redis, Memcached and MongoDB storage. Memory is per
gunicorn worker, so with two workers an attacker gets twice the attempts, and which
worker answers decides whether a request is refused. Self-hosters shouldn't need Redis
for login throttling to mean what it says, so by default the counters live in a small
table: `DOGEAR_RATELIMIT_STORAGE_URI=dogear+db://`. A Redis URI still works.
"""

from __future__ import annotations

import random
import time
from typing import Any

from flask import has_app_context
from limits.storage import Storage
from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.db import immediate_connection, insert_ignoring_conflicts
from app.models import RateLimit

SCHEME = "dogear+db"
_PURGE_ONE_IN = 100  # drop long-expired counters now and then, on a write


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
        with immediate_connection() as conn:
            hits = conn.execute(
                select(RateLimit.hits).where(
                    RateLimit.key == key, RateLimit.expires_at > time.time()
                )
            ).scalar()
        return hits or 0

    def get_expiry(self, key: str) -> float:
        with immediate_connection() as conn:
            expires = conn.execute(
                select(RateLimit.expires_at).where(RateLimit.key == key)
            ).scalar()
        return expires if expires is not None else time.time()

    def check(self) -> bool:
        if not has_app_context():  # asked at start-up, before any request
            return True
        try:
            with immediate_connection() as conn:
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

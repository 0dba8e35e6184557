"""The session cookie and the CSRF token, verified and signed once per worker.

Every request verified the session cookie's HMAC and decoded it, and every page signed
the session's CSRF token again (Flask-WTF puts the time in each one), although a
reader's browser sends the same cookie request after request. Both are pure functions
of the secret key and the value, so each worker keeps the answers (bounded LRUs):

- `SessionCookies` is Flask's signed-cookie session, remembering the contents of a
  cookie it has verified. The cookie's age is still checked on every request, against
  the time it was signed, exactly as itsdangerous checks it. A cookie is kept only when
  its contents are flat values (str, int, float, bool, None), so each request gets a
  copy nothing can change in the kept one; pending flash messages (a list) are not kept.
- `csrf_token` is Flask-WTF's `generate_csrf` for templates, signing each raw token
  once. Only while `WTF_CSRF_TIME_LIMIT` is None (Dogear's setting: a token lives as
  long as its session): the time inside the token is then never checked, so an older
  signature of the same raw token is as good as a new one.

Neither decides who is signed in: that is the session row, read on every request
(app/auth/sessions.py), so signing out, revocation and demotion stay immediate.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from flask import Flask, Request, current_app, g, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.kept import Kept

COOKIES_KEPT = 1024  # distinct session cookies remembered per worker (under 1 MB)
TOKENS_KEPT = 1024  # signed CSRF tokens remembered per worker
_FLAT = (str, int, float, bool, type(None))


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie session; a cookie already verified isn't verified again."""

    def __init__(self) -> None:
        # (secret key, cookie) -> (contents, when it was signed, in whole seconds)
        self._verified: Kept[tuple[Any, str], tuple[dict[str, Any], int]] = Kept(COOKIES_KEPT)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie or not app.secret_key:
            return super().open_session(app, request)
        key = (app.secret_key, cookie)
        kept = self._verified.get(key)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        if kept is not None and self._young(kept[1], max_age):
            return self.session_class(kept[0])
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        try:
            contents, signed = serializer.loads(cookie, max_age=max_age, return_timestamp=True)
        except BadSignature:  # a forged, damaged or expired cookie: a new session
            return self.session_class()
        if isinstance(contents, dict) and all(type(v) in _FLAT for v in contents.values()):
            self._verified.put(key, (dict(contents), int(signed.timestamp())))
        return self.session_class(contents)

    @staticmethod
    def _young(signed_at: int, max_age: int) -> bool:
        """Whether a cookie signed then is still good: itsdangerous's own test."""
        return 0 <= int(time.time()) - signed_at <= max_age


def csrf_token() -> str:
    """The CSRF token of this session (templates' `csrf_token()`), signed once per
    worker for each session's raw token while tokens don't expire."""
    config = current_app.config
    name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    raw = session.get(name)
    if name not in g and isinstance(raw, str) and config.get("WTF_CSRF_TIME_LIMIT") is None:
        secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        setattr(g, name, _signed(secret, raw))
    return generate_csrf()


@lru_cache(maxsize=TOKENS_KEPT)
def _signed(secret: str | bytes, raw: str) -> str:
    """`raw` signed as Flask-WTF signs it (`generate_csrf`'s serializer and salt)."""
    return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


def init_app(app: Flask) -> None:
    """Use both for `app` (after Flask-WTF has set up its `csrf_token` global)."""
    app.session_interface = SessionCookies()
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})  # Flask-WTF sets it there too

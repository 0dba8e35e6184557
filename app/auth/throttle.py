"""How sign-in attempts are throttled, with Flask-Limiter and the shared counters of
app/ratelimit.py (in the database, so every worker and host counts together).

Only FAILED attempts count (`deduct_when=failed`: the form came back 422), so an office
whose readers all sign in from one address never reaches a limit by signing in.

- Per client address, any account: RATELIMIT_LOGIN (10 per minute). One address can't
  guess at many accounts, and a reader who mistypes only waits out that minute.
- Per account (the normalized address typed in), from anywhere: RATELIMIT_LOGIN_ACCOUNT
  (20 per 15 minutes). Guessing one account's password from many addresses is slow.

The per-account limit is the one someone else could trip on the victim's behalf. It is
a fixed window, so it ends at most RATELIMIT_LOGIN_ACCOUNT's window after the first of
those failures, and it never applies to a browser that has signed in to that account
before (a "known device" cookie, as OWASP suggests for exactly this): the reader's own
browsers keep getting in with the right password while someone elsewhere hammers the
account; only the per-address limit of the reader's own address applies to them.

Limits are checked before the view (a read of the counters) and deducted after it, so a
burst of parallel failures can overshoot a limit by the requests in flight at once (at
most the number of gunicorn workers and threads).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from flask import Response, after_this_request, current_app, request, url_for

from app.auth.services import normalize_email
from app.extensions import limiter

KNOWN_DEVICE_COOKIE = "dogear_known"
_KNOWN_DEVICE_KEEP = 5  # accounts one browser remembers having signed in to
_KNOWN_DEVICE_DAYS = 365


def failed(response: Response) -> bool:
    """A rejected attempt: the form came back with its errors (a form shown again only
    because its CSRF token had expired is a 400: no password was tried)."""
    return response.status_code == 422


def address_limit() -> str:
    return str(current_app.config["RATELIMIT_LOGIN"])


def account_limit() -> str:
    return str(current_app.config.get("RATELIMIT_LOGIN_ACCOUNT", "20 per 15 minutes"))


def address_key() -> str:
    return f"address:{request.remote_addr or ''}"


def _digest(purpose: str, email: str) -> str:
    """A keyed hash of an address: the counters and the cookie never hold it in clear."""
    key = str(current_app.secret_key).encode()
    message = f"{purpose}\0{normalize_email(email)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def account_key() -> str:
    return f"account:{_digest('throttle', request.form.get('email', ''))}"


def _known_devices() -> list[str]:
    return [t for t in request.cookies.get(KNOWN_DEVICE_COOKIE, "").split(".") if t]


def known_device() -> bool:
    """This browser signed in to the account being tried before: it is exempt from
    the per-account limit (not from its address's)."""
    token = _digest("known-device", request.form.get("email", ""))
    return any(hmac.compare_digest(token, kept) for kept in _known_devices())


def remember_device(email: str) -> None:
    """After a successful sign-in: remember on this browser that it signed in to this
    account (the newest few accounts)."""
    token = _digest("known-device", email)
    kept = [token, *(t for t in _known_devices() if t != token)][:_KNOWN_DEVICE_KEEP]

    @after_this_request
    def _set_cookie(response: Response) -> Response:
        response.set_cookie(
            KNOWN_DEVICE_COOKIE,
            ".".join(kept),
            max_age=_KNOWN_DEVICE_DAYS * 24 * 3600,
            path=url_for("auth.login"),
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            httponly=True,
            samesite="Lax",
        )
        return response


def sign_in_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """The password step's limits (POST only, failures only)."""
    view = limiter.limit(
        account_limit,
        methods=["POST"],
        key_func=account_key,
        deduct_when=failed,
        exempt_when=known_device,
    )(view)
    return limiter.limit(
        address_limit, methods=["POST"], key_func=address_key, deduct_when=failed
    )(view)

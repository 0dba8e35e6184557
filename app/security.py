"""Response headers and redirect-target checks shared by every blueprint, the host
names Dogear answers to, and how strong a secret key is."""

from __future__ import annotations

import logging
import math
import re
import string
import zlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Request as FlaskRequest
from flask import Response, current_app, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import SecurityError
from werkzeug.formparser import FormDataParser
from werkzeug.wrappers import Response as PlainResponse
from werkzeug.wsgi import get_host

logger = logging.getLogger(__name__)

# No inline scripts or styles, no eval: htmx is configured accordingly in base.html.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def set_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        # Pages differ per reader and per HX-Request: never let a shared cache keep them.
        response.headers.setdefault("Cache-Control", "no-store")
        # A redirect (or HX-Redirect) answers htmx and plain requests differently too,
        # wherever it comes from; pages say so in `templating.render`.
        if response.status_code in (301, 302, 303, 307, 308) or "HX-Redirect" in response.headers:
            response.vary.add("HX-Request")
    return response


def safe_next_url(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None.

    Only relative paths are allowed: no scheme, no host, and no `//` or `\\` tricks
    that browsers read as another host.
    """
    if not target:
        return None
    target = target.strip()
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


class _NamedPartsParser(FormDataParser):
    """Drops multipart parts without a name: werkzeug files them under the key None,
    which Flask-WTF's CSRF check (`key.endswith(...)`) and forms can't read (a 500)."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        stream, form, files = super().parse(*args, **kwargs)
        if None in form:
            form = form.__class__([(k, v) for k, v in form.items(multi=True) if k is not None])
        if None in files:
            files = files.__class__([(k, v) for k, v in files.items(multi=True) if k is not None])
        return stream, form, files


def named_parts_only(request_class: type[FlaskRequest]) -> type[FlaskRequest]:
    """`request_class`, reading its forms with `_NamedPartsParser`."""
    return type(
        request_class.__name__, (request_class,), {"form_data_parser_class": _NamedPartsParser}
    )


F = TypeVar("F", bound=Callable[..., Any])


def accepts_files(view: F) -> F:
    """Mark a view whose form takes file uploads (see `refuse_unexpected_files`)."""
    view.accepts_files = True  # type: ignore[attr-defined]
    return view


def refuse_unexpected_files() -> Response | None:
    """A file part sent where a form expects text is refused with a 400, before any
    form sees an object it can't read as text. Views that take uploads say so with
    `@accepts_files`."""
    if request.mimetype != "multipart/form-data" or not request.files:
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "accepts_files", False):
        return None
    from app.errors import render_error

    return render_error(400, "This form doesn't take files; send it as text.")


def refuse_unstorable_text() -> Response | None:
    """Characters no database column can hold (NUL, lone surrogates) never reach a
    query: removed from query parameters (a filter then falls back as for any bad
    value), and a form that carries them is refused with a 400 that says why."""
    if not request.query_string.isascii():
        # Raw bytes a browser would have %-escaped (`GET /?\x80` from a script): escape
        # them, or werkzeug's `args`, `full_path` and `url` raise UnicodeDecodeError (a 500).
        request.query_string = _RAW_BYTE.sub(  # type: ignore[misc]
            lambda byte: b"%%%02X" % byte[0][0], request.query_string
        )
        request.__dict__.pop("args", None)
    if any(_unstorable(v) for _, v in request.args.items(multi=True)):
        request.args = ImmutableMultiDict(  # type: ignore[misc]
            [(k, _storable(v)) for k, v in request.args.items(multi=True)]
        )
    if (
        request.method in ("POST", "PUT", "PATCH")
        and request.mimetype
        in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
        and any(_unstorable(v) for _, v in request.form.items(multi=True))
    ):
        from app.errors import render_error

        return render_error(400, "Text with a NUL or other invalid character can't be stored.")
    return None


_RAW_BYTE = re.compile(rb"[\x80-\xff]")


def _unstorable(value: str) -> bool:
    return "\x00" in value or _has_surrogate(value)


def _storable(value: str) -> str:
    return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# --- the host names Dogear answers to ----------------------------------------------------


def parse_trusted_hosts(value: object) -> list[str] | None:
    """TRUSTED_HOSTS as Flask wants it: a list of host names, or None for any host.

    Accepts a list, or one string of names separated by commas or spaces (so
    `DOGEAR_TRUSTED_HOSTS=read.example.org,www.read.example.org` works as well as a JSON
    list). A name starting with a dot also matches every subdomain (Werkzeug's rule).
    Raises ValueError, saying why, for anything that isn't a host name."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        items: Iterable[object] = value.replace(",", " ").split()
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        raise ValueError(f"expected a list of host names, not {value!r}")
    hosts = []
    for item in items:
        host = str(item).strip().lower()
        if not host:
            continue
        if "/" in host or "@" in host:
            raise ValueError(
                f"{item!r} is not a host name: write just the name, like read.example.org "
                "(no scheme, no path)"
            )
        hosts.append(host)
    return hosts or None


class TrustedHostsMiddleware:
    """WSGI middleware: a request for a host name not in `trusted_hosts` gets a short,
    plain 400 before Flask sees it.

    Flask 3.1 checks `TRUSTED_HOSTS` itself, but while it builds the request's URL
    adapter: the request then has no adapter, and the error page (which builds its
    links with `url_for`) would fail as a 500. Refusing here answers such requests
    (scanners, a forged Host for poisoned links in mail) cheaply and clearly. It sits
    inside ProxyFix, so with DOGEAR_PROXY_FIX the host checked is the one the proxy
    forwarded."""

    def __init__(self, wsgi_app: Any, trusted_hosts: list[str]) -> None:
        self.wsgi_app = wsgi_app
        self.trusted_hosts = trusted_hosts

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            get_host(environ, self.trusted_hosts)
        except SecurityError:
            host = environ.get("HTTP_HOST", "")
            logger.info("Refused a request for host %r: not in TRUSTED_HOSTS", host[:200])
            return untrusted_host_response()(environ, start_response)
        return self.wsgi_app(environ, start_response)


def untrusted_host_response() -> PlainResponse:
    response = PlainResponse(
        "400 Bad Request: this Dogear does not answer to that host name.\n"
        "If this is your Dogear, add the name readers use to DOGEAR_TRUSTED_HOSTS.\n",
        status=400,
        mimetype="text/plain",
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- how strong a secret key is ----------------------------------------------------------

MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 128
_HEX = frozenset(string.hexdigits.lower()) | frozenset(string.hexdigits.upper())
_CLASSES = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
)
_OTHER = 33  # printable ASCII punctuation and space; anything else counts the same


def secret_bits(key: str) -> float:
    """A rough, deliberately generous estimate of the bits an attacker must guess.

    Each character is worth log2 of the alphabet its character classes span (16 for
    hex; lower, upper, digits, other), times the length after taking repeats out.
    Repeats are measured by deflate with fixed Huffman codes, which shrinks only
    repeated runs, not a small alphabet: `changeme` five times is 11 bytes of 40.
    A random key, with its few chance repeats, keeps its whole length."""
    if not key:
        return 0.0
    chars = set(key)
    alphabet = sum(size for members, size in _CLASSES if members & chars)
    if any(not any(c in members for members, _ in _CLASSES) for c in chars):
        alphabet += _OTHER
    if chars <= _HEX and (key == key.lower() or key == key.upper()):
        alphabet = min(alphabet, 16)  # hex digits: `openssl rand -hex 32`
    raw = key.encode()
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_FIXED)
    unrepeated = len(squeezer.compress(raw) + squeezer.flush()) - 2  # 2: the empty stream
    length = len(key)
    if unrepeated < 0.75 * len(raw):  # mostly repeats, not chance ones
        length = max(0, round(length * unrepeated / len(raw)))
    return length * math.log2(alphabet)


def secret_weakness(key: str, well_known: Iterable[str] = ()) -> str | None:
    """Why `key` must not sign sessions in production, or None when it may."""
    if not key:
        return "is not set"
    if key.strip().lower() in {k.lower() for k in well_known}:
        return "is a well-known placeholder"
    if len(key) < MIN_SECRET_LENGTH:
        return f"is {len(key)} characters long; it needs {MIN_SECRET_LENGTH} or more"
    if len(set(key)) < 8:
        return f"uses only {len(set(key))} different characters"
    bits = secret_bits(key)
    if bits < MIN_SECRET_BITS:
        return (
            f"is too predictable: about {bits:.0f} bits of randomness (it repeats a pattern "
            f"or uses few kinds of characters), and it needs {MIN_SECRET_BITS}"
        )
    return None

"""Article addresses: checking what a reader typed and normalising it, so the same page
saved twice (with another fragment, tracking parameters, host case or default port)
is one post."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MAX_URL_LENGTH = 2048

# Query parameters that only say where a click came from.
TRACKING_PARAMS = {
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "ref_src",
    "ref_url",
    "s_cid",
    "spm",
}
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


class InvalidURL(ValueError):
    """What is wrong with an address, in words a reader understands."""


def normalize_url(raw: str) -> str:
    """The canonical form of an http(s) address, or InvalidURL saying why not.

    A bare `example.org/page` gets `https://`. Scheme and host are lower-cased (the host
    in its IDNA form), a default port, the fragment and tracking parameters go, an
    empty path becomes `/`; the rest of the path and query stay as they were.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidURL("Enter the address of a page.")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"That address is longer than {MAX_URL_LENGTH:,} characters.")
    if any(ord(c) < 32 or c == "\x7f" for c in text) or " " in text:
        raise InvalidURL("That address has spaces or control characters in it.")
    if not _SCHEME.match(text) or text.lower().startswith(("localhost:", "www.")):
        text = f"https://{text.lstrip('/')}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise InvalidURL("That doesn't look like a web address.") from error
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL("Only http and https addresses can be saved.")
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("Addresses with a user name or password can't be saved.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidURL("That address has no host name.")
    try:
        host = host.encode("idna").decode("ascii").lower() if not _is_ip(host) else host
    except UnicodeError as error:
        raise InvalidURL("That address has an invalid host name.") from error
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    # Filtered as written, not decoded and re-encoded: some sites are picky about it.
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not _tracking(pair.split("=")[0])
    )
    url = urlunsplit((scheme, netloc, path, query, ""))
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"That address is longer than {MAX_URL_LENGTH:,} characters.")
    return url


def _tracking(key: str) -> bool:
    key = unquote(key).lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()

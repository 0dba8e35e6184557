"""The one outbound HTTP client: every request Dogear makes goes through `fetch`.

The URLs come from readers and feeds, so a fetch must not be turned against the server
or its network, nor tie a worker up. Hence:

- the address is checked when the socket is opened, on the IP actually dialled, for
  every hop: connections resolve the host once through the policy's resolver and
  connect to that IP themselves, so DNS rebinding and redirects cannot slip past;
  TLS still verifies the certificate against the host name (SNI is the host name);
- redirects are followed here, each one re-checked;
- a watchdog shuts the sockets down at the total deadline, because a socket timeout
  restarts on every byte and a server trickling one byte a second would never end;
- the body is capped after decompression, read in bounded steps so a gzip bomb stops
  at the cap.

This is the only module under app/ that may import an HTTP client.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any
from urllib.parse import urljoin

import urllib3
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import Timeout, parse_url

from app.fetching.addresses import Address, is_allowed, parse_ip_literal, parse_networks

DEFAULT_USER_AGENT = "Dogear/0.1 (self-hosted reading list; +https://github.com/dogear-reader)"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_ENCODING = "gzip, deflate"  # all we can decode with a bounded output size

Resolver = Callable[[str, int], list[str]]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_STEP = 64 * 1024  # most decoded bytes held beyond the cap
_DECODABLE = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
# Headers a caller may not set: they would confuse the framing, the target or decoding.
_RESERVED_HEADERS = frozenset(
    {"host", "accept-encoding", "connection", "content-length", "transfer-encoding"}
)
# Credentials the caller meant for one site are not carried to another one.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

_NOT_A_URL = "the link is not a valid web address"
_MESSAGES = {
    "invalid_url": "only http and https links can be fetched",
    "blocked_address": "the address is on a private network, which Dogear does not fetch from",
    "dns": "the host name could not be found",
    "connection": "the site could not be reached",
    "timeout": "the site took too long to answer",
    "too_large": "the page is too large",
    "too_many_redirects": "too many redirects",
}


class FetchError(Exception):
    """A fetch that failed, with a machine `code` and a sentence a reader can see.

    Codes: invalid_url, blocked_address, dns, connection, timeout, too_large,
    too_many_redirects, http_status (then `status` holds the HTTP status).
    """

    def __init__(self, code: str, message: str | None = None, status: int | None = None) -> None:
        if message is None:
            if code == "http_status":
                message = f"the site answered {status}"
            else:
                message = _MESSAGES.get(code, "the page could not be fetched")
        super().__init__(code, message, status)  # all in args, so it pickles for job queues
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may do. `allow_private` also accepts CIDR strings (normalized)."""

    allow_private: tuple[IPv4Network | IPv6Network, ...] = ()
    connect_timeout: float = 5.0
    total_timeout: float = 20.0  # whole request incl. redirects and body
    max_bytes: int = 5_000_000  # body cap, after decompression
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    resolver: Resolver | None = None  # host, port -> IP strings; None: socket.getaddrinfo

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_private", parse_networks(self.allow_private))
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("fetch timeouts must be positive")
        if self.max_bytes <= 0:
            raise ValueError("the fetch size cap must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects cannot be negative")


def policy_from_config(config: Mapping[str, Any]) -> FetchPolicy:
    """The policy from app config `FETCH_*` keys; missing or empty keys keep defaults.

    FETCH_ALLOW_PRIVATE is a list of CIDR strings or one comma-separated string (so it
    works from an environment variable); an invalid entry raises ValueError.
    """
    defaults = FetchPolicy()

    def setting(key: str, default: Any, convert: Callable[[Any], Any]) -> Any:
        value = config.get(key)
        if value is None or value == "":
            return default
        try:
            return convert(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: {value!r} is not a valid value") from None

    return FetchPolicy(
        allow_private=parse_networks(
            config.get("FETCH_ALLOW_PRIVATE") or (), setting="FETCH_ALLOW_PRIVATE"
        ),
        connect_timeout=setting("FETCH_CONNECT_TIMEOUT", defaults.connect_timeout, float),
        total_timeout=setting("FETCH_TIMEOUT", defaults.total_timeout, float),
        max_bytes=setting("FETCH_MAX_BYTES", defaults.max_bytes, int),
        max_redirects=setting("FETCH_MAX_REDIRECTS", defaults.max_redirects, int),
        user_agent=setting("FETCH_USER_AGENT", defaults.user_agent, str),
    )


@dataclass(frozen=True)
class FetchResponse:
    """A successful (2xx) or not-modified (304) answer, body decompressed."""

    url: str  # final URL after redirects
    status: int
    headers: Mapping[str, str] = field(repr=False)  # case-insensitive
    body: bytes = field(repr=False)
    content_type: str  # mime type, lower-cased, no parameters; "" when missing
    charset: str | None  # from the Content-Type header, lower-cased

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


def fetch(
    url: str, policy: FetchPolicy, *, headers: Mapping[str, str] | None = None
) -> FetchResponse:
    """GET `url` under `policy`, following redirects; raises FetchError on any failure.

    Returns 2xx and 304 answers (pass If-None-Match / If-Modified-Since in `headers`).
    """
    request_headers = _request_headers(policy, headers)
    with _Guard(policy) as guard:
        manager = _GuardedPoolManager(guard)
        try:
            return _follow(url, request_headers, manager, guard)
        finally:
            manager.clear()


def _follow(
    url: str, headers: dict[str, str], manager: _GuardedPoolManager, guard: _Guard
) -> FetchResponse:
    current = url
    origin = None
    for _ in range(guard.policy.max_redirects + 1):
        target = _checked_url(current, guard.policy)
        if origin is not None and _origin(target) != origin:
            headers = {k: v for k, v in headers.items() if k.lower() not in _ORIGIN_BOUND_HEADERS}
        origin = _origin(target)
        response = _open(manager, target, headers, guard)
        try:
            location = response.headers.get("location")
            if response.status in _REDIRECT_STATUSES and location:
                try:
                    current = urljoin(target, location.strip())
                except ValueError:
                    raise FetchError("invalid_url", _NOT_A_URL) from None
                continue
            if not (200 <= response.status < 300 or response.status == 304):
                raise FetchError("http_status", status=response.status)
            return _read(response, target, guard)
        finally:
            response.close()  # an unread body makes the connection unusable anyway
            response.release_conn()
    raise FetchError("too_many_redirects")


def _request_headers(policy: FetchPolicy, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": ACCEPT,
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    for name, value in (extra or {}).items():
        if name.lower() in _RESERVED_HEADERS:
            continue
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    return headers


def _checked_url(url: str, policy: FetchPolicy) -> str:
    """The normalized URL, if it is one Dogear may fetch; refused before any connection."""
    try:
        parsed = parse_url(url.strip())
    except u3.LocationParseError:
        raise FetchError("invalid_url", _NOT_A_URL) from None
    if (parsed.scheme or "").lower() not in {"http", "https"}:
        raise FetchError("invalid_url")
    if parsed.auth is not None:
        raise FetchError("invalid_url", "links with a user name or password are not fetched")
    if not parsed.host:
        raise FetchError("invalid_url", _NOT_A_URL)
    try:
        literal = parse_ip_literal(parsed.host)
    except ValueError:
        raise FetchError("invalid_url", _NOT_A_URL) from None
    if literal is not None and not is_allowed(literal, policy.allow_private):
        raise FetchError("blocked_address")
    return parsed.url


def _origin(url: str) -> tuple[str | None, str | None, int | None]:
    parsed = parse_url(url)
    return parsed.scheme, parsed.host, parsed.port


def _open(
    manager: _GuardedPoolManager, url: str, headers: dict[str, str], guard: _Guard
) -> urllib3.BaseHTTPResponse:
    guard.check()
    remaining = guard.remaining()
    timeout = Timeout(connect=min(guard.policy.connect_timeout, remaining), read=remaining)
    try:
        return manager.urlopen(
            "GET",
            url,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=True,
            timeout=timeout,
        )
    except (u3.HTTPError, http.client.HTTPException, OSError, ValueError) as error:
        raise _translate(error, guard) from error


def _read(response: urllib3.BaseHTTPResponse, url: str, guard: _Guard) -> FetchResponse:
    limit = guard.policy.max_bytes
    too_large = FetchError("too_large", f"the page is too large (over {_size(limit)})")
    length = (response.headers.get("content-length") or "").strip()
    if length.isdigit() and int(length) > limit:
        raise too_large
    encodings = response.headers.get("content-encoding", "").lower().split(",")
    if any(encoding.strip() not in _DECODABLE for encoding in encodings):
        raise FetchError("connection", "the site sent the page in an encoding Dogear cannot read")
    chunks: list[bytes] = []
    size = 0
    try:
        # read(n) decodes at most n bytes per call, so a bomb never inflates past the cap.
        while chunk := response.read(_READ_STEP, decode_content=True):
            size += len(chunk)
            if size > limit or response.tell() > limit:
                raise too_large
            chunks.append(chunk)
            guard.check()
    except (u3.HTTPError, http.client.HTTPException, OSError, ValueError) as error:
        raise _translate(error, guard) from error
    guard.check()  # the watchdog's shutdown can look like a clean end of the body
    headers = urllib3.HTTPHeaderDict(response.headers)
    content_type, charset = _parse_content_type(headers.get("content-type", ""))
    return FetchResponse(
        url=url,
        status=response.status,
        headers=headers,
        body=b"".join(chunks),
        content_type=content_type,
        charset=charset,
    )


def _parse_content_type(value: str) -> tuple[str, str | None]:
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, raw = param.partition("=")
        if name.strip().lower() == "charset":
            charset = raw.strip().strip("\"'").strip().lower() or None
            break
    return mime.strip().lower(), charset


def _size(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def _translate(error: Exception, guard: _Guard) -> FetchError:
    """A FetchError for a urllib3 or socket failure; the message never includes the body."""
    if isinstance(error, FetchError):
        return error
    if guard.expired or guard.remaining() <= 0:
        return FetchError("timeout")
    if isinstance(error, u3.NameResolutionError):
        return FetchError("dns")
    if isinstance(error, u3.NewConnectionError):  # before ConnectTimeoutError, its base
        return FetchError("connection")
    if isinstance(error, u3.TimeoutError | socket.timeout):
        return FetchError("timeout")
    if isinstance(error, u3.SSLError):
        return FetchError("connection", "the site's secure connection could not be verified")
    if isinstance(error, ValueError | http.client.InvalidURL):
        return FetchError("invalid_url", _NOT_A_URL)
    return FetchError("connection")


class _Guard:
    """Per-fetch state the connections share: the policy, the deadline, a watchdog.

    At the deadline the watchdog shuts every socket of the fetch down, which wakes any
    blocked read (headers, body, TLS) whatever the socket timeout says. It holds dups
    of the sockets because TLS wrapping detaches the original socket object.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.deadline = time.monotonic() + policy.total_timeout
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(policy.total_timeout, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Guard:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.expired or self.remaining() <= 0:
            raise FetchError("timeout")

    def watch(self, sock: socket.socket) -> None:
        dup = sock.dup()
        with self._lock:
            self._sockets.append(dup)
            if self.expired:
                _shutdown(dup)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer or by urllib3
        sock.shutdown(socket.SHUT_RDWR)


def _system_resolver(host: str, port: int) -> list[str]:
    # getaddrinfo cannot be interrupted; the deadline is checked again right after it.
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _resolve(host: str, port: int, policy: FetchPolicy) -> list[Address]:
    """The addresses to dial, each already allowed by the policy."""
    try:
        literal = parse_ip_literal(host)
    except ValueError:
        raise FetchError("invalid_url", _NOT_A_URL) from None
    if literal is not None:
        addresses = [literal]  # never handed to a resolver that might read it differently
    else:
        resolver = policy.resolver or _system_resolver
        try:
            names = resolver(host, port)
            addresses = list(dict.fromkeys(ip_address(name) for name in names))
        except (OSError, UnicodeError, ValueError):
            raise FetchError("dns") from None
        if not addresses:
            raise FetchError("dns")
    # Refuse the host if any address is private: a name that mixes public and private
    # answers is either misconfigured or an attack, and retries could land on the latter.
    if not all(is_allowed(address, policy.allow_private) for address in addresses):
        raise FetchError("blocked_address")
    return addresses


def _connect(address: Address, port: int, timeout: float, conn: HTTPConnection) -> socket.socket:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    # Numeric lookup only (no DNS): builds the sockaddr, scope id included.
    sockaddr = socket.getaddrinfo(
        str(address), port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
    )[0][4]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in conn.socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout)
        if conn.source_address:
            sock.bind(conn.source_address)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _GuardedConnectionMixin:
    """Resolve once, refuse blocked addresses, connect to the checked IP itself.

    `self.host` stays the name, so Host, SNI and certificate checks use it.
    """

    _guard: _Guard

    def __init__(self, *args: Any, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        conn: HTTPConnection = self  # type: ignore[assignment]
        guard = self._guard
        host, port = conn.host, conn.port or conn.default_port
        addresses = _resolve(host, port, guard.policy)
        connect_timeout = conn.timeout if isinstance(conn.timeout, int | float) else None
        error: Exception = u3.NewConnectionError(conn, "no address to connect to")
        for address in addresses:
            guard.check()
            timeout = min(connect_timeout or guard.policy.connect_timeout, guard.remaining())
            try:
                sock = _connect(address, port, timeout, conn)
            except TimeoutError:
                error = u3.ConnectTimeoutError(conn, f"Connection to {host} timed out")
            except OSError as exc:
                error = u3.NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
            else:
                guard.watch(sock)
                sys.audit("http.client.connect", conn, host, port)
                return sock
        raise error


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(urllib3.PoolManager):
    """A pool manager for one fetch whose connections all answer to its guard."""

    def __init__(self, guard: _Guard) -> None:
        super().__init__(num_pools=8, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED")
        self.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }
        self._guard = guard

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        # Passed here rather than in connection_pool_kw, which must fit PoolKey.
        pool.conn_kw["guard"] = self._guard
        return pool


__all__ = ["FetchError", "FetchPolicy", "FetchResponse", "fetch", "policy_from_config"]

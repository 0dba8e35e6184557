"""A small local web server for tests that fetch things (there is no internet in tests).

`web` (a pytest fixture, loaded through `pytest_plugins` in conftest.py) yields a
started `WebServer` on 127.0.0.1 and stops it afterwards. Build more with
`with WebServer(host="127.0.0.2") as other:`. Routes are exact paths; unknown ones
answer 404. Every response closes its connection, so `connections` counts fetches.

This module must not import app code: it stands in for the outside world.
"""

from __future__ import annotations

import gzip
import ssl
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # includes the query string
    headers: Message  # case-insensitive .get / []


class WebServer:
    """A threaded HTTP(S) server on a loopback address and a free port."""

    def __init__(self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None):
        self.host = host
        self.ssl_context = ssl_context
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()  # set on stop; handlers that wait should use it
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.base = ""

    # lifecycle

    def start(self) -> WebServer:
        self._server = _Server((self.host, 0), self)
        self.port = self._server.server_address[1]
        scheme = "https" if self.ssl_context else "http"
        self.base = f"{scheme}://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # routes

    def url(self, path: str) -> str:
        return self.base + path

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """A static route. A `Content-Length` in `headers` replaces the real one."""
        data = body.encode() if isinstance(body, str) else body
        extra = dict(headers or {})

        def handler(request: BaseHTTPRequestHandler) -> None:
            if delay and self.stopping.wait(delay):
                return
            request.send_response(status)
            if content_type is not None:
                request.send_header("Content-Type", content_type)
            if not any(name.lower() == "content-length" for name in extra):
                request.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                request.send_header(name, value)
            request.send_header("Connection", "close")
            request.end_headers()
            if request.command != "HEAD" and status not in (204, 304):
                request.wfile.write(data)

        self.add_handler(path, handler)

    def add_handler(self, path: str, handler: Handler) -> None:
        """A route with full control: `handler` writes the whole response itself."""
        with self._lock:
            self._routes[path] = handler

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.add(path, status=status, content_type=None, headers={"Location": location})

    # what arrived

    @property
    def connections(self) -> int:
        """Connections accepted, whether or not a request followed."""
        with self._lock:
            return self._connections

    def hits(self, path: str) -> int:
        """Requests for `path` (with any query string unless `path` has one)."""
        with self._lock:
            return sum(1 for r in self.requests if _same_path(r.path, path))

    # internals

    def _accepted(self) -> None:
        with self._lock:
            self._connections += 1

    def _dispatch(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Recorded(request.command, request.path, request.headers))
            handler = self._routes.get(request.path) or self._routes.get(
                request.path.partition("?")[0]
            )
        if handler is None:
            request.send_error(404)
        else:
            handler(request)
        request.close_connection = True


def _same_path(recorded: str, path: str) -> bool:
    return recorded == path or ("?" not in path and recorded.partition("?")[0] == path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: WebServer) -> None:
        self.owner = owner
        super().__init__(address, _RequestHandler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        self.owner._accepted()
        if self.owner.ssl_context is not None:
            # The handshake happens on first read, in the handler's thread.
            sock = self.owner.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client hung up (as a refusing or timing-out fetch does)
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that connects and never sends does not hold a thread forever
    server: _Server

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


# Handler factories for misbehaving sites.


def write_chunked(request: BaseHTTPRequestHandler, chunks: Iterable[bytes]) -> None:
    """Write `chunks` with Transfer-Encoding: chunked (headers already ended)."""
    for chunk in chunks:
        if chunk:
            request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    request.wfile.write(b"0\r\n\r\n")


def stream(size: int, *, chunked: bool = True, chunk_size: int = 64 * 1024) -> Handler:
    """`size` bytes of text with no Content-Length: chunked, or delimited by closing."""

    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/plain")
        if chunked:
            request.send_header("Transfer-Encoding", "chunked")
        request.send_header("Connection", "close")
        request.end_headers()
        pieces = (b"x" * min(chunk_size, size - start) for start in range(0, size, chunk_size))
        if chunked:
            write_chunked(request, pieces)
        else:
            for piece in pieces:
                request.wfile.write(piece)

    return handler


@cache
def _gzipped_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1_000_000)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.compress(bytes(size % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(decoded_size: int = 10_000_000, *, chunked: bool = False) -> Handler:
    """A small gzip body (about 1 KB per MB) that inflates to `decoded_size` zero bytes."""
    body = _gzipped_zeros(decoded_size)

    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Content-Encoding", "gzip")
        if chunked:
            request.send_header("Transfer-Encoding", "chunked")
        else:
            request.send_header("Content-Length", str(len(body)))
        request.send_header("Connection", "close")
        request.end_headers()
        if chunked:
            write_chunked(request, [body])
        else:
            request.wfile.write(body)

    return handler


def gzipped(body: bytes | str, content_type: str = "text/html; charset=utf-8") -> Handler:
    """A normal page sent gzip-encoded."""
    data = gzip.compress(body.encode() if isinstance(body, str) else body)

    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(data)))
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(data)

    return handler


def trickle(
    body: bytes = b"x" * 100, *, interval: float = 0.1, headers: bool = False, length: bool = True
) -> Handler:
    """Send the body (or, with `headers=True`, the header block) a byte at a time.

    With `length=False` there is no Content-Length: the body ends when the server closes.
    """
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    if length:
        head += b"Content-Length: %d\r\n" % len(body)
    head += b"Connection: close\r\n\r\n"

    def handler(request: BaseHTTPRequestHandler) -> None:
        server: _Server = request.server  # type: ignore[assignment]
        stopping = server.owner.stopping
        if headers:
            slow, rest = head, body
        else:
            request.wfile.write(head)
            request.wfile.flush()
            slow, rest = body, b""
        for index in range(len(slow)):
            request.wfile.write(slow[index : index + 1])
            request.wfile.flush()
            if stopping.wait(interval):
                return
        request.wfile.write(rest)

    return handler


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A started local web server on 127.0.0.1, stopped after the test."""
    with WebServer() as server:
        yield server

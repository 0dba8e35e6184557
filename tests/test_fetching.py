"""The guarded outbound client: what a reader would notice, and what an attacker would try.

Everything runs against local servers (tests/webserver.py); public addresses are only
classified, never connected to.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path

import pytest
from webserver import WebServer, gzip_bomb, gzipped, stream, trickle

from app.fetching import FetchError, FetchPolicy, fetch, policy_from_config
from app.fetching import client as fetching_client
from app.fetching.addresses import is_allowed, is_public, parse_ip_literal
from app.fetching.client import ACCEPT, ACCEPT_ENCODING, DEFAULT_USER_AGENT

LOCAL = ("127.0.0.1/32",)
PAGE = "<html><head><title>Caf\u00e9</title></head><body><p>Hello</p></body></html>"


def local(**overrides) -> FetchPolicy:
    """A policy that may reach the test servers on 127.0.0.1, with short timeouts."""
    values = {"allow_private": LOCAL, "connect_timeout": 1.0, "total_timeout": 3.0}
    values.update(overrides)
    return FetchPolicy(**values)


def resolver_for(table: dict[str, str], calls: list[str] | None = None):
    """A resolver from a fixed table; unknown names fail like a DNS miss (no real DNS)."""

    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return [table[host]]

    return resolve


def fetch_error(url: str, policy: FetchPolicy, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, policy, **kwargs)
    return caught.value


def second_loopback_server() -> WebServer:
    """A server on 127.0.0.2, a different address from the canary's 127.0.0.1."""
    server = WebServer(host="127.0.0.2")
    try:
        return server.start()
    except OSError:
        pytest.skip("cannot bind 127.0.0.2 here")


# Fetching pages


def test_fetches_a_page_with_its_type_charset_and_headers(web):
    web.add(
        "/article",
        PAGE,
        content_type="Text/HTML; Charset=UTF-8",
        headers={"ETag": '"v1"', "Last-Modified": "Mon, 05 Jan 2026 10:00:00 GMT"},
    )

    response = fetch(web.url("/article"), local())

    assert response.status == 200
    assert response.body == PAGE.encode()
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.url == web.url("/article")
    assert response.headers["content-type"] == "Text/HTML; Charset=UTF-8"
    assert response.etag == '"v1"'
    assert response.last_modified == "Mon, 05 Jan 2026 10:00:00 GMT"
    sent = web.requests[0].headers
    assert sent["User-Agent"] == DEFAULT_USER_AGENT
    assert sent["Accept"] == ACCEPT
    assert sent["Accept-Encoding"] == ACCEPT_ENCODING


def test_missing_content_type_is_empty(web):
    web.add("/plain", b"data", content_type=None)

    response = fetch(web.url("/plain"), local())

    assert (response.content_type, response.charset) == ("", None)


def test_gzip_body_is_decompressed(web):
    web.add_handler("/zipped", gzipped(PAGE))

    assert fetch(web.url("/zipped"), local()).body == PAGE.encode()


def test_caller_headers_are_merged(web):
    web.add("/feed", "<rss/>", content_type="application/rss+xml")

    fetch(
        web.url("/feed"),
        local(user_agent="Dogear-test"),
        headers={"Accept": "application/rss+xml", "X-Extra": "1", "Host": "evil.test"},
    )

    sent = web.requests[0].headers
    assert sent["Accept"] == "application/rss+xml"
    assert sent["X-Extra"] == "1"
    assert sent["User-Agent"] == "Dogear-test"
    assert sent["Host"] == f"127.0.0.1:{web.port}"  # callers cannot retarget the request


# Redirects


def test_follows_relative_and_absolute_redirects(web):
    web.redirect("/old", "/dir/a")  # relative to the host
    web.redirect("/dir/a", "b")  # relative to the path
    web.redirect("/dir/b", web.url("/final"), status=301)  # absolute
    web.add("/final", PAGE)

    response = fetch(web.url("/old"), local())

    assert response.url == web.url("/final")
    assert response.body == PAGE.encode()
    assert [r.path for r in web.requests] == ["/old", "/dir/a", "/dir/b", "/final"]
    assert all(r.headers["User-Agent"] == DEFAULT_USER_AGENT for r in web.requests)


def chain(web: WebServer, length: int) -> str:
    for n in range(1, length + 1):
        web.redirect(f"/r{n}", f"/r{n + 1}" if n < length else "/end")
    web.add("/end", "done")
    return web.url("/r1")


def test_five_redirects_are_followed(web):
    assert fetch(chain(web, 5), local()).body == b"done"


def test_six_redirects_are_too_many(web):
    error = fetch_error(chain(web, 6), local())

    assert error.code == "too_many_redirects"
    assert str(error) == "too many redirects"
    assert web.hits("/end") == 0


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/", "http://[::1/", "http://h:99999/"],
)
def test_redirect_to_another_scheme_is_refused(web, location):
    web.redirect("/go", location)

    error = fetch_error(web.url("/go"), local())

    assert error.code == "invalid_url"
    assert str(error) in {
        "only http and https links can be fetched",
        "the link is not a valid web address",
    }


def test_credentials_are_not_carried_to_another_origin(web):
    with WebServer() as other:
        other.add("/there", "ok")
        web.redirect("/go", other.url("/there"))

        fetch(web.url("/go"), local(), headers={"Authorization": "Bearer x", "X-Keep": "1"})

        assert web.requests[0].headers["Authorization"] == "Bearer x"
        assert other.requests[0].headers["Authorization"] is None
        assert other.requests[0].headers["X-Keep"] == "1"


# Statuses


@pytest.mark.parametrize("status", [403, 404, 500])
def test_error_statuses_raise_with_the_status(web, status):
    web.add("/page", "secret body text", status=status)

    error = fetch_error(web.url("/page"), local())

    assert (error.code, error.status) == ("http_status", status)
    assert str(error) == f"the site answered {status}"
    assert "secret" not in repr(error)


def test_unknown_path_is_404(web):
    assert fetch_error(web.url("/nowhere"), local()).status == 404


def test_not_modified_is_returned_for_conditional_requests(web):
    web.add("/cached", status=304, headers={"ETag": '"v2"'})

    response = fetch(web.url("/cached"), local(), headers={"If-None-Match": '"v2"'})

    assert response.status == 304
    assert response.body == b""
    assert response.etag == '"v2"'
    assert web.requests[0].headers["If-None-Match"] == '"v2"'


# Time


def test_slow_answer_times_out_at_the_total_deadline(web):
    web.add("/slow", "late", delay=5)

    started = time.monotonic()
    error = fetch_error(web.url("/slow"), local(total_timeout=0.5))

    assert error.code == "timeout"
    assert str(error) == "the site took too long to answer"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("headers", "length"),
    [(False, True), (False, False), (True, True)],
    ids=["body", "body-until-close", "headers"],
)
def test_trickling_server_times_out_at_the_total_deadline(web, headers, length):
    # A byte every 0.1 s never trips a socket timeout; only the total deadline stops it,
    # and a body cut short there is not mistaken for a complete one.
    web.add_handler("/drip", trickle(b"x" * 200, interval=0.1, headers=headers, length=length))

    started = time.monotonic()
    error = fetch_error(web.url("/drip"), local(total_timeout=0.8))

    assert error.code == "timeout"
    assert 0.7 < time.monotonic() - started < 2


def test_silence_after_the_headers_is_not_an_empty_page(web):
    def stall(request):
        request.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        web.stopping.wait(10)

    web.add_handler("/stall", stall)

    assert fetch_error(web.url("/stall"), local(total_timeout=0.5)).code == "timeout"


def test_deadline_covers_the_whole_redirect_chain(web):
    for n in range(1, 4):
        web.add(f"/hop{n}", status=302, headers={"Location": f"/hop{n + 1}"}, delay=0.3)
    web.add("/hop4", "end")

    error = fetch_error(web.url("/hop1"), local(total_timeout=0.7))

    assert error.code == "timeout"


def test_closed_port_cannot_be_reached():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed

    error = fetch_error(f"http://127.0.0.1:{port}/", local())

    assert error.code == "connection"
    assert str(error) == "the site could not be reached"


# Size


def test_declared_length_over_the_cap_is_refused_before_reading(web):
    web.add("/big", b"tiny", headers={"Content-Length": "50000000"})

    error = fetch_error(web.url("/big"), local(max_bytes=1_000_000))

    assert error.code == "too_large"
    assert str(error) == "the page is too large (over 1 MB)"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "until-close"])
def test_undeclared_length_over_the_cap_is_refused(web, chunked):
    web.add_handler("/stream", stream(2_000_000, chunked=chunked))

    error = fetch_error(web.url("/stream"), local(max_bytes=500_000))

    assert error.code == "too_large"


def test_body_exactly_at_the_cap_is_fine(web):
    web.add_handler("/stream", stream(100_000))

    assert len(fetch(web.url("/stream"), local(max_bytes=100_000)).body) == 100_000


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_gzip_bomb_stops_at_the_cap_without_inflating(web, chunked):
    web.add_handler("/bomb", gzip_bomb(50_000_000, chunked=chunked))  # ~50 KB on the wire

    tracemalloc.start()
    started = time.monotonic()
    try:
        error = fetch_error(web.url("/bomb"), local(max_bytes=1_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.code == "too_large"
    assert time.monotonic() - started < 3
    assert peak < 8_000_000  # never holds the 50 MB


# SSRF: nothing reaches a private address unless allowed


@pytest.fixture
def canary():
    """A server on 127.0.0.1 that must never be reached; counts connections, not requests."""
    with WebServer() as server:
        server.add("/", "canary")
        yield server


def test_canary_counts_a_connection_when_allowed(canary):
    # The control for the tests below: the canary does notice a fetch.
    assert fetch(canary.url("/"), local()).body == b"canary"
    assert canary.connections == 1


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "127.0.0.1.",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "0.0.0.0",
        "[::]",
    ],
)
def test_private_hosts_are_refused_without_connecting(canary, host):
    error = fetch_error(f"http://{host}:{canary.port}/", FetchPolicy())

    assert error.code == "blocked_address"
    assert str(error) == "the address is on a private network, which Dogear does not fetch from"
    assert canary.connections == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "0x7f000001", "127.1", "[::ffff:127.0.0.1]", "canary.test"]
)
def test_the_connection_check_alone_refuses_private_addresses(canary, monkeypatch, host):
    # The URL is also checked up front; with that check off, the socket-level one must
    # still refuse (it is the one that sees DNS answers and every redirect hop).
    monkeypatch.setattr(fetching_client, "_checked_url", lambda url, policy: url)
    calls: list[str] = []
    policy = FetchPolicy(resolver=resolver_for({"canary.test": "127.0.0.1"}, calls))
    if host == "localhost":
        policy = FetchPolicy()  # the system resolver, from /etc/hosts

    error = fetch_error(f"http://{host}:{canary.port}/", policy)

    assert error.code == "blocked_address"
    assert canary.connections == 0
    assert calls == (["canary.test"] if host == "canary.test" else [])


def test_name_resolving_to_a_private_address_is_refused(canary):
    policy = FetchPolicy(resolver=resolver_for({"canary.test": "127.0.0.1"}))

    error = fetch_error(f"http://canary.test:{canary.port}/", policy)

    assert error.code == "blocked_address"
    assert canary.connections == 0


def test_name_with_any_private_answer_is_refused(canary):
    # 127.0.0.2 stands in for a public answer, so a broken client stays on loopback.
    def mixed(host, port):
        return ["127.0.0.2", "127.0.0.1"]

    policy = FetchPolicy(allow_private=("127.0.0.2/32",), resolver=mixed)
    error = fetch_error(f"http://mixed.test:{canary.port}/", policy)

    assert error.code == "blocked_address"
    assert canary.connections == 0


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"])
def test_numeric_hosts_never_reach_the_resolver(canary, host):
    # A resolver answering with an allowed address cannot launder a numeric host.
    calls: list[str] = []
    table = {host: "127.0.0.2"}
    policy = FetchPolicy(allow_private=("127.0.0.2/32",), resolver=resolver_for(table, calls))

    error = fetch_error(f"http://{host}:{canary.port}/", policy)

    assert error.code == "blocked_address"
    assert calls == []
    assert canary.connections == 0


def test_connection_dials_the_resolved_address_once(canary):
    # allowed.test exists only in the resolver: the request reaching the server proves the
    # socket went to the checked IP, with no second lookup.
    calls: list[str] = []
    policy = local(resolver=resolver_for({"allowed.test": "127.0.0.1"}, calls))

    response = fetch(f"http://allowed.test:{canary.port}/", policy)

    assert response.body == b"canary"
    assert calls == ["allowed.test"]
    assert canary.requests[0].headers["Host"] == f"allowed.test:{canary.port}"


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/",
        "http://canary.test:{port}/",
        "http://0x7f000001:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://localhost:{port}/",
    ],
)
def test_redirect_from_an_allowed_site_to_a_private_one_is_refused(canary, target):
    allowed = second_loopback_server()
    try:
        allowed.redirect("/go", target.format(port=canary.port))
        table = {"allowed.test": "127.0.0.2", "canary.test": "127.0.0.1", "localhost": "127.0.0.1"}
        policy = FetchPolicy(allow_private=("127.0.0.2/32",), resolver=resolver_for(table))

        error = fetch_error(f"http://allowed.test:{allowed.port}/go", policy)

        assert error.code == "blocked_address"
        assert allowed.hits("/go") == 1  # the first hop did happen
        assert canary.connections == 0
    finally:
        allowed.stop()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "//127.0.0.1:{port}/",
        "http://user:pass@127.0.0.1:{port}/",
        "http://256.0.0.1:{port}/",
        "http://ex ample.test/",
        "http:///nohost",
    ],
)
def test_unfetchable_urls_are_refused(canary, url):
    error = fetch_error(url.format(port=canary.port), local())

    assert error.code == "invalid_url"
    assert canary.connections == 0


def test_unknown_host_is_a_dns_error():
    error = fetch_error("http://nowhere.test/", FetchPolicy(resolver=resolver_for({})))

    assert error.code == "dns"
    assert str(error) == "the host name could not be found"


# TLS: the IP is dialled, but the certificate is checked against the name


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    path = tmp_path_factory.mktemp("tls")
    (path / "leaf.ext").write_text(
        "subjectAltName=DNS:secure.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Dogear Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"],
        ["openssl", "req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr",
         "-subj", "/CN=secure.test"],
        ["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext"],
    ]  # fmt: skip
    for command in commands:
        subprocess.run(command, cwd=path, check=True, capture_output=True)
    return path


@pytest.fixture
def tls_server(certificates, monkeypatch):
    """An HTTPS server on 127.0.0.2 for secure.test; its CA is trusted via SSL_CERT_FILE."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "leaf.pem", certificates / "leaf.key")
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    server = WebServer(host="127.0.0.2", ssl_context=context)
    try:
        server.start()
    except OSError:
        pytest.skip("cannot bind 127.0.0.2 here")
    server.add("/", "secret page")
    server.sni = names
    yield server
    server.stop()


def tls_policy() -> FetchPolicy:
    table = {"secure.test": "127.0.0.2", "wrong.test": "127.0.0.2"}
    return FetchPolicy(
        allow_private=("127.0.0.2/32",), total_timeout=3, resolver=resolver_for(table)
    )


def test_https_verifies_the_certificate_for_the_host_name(tls_server):
    response = fetch(f"https://secure.test:{tls_server.port}/", tls_policy())

    assert response.body == b"secret page"
    assert tls_server.sni == ["secure.test"]


def test_https_with_a_certificate_for_another_name_is_refused(tls_server):
    error = fetch_error(f"https://wrong.test:{tls_server.port}/", tls_policy())

    assert error.code == "connection"
    assert tls_server.hits("/") == 0


def test_https_with_an_untrusted_certificate_is_refused(tls_server, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE")

    error = fetch_error(f"https://secure.test:{tls_server.port}/", tls_policy())

    assert error.code == "connection"
    assert tls_server.hits("/") == 0


# The address policy


BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "100.127.255.255",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",  # documentation
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",
    "192.0.0.8",
    "::1",
    "::",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",
    "64:ff9b::7f00:1",  # NAT64
    "64:ff9b::808:808",
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 around 192.168.1.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",  # documentation
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "ff0e::1",
    "100::1",
]
PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above
    "172.15.255.255",
    "172.32.0.0",
    "2606:2800:220:1::1",
    "2a00:1450:4001:80b::200e",
    "::ffff:93.184.216.34",  # mapped public
    "2002:5db8:d822::1",  # 6to4 around a public address
]


@pytest.mark.parametrize("address", BLOCKED)
def test_blocked_addresses(address):
    assert not is_public(ip_address(address))
    assert not is_allowed(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address):
    assert is_public(ip_address(address))


def test_allow_private_opens_only_the_listed_networks():
    allow = (IPv4Network("10.0.0.0/8"), IPv6Network("fd00::/8"))

    assert is_allowed(ip_address("10.9.8.7"), allow)
    assert is_allowed(ip_address("fd00::5"), allow)
    assert is_allowed(ip_address("::ffff:10.0.0.1"), allow)  # the same host, spelled as v6
    assert not is_allowed(ip_address("192.168.1.1"), allow)
    assert not is_allowed(ip_address("127.0.0.1"), allow)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.1", "10.1.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("example.com", None),
        ("127.0.0.1.nip.io", None),
        ("deadbeef.cafe", None),
    ],
)
def test_ip_literals_in_every_spelling(host, expected):
    assert parse_ip_literal(host) == (ip_address(expected) if expected else None)


@pytest.mark.parametrize(
    "host", ["256.0.0.1", "1.2.3.4.5", "0x1ffffffff", "08.0.0.1", "4294967296"]
)
def test_numeric_hosts_that_are_no_address_are_invalid(host):
    with pytest.raises(ValueError, match="not a valid IPv4 address"):
        parse_ip_literal(host)


# Configuration


def test_policy_defaults_when_nothing_is_configured():
    assert policy_from_config({}) == FetchPolicy()
    assert policy_from_config({"FETCH_ALLOW_PRIVATE": ""}).allow_private == ()
    assert policy_from_config({"FETCH_ALLOW_PRIVATE": []}).allow_private == ()


def test_policy_from_config_reads_every_setting():
    policy = policy_from_config(
        {
            "FETCH_ALLOW_PRIVATE": ["10.0.0.0/8", "fd00::/8"],
            "FETCH_CONNECT_TIMEOUT": "2",
            "FETCH_TIMEOUT": 7,
            "FETCH_MAX_BYTES": 1000,
            "FETCH_MAX_REDIRECTS": 2,
            "FETCH_USER_AGENT": "Custom/1",
        }
    )

    assert policy.allow_private == (IPv4Network("10.0.0.0/8"), IPv6Network("fd00::/8"))
    assert (policy.connect_timeout, policy.total_timeout) == (2.0, 7.0)
    assert (policy.max_bytes, policy.max_redirects) == (1000, 2)
    assert policy.user_agent == "Custom/1"


def test_allow_private_as_a_comma_separated_string():
    policy = policy_from_config({"FETCH_ALLOW_PRIVATE": " 192.168.0.0/16, 127.0.0.1 ,"})

    assert policy.allow_private == (IPv4Network("192.168.0.0/16"), IPv4Network("127.0.0.1/32"))


@pytest.mark.parametrize("value", ["10.0.0.0/33", "nonsense", ["10.0.0.0/8", "fd00::/200"], 10])
def test_invalid_allow_private_is_a_clear_error(value):
    with pytest.raises(ValueError, match="FETCH_ALLOW_PRIVATE: .*(not an IP network|expected)"):
        policy_from_config({"FETCH_ALLOW_PRIVATE": value})


def test_invalid_numbers_are_a_clear_error():
    with pytest.raises(ValueError, match="FETCH_TIMEOUT"):
        policy_from_config({"FETCH_TIMEOUT": "soon"})

"""`make bench`: build a synthetic catalog, serve Dogear with gunicorn, measure it.

    .venv/bin/python bench/run.py                 # 100,000 posts (the issue's targets)
    .venv/bin/python bench/run.py --quick         # small and short: CI keeps it working
    .venv/bin/python bench/run.py --posts 20000 --duration 3 --concurrency 4
    .venv/bin/python bench/run.py --database postgresql   # the same, on PostgreSQL

The same gunicorn settings (bench/gunicorn_conf.py: the project's, minus the access
log) first serve a do-nothing WSGI app, the "limit", then the real app in production
mode. A separate process pool (bench/load.py) drives each endpoint as a signed-in
reader and the table shows throughput, latency percentiles, page and fragment sizes,
each endpoint's share of the limit and the workers' memory. bench/results.json gets
the same figures. With `--database postgresql` the catalog is built in PostgreSQL
(bench/catalog_postgres.py) and gunicorn is pointed at a copy of it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import catalog  # noqa: E402 - bench/ is not a package
import catalog_postgres  # noqa: E402
import load  # noqa: E402
import ranking  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
RESULTS = ROOT / "bench" / "results.json"

# Issue 10's targets.
TARGET_FRACTION = 0.25  # of the trivial app's throughput, for read endpoints
TARGET_WRITE_FRACTION = 0.20  # the progress update
TARGET_P99_MS = 20.0
TARGET_PAGE_BYTES = 30 * 1024
TARGET_FRAGMENT_BYTES = 12 * 1024
TARGET_MEMORY_MB = 120.0


@dataclass
class Endpoint:
    name: str
    path: str
    method: str = "GET"
    fragment: bool = False  # send HX-Request for the measured requests
    bodies: list[str] = field(default_factory=list)  # POST bodies, cycled
    read: bool = True  # read endpoints are held to the throughput target
    ranked: ranking.RankedQuery | None = None  # a search whose ranking is checked


@dataclass
class Row:
    endpoint: str
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms: float  # server CPU per request: the workers and, on PostgreSQL, its backends
    bytes: int
    fragment_bytes: int | None
    fraction_of_limit: float | None
    errors: int
    read: bool
    ranking_overlap: int | None = None  # of the page's 20, how many are the true top 20
    ranking_possible: int | None = None  # 20, or the number of matches if fewer


def search_endpoint(name: str, query: ranking.RankedQuery, **options) -> Endpoint:
    return Endpoint(name, "/search?" + urlencode({"q": query.q}), ranked=query, **options)


def _more_queries(info) -> list[list[str]]:
    """Five more common-word searches: four words alone, and two together."""
    words = info.more_common_words
    if len(words) < 5:
        return [[word] for word in words]
    return [[word] for word in words[:4]] + [[info.common_word, words[4]]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with the bench settings, as a child process group."""

    def __init__(self, app: str, env: dict[str, str], workers: int, chdir: Path) -> None:
        self.port = free_port()
        self.log = open(ROOT / "bench" / "data" / "gunicorn.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--config",
                str(ROOT / "bench" / "gunicorn_conf.py"),
                "--bind",
                f"{HOST}:{self.port}",
                "--workers",
                str(workers),
                "--chdir",
                str(chdir),
                app,
            ],
            env=env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("gunicorn exited early; see bench/data/gunicorn.log")
            try:
                status, _, _ = load.fetch(HOST, self.port, request("GET", path, self.port))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer in time; see bench/data/gunicorn.log")

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def request(
    method: str,
    path: str,
    port: int,
    *,
    cookie: str = "",
    headers: dict[str, str] | None = None,
    body: str = "",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if method == "POST":
        lines.append("Content-Type: application/x-www-form-urlencoded")
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sign_in(port: int, email: str, password: str) -> tuple[str, str]:
    """Sign in like a browser; returns (Cookie header value, CSRF token for htmx)."""
    status, head, body = load.fetch(HOST, port, request("GET", "/login", port))
    cookie = _cookies(head)
    token = re.search(rb'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', body)
    if status != 200 or not token:
        raise SystemExit("could not read the login form")
    form = urlencode({"email": email, "password": password, "csrf_token": token.group(1).decode()})
    status, head, _ = load.fetch(
        HOST, port, request("POST", "/login", port, cookie=cookie, body=form)
    )
    if status != 303:
        raise SystemExit(f"sign-in failed with HTTP {status}")
    cookie = _cookies(head) or cookie
    # The first page after signing in stores the CSRF secret in the session cookie.
    status, head, body = load.fetch(HOST, port, request("GET", "/", port, cookie=cookie))
    cookie = _cookies(head) or cookie
    token = re.search(rb'"X-CSRFToken": "([^"]+)"', body)
    if status != 200 or not token:
        raise SystemExit("signed in, but found no CSRF token for htmx requests")
    return cookie, token.group(1).decode()


def _cookies(head: bytes) -> str:
    found = re.findall(rb"(?im)^set-cookie: ([^=;\s]+=[^;\r\n]*)", head)
    return "; ".join(c.decode() for c in found)


def measure_limit(args, env) -> tuple[load.LoadResult, float, float]:
    """The trivial app's throughput, the CPU cores its workers used meanwhile and
    their CPU milliseconds per request."""
    server = Server("trivial:app", env, args.workers, ROOT / "bench")
    try:
        server.wait_ready("/")
        req = request("GET", "/", server.port)
        pids = server.worker_pids()
        before, started = load.cpu_seconds(pids), time.perf_counter()
        result = load.run(
            HOST,
            server.port,
            [req],
            duration=args.duration,
            warmup=args.warmup,
            concurrency=args.concurrency,
        )
        spent = load.cpu_seconds(pids) - before
        used = spent / (time.perf_counter() - started)
        return result, used, 1000 * spent / max(result.sent, 1)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=None, help="catalog size (100,000)")
    parser.add_argument("--readers", type=int, default=None, help="accounts (1,000)")
    parser.add_argument("--quick", action="store_true", help="small catalog, short runs")
    parser.add_argument("--duration", type=float, default=None, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=None, help="uncounted seconds first")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the catalog")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where the catalog lives (PostgreSQL: DOGEAR_BENCH_POSTGRES_URL's server)",
    )
    args = parser.parse_args(argv)
    args.posts = args.posts or (2_000 if args.quick else 100_000)
    args.readers = args.readers or (50 if args.quick else 1_000)
    args.duration = args.duration or (1.0 if args.quick else 6.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)

    if args.database == "postgresql":
        info = catalog_postgres.build(args.posts, args.readers, force=args.rebuild)
        database_url = catalog_postgres.working_copy(info)
    else:
        info = catalog.build(args.posts, args.readers, force=args.rebuild)
        database_url = f"sqlite:///{catalog.working_copy(info)}"
    env = dict(os.environ)
    env.update(
        DOGEAR_ENV="production",
        DOGEAR_SECRET_KEY=secrets.token_urlsafe(36),  # 48 characters
        DOGEAR_SESSION_COOKIE_SECURE="false",
        DOGEAR_RATELIMIT_ENABLED="false",
        DOGEAR_DATABASE_URL=database_url,
        DOGEAR_INSTANCE_PATH=str(catalog.DATA),
        DOGEAR_DEMO="false",
        PYTHONDONTWRITEBYTECODE="1",
    )
    print(
        f"catalog: {info.posts:,} posts, {info.readers:,} readers in {args.database};"
        f" common word "
        f"“{info.common_word}” in {info.common_df:.0%} of posts, rare word "
        f"“{info.rare_word}” in {info.rare_df}; {os.cpu_count()} CPUs; "
        f"{args.workers} workers, {args.concurrency} connections, {args.duration:g} s each"
    )
    limit, server_cpu, limit_cpu_ms = measure_limit(args, env)
    print(
        f"limit (trivial WSGI app): {limit.rps:,.0f} req/s, p99 {limit.percentile(99):.2f} ms;"
        f" CPU cores used: workers {server_cpu:.2f}, load driver {limit.driver_cpu:.2f}"
        f" (of {os.cpu_count()})"
    )

    endpoints = [
        Endpoint("browse first page", "/"),
        Endpoint("browse page 500", "/?page=500"),
        Endpoint("browse two filters", "/?" + urlencode({"topic": "python", "length": "medium"})),
        search_endpoint("search rare word", ranking.RankedQuery(words=[info.rare_word])),
        search_endpoint("search common word", ranking.RankedQuery(words=[info.common_word])),
        search_endpoint(
            "search common word, htmx",
            ranking.RankedQuery(words=[info.common_word]),
            fragment=True,
        ),
        search_endpoint(
            "search phrase + filter",
            ranking.RankedQuery(phrase=info.phrase, topic=info.phrase_topic),
        ),
        *[
            search_endpoint(f"search “{' '.join(words)}”", ranking.RankedQuery(words=words))
            for words in _more_queries(info)
        ],
        Endpoint("reader's list", "/list"),
        # A catalog post in the middle of the catalog: its details and related posts.
        Endpoint("post page", f"/posts/{info.posts // 2}"),
        Endpoint(
            "progress update",
            "/list/{entry}/progress",
            method="POST",
            fragment=True,
            bodies=[f"progress={p}" for p in range(5, 95, 7)],
            read=False,
        ),
    ]

    server = Server("wsgi:app", env, args.workers, ROOT)

    def server_pids() -> set[int]:
        """The workers, and the database server's processes serving them."""
        pids = set(server.worker_pids())
        if args.database == "postgresql":
            pids.update(catalog_postgres.backend_pids(database_url))
        return pids

    rows: list[Row] = []
    memory = memory_full = float("nan")
    try:
        server.wait_ready("/healthz")
        cookie, token = sign_in(server.port, info.reader_email, info.password)
        hx = {"HX-Request": "true"}
        for ep in endpoints:
            if ep.method == "POST":
                requests_ = [
                    request(
                        "POST",
                        ep.path.format(entry=entry),
                        server.port,
                        cookie=cookie,
                        headers={**hx, "X-CSRFToken": token},
                        body=body,
                    )
                    for i, entry in enumerate(info.entry_ids)
                    for body in [ep.bodies[i % len(ep.bodies)]]
                ]
                status, _, page = load.fetch(HOST, server.port, requests_[0])
                full_bytes, fragment_bytes = len(page), None
            else:
                full = request("GET", ep.path, server.port, cookie=cookie)
                fragment = request("GET", ep.path, server.port, cookie=cookie, headers=hx)
                status, _, page = load.fetch(HOST, server.port, full)
                _, _, part = load.fetch(HOST, server.port, fragment)
                full_bytes, fragment_bytes = len(page), len(part)
                requests_ = [fragment if ep.fragment else full]
                if ep.fragment:
                    full_bytes, fragment_bytes = len(part), None
            if status != 200:
                print(f"warning: {ep.name} answered HTTP {status}")
            overlap = possible = None
            if ep.ranked is not None:
                overlap, possible = ranking_overlap(
                    args.database, database_url, info, ep.ranked, page
                )
            pids = server_pids()
            before = load.cpu_seconds(list(pids))
            result = load.run(
                HOST,
                server.port,
                requests_,
                duration=args.duration,
                warmup=args.warmup,
                concurrency=args.concurrency,
            )
            # Processes that started meanwhile (a new connection) used nothing before.
            spent = load.cpu_seconds(list(pids | server_pids())) - before
            rows.append(
                Row(
                    endpoint=ep.name,
                    rps=round(result.rps, 1),
                    p50_ms=round(result.percentile(50), 2),
                    p95_ms=round(result.percentile(95), 2),
                    p99_ms=round(result.percentile(99), 2),
                    cpu_ms=round(1000 * spent / max(result.sent, 1), 2),
                    bytes=full_bytes,
                    fragment_bytes=fragment_bytes,
                    fraction_of_limit=round(result.rps / limit.rps, 3) if limit.rps else None,
                    errors=result.errors,
                    read=ep.read,
                    ranking_overlap=overlap,
                    ranking_possible=possible,
                )
            )
            if result.errors:
                print(f"warning: {ep.name}: {result.errors} failed requests {result.statuses}")
        memory = max((load.rss_mb(pid) for pid in server.worker_pids()), default=float("nan"))
        if not args.quick:
            fill_caches(server.port, cookie, info)
            memory_full = max(
                (load.rss_mb(pid) for pid in server.worker_pids()), default=float("nan")
            )
    finally:
        server.stop()

    print_table(rows, limit, limit_cpu_ms, memory, memory_full)
    write_results(rows, limit, limit_cpu_ms, memory, memory_full, info, args)
    return 0


def fill_caches(port: int, cookie: str, info) -> None:
    """Fill what each worker keeps between requests, for the memory target ("with the
    caches full"): the endpoints above touch only a few posts. Requests land on either
    worker, so each kind is sent about twice what one worker keeps: 6,000 result cards
    (300 browse pages; a worker keeps 2,000), 4,096 post pages (related-post words:
    2,048), 480 filter sets (the sidebar: 128) and 4,096 session cookies (1,024 each,
    with their CSRF tokens), and 450 searches."""
    words = list(dict.fromkeys([info.common_word, *info.more_common_words, *catalog.TOPICS]))[:20]
    pairs = list(itertools.combinations(words, 2))
    searches = [q for a, b in pairs for q in (f"{a} {b}", f'"{a} {b}"')][:560]
    searches += [f"{w} topic:{t}" for w in words[:10] for t in sorted(catalog.TOPICS)[:7]]
    sorts = ["newest", "oldest", "shortest", "longest", "", "popular"]
    filters = [
        urlencode({k: v for k, v in (("topic", t), ("length", n), ("sort", o)) if v})
        for t in sorted(catalog.TOPICS)[:20]
        for n in ("short", "medium", "long", "")
        for o in sorts
    ]
    step = max(info.posts // 4096, 1)
    paths = [
        *(f"/?page={n}" for n in range(1, 301)),
        *(f"/posts/{post_id}" for post_id in range(1, info.posts + 1, step)),
        *("/search?" + urlencode({"q": q}) for q in searches),
        *(f"/?{query}" for query in filters),
    ]

    def visit(path: str) -> None:
        load.fetch(HOST, port, request("GET", path, port, cookie=cookie), timeout=60)

    def new_visitor(_number: int) -> None:
        """A visitor's first page makes their session; the second sends its cookie."""
        _, head, _ = load.fetch(HOST, port, request("GET", "/login", port), timeout=60)
        load.fetch(HOST, port, request("GET", "/login", port, cookie=_cookies(head)), timeout=60)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(visit, paths))
        list(pool.map(new_visitor, range(4096)))
    print(
        f"filled the workers' caches: {len(paths) + 8192:,} requests in"
        f" {time.perf_counter() - started:.0f} s"
    )


def ranking_overlap(database: str, url: str, info, query, page: bytes) -> tuple[int, int]:
    """Of the page's 20 posts, how many are the true top 20 (bench/ranking.py), and
    how many could be (fewer when fewer posts match)."""
    if database == "postgresql":
        truth = ranking.postgres_truth(url, info.reader_email, query)
    else:
        truth = ranking.sqlite_truth(url.removeprefix("sqlite:///"), info.reader_email, query)
    found = ranking.page_ids(page.decode("utf-8", "replace"))
    return ranking.overlap(found, truth), ranking.possible(truth)


def _mark(ok: bool) -> str:
    return " " if ok else "✗"


def print_table(
    rows: list[Row], limit: load.LoadResult, limit_cpu_ms: float, memory: float, full: float
) -> None:
    header = (
        f"{'endpoint':<26} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>9}"
        f" {'CPU ms':>7} {'page B':>9} {'htmx B':>8} {'of limit':>9} {'top 20':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    print(
        f"{'limit (trivial app)':<26} {limit.rps:>8,.0f} {limit.percentile(50):>8.2f}"
        f" {limit.percentile(95):>8.2f} {limit.percentile(99):>8.2f}  {limit_cpu_ms:>7.2f}"
        f" {'':>9} {'':>8} {'1.00':>9}"
    )
    for row in rows:
        fraction = row.fraction_of_limit or 0.0
        page_ok = row.bytes < TARGET_PAGE_BYTES or not row.read
        fragment_ok = row.fragment_bytes is None or row.fragment_bytes <= TARGET_FRAGMENT_BYTES
        target = TARGET_FRACTION if row.read else TARGET_WRITE_FRACTION
        overlap = ""
        if row.ranking_overlap is not None:
            overlap = f"{row.ranking_overlap}/{row.ranking_possible}"
        overlap_ok = row.ranking_overlap == row.ranking_possible
        print(
            f"{row.endpoint:<26} {row.rps:>8,.0f} {row.p50_ms:>8.2f} {row.p95_ms:>8.2f}"
            f" {row.p99_ms:>8.2f}{_mark(row.p99_ms < TARGET_P99_MS)}"
            f" {row.cpu_ms:>7.2f}"
            f" {row.bytes:>8,}{_mark(page_ok)}"
            f" {row.fragment_bytes if row.fragment_bytes is not None else '':>7}"
            f"{_mark(fragment_ok)}"
            f" {fraction:>8.1%}{_mark(fraction >= target)}"
            f" {overlap:>6}{_mark(overlap_ok)}"
        )
    print(f"\nworker memory (RSS, the larger worker): {memory:.1f} MB after the endpoints")
    if not math.isnan(full):
        print(f"  with its caches full: {full:.1f} MB{_mark(full < TARGET_MEMORY_MB)}")
    print(
        f"✗ = misses a target (≥ {TARGET_FRACTION:.0%} of the limit, the progress update"
        f" ≥ {TARGET_WRITE_FRACTION:.0%}; p99 < {TARGET_P99_MS:g} ms;"
        f" page < {TARGET_PAGE_BYTES // 1024} KB, fragment ≤ {TARGET_FRAGMENT_BYTES // 1024} KB;"
        f" memory < {TARGET_MEMORY_MB:g} MB; top 20: the page holds the true top 20,"
        " or every match when fewer)"
    )
    print(
        "CPU ms = server CPU per request: the gunicorn workers and, on PostgreSQL, the"
        " database processes serving them (steadier than req/s on a busy machine)"
    )


def write_results(rows, limit, limit_cpu_ms, memory, memory_full, info, args) -> None:
    data = [
        {
            "endpoint": "limit",
            "database": args.database,
            "rps": round(limit.rps, 1),
            "p50_ms": round(limit.percentile(50), 2),
            "p95_ms": round(limit.percentile(95), 2),
            "p99_ms": round(limit.percentile(99), 2),
            "cpu_ms": round(limit_cpu_ms, 2),
            "bytes": 3,
            "fraction_of_limit": 1.0,
            "driver_cpu_cores": round(limit.driver_cpu, 2),
        }
    ]
    for row in rows:
        data.append(
            {
                "endpoint": row.endpoint,
                "database": args.database,
                "rps": row.rps,
                "p50_ms": row.p50_ms,
                "p95_ms": row.p95_ms,
                "p99_ms": row.p99_ms,
                "cpu_ms": row.cpu_ms,
                "bytes": row.bytes,
                "fragment_bytes": row.fragment_bytes,
                "fraction_of_limit": row.fraction_of_limit,
                "errors": row.errors,
                "worker_rss_mb": round(memory, 1),
                "worker_rss_full_mb": None if math.isnan(memory_full) else round(memory_full, 1),
            }
        )
        if row.ranking_overlap is not None:
            data[-1]["ranking_overlap"] = row.ranking_overlap
            data[-1]["ranking_possible"] = row.ranking_possible
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(
        f"wrote {RESULTS.relative_to(ROOT)} ({info.posts:,} posts in {args.database},"
        f" {args.duration:g} s each)"
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""Load and concurrency: long writes never block the web, rules that read then write
hold under concurrency, and several hosts share one database (issue 11's fault and
attack suite).

Protections proven here, with the issue 11 case each covers ("case:"):

- Imports in short transactions: case "a 10,000-entry import holds SQLite's write lock
  for longer than the busy timeout: a reader's progress update during it answered 500
  after 5 s, and a second import started at the same time died with `database is
  locked`" (`test_two_big_imports_and_a_readers_writes_all_go_through`, in threads;
  `test_two_import_processes_at_once_both_finish_beside_a_readers_writes`, two real
  `dogear posts import` processes). Both marked `faults_process` (`make test-faults`).
- Races: two registrations with one address, or two hosts taking the set-up link at
  once, make one account (SQLite's lock; PostgreSQL's unique constraint on its pass).
- Several hosts over one database and one Redis: a periodic task runs once per period
  however many schedulers queue it, the heartbeat is written once a minute; and for
  real (`TestTwoHosts`, `faults_process`): two gunicorn instances with two workers
  each and a job worker beside each, over PostgreSQL and Redis, driven over loopback
  HTTP: one set-up link, sessions and sign-out across hosts, the throttle counted
  across hosts, counts and jobs shared. Skipped when PostgreSQL or Redis doesn't
  answer, unless DOGEAR_TEST_POSTGRES=required.

Every wait and loop here is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade
from huey import crontab
from sqlalchemy import func, select

from app import jobs
from app.auth import services
from app.catalog.importer import import_files
from app.extensions import db
from app.jobs import claim_period, heartbeat, huey, periodic
from app.lists import services as lists
from app.models import PeriodicRun, Post, Source, User, utcnow
from tests import pg
from tests.conftest import PASSWORD, make_app, process_env, run_concurrently, sign_in
from tests.faults.test_input import count, listing_text
from tests.test_saving import ARTICLE

process = pytest.mark.faults_process  # real processes: `make test-faults` runs these

SIGN_UP = {"email": "same@example.com", "password": "long enough", "confirm": "long enough"}


def test_two_accounts_registered_with_one_address_at_once_make_one(app):
    services.set_setting("registration", "open")
    statuses: list[int] = []
    pages: list[str] = []

    def register() -> None:
        client = app.test_client()
        response = client.submit("/register", SIGN_UP)
        statuses.append(response.status_code)
        pages.append(response.get_data(as_text=True))

    assert run_concurrently(app, register, workers=4) == []
    assert sorted(statuses) == [303, 422, 422, 422]
    refused = [page for status, page in zip(statuses, pages, strict=True) if status == 422]
    assert all("An account with that email already exists." in page for page in refused)
    count = select(func.count()).select_from(User).where(User.email == "same@example.com")
    assert db.session.scalar(count) == 1


def test_two_hosts_taking_the_setup_link_at_once_make_one_admin(app: Flask):
    import itertools

    from tests.conftest import run_concurrently

    token = services.issue_setup_token()
    numbers = itertools.count(1)

    def take_it() -> None:
        services.complete_setup(token, f"admin{next(numbers)}@example.com", PASSWORD)

    errors = run_concurrently(app, take_it)
    assert len(errors) == 3
    assert all(isinstance(error, services.AccountError) for error in errors)
    assert db.session.scalar(select(func.count()).select_from(User).where(User.is_admin)) == 1


# === imports in short transactions beside readers' writes (from tests/test_import_load.py) ===


@process
def test_two_big_imports_and_a_readers_writes_all_go_through(app, client, make_user, make_post):
    reader = make_user()
    entry_id = lists.save_post(reader, make_post().id).id
    assert sign_in(client, reader).status_code == 303
    token = client.csrf_token()
    first = io.BytesIO(listing_text(0, 10_000).encode())
    second = io.BytesIO(listing_text(5_000, 10_000).encode())  # half of it is in the first
    reports: dict[str, Any] = {}
    errors: list[BaseException] = []
    started = threading.Barrier(3)

    def run(name: str, stream: io.BytesIO) -> None:
        with app.app_context():
            try:
                started.wait()
                reports[name] = import_files([(name, stream)], source_name="Load")
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=run, args=("first.txt", first)),
        threading.Thread(target=run, args=("second.txt", second)),
    ]
    for thread in threads:
        thread.start()
    started.wait()
    statuses = []
    progress = 0
    deadline = time.monotonic() + 300  # every loop bounded: a hung import fails, not hangs
    while any(thread.is_alive() for thread in threads):
        assert time.monotonic() < deadline, "the imports did not finish in 5 minutes"
        progress = progress % 99 + 1
        response = client.post(
            f"/list/{entry_id}/progress",
            data={"progress": str(progress)},
            headers={"HX-Request": "true", "X-CSRFToken": token},
        )
        statuses.append(response.status_code)
    for thread in threads:
        thread.join()

    assert errors == []
    assert statuses and all(200 <= status < 400 for status in statuses), statuses
    created = reports["first.txt"].created + reports["second.txt"].created
    duplicates = reports["first.txt"].duplicates + reports["second.txt"].duplicates
    assert (created, duplicates) == (15_000, 5_000)
    assert count(Post) == 15_000 + 1
    titles = db.session.scalar(select(func.count(func.distinct(Post.title))))
    assert titles == 15_000 + 1
    assert count(Source) == 1


# === several hosts over one database and one Redis (was tests/test_hosts.py) ============

# Dogear on several hosts over one database and one Redis.
#
# First, in this process: a periodic task that the schedulers of several hosts each
# queue runs once per period, and the heartbeat is written once a minute.
#
# Then for real: two gunicorn instances (hosts A and B, each with its own instance
# folder) and a job worker beside each, over one freshly migrated PostgreSQL schema and
# one Redis queue (a name of its own, so runs don't collide), driven over HTTP like a
# browser behind a load balancer would be. Skipped when PostgreSQL or Redis doesn't
# answer, unless DOGEAR_TEST_POSTGRES=required.

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("DOGEAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "several-hosts-share-this-secret-key-0123456789"
MINUTE = datetime(2026, 5, 1, 12, 0, 5)


# --- periodic tasks, in this process ------------------------------------------------


def scheduled_copies(task: Any, *times: datetime) -> list[Any]:
    """What the schedulers of hosts whose clocks read `times` queue of `task`."""
    return [
        copy
        for at in times
        for copy in huey.read_periodic(at)
        if isinstance(copy, task.task_class)
    ]


def test_a_periodic_task_runs_once_per_period_however_many_hosts_queue_it(app: Flask):
    runs: list[str] = []

    name = f"tally_{uuid.uuid4().hex[:8]}"

    @periodic(crontab(minute="*"), name=name)
    def tally() -> None:
        runs.append("ran")

    try:
        # Four hosts' schedulers, a few seconds apart within the same minute.
        copies = scheduled_copies(tally, *(MINUTE + timedelta(seconds=s) for s in (0, 9, 20, 41)))
        assert [copy.kwargs for copy in copies] == [{"period": "2026-05-01T12:00"}] * 4
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(copies))

        def run(copy: Any) -> None:
            try:
                barrier.wait()
                huey.execute(copy)  # as a worker on one host does, all four at once
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(copy,)) for copy in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert runs == ["ran"]

        for copy in scheduled_copies(tally, MINUTE + timedelta(minutes=1), MINUTE):
            huey.execute(copy)  # the next minute runs; a late copy of the first doesn't
        assert runs == ["ran", "ran"]
        tally.call_local()  # run by hand (a test, the CLI): no claim, it just runs
        assert len(runs) == 3
        db.session.rollback()
        claims = db.session.scalars(
            select(PeriodicRun).where(PeriodicRun.task == f"{__name__}.{name}")
        ).all()
        assert sorted(claim.period_start.minute for claim in claims) == [0, 1]
        assert {claim.claimed_by for claim in claims} == {jobs.worker_id()}
    finally:
        tally.unregister()


def test_a_periodic_run_that_fails_gives_its_period_back(app: Flask):
    attempts: list[int] = []

    @periodic(crontab(minute="*"), name=f"flaky_{uuid.uuid4().hex[:8]}")
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the first try fails")

    try:
        first, second, third = scheduled_copies(flaky, MINUTE, MINUTE, MINUTE)
        huey.execute(first)  # fails (huey logs it): the claim is given back
        huey.execute(second)  # so another host's copy runs it
        huey.execute(third)  # and that one claimed it for good
        assert len(attempts) == 2
    finally:
        flaky.unregister()


def test_claims_older_than_two_days_are_deleted_as_new_ones_come(app: Flask):
    assert claim_period("upkeep", "2026-05-01T12:00")
    assert not claim_period("upkeep", "2026-05-01T12:00")
    assert claim_period("upkeep", "2026-05-04T12:00")
    db.session.rollback()
    periods = db.session.scalars(select(PeriodicRun.period_start)).all()
    assert periods == [datetime(2026, 5, 4, 12, 0)]


def test_the_heartbeat_is_written_once_a_minute_by_the_workers_sharing_a_queue(
    app: Flask, monkeypatch: pytest.MonkeyPatch
):
    def beat(at: datetime, now: float) -> Any:
        monkeypatch.setattr(jobs.time, "time", lambda: now)
        for copy in scheduled_copies(heartbeat, at):
            huey.execute(copy)
        return huey.storage.peek_data(jobs.HEARTBEAT_KEY)

    assert beat(MINUTE, 1000.0) == b"1000.0"
    assert beat(MINUTE + timedelta(seconds=30), 1010.0) == b"1000.0"  # another host: skipped
    assert beat(MINUTE + timedelta(minutes=1), 1070.0) == b"1070.0"
    assert beat(MINUTE + timedelta(minutes=2), 1130.0) == b"1130.0"
    # Only the last two minutes' claims are kept.
    claims = [f"{jobs.HEARTBEAT_KEY}:2026-05-01T12:0{minute}" for minute in range(3)]
    assert [huey.storage.has_data_for_key(claim) for claim in claims] == [False, True, True]


# --- two real hosts -----------------------------------------------------------------


@cache
def redis_answers() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception:  # noqa: BLE001 - any failure means "no server here"
        return False
    return True


HOSTS_MARKS = [
    *pg.MARKS,
    pytest.mark.skipif(
        not pg.REQUIRED and not redis_answers(), reason=f"no Redis server answers at {REDIS_URL}"
    ),
]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    text: str


_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@dataclass
class Browser:
    """One browser behind the load balancer: its cookies go to whichever host answers
    (both listen on 127.0.0.1, as both serve one domain), and its address reaches
    Dogear in X-Forwarded-For (DOGEAR_PROXY_FIX=1), so each browser is throttled as
    one client."""

    address: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, port: int, method: str, path: str, form: dict[str, str] | None = None):
        headers = {"X-Forwarded-For": self.address}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request(method, path, body=body, headers=headers)
            raw = conn.getresponse()
            response = Response(raw.status, raw.headers, raw.read().decode())
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, port: int, path: str) -> Response:
        return self.request(port, "GET", path)

    def submit(self, port: int, path: str, form: dict[str, str], page: str = "") -> Response:
        """POST a form the way a browser does: with the CSRF token of the page it is on."""
        html = self.get(port, page or path).text
        match = _CSRF.search(html)
        assert match, f"no CSRF token on {page or path}"
        return self.request(port, "POST", path, {**form, "csrf_token": match.group(1)})

    def sign_in(self, port: int, email: str, password: str = PASSWORD) -> Response:
        return self.submit(port, "/login", {"email": email, "password": password})


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    app: Flask
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    admin: Browser | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    workers_started: datetime = field(default_factory=utcnow)

    def host_env(self, host: str) -> dict[str, str]:
        instance = self.root / f"host-{host}"
        instance.mkdir(exist_ok=True)
        return {**self.env, "DOGEAR_INSTANCE_PATH": str(instance)}

    def start(self, name: str, host: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603
            [sys.executable, *args],
            cwd=ROOT,
            env=self.host_env(host),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def start_web(self, host: str) -> None:
        self.ports[host] = free_port()
        bind = f"127.0.0.1:{self.ports[host]}"
        self.start(
            f"web-{host}",
            host,
            ["-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", bind, "wsgi:app"],
        )

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.processes)

    def healthy(self, host: str) -> bool:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} ended early:\n{self.logs()}"
        try:
            return Browser("198.51.100.250").get(self.ports[host], "/healthz").status == 200
        except OSError:
            return False

    def dogear(self, host: str, *args: str) -> str:
        """Run a `dogear` command on `host` (it reaches the same database)."""
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.host_env(host),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def query(self, statement: Any) -> list[Any]:
        with self.app.app_context():
            try:
                return list(db.session.execute(statement).all())
            finally:
                db.session.remove()

    def signed_in_admin(self) -> Browser:
        """The first admin, made through the set-up link that both hosts printed
        (opened on B, printed by A), and signed in on that browser."""
        if self.admin is None:
            links = {host: re.findall(r"\S+/setup/\S+", self.log(f"web-{host}")) for host in "ab"}
            path = urlsplit(links["a"][0]).path
            browser = Browser("198.51.100.1")
            form = {
                "email": "admin@example.com",
                "password": PASSWORD,
                "confirm": PASSWORD,
            }
            self.setup = {
                "links": links,
                "page on B": browser.get(self.ports["b"], path).status,
                "made on B": browser.submit(self.ports["b"], path, form),
                "again on A": browser.get(self.ports["a"], path).status,
                "again on B": browser.get(self.ports["b"], path).status,
                "users on A": browser.get(self.ports["a"], "/admin/users"),
            }
            self.admin = browser
        return self.admin


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to each process group at once, then SIGKILL to whatever is left after
    a bounded wait."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Hosts A and B (gunicorn and a job worker each) on one schema and one queue."""
    root = tmp_path_factory.mktemp("hosts")
    queue = f"dogear-test-{uuid.uuid4().hex[:12]}"
    with pg.fresh_schema() as schema:
        url = pg.schema_url(schema)
        app = make_app(root, SQLALCHEMY_DATABASE_URI=url, JOBS_URL="memory://")
        with app.app_context():
            upgrade()
            db.engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOGEAR_")}
        env.update(
            DOGEAR_DATABASE_URL=url,
            DOGEAR_SECRET_KEY=SECRET,
            DOGEAR_REDIS_URL=REDIS_URL,
            DOGEAR_JOBS_NAME=queue,
            DOGEAR_JOBS_WORKERS="2",
            DOGEAR_DEMO="0",
            DOGEAR_BASE_URL="http://dogear.test",  # what both hosts are reached by
            DOGEAR_PROXY_FIX="1",
            DOGEAR_RATELIMIT_LOGIN="3 per minute",
            DOGEAR_FETCH_ALLOW_PRIVATE='["127.0.0.1/32"]',
            WEB_CONCURRENCY="2",
            PYTHONUNBUFFERED="1",
        )
        cluster = Cluster(root, env, app)
        try:
            for host in "ab":
                cluster.start_web(host)
            # Both workers' schedulers queue the periodic tasks as they start: keep
            # that inside one minute (a worker starts in a few seconds).
            if utcnow().second >= 45:
                time.sleep(60.5 - utcnow().second)
            cluster.workers_started = utcnow()
            for host in "ab":
                cluster.start(f"worker-{host}", host, ["-m", "app.cli", "worker"])
            for host in "ab":
                wait_for(lambda h=host: cluster.healthy(h), 30, f"host {host}")
                wait_for(lambda h=host: "/setup/" in cluster.log(f"web-{h}"), 10, "a link")
            yield cluster
        finally:
            stop(list(cluster.processes.values()))
            with app.app_context():
                db.engine.dispose()
            _flush_queue(queue)


def _flush_queue(name: str) -> None:
    """Delete the test queue's keys from Redis (queue, schedule, results)."""
    from huey.storage import RedisStorage
    from redis import RedisError

    with contextlib.suppress(RedisError):
        RedisStorage(name, url=REDIS_URL).flush_all()


class TestTwoHosts:
    pytestmark = [*HOSTS_MARKS, process]

    def test_both_hosts_print_the_same_setup_link_and_it_works_once(self, cluster):
        cluster.signed_in_admin()
        setup = cluster.setup
        (link_a,), (link_b,) = setup["links"]["a"], setup["links"]["b"]
        assert link_a == link_b and link_a.startswith("http://dogear.test/setup/")
        assert setup["page on B"] == 200
        assert setup["made on B"].status == 303
        assert setup["again on A"] == setup["again on B"] == 404
        # The session the set-up started on B is good on A.
        assert setup["users on A"].status == 200
        assert "admin@example.com" in setup["users on A"].text

    def test_a_session_made_on_a_works_on_b_and_signing_out_on_a_ends_it(self, cluster):
        cluster.signed_in_admin()
        a, b = cluster.ports["a"], cluster.ports["b"]
        laptop = Browser("198.51.100.2")
        assert laptop.sign_in(a, "admin@example.com").status == 303
        account = laptop.get(b, "/account")
        assert account.status == 200 and "admin@example.com" in account.text
        cookies = dict(laptop.cookies)
        assert laptop.submit(a, "/logout", {}, page="/account").status == 303
        # The old cookies, as someone who copied them still has them: dead on B too.
        replay = Browser("198.51.100.2", cookies=cookies).get(b, "/account")
        assert replay.status == 302 and "/login" in replay.headers["Location"]

    def test_failed_sign_ins_are_counted_across_both_hosts(self, cluster):
        a, b = cluster.ports["a"], cluster.ports["b"]
        guesser = Browser("203.0.113.9")
        statuses = [
            guesser.sign_in(port, "admin@example.com", "not the password").status
            for port in (a, b, a, b, a)
        ]
        assert statuses == [422, 422, 422, 429, 429]  # "3 per minute", wherever it lands

    def test_a_post_added_on_a_shows_in_the_counts_on_b_within_two_seconds(self, cluster):
        b = cluster.ports["b"]
        listing = cluster.root / "listing-{}.txt"
        for n in (1, 2):
            Path(str(listing).format(n)).write_text(
                f"Harbour walls, part {n}\n\nHow a breakwater is built, part {n}.\n\n"
                f"May {n}, 2026 · 6 min · 1300 words · Hosts Tester\n",
                encoding="utf-8",
            )
        count = re.compile(r'Hosts Tester <span class="count">(\d+)</span>')

        def counts_on_b() -> set[str]:
            """The count B shows, asked four times to reach both of its workers."""
            pages = [Browser("192.0.2.1").get(b, "/").text for _ in range(4)]
            return {m.group(1) if (m := count.search(page)) else "none" for page in pages}

        cluster.dogear("a", "posts", "import", str(listing).format(1))
        wait_for(lambda: counts_on_b() == {"1"}, 10, "the first post on B")
        assert counts_on_b() == {"1"}  # B's workers have counted (and cached) it now
        cluster.dogear("a", "posts", "import", str(listing).format(2))
        wait_for(lambda: counts_on_b() == {"2"}, 2, "B's counts to follow A's import")
        assert counts_on_b() == {"2"}

    def test_a_job_queued_on_a_runs_once_on_the_shared_queue(self, cluster, web):
        admin = cluster.signed_in_admin()
        web.add("/harbours", ARTICLE)
        url = web.url("/harbours")
        saved = admin.submit(cluster.ports["a"], "/list/add", {"url": url, "title": ""})
        assert saved.status == 303, saved.text[:500]

        def state() -> tuple[str, int] | None:
            rows = cluster.query(
                select(Post.fetch_state, Post.fetch_attempts).where(Post.url == url)
            )
            return (rows[0][0], rows[0][1]) if rows else None

        wait_for(lambda: state() == ("done", 1), 20, f"the fetch\n{cluster.logs()}")
        time.sleep(1.5)  # no other worker, on either host, runs it again
        assert state() == ("done", 1)
        assert web.hits("/harbours") == 1

    def test_both_workers_queue_the_periodic_tasks_and_each_period_runs_once(self, cluster):
        task = "app.catalog.tasks.requeue_stalled"  # every minute
        skipped = re.compile(r"Skipped " + re.escape(task) + r" for (\S+): another copy")
        workers = {f"{os.uname().nodename}:{cluster.processes[f'worker-{h}'].pid}" for h in "ab"}

        def claims() -> dict[str, str]:
            rows = cluster.query(
                select(PeriodicRun.period_start, PeriodicRun.claimed_by).where(
                    PeriodicRun.task == task
                )
            )
            return {start.isoformat(timespec="minutes"): owner for start, owner in rows}

        def skips() -> list[str]:
            return [p for h in "ab" for p in skipped.findall(cluster.log(f"worker-{h}"))]

        # Both schedulers queued it as their worker started, within the same minute
        # (the fixture saw to that): one copy ran, the other found the claim and skipped.
        first = cluster.workers_started.isoformat(timespec="minutes")
        wait_for(lambda: first in skips(), 15, f"the second copy of {task}\n{cluster.logs()}")
        owners = claims()
        assert skips().count(first) == 1 and owners[first] in workers, cluster.logs()
        assert set(skips()) <= set(owners)  # a skipped copy's period did run, once


# === two `dogear posts import` processes at once, as on the issue's machine ===============


@process
def test_two_import_processes_at_once_both_finish_beside_a_readers_writes(
    app, client, make_user, make_post, database, tmp_path
):
    """Issue 11's first case with real processes: two `dogear posts import` commands
    started together over one database both finish (no `database is locked`, no
    duplicates) while a signed-in reader's progress updates keep answering."""
    reader = make_user()
    entry_id = lists.save_post(reader, make_post().id).id
    assert sign_in(client, reader).status_code == 303
    token = client.csrf_token()
    (tmp_path / "first.txt").write_text(listing_text(0, 10_000), encoding="utf-8")
    (tmp_path / "second.txt").write_text(listing_text(5_000, 10_000), encoding="utf-8")
    env = process_env(tmp_path, database["SQLALCHEMY_DATABASE_URI"])
    importers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "app.cli", "posts", "import", "--json", str(tmp_path / name)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for name in ("first.txt", "second.txt")
    ]
    statuses = []
    try:
        deadline = time.monotonic() + 300  # every loop bounded
        while any(importer.poll() is None for importer in importers):
            assert time.monotonic() < deadline, "the imports did not finish in 5 minutes"
            response = client.post(
                f"/list/{entry_id}/progress",
                data={"progress": str(len(statuses) % 99 + 1)},
                headers={"HX-Request": "true", "X-CSRFToken": token},
            )
            statuses.append(response.status_code)
            time.sleep(0.02)
        outputs = [importer.communicate(timeout=30) for importer in importers]
    finally:
        for importer in importers:
            if importer.poll() is None:
                os.killpg(importer.pid, signal.SIGKILL)
                importer.wait(timeout=10)

    for importer, (_out, err) in zip(importers, outputs, strict=True):
        assert importer.returncode == 0, err.decode(errors="replace")[-2000:]
        assert b"database is locked" not in err
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["created"] for r in reports) == 15_000
    assert sum(r["duplicates"] for r in reports) == 5_000
    assert statuses and all(200 <= status < 400 for status in statuses), statuses
    assert count(Post) == 15_000 + 1
    assert db.session.scalar(select(func.count(func.distinct(Post.title)))) == 15_000 + 1

"""The job worker as a real process: fetches run there, a worker killed mid-job (kill -9)
leaves a job that the next worker finishes exactly once, and `dogear serve` (what
`make run` starts) runs gunicorn and the worker together and stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.services import create_user
from app.extensions import db
from app.lists.services import add_article
from app.models import Post
from tests.conftest import make_app
from tests.test_saving import ARTICLE

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], object], timeout: float = 20, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def instance(tmp_path: Path, database: dict[str, str]) -> Iterator[tuple[object, dict[str, str]]]:
    """An app and the environment that points a process at the same instance."""
    settings = {
        **database,
        "FETCH_ALLOW_PRIVATE": ["127.0.0.1/32"],
        "FETCH_LEASE_SECONDS": 2,
        "FETCH_TIMEOUT": 30,
    }
    app = make_app(tmp_path, **settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGEAR_")}
    env.update(
        DOGEAR_INSTANCE_PATH=str(tmp_path),
        DOGEAR_DATABASE_URL=database["SQLALCHEMY_DATABASE_URI"],
        DOGEAR_SECRET_KEY="test-secret-key-that-is-long-enough-123456",
        DOGEAR_DEMO="0",
        DOGEAR_FETCH_ALLOW_PRIVATE='["127.0.0.1/32"]',
        DOGEAR_FETCH_LEASE_SECONDS="2",
        DOGEAR_FETCH_TIMEOUT="30",
        DOGEAR_JOBS_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    with app.app_context():
        create_user("reader@example.com", "correct horse battery")
        yield app, env
        db.session.remove()
        db.engine.dispose()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def post_state(url: str) -> tuple[str, int] | None:
    db.session.rollback()
    row = db.session.execute(
        select(Post.fetch_state, Post.fetch_attempts).where(Post.url == url)
    ).first()
    return (row[0], row[1]) if row else None


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_worker_killed_mid_fetch_leaves_a_job_the_next_worker_finishes_once(
    instance, web, tmp_path
):
    app, env = instance
    arrived = threading.Event()
    release = threading.Event()
    requests = []

    def slow_then_fine(request) -> None:
        requests.append(time.monotonic())
        if len(requests) == 1:  # the first worker hangs here until it is killed
            arrived.set()
            release.wait(30)
        body = ARTICLE.encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    web.add_handler("/slow", slow_then_fine)
    url = web.url("/slow")
    from app.auth.services import find_user_by_email

    add_article(find_user_by_email("reader@example.com"), url)
    assert post_state(url) == ("pending", 0)

    log = tmp_path / "worker.log"
    first = start(["worker"], env, log)
    try:
        assert arrived.wait(30), log.read_text()
        assert post_state(url) == ("pending", 1)  # claimed, mid-fetch
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)
        release.set()
    time.sleep(2.5)  # the dead worker's lease runs out

    second = start(["worker"], env, log)
    try:
        wait_for(lambda: post_state(url) == ("done", 2), 30, "the second worker's fetch")
        time.sleep(1)  # nothing else runs it again
    finally:
        stop(second)
    assert len(requests) == 2
    assert post_state(url) == ("done", 2)
    db.session.rollback()
    post = db.session.scalar(select(Post).where(Post.url == url))
    assert post.title == "Quiet harbours of the northern coast"
    assert "breakwater" in post.content
    assert "Requeued 1 article fetch" in log.read_text()


def test_serve_runs_the_web_server_and_the_worker_and_stops_both(instance, web, tmp_path):
    app, env = instance
    web.add("/harbours", ARTICLE)
    port = free_port()
    log = tmp_path / "serve.log"
    serve = start(["serve", "--bind", f"127.0.0.1:{port}"], env, log)
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:  # noqa: S310
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, 30, "gunicorn")
        from app.auth.services import find_user_by_email

        add_article(find_user_by_email("reader@example.com"), web.url("/harbours"))
        wait_for(lambda: post_state(web.url("/harbours")) == ("done", 1), 30, "the worker")
        os.kill(serve.pid, signal.SIGTERM)
        assert serve.wait(timeout=40) == 0, log.read_text()
    finally:
        stop(serve)
    assert not healthy()
    # Both children are gone with it: nothing is left in its process group.
    with pytest.raises(ProcessLookupError):
        os.killpg(serve.pid, 0)

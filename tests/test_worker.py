"""The job worker as a real process: `dogear serve` (what `make run` starts) runs
gunicorn and the worker together and stops both. The helpers here also start the
worker that tests/faults/test_crash_and_recovery.py kills with kill -9 mid-fetch."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
from tests.conftest import make_app, process_env
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
    env = process_env(
        tmp_path,
        database["SQLALCHEMY_DATABASE_URI"],
        DOGEAR_FETCH_ALLOW_PRIVATE='["127.0.0.1/32"]',
        DOGEAR_FETCH_LEASE_SECONDS="2",
        DOGEAR_FETCH_TIMEOUT="30",
        DOGEAR_JOBS_WORKERS="1",
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

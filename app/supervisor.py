"""`dogear serve`: gunicorn and the job worker as one command, stopped together.

`make run` uses it so that one Ctrl-C stops both. Deployments usually run the two
as separate services instead (see the README's systemd units).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from app.config import ROOT


def serve(bind: str) -> int:
    """Start both processes; when either ends, or on SIGINT/SIGTERM, stop the other.
    Returns the exit status of the one that ended first (0 after a requested stop)."""
    python = sys.executable
    commands = {
        "web": [
            python,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "--bind",
            bind,
            "wsgi:app",
        ],
        "worker": [python, "-m", "app.cli", "worker"],
    }
    children = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}  # noqa: S603
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        # Ctrl-C already reached both children (same process group); SIGTERM did not.
        if signum == signal.SIGTERM:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while not stopping and all(child.poll() is None for child in children.values()):
        time.sleep(0.2)
    for name, child in children.items():
        if child.poll() is not None and not stopping:
            print(
                f"dogear serve: the {name} process ended ({child.returncode}); stopping.",
                file=sys.stderr,
            )
            status = child.returncode or 1
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 25
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return status

"""A small closed-loop HTTP load driver: N processes, one request in flight each.

Each process opens a connection, sends one prebuilt HTTP/1.1 request, reads the
response to the end (gunicorn's sync workers close every connection) and records the
latency from connect to the last byte. Requests that start during the warm-up are not
counted. The driver reports its own CPU use so a run can tell whether the driver,
rather than the server, was the bottleneck.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import socket
import time
from array import array
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    driver_cpu: float  # CPU seconds the driver processes used per wall second
    statuses: dict[int, int]
    sent: int = 0  # every request completed, warm-up included

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[k]


def fetch(host: str, port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
    """One request: (status, headers, body)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head[9:12]) if len(head) >= 12 else 0
    return status, head, body


def _worker(host, port, requests, start_at, warm_until, stop_at, offset, queue) -> None:
    latencies = array("d")
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    n = len(requests)
    i = offset
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    while time.time() < start_at:
        time.sleep(0.001)
    perf = time.perf_counter
    now = time.time
    while True:
        wall = now()
        if wall >= stop_at:
            break
        request = requests[i % n]
        i += 1
        t0 = perf()
        try:
            sock = socket.create_connection((host, port), timeout=30)
            sock.sendall(request)
            first = sock.recv(65536)
            while sock.recv(65536):
                pass
            sock.close()
            status = int(first[9:12]) if len(first) >= 12 else 0
        except OSError:
            status = 0
        elapsed = (perf() - t0) * 1000.0
        sent += 1
        if wall < warm_until:
            continue
        statuses[status] = statuses.get(status, 0) + 1
        if not 200 <= status < 400:
            errors += 1
        latencies.append(elapsed)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    queue.put((latencies.tobytes(), errors, statuses, cpu, sent))


def run(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    duration: float,
    warmup: float,
    concurrency: int,
) -> LoadResult:
    """Drive `requests` (cycled) at the server for warmup + duration seconds."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 0.3
    warm_until = start_at + warmup
    stop_at = warm_until + duration
    procs = [
        ctx.Process(
            target=_worker,
            args=(host, port, requests, start_at, warm_until, stop_at, k * 7919, queue),
        )
        for k in range(concurrency)
    ]
    for proc in procs:
        proc.start()
    latencies: list[float] = []
    errors = 0
    cpu = 0.0
    sent = 0
    statuses: dict[int, int] = {}
    for _ in procs:
        raw, errs, stats, used, done = queue.get(timeout=duration + warmup + 60)
        sent += done
        values = array("d")
        values.frombytes(raw)
        latencies.extend(values)
        errors += errs
        cpu += used
        for code, count in stats.items():
            statuses[code] = statuses.get(code, 0) + count
    for proc in procs:
        proc.join()
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=duration,
        latencies_ms=latencies,
        driver_cpu=cpu / (duration + warmup),
        statuses=statuses,
        sent=sent,
    )


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds used so far by these processes (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (VmRSS from /proc)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")

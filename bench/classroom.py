"""A classroom against one served studio: 30 `gradio_client` sessions, each generating twice.

Starts `app.py` (as `make run` does) on a loopback port with its own temp folders, measures one
request alone first for each tune the sessions will send (its latency and the server's CPU time for
it, from psutil), then lets every session start at once (a barrier) and call `/accompany` twice in a
row, each time with another tune. Reported: failures, latency p50 / p95 (and p95 / p50), throughput
in requests per second, and the ideal throughput the machine allows: cores / the server's CPU seconds
for one request alone, averaged over the load's own mix of tunes (issue 9 asks for at
least 80% of it, p95 at most twice p50, and no failures). The clients run in this process, on the same
cores (their CPU time is reported too: on a 2-core machine it is taken from the server's share). On a
shared machine the other processes' CPU time during the run is reported as well (the machine's busy
time less the server's and the clients'), with the ideal on the cores they left to the server.

A request is done when its results have arrived, as in a browser: each session fetches the request's
files (audio, piano roll, MIDI) from the server over its own kept-alive connection and counts their
bytes (`fetch="stream"`, the default). `fetch="gradio"` lets `gradio_client` download them instead: a
new connection per file, a SHA-256 and a copy on disk each, client work that on one machine takes
cores from the server (the server's work is the same either way; both are timed alike).

Usage:
    python -m bench.classroom [--sessions 30] [--requests-each 2] [--model gan-chorale] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench.launch import launch_studio
from studio.core.config import REPO_ROOT

__all__ = ["classroom"]

TUNES = sorted((REPO_ROOT / "tests" / "data" / "tunes").glob("*.mid")) + sorted((REPO_ROOT / "assets" / "melodies").glob("*.mid"))


def _server_cpu(process: psutil.Process) -> float:
    """CPU seconds of the server and its children so far."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def _busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core) since it started."""
    t = psutil.cpu_times()
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


class _Session:
    """One student: a `gradio_client` Client and, with `fetch="stream"`, a kept-alive connection that
    fetches each request's result files as a browser would."""

    def __init__(self, url: str, fetch: str) -> None:
        from gradio_client import Client

        if fetch not in ("stream", "gradio"):
            raise ValueError(f"fetch must be 'stream' or 'gradio', not {fetch!r}")
        # The studio is served over plain http on loopback: no TLS, so nothing to verify. With
        # verification on, httpx loads the CA bundle each time gradio_client opens a connection
        # pool (several per request): 15.6 ms of client CPU each, against 0.2 ms without.
        plain = urllib.parse.urlsplit(url).scheme == "http"
        self.client = Client(url, verbose=False, download_files=False if fetch == "stream" else DOWNLOADS, ssl_verify=not plain)
        self.fetch = fetch
        self.connection: http.client.HTTPConnection | None = None
        self.bytes = 0

    def accompany(self, tune: Path, model: str, seed: int) -> None:
        from gradio_client import handle_file

        result = self.client.predict(handle_file(str(tune)), model, seed, api_name="/accompany")
        if self.fetch != "stream":
            return
        files = [f for f in (result if isinstance(result, (list, tuple)) else [result]) if f]
        if len(files) != 3:
            raise RuntimeError(f"expected 3 result files, got {len(files)}")
        for f in files:
            url = f.get("url") if isinstance(f, dict) else None
            if not url:
                path = f["path"] if isinstance(f, dict) else str(f)
                url = f"{self.client.src.rstrip('/')}/gradio_api/file={path}"
            got = len(self._get(url))
            if not got:
                raise RuntimeError(f"empty result file {url}")
            self.bytes += got

    def _get(self, url: str) -> bytes:
        """The body of `url` over this session's kept-alive connection (opened again once if the
        server closed it while idle). The standard library's client reads a body in one call,
        where httpx (under gradio_client) hands it over 64 KB at a time in Python: a third of the
        clients' CPU time in the classroom."""
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            try:
                self.connection.request("GET", target)
                response = self.connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"GET {url}: HTTP {response.status}")
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


DOWNLOADS = Path(tempfile.gettempdir()) / "studio-classroom-downloads"


def classroom(
    sessions: int = 30,
    requests_each: int = 2,
    model: str = "gan-chorale",
    alone: int = 2,
    server_env: dict[str, str] | None = None,
    fetch: str = "stream",
    clients_nice: int = 19,
) -> dict[str, Any]:
    """Run the classroom (see the module docstring) and return its figures. `server_env` adds variables
    to the server's environment (e.g. STUDIO_WORKERS, OMP_NUM_THREADS, to compare settings); `fetch`
    says how the clients take the results ("stream" or "gradio", see the module docstring);
    `clients_nice` is the clients' scheduling priority (19: the lowest; 0: the server's own)."""

    tunes = [t for t in TUNES if t.stat().st_size < 20_000][:12]
    tmp = Path(tempfile.mkdtemp(prefix="studio-classroom-"))
    folders = {"TMPDIR": str(tmp / "tmp"), "GRADIO_TEMP_DIR": str(tmp / "gradio")}
    for folder in folders.values():
        Path(folder).mkdir(parents=True)
    env = {**(server_env or {}), **folders}
    server = launch_studio(env=env, log=tmp / "server.log")
    try:
        proc = psutil.Process(server.pid)
        warm = _Session(server.url, fetch)
        warm.accompany(tunes[0], model, 0)  # loads the model
        # The ideal is for the load's own mix: every tune the sessions will send, alone, weighted
        # by how often they send it (tunes differ in length, so in CPU time, by x3 and more).
        plan = [[(i + j) % len(tunes) for j in range(requests_each)] for i in range(sessions)]
        uses = Counter(t for session in plan for t in session)
        single, cpu_alone = [], {}
        for t in sorted(uses):
            runs = []
            for k in range(alone):
                cpu0, t0 = _server_cpu(proc), time.perf_counter()
                warm.accompany(tunes[t], model, 1000 + k)
                single.append(time.perf_counter() - t0)
                runs.append(_server_cpu(proc) - cpu0)
            cpu_alone[t] = statistics.median(runs)
        cores = psutil.cpu_count() or 1
        cpu_per_request = sum(cpu_alone[t] * n for t, n in uses.items()) / sum(uses.values())

        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        clients: list[_Session | None] = [None] * sessions
        ready, barrier = threading.Barrier(sessions + 1), threading.Barrier(sessions + 1)

        def student(index: int) -> None:
            if clients_nice and hasattr(os, "setpriority"):
                # Linux keeps a nice value per thread: this one, and the threads its client starts, yield
                # the cores to the server whenever it wants them (the measuring thread is not reniced).
                os.setpriority(os.PRIO_PROCESS, 0, clients_nice)
            clients[index] = _Session(server.url, fetch)
            ready.wait()  # every client set up (not timed)
            barrier.wait()
            for j, t in enumerate(plan[index]):
                tune = tunes[t]
                start = time.perf_counter()
                try:
                    clients[index].accompany(tune, model, index * 10 + j)
                    with lock:
                        latencies.append(time.perf_counter() - start)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported, whatever it is
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}"[:200])

        threads = [threading.Thread(target=student, args=(i,)) for i in range(sessions)]
        for t in threads:
            t.start()
        ready.wait()
        own0 = psutil.Process().cpu_times()
        cpu0, busy0 = _server_cpu(proc), _busy_cpu()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        own1 = psutil.Process().cpu_times()
        server_cpu, busy = _server_cpu(proc) - cpu0, _busy_cpu() - busy0
        fetched = sum(c.bytes for c in clients if c)
        for c in [warm, *clients]:
            if c:
                c.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    done = len(latencies)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) if ordered else float("nan")
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] if ordered else float("nan")
    throughput = done / wall
    ideal = cores / cpu_per_request
    clients_cpu = (own1.user + own1.system) - (own0.user + own0.system)
    others = max(0.0, busy - server_cpu - clients_cpu)  # other processes on a shared machine
    left = max(1e-9, cores - (others + clients_cpu) / wall)  # the cores the server had, on average
    return {
        "model": model,
        "sessions": sessions,
        "requests": sessions * requests_each,
        "failures": len(failures),
        "failure_samples": failures[:5],
        "cores": cores,
        "alone_latency_s": round(statistics.median(single), 3),
        "alone_server_cpu_s": round(cpu_per_request, 3),
        "alone_server_cpu_range_s": [round(min(cpu_alone.values()), 3), round(max(cpu_alone.values()), 3)],
        "tunes": len(uses),
        "wall_s": round(wall, 2),
        "p50_s": round(p50, 2),
        "p95_s": round(p95, 2),
        "p95_over_p50": round(p95 / p50, 2),
        "throughput_rps": round(throughput, 3),
        "ideal_rps": round(ideal, 3),
        "throughput_share_of_ideal": round(throughput / ideal, 3),
        "server_cpu_s": round(server_cpu, 1),
        "server_cpu_per_request_s": round(server_cpu / max(1, done), 3),
        "clients_cpu_s": round(clients_cpu, 1),
        "other_processes_cores": round(others / wall, 2),
        "cores_left": round(left, 2),
        "throughput_share_of_ideal_on_cores_left": round(throughput / (left / cpu_per_request), 3),
        "server_env": dict(server_env or {}),
        "fetch": fetch,
        "clients_nice": clients_nice,
        "fetched_mb": round(fetched / 1e6, 1),
        "bounds": {"failures": 0, "throughput_share_of_ideal": 0.8, "p95_over_p50": 2.0},
    }


def format_classroom(r: dict[str, Any]) -> str:
    return (
        f"classroom ({r['model']}): {r['sessions']} sessions x {r['requests'] // r['sessions']} requests = {r['requests']} in {r['wall_s']} s, "
        f"{r['failures']} failures; latency p50 {r['p50_s']} s, p95 {r['p95_s']} s (x{r['p95_over_p50']}, bound x2); throughput "
        f"{r['throughput_rps']} req/s vs ideal {r['ideal_rps']} ({r['cores']} cores / {r['alone_server_cpu_s']} s server CPU per request alone, "
        f"the mean over the load's {r['tunes']} tunes, {r['alone_server_cpu_range_s'][0]}-{r['alone_server_cpu_range_s'][1]} s): "
        f"{r['throughput_share_of_ideal']:.0%} (bound 80%); server CPU per request under load {r['server_cpu_per_request_s']} s; "
        f"the clients used {r['clients_cpu_s']} s of CPU, other processes {r['other_processes_cores']} cores: on the "
        f"{r['cores_left']} cores left to the server, {r['throughput_share_of_ideal_on_cores_left']:.0%} of ideal; "
        f"results taken by {r['fetch']}"
        + (f" ({r['fetched_mb']} MB)" if r["fetch"] == "stream" else "")
        + f"; clients at nice {r['clients_nice']}"
        + (f" (server {' '.join(f'{k}={v}' for k, v in r['server_env'].items())})" if r["server_env"] else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--requests-each", type=int, default=2)
    parser.add_argument("--model", default="gan-chorale")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for the server's environment, e.g. STUDIO_WORKERS=4 (repeatable)",
    )
    parser.add_argument(
        "--fetch",
        choices=("stream", "gradio"),
        default="stream",
        help="how clients take the result files: over a kept-alive connection (default) or gradio_client's downloads",
    )
    parser.add_argument(
        "--clients-nice", type=int, default=19, help="the clients' nice value (default 19: they yield the cores to the server; 0: equal)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    server_env = dict(item.split("=", 1) for item in args.server_env)
    result = classroom(
        args.sessions, args.requests_each, args.model, server_env=server_env, fetch=args.fetch, clients_nice=args.clients_nice
    )
    print(json.dumps(result, indent=2) if args.json else format_classroom(result))


if __name__ == "__main__":
    main()

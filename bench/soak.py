"""Soak the served studio: N sequential `/accompany` calls (gradio_client) against one server.

Starts `app.py` (as `make run` does) on a free port with its own TMPDIR and GRADIO_TEMP_DIR, or
uses a running one (`--url` with `--pid`), then calls `/accompany` N times, cycling through the
test tunes and sample melodies and the models, with a new client session every
`--new-session-every` calls. It records failures, each call's time, the server's resident memory
(psutil, on the server process) and the size of its temp folders: Gradio's upload/cache folder and
the studio's `studio-results`.

Memory growth after the warm-up (the first `--warmup` calls, default a tenth) compares the median
of the server's resident memory over the window of calls right after the warm-up with its median
over the same number of calls at the end (windows as long as the warm-up, at most half of what
follows it). Single samples swing by a few percent with the garbage collector (a piano roll's
matplotlib figure is freed only when the collector next runs) and the work in flight, so the
last sample against the first (`rss_end_growth`) and the largest (`rss_peak_growth`) are
reported beside it, not used as the figure. `--age-every K` pretends an hour has
passed every K calls (it backdates the result folders), to check that the running server removes
finished sessions' results; without it nothing is old enough to be cleaned during the run.

Usage:
    python -m bench.soak --requests 1000 [--age-every 100] [--models rules,gan-chorale] [--json]
    python -m bench.soak --url http://127.0.0.1:7860/ --pid 1234 --requests 100
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.launch import launch_studio
from studio.core.config import REPO_ROOT

__all__ = ["ServerUnderTest", "Soak", "dir_bytes", "soak", "start_server"]

RESULTS = "studio-results"  # studio.ui.actions.RESULTS_ROOT_NAME (not imported: that pulls in gradio)
KEEP_RESULTS_S = 3600  # studio.ui.actions.KEEP_RESULTS_S


def dir_bytes(path: Path) -> int:
    """Bytes of all files under `path` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


@dataclass
class ServerUnderTest:
    """A served studio: its URL, its process and the temp folders it writes into."""

    url: str
    pid: int
    gradio_temp: Path
    tmpdir: Path
    process: subprocess.Popen | None = None

    @property
    def results(self) -> Path:
        return self.tmpdir / RESULTS

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def exit_status(self) -> str | None:
        """None while the server runs; else how it ended (its exit code, or the signal that killed it)."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return None
            return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return None if psutil.pid_exists(self.pid) else "is gone"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_server(root: Path, timeout_s: float = 120) -> ServerUnderTest:
    """`app.py` served on a free port (`bench.launch`), with TMPDIR, GRADIO_TEMP_DIR, HOME and
    MPLCONFIGDIR under `root`, and its output in `root/server.log`."""
    dirs = {name: root / name.lower() for name in ("TMPDIR", "GRADIO_TEMP_DIR", "HOME", "MPLCONFIGDIR")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONFAULTHANDLER": "1", **{k: str(v) for k, v in dirs.items()}}
    launched = launch_studio(env, log=root / "server.log", timeout_s=timeout_s)
    return ServerUnderTest(launched.url, launched.pid, dirs["GRADIO_TEMP_DIR"], dirs["TMPDIR"], launched.process)


def default_melodies() -> list[Path]:
    """The real test tunes and the sample melodies."""
    tunes = sorted((REPO_ROOT / "tests" / "data" / "tunes").glob("*.mid"))
    return tunes + sorted((REPO_ROOT / "assets" / "melodies").glob("*.mid"))


@dataclass
class Soak:
    """What a soak measured."""

    requests: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)  # after call i: rss_mb, gradio_mb, results_mb, result folders
    warmup: int = 0
    output_bytes: int = 0  # what the calls' outputs weigh (MIDI + PNG + WAV), as the server reports them
    server_ended: str | None = None  # how the server ended, if it did during the soak

    def windows(self) -> tuple[list[dict], list[dict], int]:
        """The samples right after the warm-up and those at the end (the same span of calls), and the span."""
        after = [s for s in self.samples if s["call"] >= self.warmup]
        if not after:
            return [], [], 0
        end = after[-1]["call"]
        span = max(1, min(self.warmup, (end - self.warmup) // 2))
        first = [s for s in after if s["call"] < self.warmup + span] or after[:1]
        last = [s for s in after if s["call"] > end - span] or after[-1:]
        return first, last, span

    def summary(self) -> dict:
        after = [s for s in self.samples if s["call"] >= self.warmup]
        base = after[0] if after else (self.samples[-1] if self.samples else {})
        last = self.samples[-1] if self.samples else {}
        peak_rss = max((s["rss_mb"] for s in after), default=0.0)
        first_window, last_window, span = self.windows()
        start_mb = statistics.median(s["rss_mb"] for s in first_window) if first_window else 0.0
        end_mb = statistics.median(s["rss_mb"] for s in last_window) if last_window else 0.0
        growth = (end_mb - start_mb) / start_mb if start_mb else 0.0
        end_growth = (last.get("rss_mb", 0) - base.get("rss_mb", 0)) / base["rss_mb"] if base.get("rss_mb") else 0.0
        peak_growth = (peak_rss - base.get("rss_mb", 0)) / base["rss_mb"] if base.get("rss_mb") else 0.0
        swing = (
            max(
                (max(w) - min(w)) / statistics.median(w)
                for w in ([s["rss_mb"] for s in first_window], [s["rss_mb"] for s in last_window])
                if w
            )
            if after
            else 0.0
        )
        calls = max(1, self.requests)
        return {
            "requests": self.requests,
            "failures": len(self.failures),
            "failure_examples": self.failures[:5],
            "server_ended": self.server_ended,
            "median_s": round(statistics.median(self.seconds), 3) if self.seconds else None,
            "p95_s": round(sorted(self.seconds)[int(0.95 * (len(self.seconds) - 1))], 3) if self.seconds else None,
            "max_s": round(max(self.seconds), 3) if self.seconds else None,
            "warmup_calls": self.warmup,
            "rss_window_calls": span,
            "rss_first_window_median_mb": round(start_mb, 1),
            "rss_last_window_median_mb": round(end_mb, 1),
            "rss_growth": round(growth, 4),
            "rss_window_swing": round(swing, 4),
            "rss_after_warmup_mb": round(base.get("rss_mb", 0), 1),
            "rss_end_mb": round(last.get("rss_mb", 0), 1),
            "rss_end_growth": round(end_growth, 4),
            "rss_peak_after_warmup_mb": round(peak_rss, 1),
            "rss_peak_growth": round(peak_growth, 4),
            "gradio_temp_end_mb": round(last.get("gradio_mb", 0), 1),
            "gradio_temp_per_call_kb": round((last.get("gradio_mb", 0) - self.samples[0]["gradio_mb"]) * 1024 / calls, 1)
            if self.samples
            else None,
            "results_end_mb": round(last.get("results_mb", 0), 1),
            "results_max_mb": round(max((s["results_mb"] for s in self.samples), default=0), 1),
            "result_folders_end": last.get("folders"),
            "result_folders_max": max((s["folders"] for s in self.samples), default=0),
            "outputs_per_call_kb": round(self.output_bytes / 1024 / calls, 1),
        }


def _age_results(results: Path) -> int:
    """Backdate every result folder by more than KEEP_RESULTS_S (as if an hour had passed); returns how many."""
    old = time.time() - KEEP_RESULTS_S - 60
    count = 0
    for folder in results.iterdir() if results.is_dir() else []:
        os.utime(folder, (old, old))
        count += 1
    return count


def _sample(server: ServerUnderTest, call: int) -> dict:
    folders = sum(1 for _ in server.results.iterdir()) if server.results.is_dir() else 0
    return {
        "call": call,
        "rss_mb": server.rss_mb(),
        "gradio_mb": dir_bytes(server.gradio_temp) / 2**20,
        "results_mb": dir_bytes(server.results) / 2**20,
        "folders": folders,
    }


def soak(
    server: ServerUnderTest,
    requests: int,
    models: list[str],
    melodies: list[Path] | None = None,
    warmup: int | None = None,
    sample_every: int = 10,
    new_session_every: int = 10,
    age_every: int = 0,
    progress: bool = True,
) -> Soak:
    """Call `/accompany` `requests` times in a row; see the module's docstring for what is measured."""
    from gradio_client import Client, handle_file

    melodies = melodies or default_melodies()
    report = Soak(warmup=max(1, requests // 10) if warmup is None else warmup)
    report.samples.append(_sample(server, 0))
    client = None
    began = time.perf_counter()
    for call in range(1, requests + 1):
        ended = server.exit_status()
        if ended:
            report.failures.append(f"before call {call}: the server {ended} (see its log)")
            report.server_ended = ended
            break
        melody, model = melodies[call % len(melodies)], models[call % len(models)]
        started = time.perf_counter()
        try:
            if client is None or (new_session_every and call % new_session_every == 1):
                if client is not None:
                    client.close()
                client = None
                client = Client(server.url, verbose=False, download_files=False)
            wav, png, midi = client.predict(handle_file(str(melody)), model, call % 7, api_name="/accompany")
            with urllib.request.urlopen(midi["url"], timeout=30) as response:
                if response.read(4) != b"MThd":
                    raise RuntimeError("the MIDI output is not a MIDI file")
            report.output_bytes += sum(Path(f["path"]).stat().st_size for f in (wav, png, midi) if f and Path(f["path"]).exists())
        except Exception as exc:  # noqa: BLE001 - a failure is what a soak counts
            report.failures.append(f"call {call} ({melody.name}, {model}): {type(exc).__name__}: {exc}"[:300])
        report.seconds.append(time.perf_counter() - started)
        report.requests = call
        if age_every and call % age_every == 0:
            _age_results(server.results)
        if (call % sample_every == 0 or call == requests or call == report.warmup) and not server.exit_status():
            report.samples.append(_sample(server, call))
            if progress and call % (sample_every * 10) == 0:
                s = report.samples[-1]
                print(
                    f"{call:5d} calls, {time.perf_counter() - began:6.0f} s: {len(report.failures)} failed, "
                    f"RSS {s['rss_mb']:.0f} MB, gradio temp {s['gradio_mb']:.0f} MB, results {s['results_mb']:.0f} MB "
                    f"({s['folders']} folders)",
                    flush=True,
                )
    if client is not None:
        client.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="how many /accompany calls (default 1,000)")
    parser.add_argument("--models", default="rules,gan-chorale,gan-renaissance,gan-quartet", help="models to cycle through")
    parser.add_argument("--warmup", type=int, help="calls before memory is measured (default: a tenth)")
    parser.add_argument("--age-every", type=int, default=100, help="backdate the result folders every K calls (0: never)")
    parser.add_argument("--new-session-every", type=int, default=10, help="a new client session every K calls")
    parser.add_argument("--url", help="a running studio (default: start app.py)")
    parser.add_argument("--pid", type=int, help="the process id of the running studio (with --url)")
    parser.add_argument("--tmpdir", type=Path, help="its TMPDIR (with --url)")
    parser.add_argument("--gradio-temp", type=Path, help="its GRADIO_TEMP_DIR (with --url)")
    parser.add_argument(
        "--max-growth", type=float, default=0.10, help="allowed memory growth after warm-up, window median to window median (default 10%%)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the started server's temp folders and log (kept anyway if it died)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    root = None
    if args.url:
        if not args.pid:
            parser.error("--url needs --pid (the server's process, whose memory is measured)")
        server = ServerUnderTest(args.url, args.pid, args.gradio_temp or Path("/tmp/gradio"), args.tmpdir or Path(tempfile.gettempdir()))
    else:
        root = Path(tempfile.mkdtemp(prefix="studio-soak-"))
        print(f"serving app.py with its temp folders under {root}", flush=True)
        server = start_server(root)
    try:
        report = soak(
            server,
            args.requests,
            args.models.split(","),
            warmup=args.warmup,
            new_session_every=args.new_session_every,
            age_every=args.age_every,
            progress=not args.json,
        )
    finally:
        server.stop()
    summary = report.summary()
    if root is not None and not args.keep and not report.server_ended:
        shutil.rmtree(root, ignore_errors=True)  # a 1,000-call run leaves gigabytes of audio
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    ok = not report.failures and summary["rss_growth"] <= args.max_growth
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

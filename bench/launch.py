"""Launching the studio for benchmarks and tests: `app.py` served on a free loopback port, waited for
until its page answers (`bench.startup`, `bench.soak` and the tests' `server` fixture share this).

`app.py` is run as `make run` runs it, but through `runpy`, so that tooling that stops "app.py"
processes by name (a developer's `pkill -f app.py`) does not end a soak or a test session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from studio.core.config import REPO_ROOT

__all__ = ["Launched", "free_port", "launch_studio"]

LAUNCH = 'import runpy; runpy.run_path("app" + ".py", run_name="__main__")'  # "app.py" kept off the command line


def free_port() -> int:
    """A loopback port that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Launched:
    """A studio served by a child process: its URL, the process, and where its output goes."""

    url: str
    process: subprocess.Popen
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 15) -> None:
        """Terminate the server (kill it if it does not end within `timeout_s`)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _log_tail(log: Path | None, lines: int = 20) -> str:
    if log is None:
        return ""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("; its last output:\n" + "\n".join(text)) if text else ""


def launch_studio(env: Mapping[str, str] | None = None, log: Path | None = None, timeout_s: float = 120.0, poll_s: float = 0.5) -> Launched:
    """Start `app.py` on a free port of 127.0.0.1 and return once its page answers HTTP 200.

    Parameters
    ----------
    env : mapping, optional
        Variables added to this process's environment (e.g. TMPDIR, GRADIO_TEMP_DIR); the port, the
        host and `GRADIO_ANALYTICS_ENABLED=False` are set here.
    log : Path, optional
        A file for the server's output (stdout and stderr); without it the output is discarded.
    timeout_s : float, default: 120
        How long to wait for the page.
    poll_s : float, default: 0.5
        Seconds between tries (start-up timing polls more often).

    Raises
    ------
    RuntimeError
        The server exited, or did not answer within `timeout_s` (it is killed then); the message
        ends with the log's last lines when there is a log.
    """
    port = free_port()
    full_env = dict(
        os.environ,
        **(env or {}),
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    out = log.open("w") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen([sys.executable, "-c", LAUNCH], cwd=REPO_ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log is not None:
            out.close()  # the child has its own copy
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode} before serving its page{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return Launched(url, process, log)
        except OSError:
            time.sleep(poll_s)
    process.kill()
    process.wait()
    raise RuntimeError(f"the studio did not serve its page within {timeout_s:.0f} s{_log_tail(log)}")

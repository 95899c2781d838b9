"""Test set-up: every test run gets its own HOME, TMPDIR, matplotlib and Gradio folders.

The variables are set at import time, before any test module imports matplotlib or gradio.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

_RUN_DIR = Path(tempfile.mkdtemp(prefix="studio-tests-"))
for _name in ("HOME", "TMPDIR", "MPLCONFIGDIR", "GRADIO_TEMP_DIR"):
    (_RUN_DIR / _name.lower()).mkdir(exist_ok=True)
    os.environ[_name] = str(_RUN_DIR / _name.lower())
tempfile.tempdir = os.environ["TMPDIR"]
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

REPO = Path(__file__).resolve().parent.parent
TUNES = REPO / "tests" / "data" / "tunes"
sys.path.insert(0, str(REPO / "tests"))


@pytest.fixture(scope="session")
def tune_index() -> list[dict]:
    """The real test tunes (made by tests/data/make_fixtures.py) and what is known about each."""
    return json.loads((TUNES / "index.json").read_text())


@pytest.fixture(scope="session")
def tune_paths(tune_index) -> dict[str, Path]:
    return {entry["file"]: TUNES / entry["file"] for entry in tune_index}


@pytest.fixture(scope="session")
def run_dir() -> Path:
    return _RUN_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """The studio served for real by `app.py` (one server for the whole run), its URL."""
    port = _free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the studio did not start within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()

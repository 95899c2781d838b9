"""Test set-up: every test run gets its own HOME, TMPDIR, matplotlib and Gradio folders.

STUDIO_TEST_WITHOUT_FLUIDSYNTH=1 runs the tests as on a machine without FluidSynth (docs/development.md).

The variables are set at import time, before any test module imports matplotlib or gradio. The run's
folder (about 1 GB of audio, checkpoints and caches) is removed when the run ends, unless
STUDIO_KEEP_TEST_FILES is set (screenshots are kept where STUDIO_SCREENSHOTS points, if set).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_RUN_DIR = Path(tempfile.mkdtemp(prefix="studio-tests-"))
for _name in ("HOME", "TMPDIR", "MPLCONFIGDIR", "GRADIO_TEMP_DIR"):
    (_RUN_DIR / _name.lower()).mkdir(exist_ok=True)
    os.environ[_name] = str(_RUN_DIR / _name.lower())
tempfile.tempdir = os.environ["TMPDIR"]
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
# As on the CI machine, where CI is set: libraries change what they print when it is (pyfluidsynth
# prints where it found libfluidsynth), and a test run here must see what CI will see.
os.environ.setdefault("CI", "1")

from studio.serving.process import apply_process_settings  # noqa: E402 - after the run's folders are set

apply_process_settings()  # the suite runs models as the server does: OpenMP threads that sleep when idle


def pytest_unconfigure(config) -> None:
    """The run's folder goes with the run: left behind, each run kept about 1 GB in /tmp."""
    if not os.environ.get("STUDIO_KEEP_TEST_FILES"):
        shutil.rmtree(_RUN_DIR, ignore_errors=True)


REPO = Path(__file__).resolve().parent.parent
TUNES = REPO / "tests" / "data" / "tunes"
sys.path.insert(0, str(REPO / "tests"))

if os.environ.get("STUDIO_TEST_WITHOUT_FLUIDSYNTH"):
    # A run as on a machine without FluidSynth: `import fluidsynth` fails here and in every process a
    # test starts (the CLI, the served studio), so each audio check must report a skip with its reason.
    _HIDDEN = str(REPO / "tests" / "data" / "without_fluidsynth")
    sys.path.insert(0, _HIDDEN)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_HIDDEN, os.environ.get("PYTHONPATH")) if p)
    sys.modules.pop("fluidsynth", None)

from repo_guard import RepoGuard, allowed_writes  # noqa: E402 - from tests/, on the path just above

_GUARD = RepoGuard(REPO, allowed_writes())  # what the repository looked like before any test ran


@pytest.fixture(scope="module", autouse=True)
def _no_test_writes_into_the_repository(request):
    """Each test module leaves the repository as it found it (tests/repo_guard.py says how that is seen)."""
    yield
    changed = _GUARD.changes()
    if changed:
        pytest.fail(_GUARD.message(changed, f"a test of {request.module.__name__}"), pytrace=False)


def pytest_sessionfinish(session, exitstatus) -> None:
    """The last look, after the session's fixtures (the served studio) have gone: a write fails the run."""
    changed = _GUARD.changes()
    if changed:
        session.config.get_terminal_writer().line("\n" + _GUARD.message(changed, "the test run"), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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


@pytest.fixture(scope="session")
def studio_server():
    """The studio served for real by `app.py` (one server for the whole run, `bench.launch`), its
    output in the run's folder."""
    from bench.launch import launch_studio

    try:
        launched = launch_studio(log=_RUN_DIR / "server.log", timeout_s=90)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield launched
    launched.stop(timeout_s=10)


@pytest.fixture(scope="session")
def server(studio_server) -> str:
    """The served studio's URL."""
    return studio_server.url

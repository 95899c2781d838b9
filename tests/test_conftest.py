"""The test set-up itself: a run's own folder (HOME, TMPDIR, Gradio's and matplotlib's folders:
about 1 GB of audio, checkpoints and caches after the whole suite) goes when the run ends. Left
behind, hundreds of runs filled this project's disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ONE_TEST = "tests/core/test_meter.py::test_synthetic_waltz_with_one_beat_pickup"


def _run(tmp: Path, **env: str) -> list[Path]:
    """Run one quick test in a fresh pytest whose temp dir is `tmp`; the run folders left in it."""
    tmp.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "STUDIO_KEEP_TEST_FILES"} | {"TMPDIR": str(tmp)} | env
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_TEST],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(tmp.glob("studio-tests-*"))


def test_a_run_removes_its_folder_when_it_ends(tmp_path):
    assert _run(tmp_path / "plain") == []
    kept = _run(tmp_path / "kept", STUDIO_KEEP_TEST_FILES="1")  # for looking at what a run wrote
    assert len(kept) == 1 and (kept[0] / "home").is_dir()

"""The test set-up itself: a run's own folder (HOME, TMPDIR, Gradio's and matplotlib's folders:
about 1 GB of audio, checkpoints and caches after the whole suite) goes when the run ends. Left
behind, hundreds of runs filled this project's disk. And the guard that no test writes into the
repository (tests/repo_guard.py)."""

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


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def test_the_repository_guard_sees_a_write_into_the_checkpoints_and_never_the_caches(tmp_path):
    from repo_guard import RepoGuard

    repo = tmp_path / "repo"
    (repo / "models" / "checkpoints" / "splits").mkdir(parents=True)
    (repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n.ruff_cache/\n")
    card = repo / "models" / "checkpoints" / "gan-chorale.json"
    card.write_text("{}\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "start")
    guard = RepoGuard(repo, allowed=["tests/data/same_music.json"])
    for cache in (".pytest_cache/v/cache/lastfailed", "studio/__pycache__/x.cpython-311.pyc", ".ruff_cache/0.1/y"):
        (repo / cache).parent.mkdir(parents=True, exist_ok=True)
        (repo / cache).write_text("cache")
    assert guard.changes() == []
    (repo / "models" / "checkpoints" / "splits" / "folk.json").write_text("{}")  # what a training test once did
    assert guard.changes() == ["models/checkpoints/splits/folk.json"]
    card.write_text("{}\n")  # the same bytes again
    stat = card.stat()
    os.utime(card, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert guard.changes() == ["models/checkpoints/gan-chorale.json"]
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "kept")  # committed meanwhile, unchanged on disk: not a write
    assert guard.changes() == []
    (repo / "models" / "checkpoints" / "splits" / "folk.json").unlink()
    (repo / "tests" / "data").mkdir(parents=True)
    (repo / "tests" / "data" / "same_music.json").write_text("{}")  # allowed when asked for
    assert guard.changes() == ["models/checkpoints/splits/folk.json"]

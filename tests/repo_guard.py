"""Tests never write into the repository: every file git tracks and every untracked file it does not
ignore, with its size and modification time, before and after (a file rewritten with the same
bytes counts too).

A training test once wrote ``models/checkpoints/splits/folk.json``; a write like that changes what
the shipped models read and passes unnoticed. The run's own caches (``.pytest_cache``,
``__pycache__``, ``.ruff_cache``) are ignored by git, so they never count. ``tests/conftest.py``
checks after each test module and at the end of the run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

__all__ = ["RepoGuard", "allowed_writes", "listed_files"]

Stat = tuple[int, int] | None  # (size, mtime in ns), None: no such file


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True, timeout=60).stdout.decode("utf-8", "surrogateescape")


def listed_files(repo: Path) -> list[str] | None:
    """Paths (relative to `repo`) of the files git tracks and of the untracked files it does not
    ignore (``git ls-files`` and ``git status``); None where git cannot say (not a checkout, no git)."""
    try:
        tracked = _git(repo, "ls-files", "-z")
        status = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    except (OSError, subprocess.SubprocessError):
        return None
    paths, fields = tracked.split("\0"), iter(status.split("\0"))
    for entry in fields:
        if not entry:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy: the next field is where it came from
            paths.append(next(fields, ""))
    return sorted({p for p in paths if p})


def _stat(path: Path) -> Stat:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class RepoGuard:
    """What the repository looked like; `changes` says which files differ since (and looks again)."""

    def __init__(self, repo: Path, allowed: Iterable[str] = ()) -> None:
        self.repo = repo
        self.allowed = set(allowed)
        self.state = self._look()

    def _look(self) -> dict[str, Stat] | None:
        listed = listed_files(self.repo)
        return None if listed is None else {p: _stat(self.repo / p) for p in listed}

    def changes(self) -> list[str]:
        """Files written, added or removed since the last look (a file committed meanwhile, unchanged
        on disk, is not a change), except the `allowed` ones."""
        before, now = self.state, self._look()
        self.state = now
        if before is None or now is None:
            return []
        changed = {p for p in now if p not in before or now[p] != before[p]}
        changed |= {p for p in before if p not in now and _stat(self.repo / p) != before[p]}
        return sorted(changed - self.allowed)

    def message(self, changed: list[str], where: str) -> str:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        return (
            f"{where} wrote into the repository ({self.repo}): {shown}. Tests write under tmp_path or the run's "
            "folder; restore these files (git checkout / git clean) after fixing the test"
        )


def allowed_writes() -> set[str]:
    """Files a test may write when asked to: the pinned same-music record with STUDIO_RECORD_SAME_MUSIC set."""
    return {"tests/data/same_music.json"} if os.environ.get("STUDIO_RECORD_SAME_MUSIC") else set()

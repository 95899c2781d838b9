"""The server's allocator setting (`studio.allocator`): set on Linux with glibc, left alone elsewhere
and when the operator already chose a threshold."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from studio import allocator

REPO = Path(__file__).resolve().parent.parent
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _set_in_a_fresh_process(**env: str) -> str:
    code = "from studio.allocator import bound_heap_growth; print(bound_heap_growth())"
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env={**clean, **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_the_mmap_threshold_is_fixed_on_glibc():
    assert _set_in_a_fresh_process() == "True"


def test_an_operators_threshold_is_left_alone():
    assert _set_in_a_fresh_process(MALLOC_MMAP_THRESHOLD_="262144") == "False"


@pytest.mark.parametrize(("system", "libc"), [("Darwin", ("", "")), ("Windows", ("", "")), ("Linux", ("", ""))])
def test_other_platforms_and_c_libraries_are_left_alone(system, libc, monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: libc)
    assert allocator.bound_heap_growth() is False


def test_the_server_sets_it_before_building_the_page():
    source = (REPO / "app.py").read_text()
    assert source.index("bound_heap_growth()") < source.index("from studio.ui import")

"""The server's allocator settings (`studio.serving.allocator`): set on Linux with glibc, left alone elsewhere
and when the operator already chose a threshold."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from studio.serving import allocator

REPO = Path(__file__).resolve().parents[2]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _in_a_fresh_process(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env={**clean, **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


SET_IT = "from studio.serving.allocator import bound_heap_growth; print(bound_heap_growth())"


@pytest.mark.skipif(not GLIBC, reason="mallopt and malloc_trim are glibc's")
def test_the_mmap_threshold_is_fixed_and_the_heap_trimmed_on_glibc():
    assert allocator.MMAP_THRESHOLD_BYTES >= 4 * 2**20  # above the models' temporaries: no page faults per tensor
    assert _in_a_fresh_process(SET_IT) == "True"
    code = (
        "import ctypes, threading; from studio.serving import allocator\n"
        "calls = []\n"
        "class Libc:\n    def __init__(self):\n        self.malloc_trim = lambda pad: calls.append(pad) or 1\n"
        "allocator._glibc = lambda: Libc()\n"
        "thread = allocator.start_heap_trimmer(0.01)\n"
        "import time; time.sleep(0.5)\n"
        "print(thread.daemon, thread.name, len(calls) >= 3, set(calls))\n"
    )
    assert _in_a_fresh_process(code) == "True heap-trimmer True {0}"
    assert (
        _in_a_fresh_process("from studio.serving.allocator import start_heap_trimmer; print(start_heap_trimmer(60).is_alive())") == "True"
    )


def test_an_operators_threshold_is_left_alone():
    assert _in_a_fresh_process(SET_IT, MALLOC_MMAP_THRESHOLD_="262144") == "False"


@pytest.mark.parametrize(("system", "libc"), [("Darwin", ("", "")), ("Windows", ("", "")), ("Linux", ("", ""))])
def test_other_platforms_and_c_libraries_are_left_alone(system, libc, monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: libc)
    assert allocator.bound_heap_growth() is False
    assert allocator.start_heap_trimmer() is None


def test_the_server_sets_them_before_building_the_page():
    source = (REPO / "app.py").read_text()
    assert source.index("bound_heap_growth()") < source.index("from studio.ui.page import")
    assert source.index("start_heap_trimmer()") < source.index(".launch(")

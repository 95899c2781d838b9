"""Process-wide settings, made by `app.py` and the CLI (not by importing the package) before torch loads:
torch's OpenMP threads sleep when idle (OMP_WAIT_POLICY=PASSIVE) and the GIL changes hands after 1 ms
rather than 5 ms; settings the environment or the embedding program chose are kept."""

from __future__ import annotations

import os
import subprocess
import sys

from studio.core.config import REPO_ROOT

SHOW = "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules, sys.getswitchinterval())"
APPLY = "from studio.serving.process import apply_process_settings; apply_process_settings(); "


def _probe(code: str, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | extra
    return subprocess.run(
        [sys.executable, "-c", "import os, sys, studio; " + code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_importing_the_studio_changes_nothing_in_the_process():
    assert _probe(SHOW) == "None False 0.005"


def test_the_settings_make_a_passive_wait_policy_and_a_short_switch_interval_before_torch_loads():
    assert _probe(APPLY + SHOW) == "PASSIVE False 0.001"


def test_settings_chosen_before_are_kept():
    assert _probe(APPLY + SHOW, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False 0.001"
    assert _probe("sys.setswitchinterval(0.002); " + APPLY + SHOW) == "PASSIVE False 0.002"


def test_the_server_and_the_cli_make_the_settings_first():
    app = (REPO_ROOT / "app.py").read_text()
    assert app.index("apply_process_settings()") < app.index("from studio.ui.page import")
    assert "apply_process_settings()" in (REPO_ROOT / "studio" / "cli.py").read_text()

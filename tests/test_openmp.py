"""The studio makes torch's OpenMP threads sleep when idle (OMP_WAIT_POLICY=PASSIVE), before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

from studio.config import REPO_ROOT

PROBE = "import os, sys, studio; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"


def _probe(**extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | extra
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_studio_sets_a_passive_wait_policy_before_torch_loads():
    assert _probe() == "PASSIVE False"


def test_a_policy_in_the_environment_is_kept():
    assert _probe(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"

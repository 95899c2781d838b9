"""What importing the studio sets for the whole process, before torch loads: torch's OpenMP threads
sleep when idle (OMP_WAIT_POLICY=PASSIVE) and the GIL changes hands after 1 ms rather than 5 ms;
settings the environment or the embedding program chose are kept."""

from __future__ import annotations

import os
import subprocess
import sys

from studio.config import REPO_ROOT

PROBE = "import os, sys, studio; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules, sys.getswitchinterval())"


def _probe(code: str = PROBE, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | extra
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_studio_sets_a_passive_wait_policy_and_a_short_switch_interval_before_torch_loads():
    assert _probe() == "PASSIVE False 0.001"


def test_settings_chosen_before_are_kept():
    assert _probe(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False 0.001"
    assert _probe("import sys; sys.setswitchinterval(0.002); " + PROBE.replace("import os, sys, studio; ", "import os, studio; ")) == "PASSIVE False 0.002"

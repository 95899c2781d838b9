"""Loading (issue 9, item 6, without the web server): seconds from a fresh Python process to the
first 16-bar answer of each shipped model, and the memory it holds with every model loaded, on a
device (`cpu` or `cuda`). `bench.startup` measures the same through the whole app; this one runs
where Gradio and FluidSynth are not installed (a GPU machine) and reports the GPU's own memory.

Run: `python -m bench.loading [--device cuda] [--json]` (the measuring happens in a child process).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from studio.core.config import REPO_ROOT

__all__ = ["bench_loading"]


def _child(device: str | None) -> dict[str, Any]:
    """In the fresh process: import, load every model, answer 16 bars with each; times from the start."""
    start = time.perf_counter()
    import psutil

    from bench.models import _roll_of_bars
    from studio.serving.registry import ModelRegistry

    registry = ModelRegistry(device=device)
    roll, grid = _roll_of_bars(16)
    first: dict[str, float] = {}
    names = [c.name for c in registry.cards() if not c.disabled]
    for name in names:
        registry.generate(name, roll, grid, {}, 0)
        first[name] = round(time.perf_counter() - start, 2)
    out: dict[str, Any] = {
        "device": registry.device,
        "models": names,
        "first_answer_s": first[names[0]] if names else None,
        "all_models_answered_s": round(time.perf_counter() - start, 2),
        "answered_at_s": first,
        "rss_all_models_mb": round(psutil.Process().memory_info().rss / 2**20),
    }
    if registry.device.startswith("cuda"):
        import torch

        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpu_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20)
        out["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return out


def bench_loading(device: str | None = None, timeout_s: float = 300.0) -> dict[str, Any]:
    """Run `_child` in a fresh interpreter (so imports and loads are counted) and return its report."""
    command = [sys.executable, "-m", "bench.loading", "--child"] + (["--device", device] if device else [])
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"bench.loading child failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["process_s"] = round(time.perf_counter() - start, 2)  # with the interpreter's own start
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is a GPU)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.device)))
        return
    report = bench_loading(args.device)
    print(json.dumps(report, indent=2) if args.json else format_loading(report))


def format_loading(report: dict[str, Any]) -> str:
    """One line for the suite's table."""
    gpu = f", GPU memory {report['gpu_allocated_mb']} MB (peak {report['gpu_peak_mb']} MB)" if "gpu_allocated_mb" in report else ""
    return (
        f"loading on {report['device']}: first answer {report['first_answer_s']} s after import, all {len(report['models'])} models "
        f"answered after {report['all_models_answered_s']} s ({report['process_s']} s with the interpreter's start); "
        f"resident memory {report['rss_all_models_mb']} MB{gpu}"
    )


if __name__ == "__main__":
    main()

"""torch's intra-op threads for the studio's models on a CPU: one thread per model call (what the
registry sets, `studio.serving.registry._one_torch_thread_on_cpu`) against as many as the machine
has cores, side by side.

Each setting runs in a process of its own (`OMP_NUM_THREADS`, which the registry keeps), with the
process settings of the server and the command (`studio.serving.process`: OpenMP threads that
sleep when idle); the settings alternate, `--rounds` times. In each process every model answers
the same melodies, 16 bars of a real tune and 64 bars of it, through the registry as a request
runs it (its own model thread, batching off), warm, median of `--repeats` calls.

Run: `python -m bench.torch_threads [--rounds 2] [--repeats 3] [--models diffusion-chorale,arcnn-chorale]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

__all__ = ["bench_torch_threads"]

DEFAULT_MODELS = ("diffusion-chorale", "arcnn-chorale", "transformer-folk", "gan-chorale", "vae-folk")
BARS = (16, 64)


def _measure(models: list[str], repeats: int) -> dict[str, float]:
    """In this process: median seconds of each model's call on each melody length (worker mode)."""
    from bench.models import _roll_of_bars
    from studio.serving.batching import BatchConfig
    from studio.serving.process import apply_process_settings
    from studio.serving.registry import ModelRegistry

    apply_process_settings()
    registry = ModelRegistry(device="cpu", batching=BatchConfig(window_s=0.0))
    available = {c.name for c in registry.cards() if not c.disabled}
    out: dict[str, float] = {}
    for bars in BARS:
        roll, grid = _roll_of_bars(bars)
        for name in models:
            if name not in available:
                continue
            registry.generate(name, roll, grid, {}, 0, limit_length=False)  # load and warm up
            times = []
            for seed in range(repeats):
                start = time.perf_counter()
                registry.generate(name, roll, grid, {}, seed, limit_length=False)
                times.append(time.perf_counter() - start)
            out[f"{name} {bars} bars"] = statistics.median(times)
    import torch  # loaded by the models above

    out["threads"] = torch.get_num_threads()
    return out


def bench_torch_threads(models: tuple[str, ...] = DEFAULT_MODELS, rounds: int = 2, repeats: int = 3) -> dict[str, Any]:
    """Per model and length: the seconds of each round with one thread and with all cores."""
    cores = os.cpu_count() or 1
    settings = {"one thread": "1", f"{cores} threads": str(cores)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, threads in settings.items():
            env = {**os.environ, "OMP_NUM_THREADS": threads}
            done = subprocess.run(
                [sys.executable, "-m", "bench.torch_threads", "--worker", ",".join(models), "--repeats", str(repeats)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    keys = [k for k in runs["one thread"][0] if k != "threads"]
    return {
        "cores": cores,
        "threads": {name: rows[0]["threads"] for name, rows in runs.items()},
        "seconds": {key: {name: [round(r[key], 3) for r in rows] for name, rows in runs.items()} for key in keys},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", metavar="MODELS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_measure(args.worker.split(","), args.repeats)))
        return
    result = bench_torch_threads(tuple(args.models.split(",")), args.rounds, args.repeats)
    print(f"{result['cores']} cores; torch threads per setting: {result['threads']}")
    for key, row in result["seconds"].items():
        print(f"{key}: " + "; ".join(f"{name} {', '.join(f'{s:.2f}' for s in times)} s" for name, times in row.items()))


if __name__ == "__main__":
    main()

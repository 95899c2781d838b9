"""Model calls in kept threads vs a fresh thread per call (the registry's `_Workers`), side by side.

PyTorch keeps per-thread CUDA state (cuBLAS and cuDNN handles, the current stream), so on a GPU a
fresh thread per call pays for setting it up each time; on a CPU a thread costs microseconds.
Each model answers the same 16-bar melody, one request after another, with batching off so that
every call goes through the registry's own threads; the two ways alternate, medians are reported.

Run: `python -m bench.model_threads [--device cuda] [--repeats 20]`.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from bench.models import _roll_of_bars
from studio.serving import registry as registry_module
from studio.serving.batching import BatchConfig
from studio.serving.registry import ModelRegistry

__all__ = ["bench_model_threads"]


def _fresh_thread(call) -> None:
    threading.Thread(target=call.run, daemon=True).start()


def bench_model_threads(
    device: str | None = None, repeats: int = 20, models: tuple[str, ...] = ("gan-chorale", "vae-folk", "transformer-folk")
) -> dict[str, Any]:
    """Median seconds per 16-bar request with kept threads and with a fresh thread per call."""
    registry = ModelRegistry(device=device, batching=BatchConfig(window_s=0.0))
    roll, grid = _roll_of_bars(16)
    kept_run = registry_module._WORKERS.run
    out: dict[str, Any] = {"device": registry.device}
    for name in models:
        if name not in {c.name for c in registry.cards() if not c.disabled}:
            continue
        registry.generate(name, roll, grid, {}, 0)  # load and warm up
        times: dict[str, list[float]] = {"kept": [], "fresh": []}
        for i in range(repeats):
            for way in ("kept", "fresh"):
                registry_module._WORKERS.run = kept_run if way == "kept" else _fresh_thread
                try:
                    start = time.perf_counter()
                    registry.generate(name, roll, grid, {}, i)
                    times[way].append(time.perf_counter() - start)
                finally:
                    registry_module._WORKERS.run = kept_run
        kept, fresh = statistics.median(times["kept"]), statistics.median(times["fresh"])
        out[name] = {"kept_thread_s": round(kept, 4), "fresh_thread_s": round(fresh, 4), "fresh_over_kept": round(fresh / kept, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    result = bench_model_threads(args.device, args.repeats)
    print(f"device {result.pop('device')}")
    for name, row in result.items():
        print(
            f"{name}: kept thread {row['kept_thread_s']:.4f} s, fresh thread {row['fresh_thread_s']:.4f} s per 16-bar request "
            f"(x{row['fresh_over_kept']})"
        )


if __name__ == "__main__":
    main()

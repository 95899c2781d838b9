"""Registry batching (issue 9, item 4): 16 simultaneous requests through the registry vs the same 16
one after another, for each model that batches (`generate_batch`); throughput ratio, side by side.

Also reported: the same 16 at once with batching switched off (threads only), which separates
what batching gives from what mere concurrency gives; and what bounds the ratio on this machine:
the forward pass's GFLOP per request, the machine's own rate on a large matrix product measured in
the same run (what a perfectly batched pass could reach at most), the ratio that rate would give
(`compute_bound_ratio`: sequential time / the time of the 16 requests' GFLOP at that rate), and the
share of the batched time spent outside the forward pass (per-request work: conditioning features,
random inputs, sampling with each request's own generator, thread hand-offs).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.models import melody_of_bars
from models.base import BatchGenerator
from studio.core.meter import estimate_pickup
from studio.core.roll import make_grid, notes_to_roll
from studio.serving.batching import BatchConfig
from studio.serving.registry import ModelRegistry

__all__ = ["bench_batching"]


def _together(registry: ModelRegistry, name: str, requests: list) -> float:
    start_line = threading.Barrier(len(requests) + 1)

    def ask(roll, grid, seed):
        start_line.wait()
        registry.generate(name, roll, grid, {}, seed)

    threads = [threading.Thread(target=ask, args=r) for r in requests]
    for t in threads:
        t.start()
    start_line.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _one_by_one(registry: ModelRegistry, name: str, requests: list) -> float:
    start = time.perf_counter()
    for roll, grid, seed in requests:
        registry.generate(name, roll, grid, {}, seed)
    return time.perf_counter() - start


def _forward_gflop(model, roll, grid) -> float:
    """GFLOP of one request's forward pass (torch's own count)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.generate_batch([(roll, grid, {}, 0)])
    return counter.get_total_flops() / 1e9


def _matmul_gflops(device: str = "cpu", size: int = 1024, repeats: int = 7) -> float:
    """This device's rate on a large float32 matrix product (the CPU: torch's threads), best of `repeats`."""
    import torch

    cuda = device.startswith("cuda")
    size = 4096 if cuda else size  # a GPU needs a larger product to reach its rate
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first product warms the kernels up
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if cuda:
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


class _ForwardClock:
    """Seconds spent in a model's forward pass (`generator`), while installed."""

    def __init__(self, model) -> None:
        self.model, self.seconds = model, 0.0

    def __enter__(self) -> _ForwardClock:
        import torch

        forward = self.model.generator.forward

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                out = forward(*args, **kwargs)
                if out.is_cuda:  # a GPU returns before it has finished
                    torch.cuda.synchronize(out.device)
                return out
            finally:
                self.seconds += time.perf_counter() - start

        self.model.generator.forward = timed
        return self

    def __exit__(self, *exc) -> None:
        del self.model.generator.forward


def bench_batching(n: int = 16, bars: int = 16, repeats: int = 3, device: str | None = None) -> dict[str, Any]:
    """Throughput of `n` simultaneous requests (16 bars each, different seeds) vs `n` sequential ones,
    on `device` (default: the registry's, CUDA when there is a GPU)."""
    score = melody_of_bars(bars)
    notes = score.tracks[0].notes
    grid = make_grid(score, estimate_pickup(notes, score))
    roll = notes_to_roll(notes, grid, "Melody", 0)
    requests = [(roll, grid, seed) for seed in range(n)]
    batched = ModelRegistry(device=device, batching=BatchConfig(window_s=0.01, max_batch=n))
    unbatched = ModelRegistry(device=device, batching=BatchConfig(window_s=0.0))
    out: dict[str, Any] = {}
    for card in batched.cards():
        if card.disabled or not isinstance(batched.get(card.name), BatchGenerator):
            continue
        unbatched.get(card.name)
        _one_by_one(unbatched, card.name, requests[:2])  # warm-up
        _together(batched, card.name, requests)
        seq, bat, thr = [], [], []
        for _ in range(repeats):  # interleaved, so machine noise hits all alike
            seq.append(_one_by_one(unbatched, card.name, requests))  # the plain path: no batching window
            bat.append(_together(batched, card.name, requests))
            thr.append(_together(unbatched, card.name, requests))
        s, b, t = min(seq), min(bat), min(thr)
        model = batched.get(card.name)
        inside = []
        for _ in range(repeats):  # the batched run once more, its forward pass timed
            with _ForwardClock(model) as clock:
                whole = _together(batched, card.name, requests)
            inside.append((whole, clock.seconds))
        whole, forward = min(inside)
        gflop, peak = _forward_gflop(model, roll, grid), _matmul_gflops(batched.device)
        out[card.name] = {
            "requests": n,
            "bars": bars,
            "sequential_s": round(s, 4),
            "batched_s": round(b, 4),
            "threads_only_s": round(t, 4),
            "throughput_ratio": round(s / b, 2),
            "threads_only_ratio": round(s / t, 2),
            "largest_batch": max(batched.batcher.batch_sizes, default=1),
            "gflop_per_request": round(gflop, 3),
            "matmul_gflops": round(peak, 1),
            "sequential_gflops": round(n * gflop / s, 1),
            "batched_gflops": round(n * gflop / b, 1),
            "compute_bound_ratio": round(s / (n * gflop / peak), 2),
            "outside_forward_share": round(1 - forward / whole, 3),
        }
    return out


if __name__ == "__main__":
    for name, row in bench_batching().items():
        print(name, row)

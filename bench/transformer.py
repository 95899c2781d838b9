"""Transformer benchmarks (issue 7): the KV cache against recomputing the whole context for 512
events, and the time to add 8 bars to a tune (bound: 1 s on CPU), measured side by side in one run."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from bench.models import melody_of_bars
from studio.core.meter import estimate_pickup
from studio.core.roll import make_grid, notes_to_roll
from studio.serving.registry import ModelRegistry

__all__ = ["bench_transformer"]


@torch.inference_mode()
def _decode(network: torch.nn.Module, n_events: int, use_cache: bool) -> float:
    """Seconds to write `n_events` events one by one (greedy), with the cache or re-reading the context each time."""
    device = next(network.parameters()).device
    seq = torch.tensor([[1]], device=device)  # BOS
    cache = None
    start = time.perf_counter()
    for _ in range(n_events - 1):
        if use_cache:
            logits, cache = network(seq[:, -1:] if cache is not None else seq, cache)
        else:
            logits, _ = network(seq)
        seq = torch.cat([seq, logits[:, -1:].argmax(-1)], dim=1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the GPU runs behind the Python loop
    return time.perf_counter() - start


def bench_transformer(repeats: int = 3, events: int = 512, device: str | None = None) -> dict[str, Any]:
    """Per Transformer model: cache vs no cache for `events` events (interleaved runs, medians), and
    8 bars added after 8 bars of a real tune (Yankee Doodle, 2/4), on `device` (default: the registry's)."""
    registry = ModelRegistry(device=device)
    out: dict[str, Any] = {}
    score = melody_of_bars(8)
    notes = score.tracks[0].notes
    grid = make_grid(score, estimate_pickup(notes, score))
    roll = notes_to_roll(notes, grid, "Melody", 0)
    for card in registry.cards():
        if card.disabled or card.family != "transformer":
            continue
        model = registry.get(card.name)
        n = min(events, model.config.block_size)
        cached, full = [], []
        _decode(model.network, 16, True)  # warm-up
        for i in range(repeats):  # interleaved; the slow pass (tens of seconds) once
            cached.append(_decode(model.network, n, True))
            if i == repeats // 2:
                full.append(_decode(model.network, n, False))
        params = {"bars": 8}
        registry.generate(card.name, roll, grid, params, 0)  # warm-up
        adding = []
        for seed in range(repeats):
            start = time.perf_counter()
            registry.generate(card.name, roll, grid, params, seed)
            adding.append(time.perf_counter() - start)
        c, f = statistics.median(cached), statistics.median(full)
        out[card.name] = {
            "events": n,
            "with_cache_s": round(c, 3),
            "without_cache_s": round(f, 3),
            "cache_speedup": round(f / c, 2),
            "speedup_bound": 3.0,
            "add_8_bars_s": round(statistics.median(adding), 3),
            "add_8_bars_bound_s": 1.0,
        }
    return out

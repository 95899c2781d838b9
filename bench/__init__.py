"""Benchmarks for `python -m studio bench`; each reports ratios measured side by side in one run."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, TextIO

__all__ = ["DEFAULT_STEPS", "STEPS", "run_all"]


STEPS = (
    "synthesis",
    "models",
    "sampling",
    "transformer",
    "batching",
    "loading",
    "startup",
    "classroom",
    "burst",
    "overhead",
    "regeneration",
    "loudness",
    "long",
    "answer",
)
"""The suite's benchmarks in the order they run. `loading`, the web server-less twin of `startup`,
runs only when asked for (`--only`): the GPU machine has no Gradio or FluidSynth. So do `loudness`
(every shipped model on every sample melody, measured: minutes), `long` (takes of 1 and 4
minutes through the command, each in a process of its own) and `answer` (the heaviest and the
hostile files through six models, by the command and the server: minutes)."""

DEFAULT_STEPS = tuple(s for s in STEPS if s not in ("loading", "loudness", "long", "answer"))


def run_all(
    quick: bool = False, only: tuple[str, ...] | None = None, device: str | None = None, out: TextIO | None = None
) -> dict[str, Any]:
    """Run the benchmarks in `only` (default: `DEFAULT_STEPS`), print a table as each finishes to
    `out` (default: standard output; `studio bench --json` passes standard error, so that its
    standard output is the JSON alone), and return all results. `device` (cpu or cuda) is where
    the models run (default: CUDA when there is a GPU)."""
    out = out or sys.stdout
    from studio.core.errors import InputError

    steps = only or DEFAULT_STEPS
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise InputError(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(STEPS)}")
    from bench.models import bench_models, bench_overhead, bench_sampling

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()}}
    if device:
        results["machine"]["device"] = device
    print(f"machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}", file=out, flush=True)

    if "synthesis" in steps:
        from bench.synth import _table, bench_synthesis

        results["synthesis"] = bench_synthesis(repeats=1 if quick else 3, minutes=1.0 if quick else 5.0)
        print(_table(results["synthesis"]), file=out, flush=True)

    if "models" in steps:
        results["models"] = bench_models(repeats=2 if quick else 5, device=device)
        for name, row in results["models"].items():
            print(
                f"model {name}: 4 bars {row['4_bars_s']:.4f} s, 16 bars {row['16_bars_s']:.4f} s, 64 bars {row['64_bars_s']:.4f} s, "
                f"growth 64/16 = {row['growth_64_over_16']}",
                file=out,
                flush=True,
            )

    if "sampling" in steps:
        results["sampling"] = bench_sampling(repeats=1 if quick else 3, device=device)
        for name, row in results["sampling"].items():
            if "ddim_steps" in row:
                print(
                    f"model {name}: {row['ddim_steps']} DDIM steps (guidance {row['guidance']}) on {row['steps']} steps (16 bars of 4/4), "
                    f"3 voices: {row['seconds']:.3f} s (bound {row['bound_s']} s)",
                    file=out,
                    flush=True,
                )
            else:
                print(
                    f"model {name}: {row['iterations']} Gibbs iterations on {row['steps']} steps (8 bars of 4/4), 4 voices: "
                    f"{row['seconds']:.3f} s (bound {row['bound_s']} s)",
                    file=out,
                    flush=True,
                )

    if "transformer" in steps:
        from bench.transformer import bench_transformer

        results["transformer"] = bench_transformer(repeats=1 if quick else 3, device=device)
        for name, row in results["transformer"].items():
            print(
                f"model {name}: {row['events']} events with the KV cache {row['with_cache_s']:.3f} s, without {row['without_cache_s']:.3f} s: "
                f"x{row['cache_speedup']} (bound x3); 8 bars added in {row['add_8_bars_s']:.3f} s (bound 1 s)",
                file=out,
                flush=True,
            )

    if "batching" in steps:
        from bench.batching import bench_batching

        results["batching"] = bench_batching(repeats=1 if quick else 3, device=device)
        for name, row in results["batching"].items():
            print(
                f"batching {name}: {row['requests']} requests of {row['bars']} bars at once {row['batched_s']:.3f} s vs one by one "
                f"{row['sequential_s']:.3f} s: throughput x{row['throughput_ratio']} (threads alone x{row['threads_only_ratio']}); "
                f"{row['gflop_per_request']} GFLOP a request: {row['sequential_gflops']} GFLOP/s one by one, {row['batched_gflops']} batched, "
                f"device's matmul {row['matmul_gflops']} (x{row['compute_bound_ratio']} at most); "
                f"{row['outside_forward_share']:.0%} of the batched time outside the forward pass",
                file=out,
                flush=True,
            )

    if "loading" in steps:
        from bench.loading import bench_loading, format_loading

        results["loading"] = bench_loading(device)
        print(format_loading(results["loading"]), file=out, flush=True)

    if "startup" in steps:
        from bench.startup import bench_startup

        results["startup"] = bench_startup()
        st = results["startup"]
        print(
            f"start-up: first /accompany answer {st['first_answer_s']} s after launch (bound 10 s); memory with "
            f"{len(st['models'])} models loaded {st['rss_all_models_mb']} MB (bound 1536 MB)",
            file=out,
            flush=True,
        )

    if "classroom" in steps:
        from bench.classroom import classroom, format_classroom

        results["classroom"] = classroom(sessions=6 if quick else 30, requests_each=2)
        print(format_classroom(results["classroom"]), file=out, flush=True)

    if "burst" in steps:
        from bench.burst import burst, format_burst

        results["burst"] = burst(others=4 if quick else 10, each=2 if quick else 3, long_requests=10 if quick else 40)
        print(format_burst(results["burst"]), file=out, flush=True)

    if "overhead" in steps:
        results["overhead"] = bench_overhead(repeats=1 if quick else 3)
        o = results["overhead"]
        print(
            f"request overhead (16 bars): whole request {o['request_s']:.3f} s / synth alone {o['synth_alone_s']:.3f} s = {o['overhead_ratio']}",
            file=out,
            flush=True,
        )

    if "regeneration" in steps:
        from bench.regeneration import bench_regeneration, format_regeneration

        results["regeneration"] = bench_regeneration(repeats=2 if quick else 5, device=device)
        print(format_regeneration(results["regeneration"]), file=out, flush=True)

    if "loudness" in steps:
        from bench.loudness import bench_loudness, format_loudness

        results["loudness"] = bench_loudness(tunes=3 if quick else None, repeats=3 if quick else 7)
        print(format_loudness(results["loudness"]), file=out, flush=True)
    if "long" in steps:
        from bench.long_take import bench_long_take, format_long_take

        results["long"] = bench_long_take(repeats=1 if quick else 2)
        print(format_long_take(results["long"]), file=out, flush=True)
    if "answer" in steps:
        from bench.answer_time import bench_answer_time, format_answer_time

        results["answer"] = bench_answer_time(repeats=1 if quick else 2)
        print(format_answer_time(results["answer"]), file=out, flush=True)
    return results

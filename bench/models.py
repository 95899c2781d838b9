"""Model and request benchmarks: inference time per model for 4, 16 and 64 bars (and the 64/16
growth ratio), and the whole-request overhead (parse, model, MIDI, plot, synth) / synth alone."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from studio.core.config import REPO_ROOT
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.midi import read_midi, write_midi
from studio.core.roll import make_grid, notes_to_roll
from studio.core.score import Note, Score, Track
from studio.serving.registry import ModelRegistry

__all__ = ["bench_models", "bench_overhead", "melody_of_bars"]

SOURCE_TUNE = REPO_ROOT / "assets" / "melodies" / "yankee_doodle.mid"


def melody_of_bars(bars: int) -> Score:
    """A real tune (Yankee Doodle, 2/4) repeated or cut to `bars` bars, as a one-track Score."""
    score = read_midi(SOURCE_TUNE).score
    melody = extract_melody(score).track.notes
    bar = score.time_signatures[0].bar_ticks(score.ticks_per_beat)
    length = bars * bar
    span = -(-max(n.end for n in melody) // bar) * bar
    notes: list[Note] = []
    offset = 0
    while offset < length:
        notes += [Note(n.start + offset, min(n.end + offset, length), n.pitch, n.velocity) for n in melody if n.start + offset < length]
        offset += span
    return Score(score.ticks_per_beat, [Track("Melody", 0, notes=notes)], score.tempos[:1], score.time_signatures[:1])


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_models(repeats: int = 5, device: str | None = None) -> dict[str, Any]:
    """Model time (registry.generate, warm) for 4, 16 and 64 bars, per available model, on `device`
    (default: the registry's, CUDA when there is a GPU)."""
    registry = ModelRegistry(device=device)
    out: dict[str, Any] = {}
    for card in registry.cards():
        if card.disabled:
            continue
        times = {}
        for bars in (4, 16, 64):
            score = melody_of_bars(bars)
            notes = score.tracks[0].notes
            grid = make_grid(score, estimate_pickup(notes, score))
            roll = notes_to_roll(notes, grid, "Melody", 0)
            registry.generate(card.name, roll, grid, {}, 0)  # warm-up (and first load)
            times[bars] = _median_time(lambda r=roll, g=grid, n=card.name: registry.generate(n, r, g, {}, 0), repeats)
        out[card.name] = {f"{b}_bars_s": round(t, 4) for b, t in times.items()} | {"growth_64_over_16": round(times[64] / times[16], 2)}
    return out


def bench_overhead(repeats: int = 3) -> dict[str, Any]:
    """Whole request for 16 bars through `accompany` vs rendering its output MIDI alone."""
    from studio.audio.synth import render_midi
    from studio.serving.service import AccompanyRequest, accompany

    data = write_midi(melody_of_bars(16))
    with tempfile.TemporaryDirectory() as tmp:
        result = accompany(AccompanyRequest(data, out_dir=tmp))  # warm: soundfont, imports, model
        midi_out = Path(result.midi_path).read_bytes()
        whole, synth_only = [], []
        for _ in range(repeats):  # interleaved, so machine noise hits both alike
            start = time.perf_counter()
            accompany(AccompanyRequest(data, out_dir=tmp))
            whole.append(time.perf_counter() - start)
            start = time.perf_counter()
            render_midi(midi_out)
            synth_only.append(time.perf_counter() - start)
    w, s = statistics.median(whole), statistics.median(synth_only)
    return {"request_s": round(w, 4), "synth_alone_s": round(s, 4), "overhead_ratio": round(w / s, 3), "bars": 16}


def _roll_of_bars(bars: int):
    score = melody_of_bars(bars)
    notes = score.tracks[0].notes
    grid = make_grid(score, estimate_pickup(notes, score))
    return notes_to_roll(notes, grid, "Melody", 0), grid


def bench_sampling(repeats: int = 3, iterations: int = 100, ddim_steps: int = 50, device: str | None = None) -> dict[str, Any]:
    """Models that write by iterative sampling, each on its issue's own measure (model time, warm):

    - Gibbs sampling (the AR-CNN): 8 bars of 4/4 (128 steps, the melody plus three voices) with
      `iterations` sampling iterations (issue 6: <= 3 s on CPU);
    - DDIM (diffusion): 16 bars of 4/4 (256 steps: 32 bars of the 2/4 tune) with `ddim_steps` denoising
      steps and the card's default guidance (issue 8: <= 3 s on CPU)."""
    registry = ModelRegistry(device=device)
    out: dict[str, Any] = {}
    gibbs = _roll_of_bars(16)  # 16 bars of 2/4 = 128 sixteenths = 8 bars of 4/4
    ddim = _roll_of_bars(32)  # 32 bars of 2/4 = 256 sixteenths = 16 bars of 4/4
    for card in registry.cards():
        if card.disabled or card.family not in ("arcnn", "diffusion"):
            continue
        roll, grid = gibbs if card.family == "arcnn" else ddim
        params = {"iterations": iterations} if card.family == "arcnn" else {"steps": ddim_steps}
        registry.generate(card.name, roll, grid, params, 0)  # warm-up (and first load)
        seconds = _median_time(lambda n=card.name, p=params, r=roll, g=grid: registry.generate(n, r, g, p, 0), repeats)
        row = {"steps": grid.n_steps, "seconds": round(seconds, 3), "bound_s": 3.0}
        if card.family == "arcnn":
            row["iterations"] = iterations
        else:
            row["ddim_steps"] = ddim_steps
            row["guidance"] = card.resolve_params(params)["guidance"]
        out[card.name] = row
    return out

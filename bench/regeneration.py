"""Regeneration benchmark: writing 2 bars of a 16-bar take again vs generating the whole take, per
accompanist, side by side in one run (interleaved repeats, medians). Target: ratio <= 1.0.

Measured twice: through the service (`regenerate` vs `accompany`, MIDI only: parse, model, splice,
write; the audio, the same for both, left out) and the model alone (its `regenerate` vs `generate`
through the registry)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from studio.core.config import REPO_ROOT
from studio.core.midi import read_midi, write_midi
from studio.core.score import Note, Score, Track
from studio.serving.registry import ModelRegistry, family_info
from studio.serving.service import AccompanyRequest, accompany, read_melody

__all__ = ["bench_regeneration", "format_regeneration", "tune_of_bars"]

SOURCE_TUNE = REPO_ROOT / "assets" / "melodies" / "chester.mid"  # 4/4, 32 bars, no pickup
BARS = "3-4"


def tune_of_bars(bars: int, source: Path = SOURCE_TUNE) -> bytes:
    """The first `bars` bars of a real tune (Chester, 4/4) as a one-track MIDI file."""
    score = read_midi(source).score
    end = bars * score.time_signatures[0].bar_ticks(score.ticks_per_beat)
    notes = [Note(n.start, min(n.end, end), n.pitch, n.velocity) for n in score.tracks[0].notes if n.start < end]
    return write_midi(Score(score.ticks_per_beat, [Track("Melody", 0, notes=notes)], score.tempos[:1], score.time_signatures[:1]))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_regeneration(repeats: int = 5, bars: int = 16, device: str | None = None) -> dict[str, Any]:
    """Per accompanist: seconds to generate a `bars`-bar take and to regenerate bars 3-4 of it (seed 1),
    through the service and the model alone, and their ratios (regeneration / whole take)."""
    from studio.serving.regeneration import RegenerateRequest, regenerate  # the serving layer's regeneration

    registry = ModelRegistry(device=device)
    melody = tune_of_bars(bars)
    quiet = {"want_wav": False, "want_png": False, "want_listen": False}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for card in registry.cards():
            info = family_info(card.family)
            if card.disabled or info is None or not info.regenerates:
                continue
            whole = AccompanyRequest(melody, card.name, 0, out_dir=tmp, **quiet)
            take = accompany(whole, registry).midi_path  # warm: the model loaded, its first call made
            again = RegenerateRequest(take, card.name, BARS, seed=1, out_dir=Path(tmp) / "again", **quiet)
            regenerate(again, registry)
            mi = read_melody(AccompanyRequest(take, card.name, melody_track=0))
            accompaniment = registry.generate(card.name, mi.roll, mi.grid, {}, 0)
            params = card.resolve_params({})
            times: dict[str, list[float]] = {"service_whole": [], "service_regen": [], "model_whole": [], "model_regen": []}
            for _ in range(repeats):  # interleaved, so machine noise hits both alike
                times["service_whole"].append(_timed(lambda r=whole: accompany(r, registry)))
                times["service_regen"].append(_timed(lambda r=again: regenerate(r, registry)))
                times["model_whole"].append(_timed(lambda n=card.name, m=mi, p=params: registry.generate(n, m.roll, m.grid, p, 0)))
                times["model_regen"].append(
                    _timed(
                        lambda n=card.name, m=mi, a=accompaniment, p=params: registry.call_method(
                            n, "regenerate", m.roll, m.grid, a, p, 1, (3, 4), None
                        )
                    )
                )
            median = {k: statistics.median(v) for k, v in times.items()}
            out[card.name] = {
                **{f"{k}_s": round(v, 4) for k, v in median.items()},
                "service_ratio": round(median["service_regen"] / median["service_whole"], 3),
                "model_ratio": round(median["model_regen"] / median["model_whole"], 3),
                "bars": bars,
                "regenerated": BARS,
                "repeats": repeats,
            }
    return out


def format_regeneration(rows: dict[str, Any]) -> str:
    """One line per model: the whole take, the regeneration, the ratios (target <= 1.0)."""
    return "\n".join(
        f"regeneration {name}: bars {r['regenerated']} of {r['bars']} bars {r['service_regen_s']:.3f} s vs the whole take "
        f"{r['service_whole_s']:.3f} s: x{r['service_ratio']} (model alone {r['model_regen_s']:.3f} s vs {r['model_whole_s']:.3f} s: "
        f"x{r['model_ratio']}; target <= 1.0)"
        for name, r in rows.items()
    )

"""How well a VAE remembers melodies, varies them and walks between them: `python -m studio evaluate --model vae-folk`.

1. Held-out reconstruction (tunes split by tune, never seen in training): every window of every
   held-out tune, as generation walks them (two bars, one where two do not fit in 32 16ths, a
   pickup with its first bar), is encoded and decoded from the mean of its code (how_far 0,
   greedy). `step_accuracy` is the share of the windows' 16th-note steps whose token (rest, hold
   or pitch) comes back exactly; `note_accuracy` the share of the notes starting in a window that
   come back with the same start, pitch and length (up to the window's end);
   `pitch_step_accuracy` the share of note starts with the right pitch; `window_exact` the share
   of windows that come back whole. Each tune's windows are decoded together, apart from the other
   tunes', and its own figures are in the report (``held_out.per_piece``); ``VariationConfig.pieces``
   reconstructs only the named held-out tunes, read alone (seconds).
2. Variations of unseen tunes (`studio.training.tunes.UNSEEN_COLLECTIONS`, left out of the melody dataset)
   at several `how_far` values, each through the registry as the studio runs it: the distance
   from the input (the share of the tune's steps whose token changed), the share of notes
   changed (input notes not found with the same start, pitch and length), and the in-key rate of
   the variation in the key estimated from the input (`studio.core.metrics`, Krumhansl-Kessler, as for
   accompaniments); the distance must grow with how_far.
3. Interpolations between consecutive unseen tunes: whether the first and last steps decode to
   the two melodies' first full bars (exactly, and the share of their steps), and how far each
   step is from the next.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.metrics import in_key_rate, melody_key
from studio.core.roll import Grid, RollTrack, track_notes
from studio.serving.registry import ModelRegistry, default_registry
from studio.training.melodies import MelodyDatasetConfig, build_melodies, held_out_tunes
from studio.training.tunes import corpus_tunes, tune_roll

__all__ = ["VariationConfig", "evaluate_variations", "format_variations", "unseen_variations", "variation_levels", "vary_tune"]

PER_PIECE = ("windows", "steps", "notes", "step_accuracy", "note_accuracy")  # each held-out tune's own figures in the report


@dataclass(frozen=True)
class VariationConfig:
    """`unseen` tunes varied at each of `how_far`, `pairs` of them interpolated in `steps`, the seed;
    `held_out` tunes for reconstruction (None: all)."""

    unseen: int = 100
    how_far: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 2.5)  # 2.5: vae-folk's maximum
    seed: int = 0
    held_out: int | None = None
    pieces: tuple[str, ...] | None = None  # only these held-out tunes, read alone: their reconstruction, nothing else
    pairs: int = 50
    steps: int = 5


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _notes_changed(before: Sequence[tuple[int, int, int]], after: Sequence[tuple[int, int, int]]) -> float:
    """Share of the notes of `before` that `after` does not have with the same start, end and pitch."""
    return 1.0 - len(set(before) & set(after)) / len(before) if before else float("nan")


def vary_tune(
    generate: Callable[..., Sequence[RollTrack]], melody: RollTrack, grid: Grid, how_far: Sequence[float], seed: int
) -> dict[str, Any]:
    """One tune varied at each of `how_far` by `generate(melody, grid, params, seed)` (a VAE's, e.g.
    through the registry as the studio runs it): the tune's own in-key rate, and per level the
    distance (share of 16th steps whose token changed), the share of its notes changed and the
    variation's in-key rate (key of the input)."""
    from models.vae import melody_tokens, tokens_to_notes  # a model family loads torch: on first use

    key = melody_key(melody)
    before = melody_tokens(track_notes(melody), grid.n_steps)
    notes_before = tokens_to_notes(before)
    row: dict[str, Any] = {"input_in_key": in_key_rate([melody], key), "by_how_far": {}}
    for level in how_far:
        out = generate(melody, grid, {"how_far": level}, seed)[0]
        after = melody_tokens(track_notes(out), grid.n_steps)
        row["by_how_far"][level] = {
            "distance": float((before != after).mean()),
            "notes_changed": _notes_changed(notes_before, tokens_to_notes(after)),
            "in_key_rate": in_key_rate([out], key),
        }
    return row


def variation_levels(rows: Sequence[Mapping[str, Any]], how_far: Sequence[float]) -> dict[str, dict[str, float]]:
    """Per level of `how_far` (keyed ``f"{level:g}"``): the means over `rows` (`vary_tune`'s) of the
    distance, notes changed and in-key rate, and the in-key rate's 10th percentile over tunes."""
    levels = {}
    for level in how_far:
        got = [r["by_how_far"][level] for r in rows]
        levels[f"{level:g}"] = {m: round(_mean(g[m] for g in got), 4) for m in ("distance", "notes_changed", "in_key_rate")}
        levels[f"{level:g}"]["in_key_p10"] = (
            round(float(np.percentile([g["in_key_rate"] for g in got if math.isfinite(g["in_key_rate"])], 10)), 4) if got else float("nan")
        )
    return levels


def unseen_variations(registry: ModelRegistry, name: str, tunes: Sequence[Any], how_far: Sequence[float], seed: int) -> dict[str, Any]:
    """The report's ``unseen`` part: `tunes` (`studio.training.tunes.Tune`) varied by the VAE `name` at
    each of `how_far` through the registry (`vary_tune`), the means per level, whether the distance
    grows with how_far, and the distance per meter."""
    rows = []
    for tune in tunes:
        melody, grid = tune_roll(tune.score)
        row = vary_tune(functools.partial(registry.generate, name), melody, grid, how_far, seed)
        rows.append({"title": tune.title, "meter": tune.meter, **row})
    levels = variation_levels(rows, how_far)
    distances = [levels[f"{h:g}"]["distance"] for h in how_far]
    meters = sorted({r["meter"] for r in rows})
    return {
        "tunes": len(rows),
        "meters": meters,
        "seed": seed,
        "input_in_key": round(_mean(r["input_in_key"] for r in rows), 4),
        "by_how_far": levels,
        "distance_grows": bool(all(a < b for a, b in itertools.pairwise(distances))),
        "by_meter": {
            m: {
                "tunes": sum(r["meter"] == m for r in rows),
                **{f"distance_at_{h:g}": round(_mean(r["by_how_far"][h]["distance"] for r in rows if r["meter"] == m), 4) for h in how_far},
            }
            for m in meters
        },
    }


def evaluate_variations(
    model: str, config: VariationConfig | None = None, registry: ModelRegistry | None = None, progress: bool = True
) -> dict[str, Any]:
    """Evaluate a VAE (see the module docstring); returns a JSON-ready report."""
    from models.vae import (  # a model family loads torch: on first use
        Windows,
        melody_tokens,
        reconstruction_scores,
        tune_windows,
    )

    config = config or VariationConfig()
    registry = registry or default_registry()
    card = registry.card(model)
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    t0 = time.perf_counter()
    loaded = registry.get(card.name)

    # 1. held-out reconstruction
    named = list(dict.fromkeys(config.pieces or ()))
    if named:
        held = held_out_tunes(card.genre, named)
    else:
        dataset = build_melodies(MelodyDatasetConfig(card.genre), progress=progress)
        held = dataset.held_out[: config.held_out] if config.held_out else dataset.held_out
    say(f"reconstructing every window of {len(held)} held-out tunes")
    # Each tune's windows decoded together and apart from the others': a tune's figures are the same in any company.
    per_piece, parts, decodes = {}, [], []
    for piece in held:
        own = tune_windows([piece], loaded.config, every_bar=False)
        if len(own):
            back = loaded.reconstruct(own)
            figures = reconstruction_scores(own.tokens, back, own.length)
            per_piece[piece.id] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items() if k in PER_PIECE}
            parts.append(own)
            decodes.append(back)
    windows = Windows.join(parts) if parts else tune_windows([], loaded.config, every_bar=False)
    decoded = np.concatenate(decodes) if decodes else np.zeros((0, loaded.config.max_steps), np.int64)
    scores = reconstruction_scores(windows.tokens, decoded, windows.length)
    by_length = {}
    for k in sorted(set(windows.length.tolist())):
        rows = windows.length == k
        if rows.sum() >= 50:
            by_length[int(k)] = {
                "windows": int(rows.sum()),
                **{
                    m: round(v, 4)
                    for m, v in reconstruction_scores(windows.tokens[rows], decoded[rows], windows.length[rows]).items()
                    if m.endswith("accuracy")
                },
            }
    report: dict[str, Any] = {
        "model": model,
        "family": card.family,
        "data": card.genre,
        "seed": config.seed,
        "held_out": {
            "tunes": len(held),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()},
            "by_window_length": by_length,
            "per_piece": per_piece,
        },
    }
    if named:
        report["named_pieces"] = named
        report["seconds"] = round(time.perf_counter() - t0, 1)
        report["how"] = (
            f"python -m studio evaluate --model {model} --pieces {','.join(named)}: every window of only these held-out tunes of "
            "models/checkpoints/splits/folk.json, each read alone (studio.training.melodies.read_tunes), decoded greedily from "
            "the mean of its code; no variations or interpolations (they take minutes); each tune's figures are the ones a whole "
            "evaluation gives it"
        )
        return report

    # 2. variations of unseen tunes
    say(f"varying {config.unseen} unseen tunes at how_far {', '.join(f'{h:g}' for h in config.how_far)}")
    tunes = list(corpus_tunes(config.unseen))
    report["unseen"] = unseen_variations(registry, card.name, tunes, config.how_far, config.seed)

    # 3. interpolations between consecutive unseen tunes
    say(f"interpolating {min(config.pairs, len(tunes) // 2)} pairs of unseen tunes in {config.steps} steps")
    ends, gaps, direct = [], [], []
    for a, b in zip(tunes[0::2][: config.pairs], tunes[1::2][: config.pairs], strict=False):
        ma, ga = tune_roll(a.score)
        mb, gb = tune_roll(b.score)
        found = registry.call_method(card.name, "interpolate", ma, ga, mb, gb, config.steps)
        ends.append((found.start_kept, found.end_kept))
        segs = found.segments
        for x, y in itertools.pairwise(segs):
            if x.n_steps == y.n_steps:
                tx, ty = melody_tokens(x.notes, x.n_steps), melody_tokens(y.notes, y.n_steps)
                gaps.append(float((tx != ty).mean()))
        if segs[0].n_steps == segs[-1].n_steps:
            direct.append(float((melody_tokens(segs[0].notes, segs[0].n_steps) != melody_tokens(segs[-1].notes, segs[-1].n_steps)).mean()))
    report["interpolation"] = {
        "pairs": len(ends),
        "steps": config.steps,
        "start_exact": round(_mean(float(s == 1.0) for s, _e in ends), 4),
        "end_exact": round(_mean(float(e == 1.0) for _s, e in ends), 4),
        "start_kept": round(_mean(s for s, _e in ends), 4),
        "end_kept": round(_mean(e for _s, e in ends), 4),
        "step_to_step_distance": round(_mean(gaps), 4),
        "start_to_end_distance": round(_mean(direct), 4),
    }
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["how"] = (
        f"python -m studio evaluate --model {model}: held-out = every window of the held-out tunes (split by tune, seed 0, never "
        "in training) decoded greedily from the mean of its code; step accuracy = share of 16th steps whose token (rest, hold "
        "or one of 84 pitches) comes back exactly; note accuracy = share of notes starting in a window that come back with the "
        f"same start, pitch and length. Unseen = the first {config.unseen} single-meter tunes of studio.training.tunes.UNSEEN_COLLECTIONS "
        f"(not in the melody dataset), varied at each how_far with seed {config.seed}: distance = share of the tune's 16th steps "
        "whose token changed; in-key = duration-weighted share of the variation's notes in the key estimated from the input "
        f"(studio.core.metrics). Interpolation: consecutive unseen tunes paired, {config.steps} steps; exact = the first (last) "
        "step decodes to the first (second) melody's first full bars step for step."
    )
    return report


def format_variations(report: Mapping[str, Any]) -> str:
    """A few readable lines (what the CLI prints without --json)."""
    held = report["held_out"]
    first = (
        f"{report['model']}: held-out reconstruction from the code's mean ({held['tunes']} tunes, {held['windows']} windows): "
        f"step accuracy {held['step_accuracy']:.4f}, note accuracy {held['note_accuracy']:.4f} ({held['notes']} notes), "
        f"pitch at note starts {held['pitch_step_accuracy']:.4f}, windows exact {held['window_exact']:.4f}"
    )
    if "named_pieces" in report:  # `evaluate --pieces`: the named tunes' reconstruction only
        lines = [first] + [
            f"  {pid}: step accuracy {row['step_accuracy']:.4f}, note accuracy {row['note_accuracy']:.4f} ({row['windows']} windows)"
            for pid, row in held["per_piece"].items()
        ]
        return "\n".join([*lines, f"({report['seconds']} s)"])
    unseen, walk = report["unseen"], report["interpolation"]
    lines = [
        first,
        f"variations of {unseen['tunes']} unseen tunes ({', '.join(unseen['meters'])}; the tunes themselves {unseen['input_in_key']:.3f} in key):",
    ]
    for how_far, row in unseen["by_how_far"].items():
        lines.append(
            f"  how_far {how_far:>4s}: distance {row['distance']:.4f}, notes changed {row['notes_changed']:.3f}, "
            f"in-key {row['in_key_rate']:.3f} (p10 {row['in_key_p10']:.3f})"
        )
    lines.append(f"  distance grows with how_far: {'yes' if unseen['distance_grows'] else 'NO'}")
    lines.append(
        f"interpolation of {walk['pairs']} pairs in {walk['steps']} steps: start exact {walk['start_exact']:.0%} "
        f"({walk['start_kept']:.3f} of steps), end exact {walk['end_exact']:.0%} ({walk['end_kept']:.3f}); "
        f"step-to-step distance {walk['step_to_step_distance']:.3f} vs start-to-end {walk['start_to_end_distance']:.3f}"
    )
    lines.append(f"({report['seconds']} s)")
    return "\n".join(lines)

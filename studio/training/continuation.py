"""How well a melody model continues tunes: `python -m studio evaluate --model transformer-folk`.

1. Held-out perplexity per event (tunes split by tune, never seen in training), beside add-one
   smoothed unigram and bigram models fitted on the training tunes and scored on the same events.
2. Unseen tunes (`studio.training.tunes.UNSEEN_COLLECTIONS`, collections the melody dataset leaves out):
   the first `prompt_bars` bars are the prompt and the model adds `bars` bars. Measured: the prompt
   kept exactly (roll equal, step for step), the added bars in the tune's meter and of the right
   length, notes per added bar, the in-key rate of the added notes (key estimated from the
   prompt, as `studio.core.metrics` does for accompaniments), and copies: runs of 16 or more added notes
   whose pitch intervals and lengths equal a run of some training tune (so transposed copies count).

Each held-out tune is scored alone, and its own perplexity is in the report (``held_out.per_piece``);
``ContinuationConfig.pieces`` scores only the named held-out tunes, read alone (seconds).
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.metrics import in_key_rate, melody_key
from studio.core.roll import Grid, RollTrack, extend_grid, track_notes
from studio.serving.registry import ModelRegistry, default_registry
from studio.training.melodies import MelodyDatasetConfig, build_melodies, held_out_tunes
from studio.training.tunes import corpus_tunes, tune_roll

__all__ = ["ContinuationConfig", "RunIndex", "evaluate_continuer", "note_runs"]

RUN = 16  # notes in a run that counts as copied


@dataclass(frozen=True)
class ContinuationConfig:
    """`unseen` tunes, `prompt_bars` of each as the prompt, `bars` added, the seed and parameters."""

    unseen: int = 100
    prompt_bars: int = 8
    bars: int = 8
    seed: int = 0
    params: Mapping[str, Any] | None = None
    held_out: int | None = None  # held-out tunes for perplexity (None: all)
    pieces: tuple[str, ...] | None = None  # only these held-out tunes, read alone: their perplexity, nothing else


def _run_keys(notes: Sequence[tuple[int, int, int]], length: int = RUN) -> list[tuple]:
    """Keys of every run of `length` consecutive notes: (pitch intervals, note lengths in steps)."""
    keys = []
    for i in range(len(notes) - length + 1):
        run = notes[i : i + length]
        intervals = tuple(b[2] - a[2] for a, b in itertools.pairwise(run))
        lengths = tuple(e - s for s, e, _p in run)
        keys.append((intervals, lengths))
    return keys


def note_runs(piece: Any) -> list[tuple[int, int, int]]:
    """(start, end, pitch) of a one-track piece's melody, one note per start (the top one)."""
    best: dict[int, tuple[int, int]] = {}
    for t, s, e, p, _v in piece.notes.tolist():
        if t == 0 and (s not in best or p > best[s][1]):
            best[s] = (e, p)
    return [(s, best[s][0], best[s][1]) for s in sorted(best)]


class RunIndex:
    """Every run of 16 notes of some training tunes, transposition-free, for copy checks."""

    def __init__(self, tunes: Iterable[Sequence[tuple[int, int, int]]], length: int = RUN) -> None:
        self.length = length
        self.keys: set[int] = set()
        for notes in tunes:
            self.keys.update(hash(k) for k in _run_keys(notes, length))

    def copied(self, notes: Sequence[tuple[int, int, int]]) -> int:
        """How many runs of `notes` appear in the index."""
        return sum(hash(k) in self.keys for k in _run_keys(notes, self.length))


def _first_bars(melody: RollTrack, grid: Grid, bars: int) -> tuple[RollTrack, Grid]:
    kept = grid.bars[:bars]
    n = kept[-1].end
    cut = RollTrack(melody.name, melody.program, melody.is_drum, melody.velocity[:n].copy(), melody.onset[:n].copy())
    return cut, Grid(grid.ticks_per_beat, n, list(kept), grid.steps_per_beat)


def _notes(track: RollTrack, start: int = 0) -> list[tuple[int, int, int]]:

    return [n for n in track_notes(track) if n[0] >= start]


def evaluate_continuer(
    model: str, config: ContinuationConfig | None = None, registry: ModelRegistry | None = None, progress: bool = True
) -> dict[str, Any]:
    """Evaluate a melody model (see the module docstring); returns a JSON-ready report."""
    from models.transformer import n_gram_baselines, tokenize_pieces  # a model family loads torch: on first use

    config = config or ContinuationConfig()
    registry = registry or default_registry()
    card = registry.card(model)
    params = card.resolve_params({**(config.params or {}), "bars": config.bars})
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    t0 = time.perf_counter()
    named = list(dict.fromkeys(config.pieces or ()))
    dataset = None if named else build_melodies(MelodyDatasetConfig(card.genre), progress=progress)
    loaded = registry.get(card.name)
    if dataset is None:
        held = held_out_tunes(card.genre, named)
    else:
        held = dataset.held_out[: config.held_out] if config.held_out else dataset.held_out
    say(f"perplexity on {len(held)} held-out tunes")
    held_tokens, per_piece, total, count = [], {}, 0.0, 0
    for piece in held:  # one tune at a time: each tune's own figure, the same in any company
        tokens = tokenize_pieces([piece])  # empty for a tune whose meter cannot be written (left out)
        if tokens:
            nll, events = loaded.nll(tokens)
            held_tokens += tokens
            total, count = total + nll, count + events
            per_piece[piece.id] = {"events": events, "perplexity": round(math.exp(nll / max(1, events)), 4)}
    report: dict[str, Any] = {
        "model": model,
        "family": card.family,
        "data": card.genre,
        "seed": config.seed,
        "params": params,
        "held_out": {"tunes": len(held_tokens), "events": count, "perplexity": round(math.exp(total / max(1, count)), 3)},
    }
    if dataset is None:
        report["held_out"]["per_piece"] = per_piece
        report["named_pieces"] = named
        report["seconds"] = round(time.perf_counter() - t0, 1)
        report["how"] = (
            f"python -m studio evaluate --model {model} --pieces {','.join(named)}: perplexity = exp(mean NLL per event) on only "
            "these held-out tunes of models/checkpoints/splits/folk.json, each read alone (studio.training.melodies.read_tunes); "
            "no baselines, unseen tunes or copies (they need the training tunes); each tune's figure is the one a whole evaluation gives it"
        )
        return report
    report["held_out"]["baselines"] = n_gram_baselines(tokenize_pieces(dataset.train), held_tokens, loaded.config.block_size)
    report["held_out"]["per_piece"] = per_piece
    say(f"indexing every run of {RUN} notes of the {len(dataset.train)} training tunes")
    index = RunIndex(note_runs(p) for p in dataset.train)
    say(f"continuing {config.unseen} unseen tunes by {config.bars} bars")
    rows = []
    for tune in corpus_tunes(config.unseen):
        melody, grid = tune_roll(tune.score)
        prompt, pgrid = _first_bars(melody, grid, config.prompt_bars)
        out = registry.generate(card.name, prompt, pgrid, params, config.seed)[0]
        longer = extend_grid(pgrid, out.n_steps)
        added_bars = longer.bars[len(pgrid.bars) :]
        added = _notes(out, pgrid.n_steps)
        notes_all = _notes(out)
        added_track = RollTrack.empty("added", 0, out.n_steps)
        for s, e, p in added:
            added_track.add_note(s, e, p)
        first_added = len(notes_all) - len(added)
        rows.append(
            {
                "title": tune.title,
                "meter": tune.meter,
                "prompt_kept": bool(
                    np.array_equal(out.velocity[: pgrid.n_steps], prompt.velocity)
                    and np.array_equal(out.onset[: pgrid.n_steps], prompt.onset)
                ),
                "meter_kept": len(added_bars) == config.bars
                and all(
                    (b.numerator, b.denominator, b.length)
                    == (pgrid.bars[-1].numerator, pgrid.bars[-1].denominator, pgrid.bars[-1].full_length)
                    for b in added_bars
                )
                and out.n_steps == longer.n_steps,
                "notes_per_bar": len(added) / config.bars,
                "empty_bars": sum(not any(b.start <= s < b.end for s, _e, _p in added) for b in added_bars),
                "in_key_rate": in_key_rate([added_track], melody_key(prompt)),
                # runs that end among the added notes (a run may begin in the prompt: the join counts too)
                "copied_runs": index.copied(notes_all[max(0, first_added - RUN + 1) :]),
            }
        )
    report["unseen"] = {
        "tunes": len(rows),
        "meters": sorted({r["meter"] for r in rows}),
        "prompt_kept": sum(r["prompt_kept"] for r in rows),
        "meter_kept": sum(r["meter_kept"] for r in rows),
        "in_key_mean": round(_mean(r["in_key_rate"] for r in rows), 4),
        "in_key_p10": round(float(np.percentile([r["in_key_rate"] for r in rows if math.isfinite(r["in_key_rate"])], 10)), 4)
        if rows
        else float("nan"),
        "notes_per_added_bar": round(_mean(r["notes_per_bar"] for r in rows), 3),
        "empty_added_bars": sum(r["empty_bars"] for r in rows),
        "tunes_with_copied_runs": sum(r["copied_runs"] > 0 for r in rows),
        "copied_runs": sum(r["copied_runs"] for r in rows),
        "training_runs_indexed": len(index.keys),
        "by_meter": {
            m: {
                "tunes": sum(r["meter"] == m for r in rows),
                "in_key_mean": round(_mean(r["in_key_rate"] for r in rows if r["meter"] == m), 4),
            }
            for m in sorted({r["meter"] for r in rows})
        },
    }
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["how"] = (
        f"python -m studio evaluate --model {model}: perplexity = exp(mean NLL per event) on the held-out tunes (split by tune, "
        f"seed 0), baselines scored on the same events; unseen = the first {config.unseen} single-meter tunes of "
        f"studio.training.tunes.UNSEEN_COLLECTIONS (not in the training data), the first {config.prompt_bars} bars as the prompt, "
        f"{config.bars} bars added, seed {config.seed}; copies = runs of {RUN} notes (intervals and lengths) equal to a run of a training tune"
    )
    return report


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def format_continuation(report: Mapping[str, Any]) -> str:
    """A few readable lines (what the CLI prints without --json)."""
    held = report["held_out"]
    if "named_pieces" in report:  # `evaluate --pieces`: the named tunes' perplexity only
        lines = [
            f"{report['model']}: held-out perplexity per event {held['perplexity']} ({held['tunes']} named tunes, {held['events']} events)"
        ]
        lines += [f"  {pid}: {row['perplexity']} ({row['events']} events)" for pid, row in held["per_piece"].items()]
        return "\n".join([*lines, f"({report['seconds']} s)"])
    unseen, base = report["unseen"], held["baselines"]
    return "\n".join(
        [
            f"{report['model']}: held-out perplexity per event {held['perplexity']} (unigram {base['unigram']}, bigram {base['bigram']}; "
            f"{held['tunes']} tunes, {held['events']} events)",
            f"unseen tunes: {unseen['tunes']} ({', '.join(unseen['meters'])}): prompt kept {unseen['prompt_kept']}, "
            f"meter kept {unseen['meter_kept']}, "
            f"in-key {unseen['in_key_mean']} (p10 {unseen['in_key_p10']}), {unseen['notes_per_added_bar']} notes per added bar, "
            f"{unseen['empty_added_bars']} empty added bars, copied 16-note runs {unseen['copied_runs']} in {unseen['tunes_with_copied_runs']} tunes",
            f"({report['seconds']} s)",
        ]
    )

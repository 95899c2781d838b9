"""`python -m studio evaluate`: how a model's accompaniments compare with real music it never saw.

1. Held-out pieces of the model's genre (the pinned list `models/checkpoints/splits/<genre>.json`,
   `studio.training.splits`; never seen in training): the model accompanies each held-out melody, and the studio's metrics
   (`studio.core.metrics.piece_metrics`: in-key rate, consonance, MuseGAN's empty-bar rate, used pitch
   classes per bar, qualified-note rate, polyphony) of its accompaniment are averaged over pieces
   and set beside the same numbers of the real held-out accompaniments.
2. Not a copy: the share of generated bars for which some training bar (in any of the 12
   transpositions) holds at least 90% of the same notes (voice, onset, length and pitch within the
   bar; shared notes / the larger bar's notes).
3. Unseen tunes (`studio.training.tunes`: folk songs and fiddle tunes of every meter): in-key rate,
   consonance, and whether at least two accompaniment tracks cover 95% of the melody's bars.
4. What a musician hears (`studio.training.musicianship`, ``musicianship`` in the report): parallel
   and hidden fifths/octaves, crossings, overlaps, notes out of range, leaps over an octave, repeated
   notes, interval and duration histograms (a distance) and a real-vs-generated classifier, for the
   generated and the real held-out accompaniments of the same pieces; the generated figures on the
   unseen tunes too.

With ``EvaluationConfig.split = "validation"`` (``evaluate --split validation``) the pieces are the
pinned split's validation list instead (training pieces kept out of training to choose checkpoints and
settings: what a choice between models reads, never the held-out pieces), set beside their own real
music; the copy check then reads the training pieces without them. The real music is read with the
model's own voice reduction (the card's ``training.reduction``, `studio.training.data.DatasetConfig.reduction`).

Every held-out piece's own figures are in the report too (``held_out.per_piece``, by piece id), so a
card can be checked in seconds: ``EvaluationConfig.pieces`` (``evaluate --pieces ID,ID``) evaluates
only the named held-out pieces, each read alone (`studio.training.data.read_pieces`), and gives them
the same figures (``tests/training/test_card_figures.py`` compares them with every shipped card).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.base import BaselineFamily, LikelihoodScorer, family
from studio.core.config import REPO_ROOT
from studio.core.errors import InputError
from studio.core.metrics import (
    RATE_SLACK,
    RELATIVE_TOLERANCE,
    TRACK_METRICS,
    bar_coverage,
    parallel_perfect_counts,
    piece_metrics,
)
from studio.core.roll import Grid, RollTrack, to_model_range
from studio.core.voices import voice_piece
from studio.serving.registry import ModelRegistry, default_registry, family_writes
from studio.training.continuation import ContinuationConfig, evaluate_continuer, format_continuation
from studio.training.data import CORPUS_GENRES, DatasetConfig, build_dataset, read_pieces
from studio.training.musicianship import check_bounds, compare_sets, format_table, generated_rates, genre_ranges, record
from studio.training.splits import read_split
from studio.training.tunes import corpus_tunes, tune_roll
from studio.training.variation_eval import VariationConfig, evaluate_variations, format_variations

__all__ = ["EvaluationConfig", "bound_gaps", "copied_bar_share", "evaluate", "format_report", "real_summary", "validation_score"]

SUMMARY_METRICS = ("in_key_rate", "consonance", *TRACK_METRICS, "accompaniment_polyphony")
RATES = ("empty_bar_rate", "qualified_note_rate", "polyphony", "accompaniment_polyphony")
TONAL_MARGIN = 0.05  # in-key and consonance at most this much under the real values
SPLITS = ("held_out", "validation")


@dataclass(frozen=True)
class EvaluationConfig:
    """What `evaluate` measures: `n` held-out pieces (None: all), `unseen` folk tunes, the seed and
    the model parameters used for every sample, and whether to run the copy check. `pieces` names
    held-out pieces (ids of the pinned list) to evaluate alone: only they are read, so the report
    holds their held-out figures and nothing that needs the training pieces or the unseen tunes."""

    n: int | None = None
    unseen: int = 100
    seed: int = 0
    params: Mapping[str, Any] | None = None
    copy_check: bool = True
    data: str | None = None  # dataset genre; default: the model's own genre (chorale for genre 'any')
    split_file: str | None = None  # the pinned split to read; default: the committed one of a corpus genre, the card's for a folder
    pieces: tuple[str, ...] | None = None  # only these held-out pieces, read alone (seconds; see `evaluate`)
    split: str = "held_out"  # the pieces to accompany: "held_out" (the test) or "validation" (to choose between models)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise InputError(f"unknown split '{self.split}': use one of {', '.join(SPLITS)}")


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _model_melody(melody: RollTrack) -> RollTrack:
    """The melody as models see it (pitches folded into 24..107), as `studio.serving.service` gives it."""
    out = RollTrack.empty(melody.name, melody.program, melody.n_steps)
    steps, pitches = np.nonzero(melody.velocity)
    folded = np.array([to_model_range(p) for p in pitches.tolist()], np.int64)
    out.velocity[steps, folded] = melody.velocity[steps, pitches]
    steps, pitches = np.nonzero(melody.onset)
    out.onset[steps, np.array([to_model_range(p) for p in pitches.tolist()], np.int64)] = True
    return out


# --------------------------------------------------------------------------- not a copy


def _bar_notes(tracks: Sequence[RollTrack], grid: Grid) -> list[np.ndarray]:
    """Per bar, its notes as int64 codes of (voice, onset in bar, length in bar, pitch)."""
    per_bar: list[list[int]] = [[] for _ in grid.bars]
    starts = np.array([b.start for b in grid.bars])
    for voice, track in enumerate(tracks):
        sounding = track.velocity > 0
        begins = track.onset & sounding
        begins[0] |= sounding[0]
        begins[1:] |= sounding[1:] & ~sounding[:-1]
        for step, pitch in zip(*np.nonzero(begins), strict=True):
            end = step + 1
            while end < len(sounding) and sounding[end, pitch] and not begins[end, pitch]:
                end += 1
            first = int(np.searchsorted(starts, step, side="right")) - 1
            for b in range(max(first, 0), len(grid.bars)):
                bar = grid.bars[b]
                if bar.start >= end:
                    break
                lo, hi = max(step, bar.start), min(end, bar.end)
                if hi > lo:
                    per_bar[b].append(_code(voice, lo - bar.start, hi - lo, int(pitch)))
    return [np.unique(np.array(codes, np.int64)) for codes in per_bar]


def _code(voice: int | np.ndarray, onset: int | np.ndarray, length: int | np.ndarray, pitch: int | np.ndarray) -> Any:
    return ((voice * 256 + onset) * 256 + np.minimum(length, 255)) * 256 + pitch


class _BarIndex:
    """An inverted index of training bars: note code -> bars holding it (sorted arrays)."""

    def __init__(self, bars: Sequence[np.ndarray]) -> None:
        sizes = np.array([len(b) for b in bars], np.int64)
        codes = np.concatenate(bars) if bars else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(bars)), sizes)
        order = np.argsort(codes, kind="stable")
        self.codes, self.owner, self.sizes = codes[order], owner[order], sizes

    def best_overlap(self, query: np.ndarray) -> float:
        """The largest shared / max(len(query), len(bar)) over every indexed bar."""
        if not len(query) or not len(self.codes):
            return 0.0
        lo = np.searchsorted(self.codes, query, side="left")
        hi = np.searchsorted(self.codes, query, side="right")
        hits = np.concatenate([self.owner[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)] or [np.zeros(0, np.int64)])
        if not len(hits):
            return 0.0
        bars, shared = np.unique(hits, return_counts=True)
        return float((shared / np.maximum(self.sizes[bars], len(query))).max())


def copied_bar_share(
    generated: Sequence[tuple[Sequence[RollTrack], Grid]], training: Sequence[tuple[Sequence[RollTrack], Grid]], threshold: float = 0.9
) -> dict[str, Any]:
    """Share of generated non-empty bars for which a training bar, in any of the 12 transpositions,
    holds at least `threshold` of the same notes (shared notes / the larger bar's count)."""
    index = _BarIndex([b for tracks, grid in training for b in _bar_notes(tracks, grid) if len(b)])
    total = copied = 0
    for tracks, grid in generated:
        for notes in _bar_notes(tracks, grid):
            if not len(notes):
                continue
            total += 1
            pitch = notes % 256
            rest = notes - pitch
            best = max(index.best_overlap(np.unique(rest + np.clip(pitch + shift, 0, 255))) for shift in range(-6, 6))
            copied += best >= threshold
    return {"bars": total, "copied_bars": copied, "copied_share": copied / total if total else float("nan"), "threshold": threshold}


# --------------------------------------------------------------------------- evaluation


def _generate(registry: ModelRegistry, name: str, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> list[RollTrack]:
    return registry.generate(name, _model_melody(melody), grid, params, seed, limit_length=False)  # every piece, however long


def _summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    return {m: _mean(r[m] for r in rows) for m in SUMMARY_METRICS}


def _compare(generated: Mapping[str, float], real: Mapping[str, float]) -> dict[str, Any]:
    """Per metric: generated, real, difference, and whether it meets the acceptance bound."""
    out = {}
    for metric in SUMMARY_METRICS:
        g, r = generated[metric], real[metric]
        if metric in ("in_key_rate", "consonance"):
            ok = g >= r - TONAL_MARGIN
            bound = f">= real - {TONAL_MARGIN}"
        else:
            slack = RATE_SLACK if metric in RATES else 0.0
            ok = abs(g - r) <= max(RELATIVE_TOLERANCE * abs(r), slack) + 1e-9
            bound = f"within {RELATIVE_TOLERANCE:.0%} of real" + (f" (or {slack})" if slack else "")
        rel = (g - r) / abs(r) if r else (0.0 if g == r else float("inf"))
        out[metric] = {"generated": round(g, 4), "real": round(r, 4), "relative_difference": round(rel, 4), "bound": bound, "ok": bool(ok)}
    return out


def bound_gaps(generated: Mapping[str, float], real: Mapping[str, float]) -> dict[str, float]:
    """How far each metric is from the real music, in units of its acceptance bound (<= 1: within
    it): the shortfall of in-key and consonance over `TONAL_MARGIN` (being above the real value
    costs nothing), and |generated - real| over 15% of real (or the rate slack) for the others."""
    gaps = {}
    for metric in SUMMARY_METRICS:
        g, r = generated[metric], real[metric]
        if not (math.isfinite(g) and math.isfinite(r)):
            continue
        if metric in ("in_key_rate", "consonance"):
            gaps[metric] = max(0.0, r - g) / TONAL_MARGIN
        else:
            slack = RATE_SLACK if metric in RATES else 1e-3
            gaps[metric] = abs(g - r) / max(RELATIVE_TOLERANCE * abs(r), slack)
    return gaps


def real_summary(pieces: Sequence[Any]) -> dict[str, float]:
    """The metrics of the real accompaniments of `pieces` (`studio.training.data.Piece`), averaged."""
    rows = []
    for piece in pieces:
        tracks = piece.tracks
        rows.append(piece_metrics(tracks[0], tracks[1:], piece.grid))
    return _summary(rows)


def validation_score(
    model: Any, pieces: Sequence[Any], real: Mapping[str, float], params: Mapping[str, Any], seeds: Sequence[int] = (0,)
) -> tuple[float, dict[str, float]]:
    """A model's distance from real music on validation `pieces`: the mean of `bound_gaps` (lower is
    better; training keeps the generator that scores lowest), with the metrics averaged over the
    pieces accompanied at each of `seeds`. `model` has `generate` (an accompanist, not a registry
    name); returns (score, the generated metrics)."""
    rows = [
        piece_metrics(p.tracks[0], model.generate(_model_melody(p.tracks[0]), p.grid, params, seed), p.grid)
        for seed in seeds
        for p in pieces
    ]
    generated = _summary(rows)
    gaps = bound_gaps(generated, real)
    return (float(np.mean(list(gaps.values()))) if gaps else float("inf")), generated


def evaluate(
    model: str, config: EvaluationConfig | None = None, registry: ModelRegistry | None = None, progress: bool = True
) -> dict[str, Any]:
    """Evaluate `model` (see the module docstring); returns a JSON-ready report."""

    config = config or EvaluationConfig()
    registry = registry or default_registry()
    card = registry.card(model)
    writes = family_writes(card.family)
    if writes == "melody":  # a melody model: continuations, not accompaniments
        return evaluate_continuer(
            model,
            ContinuationConfig(unseen=config.unseen, seed=config.seed, params=config.params, held_out=config.n, pieces=config.pieces),
            registry,
            progress,
        )
    if writes == "variation":  # a melody model: reconstructions, variations and interpolations
        return evaluate_variations(
            model, VariationConfig(unseen=config.unseen, seed=config.seed, held_out=config.n, pieces=config.pieces), registry, progress
        )
    genre = config.data or (card.genre if card.genre in CORPUS_GENRES else "chorale")
    if not (genre in CORPUS_GENRES or genre.startswith("folder:")):
        raise InputError(
            f"no evaluation data for genre '{genre}': pass --data with one of {', '.join(CORPUS_GENRES)} or a folder of MIDI files"
        )
    params = dict(config.params or {})
    t0 = time.perf_counter()
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    split_file = _split_file(config, card, genre)
    reduction = card.training.get("reduction")
    if config.pieces:
        return _evaluate_pieces(registry, card, genre, split_file, config, t0, say)
    dataset = build_dataset(DatasetConfig(genre, split_file=split_file, reduction=reduction), progress=progress)
    held, training = _evaluated_pieces(dataset, config.split)
    held = held[: config.n] if config.n else held
    say(f"evaluating {model} on {len(held)} {_SPLIT_WORDS[config.split]} {genre} pieces")

    reference = genre_ranges(genre, training)
    generated_rows, real_rows, samples, heard_real, heard_generated = [], [], [], [], []
    for piece in held:
        tracks = piece.tracks
        melody = tracks[0]
        accompaniment = _generate(registry, model, melody, piece.grid, params, config.seed)
        generated_rows.append(piece_metrics(melody, accompaniment, piece.grid))
        real_rows.append(piece_metrics(melody, tracks[1:], piece.grid))
        samples.append((accompaniment, piece.grid))
        heard_real.append(record(melody, tracks[1:], reference))
        heard_generated.append(record(melody, accompaniment, reference))
    report: dict[str, Any] = {
        "model": model,
        "family": card.family,
        "data": genre,
        "seed": config.seed,
        "params": card.resolve_params(params),
        **({"reduction": dataset.config.voice_reduction} if reduction else {}),
        config.split: _held_out_section(held, generated_rows, real_rows),
    }
    report["musicianship"] = compare_sets(heard_real, heard_generated)
    report["musicianship"]["ranges"] = {name: list(bounds) for name, bounds in reference.items()}
    heard_figures = dict(report["musicianship"]["generated"], classifier_accuracy=report["musicianship"]["classifier_accuracy"])
    report["musicianship"]["bounds"] = check_bounds(heard_figures, report["musicianship"]["real"])

    if config.copy_check:
        say("checking generated bars against every training bar (12 transpositions)")
        training_bars = [(p.tracks[1:], p.grid) for p in training]
        report["copy"] = copied_bar_share(samples, training_bars)

    if config.unseen:
        say(f"accompanying {config.unseen} unseen folk tunes")
        rows, heard = [], []
        for tune in corpus_tunes(config.unseen):
            melody, grid = tune_roll(tune.score)
            tracks = _generate(registry, model, melody, grid, params, config.seed)
            m = piece_metrics(melody, tracks, grid)
            heard.append(record(melody, tracks, reference))
            covering = sum(bar_coverage(t, grid, melody) >= 0.95 for t in tracks)
            rows.append(
                {
                    "title": tune.title,
                    "meter": tune.meter,
                    "in_key_rate": m["in_key_rate"],
                    "consonance": m["consonance"],
                    "tracks_covering_95": covering,
                    "parallels": parallel_perfect_counts([melody, *tracks]),
                }
            )
        meters = sorted({r["meter"] for r in rows})
        unseen_heard = generated_rates(heard)
        report["unseen"] = {
            "tunes": len(rows),
            "meters": meters,
            "in_key_mean": round(_mean(r["in_key_rate"] for r in rows), 4),
            "consonance_mean": round(_mean(r["consonance"] for r in rows), 4),
            "in_key_p10": round(_percentile([r["in_key_rate"] for r in rows], 10), 4),
            "consonance_p10": round(_percentile([r["consonance"] for r in rows], 10), 4),
            "share_with_2_tracks_covering_95": round(_mean(float(r["tracks_covering_95"] >= 2) for r in rows), 4),
            # pooled over the tunes: parallel fifths/octaves among all the moments two parts move together
            "parallel_fifths_octaves": round(sum(r["parallels"][0] for r in rows) / max(1, sum(r["parallels"][1] for r in rows)), 4),
            "moves_together": sum(r["parallels"][1] for r in rows),
            "musicianship": unseen_heard,
            "musicianship_bounds": check_bounds(unseen_heard, report["musicianship"]["real"]),  # the genre's real held-out music
            "by_meter": {
                meter: {
                    "tunes": sum(r["meter"] == meter for r in rows),
                    "in_key_mean": round(_mean(r["in_key_rate"] for r in rows if r["meter"] == meter), 4),
                    "consonance_mean": round(_mean(r["consonance"] for r in rows if r["meter"] == meter), 4),
                }
                for meter in meters
            },
        }
    nll = _likelihood(registry, card, dataset, held, say)
    if nll:
        report["nll"] = nll
    report["seconds"] = round(time.perf_counter() - t0, 1)
    which = (
        "held-out pieces of " if config.split == "held_out" else "validation pieces (kept out of training, to choose between models) of "
    )
    report["how"] = (
        f"python -m studio evaluate --model {model}"
        + (" --split validation" if config.split == "validation" else "")
        + f": seed {config.seed}, default parameters unless given; {which}"
        f"'{genre}' (the pinned list {_split_label(dataset)}, never in training)"
        + (f", voices reduced by '{dataset.config.voice_reduction}' (the card's)" if reduction else "")
        + f"; means over pieces; unseen = the first {config.unseen} "
        "single-meter tunes of studio.training.tunes.UNSEEN_COLLECTIONS; musicianship: studio.training.musicianship (voices "
        "melody first then high to low; rates pooled over pieces; ranges: SATB for chorale voices, else the 1st-99th percentile "
        "of the genre's training pieces; JS = Jensen-Shannon divergence, log base 2, real's own = odd vs even pieces; "
        "classifier = L2 logistic regression, leave-one-piece-out, 0.5 = indistinguishable)"
    )
    return report


_SPLIT_WORDS = {"held_out": "held-out", "validation": "validation"}


def _evaluated_pieces(dataset: Any, split: str) -> tuple[list[Any], list[Any]]:
    """(the pieces to accompany, the training pieces the copy check and the ranges read) for `split`:
    the held-out pieces beside all the others, or the validation pieces beside the training ones."""
    if split == "held_out":
        return list(dataset.held_out), list(dataset.train)
    ids = set(dataset.validation or ())
    if not ids:
        raise InputError("no validation list in this data's pinned split: --split validation needs one (models/checkpoints/splits/)")
    return [p for p in dataset.train if p.id in ids], [p for p in dataset.train if p.id not in ids]


def _figures(row: Mapping[str, float]) -> dict[str, float | None]:
    """One piece's `SUMMARY_METRICS`, rounded as the report rounds them (None where undefined)."""
    return {m: (round(float(row[m]), 4) if row[m] is not None and math.isfinite(row[m]) else None) for m in SUMMARY_METRICS}


def _held_out_section(held: Sequence[Any], generated_rows: Sequence[Mapping[str, float]], real_rows: Sequence[Mapping[str, float]]) -> dict:
    """The report's ``held_out`` part: the means over the pieces beside the real music's, the bounds,
    and ``per_piece`` (each piece's own figures, by id: what a quick check of a card recomputes)."""
    generated, real = _summary(generated_rows), _summary(real_rows)
    section: dict[str, Any] = {
        "pieces": len(held),
        "bars": int(sum(p.n_bars for p in held)),
        "generated": {k: round(v, 4) for k, v in generated.items()},
        "real": {k: round(v, 4) for k, v in real.items()},
        "comparison": _compare(generated, real),
    }
    section["all_ok"] = all(row["ok"] for row in section["comparison"].values())
    section["per_piece"] = {
        p.id: {"bars": int(p.n_bars), "generated": _figures(g), "real": _figures(r)}
        for p, g, r in zip(held, generated_rows, real_rows, strict=True)
    }
    return section


def _named_held_out(genre: str, split_file: str | None, ids: Sequence[str], reduction: str | None = None) -> tuple[list[Any], str]:
    """The held-out pieces `ids` of `genre`, read alone, and the split file that holds them out; an
    id that is not on the pinned held-out list is an `InputError` (a training piece is no test)."""
    pinned = Path(split_file) if split_file else DatasetConfig(genre).pinned_split
    if pinned is None:
        raise InputError(f"no pinned split for '{genre}': evaluating named pieces needs one (models/checkpoints/splits/)")
    held_out = set(read_split(pinned).held_out)
    stray = [i for i in ids if i not in held_out]
    if stray:
        raise InputError(f"'{stray[0]}' is not a held-out piece of {_repo_relative(pinned)}: name pieces from its held_out list")
    return read_pieces(genre, ids, reduction=reduction), _repo_relative(pinned)


def _evaluate_pieces(
    registry: ModelRegistry, card: Any, genre: str, split_file: str | None, config: EvaluationConfig, t0: float, say: Any
) -> dict[str, Any]:
    """`evaluate` on the named held-out pieces alone (`EvaluationConfig.pieces`): their held-out
    figures, each piece's and their means, the same numbers a whole evaluation gives those pieces."""
    held, pinned = _named_held_out(genre, split_file, list(dict.fromkeys(config.pieces or ())), card.training.get("reduction"))
    say(f"evaluating {card.name} on {len(held)} named held-out {genre} pieces")
    params = dict(config.params or {})
    generated_rows, real_rows = [], []
    for piece in held:
        tracks = piece.tracks
        accompaniment = _generate(registry, card.name, tracks[0], piece.grid, params, config.seed)
        generated_rows.append(piece_metrics(tracks[0], accompaniment, piece.grid))
        real_rows.append(piece_metrics(tracks[0], tracks[1:], piece.grid))
    return {
        "model": card.name,
        "family": card.family,
        "data": genre,
        "seed": config.seed,
        "params": card.resolve_params(params),
        "held_out": _held_out_section(held, generated_rows, real_rows),
        "named_pieces": [p.id for p in held],
        "seconds": round(time.perf_counter() - t0, 1),
        "how": (
            f"python -m studio evaluate --model {card.name} --pieces {','.join(p.id for p in held)}: seed {config.seed}, default "
            f"parameters unless given; only these held-out pieces of '{genre}' (on the held-out list of {pinned}), each read alone "
            "(studio.training.data.read_pieces), so no copy check, musicianship or unseen tunes (they need the training pieces "
            "or take minutes); each piece's figures are the ones a whole evaluation gives it"
        ),
    }


def _repo_relative(path: str | Path) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


def _split_label(dataset: Any) -> str:
    """The split file a dataset was read with, repo-relative, or how it was drawn."""

    facts = dataset.info.get("split", {})
    if "file" not in facts:
        return f"none: {facts.get('how', 'seeded draw')}"
    return _repo_relative(facts["file"])


def _split_file(config: EvaluationConfig, card: Any, genre: str) -> str | None:
    """The split file to read (`studio.training.data.DatasetConfig.split_file`): the one asked for, else for a
    folder of MIDI files the one the card names (written by its training run), else the committed one."""

    named = config.split_file or (card.training.get("split_file") if genre.startswith("folder:") else None)
    if not named:
        return None
    path = Path(named)
    return str(path if path.is_absolute() else REPO_ROOT / path)


def _likelihood(registry: ModelRegistry, card: Any, dataset: Any, held: Sequence[Any], say: Any) -> dict[str, Any] | None:
    """Held-out negative log-likelihood for models that have one (the AR-CNN), beside its family's
    baseline; None for the others."""

    model = registry.get(card.name)
    if not isinstance(model, LikelihoodScorer):
        return None
    say("held-out likelihood, and the baseline's")
    n_voices = len(card.tracks) + 1
    pitched = [i for i, drum in enumerate(held[0].drums) if not drum][:n_voices]
    held_voices = [voice_piece(p, pitched) for p in held]
    report = {"model": model.held_out_nll(held_voices)}
    module = family(card.family)
    if isinstance(module, BaselineFamily):
        train_voices = [voice_piece(p, pitched) for p in dataset.train]
        report["baseline_independent_voices"] = module.unigram_nll(train_voices, held_voices, n_voices)
    report["how"] = (
        "nats per 16th-note frame on the held-out pieces, whole and untransposed: voice_given_others erases one "
        "voice for the whole piece and scores each of its frames given the other three voices (Coconet's frame-level "
        "conditional likelihood; per voice and the mean); half_erased erases a random half of all cells (seed 0) and "
        "scores them. Baseline: each voice's own token frequencies in training (an independent per-voice model)."
    )
    return report


def _percentile(values: Sequence[float], q: float) -> float:
    finite = sorted(v for v in values if math.isfinite(v))
    return float(np.percentile(finite, q)) if finite else float("nan")


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a few readable lines (what the CLI prints without --json)."""
    writes = family_writes(str(report.get("family", "")))
    if writes == "melody":
        return format_continuation(report)
    if writes == "variation":
        return format_variations(report)
    split = "validation" if "validation" in report else "held_out"
    held = report[split]
    lines = [
        f"{report['model']} on {held['pieces']} {_SPLIT_WORDS[split]} {report['data']} pieces ({held['bars']} bars), seed {report['seed']}:"
    ]
    lines.append(f"  {'metric':26s} {'generated':>10s} {'real':>8s}  bound")
    for metric, row in held["comparison"].items():
        mark = "ok" if row["ok"] else "MISSED"
        lines.append(f"  {metric:26s} {row['generated']:10.3f} {row['real']:8.3f}  {row['bound']}: {mark}")
    if "named_pieces" in report:  # `evaluate --pieces`: each named piece's own figures
        for pid, row in held["per_piece"].items():
            figures = ", ".join(
                f"{m} {row['generated'][m]} (real {row['real'][m]})" for m in ("in_key_rate", "consonance", "used_pitch_classes")
            )
            lines.append(f"  {pid} ({row['bars']} bars): {figures}")
    if "musicianship" in report:
        heard = report["musicianship"]
        generated = dict(heard["generated"], classifier_accuracy=heard["classifier_accuracy"])
        columns = {"generated": generated, "real": heard["real"]}
        if "musicianship" in report.get("unseen", {}):
            columns[f"unseen ({report['unseen']['tunes']})"] = report["unseen"]["musicianship"]
        lines.append("  what a musician hears (pooled over pieces; see studio.training.musicianship):")
        lines += ["    " + line for line in format_table(columns).splitlines()]
        for where, checks in (("held-out", heard.get("bounds")), ("unseen", report.get("unseen", {}).get("musicianship_bounds"))):
            if checks:
                missed = [f"{k} {c['generated']:.3f} (bound {c['bound']})" for k, c in checks.items() if not c["ok"]]
                lines.append(
                    f"  issue 21's bounds, {where}: {len(checks) - len(missed)} of {len(checks)} met"
                    + (f"; missed: {'; '.join(missed)}" if missed else "")
                )
        if heard.get("classifier_by_group"):
            groups = "; ".join(f"{name} {row['alone']:.2f} / {row['made_real']:.2f}" for name, row in heard["classifier_by_group"].items())
            lines.append(f"  what gives it away (the classifier on each group alone / with that group made real): {groups}")
    if "copy" in report:
        c = report["copy"]
        lines.append(
            f"  copied bars: {c['copied_bars']} of {c['bars']} ({c['copied_share']:.2%}) have a training bar with >= 90% of their notes"
        )
    if "unseen" in report:
        u = report["unseen"]
        lines.append(
            f"  {u['tunes']} unseen tunes ({', '.join(u['meters'])}): in-key {u['in_key_mean']:.3f} (p10 {u['in_key_p10']:.3f}), "
            f"consonance {u['consonance_mean']:.3f} (p10 {u['consonance_p10']:.3f}), "
            f"2+ tracks over 95% of bars in {u['share_with_2_tracks_covering_95']:.0%} of tunes, "
            f"parallel fifths/octaves in {u.get('parallel_fifths_octaves', float('nan')):.1%} of moves together"
        )
    if "nll" in report:
        m, b = report["nll"]["model"], report["nll"].get("baseline_independent_voices")
        lines.append(
            f"  held-out NLL (nats/frame): a voice given the others {m['voice_given_others_mean']:.3f} "
            f"({', '.join(f'{k} {v:.3f}' for k, v in m['voice_given_others'].items())}); half erased {m['half_erased']:.3f}"
            + (f"; independent per-voice baseline {b['mean']:.3f}" if b else "")
        )
    lines.append(f"  ({report['seconds']} s)")
    return "\n".join(lines)

"""What a musician hears, real music beside generated: `studio.core.voice_leading` over sets of pieces.

Used by `studio.training.evaluate` (the ``musicianship`` part of its report) and `bench.musicianship`.

- Voices: the melody, then the accompaniment high to low (`studio.core.voice_leading.order_voices`).
- Ranges (`genre_ranges`): the chorale voices keep the textbook SATB ranges (alto F3-D5, tenor C3-G4,
  bass E2-C4); every other genre's voices get the 1st-99th percentile of their notes in the genre's
  *training* pieces (never the held-out ones the figures are reported on, so that real music's own
  out-of-range share is measured, not 2% by construction). Another model's voices are matched by
  name, then by place (`studio.core.voice_leading.ranges_for`).
- Histogram distances: the Jensen-Shannon divergence (log base 2, 0..1) of the generated pieces'
  pooled melodic-interval (or duration) histogram against the real pieces' one. Real music's own
  figure beside it is the divergence between its odd and even pieces (how far two samples of the same
  music are at this size: the noise floor).
- Classifier: `studio.core.voice_leading.classifier_accuracy` on `piece_features` with three
  accompaniment voices (a fourth and more are left out of the per-voice features; missing ones are zeros).
- Bounds (`BOUNDS`, `check_bounds`): issue 21's acceptance lines on these figures. Parallel fifths and
  octaves at most 1% of moves together, notes out of range 2%, leaps over an octave 0.5%, crossings
  5% of chords, each raised to twice the real genre's own figure where the real music exceeds it
  (real quartets double in octaves, five-voice Palestrina crosses); the classifier at most 0.75. The
  issue asks for the repeated-note share and the two histograms "within a stated distance" of the
  real genre's; the distances stated here (2026-12-06, after the figures of the table in
  docs/models/README.md were known, so read them as a yardstick, not as a test designed blind):
  repeated notes within 0.05 of the real share (one move in twenty), each histogram's JS divergence
  at most 0.05 bits (about a quarter of the weight of two even bins moved from one to the other).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.part_writing import training_ranges
from studio.core.roll import RollTrack
from studio.core.voice_leading import (
    SATB_RANGES,
    classifier_accuracy,
    classifier_by_group,
    js_divergence,
    order_voices,
    piece_counts,
    piece_features,
    pooled_rates,
    ranges_for,
)

__all__ = [
    "BOUNDS",
    "FEATURE_VOICES",
    "FIGURES",
    "Bound",
    "PieceRecord",
    "check_bounds",
    "compare_sets",
    "format_table",
    "generated_rates",
    "genre_ranges",
    "record",
]

FEATURE_VOICES = 3  # accompaniment voices in the classifier's per-voice features
# The figures, in table order: key -> label.
FIGURES = {
    "parallel_fifths_octaves": "parallel 5ths/8ves (share of moves together)",
    "parallel_by_contrary_motion": "  of which by contrary motion",
    "hidden_fifths_octaves": "hidden 5ths/8ves (share of moves together)",
    "crossings_per_chord": "voice crossings (share of chords)",
    "overlaps_per_move": "voice overlaps (share of moves)",
    "out_of_range": "notes outside the voice's range",
    "leaps_over_octave": "leaps over an octave (share of moves)",
    "repeated_notes": "repeated notes (share of moves)",
    "accompaniment_span": "accompaniment range (semitones, mean)",
    "interval_js": "melodic-interval histogram, JS vs real",
    "duration_js": "duration histogram, JS vs real",
    "classifier_accuracy": "real-vs-generated classifier (LOO accuracy)",
}


@dataclass(frozen=True)
class Bound:
    """One acceptance line on a figure (`check_bounds`): at most `limit` (`kind` "at most"; with
    `doubled`, raised to twice the real figure where the real one exceeds `limit`), or within `limit`
    of the real figure (`kind` "near")."""

    limit: float
    kind: str = "at most"
    doubled: bool = False

    def check(self, generated: float, real: float | None) -> tuple[bool, str]:
        """Whether `generated` meets the bound, and the bound in words (with the limit it used)."""
        if self.kind == "near":
            if real is None:
                return False, f"within {self.limit:g} of real (no real figure)"
            return abs(
                generated - real
            ) <= self.limit + 1e-12, f"within {self.limit:g} of real ({real - self.limit:.3f}-{real + self.limit:.3f})"
        limit = self.limit
        if self.doubled and real is not None and real > limit:
            limit = 2.0 * real
            return generated <= limit + 1e-12, f"<= {limit:.3f} (twice real's {real:.3f})"
        return generated <= limit + 1e-12, f"<= {limit:g}"


# Issue 21's acceptance bounds (see the module docstring), by figure.
BOUNDS = {
    "parallel_fifths_octaves": Bound(0.01, doubled=True),
    "crossings_per_chord": Bound(0.05, doubled=True),
    "out_of_range": Bound(0.02, doubled=True),
    "leaps_over_octave": Bound(0.005, doubled=True),
    "repeated_notes": Bound(0.05, kind="near"),
    "interval_js": Bound(0.05),
    "duration_js": Bound(0.05),
    "classifier_accuracy": Bound(0.75),
}


def check_bounds(generated: Mapping[str, Any], real: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`BOUNDS` on the figures `generated` has (a figure it lacks, or that is undefined, is left
    out): per figure its value, the real one, the bound in words and whether it is met. `real` is
    the genre's real music: the same pieces, or for unseen tunes the genre's held-out pieces."""
    out = {}
    for key, bound in BOUNDS.items():
        value = generated.get(key)
        if value is None or not math.isfinite(value):
            continue
        theirs = real.get(key)
        theirs = float(theirs) if theirs is not None and math.isfinite(theirs) else None
        ok, words = bound.check(float(value), theirs)
        out[key] = {"generated": value, "real": theirs, "bound": words, "ok": bool(ok)}
    return out


@dataclass
class PieceRecord:
    """One piece's counts (`studio.core.voice_leading.piece_counts`) and classifier features."""

    counts: dict[str, Any]
    features: np.ndarray


def genre_ranges(genre: str, train: Sequence[Any]) -> dict[str, tuple[int, int]]:
    """The accompaniment voices' ranges of a genre, high to low (see the module docstring): SATB for
    ``chorale``, else the 1st-99th percentile of each accompaniment track's pitches over `train`
    (`studio.training.data.Piece`s, whose voices are monophonic)."""
    if genre == "chorale":
        return {name: SATB_RANGES[name] for name in ("Alto", "Tenor", "Bass")}
    if not train:
        return {}
    names = train[0].track_names
    same = [p for p in train if p.track_names == names]
    return dict(zip(names[1:], training_ranges(same, range(1, len(names))), strict=True))


def record(melody: RollTrack, accompaniment: Sequence[RollTrack], reference: Mapping[str, tuple[int, int]]) -> PieceRecord:
    """The counts and features of one accompanied melody, voices ordered and ranged against `reference`."""
    voices = order_voices(melody, accompaniment)
    ranges = ranges_for([t.name for t in voices[1:]], reference)
    return PieceRecord(piece_counts(voices, ranges), piece_features(voices, FEATURE_VOICES))


def _pooled(records: Sequence[PieceRecord], key: str) -> np.ndarray:
    return np.sum([r.counts[key] for r in records], axis=0) if records else np.zeros(1)


def generated_rates(records: Sequence[PieceRecord]) -> dict[str, float]:
    """The pooled rates of some pieces (no real counterpart: unseen tunes)."""
    return {k: _round(v) for k, v in pooled_rates([r.counts for r in records]).items()}


def compare_sets(real: Sequence[PieceRecord], generated: Sequence[PieceRecord]) -> dict[str, Any]:
    """Real and generated figures of the same pieces (row i of both from the same melody): pooled
    rates, histogram distances (real's own: odd against even pieces) and the classifier's accuracy."""
    out: dict[str, Any] = {"pieces": len(real), "real": generated_rates(real), "generated": generated_rates(generated)}
    for key, name in (("interval_histogram", "interval_js"), ("duration_histogram", "duration_js")):
        out["real"][name] = _round(js_divergence(_pooled(real[0::2], key), _pooled(real[1::2], key))) if len(real) >= 2 else None
        out["generated"][name] = _round(js_divergence(_pooled(generated, key), _pooled(real, key)))
    out["real"]["interval_histogram"] = _pooled(real, "interval_histogram").tolist()
    out["generated"]["interval_histogram"] = _pooled(generated, "interval_histogram").tolist()
    out["real"]["duration_histogram"] = _pooled(real, "duration_histogram").tolist()
    out["generated"]["duration_histogram"] = _pooled(generated, "duration_histogram").tolist()
    real_features, generated_features = np.array([r.features for r in real]), np.array([g.features for g in generated])
    out["classifier_accuracy"] = _round(classifier_accuracy(real_features, generated_features))
    if len(real) >= 2:  # what gives it away, group by group (alone; made real)
        by_group = classifier_by_group(real_features, generated_features, FEATURE_VOICES)
        out["classifier_by_group"] = {name: {k: _round(v) for k, v in row.items()} for name, row in by_group.items()}
    return out


def _round(value: float | None) -> float | None:
    """4 decimals; None for nan (JSON has no nan)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 4)


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key == "accompaniment_span" else f"{value:.3f}"


def format_table(
    columns: Mapping[str, Mapping[str, Any]],
    markdown: bool = False,
    figures: Mapping[str, str] = FIGURES,
    cell: Callable[[Any, str], str] | None = None,
) -> str:
    """A table of `figures` (rows: key -> label; default `FIGURES`) by `columns` (name -> figures; a
    missing figure prints as -); `cell` writes one value (default: three decimals)."""
    cell = cell or _cell
    names = list(columns)
    rows = [[label, *(cell(columns[c].get(key), key) for c in names)] for key, label in figures.items()]
    if markdown:
        head = "| | " + " | ".join(names) + " |"
        return "\n".join([head, "|---" * (len(names) + 1) + "|", *("| " + " | ".join(r) + " |" for r in rows)])
    width = max(len(label) for label in figures.values())
    cols = [max(8, len(n)) for n in names]
    lines = [" " * width + "  " + "  ".join(n.rjust(w) for n, w in zip(names, cols, strict=True))]
    lines += [r[0].ljust(width) + "  " + "  ".join(v.rjust(w) for v, w in zip(r[1:], cols, strict=True)) for r in rows]
    return "\n".join(lines)

"""Passing notes: a voice that leaps a third into a beat fills it with the step between, as the genre's
own voices do (issue 21: melodic intervals and note lengths).

Bach's inner voices walk: of their moves 62% are steps and 39% of their notes are eighths, most of
them passing notes that fill a third between two beats (a quarter C, then E on the next beat, sung as
the eighths C D, then E). The AR-CNN writes the chord tones on the beats well but leaps the third more
often than he does (its steps 50%, eighths 30% on the validation chorales), which is what a classifier
on per-piece interval and length shares tells from him first (docs/models/arcnn-chorale.md).

A *third place* is a note of an accompanying voice, at least a beat long (`MIN_SKELETON_STEPS`),
followed at once by a note a third away (3 or 4 semitones) that starts on a beat. It is *filled* when
the last eighth (`PASSING_STEPS`) of the first note is the pitch between them, a step from both (the
music as written: the first note shortened, then the passing note). Places are told apart by four
situations: the first note (with its passing note) a beat long or longer, and the melody starting a
note under the passing note or holding.

`passing_odds` reads, per situation, the share of places filled in a genre's training pieces;
`fill_thirds` fills a model's unfilled places with given odds (`bench/passing.py` sets them so that
the model's filled share on training melodies becomes the genre's), choosing the pitch in the
melody's key and skipping a fill that would cross a voice or move in parallel fifths or octaves with
one. Every other note is kept as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from studio.core.conditioning import tokens_to_pitches
from studio.core.part_writing import note_spans

__all__ = [
    "MIN_SKELETON_STEPS",
    "PASSING_STEPS",
    "PASSING_STREAM",
    "SITUATIONS",
    "faults_if_sung",
    "fill_for_seed",
    "fill_thirds",
    "passing_counts",
    "passing_odds",
    "third_places",
]

PASSING_STEPS = 2  # a passing note is an eighth on the 16th-note grid
MIN_SKELETON_STEPS = 4  # the note it is taken from is at least a quarter long, passing note included
PASSING_STREAM = 3  # a take's fills draw from numpy's generator seeded by (the take's seed, this)
SITUATIONS = (
    "a beat long, the melody starts a note under the passing note",
    "a beat long, the melody holds",
    "longer, the melody starts a note",
    "longer, the melody holds",
)
_PERFECT = (0, 7)  # interval classes whose parallels are faults (unisons and octaves, fifths)


def _notes(line: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first step, step after the last, pitch) of each note of one voice's pitches (T,) (-1 = rest)."""
    first, ends = note_spans(line, starts)
    return first, ends, np.asarray(line)[first]


def _situation(first: int, end: int, melody_starts: np.ndarray) -> int:
    """The index in `SITUATIONS` of a place whose first note (with its passing note) spans first..end."""
    longer = end - first > MIN_SKELETON_STEPS
    return 2 * int(longer) + (0 if melody_starts[end - PASSING_STEPS] else 1)


def _is_third(a: int, b: int) -> bool:
    return abs(int(b) - int(a)) in (3, 4)


def _between(a: int, p: int, b: int) -> bool:
    """`p` lies strictly between `a` and `b`, a step (1 or 2 semitones) from both."""
    return min(a, b) < p < max(a, b) and abs(p - a) <= 2 and abs(b - p) <= 2


def third_places(
    pitches: np.ndarray, starts: np.ndarray, melody_starts: np.ndarray, on_beat: np.ndarray
) -> list[tuple[int, int, int, int, bool]]:
    """The third places of the accompanying voices (rows 1.. of `pitches` (V, T), -1 = rest; `starts`
    (V, T) re-strikes): ``(voice, first, end, situation, filled)``, the first note (with its passing
    note when filled) sounding from step `first` to `end`, where the next note starts on a beat."""
    pitches, starts = np.asarray(pitches), np.asarray(starts, bool)
    melody_starts, on_beat = np.asarray(melody_starts, bool), np.asarray(on_beat, bool)
    out = []
    for v in range(1, pitches.shape[0]):
        first, ends, pitch = _notes(pitches[v], starts[v])
        for i in range(len(first) - 1):
            end = int(ends[i])
            if first[i + 1] != end or not on_beat[end]:
                continue  # a rest between, or the next note is not on a beat
            if _is_third(pitch[i], pitch[i + 1]) and end - first[i] >= MIN_SKELETON_STEPS:
                out.append((v, int(first[i]), end, _situation(int(first[i]), end, melody_starts), False))
            elif (
                i > 0
                and end - first[i] == PASSING_STEPS
                and ends[i - 1] == first[i]
                and end - first[i - 1] >= MIN_SKELETON_STEPS
                and _is_third(pitch[i - 1], pitch[i + 1])
                and _between(int(pitch[i - 1]), int(pitch[i]), int(pitch[i + 1]))
            ):
                out.append((v, int(first[i - 1]), end, _situation(int(first[i - 1]), end, melody_starts), True))
    return out


def passing_counts(pitches: np.ndarray, starts: np.ndarray, melody_starts: np.ndarray, on_beat: np.ndarray) -> np.ndarray:
    """Shape (2, 4): per situation, the third places filled (row 0) and all third places (row 1)."""
    out = np.zeros((2, len(SITUATIONS)))
    for _v, _first, _end, situation, filled in third_places(pitches, starts, melody_starts, on_beat):
        out[0, situation] += filled
        out[1, situation] += 1
    return out


def _piece_counts(tokens: np.ndarray, onsets: np.ndarray, on_beat: np.ndarray) -> np.ndarray:
    pitches = tokens_to_pitches(tokens)
    onsets = np.asarray(onsets, bool)
    return passing_counts(pitches, onsets, onsets[0] & (pitches[0] >= 0), on_beat)


def passing_odds(pieces: Iterable[object]) -> tuple[float, float, float, float]:
    """The share of third places filled in each situation over `pieces` (each with `tokens` and
    `onsets` (V, T), the melody first, and `meter` (T, F) whose column 1 marks the beats, as
    `studio.core.voices.VoicePiece`); 0 for a situation that never occurs."""
    total = sum((_piece_counts(p.tokens, p.onsets, np.asarray(p.meter)[:, 1] > 0) for p in pieces), np.zeros((2, len(SITUATIONS))))
    return tuple(round(float(f / n), 4) if n else 0.0 for f, n in zip(total[0], total[1], strict=True))  # type: ignore[return-value]


def faults_if_sung(pitches: np.ndarray, v: int, at: int, end: int, p: int) -> bool:
    """Whether voice `v` sounding `p` over steps at..end (instead of its pitch before) would cross a
    sounding voice or move in parallel fifths or octaves (unisons included) with one, into `at` or into `end`."""
    before, after = int(pitches[v, at - 1]), int(pitches[v, end])
    for u in range(pitches.shape[0]):
        if u == v:
            continue
        x0, x1, x2 = (int(pitches[u, t]) for t in (at - 1, at, end))
        under = pitches[u, at:end]
        under = under[under >= 0]
        if len(under) and ((under <= p).any() if u < v else (under >= p).any()):
            return True  # a voice above would be at or under the passing note (or one below at or over it)
        for (a0, b0), (a1, b1) in (((before, x0), (p, x1)), ((p, x1), (after, x2))):
            if min(a0, b0, a1, b1) < 0 or b1 == b0 or a1 == a0:
                continue  # a rest, or one of the two does not move
            if abs(a0 - b0) % 12 in _PERFECT and abs(a1 - b1) % 12 == abs(a0 - b0) % 12:
                return True
    return False


def fill_thirds(
    pitches: np.ndarray,
    starts: np.ndarray,
    melody_starts: np.ndarray,
    on_beat: np.ndarray,
    odds: tuple[float, ...],
    in_key: frozenset[int],
    rng: np.random.Generator,
    where: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Voices `pitches` (V, T; row 0 the melody, never changed) and re-strikes `starts` (V, T) with each
    unfilled third place filled with the probability `odds` gives its situation: the last eighth of the
    first note becomes the pitch between the two (in `in_key`, the pitch classes of the melody's key;
    of two, the one the take sounds more), unless that would cross a voice or move in parallel fifths or
    octaves with one. Only places wholly inside `where` (V, T) when given. No odds: unchanged (copies)."""
    pitches, starts = np.array(pitches), np.array(starts, bool)
    if len(odds) != len(SITUATIONS):
        return pitches, starts
    inside = None if where is None else np.asarray(where, bool)
    sounding = pitches[pitches >= 0]
    weight = np.bincount(sounding % 12, minlength=12) if len(sounding) else np.zeros(12, np.int64)
    for v, first, end, situation, filled in third_places(pitches, starts, melody_starts, on_beat):
        if filled or rng.random() >= odds[situation]:
            continue
        if inside is not None and not inside[v, first : end + 1].all():
            continue
        a, b = int(pitches[v, first]), int(pitches[v, end])
        at = end - PASSING_STEPS
        choices = [p for p in range(min(a, b) + 1, max(a, b)) if _between(a, p, b) and p % 12 in in_key]
        if not choices:
            continue
        p = max(choices, key=lambda q: (weight[q % 12], -abs(q - a)))
        if faults_if_sung(pitches, v, at, end, p):
            continue
        pitches[v, at:end] = p
        starts[v, at] = True
    return pitches, starts


def fill_for_seed(
    pitches: np.ndarray,
    starts: np.ndarray,
    melody_starts: np.ndarray,
    on_beat: np.ndarray,
    odds: tuple[float, ...],
    in_key: frozenset[int],
    seed: int,
    where: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`fill_thirds` for a take, drawing from the take's `seed` alone (so batching or the device
    changes nothing). No odds: unchanged."""
    rng = np.random.default_rng([int(seed), PASSING_STREAM])
    return fill_thirds(pitches, starts, melody_starts, on_beat, odds, in_key, rng, where)

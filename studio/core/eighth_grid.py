"""Notes that start between the eighths, moved onto them as often as the genre's voices have them there
(issue 21: note lengths).

Bach's inner voices start a note on a sixteenth between two eighths in 1.6% of their notes, almost all
of them the second of two sixteenths that lead into a beat (an eighth, then two sixteenths). The
AR-CNN does so twice as often, mostly in figures he does not write: a sixteenth on the beat and a
dotted eighth after it, or a dotted eighth and a sixteenth (on the validation chorales its notes of
one sixteenth were 4.9% against his 2.7%, of three 1.5% against 0.3%), and these lengths are what a
classifier on per-piece length shares tells from him first (docs/models/README.md).

A *movable* start is a note of an accompanying voice that starts on an odd sixteenth (between the
eighths of the 16th-note grid) right after another note of the same voice, where one of the two
notes can give a sixteenth to the other so that the start lands on an eighth with both notes still
at least a sixteenth long: moved back when the note before is longer than a sixteenth (a dotted
eighth and a sixteenth become two eighths), else forward (a sixteenth and a dotted eighth become two
eighths). Two sixteenths leading into a beat (an eighth, then a sixteenth, then a sixteenth) have
no movable start: neither can give one.

`movable_share` reads the share of a genre's notes that are movable starts; `snap_starts` moves a
model's with the share (`bench/eighth_grid.py` sets it so that the model's share on training
melodies becomes the genre's), skipping a move that would cross a voice or move in parallel fifths
or octaves with one. Pitches and every other start are kept.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from studio.core.conditioning import tokens_to_pitches
from studio.core.part_writing import note_spans
from studio.core.passing_notes import faults_if_sung

__all__ = ["SNAP_STREAM", "movable_counts", "movable_share", "movable_starts", "snap_for_seed", "snap_starts"]

SNAP_STREAM = 4  # a take's moves draw from numpy's generator seeded by (the take's seed, this)


def movable_starts(pitches: np.ndarray, starts: np.ndarray) -> list[tuple[int, int, int]]:
    """The movable starts of the accompanying voices (rows 1.. of `pitches` (V, T), -1 = rest;
    `starts` (V, T) re-strikes): ``(voice, step, direction)``, -1 to move the start a sixteenth back,
    +1 forward (see the module docstring)."""
    pitches, starts = np.asarray(pitches), np.asarray(starts, bool)
    out = []
    for v in range(1, pitches.shape[0]):
        first, ends = note_spans(pitches[v], starts[v])
        for i in range(1, len(first)):
            s = int(first[i])
            if s % 2 == 0 or ends[i - 1] != s:
                continue  # on an eighth, or after a rest
            if s - first[i - 1] >= 2:
                out.append((v, s, -1))
            elif ends[i] - s >= 2:
                out.append((v, s, +1))
    return out


def movable_counts(pitches: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Shape (2,): the accompanying voices' movable starts and all their notes."""
    pitches, starts = np.asarray(pitches), np.asarray(starts, bool)
    notes = sum(len(note_spans(pitches[v], starts[v])[0]) for v in range(1, pitches.shape[0]))
    return np.array([len(movable_starts(pitches, starts)), notes], float)


def movable_share(pieces: Iterable[object]) -> float:
    """The share of the accompanying voices' notes that are movable starts, over `pieces` (each with
    `tokens` and `onsets` (V, T), the melody first, as `studio.core.voices.VoicePiece`)."""
    total = sum((movable_counts(tokens_to_pitches(p.tokens), p.onsets) for p in pieces), np.zeros(2))
    return round(float(total[0] / total[1]), 4) if total[1] else 0.0


def snap_starts(
    pitches: np.ndarray, starts: np.ndarray, share: float, rng: np.random.Generator, where: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Voices `pitches` (V, T; row 0 the melody, never changed) and re-strikes `starts` (V, T) with each
    movable start moved onto its eighth with the probability `share`, unless the sixteenth that
    changes hands would cross a voice or move in parallel fifths or octaves with one. Only inside
    `where` (V, T) when given. Share 0: unchanged (copies)."""
    pitches, starts = np.array(pitches), np.array(starts, bool)
    if share <= 0:
        return pitches, starts
    inside = None if where is None else np.asarray(where, bool)
    for v, s, direction in movable_starts(pitches, starts):
        if rng.random() >= share or (inside is not None and not inside[v, s - 1 : s + 2].all()):
            continue
        before, after = int(pitches[v, s - 1]), int(pitches[v, s])
        if direction < 0:  # the note starts a sixteenth earlier, on the eighth
            if faults_if_sung(pitches, v, s - 1, s, after):
                continue
            pitches[v, s - 1] = after
            starts[v, s], starts[v, s - 1] = False, True
        else:  # the note before holds a sixteenth longer
            if faults_if_sung(pitches, v, s, s + 1, before):
                continue
            pitches[v, s] = before
            starts[v, s], starts[v, s + 1] = False, True
    return pitches, starts


def snap_for_seed(
    pitches: np.ndarray, starts: np.ndarray, share: float, seed: int, where: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`snap_starts` for a take, drawing from the take's `seed` alone (so batching or the device
    changes nothing). Share 0: unchanged."""
    rng = np.random.default_rng([int(seed), SNAP_STREAM])
    return snap_starts(pitches, starts, share, rng, where)

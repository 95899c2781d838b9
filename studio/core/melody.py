"""Find the melody of a song: pick the melody track (never drums) and make it monophonic (skyline).

A single melodic track passes through; from a multi-track song the track that looks most like a
tune wins: high, mostly one note at a time, present through the piece, or named like a melody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from studio.core.score import Note, Score, Track

__all__ = ["MelodyChoice", "extract_melody", "melody_track_scores", "skyline"]

_MELODY_NAMES = re.compile(r"melod|lead|vocal|voice|voc\b|sopran|tune|solo|canto|cantus|singer|violin\s*(1|i)\b", re.I)
_ACCOMP_NAMES = re.compile(r"bass|drum|perc|chord|accomp|pad|rhythm|comp\b|harmon|alto|tenor|string|left", re.I)


@dataclass
class MelodyChoice:
    """The melody line (`track.notes` monophonic, ticks unchanged) and which input track it came from."""

    track: Track
    source_index: int
    warnings: list[str]


def skyline(notes: list[Note], tolerance: int = 0) -> list[Note]:
    """Keep the highest note of each onset and end each kept note where the next one starts.

    Notes whose onsets differ by at most `tolerance` ticks count as one chord (onsets measured from the
    chord's first, kept note). A monophonic line comes back unchanged (notes that end before the next
    one starts keep their ends).
    """
    if not notes:
        return []
    n = len(notes)
    start = np.fromiter((note.start for note in notes), np.int64, n)
    pitch = np.fromiter((note.pitch for note in notes), np.int64, n)
    order = np.argsort(-pitch, kind="stable")
    order = order[np.argsort(start[order], kind="stable")]  # by (start, -pitch), ties in input order
    tops = order[_chord_heads(start[order], tolerance)]
    line = [notes[i] for i in tops.tolist()]
    end = np.fromiter((note.end for note in line), np.int64, len(line))
    cut = end.copy()
    cut[:-1] = np.minimum(end[:-1], start[tops[1:]])
    for i in np.flatnonzero(cut < end).tolist():  # notes are frozen: the uncut ones come back as they are
        note = line[i]
        line[i] = Note(note.start, int(cut[i]), note.pitch, note.velocity)
    return [note for note, sounds in zip(line, (cut > start[tops]).tolist(), strict=True) if sounds]


def _chord_heads(start: np.ndarray, tolerance: int) -> np.ndarray:
    """Indices of the notes that begin a chord among sorted onsets `start`: the first note, then each
    first note more than `tolerance` after the last chord's first note (the chain of "next chord"
    links from note 0, followed by pointer doubling: O(n log n))."""
    n = len(start)
    following = np.maximum(np.searchsorted(start, start + tolerance, side="right"), np.arange(1, n + 1))
    jump = np.append(following, n)  # from each note, the first note of the next chord (n: none)
    heads = np.zeros(1, np.int64)  # the chain's first 2**k links, in order
    while True:
        more = jump[heads]
        more = more[more < n]
        if not more.size:
            return heads
        heads = np.concatenate([heads, more])
        jump = jump[jump]


def _monophony(notes: list[Note]) -> float:
    """Share of notes that overlap no other note of the track."""
    if len(notes) < 2:
        return 1.0
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    running_end = np.maximum.accumulate(ends)
    overlaps_prev = np.zeros(len(notes), bool)
    overlaps_prev[1:] = starts[1:] < running_end[:-1]
    overlaps = overlaps_prev.copy()
    overlaps[:-1] |= overlaps_prev[1:]
    return float(1.0 - overlaps.mean())


def melody_track_scores(score: Score) -> list[float]:
    """How much each track looks like the melody (higher is more; drums and empty tracks get -inf)."""
    return _scores_and_lines(score)[0]


def _scores_and_lines(score: Score) -> tuple[list[float], list[list[Note]]]:
    """`melody_track_scores`, and each track's `skyline` (computed once: a track of 20,000 notes
    takes a tenth of a second)."""
    span = max(1, score.end_tick)
    tracks = score.tracks
    lines = [skyline(t.notes) for t in tracks]
    means = [float(np.mean([n.pitch for n in line])) if t.notes else 0.0 for t, line in zip(tracks, lines, strict=True)]
    best_mean = max((m for m, t in zip(means, tracks, strict=True) if not t.is_drum), default=0.0)
    scores = []
    for track, mean, line in zip(tracks, means, lines, strict=True):
        if track.is_drum or not track.notes:
            scores.append(float("-inf"))
            continue
        coverage = sum(n.end - n.start for n in line) / span
        value = (mean - best_mean) / 6.0  # each half-octave below the highest track costs one point
        value += 4.0 * _monophony(track.notes)  # a tune is one note at a time; a chord part is not
        value += 1.0 * min(1.0, coverage)
        if _MELODY_NAMES.search(track.name):
            value += 3.0
        elif _ACCOMP_NAMES.search(track.name):
            value -= 1.5
        if 32 <= track.program <= 39:  # GM bass family
            value -= 2.0
        if 88 <= track.program <= 103 or 112 <= track.program <= 127:  # pads, effects, percussive sounds
            value -= 1.0
        if len(line) < 4:
            value -= 2.0
        scores.append(value)
    return scores, lines


def extract_melody(score: Score, track_index: int | None = None) -> MelodyChoice:
    """The monophonic melody of `score`, from `track_index` or the most melody-like track.

    Drum tracks are never chosen. The melody's ticks are unchanged, so the output keeps it note for note.
    """
    warnings: list[str] = []
    candidates = [i for i, t in enumerate(score.tracks) if not t.is_drum and t.notes]
    if track_index is None:
        scores, lines = _scores_and_lines(score)
        track_index = max(candidates, key=lambda i: scores[i])
        line = lines[track_index]
    else:
        line = skyline(score.tracks[track_index].notes)
    source = score.tracks[track_index]
    dropped = len(source.notes) - len(line)
    if len(candidates) > 1:
        warnings.append(f"melody taken from track '{source.name}' ({len(candidates)} instrument tracks in the file)")
    if dropped:
        warnings.append(f"the melody track had chords: kept the top note, {dropped} lower notes left out")
    melody = Track("Melody", source.program, False, source.channel, line)
    return MelodyChoice(melody, track_index, warnings)

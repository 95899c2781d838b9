"""Musical metrics: pure functions on rolls (shape=(T, 128)), used by tests, `evaluate` and the UI.

- `in_key_rate`: duration-weighted share of accompaniment notes in the melody's key (Krumhansl-
  Kessler estimate checked by the melody's last note, `melody_key`; a minor key also accepts its
  raised 6th and 7th).
- `consonance`: share of (melody onset, sounding accompaniment note) pairs whose interval, in
  semitones mod 12, is in {0, 3, 4, 5, 7, 8, 9}.
- `bar_coverage`: share of the melody's bars in which a track sounds.
- MuseGAN's (Dong et al., 2018) per-track metrics: empty-bar rate (EB), used pitch classes per bar
  (UPC), qualified-note rate (QN, notes of at least 3 sixteenths) and polyphony (share of sounding
  steps with at least two pitches).
Drum tracks never count as accompaniment for the tonal metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from studio.core.roll import Grid, RollTrack
from studio.core.theory import Key, estimate_key

__all__ = [
    "CONSONANT_INTERVALS",
    "TRACK_METRICS",
    "bar_coverage",
    "consonance",
    "empty_bar_rate",
    "final_pitch_class",
    "in_key_rate",
    "melody_key",
    "piece_metrics",
    "polyphony",
    "qualified_note_rate",
    "summarize",
    "used_pitch_classes",
]

RELATIVE_TOLERANCE = 0.15  # MuseGAN metrics within 15% of the real held-out values
RATE_SLACK = 0.01  # ... or within this much for rates (0..1) whose real value is near 0, where 15% means nothing
CONSONANT_INTERVALS = frozenset({0, 3, 4, 5, 7, 8, 9})


def _pitched(tracks: Sequence[RollTrack]) -> list[RollTrack]:
    return [t for t in tracks if not t.is_drum]


def _onsets(track: RollTrack) -> np.ndarray:
    """Where notes start, shape=(T, 128): marked onsets that sound, and every step a pitch starts sounding."""
    sounding = track.velocity > 0
    onsets = track.onset & sounding
    onsets[0] |= sounding[0]
    onsets[1:] |= sounding[1:] & ~sounding[:-1]
    return onsets


def final_pitch_class(melody: RollTrack) -> int | None:
    """Pitch class of the melody's last note: the lowest pitch starting at its last onset (None if silent)."""
    onsets = _onsets(melody)
    steps = np.flatnonzero(onsets.any(axis=1))
    if not steps.size:
        return None
    return int(np.flatnonzero(onsets[steps[-1]])[0]) % 12


def melody_key(melody: RollTrack) -> Key:
    """Key of the melody from its duration-weighted pitch classes (Krumhansl-Kessler), preferring a
    close runner-up whose tonic is the melody's last note (`studio.core.theory.estimate_key`)."""
    per_pitch = (melody.velocity > 0).sum(axis=0)  # (128,)
    hist = np.array([per_pitch[pc::12].sum() for pc in range(12)], float)
    return estimate_key(hist, final_pitch_class(melody))


def in_key_rate(accompaniment: Sequence[RollTrack], key: Key) -> float:
    """Duration-weighted share of accompaniment notes whose pitch class is in `key` (nan if silent)."""
    accepted = np.zeros(128, bool)
    for pc in key.accepted:
        accepted[pc::12] = True
    total = in_key = 0
    for track in _pitched(accompaniment):
        per_pitch = (track.velocity > 0).sum(axis=0)
        total += int(per_pitch.sum())
        in_key += int(per_pitch[accepted].sum())
    return in_key / total if total else float("nan")


def consonance(melody: RollTrack, accompaniment: Sequence[RollTrack]) -> float:
    """Share of (melody onset, sounding accompaniment note) pairs that are consonant (nan if none)."""
    steps, mel_pitches = np.nonzero(_onsets(melody))
    consonant = _consonant_pairs()[mel_pitches]  # (onsets, 128): which accompaniment pitch is consonant with each onset's
    good = total = 0
    for track in _pitched(accompaniment):
        sounding = track.velocity[steps] > 0  # (onsets, 128): what sounds at each melody onset
        total += int(sounding.sum())
        good += int((sounding & consonant).sum())
    return good / total if total else float("nan")


@functools.cache
def _consonant_pairs() -> np.ndarray:
    """(128, 128) bool: melody pitch m against accompaniment pitch a is a consonant interval class."""
    m, a = np.meshgrid(np.arange(128), np.arange(128), indexing="ij")
    return np.isin((m - a) % 12, list(CONSONANT_INTERVALS))


def _bar_edges(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Start and end steps of the bars that start within the grid (cut at its end), shape=(bars,) each."""
    starts, lengths = grid.bar_extents()
    within = starts < grid.n_steps
    return starts[within], np.minimum(starts + lengths, grid.n_steps)[within]


def _in_bars(per_step: np.ndarray, edges: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Which columns of `per_step` (T, k) bool are true somewhere in each bar of `edges` (cut at T),
    shape=(bars, k). From running counts rather than a slice per bar: a meter of very short bars
    (1/128) has tens of thousands of them."""
    starts, ends = (np.minimum(e, len(per_step)) for e in edges)
    counts = np.zeros((len(per_step) + 1, per_step.shape[1]), np.int32)
    np.cumsum(per_step, axis=0, out=counts[1:])
    return counts[ends] > counts[starts]


def _sounding_bars(track: RollTrack, edges: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Whether `track` sounds in each bar of `edges`, shape=(bars,) bool."""
    return _in_bars((track.velocity > 0).any(axis=1, keepdims=True), edges)[:, 0]


def _coverage(sounding: np.ndarray, melody_sounding: np.ndarray | None) -> float:
    """`bar_coverage` from which bars the track (and the melody) sound in."""
    if melody_sounding is not None:
        with_melody = np.flatnonzero(melody_sounding)
        if not len(with_melody):
            return float("nan")
        sounding = sounding[with_melody[0] : with_melody[-1] + 1]
    return float(sounding.mean()) if len(sounding) else float("nan")


def _empty_rate(sounding: np.ndarray) -> float:
    """`empty_bar_rate` from which bars the track sounds in."""
    return float(1.0 - sounding.mean()) if len(sounding) else float("nan")


def _classes_per_bar(track: RollTrack, edges: tuple[np.ndarray, np.ndarray]) -> float:
    """`used_pitch_classes` over the bars of `edges`: the octaves of each step folded into its pitch classes first."""
    sounding = track.velocity > 0
    octaves = np.zeros((len(sounding), -(-sounding.shape[1] // 12) * 12), bool)
    octaves[:, : sounding.shape[1]] = sounding
    classes = _in_bars(octaves.reshape(len(sounding), octaves.shape[1] // 12, 12).any(axis=1), edges).sum(axis=1)
    played = classes[classes > 0]
    return float(played.mean()) if len(played) else float("nan")


def bar_coverage(track: RollTrack, grid: Grid, melody: RollTrack | None = None) -> float:
    """Share of bars in which `track` sounds, over the bars from the melody's first to last note
    (over all bars when no melody is given)."""
    edges = _bar_edges(grid)
    return _coverage(_sounding_bars(track, edges), None if melody is None else _sounding_bars(melody, edges))


def empty_bar_rate(track: RollTrack, grid: Grid) -> float:
    """EB: share of bars in which the track is silent."""
    return _empty_rate(_sounding_bars(track, _bar_edges(grid)))


def used_pitch_classes(track: RollTrack, grid: Grid) -> float:
    """UPC: mean number of distinct pitch classes per non-empty bar."""
    return _classes_per_bar(track, _bar_edges(grid))


def _note_steps(track: RollTrack, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) in steps of the notes `roll_to_notes` reads, all at once rather than note by note:
    a note runs from its onset while its pitch sounds and starts no new note, at most to the grid's
    end (one starting past it keeps one step). Pitch by pitch, the k-th note ends at the k-th step
    where a sounding pitch stops (falls silent, starts again, or meets the grid's end)."""
    onsets = _onsets(track)
    m = min(len(onsets), grid.n_steps)
    sounding = track.velocity[:m] > 0
    stops = np.zeros((m + 1, onsets.shape[1]), bool)  # stops[e]: a note sounding at step e - 1 ends at e
    stops[1:] = sounding
    stops[1:m] &= ~sounding[1:] | onsets[1:m]
    _, starts = np.nonzero(onsets[:m].T)  # pitch by pitch, in time
    _, ends = np.nonzero(stops.T)
    late = np.nonzero(onsets[m:])[0] + m
    return np.concatenate([starts, late]), np.concatenate([ends, late + 1])


def qualified_note_rate(track: RollTrack, grid: Grid, min_steps: int = 3) -> float:
    """QN: share of notes lasting at least `min_steps` sixteenths (their lengths as read back from ticks)."""
    starts, ends = _note_steps(track, grid)
    if not len(starts):
        return float("nan")
    lengths = grid.ticks_to_steps(grid.steps_to_ticks(ends)) - grid.ticks_to_steps(grid.steps_to_ticks(starts))
    return int(np.count_nonzero(lengths >= min_steps)) / len(lengths)


def polyphony(track: RollTrack) -> float:
    """Share of sounding steps with at least two pitches at once."""
    per_step = (track.velocity > 0).sum(axis=1)
    sounding = per_step > 0
    return float((per_step[sounding] >= 2).mean()) if sounding.any() else float("nan")


def summarize(melody: RollTrack, accompaniment: Sequence[RollTrack], grid: Grid) -> dict:
    """Every metric of one result, as plain floats (JSON-ready)."""
    key = melody_key(melody)
    edges = _bar_edges(grid)  # read once: a grid may have tens of thousands of bars
    with_melody = _sounding_bars(melody, edges)
    return {
        "key": str(key),
        "in_key": in_key_rate(accompaniment, key),
        "consonance": consonance(melody, accompaniment),
        "tracks": {t.name: _track_summary(t, grid, edges, with_melody) for t in accompaniment},
    }


def _track_summary(track: RollTrack, grid: Grid, edges: tuple[np.ndarray, np.ndarray], with_melody: np.ndarray) -> dict:
    """One track's metrics in `summarize`, on the grid's bar `edges` and the bars the melody sounds in."""
    sounding = _sounding_bars(track, edges)
    return {
        "coverage": _coverage(sounding, with_melody),
        "empty_bars": _empty_rate(sounding),
        "pitch_classes_per_bar": _classes_per_bar(track, edges),
        "qualified_notes": qualified_note_rate(track, grid),
        "polyphony": polyphony(track),
    }


TRACK_METRICS = ("empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "polyphony")


def _finite_mean(values) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def piece_metrics(melody: RollTrack, accompaniment: Sequence[RollTrack], grid: Grid) -> dict:
    """The numbers a piece's accompaniment is judged by, real or generated alike (JSON-ready).

    ``in_key_rate`` and ``consonance`` (against the melody), MuseGAN's per-track metrics averaged
    over the accompaniment tracks that have notes (also per track under ``tracks``), and
    ``accompaniment_polyphony``: the polyphony of all pitched accompaniment tracks heard together.
    """
    sounding = [t for t in accompaniment if t.velocity.any()]
    edges = _bar_edges(grid)
    per_track = {
        t.name: {
            "empty_bar_rate": _empty_rate(_sounding_bars(t, edges)),
            "used_pitch_classes": _classes_per_bar(t, edges),
            "qualified_note_rate": qualified_note_rate(t, grid),
            "polyphony": polyphony(t),
        }
        for t in sounding
    }
    together = RollTrack.empty("accompaniment", 0, melody.n_steps)
    for t in _pitched(sounding):
        np.maximum(together.velocity, t.velocity, out=together.velocity)
    out: dict = {
        "in_key_rate": in_key_rate(sounding, melody_key(melody)),
        "consonance": consonance(melody, sounding),
        "accompaniment_polyphony": polyphony(together),
    }
    for name in TRACK_METRICS:
        out[name] = _finite_mean(m[name] for m in per_track.values())
    out["tracks"] = per_track
    return out


def _lines(track: RollTrack) -> list[np.ndarray]:
    """A track's melodic lines, shape=(T,) pitch or -1: its top line, and its bottom line too when it plays chords."""
    sounding = track.velocity > 0
    any_sound = sounding.any(axis=1)
    top = np.where(any_sound, 127 - np.argmax(sounding[:, ::-1], axis=1), -1)
    bottom = np.where(any_sound, np.argmax(sounding, axis=1), -1)
    return [top] if np.array_equal(top, bottom) else [top, bottom]


def parallel_perfect_counts(tracks: Sequence[RollTrack]) -> tuple[int, int]:
    """(parallel fifths/octaves, moves together) of `parallel_perfect_rate`, to pool over pieces."""
    lines = [(i, line) for i, t in enumerate(_pitched(tracks)) for line in _lines(t)]
    moves = parallels = 0
    for a in range(len(lines)):
        for b in range(a + 1, len(lines)):
            (ta, x), (tb, y) = lines[a], lines[b]
            if ta == tb:
                continue
            both = (x[1:] >= 0) & (x[:-1] >= 0) & (y[1:] >= 0) & (y[:-1] >= 0)
            move = both & (x[1:] != x[:-1]) & (y[1:] != y[:-1])
            before = np.abs(x[:-1] - y[:-1]) % 12
            after = np.abs(x[1:] - y[1:]) % 12
            same_way = np.sign(x[1:] - x[:-1]) == np.sign(y[1:] - y[:-1])
            parallel = move & (before == after) & ((before == 0) | (before == 7)) & same_way
            moves += int(move.sum())
            parallels += int(parallel.sum())
    return parallels, moves


def parallel_perfect_rate(tracks: Sequence[RollTrack]) -> float:
    """How often two parts move in parallel fifths or octaves (unisons included), the classic fault of
    part writing: among the steps where two lines of *different* tracks both move to a new pitch
    together, the share where the interval before and after is the same perfect fifth or octave
    (mod 12: 7 or 0) and both move the same way. Lines: each track's top line (and bottom line, for
    chords). NaN when no two lines ever move together."""
    parallels, moves = parallel_perfect_counts(tracks)
    return parallels / moves if moves else float("nan")

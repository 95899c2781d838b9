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

from studio.core.roll import Grid, RollTrack, roll_to_notes
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


def _bar_pitches(track: RollTrack, grid: Grid) -> np.ndarray:
    """Which pitches sound in each bar, shape=(bars, 128) bool, over the bars that start within the
    grid (cut at its end). From running counts of sounding steps rather than a slice per bar:
    a meter of very short bars (1/128) has tens of thousands of them."""
    bars = [(b.start, min(b.end, grid.n_steps)) for b in grid.bars if b.start < grid.n_steps]
    if not bars:
        return np.zeros((0, track.velocity.shape[1]), bool)
    starts, ends = np.minimum(np.array(bars).T, len(track.velocity))
    counts = np.zeros((len(track.velocity) + 1, track.velocity.shape[1]), np.int32)
    np.cumsum(track.velocity > 0, axis=0, out=counts[1:])
    return counts[ends] > counts[starts]


def bar_coverage(track: RollTrack, grid: Grid, melody: RollTrack | None = None) -> float:
    """Share of bars in which `track` sounds, over the bars from the melody's first to last note
    (over all bars when no melody is given)."""
    sounding = _bar_pitches(track, grid).any(axis=1)
    if melody is not None:
        with_melody = np.flatnonzero(_bar_pitches(melody, grid).any(axis=1))
        if not len(with_melody):
            return float("nan")
        sounding = sounding[with_melody[0] : with_melody[-1] + 1]
    return float(sounding.mean()) if len(sounding) else float("nan")


def empty_bar_rate(track: RollTrack, grid: Grid) -> float:
    """EB: share of bars in which the track is silent."""
    sounding = _bar_pitches(track, grid).any(axis=1)
    return float(1.0 - sounding.mean()) if len(sounding) else float("nan")


def used_pitch_classes(track: RollTrack, grid: Grid) -> float:
    """UPC: mean number of distinct pitch classes per non-empty bar."""
    pitches = _bar_pitches(track, grid)
    octaves = np.zeros((len(pitches), -(-pitches.shape[1] // 12) * 12), bool)
    octaves[:, : pitches.shape[1]] = pitches
    classes = octaves.reshape(len(pitches), -1, 12).any(axis=1).sum(axis=1)
    played = classes[classes > 0]
    return float(played.mean()) if len(played) else float("nan")


def qualified_note_rate(track: RollTrack, grid: Grid, min_steps: int = 3) -> float:
    """QN: share of notes lasting at least `min_steps` sixteenths."""
    notes = roll_to_notes(track, grid)
    if not notes:
        return float("nan")
    lengths = [grid.tick_to_step(n.end) - grid.tick_to_step(n.start) for n in notes]
    return sum(length >= min_steps for length in lengths) / len(lengths)


def polyphony(track: RollTrack) -> float:
    """Share of sounding steps with at least two pitches at once."""
    per_step = (track.velocity > 0).sum(axis=1)
    sounding = per_step > 0
    return float((per_step[sounding] >= 2).mean()) if sounding.any() else float("nan")


def summarize(melody: RollTrack, accompaniment: Sequence[RollTrack], grid: Grid) -> dict:
    """Every metric of one result, as plain floats (JSON-ready)."""
    key = melody_key(melody)
    return {
        "key": str(key),
        "in_key": in_key_rate(accompaniment, key),
        "consonance": consonance(melody, accompaniment),
        "tracks": {
            t.name: {
                "coverage": bar_coverage(t, grid, melody),
                "empty_bars": empty_bar_rate(t, grid),
                "pitch_classes_per_bar": used_pitch_classes(t, grid),
                "qualified_notes": qualified_note_rate(t, grid),
                "polyphony": polyphony(t),
            }
            for t in accompaniment
        },
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
    per_track = {
        t.name: {
            "empty_bar_rate": empty_bar_rate(t, grid),
            "used_pitch_classes": used_pitch_classes(t, grid),
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

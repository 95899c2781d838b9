"""Piano rolls on the studio's grid: 16th-note steps, bars from the meter map, shape=(T, 128).

Layout, everywhere in the studio: a roll is indexed `[step, pitch]`, shape=(T, P), as pypianoroll
does (pretty_midi uses (P, T); we never do). `velocity` holds 0 for silence, and `onset` marks the
steps where a note starts, so repeated notes of the same pitch stay separate notes.

Models see the 84 pitches 24..107 (as MuseGAN); `to_model_range` folds other pitches in by octaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from studio.core.score import Note, Score, Track

__all__ = [
    "MODEL_PITCH_HIGH",
    "MODEL_PITCH_LOW",
    "N_MODEL_PITCHES",
    "STEPS_PER_BEAT",
    "Bar",
    "Grid",
    "Roll",
    "RollTrack",
    "extend_grid",
    "make_grid",
    "notes_to_roll",
    "roll_to_notes",
    "score_to_roll",
    "to_model_range",
    "track_notes",
]

STEPS_PER_BEAT = 4  # steps per quarter note: a 16th-note grid
MODEL_PITCH_LOW = 24  # C1, lowest pitch a model sees
MODEL_PITCH_HIGH = 107  # B7, highest pitch a model sees
N_MODEL_PITCHES = MODEL_PITCH_HIGH - MODEL_PITCH_LOW + 1  # 84


_EXACT_IN_FLOAT = 2**53  # integers below this are exact in float64


def _scaled(values: np.ndarray, num: int, den: int, one: Callable[[int], int]) -> np.ndarray:
    """`round(value * num / den)` of every value, shape=(n,) int64, as `one` computes it for one value:
    the product is exact in float64 and a division of exact values rounds as Python's int / int does,
    and `np.rint` rounds halves to even as `round` does. Values too large for that go through `one`."""
    values = np.asarray(values, np.int64)
    bound = _EXACT_IN_FLOAT // max(1, abs(num))
    if values.size and (values.max() >= bound or values.min() <= -bound):
        return np.array([one(v) for v in values.tolist()], np.int64)
    return np.rint(values * num / den).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar on the grid: `start` step, `length` in steps, and its meter (e.g. 6/8).

    A pickup (anacrusis) is a first bar whose `length` is shorter than its meter's full bar.
    """

    start: int
    length: int
    numerator: int
    denominator: int

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def full_length(self) -> int:
        """Steps in a complete bar of this meter."""
        return max(1, round(self.numerator * STEPS_PER_BEAT * 4 / self.denominator))

    @property
    def beat_steps(self) -> int:
        """Steps per felt beat: a dotted quarter in compound meters (6/8, 9/8, 12/8), else one denominator unit."""
        unit = max(1, round(STEPS_PER_BEAT * 4 / self.denominator))
        if self.denominator >= 8 and self.numerator % 3 == 0 and self.numerator > 3:
            return 3 * unit
        return unit


@dataclass
class Grid:
    """How ticks of a `Score` map to steps, and where its bars are (in steps)."""

    ticks_per_beat: int
    n_steps: int
    bars: list[Bar]
    steps_per_beat: int = STEPS_PER_BEAT

    def tick_to_step(self, tick: int) -> int:
        return int(round(tick * self.steps_per_beat / self.ticks_per_beat))

    def step_to_tick(self, step: int) -> int:
        return int(round(step * self.ticks_per_beat / self.steps_per_beat))

    def ticks_to_steps(self, ticks: np.ndarray) -> np.ndarray:
        """`tick_to_step` of every tick, shape=(n,) int64."""
        return _scaled(ticks, self.steps_per_beat, self.ticks_per_beat, self.tick_to_step)

    def steps_to_ticks(self, steps: np.ndarray) -> np.ndarray:
        """`step_to_tick` of every step, shape=(n,) int64."""
        return _scaled(steps, self.ticks_per_beat, self.steps_per_beat, self.step_to_tick)

    def bar_extents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every bar's start and length in steps, shape=(bars,) int64 each: for work over all bars at once."""
        n = len(self.bars)
        return np.fromiter((b.start for b in self.bars), np.int64, n), np.fromiter((b.length for b in self.bars), np.int64, n)

    @property
    def pickup_steps(self) -> int:
        """Length of the pickup bar in steps (0 when the music starts on a downbeat)."""
        first = self.bars[0]
        return first.length if first.length < first.full_length else 0

    def bar_index(self, step: int) -> int:
        """Index of the bar that contains `step`."""
        starts = [b.start for b in self.bars]
        return max(0, int(np.searchsorted(starts, step, side="right")) - 1)


@dataclass
class RollTrack:
    """One instrument on the grid. `velocity` shape=(T, 128) uint8; `onset` shape=(T, 128) bool."""

    name: str
    program: int
    is_drum: bool
    velocity: np.ndarray
    onset: np.ndarray
    role: str = "accompaniment"  # "melody": a model's rewrite of the melody, which replaces the input's

    @classmethod
    def empty(cls, name: str, program: int, n_steps: int, is_drum: bool = False) -> RollTrack:
        return cls(
            name,
            program,
            is_drum,
            np.zeros((n_steps, 128), np.uint8),
            np.zeros((n_steps, 128), bool),
        )

    @property
    def n_steps(self) -> int:
        return self.velocity.shape[0]

    def add_note(self, start: int, end: int, pitch: int, velocity: int = 90) -> None:
        """Sound `pitch` from step `start` up to (not including) `end`, clipped to the roll."""
        start, end = max(0, start), min(self.n_steps, end)
        if end <= start or not 0 <= pitch < 128:
            return
        self.velocity[start:end, pitch] = max(1, min(127, velocity))
        self.onset[start, pitch] = True

    def silent_from(self, step: int) -> RollTrack:
        """A copy that sounds nothing from `step` on (notes sounding then are cut there)."""
        velocity, onset = self.velocity.copy(), self.onset.copy()
        velocity[max(0, step) :] = 0
        onset[max(0, step) :] = False
        return RollTrack(self.name, self.program, self.is_drum, velocity, onset, self.role)

    def pitches_at(self, step: int) -> np.ndarray:
        """Pitches sounding at `step`."""
        return np.flatnonzero(self.velocity[step])


@dataclass
class Roll:
    """A multi-track piano roll on a grid; by convention `tracks[0]` is the melody."""

    grid: Grid
    tracks: list[RollTrack]

    @property
    def n_steps(self) -> int:
        return self.grid.n_steps


def _bars_from_meter(score: Score, n_steps: int, pickup_steps: int) -> list[Bar]:
    """Bars (in steps) from the score's meter map, with an optional pickup bar at the start.

    Bars stop at `n_steps`, wherever the meter map's changes lie: a meter change far past the music
    must not build bars up to it (67 million for one 101-byte file)."""
    grid_per_tick = STEPS_PER_BEAT / score.ticks_per_beat
    sigs = score.time_signatures
    bars: list[Bar] = []
    for i, sig in enumerate(sigs):
        start = int(round(sig.tick * grid_per_tick))
        if start >= n_steps and bars:
            break
        stop = int(round(sigs[i + 1].tick * grid_per_tick)) if i + 1 < len(sigs) else n_steps
        full = max(1, round(sig.numerator * STEPS_PER_BEAT * 4 / sig.denominator))
        if i == 0 and pickup_steps:
            bars.append(Bar(0, min(pickup_steps, max(stop, 1)), sig.numerator, sig.denominator))
            start = pickup_steps
        while start < min(stop, n_steps):
            bars.append(Bar(start, min(full, stop - start), sig.numerator, sig.denominator))
            start += full
    if not bars:
        first = sigs[0]
        bars.append(Bar(0, max(1, n_steps), first.numerator, first.denominator))
    return bars


def make_grid(score: Score, pickup_ticks: int = 0, min_steps: int = 0) -> Grid:
    """The grid of `score`: its length in steps (whole bars) and its bars, pickup included.

    `pickup_ticks` shifts the bar lines when a file starts with an unmarked pickup (see
    `studio.core.meter.estimate_pickup`); a meter map that already encodes the pickup needs 0.
    """
    to_step = STEPS_PER_BEAT / score.ticks_per_beat
    last = max(int(np.ceil(score.end_tick * to_step)), min_steps, 1)
    pickup = int(round(pickup_ticks * to_step))
    bars = _bars_from_meter(score, last + 4 * STEPS_PER_BEAT * 4, pickup)
    # Keep whole bars up to the last note: the roll ends on a bar line.
    kept = [b for b in bars if b.start < last] or bars[:1]
    n_steps = kept[-1].start + kept[-1].full_length if kept[-1].length == kept[-1].full_length else kept[-1].end
    n_steps = max(n_steps, last)
    return Grid(score.ticks_per_beat, n_steps, kept)


def extend_grid(grid: Grid, n_steps: int) -> Grid:
    """`grid` continued with full bars of its last meter until it covers `n_steps` (what a model that
    continues a melody writes into)."""
    bars = list(grid.bars)
    last = bars[-1]
    pos = grid.n_steps
    while pos < n_steps:
        bars.append(Bar(pos, last.full_length, last.numerator, last.denominator))
        pos += last.full_length
    return Grid(grid.ticks_per_beat, pos, bars, grid.steps_per_beat)


def notes_to_roll(notes: list[Note], grid: Grid, name: str, program: int, is_drum: bool = False) -> RollTrack:
    """Quantize `notes` (ticks) onto `grid` (nearest 16th); every note keeps at least one step.

    Notes are laid down in (start, pitch) order, as `RollTrack.add_note` one by one: where notes of one
    pitch overlap, each step sounds with the velocity of the last note laid over it."""
    track = RollTrack.empty(name, program, grid.n_steps, is_drum)
    if not notes:
        return track
    tick_start, tick_end, pitch, velocity = _note_arrays(notes)
    order = _stable_order(tick_start, pitch)
    tick_start, tick_end, pitch, velocity = tick_start[order], tick_end[order], pitch[order], velocity[order]
    start = grid.ticks_to_steps(tick_start)
    end = np.minimum(np.maximum(start + 1, grid.ticks_to_steps(tick_end)), grid.n_steps)
    start = np.maximum(start, 0)
    keep = (start < end) & (pitch >= 0) & (pitch < 128)
    start, end, pitch, velocity = start[keep], end[keep], pitch[keep], np.clip(velocity[keep], 1, 127)
    cell, last = _last_over(start, end, pitch, grid.n_steps)
    track.velocity.reshape(-1)[cell] = velocity[last]
    track.onset.reshape(-1)[start * 128 + pitch] = True
    return track


def _note_arrays(notes: list[Note]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, pitch, velocity) of `notes`, each shape=(n,) int64."""
    n = len(notes)
    return (
        np.fromiter((note.start for note in notes), np.int64, n),
        np.fromiter((note.end for note in notes), np.int64, n),
        np.fromiter((note.pitch for note in notes), np.int64, n),
        np.fromiter((note.velocity for note in notes), np.int64, n),
    )


def _stable_order(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The order that sorts by (`first`, `then`), ties kept in input order (as Python's `sorted`)."""
    order = np.argsort(then, kind="stable")
    return order[np.argsort(first[order], kind="stable")]


def _last_over(start: np.ndarray, end: np.ndarray, pitch: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Every cell (step * 128 + pitch) that some note [start, end) covers, and the last note (index) that covers it.

    Each pitch's time line is cut at the notes' starts and ends into pieces that one set of notes
    covers; a segment tree over the pieces of all pitches finds the last note over each piece."""
    width = n_steps + 1  # a key pitch * width + step orders the bounds by pitch, then step
    bounds = np.sort(np.concatenate([pitch * width + start, pitch * width + end]))
    first = np.ones(len(bounds), bool)
    first[1:] = bounds[1:] != bounds[:-1]
    bounds = bounds[first]  # np.unique, which takes 4 times longer
    last = _last_cover(np.searchsorted(bounds, pitch * width + start), np.searchsorted(bounds, pitch * width + end), len(bounds))
    piece = np.flatnonzero(last >= 0)  # never the last bound of a pitch: no note covers past it
    lengths = bounds[piece + 1] - bounds[piece]
    step = np.repeat(bounds[piece] % width - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    return step * 128 + np.repeat(bounds[piece] // width, lengths), np.repeat(last[piece], lengths)


def _last_cover(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """For each cell 0..n-1 the largest i with lo[i] <= cell < hi[i], or -1 (a segment tree of maxima)."""
    size = 1 << max(0, n - 1).bit_length()
    best = np.full(2 * size, -1, np.int64)
    index = np.arange(len(lo))
    live = lo < hi
    left, right, index = lo[live] + size, hi[live] + size, index[live]
    while index.size:  # each range marks the O(log n) nodes that tile it, as a bottom-up segment tree does
        odd = left % 2 == 1
        np.maximum.at(best, left[odd], index[odd])
        left = left + odd
        odd = right % 2 == 1
        right = right - odd
        np.maximum.at(best, right[odd], index[odd])
        left, right = left // 2, right // 2
        live = left < right
        left, right, index = left[live], right[live], index[live]
    level = 2
    while level < 2 * size:  # push each node's mark down to its leaves
        best[level : 2 * level] = np.maximum(best[level : 2 * level], np.repeat(best[level // 2 : level], 2))
        level *= 2
    return best[size : size + n]


def roll_to_notes(track: RollTrack, grid: Grid) -> list[Note]:
    """Notes (ticks) of a roll track: a note runs from an onset (or a rise from silence) while the pitch sounds."""
    step, end, pitch = _spans(track, grid.n_steps)
    start_tick, end_tick = grid.steps_to_ticks(step), grid.steps_to_ticks(end)
    velocity = track.velocity[step, pitch]
    order = _stable_order(start_tick, pitch)
    columns = (start_tick[order], end_tick[order], pitch[order], velocity[order])
    return list(map(Note, *(c.tolist() for c in columns)))


def _spans(track: RollTrack, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, pitch) in steps of a roll track's notes, in (start, pitch) order: a note runs from
    an onset (or a rise from silence) while the pitch sounds, ending at `limit` at the latest (but
    keeping one step)."""
    sounding = track.velocity > 0  # (T, 128)
    starts = track.onset & sounding
    starts[0] |= sounding[0]
    starts[1:] |= sounding[1:] & ~sounding[:-1]
    step, pitch = np.divmod(np.flatnonzero(starts), 128)  # np.nonzero on 2-D takes 10 times longer
    # A note ends on the first step after it that is silent or starts a note (or at the roll's end).
    n = track.n_steps
    stop_step, stop_pitch = np.divmod(np.flatnonzero(sounding[:-1] & (starts[1:] | ~sounding[1:])), 128)
    stops = np.sort(np.concatenate([stop_pitch * (n + 1) + stop_step + 1, np.arange(128) * (n + 1) + n]))
    end = stops[np.searchsorted(stops, pitch * (n + 1) + step, side="right")] - pitch * (n + 1)
    return step, np.maximum(step + 1, np.minimum(end, limit)), pitch


def score_to_roll(score: Score, grid: Grid, tracks: list[Track] | None = None) -> Roll:
    """All (or the given) tracks of `score` as a `Roll` on `grid`."""
    chosen = score.tracks if tracks is None else tracks
    return Roll(grid, [notes_to_roll(t.notes, grid, t.name, t.program, t.is_drum) for t in chosen])


def to_model_range(pitch: int) -> int:
    """Move `pitch` by octaves into 24..107, the range models see."""
    while pitch < MODEL_PITCH_LOW:
        pitch += 12
    while pitch > MODEL_PITCH_HIGH:
        pitch -= 12
    return pitch


def track_notes(track: RollTrack) -> list[tuple[int, int, int]]:
    """(start, end, pitch) in steps of a roll track's notes, top note per start."""
    step, end, pitch = _spans(track, track.n_steps)
    order = np.lexsort((pitch, end, step))
    return list(zip(step[order].tolist(), end[order].tolist(), pitch[order].tolist(), strict=True))

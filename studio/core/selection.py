"""A selection of a take to write again: a range of bars, and optionally some of its voices.

Bars are numbered as the page's piano roll numbers them: 1 is the first full bar, and a pickup (a
first bar shorter than its meter's) is bar 0. Voices are indices into the accompaniment's tracks
(the melody is never regenerated); none named: all of them.

What is kept, exactly (the rule every model and the service follow): a note belongs to the bar
it starts in. Regenerating bars a..b of the selected tracks

- keeps every note of a track that is not selected, and every note of a selected track that starts
  before bar a or at or after the end of bar b, as it is (pitch, start, end, velocity); a note that
  starts before the selection and sounds into it is kept as it is, and the track writes nothing
  new until it ends;
- replaces every note of a selected track that starts inside the selection by the new notes that
  start inside it, each cut at the selection's end (a note of the old take that started inside and
  rang on past the end goes with it); a new note never overlaps a kept note of the same pitch in its
  track (it starts when that one ends, or is left out).

Pure functions on `Note`s (ticks or steps alike) and on `RollTrack`s (shape=(T, 128)).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.core.errors import InputError
from studio.core.roll import Grid, RollTrack
from studio.core.score import Note

__all__ = [
    "Selection",
    "SelectionError",
    "VoiceSelection",
    "bar_numbers",
    "context_window",
    "kept_and_new",
    "parse_bars",
    "parse_voices",
    "regenerated_tracks",
    "run_starts",
    "select_voices",
    "spliced_track",
]


class SelectionError(InputError):
    """Bars or voices that cannot be regenerated (out of range, reversed, a voice the model does not have)."""


@dataclass(frozen=True)
class Selection:
    """Bars `first`..`last` (page numbers, inclusive) of the accompaniment tracks `voices` (indices; None: all)."""

    first: int
    last: int
    voices: tuple[int, ...] | None = None

    def steps(self, grid: Grid) -> tuple[int, int]:
        """(first step, step after the last) of the selected bars on `grid`; `SelectionError` when
        they are reversed or not all in the take."""
        numbers = bar_numbers(grid)
        if self.first > self.last:
            raise SelectionError(f"bars {self.first}-{self.last} run backwards: give the first bar first, e.g. {self.last}-{self.first}")
        if self.first not in numbers or self.last not in numbers:
            raise SelectionError(f"the take has bars {numbers[0]} to {numbers[-1]}: bars {self.first}-{self.last} are not all in it")
        first, last = grid.bars[numbers.index(self.first)], grid.bars[numbers.index(self.last)]
        return first.start, min(last.end, grid.n_steps)

    def selects(self, track: int) -> bool:
        return self.voices is None or track in self.voices


def bar_numbers(grid: Grid) -> list[int]:
    """The page's number of each of `grid`'s bars: 1 for the first full bar, 0 for a pickup."""
    first = 0 if grid.pickup_steps else 1
    return [first + i for i in range(len(grid.bars))]


_BARS = re.compile(r"^\s*(-?\d{1,6})\s*(?:(?:-|–|to|\.\.)\s*(-?\d{1,6})\s*)?$")


def parse_bars(value: object) -> tuple[int, int]:
    """Bars as the CLI, the API and the page give them: "3-4", "3", "3 to 4", or two numbers; as
    (first, last). Anything else is a `SelectionError`."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    match = _BARS.match(value) if isinstance(value, str) and len(value) <= 40 else None
    if match is None:
        shown = repr(value)[:40] if not isinstance(value, str) else f"'{value[:40]}'"
        raise SelectionError(f"bars must be a range such as 3-4 (or one bar, 3); got {shown}")
    first = int(match.group(1))
    return first, int(match.group(2)) if match.group(2) is not None else first


def parse_voices(value: object, names: Sequence[str]) -> tuple[int, ...] | None:
    """The voices named in `value` ("Alto,Bass", a list of names or track numbers 0.., or nothing:
    all) as indices into `names` (the model's accompaniment tracks); a voice the model does not
    have is a `SelectionError` that lists its voices."""
    if value is None or value == "" or value == []:
        return None
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if items is None or len(items) > 64:
        raise SelectionError(f"voices must be names such as {','.join(names[:2])}, or left out for all")
    lowered = [n.lower() for n in names]
    out = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
            out.append(item)
        elif isinstance(item, str) and item.strip().lower() in lowered:
            out.append(lowered.index(item.strip().lower()))
        else:
            shown = str(item)[:40]
            raise SelectionError(f"the model has no voice '{shown}': its voices are {', '.join(names)}")
    return tuple(sorted(set(out)))


def kept_and_new(old: Sequence[Note], new: Sequence[Note], start: int, end: int) -> list[Note]:
    """One selected track regenerated in [start, end) (ticks or steps alike), by the module's rule:
    the `old` notes that start outside it, as they are, and the `new` notes that start inside it,
    cut at `end` and never over a kept note of their pitch; sorted by start and pitch."""
    kept = [n for n in old if not start <= n.start < end]
    held: dict[int, int] = {}  # per pitch, where the kept notes sounding into the selection end
    for n in kept:
        if n.start < start < n.end:
            held[n.pitch] = max(held.get(n.pitch, start), n.end)
    out = list(kept)
    for n in new:
        if not start <= n.start < end:
            continue
        begin, stop = max(n.start, held.get(n.pitch, n.start)), min(n.end, end)
        if stop > begin:
            out.append(Note(begin, stop, n.pitch, n.velocity))
    out.sort(key=lambda n: (n.start, n.pitch))
    return out


def _note_starts(track: RollTrack) -> np.ndarray:
    """(T, 128) int: for each sounding cell, the step its note started at (-1 where silent)."""
    sounding = track.velocity > 0
    out = np.full(sounding.shape, -1, np.int32)
    pitches = np.flatnonzero(sounding.any(axis=0))  # the few pitches a track uses
    heard = sounding[:, pitches]
    begins = track.onset[:, pitches] & heard
    begins[0] |= heard[0]
    begins[1:] |= heard[1:] & ~heard[:-1]
    steps = np.where(begins, np.arange(track.n_steps, dtype=np.int32)[:, None], -1)
    out[:, pitches] = np.where(heard, np.maximum.accumulate(steps, axis=0), -1)
    return out


def spliced_track(old: RollTrack, new: RollTrack | None, start: int, end: int) -> RollTrack:
    """`old` with its notes that start in [start, end) replaced by `new`'s, by the module's rule (as
    `kept_and_new` on the notes, here on the cells at once); `new` None: only removed (what a selected
    track keeps)."""
    old_from = _note_starts(old)
    kept = (old_from >= 0) & ~((old_from >= start) & (old_from < end))  # (T, 128): the cells of kept notes
    velocity = np.where(kept, old.velocity, 0).astype(old.velocity.dtype)
    onset = old.onset & kept
    if new is not None:
        new_from = _note_starts(new)
        inside = np.zeros(kept.shape, bool)
        inside[start:end] = True
        written = inside & (new_from >= start) & (new_from < end) & ~kept  # a new note waits for a kept one of its pitch
        before = np.zeros_like(written)
        before[1:] = written[:-1]
        velocity = np.where(written, new.velocity, velocity).astype(old.velocity.dtype)
        onset = onset | (written & (new.onset | ~before | (new_from != np.roll(new_from, 1, axis=0))))
    return RollTrack(old.name, old.program, old.is_drum, velocity, onset, old.role)


def regenerated_tracks(
    old: Sequence[RollTrack], new: Sequence[RollTrack], start: int, end: int, voices: tuple[int, ...] | None
) -> list[RollTrack]:
    """The accompaniment `old` with each selected track's selection taken from `new` (same order);
    the tracks not selected are `old`'s, untouched."""
    return [spliced_track(o, n, start, end) if voices is None or i in voices else o for i, (o, n) in enumerate(zip(old, new, strict=True))]


def run_starts(free: np.ndarray) -> np.ndarray:
    """(V, T) bool: the first cell of every run of `free` cells (V, T) in each row: where a voice's
    new music begins, which must start a note even if it continues the pitch before it."""
    free = np.asarray(free, bool)
    before = np.zeros_like(free)
    before[:, 1:] = free[:, :-1]
    return free & ~before


@dataclass
class VoiceSelection:
    """What a voice model regenerates from: the selection's steps, the accompaniment as it is kept
    (the selected voices' notes that start in the selection removed; a note held into it stays),
    and the cells each voice writes anew, `free` (V, T) bool, V = the accompaniment's tracks."""

    start: int
    end: int
    voices: tuple[int, ...] | None
    kept: list[RollTrack]
    free: np.ndarray


def select_voices(accompaniment: Sequence[RollTrack], grid: Grid, selection: Selection) -> VoiceSelection:
    """The `VoiceSelection` of `selection` on one-voice tracks: a selected voice writes anew from the
    selection's start, or from where a note it holds into the selection ends, to the selection's end."""
    if selection.voices is not None and any(not 0 <= v < len(accompaniment) for v in selection.voices):
        raise SelectionError(f"the accompaniment has voices 0 to {len(accompaniment) - 1}")
    start, end = selection.steps(grid)
    kept, free = [], np.zeros((len(accompaniment), grid.n_steps), bool)
    for i, track in enumerate(accompaniment):
        if not selection.selects(i):
            kept.append(track)
            continue
        kept.append(spliced_track(track, None, start, end))
        free[i, _held_until(track, start) : end] = True
    return VoiceSelection(start, end, selection.voices, kept, free)


def _held_until(track: RollTrack, start: int) -> int:
    """Where the notes that started before `start` and sound at it end (`start` when there are none)."""
    if start <= 0 or start >= track.n_steps:
        return start
    from_step = _note_starts(track)
    held = np.flatnonzero((from_step[start] >= 0) & (from_step[start] < start))
    until = start
    for pitch in held:
        t = start
        while t < track.n_steps and from_step[t, pitch] == from_step[start, pitch]:
            t += 1
        until = max(until, t)
    return until


def context_window(grid: Grid, start: int, end: int, steps: int) -> tuple[int, int]:
    """(first step, step after the last) of the selection [start, end) with at least `steps` steps of
    context on each side where the take has them, out to whole bars (a model that sees that far
    needs no more of the take)."""
    first = grid.bar_index(max(0, start - steps))
    last = grid.bar_index(min(grid.n_steps - 1, max(start, end - 1) + steps))
    return grid.bars[first].start, min(grid.n_steps, grid.bars[last].end)

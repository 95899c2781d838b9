"""Dynamics for an accompaniment written at one flat velocity: metric accents and the melody's phrase.

A player does not strike every note alike. Two habits account for most of what a listener hears:

- *Metric accent*: the first beat of a bar is leaned on, the other beats less, notes between beats
  are lighter (`DynamicsConfig.downbeat`, `beat`, `offbeat`, in MIDI velocity units). A pickup bar
  is placed at the end of its meter's bar, so its notes fall on the beats they sound on.
- *Phrase*: the accompaniment swells as the melody climbs and eases as it falls: each note is
  raised or lowered in proportion to how far the melody's pitch around it (averaged over about a
  bar) lies above or below the melody's middle, at most `phrase` units.

The learned accompanists write one velocity for every note (their training rolls carry none); the
serving layer shapes them with this (`studio.serving.service`), the family declaring it
(`FamilyInfo.flat_dynamics`). The melody itself is never touched. Pure functions on `RollTrack`s.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from studio.core.roll import Bar, Grid, RollTrack

__all__ = ["DynamicsConfig", "metric_accents", "phrase_swell", "shaped"]


@dataclass(frozen=True)
class DynamicsConfig:
    """Velocity changes in MIDI units (1-127)."""

    downbeat: int = 8  # the first beat of a bar
    beat: int = 2  # every other beat
    offbeat: int = -6  # a note that starts between beats
    phrase: int = 8  # at most this much louder (softer) where the melody lies highest (lowest)
    phrase_semitones: float = 5.0  # the melody this far above its middle gets the whole `phrase`


def metric_accents(grid: Grid, config: DynamicsConfig = DynamicsConfig()) -> np.ndarray:
    """The metric accent of a note starting at each step, shape=(T,) int."""
    n = grid.n_steps
    out = np.full(n, config.offbeat, np.int64)
    if not grid.bars:
        return out
    bars = grid.bars
    start, length = grid.bar_extents()
    beat = np.fromiter((_beat(b.numerator, b.denominator) for b in bars), np.int64, len(bars))
    first = bars[0]
    shift = np.zeros(len(start), np.int64)
    shift[0] = first.full_length - first.length if first.length < first.full_length else 0  # a pickup: the bar's end
    count = np.maximum(np.minimum(start + length, n) - start, 0)  # the bar's steps on the grid
    bar = np.repeat(np.arange(len(start)), count)
    step = np.arange(len(bar)) + np.repeat(start - np.cumsum(count) + count, count)
    position = step - start[bar] + shift[bar]
    accented = position % beat[bar] == 0
    step, value = step[accented], np.where(position[accented] == 0, config.downbeat, config.beat)
    if len(step) and (step[0] < 0 or (step[1:] <= step[:-1]).any()):
        # Bars out of order or overlapping (never on a grid from `make_grid`): the later bar's accent wins,
        # as written bar by bar.
        _, last = np.unique(np.where(step < 0, step + n, step)[::-1], return_index=True)
        step, value = step[::-1][last], value[::-1][last]
    out[step] = value
    return out


@functools.lru_cache(maxsize=256)
def _beat(numerator: int, denominator: int) -> int:
    """Steps per felt beat of a meter (`Bar.beat_steps`, at least 1)."""
    return max(1, Bar(0, 0, numerator, denominator).beat_steps)


def phrase_swell(melody: RollTrack, grid: Grid, config: DynamicsConfig = DynamicsConfig()) -> np.ndarray:
    """The phrase's velocity change at each step, shape=(T,) float: the melody's top pitch (held
    through its rests), averaged over a bar around the step, against its middle (the median)."""
    n = grid.n_steps
    sounding = melody.velocity[:n] > 0
    heard = sounding.any(axis=1)
    if not heard.any():
        return np.zeros(n)
    top = np.where(heard, 127 - np.argmax(sounding[:, ::-1], axis=1), -1)
    last = np.maximum.accumulate(np.where(heard, np.arange(n), -1))
    first_heard = int(np.argmax(heard))
    line = np.where(last >= 0, top[np.maximum(last, 0)], top[first_heard]).astype(float)
    window = max(1, grid.bars[0].full_length if grid.bars else 16)
    kernel = np.ones(window) / window
    padded = np.pad(line, (window // 2, window - 1 - window // 2), mode="edge")
    smooth = np.convolve(padded, kernel, mode="valid")
    middle = float(np.median(top[heard]))
    return config.phrase * np.clip((smooth - middle) / config.phrase_semitones, -1.0, 1.0)


def shaped(track: RollTrack, grid: Grid, melody: RollTrack, config: DynamicsConfig = DynamicsConfig()) -> RollTrack:
    """A copy of `track` whose every note has its velocity changed by the metric accent of the step
    it starts on and the phrase's swell there (held for the whole note), kept within 1..127."""
    out = RollTrack(track.name, track.program, track.is_drum, track.velocity.copy(), track.onset.copy(), track.role)
    n = min(track.n_steps, grid.n_steps)
    change = metric_accents(grid, config)[:n] + np.rint(phrase_swell(melody, grid, config)[:n]).astype(np.int64)
    if n == 0:
        return out
    heard = np.flatnonzero((out.velocity[:n] > 0).any(axis=0))
    if not heard.size:
        return out
    low, high = int(heard[0]), int(heard[-1]) + 1
    velocity = out.velocity[:n, low:high]  # a view of the pitches from the lowest to the highest that sounds
    sounding = velocity > 0
    starts = sounding & out.onset[:n, low:high]
    starts[0] |= sounding[0]
    starts[1:] |= sounding[1:] & ~sounding[:-1]
    column, step = np.divmod(np.flatnonzero(sounding.T), n)  # the sounding cells, pitch by pitch
    # Each pitch's first sounding cell starts a note, so carrying the last start forward stays within the pitch.
    begin = step[np.maximum.accumulate(np.where(starts[step, column], np.arange(len(step)), 0))]
    velocity[step, column] = np.clip(velocity[step, column].astype(np.int64) + change[begin], 1, 127)
    return out

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

from dataclasses import dataclass

import numpy as np

from studio.core.roll import Grid, RollTrack

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
    out = np.full(grid.n_steps, config.offbeat, np.int64)
    for i, bar in enumerate(grid.bars):
        shift = bar.full_length - bar.length if i == 0 and bar.length < bar.full_length else 0  # a pickup: the bar's end
        beat = max(1, bar.beat_steps)
        for step in range(bar.start, min(bar.end, grid.n_steps)):
            position = step - bar.start + shift
            if position == 0:
                out[step] = config.downbeat
            elif position % beat == 0:
                out[step] = config.beat
    return out


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
    sounding = out.velocity[:n] > 0
    for pitch in np.flatnonzero(sounding.any(axis=0)):
        column = sounding[:, pitch]
        starts = column & (out.onset[:n, pitch] | ~np.concatenate([[False], column[:-1]]))
        note = np.cumsum(starts) - 1  # which note of this pitch each step belongs to
        begin = np.flatnonzero(starts)
        delta = change[begin][np.maximum(note, 0)]
        steps = np.flatnonzero(column)
        new = out.velocity[steps, pitch].astype(np.int64) + delta[steps]
        out.velocity[steps, pitch] = np.clip(new, 1, 127)
    return out

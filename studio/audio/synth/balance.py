"""The melody's lead, set before the render: each part's loudness predicted from its notes.

The loudness step (issue 21) turns the accompaniment down, when needed, so that the melody is
`SynthConfig.lead_lu` louder than the rest together. Measuring the two parts means rendering them
apart, each with its reverb: a second reverb and a second measure, about 15% of a 16-bar request.
Instead, the loudness of each part is predicted from its notes before anything is rendered, the
accompaniment's channel volumes are scaled by the gain that balance asks (`Split.with_volume`),
and the take is rendered once, as any file; only the mix is measured (for -16 LUFS).

The prediction (`part_loudness`): each note's K-weighted energy, hop by hop, is its instrument's
at that key (`studio.audio.synth.note_energy`: measured once per SoundFont at velocities 32, 64, 96
and 127, and interpolated between them), scaled as the SoundFont 2 default modulators scale it
(FluidSynth's amplitude goes as the square of the channel volume, CC7, and of the expression,
CC11), for as long as the note sounds; a note held past the measured `HOLD_SECONDS` keeps its last
level, and its release is the measured one scaled to the level it left at. Notes of one instrument
on one key struck at the same tick (a doubled voice) play the same sample in phase, so their
amplitudes add while they sound together; every other note's energy adds. The hops' energies give
the BS.1770 gated loudness as a measure of the audio does. On the 72 takes of the six accompanists
on the 12 sample tunes, the balance predicted is within 0.39 LU of the two parts rendered and
measured (mean +0.04, sd 0.12; tests/audio/test_balance.py checks other instruments and drums).

What it leaves out: pan and pitch bend, the reverb (a few tenths of a dB, alike for both parts),
sustain pedals and system-exclusive resets (the studio's takes have none: the lead is set only
for the studio's own files), voices FluidSynth steals in very dense music.
"""

from __future__ import annotations

import math

import numpy as np

from studio.audio.synth.config import Lead, SynthConfig
from studio.audio.synth.engine import Engine
from studio.audio.synth.note_energy import HOLD_HOPS, HOP_SECONDS, VELOCITIES, envelopes_for, instrument_code
from studio.audio.synth.split import DEFAULT_VOLUME, PROGRAM, Split

__all__ = ["part_hops", "part_loudness", "rest_gain"]

_DRUM_CHANNEL = 9  # FluidSynth plays MIDI channel 10 from the drum kits
_FADED = 1e-5  # a measured note this far under its loudest hop (-50 dB) by the end of its hold has faded ...
_FALL = 0.1  # ... and its release is taken to fall 10 dB a hop (FluidR3's pianos and guitars: 5-25 dB)
# each control's value before a file sets it: bank select (FluidSynth's default "gs" mode reads the
# MSB alone), the program, volume and expression
_DEFAULTS = {0: 0, PROGRAM: 0, 7: DEFAULT_VOLUME, 11: 127}


def _state_at(split: Split, channels: np.ndarray, ticks: np.ndarray) -> dict[int, np.ndarray]:
    """Each control's value (`_DEFAULTS`' numbers) on `channels` at `ticks`: the last set at or before
    the tick (in file order among those at one tick), else its default."""
    state = {number: np.full(len(ticks), default, np.int64) for number, default in _DEFAULTS.items()}
    if not split.controls:
        return state
    controls = np.array(split.controls, np.int64)
    order = np.argsort(controls[:, 0], kind="stable")  # by tick, file order kept within one
    controls = controls[order]
    for channel in np.unique(channels):
        notes = channels == channel
        for number in _DEFAULTS:
            mine = controls[(controls[:, 1] == channel) & (controls[:, 2] == number)]
            if len(mine):
                at = np.searchsorted(mine[:, 0], ticks[notes], side="right") - 1
                state[number][notes] = np.where(at >= 0, mine[np.maximum(at, 0), 3], _DEFAULTS[number])
    return state


def _envelopes(instrument: np.ndarray, velocity: np.ndarray, engine: Engine, config: SynthConfig) -> np.ndarray:
    """Each note's envelope (`note_energy`) at its velocity: those measured at the velocities either
    side, each scaled to it by the fourth power (how the held level goes), interpolated hop by hop
    in log energy by log velocity (how the release changes between them)."""
    grid = np.asarray(VELOCITIES)
    velocity = np.clip(velocity, 1, 127)
    above = np.clip(np.searchsorted(grid, velocity), 1, len(grid) - 1)  # the velocities either side: above - 1, above
    low, high = grid[above - 1], grid[above]
    both = envelopes_for(engine, config).of(np.concatenate([instrument + low, instrument + high]), engine)
    lower = both[: len(velocity)] * ((velocity / low) ** 4.0)[:, None]
    upper = both[len(velocity) :] * ((velocity / high) ** 4.0)[:, None]
    weight = np.clip(np.log(velocity / low) / np.log(high / low), 0.0, 1.0)[:, None]  # under the lowest: its own
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = np.exp((1.0 - weight) * np.log(lower) + weight * np.log(upper))
    return np.where((lower > 0) & (upper > 0), mixed, (1.0 - weight) * lower + weight * upper)


def _as_played(notes: np.ndarray, allowance: int) -> np.ndarray:
    """`notes` (`Split.notes` rows) as FluidSynth sounds them when one channel strikes a key that is
    still sounding: the new note-on releases the note already there, and a note-off releases every
    note of that key on that channel. So a note ends at the next note-on of its key and channel, a
    note struck after another ends by the other's note-off at the latest, and of two struck at one
    tick one sounds, to the earlier note-off. The studio's own takes never do this; a song kept
    beside an accompaniment may (a piano's chords strike a key held in another hand)."""
    if len(notes) < 2:
        return notes
    notes = notes[np.lexsort((notes[:, 2], notes[:, 1], notes[:, 3], notes[:, 0]))]  # by channel, key, start, end
    same = (notes[1:, 0] == notes[:-1, 0]) & (notes[1:, 3] == notes[:-1, 3])  # the next note is of this key and channel
    if not same.any():
        return notes
    notes = notes.copy()
    ends = notes[:, 2].copy()  # (each end has the release allowance added, as `Split.notes` keeps it)
    twin = same & (notes[1:, 1] == notes[:-1, 1])  # struck at the tick of the one before: one voice, to the earlier end
    first = np.flatnonzero(same & ~twin)  # a note with a later one of its key and channel
    second = first + 1
    notes[first, 2] = np.minimum(ends[first], notes[second, 1] + allowance)  # released by the next note-on
    released = ends[first] > notes[second, 1] + allowance  # the first's note-off comes once the second sounds
    notes[second, 2] = np.where(released, np.minimum(notes[second, 2], ends[first]), notes[second, 2])  # (it may be a first too)
    return notes[np.concatenate([[True], ~twin])]


def part_hops(split: Split, channels: list[int] | tuple[int, ...], engine: Engine, config: SynthConfig) -> np.ndarray:
    """The predicted K-weighted energy of every 100 ms hop of the notes on `channels` (both audio
    channels together), from the start of the music to the last release; notes not measured yet are
    rendered on `engine` (`note_energy`)."""
    notes = np.array(split.notes, np.int64).reshape(-1, 5)
    notes = _as_played(notes[np.isin(notes[:, 0], np.asarray(channels, np.int64))], split.allowance)
    if not len(notes):
        return np.zeros(0)
    channel, start, end, key, velocity = notes.T
    state = _state_at(split, channel, start)
    drum = channel == _DRUM_CHANNEL
    instrument = instrument_code(drum, np.where(drum, 0, state[0]), state[PROGRAM], key, 0)
    scale = (state[7] / DEFAULT_VOLUME) ** 4.0 * (state[11] / 127.0) ** 4.0  # FluidSynth: amplitude as CC7 squared
    onset = split.seconds_at(start)
    length = np.maximum(0.0, (split.seconds_at(end - split.allowance) - onset) / HOP_SECONDS)  # in hops, fractional

    # A doubled voice (one instrument on one key, struck at one tick) is the same sample in phase:
    # amplitudes add while the notes sound together. So, among the notes struck together, longest
    # first, each weighs the power its amplitude adds to those that outlast it (A_i^2 - A_(i-1)^2,
    # A_i the amplitudes summed up to it), and the sum of weights of those sounding at any time is
    # the power of their summed amplitudes.
    order = np.lexsort((-length, start, instrument))
    instrument, start, length, scale, onset, velocity = (a[order] for a in (instrument, start, length, scale, onset, velocity))
    amplitude = np.sqrt(scale)
    summed = np.cumsum(amplitude)
    new = np.ones(len(instrument), bool)
    new[1:] = (instrument[1:] != instrument[:-1]) | (start[1:] != start[:-1])
    before = np.maximum.accumulate(np.where(new, np.arange(len(instrument)), 0))  # each note's group's first
    summed -= (summed - amplitude)[before]
    scale = summed**2 - (summed - amplitude) ** 2
    first = np.rint(onset / HOP_SECONDS).astype(np.int64)

    envelope = _envelopes(instrument, velocity, engine, config) * scale[:, None]
    held, release = envelope[:, :HOLD_HOPS], envelope[:, HOLD_HOPS:]
    whole = np.floor(length).astype(np.int64)  # the hop the note is released in, from its first
    part = length - whole  # ... and how far into it
    hops = int((first + whole).max()) + release.shape[1] + 2
    out = np.zeros(hops)
    # the hops held: each as much of it as the note sounds (a note of 50 ms, half its first hop)
    weight = np.clip(length[:, None] - np.arange(HOLD_HOPS)[None, :], 0.0, 1.0)
    at = first[:, None] + np.arange(HOLD_HOPS)[None, :]
    out += np.bincount(at.ravel(), (held * weight).ravel(), minlength=hops)[:hops]
    longer = length > HOLD_HOPS  # held past the measured note: its last level to the end
    if longer.any():
        last = held[longer, -1]
        steady = np.zeros(hops + 1)
        np.add.at(steady, first[longer] + HOLD_HOPS, last)
        np.add.at(steady, first[longer] + whole[longer], -last)
        out += np.cumsum(steady)[:hops]
        np.add.at(out, first[longer] + whole[longer], last * part[longer])
    # the release, from the level the note left at (the measured one left at the end of its hold),
    # starting part of the way into the hop it is released in, never louder than that level; a note
    # that had faded under `_FADED` of its loudest by the end of its measured hold (a soft electric
    # piano: -97 dB) left no release to scale, so its release falls `_FALL` a hop
    left_at = held[np.arange(len(held)), np.minimum(whole, HOLD_HOPS - 1)]
    measured = held[:, -1] > _FADED * held.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(measured, left_at / held[:, -1], 0.0)
    fall = left_at[:, None] * _FALL ** np.arange(1, release.shape[1] + 1)[None, :]
    tail = np.minimum(np.where(measured[:, None], release * ratio[:, None], fall), left_at[:, None])
    at = (first + whole)[:, None] + np.arange(tail.shape[1])[None, :]
    out += np.bincount(at.ravel(), (tail * (1.0 - part)[:, None]).ravel(), minlength=hops)[:hops]
    out += np.bincount((at + 1).ravel(), (tail * part[:, None]).ravel(), minlength=hops)[:hops]
    return out


def part_loudness(split: Split, channels: list[int] | tuple[int, ...], engine: Engine, config: SynthConfig) -> float:
    """The predicted integrated loudness (LUFS, BS.1770 gated; -inf for no notes) of `channels`."""
    from studio.audio import loudness

    return loudness.hops_loudness(part_hops(split, channels, engine, config)[None, :], config.sample_rate)


def rest_gain(split: Split, lead: Lead, engine: Engine, config: SynthConfig) -> float:
    """The gain (amplitude, at most 1) of every channel but the melody's that sets the melody
    `config.lead_lu` above the rest together (`studio.audio.loudness.lead_gain`, the mixer's gains
    taken out), from the notes alone."""
    from studio.audio import loudness

    sounding = sorted({int(n[0]) for n in split.notes})
    melody = [c for c in sounding if c in lead.channels]
    rest = [c for c in sounding if c not in lead.channels]
    if not melody or not rest:
        return 1.0
    lead_lufs = part_loudness(split, melody, engine, config)
    rest_lufs = part_loudness(split, rest, engine, config)
    gain = loudness.lead_gain(lead_lufs, rest_lufs, config.lead_lu, lead.lead_db, lead.rest_db)
    return gain if math.isfinite(gain) else 1.0

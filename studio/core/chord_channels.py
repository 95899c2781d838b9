"""What a chord-conditioned model sees of the chords: per-step input channels, shape=(T, 25).

At every step of the grid, the chord sounding there (a `studio.core.chords.ChordSpan`) becomes:

- 12 *chord-tone* channels: 1 for each pitch class of the chord (C first);
- 12 *bass* channels: 1 at the pitch class in the bass (a slash chord's bass, else the root);
- 1 *given* flag: 1 where a chord is given, 0 where none is (no span, or a span whose chord is None),
  so "no chord" is explicit rather than read from an empty row.

A network over time (the AR-CNN's 1-D convolutions) reads a pitch class the same way it reads the
melody's key profile (`studio.core.conditioning.context_features`); transposing music by a number of
semitones rotates both pitch-class blocks by the same number (`transpose_chord_channels`).

Training labels come from the music itself (`piece_chords`): `studio.core.chords.analyse_chords`
over the piece's own tracks, the same analysis the page shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.core.chords import ChordSpan, analyse_chords, parse_chord
from studio.core.errors import InputError
from studio.core.roll import Grid, RollTrack
from studio.core.theory import Key

__all__ = ["GIVEN", "N_CHORD_FEATURES", "chord_channels", "key_from_name", "piece_chords", "transpose_chord_channels"]

N_CHORD_FEATURES = 25  # 12 chord tones + 12 bass + 1 given flag
BASS = 12  # first bass channel
GIVEN = 24  # the "a chord is given here" flag


def chord_channels(spans: Sequence[ChordSpan] | None, n_steps: int) -> np.ndarray:
    """The chord channels of `spans` over `n_steps` steps, shape=(T, 25) float32 (all zero where no
    chord is given; steps of a span past `n_steps` are cut)."""
    out = np.zeros((n_steps, N_CHORD_FEATURES), np.float32)
    for span in spans or ():
        if span.chord is None:
            continue
        start, end = max(0, int(span.start)), min(n_steps, int(span.end))
        if end <= start:
            continue
        out[start:end, list(span.chord.pitch_classes)] = 1.0
        out[start:end, BASS + (span.chord.root if span.chord.bass is None else span.chord.bass)] = 1.0
        out[start:end, GIVEN] = 1.0
    return out


def transpose_chord_channels(channels: np.ndarray, semitones: int | np.ndarray) -> np.ndarray:
    """`channels` (T, 25), or a batch (B, T, 25) with one shift per row, with both pitch-class blocks
    moved up by `semitones`; the given flag stays."""
    channels = np.asarray(channels)
    if channels.ndim == 2:
        return transpose_chord_channels(channels[None], [semitones])[0]
    out = channels.copy()
    for row, shift in enumerate(np.broadcast_to(np.asarray(semitones, np.int64), channels.shape[:1]).tolist()):
        out[row, :, :BASS] = np.roll(channels[row, :, :BASS], shift, axis=-1)
        out[row, :, BASS:GIVEN] = np.roll(channels[row, :, BASS:GIVEN], shift, axis=-1)
    return out


def key_from_name(name: str) -> Key | None:
    """A key written as the corpora write it ('Bb major', 'F# minor'); None if it cannot be read."""
    parts = name.split()
    if len(parts) != 2 or parts[1] not in ("major", "minor"):
        return None
    try:
        return Key(parse_chord(parts[0].replace("-", "b")).root, parts[1])
    except InputError:
        return None


def piece_chords(tracks: Sequence[RollTrack], grid: Grid, key: Key | None) -> list[ChordSpan]:
    """A piece's chords as training labels: `analyse_chords` over all of `tracks` (the melody and the
    voices), a chord per half bar in duple meters (a bar in triple ones), equal neighbours merged."""
    return analyse_chords(tracks, grid, key)

"""The chord channels a chord-conditioned model reads (studio/core/chord_channels.py), and the training
windows that carry them transposed with the music (studio/core/voices.py)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.chord_channels import GIVEN, N_CHORD_FEATURES, chord_channels, key_from_name, piece_chords, transpose_chord_channels
from studio.core.chords import ChordSpan, ChordSymbol, chord_tone_share
from studio.core.conditioning import meter_features
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.theory import Key
from studio.core.voices import VoicePiece, VoiceWindows

C = ChordSymbol(0)
G_OVER_B = ChordSymbol(7, "", 11)
A_MINOR = ChordSymbol(9, "m")


def grid_of(n_bars: int) -> Grid:
    return Grid(480, 16 * n_bars, [Bar(16 * i, 16, 4, 4) for i in range(n_bars)])


def row(tones: tuple[int, ...], bass: int | None) -> np.ndarray:
    """One step's channels written out by hand: chord tones, the bass, the given flag."""
    out = np.zeros(N_CHORD_FEATURES, np.float32)
    if bass is None:
        return out
    out[list(tones)] = 1.0
    out[12 + bass] = 1.0
    out[GIVEN] = 1.0
    return out


def test_each_step_shows_the_chord_sounding_there():
    spans = [ChordSpan(0, 8, C), ChordSpan(8, 16, G_OVER_B), ChordSpan(16, 20, None), ChordSpan(22, 40, A_MINOR)]
    got = chord_channels(spans, 30)
    assert got.shape == (30, N_CHORD_FEATURES) and got.dtype == np.float32
    expected = np.stack(
        [row((0, 4, 7), 0)] * 8  # C, root in the bass
        + [row((7, 11, 2), 11)] * 8  # G/B: the slash bass
        + [row((), None)] * 6  # a span without a chord, then no span: nothing given
        + [row((9, 0, 4), 9)] * 8  # Am, cut at the end of the grid
    )
    np.testing.assert_array_equal(got, expected)
    assert not chord_channels(None, 5).any() and not chord_channels([], 5).any()


@pytest.mark.parametrize("shift", [2, -3, 11])
def test_transposing_the_channels_is_transposing_the_chords(shift):
    spans = [ChordSpan(0, 8, C), ChordSpan(8, 16, G_OVER_B), ChordSpan(16, 24, A_MINOR)]
    moved = [
        ChordSpan(
            s.start,
            s.end,
            ChordSymbol((s.chord.root + shift) % 12, s.chord.quality, None if s.chord.bass is None else (s.chord.bass + shift) % 12),
        )
        for s in spans
    ]
    np.testing.assert_array_equal(transpose_chord_channels(chord_channels(spans, 30), shift), chord_channels(moved, 30))
    batch = np.stack([chord_channels(spans, 30)] * 2)  # one shift per row
    got = transpose_chord_channels(batch, np.array([0, shift]))
    np.testing.assert_array_equal(got[0], batch[0])
    np.testing.assert_array_equal(got[1], chord_channels(moved, 30))


def test_training_windows_carry_chords_transposed_with_their_notes():
    """A window's melody note sits in its chord before and after the window is transposed."""
    grid = grid_of(8)
    n = grid.n_steps
    tokens = np.zeros((1, n), np.int64)
    tokens[0] = 60 - 23  # MIDI 60 (C) everywhere: token = pitch - 24 + 1
    spans = [ChordSpan(16 * i, 16 * (i + 1), [C, A_MINOR][i % 2]) for i in range(8)]
    piece = VoicePiece("p", tokens, np.zeros((1, n), bool), meter_features(grid), np.array([b.start for b in grid.bars]))
    piece.chords = chord_channels(spans, n)
    windows = VoiceWindows([piece], 32, transpose=(-5, 6))
    batch = windows.batch(np.arange(len(windows)), np.random.default_rng(3))
    assert batch.chords is not None and batch.chords.shape == (len(windows), 32, N_CHORD_FEATURES)
    for j, (_, start, shift) in enumerate(batch.origin.tolist()):
        np.testing.assert_array_equal(batch.chords[j], transpose_chord_channels(piece.chords[start : start + 32], shift))
        melody_pc = (int(batch.tokens[j, 0, 0]) + 23) % 12
        assert batch.chords[j, 0, melody_pc] == 1.0  # C is in C and in Am, and stays in their transpositions
    piece.chords = None
    assert windows.batch(np.arange(2), np.random.default_rng(0)).chords is None  # a model without chords sees none


def test_the_training_labels_are_the_pages_analysis():
    grid = grid_of(2)
    low, high = RollTrack.empty("Bass", 0, 32), RollTrack.empty("Soprano", 0, 32)
    for start, pitches in ((0, (48, 64, 67)), (16, (43, 62, 71))):  # C then G
        low.add_note(start, start + 16, pitches[0])
        for p in pitches[1:]:
            high.add_note(start, start + 16, p)
    spans = piece_chords([high, low], grid, key_from_name("C major"))
    assert [s.chord for s in spans] == [C, ChordSymbol(7)]
    assert chord_tone_share([high, low], grid, spans) == (1.0, 12)


def test_keys_as_the_corpora_write_them():
    assert key_from_name("Bb major") == Key(10, "major")
    assert key_from_name("F# minor") == Key(6, "minor")
    assert key_from_name("E- major") == Key(3, "major")  # music21's flat
    assert key_from_name("") is None and key_from_name("H major") is None and key_from_name("C dorian") is None

"""studio.core.passing_notes: thirds into a beat, filled or not, counted in real voices and filled in a take."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from studio.core.conditioning import pitches_to_tokens
from studio.core.passing_notes import fill_thirds, passing_counts, passing_odds, third_places

C_MAJOR = frozenset({0, 2, 4, 5, 7, 9, 11})
# Twelve steps, beats every four; the melody (row 0) starts a note on every beat and holds between.
BEATS = np.array([1, 0, 0, 0] * 3, bool)
MELODY_STARTS = BEATS.copy()
MELODY = [72] * 4 + [74] * 4 + [76] * 4


def _voices(*rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    pitches = np.array([MELODY, *rows])
    return pitches, np.zeros(pitches.shape, bool)


def test_a_third_into_a_beat_is_a_place_filled_or_not():
    # alto: C4 for a beat, then E4 on the next beat (unfilled); tenor: G3 for an eighth, A3 for the
    # beat's last eighth, then B3 on the beat (filled); bass: a step, no third.
    pitches, starts = _voices([60] * 4 + [64] * 8, [55, 55, 57, 57, 59, 59, 59, 59, 59, 59, 59, 59], [48] * 4 + [50] * 8)
    places = third_places(pitches, starts, MELODY_STARTS, BEATS)
    assert places == [(1, 0, 4, 1, False), (2, 0, 4, 1, True)]  # the melody holds under the passing eighth
    counts = passing_counts(pitches, starts, MELODY_STARTS, BEATS)
    assert counts[:, 1].tolist() == [1, 2] and counts.sum() == 3


def test_situations_tell_the_note_s_length_and_the_melody():
    melody_starts = np.ones(12, bool)  # the melody starts a note at every step
    pitches, starts = _voices([60] * 8 + [64] * 4, [55] * 4 + [59] * 8, [48] * 12)
    places = third_places(pitches, starts, melody_starts, BEATS)
    assert [(v, s) for v, _f, _e, s, _filled in places] == [(1, 2), (2, 0)]  # a half note (longer); a beat long


def test_no_place_without_a_beat_a_third_or_a_beat_s_length():
    beats = np.zeros(12, bool)
    pitches, starts = _voices([60] * 4 + [64] * 8, [55] * 2 + [59] * 10, [48] * 4 + [55] * 8)
    assert third_places(pitches, starts, MELODY_STARTS, beats) == []  # no beat
    assert third_places(pitches, starts, MELODY_STARTS, BEATS) == [(1, 0, 4, 1, False)]  # tenor too short, bass a fifth
    rested = pitches.copy()
    rested[1, 3] = -1
    assert third_places(rested, starts, MELODY_STARTS, BEATS) == []  # a rest before the beat


def test_odds_are_the_real_voices_share_filled():
    meter = np.zeros((12, 11))
    meter[:, 1] = BEATS
    filled = np.array([MELODY, [55, 55, 57, 57, 59, 59, 59, 59, 59, 59, 59, 59]])
    leapt = np.array([MELODY, [55] * 4 + [59] * 8])
    pieces = []
    for pitches in (filled, leapt, leapt):
        onsets = np.zeros(pitches.shape, bool)
        onsets[0] = MELODY_STARTS
        onsets[1, 0] = True
        pieces.append(SimpleNamespace(tokens=pitches_to_tokens(pitches), onsets=onsets, meter=meter))
    odds = passing_odds(pieces)
    assert odds[1] == round(1 / 3, 4) and odds[0] == odds[2] == odds[3] == 0.0


def test_fill_puts_the_step_between_in_the_key_and_keeps_everything_else():
    pitches, starts = _voices([60] * 4 + [64] * 8, [55] * 4 + [52] * 8, [48] * 12)
    out, out_starts = fill_thirds(pitches, starts, MELODY_STARTS, BEATS, (1.0,) * 4, C_MAJOR, np.random.default_rng(0))
    assert out[1].tolist() == [60, 60, 62, 62] + [64] * 8  # D, not C# or D#
    assert out[2].tolist() == [55, 55, 53, 53] + [52] * 8  # F down to E: a whole step, then a half
    assert out_starts[1, 2] and out_starts[2, 2]
    assert np.array_equal(out[[0, 3]], pitches[[0, 3]])  # the melody and the bass untouched
    assert third_places(out, out_starts, MELODY_STARTS, BEATS)[0][4]  # now a filled place
    same, _ = fill_thirds(pitches, starts, MELODY_STARTS, BEATS, (0.0,) * 4, C_MAJOR, np.random.default_rng(0))
    assert np.array_equal(same, pitches)  # odds 0: nothing
    none, _ = fill_thirds(pitches, starts, MELODY_STARTS, BEATS, (), C_MAJOR, np.random.default_rng(0))
    assert np.array_equal(none, pitches)  # a card without odds: nothing


def test_fill_never_crosses_a_voice_or_moves_in_parallels():
    # the tenor would pass through D4 while the alto sits on D4 (a unison, a crossing): not filled
    pitches, starts = _voices([62] * 12, [60] * 4 + [64] * 8)
    out, _ = fill_thirds(pitches, starts, MELODY_STARTS, BEATS, (1.0,) * 4, C_MAJOR, np.random.default_rng(0))
    assert np.array_equal(out, pitches)
    # the alto C4 -> E4 (passing D4) a fifth under the melody G4 -> A4 at the same eighth: parallel fifths
    melody = [67, 67, 69, 69] + [71] * 8
    pitches = np.array([melody, [60] * 4 + [64] * 8])
    starts = np.zeros(pitches.shape, bool)
    out, _ = fill_thirds(pitches, starts, np.array([1, 0, 1, 0] * 3, bool), BEATS, (1.0,) * 4, C_MAJOR, np.random.default_rng(0))
    assert np.array_equal(out, pitches)
    # no pitch between in the key: C4 -> D#4 passes through C#4 or D4, neither in a key of C and D# alone
    pitches, starts = _voices([60] * 4 + [63] * 8)
    out, _ = fill_thirds(pitches, starts, MELODY_STARTS, BEATS, (1.0,) * 4, frozenset({0, 3}), np.random.default_rng(0))
    assert np.array_equal(out, pitches)


def test_fill_follows_the_odds_and_the_place_limits():
    n = 4000
    melody = np.full(n, 84)  # a held C6 over everything (it never moves, so nothing moves in parallel with it)
    alto = np.repeat(np.where(np.arange(n // 4) % 2 == 0, 60, 64), 4)  # C and E a beat each, back and forth
    pitches = np.array([melody, alto])
    starts = np.zeros(pitches.shape, bool)
    beats = np.zeros(n, bool)
    beats[::4] = True
    out, _ = fill_thirds(pitches, starts, beats, beats, (0.0, 0.5, 0.0, 0.0), C_MAJOR, np.random.default_rng(0))
    filled = (out[1] != pitches[1]).reshape(-1, 4)[:, 2]
    assert abs(filled.mean() - 0.5) < 0.05
    assert (out[1][out[1] != pitches[1]] == 62).all()
    where = np.zeros(pitches.shape, bool)
    where[:, : n // 2] = True
    inside, _ = fill_thirds(pitches, starts, beats, beats, (1.0,) * 4, C_MAJOR, np.random.default_rng(0), where)
    assert (inside[1, : n // 2 - 4] != pitches[1, : n // 2 - 4]).any() and np.array_equal(inside[1, n // 2 :], pitches[1, n // 2 :])

"""studio.core.restrikes: where a voice strikes a held pitch again, read from real voices and drawn for a take."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from studio.core.conditioning import REST
from studio.core.restrikes import draw_restrikes, held_situations, restrike_odds

# Eight steps, beats on 0 and 4; the melody starts notes on 0, 2 and 4, holds 5-7.
MELODY = [10, 10, 12, 12, 14, 14, 14, 14]
MELODY_STARTS = np.array([1, 0, 1, 0, 1, 0, 0, 0], bool)
BEATS = np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)


def test_each_held_pitch_is_in_its_situation():
    tokens = np.array([MELODY, [5, 5, 5, 5, 5, 5, 6, 6], [REST, REST, 7, 7, 8, 8, 8, REST]])
    got = held_situations(tokens, MELODY_STARTS, BEATS)
    assert got[0].tolist() == [-1] * 8  # the melody's own row
    # voice 1 holds 5 over steps 1-5 (off, melody starts off the beat, melody starts on a beat, off, off) and 6 at 7
    assert got[1].tolist() == [-1, 3, 1, 3, 0, 3, -1, 3]
    assert got[2].tolist() == [-1, -1, -1, 3, -1, 3, 3, -1]  # a rest is never held, nor the pitch after it


def test_odds_are_the_real_voices_share_in_each_situation():
    """Two pieces: at step 4 (melody starts on a beat) the alto strikes again in one, holds in the other."""
    meter = np.zeros((8, 11))
    meter[:, 1] = BEATS
    onsets = np.zeros((2, 8), bool)
    onsets[0] = MELODY_STARTS
    onsets[1, 0] = True
    struck = onsets.copy()
    struck[1, 4] = True
    alto = [5] * 8
    pieces = [SimpleNamespace(tokens=np.array([MELODY, alto]), onsets=o, meter=meter) for o in (struck, onsets)]
    odds = restrike_odds(pieces)
    assert odds[0] == 0.5 and odds[1] == 0.0 and odds[3] == 0.0
    assert odds[2] == 0.0  # never seen: 0


def test_draws_follow_the_odds_and_leave_the_melody_alone():
    n = 4000
    tokens = np.zeros((3, n), np.int64)
    tokens[0] = np.repeat(np.arange(n // 4) % 30 + 1, 4)  # a melody note every four steps
    tokens[1:] = 40  # two voices holding one pitch throughout
    starts = np.zeros(n, bool)
    starts[::4] = True
    beats = np.zeros(n, bool)
    beats[::8] = True
    drawn = draw_restrikes(tokens, starts, beats, (0.75, 0.25, 0.0, 0.0), np.random.default_rng(0))
    assert not drawn[0].any()
    on_beat = drawn[1:, 8::8]
    off_beat = drawn[1:, 4::8]
    assert abs(on_beat.mean() - 0.75) < 0.05 and abs(off_beat.mean() - 0.25) < 0.05
    assert not drawn[1:, 1::4].any()  # where the melody holds: odds 0
    again = draw_restrikes(tokens, starts, beats, (0.75, 0.25, 0.0, 0.0), np.random.default_rng(0))
    assert np.array_equal(drawn, again)  # the seed decides
    assert not draw_restrikes(tokens, starts, beats, (), np.random.default_rng(0)).any()  # a card without odds: none


def test_a_model_that_strikes_too_often_keeps_the_genres_share():
    """`keep_shares`: the genre's rate over the model's, at most 1; `thin_restrikes` keeps about that
    share of the re-strikes in each situation, never a start of a new pitch, and only inside `where`."""
    from studio.core.restrikes import keep_shares, thin_restrikes

    assert keep_shares((0.3, 0.01, 0.1, 0.0), (0.6, 0.05, 0.05, 0.0)) == (0.5, 0.2, 1.0, 1.0)
    n = 8000
    melody = np.repeat(np.arange(n // 4) % 20 + 1, 4)
    starts = np.zeros(n, bool)
    starts[::4] = True
    beats = np.zeros(n, bool)
    beats[::8] = True
    tokens = np.full((2, n), 40)
    tokens[1, ::16] = 41  # voice 2 changes pitch every 16 steps: those starts are never dropped
    onsets = np.ones((2, n), bool)  # every step struck
    kept = thin_restrikes(tokens, onsets, melody, starts, beats, (0.5, 0.25, 1.0, 0.0), np.random.default_rng(0))
    assert abs(kept[0, 8::8].mean() - 0.5) < 0.05 and abs(kept[0, 4::8].mean() - 0.25) < 0.05  # the voice that only holds
    assert kept[0, 2::4].sum() == 0 and kept[0, 1::4].sum() == 0  # melody holding, off the beat: 0 kept
    changed = np.zeros((2, n), bool)
    changed[1, ::16] = True
    changed[1, 1::16] = True  # the step after a change is a new pitch too (41 -> 40)
    changed[:, 0] = True
    assert kept[changed].all()
    inside = np.zeros((2, n), bool)
    inside[:, : n // 2] = True
    limited = thin_restrikes(tokens, onsets, melody, starts, beats, (0.5, 0.25, 1.0, 0.0), np.random.default_rng(0), inside)
    assert limited[:, n // 2 :].all() and not limited[:, : n // 2].all()
    assert thin_restrikes(tokens, onsets, melody, starts, beats, (), np.random.default_rng(0)).all()  # no shares: as it was


def test_per_voice_odds_and_draws():
    """Read per voice, each accompanying voice has its own four odds; a table of four per voice is drawn
    row by row (the bass that seldom strikes again keeps its held pitch)."""
    meter = np.zeros((8, 11))
    meter[:, 1] = BEATS
    onsets = np.zeros((3, 8), bool)
    onsets[0] = MELODY_STARTS
    onsets[1:, 0] = True
    onsets[1, 4] = True  # the alto strikes its held pitch again on the beat, the bass does not
    piece = SimpleNamespace(tokens=np.array([MELODY, [5] * 8, [3] * 8]), onsets=onsets, meter=meter)
    odds = restrike_odds([piece], per_voice=True)
    assert len(odds) == 8 and odds[0] == 1.0 and odds[4] == 0.0
    assert restrike_odds([piece]) == (0.5, 0.0, 0.0, 0.0)  # pooled, as before
    n = 4000
    tokens = np.zeros((3, n), np.int64)
    tokens[0] = np.repeat(np.arange(n // 4) % 30 + 1, 4)
    tokens[1:] = 40
    starts = np.zeros(n, bool)
    starts[::4] = True
    beats = np.zeros(n, bool)
    beats[::8] = True
    drawn = draw_restrikes(tokens, starts, beats, (0.8, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0), np.random.default_rng(0))
    assert abs(drawn[1, 8::8].mean() - 0.8) < 0.05 and abs(drawn[2, 8::8].mean() - 0.1) < 0.03
    pooled = draw_restrikes(tokens, starts, beats, (0.8, 0.0, 0.0, 0.0), np.random.default_rng(0))
    assert np.array_equal(pooled[1], drawn[1])  # the same draws: a pooled table's takes are unchanged

"""studio.core.conditioning and studio.core.voices: voices, meter features and training windows."""

from __future__ import annotations

import numpy as np

from studio.core.conditioning import (
    N_METER_FEATURES,
    REST,
    melody_features,
    meter_features,
    tokens_to_track,
    track_to_tokens,
    transpose_tokens,
)
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.voices import VoicePiece, VoiceWindows


def _grid(bar_lengths: list[tuple[int, int, int]], pickup: int = 0) -> Grid:
    bars, start = [], 0
    if pickup:
        num, den, _ = bar_lengths[0]
        bars.append(Bar(0, pickup, num, den))
        start = pickup
    for num, den, count in bar_lengths:
        full = round(num * 16 / den)
        for _ in range(count):
            bars.append(Bar(start, full, num, den))
            start += full
    return Grid(480, start, bars)


def test_meter_features_follow_each_meter():
    grid = _grid([(4, 4, 2), (3, 4, 2), (6, 8, 1)])
    f = meter_features(grid)
    assert f.shape == (16 * 2 + 12 * 2 + 12, N_METER_FEATURES)
    assert np.flatnonzero(f[:, 0]).tolist() == [0, 16, 32, 44, 56]  # downbeats
    assert np.flatnonzero(f[:32, 1]).tolist() == [0, 4, 8, 12, 16, 20, 24, 28]  # quarter beats in 4/4
    assert np.flatnonzero(f[56:, 1]).tolist() == [0, 6]  # dotted-quarter beats in 6/8
    assert f[8, 3] == 1 and f[32 + 6, 3] == 0  # a half-bar accent in 4/4, none in 3/4
    assert f[56:, 10].all() and f[44:56, 11].all() and not f[:44, 10:].any()  # last and next-to-last bar


def test_pickup_counts_from_the_end_of_its_bar():
    grid = _grid([(3, 4, 2)], pickup=4)  # a one-beat pickup in 3/4
    f = meter_features(grid)
    assert f[0, 0] == 0 and f[0, 1] == 1  # a beat, not a downbeat
    assert f[4, 0] == 1
    # the pickup's step sits where the last beat of a full bar sits
    np.testing.assert_allclose(f[0, 4:6], f[4 + 8, 4:6], atol=1e-6)


def _meter_features_bar_by_bar(grid: Grid) -> np.ndarray:
    """The features as first written, one bar at a time: the reference for the vectorized version."""
    n = grid.n_steps
    out = np.zeros((n, N_METER_FEATURES), np.float32)
    last = len(grid.bars) - 1
    for i, bar in enumerate(grid.bars):
        lo, hi = bar.start, min(bar.end, n)
        if hi <= lo:
            continue
        full = bar.full_length
        offset = full - bar.length if i == 0 and bar.length < full else 0
        pos = np.arange(lo, hi) - lo + offset
        beat = bar.beat_steps
        out[lo:hi, 0] = pos == 0
        out[lo:hi, 1] = pos % beat == 0
        out[lo:hi, 2] = pos % 2 == 0
        out[lo:hi, 3] = (pos * 2 == full) & (full % (2 * beat) == 0)
        angle = 2 * np.pi * pos / full
        out[lo:hi, 4], out[lo:hi, 5] = np.sin(angle), np.cos(angle)
        angle = 2 * np.pi * (pos % beat) / beat
        out[lo:hi, 6], out[lo:hi, 7] = np.sin(angle), np.cos(angle)
        phrase = 2 * np.pi * ((i % 4) + pos / full) / 4
        out[lo:hi, 8], out[lo:hi, 9] = np.sin(phrase), np.cos(phrase)
        out[lo:hi, 10] = i == last
        out[lo:hi, 11] = i == last - 1
    return out


def test_meter_features_are_exactly_those_computed_bar_by_bar():
    # random meters, changes, pickups, grids shorter or longer than their bars, no bars at all
    rng = np.random.default_rng(0)
    meters = [(4, 4), (3, 4), (2, 4), (6, 8), (9, 8), (12, 8), (5, 4), (7, 8), (2, 2), (3, 8), (1, 4)]
    for _ in range(300):
        bars, at = [], 0
        for i in range(int(rng.integers(0, 30))):
            num, den = meters[int(rng.integers(len(meters)))]
            full = max(1, round(num * 16 / den))
            length = full if i or rng.random() < 0.5 else int(rng.integers(1, full + 1))
            bars.append(Bar(at, length, num, den))
            at += length
        grid = Grid(480, max(0, at + int(rng.integers(-20, 21))), bars)
        want, got = _meter_features_bar_by_bar(grid), meter_features(grid)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_tokens_round_trip_keeps_repeated_notes_and_rests():
    track = RollTrack.empty("Melody", 0, 16)
    track.add_note(0, 4, 60)
    track.add_note(4, 8, 60)  # the same pitch again: a new note
    track.add_note(10, 16, 130 - 3)  # pitch 127: outside the model range
    tokens, onsets = track_to_tokens(track)
    assert tokens[0] == 60 - 23 and tokens[8] == REST and tokens[10] == 127 - 12 * 2 - 23
    assert onsets.tolist().count(True) == 3 and onsets[4]
    back = tokens_to_track(tokens, onsets, "Melody", 0)
    starts = np.argwhere(back.onset).tolist()
    assert starts == [[0, 60], [4, 60], [10, 103]]


def test_melody_features_and_transposition():
    tokens = np.array([REST, 1, 1, 84, 40])
    feats = melody_features(tokens, np.array([0, 1, 0, 1, 1], bool))
    assert feats.shape == (5, 98) and feats[0, 0] == 1 and feats[:, :85].sum() == 5
    assert feats[1, 85 + 1 + 0] == 1  # token 1 = MIDI 24 = C
    moved = transpose_tokens(tokens, 5)
    assert moved[0] == REST and moved[1] == 6 and moved[3] == 84 + 5 - 12
    rows = transpose_tokens(np.stack([tokens, tokens]), np.array([-2, 3]))
    assert rows[0, 4] == 38 and rows[1, 4] == 43 and rows[0, 1] == 1 - 2 + 12


def test_windows_start_on_bar_lines_and_include_the_end():
    grid = _grid([(3, 4, 10)])
    n = grid.n_steps
    tokens = np.zeros((2, n), np.int64)
    tokens[0, :] = 40
    tokens[1, :] = 30
    piece = VoicePiece("p", tokens, np.zeros((2, n), bool), meter_features(grid), np.array([b.start for b in grid.bars]))
    w = VoiceWindows([piece], length=48, transpose=(-2, 2))
    starts = w.index[:, 1].tolist()
    assert all(s % 12 == 0 for s in starts[:-1]) and starts[-1] == n - 48
    batch = w.sample(4, np.random.default_rng(0))
    assert batch.tokens.shape == (4, 2, 48) and batch.context.shape == (4, 48, N_METER_FEATURES + 12)
    shifts = batch.origin[:, 2]
    assert (batch.tokens[:, 0, 0] == 40 + shifts).all() and (batch.tokens[:, 1, 0] == 30 + shifts).all()


def test_key_profile_moves_with_the_transposition():
    grid = _grid([(4, 4, 4)])
    n = grid.n_steps
    tokens = np.zeros((1, n), np.int64)
    tokens[0, : n // 2] = 60 - 23  # C
    tokens[0, n // 2 :] = 67 - 23  # G
    piece = VoicePiece("p", tokens, np.zeros((1, n), bool), meter_features(grid), np.array([b.start for b in grid.bars]))
    assert piece.profile[0] == 0.5 and piece.profile[7] == 0.5
    batch = VoiceWindows([piece], length=32, transpose=(2, 2)).sample(1, np.random.default_rng(0))
    profile = batch.context[0, 0, N_METER_FEATURES:]
    assert profile[2] == 0.5 and profile[9] == 0.5  # D and A after a whole-tone shift


def test_events_round_trip_with_rests_as_one_decision():
    from studio.core.conditioning import HOLD, events_to_tokens, tokens_to_events

    tokens = np.array([0, 0, 5, 5, 5, 7, 7, 0, 0, 0, 9, 9])
    onsets = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0], bool)
    events = tokens_to_events(tokens, onsets)
    assert events.tolist() == [REST, HOLD, 6, HOLD, 6, 8, HOLD, REST, HOLD, HOLD, 10, HOLD]
    back, starts = events_to_tokens(events)
    assert back.tolist() == tokens.tolist() and starts.tolist() == onsets.tolist()
    assert events_to_tokens(np.array([HOLD, HOLD, 3]))[0].tolist() == [0, 0, 2]  # a hold with nothing sounding is silence

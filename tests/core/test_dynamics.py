"""studio.core.dynamics: metric accents and the phrase's swell on a flat accompaniment."""

from __future__ import annotations

import numpy as np

from studio.core.dynamics import DynamicsConfig, metric_accents, phrase_swell, shaped
from studio.core.roll import Bar, Grid, RollTrack

CONFIG = DynamicsConfig()


def _grid(*bars: tuple[int, int, int]) -> Grid:
    """Bars of (length, numerator, denominator), one after another."""
    out, start = [], 0
    for length, num, den in bars:
        out.append(Bar(start, length, num, den))
        start += length
    return Grid(480, start, out)


def _melody(pitches: list[int], n_steps: int, length: int = 4) -> RollTrack:
    track = RollTrack.empty("Melody", 0, n_steps)
    for i, p in enumerate(pitches):
        track.add_note(i * length, (i + 1) * length, p, 90)
    return track


def test_accents_follow_the_bar_its_beats_and_a_pickup():
    grid = _grid((16, 4, 4), (16, 4, 4))
    accents = metric_accents(grid)
    assert accents[0] == accents[16] == CONFIG.downbeat
    assert accents[4] == accents[8] == accents[20] == CONFIG.beat
    assert accents[2] == accents[5] == CONFIG.offbeat
    six_eight = metric_accents(_grid((12, 6, 8)))
    assert six_eight[0] == CONFIG.downbeat and six_eight[6] == CONFIG.beat and six_eight[3] == CONFIG.offbeat  # beats are dotted quarters
    pickup = metric_accents(_grid((4, 4, 4), (16, 4, 4)))  # one beat before the first full bar
    assert pickup[0] == CONFIG.beat and pickup[4] == CONFIG.downbeat


def test_the_phrase_swells_with_the_melody():
    grid = _grid((16, 4, 4), (16, 4, 4), (16, 4, 4), (16, 4, 4))
    rising = phrase_swell(_melody([60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79, 81, 83, 84, 86], 64), grid)
    assert rising[0] < 0 < rising[-1] and np.all(np.diff(rising) >= -1e-9)
    assert np.abs(rising).max() <= CONFIG.phrase + 1e-9
    assert not phrase_swell(_melody([67] * 16, 64), grid).any()  # a melody on one pitch: no swell
    assert not phrase_swell(RollTrack.empty("Melody", 0, 64), grid).any()


def test_shaped_changes_each_note_as_a_whole_and_keeps_the_input():
    grid = _grid((16, 4, 4), (16, 4, 4))
    melody = _melody([67] * 8, 32)
    voice = RollTrack.empty("Alto", 52, 32)
    voice.add_note(0, 6, 60, 72)  # from a downbeat across a beat
    voice.add_note(6, 8, 62, 72)  # off the beat
    voice.add_note(8, 16, 62, 72)  # the same pitch struck again on a beat
    voice.add_note(16, 32, 64, 126)  # a loud note on the next downbeat: clipped to 127
    before = voice.velocity.copy()
    out = shaped(voice, grid, melody)
    assert (voice.velocity == before).all()  # a copy
    assert set(out.velocity[0:6, 60]) == {72 + CONFIG.downbeat}
    assert set(out.velocity[6:8, 62]) == {72 + CONFIG.offbeat}
    assert set(out.velocity[8:16, 62]) == {72 + CONFIG.beat}
    assert set(out.velocity[16:32, 64]) == {127}
    assert ((out.velocity > 0) == (voice.velocity > 0)).all() and (out.onset == voice.onset).all()


# The loops that `metric_accents` and `shaped` replaced (issue 23): the vectorized ones must give exactly these.


def _loop_metric_accents(grid: Grid, config: DynamicsConfig = CONFIG) -> np.ndarray:
    out = np.full(grid.n_steps, config.offbeat, np.int64)
    for i, bar in enumerate(grid.bars):
        shift = bar.full_length - bar.length if i == 0 and bar.length < bar.full_length else 0
        beat = max(1, bar.beat_steps)
        for step in range(bar.start, min(bar.end, grid.n_steps)):
            position = step - bar.start + shift
            if position == 0:
                out[step] = config.downbeat
            elif position % beat == 0:
                out[step] = config.beat
    return out


def _loop_shaped(track: RollTrack, grid: Grid, melody: RollTrack, config: DynamicsConfig = CONFIG) -> RollTrack:
    out = RollTrack(track.name, track.program, track.is_drum, track.velocity.copy(), track.onset.copy(), track.role)
    n = min(track.n_steps, grid.n_steps)
    change = _loop_metric_accents(grid, config)[:n] + np.rint(phrase_swell(melody, grid, config)[:n]).astype(np.int64)
    sounding = out.velocity[:n] > 0
    for pitch in np.flatnonzero(sounding.any(axis=0)):
        column = sounding[:, pitch]
        starts = column & (out.onset[:n, pitch] | ~np.concatenate([[False], column[:-1]]))
        note = np.cumsum(starts) - 1
        begin = np.flatnonzero(starts)
        delta = change[begin][np.maximum(note, 0)]
        steps = np.flatnonzero(column)
        out.velocity[steps, pitch] = np.clip(out.velocity[steps, pitch].astype(np.int64) + delta[steps], 1, 127)
    return out


_METERS = [(4, 4), (3, 4), (6, 8), (9, 8), (12, 8), (1, 128), (255, 1), (5, 4), (7, 8), (2, 2), (12, 16)]


def _random_grid(rng: np.random.Generator, orderly: bool) -> Grid:
    """Bars of mixed meters, a pickup, short bars, and (not `orderly`) bars that overlap or leave gaps."""
    bars, start = [], 0
    for _ in range(int(rng.integers(0, 9))):
        num, den = _METERS[int(rng.integers(len(_METERS)))]
        full = Bar(0, 0, num, den).full_length
        length = full if orderly or rng.random() < 0.5 else int(rng.integers(-1, full + 4))
        if not bars and rng.random() < 0.3:
            length = int(rng.integers(1, full + 1))  # a pickup
        bars.append(Bar(start, length, num, den))
        start += max(length, 0) if orderly else int(rng.choice([length, full, rng.integers(-4, 10)]))
    n = start if orderly else max(0, start + int(rng.integers(-10, 10)))
    return Grid(480, n, bars)


def test_metric_accents_are_what_the_bar_by_bar_loop_wrote():
    rng = np.random.default_rng(11)
    for i in range(2000):
        grid = _random_grid(rng, orderly=i % 2 == 0)
        if any(b.start < -grid.n_steps for b in grid.bars):
            continue  # the loop indexes out of range there
        got, want = metric_accents(grid), _loop_metric_accents(grid)
        assert got.dtype == want.dtype and (got == want).all(), grid


def test_shaped_is_what_the_pitch_by_pitch_loop_made():
    rng = np.random.default_rng(13)
    for i in range(300):
        grid = _random_grid(rng, orderly=i % 3 > 0)
        n = grid.n_steps
        if not grid.bars or any(b.start < -n for b in grid.bars):
            continue
        t = max(0, n + int(rng.choice([0, 0, 3, -2])))
        velocity = np.where(rng.random((t, 128)) < rng.random(), rng.integers(0, 128, (t, 128)), 0).astype(np.uint8)
        velocity[:, rng.random(128) < 0.5] = 0
        track = RollTrack("Alto", 52, False, velocity, rng.random((t, 128)) < rng.random())
        melody = RollTrack("Melody", 0, False, np.where(rng.random((n, 128)) < 0.03, 90, 0).astype(np.uint8), np.zeros((n, 128), bool))
        got, want = shaped(track, grid, melody), _loop_shaped(track, grid, melody)
        assert got.velocity.dtype == np.uint8 and (got.velocity == want.velocity).all() and (got.onset == want.onset).all()

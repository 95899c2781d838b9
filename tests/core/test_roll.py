"""studio.core.roll: the grid, bars from the meter map, and the MIDI -> roll -> MIDI round trip."""

from __future__ import annotations

import time

import numpy as np

from studio.core.midi import read_midi, write_midi
from studio.core.roll import Bar, Grid, RollTrack, make_grid, notes_to_roll, roll_to_notes, score_to_roll, to_model_range, track_notes
from studio.core.score import Note, Score, TempoChange, TimeSignature, Track


def _quantized_melody(tpb: int) -> list[Note]:
    """A melody on the 16th grid with repeated notes, rests, long and short notes."""
    q = tpb // 4
    spec = [(0, 4, 67), (4, 4, 67), (8, 2, 69), (10, 2, 71), (12, 8, 72), (24, 1, 60), (25, 3, 60), (28, 12, 64)]
    return [Note(s * q, (s + d) * q, p, 80 + i) for i, (s, d, p) in enumerate(spec)]


def test_round_trip_keeps_every_note_tempo_map_and_meter():
    for tpb in (96, 480, 384, 10080):
        notes = _quantized_melody(tpb)
        score = Score(
            tpb,
            [Track("Melody", 0, notes=notes)],
            [TempoChange(0, 600_000), TempoChange(tpb * 4, 450_000)],
            [TimeSignature(0, 3, 4), TimeSignature(tpb * 6, 6, 8)],
        )
        parsed = read_midi(write_midi(score)).score
        grid = make_grid(parsed)
        roll = score_to_roll(parsed, grid)
        back = Score(tpb, [Track("Melody", 0, notes=roll_to_notes(roll.tracks[0], grid))], parsed.tempos, parsed.time_signatures)
        again = read_midi(write_midi(back)).score
        assert again.tracks[0].notes == notes, tpb
        assert again.tempos == score.tempos
        assert again.time_signatures == score.time_signatures


def test_bars_follow_meter_changes_and_pickups():
    tpb = 480
    score = Score(tpb, [Track("m", notes=[Note(0, tpb * 20, 60)])], time_signatures=[TimeSignature(0, 3, 4), TimeSignature(tpb * 6, 6, 8)])
    grid = make_grid(score)
    assert [b.start for b in grid.bars[:4]] == [0, 12, 24, 36]
    assert [(b.numerator, b.denominator) for b in grid.bars[:3]] == [(3, 4), (3, 4), (6, 8)]
    assert grid.bars[2].beat_steps == 6  # 6/8 is felt in dotted quarters
    with_pickup = make_grid(score, pickup_ticks=tpb)
    assert with_pickup.bars[0].length == 4 and with_pickup.pickup_steps == 4
    assert with_pickup.bars[1].start == 4
    assert grid.n_steps >= grid.tick_to_step(score.end_tick)


def test_grid_ends_on_a_bar_line():
    score = Score(480, [Track("m", notes=[Note(0, 480 * 5, 60)])])
    grid = make_grid(score)
    assert grid.n_steps == 32  # 5 beats of 4/4 fill two bars


def test_notes_shorter_than_a_step_keep_one_step():
    grid = make_grid(Score(480, [Track("m", notes=[Note(0, 30, 60)])]))
    roll = notes_to_roll([Note(0, 30, 60)], grid, "m", 0)
    assert roll.velocity[0, 60] > 0 and roll.onset[0, 60]


def test_empty_roll_and_add_note_clip():
    track = RollTrack.empty("x", 0, 8)
    track.add_note(-3, 100, 60)
    assert track.velocity[:, 60].all()
    assert track.velocity.shape == (8, 128) and track.onset.dtype == np.bool_


def test_model_range_folds_by_octaves():
    assert to_model_range(110) == 98
    assert to_model_range(12) == 24
    assert to_model_range(60) == 60


def test_a_meter_change_far_past_the_music_builds_no_bars_up_to_it():
    """Issue 23: a 3/4 change 2*10^7 ticks after 8 beats (1 tick per beat) built a bar per 16 steps up to it
    (5 million bars, 10 s; at 0x0FFFFFFF ticks, which one delta can hold: 67 million bars, never done)."""
    notes = [Note(i, i + 1, 60 + i) for i in range(8)]
    score = Score(1, [Track("Melody", 0, notes=notes)], time_signatures=[TimeSignature(0, 4, 4), TimeSignature(2 * 10**7, 3, 4)])
    start = time.perf_counter()
    grid = make_grid(score)
    assert time.perf_counter() - start < 5  # a wide margin: it takes microseconds (about 10 s before)
    assert [(b.start, b.length) for b in grid.bars] == [(0, 16), (16, 16)] and grid.n_steps == 32


# The per-note loops that `notes_to_roll`, `roll_to_notes` and `track_notes` replaced (issue 23): the
# vectorized functions must give exactly what these give.


def _loop_notes_to_roll(notes: list[Note], grid: Grid) -> RollTrack:
    track = RollTrack.empty("x", 0, grid.n_steps)
    for note in sorted(notes, key=lambda n: (n.start, n.pitch)):
        start = grid.tick_to_step(note.start)
        end = max(start + 1, grid.tick_to_step(note.end))
        if start >= grid.n_steps:
            continue
        track.add_note(start, end, note.pitch, note.velocity)
    return track


def _loop_spans(track: RollTrack, limit: int) -> list[tuple[int, int, int, int]]:
    sounding = track.velocity > 0
    starts = track.onset & sounding
    starts[0] |= sounding[0]
    starts[1:] |= sounding[1:] & ~sounding[:-1]
    out = []
    for step, pitch in zip(*np.nonzero(starts), strict=True):
        end = step + 1
        while end < limit and sounding[end, pitch] and not starts[end, pitch]:
            end += 1
        out.append((int(step), int(end), int(pitch), int(track.velocity[step, pitch])))
    return out


def _loop_roll_to_notes(track: RollTrack, grid: Grid) -> list[Note]:
    notes = [Note(grid.step_to_tick(s), grid.step_to_tick(e), p, v) for s, e, p, v in _loop_spans(track, grid.n_steps)]
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def _loop_track_notes(track: RollTrack) -> list[tuple[int, int, int]]:
    return sorted((s, e, p) for s, e, p, _ in _loop_spans(track, track.n_steps))


def _random_notes(rng: np.random.Generator, grid: Grid) -> list[Note]:
    """Unsorted notes that overlap on one pitch, restrike at one tick, last no time, start before the
    grid or past it, and carry pitches and velocities out of range."""
    tpb, n = grid.ticks_per_beat, grid.n_steps
    span = max(1, (n + 4) * tpb // grid.steps_per_beat)
    notes = []
    for _ in range(int(rng.integers(0, 40))):
        start = int(rng.choice([rng.integers(-tpb, span), rng.integers(0, 4) * tpb]))
        end = start + int(rng.choice([0, 1, tpb // 2, rng.integers(0, 6 * tpb + 1), -tpb]))
        pitch = int(rng.choice([60, 60, 61, rng.integers(-3, 131)]))
        notes.append(Note(start, end, pitch, int(rng.choice([90, rng.integers(-10, 300)]))))
    return notes


def _random_grid(rng: np.random.Generator) -> Grid:
    tpb = int(rng.choice([1, 2, 3, 4, 5, 7, 96, 120, 480, 10080]))
    return Grid(tpb, int(rng.integers(0, 48)), [Bar(0, 16, 4, 4)], int(rng.choice([4, 4, 1, 3, 8])))


def test_notes_to_roll_lays_notes_down_as_the_loop_did():
    rng = np.random.default_rng(23)
    for _ in range(1500):
        grid = _random_grid(rng)
        notes = _random_notes(rng, grid)
        got, want = notes_to_roll(notes, grid, "x", 0), _loop_notes_to_roll(notes, grid)
        assert got.velocity.dtype == np.uint8 and got.onset.dtype == np.bool_
        assert (got.velocity == want.velocity).all() and (got.onset == want.onset).all(), (notes, grid)


def test_notes_to_roll_keeps_the_last_velocity_where_notes_of_one_pitch_overlap():
    grid = Grid(4, 16, [Bar(0, 16, 4, 4)])
    notes = [Note(2, 4, 60, 50), Note(0, 12, 60, 100), Note(2, 6, 60, 30), Note(2, 3, 60, 70)]  # sorted: 100, 50, 30, 70
    assert notes_to_roll(notes, grid, "x", 0).velocity[:13, 60].tolist() == [100, 100, 70, 30, 30, 30, *[100] * 6, 0]


def test_roll_to_notes_and_track_notes_read_notes_as_the_loop_did():
    rng = np.random.default_rng(7)
    for _ in range(400):
        grid = _random_grid(rng)
        n = max(1, grid.n_steps + int(rng.integers(0, 3)))
        velocity = np.where(rng.random((n, 128)) < rng.random(), rng.integers(0, 128, (n, 128)), 0).astype(np.uint8)
        velocity[:, rng.random(128) < 0.5] = 0
        velocity[-1] = 0  # a note running off a roll shorter than its grid is an error, in the loop too
        track = RollTrack("x", 0, False, velocity, rng.random((n, 128)) < rng.random())
        assert roll_to_notes(track, grid) == _loop_roll_to_notes(track, grid)
        assert track_notes(track) == _loop_track_notes(track)
        quantized = notes_to_roll(_random_notes(rng, grid), grid, "x", 0) if grid.n_steps else track
        assert roll_to_notes(quantized, grid) == _loop_roll_to_notes(quantized, grid)
        assert track_notes(quantized) == _loop_track_notes(quantized)


def test_ticks_to_steps_rounds_as_tick_to_step():
    for tpb, spb in ((480, 4), (96, 4), (3, 4), (1, 4), (7, 3), (10080, 4), (4, 4)):
        grid = Grid(tpb, 16, [Bar(0, 16, 4, 4)], spb)
        ticks = np.concatenate([np.arange(-3 * tpb, 3 * tpb + 1), [2**50 + 1, 2**51 - 1, 2**51 + 3, -(2**52) - 5, 2**60]])
        assert grid.ticks_to_steps(ticks).tolist() == [grid.tick_to_step(t) for t in ticks.tolist()]
        steps = np.concatenate([np.arange(-3 * tpb, 3 * tpb + 1), [2**38 + 1, 2**40 + 3, -(2**41) - 1]])  # past 2**53 / tpb: exact too
        assert grid.steps_to_ticks(steps).tolist() == [grid.step_to_tick(s) for s in steps.tolist()]

"""studio.core.roll: the grid, bars from the meter map, and the MIDI -> roll -> MIDI round trip."""

from __future__ import annotations

import time

import numpy as np

from studio.core.midi import read_midi, write_midi
from studio.core.roll import RollTrack, make_grid, notes_to_roll, roll_to_notes, score_to_roll, to_model_range
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

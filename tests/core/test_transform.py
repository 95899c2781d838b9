"""A score transposed or at another tempo keeps its notes where they are in ticks."""

from __future__ import annotations

import math

import pytest

from studio.core.errors import InputError
from studio.core.score import Note, Score, TempoChange, Track
from studio.core.transform import check_change, scale_tempo, transpose


def score() -> Score:
    return Score(
        480,
        [
            Track("Melody", 0, notes=[Note(0, 480, 60), Note(480, 960, 126, 70)]),
            Track("Drums", 0, is_drum=True, channel=9, notes=[Note(0, 120, 36)]),
            Track("Bass", 32, notes=[Note(0, 960, 2)]),
        ],
        [TempoChange(0, 500_000), TempoChange(960, 600_000)],
    )


def test_transposing_moves_pitched_notes_and_leaves_drums_and_times():
    moved = transpose(score(), 3)
    assert [n.pitch for n in moved.tracks[0].notes] == [63, 117]  # 129 is off the keyboard: an octave lower
    assert [n.pitch for n in moved.tracks[1].notes] == [36]  # a drum's pitch is which drum
    down = transpose(score(), -5)
    assert [n.pitch for n in down.tracks[2].notes] == [9]  # -3 is off the keyboard: an octave higher
    assert [(n.start, n.end, n.velocity) for n in moved.tracks[0].notes] == [(0, 480, 90), (480, 960, 70)]
    assert score().tracks[0].notes[0].pitch == 60  # the original is not changed


def test_a_tempo_factor_rescales_every_tempo_and_no_tick():
    before = score()
    faster = scale_tempo(before, 1.25)
    assert [t.microseconds_per_beat for t in faster.tempos] == [400_000, 480_000]
    assert [t.tick for t in faster.tempos] == [0, 960]
    assert [(n.start, n.end) for n in faster.tracks[0].notes] == [(n.start, n.end) for n in before.tracks[0].notes]
    assert faster.tick_to_seconds(1440) == pytest.approx(before.tick_to_seconds(1440) / 1.25)


@pytest.mark.parametrize(
    ("semitones", "tempo"),
    [(13, 1), (-13, 1), (1.5, 1), ("x", 1), (0, 0.4), (0, 2.5), (0, math.nan), (0, math.inf), (None, 1), (0, "1e400")],
)
def test_changes_out_of_bounds_are_one_line(semitones, tempo):
    with pytest.raises(InputError) as caught:
        check_change(semitones, tempo)
    assert "\n" not in str(caught.value)


def test_changes_within_bounds_are_kept():
    assert check_change(-12, 0.5) == (-12, 0.5)
    assert check_change("2", "1.5") == (2, 1.5)
    assert check_change(3.0, 2) == (3, 2.0)

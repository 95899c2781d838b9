"""studio.theory and studio.metrics on rolls whose right answers are known by hand."""

from __future__ import annotations

import math

import numpy as np

from studio.metrics import (
    bar_coverage,
    consonance,
    empty_bar_rate,
    in_key_rate,
    melody_key,
    polyphony,
    qualified_note_rate,
    used_pitch_classes,
)
from studio.roll import RollTrack, make_grid
from studio.score import Note, Score, Track
from studio.theory import Key, estimate_key, pitch_class_histogram


def _track(notes: list[tuple[int, int, int]], n: int = 32, name: str = "t") -> RollTrack:
    track = RollTrack.empty(name, 0, n)
    for s, e, p in notes:
        track.add_note(s, e, p)
    return track


def _grid(n_steps: int = 32):
    return make_grid(Score(480, [Track("m", notes=[Note(0, n_steps * 120, 60)])]))


def test_krumhansl_kessler_finds_major_and_minor_keys():
    c_major = pitch_class_histogram([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60], [2, 1, 1, 1, 2, 1, 1, 2, 2, 1, 3])
    assert estimate_key(c_major) == Key(0, "major")
    a_minor = pitch_class_histogram([69, 71, 72, 74, 76, 77, 80, 81, 76, 69], [3, 1, 1, 1, 2, 1, 1, 2, 2, 3])
    assert estimate_key(a_minor) == Key(9, "minor")
    assert estimate_key(np.zeros(12)) == Key(0, "major")


def test_minor_accepts_raised_sixth_and_seventh():
    assert {6, 8} <= Key(9, "minor").accepted  # F# and G# in A minor
    assert 6 not in Key(0, "major").accepted


def test_in_key_rate_is_duration_weighted():
    acc = _track([(0, 12, 60), (12, 16, 61)])  # 12 steps of C, 4 of C#
    assert in_key_rate([acc], Key(0, "major")) == 12 / 16
    assert math.isnan(in_key_rate([_track([])], Key(0, "major")))


def test_consonance_counts_pairs_at_melody_onsets():
    melody = _track([(0, 4, 72), (4, 8, 74)])
    acc = _track([(0, 8, 60), (0, 8, 64)])  # C and E held
    # onset 1: C5 over C (0) and E (8): both consonant; onset 2: D5 over C (2) and E (10): both dissonant
    assert consonance(melody, [acc]) == 0.5
    drums = _track([(0, 8, 61)])
    drums.is_drum = True
    assert consonance(melody, [acc, drums]) == 0.5  # drums never count


def test_bar_metrics():
    grid = _grid(32)  # two 4/4 bars
    melody = _track([(0, 32, 72)])
    acc = _track([(0, 4, 60), (0, 4, 64), (4, 6, 62)])
    assert bar_coverage(acc, grid, melody) == 0.5
    assert empty_bar_rate(acc, grid) == 0.5
    assert used_pitch_classes(acc, grid) == 3
    assert qualified_note_rate(acc, grid) == 2 / 3
    assert polyphony(acc) == 4 / 6


def test_melody_key_from_roll():
    melody = _track([(0, 8, 69), (8, 12, 72), (12, 16, 76), (16, 24, 68), (24, 32, 69)])
    assert melody_key(melody).mode == "minor"

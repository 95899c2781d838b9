"""studio.core.theory and studio.core.metrics on rolls whose right answers are known by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from studio.core.metrics import (
    bar_coverage,
    consonance,
    empty_bar_rate,
    final_pitch_class,
    in_key_rate,
    melody_key,
    piece_metrics,
    polyphony,
    qualified_note_rate,
    summarize,
    used_pitch_classes,
)
from studio.core.roll import Bar, Grid, RollTrack, make_grid, roll_to_notes
from studio.core.score import Note, Score, Track
from studio.core.theory import Key, estimate_key, key_correlations, pitch_class_histogram
from studio.serving.service import AccompanyRequest, read_melody

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "melodies"


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


def test_bar_metrics_read_every_bar_of_any_meter_as_a_bar_by_bar_count_does():
    """EB, UPC and coverage, counted at once over all bars (a 1/128 meter has tens of thousands),
    agree with the literal per-bar count on random bars (pickups, odd lengths, the grid ending
    inside a bar) and random notes."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        bars, start = [], int(rng.integers(0, 3))
        if start:
            bars.append(Bar(0, start, 3, 4))
        while start < 60:
            length = int(rng.integers(1, 20))
            bars.append(Bar(start, length, 4, 4))
            start += length
        n = int(rng.integers(1, 70))
        grid = Grid(4, n, bars)
        acc = _track(
            [
                (a := int(rng.integers(0, n)), min(n, a + int(rng.integers(1, 9))), int(rng.integers(0, 128)))
                for _ in range(rng.integers(0, 8))
            ],
            n,
        )
        melody = _track([(a := int(rng.integers(0, n)), min(n, a + int(rng.integers(1, 9))), 60) for _ in range(rng.integers(0, 4))], n)
        spans = [(b.start, min(b.end, n)) for b in bars if b.start < n]
        sounds = [acc.velocity[a:b].any() for a, b in spans]
        with_melody = [i for i, (a, b) in enumerate(spans) if melody.velocity[a:b].any()]
        classes = [len({p % 12 for p in np.flatnonzero(acc.velocity[a:b].any(axis=0))}) for a, b in spans]
        assert empty_bar_rate(acc, grid) == pytest.approx(1 - np.mean(sounds))
        assert (
            used_pitch_classes(acc, grid) == pytest.approx(np.mean([c for c in classes if c]), nan_ok=True)
            if any(classes)
            else math.isnan(used_pitch_classes(acc, grid))
        )
        covered = sounds[with_melody[0] : with_melody[-1] + 1] if with_melody else []
        assert (
            bar_coverage(acc, grid, melody) == pytest.approx(np.mean(covered)) if covered else math.isnan(bar_coverage(acc, grid, melody))
        )
        assert bar_coverage(acc, grid) == pytest.approx(np.mean(sounds))


def _random_bars(rng: np.random.Generator) -> Grid:
    """Bars of odd meters and lengths (one-step 1/128 bars, pickups, bars cut short, the odd gap or
    overlap), the grid ending before, inside or after the last bar, at an odd tick resolution."""
    bars, start = [], 0
    for _ in range(int(rng.integers(0, 14))):
        numerator, denominator = [(4, 4), (1, 128), (5, 8), (7, 4), (3, 4), (9, 2)][int(rng.integers(6))]
        length = int(rng.integers(0, 3)) if rng.random() < 0.3 else Bar(0, 0, numerator, denominator).full_length
        bars.append(Bar(start, length, numerator, denominator))
        start += length + (int(rng.integers(-1, 2)) if rng.random() < 0.1 else 0)
    ticks_per_beat = [1, 2, 3, 5, 7, 25, 96, 100, 480, 1000][int(rng.integers(10))]
    return Grid(ticks_per_beat, max(1, start + int(rng.integers(-4, 5))), bars)


def _random_roll(rng: np.random.Generator, n: int, name: str, low: int = 0, high: int = 128) -> RollTrack:
    """Notes of random lengths, overlapping (a pitch struck again while it sounds), with silences."""
    track = RollTrack.empty(name, 0, n)
    for _ in range(int(rng.integers(0, 30))):
        start = int(rng.integers(0, n))
        track.add_note(start, start + int(rng.integers(1, 9)), int(rng.integers(low, high)))
    return track


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _bar_by_bar(track: RollTrack, grid: Grid, melody: RollTrack) -> tuple[float, float, float, float]:
    """(EB, UPC, coverage, coverage of all bars) from a slice of `track` per bar, with the metrics' own float operations."""
    spans = [(b.start, min(b.end, grid.n_steps)) for b in grid.bars if b.start < grid.n_steps]
    sounds = np.array([track.velocity[a:b].any() for a, b in spans], bool)
    classes = np.array([len({int(p) % 12 for p in np.flatnonzero(track.velocity[a:b].any(axis=0))}) for a, b in spans], int)
    played = classes[classes > 0]
    with_melody = np.flatnonzero([melody.velocity[a:b].any() for a, b in spans])
    covered = sounds[with_melody[0] : with_melody[-1] + 1] if len(with_melody) else sounds[:0]
    return (
        float(1.0 - sounds.mean()) if len(sounds) else math.nan,
        float(played.mean()) if len(played) else math.nan,
        float(covered.mean()) if len(covered) else math.nan,
        float(sounds.mean()) if len(sounds) else math.nan,
    )


def test_bar_metrics_are_exactly_a_bar_by_bar_count():
    """EB, UPC and coverage, alone and in `summarize` and `piece_metrics`, are the very floats a slice
    per bar gives, on random bars and tracks (alone, some shorter or longer than the grid)."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        grid = _random_bars(rng)
        n = grid.n_steps
        melody = _random_roll(rng, n, "melody", 60, 80)
        tracks = [_random_roll(rng, n, f"t{i}") for i in range(int(rng.integers(1, 4)))]
        short = _random_roll(rng, max(1, n - int(rng.integers(1, 4))), "short")
        long = _random_roll(rng, n + int(rng.integers(1, 4)), "long")
        summary, piece = summarize(melody, tracks, grid)["tracks"], piece_metrics(melody, tracks, grid)["tracks"]
        for track in [*tracks, short, long]:
            empty, upc, coverage, everywhere = _bar_by_bar(track, grid, melody)
            assert _same(empty_bar_rate(track, grid), empty) and _same(used_pitch_classes(track, grid), upc)
            assert _same(bar_coverage(track, grid, melody), coverage)
            assert _same(bar_coverage(track, grid), everywhere)
            if track.name in summary:
                assert _same(summary[track.name]["empty_bars"], empty) and _same(summary[track.name]["coverage"], coverage)
                assert _same(summary[track.name]["pitch_classes_per_bar"], upc)
            if track.name in piece:
                assert _same(piece[track.name]["empty_bar_rate"], empty) and _same(piece[track.name]["used_pitch_classes"], upc)


def test_qualified_notes_are_counted_from_the_notes_read_back_from_ticks():
    """QN from every note's steps at once is the share `roll_to_notes` and `tick_to_step` give note by
    note: restruck and overlapping notes, notes past the grid's end, tick resolutions that do not
    round-trip a step."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        grid = _random_bars(rng)
        track = _random_roll(rng, grid.n_steps + int(rng.integers(0, 4)), "t")
        notes = roll_to_notes(track, grid)
        lengths = [grid.tick_to_step(note.end) - grid.tick_to_step(note.start) for note in notes]
        for min_steps in (1, 2, 3, 4):
            expected = sum(length >= min_steps for length in lengths) / len(lengths) if lengths else math.nan
            assert _same(qualified_note_rate(track, grid, min_steps), expected)
        assert _same(summarize(track, [track], grid)["tracks"]["t"]["qualified_notes"], qualified_note_rate(track, grid))


def test_melody_key_from_roll():
    melody = _track([(0, 8, 69), (8, 12, 72), (12, 16, 76), (16, 24, 68), (24, 32, 69)])
    assert melody_key(melody).mode == "minor"


def test_last_note_picks_a_close_runner_up_whose_tonic_it_is():
    # 'Alle meine Entchen' (C D E F | G G | A A A A | G ...) in sixteenths: the profiles alone rank
    # A minor a hair above C major, the tune ends on C.
    tune = [60, 62, 64, 65, 67, 67, 69, 69, 69, 69, 67, 69, 69, 69, 69, 67, 65, 65, 65, 65, 64, 64, 62, 62, 62, 62, 60]
    lengths = [2, 2, 2, 2, 4, 4, 2, 2, 2, 2, 4, 2, 2, 2, 2, 4, 2, 2, 2, 2, 4, 4, 2, 2, 2, 2, 4]
    hist = pitch_class_histogram(tune, lengths)
    (first, r1), (second, r2) = key_correlations(hist)[:2]
    assert (first, second) == (Key(9, "minor"), Key(0, "major")) and r1 - r2 < 0.01
    assert estimate_key(hist) == Key(9, "minor")  # Krumhansl-Kessler alone
    assert estimate_key(hist, final_pitch_class=0) == Key(0, "major")  # it ends on C
    assert estimate_key(hist, final_pitch_class=9) == Key(9, "minor")  # the best key is kept
    assert estimate_key(hist, final_pitch_class=11) == Key(9, "minor")  # B: the tonic of no top-3 key
    starts = np.cumsum([0, *lengths[:-1]])
    roll = _track([(int(s), int(s) + n, p) for s, n, p in zip(starts, lengths, tune, strict=True)], n=int(sum(lengths)))
    assert final_pitch_class(roll) == 0 and melody_key(roll) == Key(0, "major")


def test_last_note_does_not_pick_a_key_that_leaves_notes_out():
    # 'Ach Gott, wie weh tut Scheiden' (a test tune), sixteenths per pitch class: D Phrygian, the
    # notes of B-flat major, ending on D. D minor ranks second, 0.06 below B-flat major, but would
    # call the E-flats (6% of the tune) out of key, so B-flat major stays.
    hist = np.array([20, 0, 88, 20, 0, 56, 0, 40, 0, 34, 82, 0], float)
    (first, _), (second, _) = key_correlations(hist)[:2]
    assert (first, second) == (Key(10, "major"), Key(2, "minor"))
    assert estimate_key(hist, final_pitch_class=2) == Key(10, "major")


def test_final_pitch_class_is_the_lowest_pitch_of_the_last_onset():
    melody = _track([(0, 8, 67), (8, 16, 64), (8, 16, 60), (12, 16, 72)])  # the last onset: step 12
    assert final_pitch_class(melody) == 0  # 72 (C), not the held E and C below it, which started earlier
    chord = _track([(0, 8, 67), (8, 16, 64), (8, 16, 57)])
    assert final_pitch_class(chord) == 9  # the lowest pitch of a last chord (A)
    assert final_pitch_class(_track([])) is None
    assert melody_key(_track([])) == Key(0, "major")


def _key_name(music21_name: str) -> str:
    """music21's key spelling ('B- major') in the studio's ('Bb major')."""
    tonic, mode = music21_name.split()
    return f"{tonic.replace('-', 'b')} {mode}"


@pytest.mark.parametrize("entry", json.loads((SAMPLES / "index.json").read_text(encoding="utf-8")), ids=lambda e: e["file"])
def test_melody_key_agrees_with_the_sample_list(entry, tmp_path):
    # The page's samples, read as the service reads them: the key the page names is the one
    # index.json lists (music21's analysis, checked by the last note, in make_samples.py).
    melody = read_melody(AccompanyRequest(midi=str(SAMPLES / entry["file"]), out_dir=tmp_path))
    assert str(melody_key(melody.roll)) == _key_name(entry["key"])


def test_melody_key_agrees_with_the_test_tunes(tune_index, tune_paths, tmp_path):
    agree = []
    for entry in tune_index:
        melody = read_melody(AccompanyRequest(midi=str(tune_paths[entry["file"]]), out_dir=tmp_path))
        agree.append(str(melody_key(melody.roll)) == _key_name(entry["key"]))
    assert all(agree), [e["file"] for e, ok in zip(tune_index, agree, strict=True) if not ok]

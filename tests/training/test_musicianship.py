"""studio.training.musicianship: genre ranges, real-beside-generated figures and the table, on hand-made pieces."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from studio.core.roll import RollTrack
from studio.training.musicianship import BOUNDS, FIGURES, check_bounds, compare_sets, format_table, genre_ranges, record

SATB = {"Alto": (53, 74), "Tenor": (48, 67), "Bass": (40, 60)}


def _voice(pitches: list[int], name: str) -> RollTrack:
    track = RollTrack.empty(name, 0, 4 * len(pitches))
    for i, p in enumerate(pitches):
        track.add_note(4 * i, 4 * i + 4, p)
    return track


def _piece(shift: int, parallel: bool) -> tuple[RollTrack, list[RollTrack]]:
    melody = _voice([72 + shift, 74 + shift, 76 + shift, 72 + shift], "Soprano")
    alto = [65 + shift, 67 + shift, 69 + shift, 65 + shift] if parallel else [64 + shift, 65 + shift, 64 + shift, 64 + shift]
    return melody, [_voice(alto, "Alto"), _voice([55, 55, 57, 55], "Tenor"), _voice([48, 43, 45, 48], "Bass")]


def test_chorale_ranges_are_satb_and_other_genres_are_derived_from_training():
    assert genre_ranges("chorale", []) == SATB
    notes = np.array([[0, 0, 4, 72, 90]] + [[1, i, i + 1, 50 + i, 90] for i in range(20)], np.int32)
    piece = SimpleNamespace(track_names=("Violin I", "Viola"), notes=notes)
    low, high = genre_ranges("quartet", [piece])["Viola"]
    assert 50 <= low <= 51 and 68 <= high <= 69


def test_generated_parallels_stand_beside_clean_real_music():
    real = [record(*_piece(s, parallel=False), SATB) for s in range(4)]
    generated = [record(*_piece(s, parallel=True), SATB) for s in range(4)]
    result = compare_sets(real, generated)
    assert result["pieces"] == 4
    assert result["generated"]["parallel_fifths_octaves"] > result["real"]["parallel_fifths_octaves"]
    assert result["real"]["interval_js"] == 0.0  # odd and even real pieces have the same intervals
    assert result["generated"]["interval_js"] > 0.0
    assert result["classifier_accuracy"] == 1.0
    assert set(result["classifier_by_group"]) == {"intervals", "durations", "vertical", "pitch_classes"}
    table = format_table({"real": result["real"], "generated": dict(result["generated"], classifier_accuracy=1.0)})
    assert len(table.splitlines()) == len(FIGURES) + 1 and "1.000" in table.splitlines()[-1]
    assert format_table({"real": result["real"]}, markdown=True).startswith("| | real |")


def test_issue_21s_bounds_are_raised_for_a_genre_whose_real_music_exceeds_them():
    """At most 1% parallels, or twice the real genre's own figure where it exceeds that (real quartets);
    repeated notes within 0.05 of the real share; each histogram at most 0.05 bits; a figure the
    generated side lacks (unseen tunes: no classifier) or leaves undefined is left out."""
    real = {"parallel_fifths_octaves": 0.004, "crossings_per_chord": 0.12, "repeated_notes": 0.15, "interval_js": 0.004}
    checks = check_bounds(
        {
            "parallel_fifths_octaves": 0.011,
            "crossings_per_chord": 0.2,
            "repeated_notes": 0.21,
            "interval_js": 0.049,
            "out_of_range": float("nan"),
        },
        real,
    )
    assert set(checks) == {"parallel_fifths_octaves", "crossings_per_chord", "repeated_notes", "interval_js"}
    assert not checks["parallel_fifths_octaves"]["ok"] and checks["parallel_fifths_octaves"]["bound"] == "<= 0.01"
    assert checks["crossings_per_chord"]["ok"] and "twice real's 0.120" in checks["crossings_per_chord"]["bound"]
    assert not check_bounds({"crossings_per_chord": 0.25}, real)["crossings_per_chord"]["ok"]
    assert not checks["repeated_notes"]["ok"] and check_bounds({"repeated_notes": 0.10}, real)["repeated_notes"]["ok"]
    assert not check_bounds({"repeated_notes": 0.09}, real)["repeated_notes"]["ok"]
    assert checks["interval_js"]["ok"] and not check_bounds({"interval_js": 0.051}, real)["interval_js"]["ok"]
    assert not check_bounds({"classifier_accuracy": 0.76}, {})["classifier_accuracy"]["ok"]
    assert check_bounds({"classifier_accuracy": 0.75}, {})["classifier_accuracy"]["ok"]
    assert set(BOUNDS) <= set(FIGURES)  # every bounded figure is one the table shows

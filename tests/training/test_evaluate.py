"""studio.training.evaluate: the copy check on hand-made bars, and a whole evaluation of the rules baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from studio.core.roll import Bar, Grid, RollTrack
from studio.training.evaluate import EvaluationConfig, _compare, copied_bar_share, evaluate, format_report


def _grid(bars: int) -> Grid:
    return Grid(480, 16 * bars, [Bar(16 * i, 16, 4, 4) for i in range(bars)])


def _voices(notes: list[tuple[int, int, int, int]], bars: int) -> list[RollTrack]:
    tracks = [RollTrack.empty(f"v{i}", 0, 16 * bars) for i in range(2)]
    for voice, start, end, pitch in notes:
        tracks[voice].add_note(start, end, pitch)
    return tracks


BAR = [(0, 0, 4, 60), (0, 4, 8, 62), (0, 8, 16, 64), (1, 0, 8, 48), (1, 8, 16, 43)]


def test_a_copied_bar_is_found_even_transposed():
    training = [(_voices(BAR, 1), _grid(1))]
    same = [(v, s, e, p + 5) for v, s, e, p in BAR]  # the same bar a fourth higher
    result = copied_bar_share([(_voices(same, 1), _grid(1))], training)
    assert result == {"bars": 1, "copied_bars": 1, "copied_share": 1.0, "threshold": 0.9}


def test_a_bar_sharing_few_notes_is_not_a_copy():
    training = [(_voices(BAR, 1), _grid(1))]
    changed = BAR[:3] + [(1, 0, 8, 41), (1, 8, 16, 40)]  # 3 of 5 notes shared: 60%
    assert copied_bar_share([(_voices(changed, 1), _grid(1))], training)["copied_bars"] == 0
    superset = BAR + [(0, 0, 2, 72), (1, 0, 2, 30)]  # the training bar plus two notes: 5 of 7
    assert copied_bar_share([(_voices(superset, 1), _grid(1))], training)["copied_bars"] == 0


def test_empty_bars_are_not_counted_and_notes_across_bar_lines_split():
    training = [(_voices([(0, 8, 24, 60)], 2), _grid(2))]  # a note tied over the bar line
    generated = [(_voices([(0, 8, 24, 60)], 3), _grid(3))]  # the same, and an empty third bar
    result = copied_bar_share(generated, training)
    assert result["bars"] == 2 and result["copied_bars"] == 2


def test_compare_applies_the_acceptance_bounds():
    real = {
        "in_key_rate": 0.94,
        "consonance": 0.89,
        "empty_bar_rate": 0.1,
        "used_pitch_classes": 3.0,
        "qualified_note_rate": 0.6,
        "polyphony": 0.0,
        "accompaniment_polyphony": 0.9,
    }
    good = dict(real, in_key_rate=0.90, used_pitch_classes=3.4, polyphony=0.0)
    rows = _compare(good, real)
    assert all(r["ok"] for r in rows.values())
    bad = dict(real, consonance=0.80, qualified_note_rate=0.5, polyphony=0.05)
    rows = _compare(bad, real)
    assert [m for m, r in rows.items() if not r["ok"]] == ["consonance", "qualified_note_rate", "polyphony"]


@pytest.mark.timeout(300)
def test_rules_evaluation_report(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    from studio.training import data
    from studio.training import evaluate as evaluation

    original = data.DatasetConfig

    def few_pieces(genre, **kw):  # a small, real chorale dataset: the same code path, fewer pieces
        return original(genre, max_pieces=30, workers=1, **kw)

    # the name `evaluate` calls (it imported the class; patching `data` alone built all 365 chorales)
    monkeypatch.setattr(evaluation, "DatasetConfig", few_pieces)
    report = evaluate("rules", EvaluationConfig(n=3, unseen=4), progress=False)
    held = report["held_out"]
    assert report["data"] == "chorale" and held["pieces"] == 3
    assert set(held["comparison"]) >= {
        "in_key_rate",
        "consonance",
        "empty_bar_rate",
        "used_pitch_classes",
        "qualified_note_rate",
        "polyphony",
    }
    assert 0.9 <= held["real"]["in_key_rate"] <= 1.0 and held["generated"]["in_key_rate"] > 0.9
    copy = report["copy"]
    assert copy["bars"] > 0 and copy["copied_share"] == copy["copied_bars"] / copy["bars"] and copy["threshold"] == 0.9
    assert report["unseen"]["tunes"] == 4 and not math.isnan(report["unseen"]["consonance_mean"])
    assert "unseen = the first 4 single-meter tunes" in report["how"]  # the recipe names what was run
    assert "held-out chorale pieces" in format_report(report)
    heard = report["musicianship"]
    assert heard["pieces"] == 3 and heard["ranges"]["Bass"] == [40, 60]
    for column in ("real", "generated"):
        assert set(heard[column]) >= {"parallel_fifths_octaves", "crossings_per_chord", "out_of_range", "leaps_over_octave", "interval_js"}
    assert 0.0 <= heard["generated"]["repeated_notes"] <= 1.0 and 0.0 <= heard["classifier_accuracy"] <= 1.0
    assert "leaps over an octave" in format_report(report) and "out_of_range" in report["unseen"]["musicianship"]
    assert set(heard["bounds"]) >= {"parallel_fifths_octaves", "repeated_notes", "interval_js", "classifier_accuracy"}
    assert heard["bounds"]["interval_js"]["ok"] == (heard["generated"]["interval_js"] <= 0.05)
    assert "classifier_accuracy" not in report["unseen"]["musicianship_bounds"]  # no real counterpart for unseen tunes
    assert "issue 21's bounds, held-out:" in format_report(report) and "issue 21's bounds, unseen:" in format_report(report)
    json.dumps(heard, allow_nan=False)  # no nan reaches the JSON (None instead)
    assert np.isfinite(held["generated"]["used_pitch_classes"])


def test_the_validation_split_accompanies_the_validation_pieces_beside_the_other_training_ones():
    from types import SimpleNamespace

    from studio.core.errors import InputError
    from studio.training.evaluate import _evaluated_pieces

    pieces = {i: SimpleNamespace(id=i) for i in ("a", "b", "c", "d")}
    dataset = SimpleNamespace(train=[pieces["a"], pieces["b"], pieces["c"]], held_out=[pieces["d"]], validation=["b"])
    assert _evaluated_pieces(dataset, "validation") == ([pieces["b"]], [pieces["a"], pieces["c"]])
    assert _evaluated_pieces(dataset, "held_out") == ([pieces["d"]], [pieces["a"], pieces["b"], pieces["c"]])
    with pytest.raises(InputError, match="no validation list"):
        _evaluated_pieces(SimpleNamespace(train=dataset.train, held_out=[], validation=None), "validation")
    with pytest.raises(InputError, match="unknown split"):
        EvaluationConfig(split="test")

"""bench/chord_following.py: which models it measures (by their cards' declaration) and what a run reports."""

from __future__ import annotations

from bench.chord_following import ROWS, SOURCE, chord_followers, format_table, measure
from models.base import card_follows_chords
from studio.serving.registry import ModelRegistry


def test_the_models_are_picked_by_their_cards():
    registry = ModelRegistry()
    picked = chord_followers(registry)
    assert "arcnn-chorale" in picked
    assert picked == sorted(c.name for c in registry.cards() if card_follows_chords(c.to_json()))
    assert not {"gan-chorale", "diffusion-chorale", "transformer-folk"} & set(picked)


def test_one_tune_with_and_without_chords():
    result = measure(["arcnn-chorale"], tunes=1, params={"iterations": 2})  # few Gibbs iterations: seconds
    columns = result["columns"]
    assert list(columns) == [
        f"{SOURCE} (the source)",
        "arcnn-chorale, alone, chords",
        "arcnn-chorale, default, chords",
        "arcnn-chorale, alone, no chords",
        "arcnn-chorale, default, no chords",
    ]
    assert columns[f"{SOURCE} (the source)"]["chord_tone_share"] >= 0.9  # the analysis reads a plain harmonization back
    assert all(0.0 <= c["chord_tone_share"] <= 1.0 and c["strong_beat_notes"] > 0 for c in columns.values())
    assert all(set(c) == set(ROWS) for c in columns.values())
    assert result["params"] == {"iterations": 2}
    table = format_table(columns, markdown=True)
    assert table.count("\n") == len(ROWS) + 1 and "arcnn-chorale, default, chords" in table

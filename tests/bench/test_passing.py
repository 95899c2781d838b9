"""bench.passing and bench.eighth_grid: the odds and the share that bring a model's figure to its genre's."""

from __future__ import annotations

from bench.eighth_grid import snap_share
from bench.passing import fill_odds


def test_fill_odds_bring_the_models_share_to_the_genres():
    odds = fill_odds((0.8, 0.5, 0.3, 1.0), (0.6, 0.5, 0.4, 1.0))
    assert odds == [0.5, 0.0, 0.0, 0.0]  # 0.6 + 0.4 * 0.5 = 0.8; as often or more: none; all filled: none
    model, genre = 0.3, 0.75
    q = fill_odds((genre,), (model,))[0]
    assert abs(model + (1 - model) * q - genre) < 1e-4


def test_snap_share_brings_the_models_share_to_the_genres():
    assert snap_share(0.01, 0.04) == 0.75  # a quarter of the model's kept: 0.04 * 0.25 = 0.01
    assert snap_share(0.05, 0.04) == 0.0  # fewer than the genre's: none moved
    assert snap_share(0.01, 0.0) == 0.0

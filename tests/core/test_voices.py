"""Pieces as voices (studio.core.voices): how often a genre's lower voices rest under its melody."""

from __future__ import annotations

import numpy as np

from studio.core.conditioning import REST
from studio.core.voices import VoicePiece, rest_costs_under, rests_under_melody


def _piece(tokens: list[list[int]]) -> VoicePiece:
    t = np.array(tokens)
    return VoicePiece("p", t, np.zeros_like(t, bool), np.zeros((t.shape[1], 1)), np.array([0]), profile=np.zeros(12))


def test_rests_are_counted_only_where_the_melody_sounds():
    sung = _piece([[40, 40, REST, REST], [30, 30, REST, REST], [20, 20, REST, 20]])  # rests only where the tune rests
    assert rests_under_melody([sung]) == 0.0
    motet = _piece([[40, 40, 41, 41], [REST, REST, 30, 30], [20, 20, 20, REST]])  # 3 of the 8 voice-steps under the tune
    assert rests_under_melody([motet]) == 3 / 8
    assert rests_under_melody([sung, motet]) == 3 / 12  # pooled over the pieces' sounding steps
    assert rests_under_melody([]) == 0.0


def test_rest_costs_fall_only_where_the_melody_sounds():
    costs = rest_costs_under(np.array([40, 40, REST, 41]), (1.5, 0.0, -2.0))
    assert costs.shape == (3, 4) and costs[:, 2].tolist() == [0.0, 0.0, 0.0]
    assert costs[:, 0].tolist() == costs[:, 3].tolist() == [1.5, 0.0, -2.0]

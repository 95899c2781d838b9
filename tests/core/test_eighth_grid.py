"""studio.core.eighth_grid: starts between the eighths, counted in real voices and moved onto the eighths."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from studio.core.conditioning import pitches_to_tokens
from studio.core.eighth_grid import movable_counts, movable_share, movable_starts, snap_starts
from studio.core.part_writing import note_spans

MELODY = [72] * 8  # a held C5 over eight sixteenths (it never moves)


def _voices(*rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    pitches = np.array([MELODY, *rows])
    return pitches, np.zeros(pitches.shape, bool)


def test_which_starts_can_move_and_which_way():
    pitches, starts = _voices(
        [60, 60, 60, 62, 64, 64, 64, 64],  # a dotted eighth, a sixteenth: back (two eighths)
        [55, 57, 57, 57, 59, 59, 59, 59],  # a sixteenth, a dotted eighth: forward
        [48, 48, 50, 52, 53, 53, 53, 53],  # an eighth, two sixteenths into the beat: neither can give one
    )
    assert movable_starts(pitches, starts) == [(1, 3, -1), (2, 1, +1)]
    assert movable_counts(pitches, starts).tolist() == [2, 10]
    rested = pitches.copy()
    rested[1, 2] = -1  # a rest before the sixteenth: nothing to move
    assert (1, 3, -1) not in movable_starts(rested, starts)
    struck = np.zeros(pitches.shape, bool)
    struck[1, 5] = True  # a re-strike between the eighths counts as a start (after a sixteenth: forward)
    assert (1, 5, +1) in movable_starts(pitches, struck)


def test_moves_land_on_the_eighths_and_keep_the_pitches():
    pitches, starts = _voices([60, 60, 60, 62, 64, 64, 64, 64], [55, 57, 57, 57, 59, 59, 59, 59])
    out, out_starts = snap_starts(pitches, starts, 1.0, np.random.default_rng(0))
    assert out[1].tolist() == [60, 60, 62, 62, 64, 64, 64, 64]
    assert out[2].tolist() == [55, 55, 57, 57, 59, 59, 59, 59]
    for v in (1, 2):
        first, ends = note_spans(out[v], out_starts[v])
        assert (first % 2 == 0).all() and (ends - first >= 2).all()
    assert np.array_equal(out[0], pitches[0])
    same, _ = snap_starts(pitches, starts, 0.0, np.random.default_rng(0))
    assert np.array_equal(same, pitches)


def test_a_re_strike_moves_as_a_start():
    pitches, starts = _voices([60] * 8)
    starts[1, 3] = True  # C4 struck again on the fourth sixteenth
    out, out_starts = snap_starts(pitches, starts, 1.0, np.random.default_rng(0))
    assert np.array_equal(out, pitches) and out_starts[1].tolist() == [False, False, True] + [False] * 5


def test_no_move_into_parallels_or_a_crossing():
    # the alto's dotted eighth C4 then D4: moved back, D4 would arrive with the tenor's F3 -> G3 at the
    # same sixteenth, fifths in parallel (C4/F3 -> D4/G3): left where it is
    pitches, starts = _voices([60, 60, 60, 62, 62, 62, 62, 62], [53, 53, 55, 55, 55, 55, 55, 55])
    out, _ = snap_starts(pitches, starts, 1.0, np.random.default_rng(0))
    assert np.array_equal(out[1], pitches[1])
    # the tenor's sixteenth F4 held forward would sit over the alto's E4: left where it is
    pitches, starts = _voices([64] * 8, [65, 62, 62, 62, 60, 60, 60, 60])
    out, _ = snap_starts(pitches, starts, 1.0, np.random.default_rng(0))
    assert np.array_equal(out[2], pitches[2])


def test_share_read_from_real_voices_and_followed_by_the_draws():
    dotted = np.array([MELODY, [60, 60, 60, 62, 64, 64, 64, 64]])
    even = np.array([MELODY, [60, 60, 62, 62, 64, 64, 64, 64]])
    pieces = [SimpleNamespace(tokens=pitches_to_tokens(p), onsets=np.zeros(p.shape, bool)) for p in (dotted, even)]
    assert movable_share(pieces) == round(1 / 6, 4)
    n = 4000
    alto = np.tile([60, 60, 60, 62], n // 4)  # a dotted eighth and a sixteenth, over and over
    pitches = np.array([np.full(n, 72), alto])
    out, _ = snap_starts(pitches, np.zeros(pitches.shape, bool), 0.5, np.random.default_rng(0))
    moved = (out[1] != pitches[1]).reshape(-1, 4)[:, 2]
    assert abs(moved.mean() - 0.5) < 0.05
    where = np.zeros(pitches.shape, bool)
    where[:, : n // 2] = True
    inside, _ = snap_starts(pitches, np.zeros(pitches.shape, bool), 1.0, np.random.default_rng(0), where)
    assert (inside[1, : n // 2 - 4] != pitches[1, : n // 2 - 4]).any() and np.array_equal(inside[1, n // 2 :], pitches[1, n // 2 :])

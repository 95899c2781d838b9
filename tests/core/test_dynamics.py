"""studio.core.dynamics: metric accents and the phrase's swell on a flat accompaniment."""

from __future__ import annotations

import numpy as np

from studio.core.dynamics import DynamicsConfig, metric_accents, phrase_swell, shaped
from studio.core.roll import Bar, Grid, RollTrack

CONFIG = DynamicsConfig()


def _grid(*bars: tuple[int, int, int]) -> Grid:
    """Bars of (length, numerator, denominator), one after another."""
    out, start = [], 0
    for length, num, den in bars:
        out.append(Bar(start, length, num, den))
        start += length
    return Grid(480, start, out)


def _melody(pitches: list[int], n_steps: int, length: int = 4) -> RollTrack:
    track = RollTrack.empty("Melody", 0, n_steps)
    for i, p in enumerate(pitches):
        track.add_note(i * length, (i + 1) * length, p, 90)
    return track


def test_accents_follow_the_bar_its_beats_and_a_pickup():
    grid = _grid((16, 4, 4), (16, 4, 4))
    accents = metric_accents(grid)
    assert accents[0] == accents[16] == CONFIG.downbeat
    assert accents[4] == accents[8] == accents[20] == CONFIG.beat
    assert accents[2] == accents[5] == CONFIG.offbeat
    six_eight = metric_accents(_grid((12, 6, 8)))
    assert six_eight[0] == CONFIG.downbeat and six_eight[6] == CONFIG.beat and six_eight[3] == CONFIG.offbeat  # beats are dotted quarters
    pickup = metric_accents(_grid((4, 4, 4), (16, 4, 4)))  # one beat before the first full bar
    assert pickup[0] == CONFIG.beat and pickup[4] == CONFIG.downbeat


def test_the_phrase_swells_with_the_melody():
    grid = _grid((16, 4, 4), (16, 4, 4), (16, 4, 4), (16, 4, 4))
    rising = phrase_swell(_melody([60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79, 81, 83, 84, 86], 64), grid)
    assert rising[0] < 0 < rising[-1] and np.all(np.diff(rising) >= -1e-9)
    assert np.abs(rising).max() <= CONFIG.phrase + 1e-9
    assert not phrase_swell(_melody([67] * 16, 64), grid).any()  # a melody on one pitch: no swell
    assert not phrase_swell(RollTrack.empty("Melody", 0, 64), grid).any()


def test_shaped_changes_each_note_as_a_whole_and_keeps_the_input():
    grid = _grid((16, 4, 4), (16, 4, 4))
    melody = _melody([67] * 8, 32)
    voice = RollTrack.empty("Alto", 52, 32)
    voice.add_note(0, 6, 60, 72)  # from a downbeat across a beat
    voice.add_note(6, 8, 62, 72)  # off the beat
    voice.add_note(8, 16, 62, 72)  # the same pitch struck again on a beat
    voice.add_note(16, 32, 64, 126)  # a loud note on the next downbeat: clipped to 127
    before = voice.velocity.copy()
    out = shaped(voice, grid, melody)
    assert (voice.velocity == before).all()  # a copy
    assert set(out.velocity[0:6, 60]) == {72 + CONFIG.downbeat}
    assert set(out.velocity[6:8, 62]) == {72 + CONFIG.offbeat}
    assert set(out.velocity[8:16, 62]) == {72 + CONFIG.beat}
    assert set(out.velocity[16:32, 64]) == {127}
    assert ((out.velocity > 0) == (voice.velocity > 0)).all() and (out.onset == voice.onset).all()

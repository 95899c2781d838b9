"""Tests of `studio.audio.roll_view`: a take's notes as data for the page's live piano roll."""

from __future__ import annotations

import json

import pytest

from studio.audio.legend import MELODY_COLOUR, OKABE_ITO, legend_label
from studio.audio.roll_view import roll_view
from studio.core.score import Note, Score, TempoChange, TimeSignature, Track

TPB = 480


def song() -> Score:
    """Two bars of 3/4 at 120 qpm then 60 qpm from bar 2, a one-beat pickup (given as bar lines),
    melody, bass, drums."""
    melody = [Note(0, TPB, 67), Note(TPB, 3 * TPB, 72, 100), Note(4 * TPB, 7 * TPB, 71)]
    bass = [Note(TPB, 4 * TPB, 48, 70)]
    drums = [Note(TPB, TPB + 60, 36), Note(4 * TPB, 4 * TPB + 60, 38)]
    return Score(
        TPB,
        [Track("Melody", 73, notes=melody), Track("Bass", 32, channel=1, notes=bass), Track("Drums", is_drum=True, channel=9, notes=drums)],
        [TempoChange(0, 500_000), TempoChange(4 * TPB, 1_000_000)],
        [TimeSignature(0, 3, 4)],
    )


def test_every_track_in_the_pngs_colours_and_words_with_its_notes_in_seconds():
    score = song()
    view = roll_view(score, bar_ticks=[0, TPB, 4 * TPB], title="Take 1")
    assert json.loads(json.dumps(view)) == view  # plain JSON, as the page receives it
    assert [t["colour"] for t in view["tracks"]] == [MELODY_COLOUR, OKABE_ITO["blue"], OKABE_ITO["bluish_green"]]
    assert [t["label"] for t in view["tracks"]] == [legend_label(t.name, t.program, t.is_drum, i == 0) for i, t in enumerate(score.tracks)]
    assert [t["melody"] for t in view["tracks"]] == [True, False, False] and view["melody"] == 0
    assert [t["drums"] for t in view["tracks"]] == [False, False, True]
    # 120 qpm: a beat is 0.5 s; from tick 1920 on, 60 qpm: a beat is 1 s.
    assert view["tracks"][0]["notes"] == [[0.0, 0.5, 67, 90], [0.5, 1.5, 72, 100], [2.0, 5.0, 71, 90]]
    assert view["grid"] == {"ticks_per_beat": TPB, "ticks_per_step": TPB / 4, "tempo": [[0, 0.0, 0.5 / TPB], [4 * TPB, 2.0, 1.0 / TPB]]}
    assert view["pitch_range"] == [46, 74]  # drums aside, two semitones of room


def test_bars_beats_and_a_pickup_numbered_as_in_the_png():
    view = roll_view(song(), bar_ticks=[0, TPB, 4 * TPB])
    assert view["bars"] == [0.0, 0.5, 2.0] and view["bar_numbers"] == [0, 1, 2]  # the short first bar is a pickup, bar 0
    assert view["beats"] == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0] and view["end_s"] == 5.0
    plain = roll_view(song())  # the meter map's bars: 3/4 from tick 0, no pickup
    assert plain["bars"] == [0.0, 1.5, 4.0] and plain["bar_numbers"] == [1, 2, 3]


@pytest.mark.parametrize(("numerator", "denominator", "beats"), [(6, 8, 2), (4, 4, 4), (2, 2, 2)])
def test_a_beat_is_the_felt_beat_of_the_meter(numerator, denominator, beats):
    score = Score(TPB, [Track("Melody", notes=[Note(0, 4 * TPB, 60)])], time_signatures=[TimeSignature(0, numerator, denominator)])
    view = roll_view(score)
    assert len(view["beats"]) == beats * len(view["bars"])


def test_where_a_model_added_bars_and_a_take_without_a_melody():
    view = roll_view(song(), given_until_tick=4 * TPB)
    assert view["given_until_s"] == 2.0 and roll_view(song())["given_until_s"] is None
    drums_first = song()
    drums_first.tracks.reverse()
    no_melody = roll_view(drums_first)
    assert no_melody["melody"] is None and not any(t["melody"] for t in no_melody["tracks"])
    assert MELODY_COLOUR not in [t["colour"] for t in no_melody["tracks"]]
    empty = roll_view(Score(TPB, [Track("Melody")]))
    assert empty["pitch_range"] == [60, 72] and empty["tracks"][0]["label"].endswith("(silent)")

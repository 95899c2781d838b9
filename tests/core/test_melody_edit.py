"""Tests of `studio.core.melody_edit`: the melody edited in the page's roll, back on the take's clock."""

from __future__ import annotations

import json

import pytest

from studio.core.errors import InputError
from studio.core.melody_edit import EditLimits, edited_melody, nearest_tick, parse_edited_notes
from studio.core.score import Note, Score, TempoChange, TimeSignature, Track

TPB = 384


def take() -> Score:
    """A take whose tempo changes twice (one change off the beat) and whose meter changes."""
    melody = [Note(0, 200, 64), Note(200, 7 * TPB + 5, 67)]
    return Score(
        TPB,
        [Track("Lead", 73, notes=melody), Track("Bass", 32, channel=1, notes=[Note(0, TPB, 40)])],
        [TempoChange(0, 600_000), TempoChange(3 * TPB + 17, 433_333), TempoChange(9 * TPB, 1_250_000)],
        [TimeSignature(0, 3, 4), TimeSignature(6 * TPB, 6, 8)],
    )


def test_a_time_given_to_the_microsecond_comes_back_to_its_own_tick():
    score = take()
    for tick in range(0, 14 * TPB, 7):
        assert nearest_tick(score, round(score.tick_to_seconds(tick), 6)) == tick


def test_untouched_notes_stay_note_for_note_and_an_added_one_lands_on_the_grid():
    score = take()
    seconds = score.tick_to_seconds
    rows = [[round(seconds(n.start), 6), round(seconds(n.end), 6), n.pitch, n.velocity] for n in score.tracks[0].notes]
    step = TPB // 4
    rows.insert(0, [round(seconds(22 * step), 6), round(seconds(26 * step), 6), 69, 500])  # added in the roll: a quarter at step 22
    out = edited_melody(score, json.dumps({"notes": rows}))
    assert out.tracks[0].notes == [*score.tracks[0].notes, Note(22 * step, 26 * step, 69, 127)]  # sorted; velocity clamped
    assert len(out.tracks) == 1 and (out.tracks[0].name, out.tracks[0].program, out.tracks[0].is_drum) == ("Lead", 73, False)
    assert (out.ticks_per_beat, out.tempos, out.time_signatures) == (TPB, score.tempos, score.time_signatures)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "no list of notes"),
        ('{"notes": []}', "no notes"),
        ('{"notes": [[0, 1, 60]]}', "note 1 is not"),
        ('{"notes": [[0, 1, 60, true]]}', "note 1 is not"),
        ('{"notes": [[0, NaN, 60, 90]]}', "note 1 is not"),
        ('{"notes": [[0, 1e999, 60, 90]]}', "note 1 is not"),
        ('{"notes": [[0, 1, 60, 90], [0, 1, 60.5, 90]]}', "note 2: pitch 60.5"),
        ('{"notes": [[0, 1, 128, 90]]}', "pitch 128"),
        ('{"notes": [[-1, 1, 60, 90]]}', "outside 0-600 s"),
        ('{"notes": [[0, 601, 60, 90]]}', "outside 0-600 s"),
        ('{"notes": [[2, 1, 60, 90]]}', "ends before it starts"),
        ('{"notes": [[1, 1, 60, 90]]}', "ends before it starts"),
        ('{"notes": [[0, 1, 60, 1' + "0" * 400 + "]]}", "note 1 is not"),
    ],
)
def test_what_the_page_cannot_send_is_one_line(text, says):
    with pytest.raises(InputError, match=says) as caught:
        parse_edited_notes(text)
    assert "\n" not in str(caught.value)


def test_limits_on_size_and_number_of_notes():
    with pytest.raises(InputError, match="over the 2-note limit"):
        parse_edited_notes(json.dumps({"notes": [[0, 1, 60, 90]] * 3}), EditLimits(max_notes=2))
    with pytest.raises(InputError, match="characters"):
        parse_edited_notes(" " * 101, EditLimits(max_text_chars=100))
    with pytest.raises(InputError, match="JSON text"):
        parse_edited_notes(None)  # type: ignore[arg-type]

"""`AccompanyRequest.chords`: the chords a person gives reach a model that follows them, placed on the
melody's bars; every take carries its chords (heard, and given) in its MIDI's markers, its label and
its live roll; chords a model cannot take are refused in one line before any model runs."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from studio.core.chord_marks import marks_from_markers
from studio.core.chords import chord_tone_share, parse_progression, progression_spans
from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.core.roll import notes_to_roll
from studio.serving.live_roll import take_roll
from studio.serving.registry import default_registry
from studio.serving.service import AccompanyRequest, accompany, read_melody
from studio.serving.takes import take_chords_text, take_from_result, take_label

REPO = Path(__file__).resolve().parents[2]
TUNE = REPO / "assets" / "melodies" / "yankee_doodle.mid"  # D major, 2/4, no pickup


def _take(tmp_path, chords: str | None = None, model: str = "rules", **extra):
    request = AccompanyRequest(
        midi=TUNE, model=model, out_dir=tmp_path, chords=chords, want_wav=False, want_png=False, want_listen=False, **extra
    )
    return accompany(request)


def test_given_chords_are_followed_and_written_as_markers_the_readers_read_back(tmp_path):
    result = _take(tmp_path, "D A | G A7/C#")
    melody_input = read_melody(AccompanyRequest(midi=TUNE))
    grid = melody_input.grid
    heard = np.flatnonzero(melody_input.roll.velocity.any(axis=1))
    placed = progression_spans(parse_progression("D A | G A7/C#"), grid, until=int(heard[-1]) + 1)
    score = read_midi(result.midi_path).score  # the studio's own reader
    given = [m for m in marks_from_markers(score.markers, score.end_tick) if m.given]
    assert [(m.start, m.name) for m in given] == [(grid.step_to_tick(s.start), s.chord.name()) for s in placed]
    markers = [m.text for m in mido.MidiFile(result.midi_path).tracks[0] if m.type == "marker"]  # another reader
    assert markers[0] == "chord: D" and markers[1].startswith("analysed: ")  # at the same tick, the given chord first
    assert sum(t.startswith("chord: ") for t in markers) == len(placed) and any(t.startswith("analysed: ") for t in markers)
    accompaniment = [notes_to_roll(t.notes, grid, t.name, t.program) for t in score.tracks[1:]]
    share, counted = chord_tone_share(accompaniment, grid, placed)
    assert counted > 0 and share == 1.0  # what the file plays keeps to them
    assert result.given_chords == "D A | G A7/C#"


def test_every_take_carries_the_chords_heard_in_it(tmp_path):
    result = _take(tmp_path)
    assert result.chords and not any(m.given for m in result.chords) and result.given_chords is None
    score = read_midi(result.midi_path).score
    assert [m.name for m in marks_from_markers(score.markers, score.end_tick)] == [m.name for m in result.chords]
    assert result.chords[0].name == "D"  # Yankee Doodle starts on its tonic


def test_the_take_shows_its_chords_in_its_label_its_roll_and_as_text_to_edit(tmp_path):
    result = _take(tmp_path, "D  A   G A")
    take = take_from_result(result, 1, "Yankee Doodle")
    assert "chords D A G A" in take_label(take)
    assert "· chords" not in take_label(take_from_result(_take(tmp_path / "plain"), 2, "Yankee Doodle"))
    roll = take_roll(take["midi"], take["bar_ticks"])
    given = [c for c in roll["chords"] if c["given"]]
    assert [c["name"] for c in given[:4]] == ["D", "A", "G", "A"] and all(c["end_s"] > c["start_s"] for c in roll["chords"])
    assert any(not c["given"] for c in roll["chords"])
    assert take_chords_text(take, heard=False).startswith("D | A | G | A | D")
    heard = take_chords_text(take)
    assert parse_progression(heard) and heard.count("|") == len(read_melody(AccompanyRequest(midi=TUNE)).grid.bars) - 1


def test_a_model_that_does_not_follow_chords_is_refused_naming_those_that_do(tmp_path):
    takers = default_registry().chord_followers()
    assert "rules" in takers and "gan-chorale" not in takers
    with pytest.raises(InputError) as caught:
        _take(tmp_path, "C G", model="gan-chorale")
    assert str(caught.value) == f"gan-chorale does not take chords: the models that follow them are {', '.join(takers)}"
    assert not list(tmp_path.iterdir())  # refused before anything ran or was written


@pytest.mark.parametrize(
    ("chords", "words"),
    [("C H7", "'H7' is not a chord symbol"), ("C || G", "an empty bar"), ("% C", "'%' repeats"), (42, "must be text")],
)
def test_chords_that_cannot_be_read_are_one_line(tmp_path, chords, words):
    with pytest.raises(InputError, match=words) as caught:
        _take(tmp_path, chords)
    assert "\n" not in str(caught.value)


def test_blank_chords_are_no_chords(tmp_path):
    assert _take(tmp_path, "   ").given_chords is None

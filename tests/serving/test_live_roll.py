"""Tests of `studio.serving.live_roll`: a take's live roll from its MIDI file, and the melody edited
there written back as the next melody."""

from __future__ import annotations

import json

import pytest

from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.serving.live_roll import take_roll, write_edited_melody
from studio.serving.service import AccompanyRequest, accompany
from studio.serving.takes import take_from_result


@pytest.fixture(scope="module")
def result(tune_paths, tmp_path_factory):
    """A take of the rules (fast) on a real tune."""
    out = tmp_path_factory.mktemp("take")
    return accompany(AccompanyRequest(midi=tune_paths["four_four.mid"], model="rules", out_dir=out, want_wav=False, want_png=False))


def test_the_roll_of_a_take_has_its_tracks_and_the_services_bars(result):
    take = take_from_result(result, 1, "tune")
    view = take_roll(take["midi"], take["bar_ticks"], take["given_until_tick"], "Take 1")
    assert [t["name"] for t in view["tracks"]] == [t.name for t in result.score.tracks] and view["melody"] == 0
    assert view["bars"] == [round(result.score.tick_to_seconds(t), 6) for t in result.bar_ticks]
    assert view["given_until_s"] is None and view["title"] == "Take 1"


def test_the_melody_sent_back_unchanged_is_the_takes_melody_note_for_note(result, tmp_path):
    view = take_roll(result.midi_path, result.bar_ticks)
    path = write_edited_melody(result.midi_path, json.dumps({"notes": view["tracks"][0]["notes"]}), tmp_path, name="tune edited")
    assert path.name == "tune-edited.mid"
    written, original = read_midi(path).score, read_midi(result.midi_path).score
    assert [t.notes for t in written.tracks] == [original.tracks[0].notes]
    assert (written.tempos, written.time_signatures) == (original.tempos, original.time_signatures)


def test_an_expired_take_says_so(tmp_path):
    with pytest.raises(InputError, match="expired"):
        take_roll(tmp_path / "gone.mid")
    with pytest.raises(InputError, match="expired"):
        write_edited_melody(tmp_path / "gone.mid", '{"notes": [[0, 1, 60, 90]]}', tmp_path)

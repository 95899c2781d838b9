"""A take transposed, or at another tempo: the same notes moved, re-rendered, nothing regenerated."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from synth_checks import needs_audio

from studio.audio import loudness
from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.serving.service import AccompanyRequest, ChangeRequest, accompany, change_take
from studio.serving.takes import changed_take, take_from_result, take_label

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "melodies"


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    out = tmp_path_factory.mktemp("take")
    return accompany(AccompanyRequest(midi=SAMPLES / "yankee_doodle.mid", model="rules", out_dir=out, name="yd"))


def _notes(path) -> list[list[tuple[int, int, int, int]]]:
    return [[(n.start, n.end, n.pitch, n.velocity) for n in t.notes] for t in read_midi(path).score.tracks]


def test_every_note_moves_by_the_semitones_and_stays_in_time(take, tmp_path):
    midi_path, _wav, png, _listen = change_take(
        ChangeRequest(midi=take.midi_path, semitones=-3, tempo=1.5, out_dir=tmp_path, want_wav=False, bar_ticks=take.bar_ticks)
    )
    before, after = _notes(take.midi_path), _notes(midi_path)
    assert [[(s, e, p - 3, v) for s, e, p, v in track] for track in before] == after
    old, new = read_midi(take.midi_path).score, read_midi(midi_path).score
    assert new.tick_to_seconds(new.end_tick) == pytest.approx(old.tick_to_seconds(old.end_tick) / 1.5, rel=1e-3)
    assert [t.name for t in new.tracks] == [t.name for t in old.tracks]
    assert png is not None and png.exists()


@needs_audio
def test_the_new_take_sounds_at_the_new_tempo_and_the_studios_loudness(take, tmp_path):
    _midi, wav_path, _png, listen = change_take(ChangeRequest(midi=take.midi_path, semitones=2, tempo=2.0, out_dir=tmp_path))
    with wave.open(str(wav_path)) as new, wave.open(str(take.wav_path)) as old:
        rate = new.getframerate()
        ratio = new.getnframes() / old.getnframes()
        audio = np.frombuffer(new.readframes(new.getnframes()), np.int16).reshape(-1, new.getnchannels()) / 32768
    assert 0.45 < ratio < 0.6, ratio  # half as long, and a release tail
    assert loudness.integrated_loudness(audio, rate) == pytest.approx(-16, abs=1)
    assert listen is not None and listen.exists()


def test_a_changed_take_is_a_new_take_that_says_what_changed(take, tmp_path):
    first = take_from_result(take, 1, "Yankee Doodle")
    files = change_take(ChangeRequest(midi=take.midi_path, semitones=2, tempo=1.25, out_dir=tmp_path, want_wav=False))
    second = changed_take(first, 2, files, 2, 1.25)
    assert second["midi"] == str(files[0]) and second["model"] == first["model"] and second["seed"] == first["seed"]
    assert second["key"] != first["key"] and first["key"]
    assert "take 1 transposed +2, tempo x1.25" in take_label(second)
    assert take_label(second) != take_label(first)
    assert Path(first["midi"]).exists()  # the first take stays


@pytest.mark.parametrize(("semitones", "tempo"), [(24, 1.0), (0, 5.0), (0.5, 1.0)])
def test_a_change_out_of_bounds_writes_nothing(take, tmp_path, semitones, tempo):
    with pytest.raises(InputError):
        change_take(ChangeRequest(midi=take.midi_path, semitones=semitones, tempo=tempo, out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_chords_of_a_transposed_take_move_with_it(tmp_path):
    from studio.core.chord_marks import marks_from_markers

    with_chords = accompany(
        AccompanyRequest(
            midi=SAMPLES / "yankee_doodle.mid", model="rules", chords="D A/C# | G", out_dir=tmp_path, name="yd", want_wav=False
        )
    )
    first = take_from_result(with_chords, 1, "Yankee Doodle")
    files = change_take(ChangeRequest(midi=with_chords.midi_path, semitones=-2, out_dir=tmp_path, want_wav=False))
    moved = read_midi(files[0]).score
    given = [m.name for m in marks_from_markers(moved.markers, moved.end_tick) if m.given]
    assert given[:3] == ["C", "G/B", "F"], given
    second = changed_take(first, 2, files, -2, 1.0)
    assert second["given_chords"] == "C G/B | F"
    assert [c[2] for c in second["chords"] if c[3]][:3] == ["C", "G/B", "F"]
    assert [c[:2] for c in second["chords"]] == [c[:2] for c in first["chords"]]  # at the same ticks

"""studio.mixing: re-render a take with per-track instrument, mute and volume; preview a melody alone."""

from __future__ import annotations

import contextlib
import io
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

from studio.errors import InputError
from studio.melody import extract_melody
from studio.midi import read_midi
from studio.mixing import (
    GM_PROGRAMS,
    TrackInfo,
    TrackMix,
    mix_score,
    preview_melody,
    remix_take,
    take_tracks,
)
from studio.score import Note, Score, TempoChange, TimeSignature, Track
from studio.service import AccompanyRequest, accompany
from studio.synth import SynthUnavailable, audio_stats, synth_status

SYNTH_OK, SYNTH_WHY = synth_status()
needs_synth = pytest.mark.skipif(not SYNTH_OK, reason=f"FluidSynth unavailable: {SYNTH_WHY}")


def _audio(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def take(tune_paths, tmp_path_factory):
    """A real take of the rules baseline: melody (from a multi-track file) + accompaniment."""
    out = tmp_path_factory.mktemp("take")
    return accompany(AccompanyRequest(midi=tune_paths["multitrack_drums.mid"], model="rules", out_dir=out,
                                      name="drums", want_png=False))


@pytest.fixture(scope="module")
def plain_take(tune_paths, tmp_path_factory):
    """A take whose accompaniment plays on after the melody's last note."""
    out = tmp_path_factory.mktemp("plain")
    return accompany(AccompanyRequest(midi=tune_paths["four_four.mid"], model="rules", out_dir=out, want_png=False))


def _score() -> Score:
    melody = Track("Melody", 0, False, 0, [Note(0, 480, 72, 90), Note(480, 960, 74, 100)])
    bass = Track("Bass", 32, False, 1, [Note(0, 960, 36, 80), Note(960, 1920, 43, 1)])
    drums = Track("Drums", 0, True, 9, [Note(0, 120, 36, 120)])
    return Score(480, [melody, bass, drums], [TempoChange(0, 600_000)], [TimeSignature(0, 3, 4)])


def test_gm_programs_are_the_general_midi_list():
    assert len(GM_PROGRAMS) == 128
    assert GM_PROGRAMS[0] == "Acoustic Grand Piano"
    assert GM_PROGRAMS[32] == "Acoustic Bass"
    assert GM_PROGRAMS[40] == "Violin"
    assert GM_PROGRAMS[73] == "Flute"
    assert GM_PROGRAMS[127] == "Gunshot"
    assert len(set(GM_PROGRAMS)) == 128


def test_take_tracks_lists_melody_and_accompaniment(take):
    tracks = take_tracks(take.midi_path)
    assert [t.index for t in tracks] == list(range(len(take.score.tracks)))
    assert len(tracks) >= 3  # melody + at least two accompaniment tracks
    assert [(t.name, t.program, t.is_drum, t.notes) for t in tracks] == [
        (t.name, t.program, t.is_drum, len(t.notes)) for t in take.score.tracks
    ]
    assert tracks[0] == TrackInfo(0, "Melody", 73, False, tracks[0].notes)  # the input's flute
    assert tracks[0].notes > 0 and all(t.notes > 0 and t.name for t in tracks)
    assert {t.name for t in tracks[1:]} >= {"Bass"}
    assert GM_PROGRAMS[tracks[1].program]  # a GM program number


def test_take_tracks_refuses_what_is_not_midi(tmp_path):
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot music")
    with pytest.raises(InputError) as exc:
        take_tracks(bad)
    assert "PNG" in _one_line(exc)


def test_mix_score_sets_programs_and_scales_velocities():
    score = _score()
    mixed = mix_score(score, [TrackMix(40, 0.5), TrackMix(33, 2.0), TrackMix(25, 1.0)])
    melody, bass, drums = mixed.tracks
    assert (melody.program, bass.program) == (40, 33)
    assert [n.velocity for n in melody.notes] == [45, 50]  # halved
    assert [n.velocity for n in bass.notes] == [127, 2]  # doubled, 160 clamped at 127
    assert [(n.start, n.end, n.pitch) for n in melody.notes] == [(0, 480, 72), (480, 960, 74)]
    assert drums.is_drum and drums.program == 0 and drums.notes == score.tracks[2].notes  # program ignored
    assert [t.name for t in mixed.tracks] == ["Melody", "Bass", "Drums"]
    assert mixed.tempos == score.tempos and mixed.time_signatures == score.time_signatures
    # pure: the input is untouched
    assert score.tracks[0].program == 0 and [n.velocity for n in score.tracks[0].notes] == [90, 100]
    quiet = mix_score(score, [TrackMix(0, 0.01), TrackMix(32), TrackMix(0)])
    assert [n.velocity for n in quiet.tracks[0].notes] == [1, 1]  # never below 1


def test_mix_score_mute_empties_only_that_track():
    score = _score()
    mixed = mix_score(score, [TrackMix(0), TrackMix(32, mute=True), TrackMix(0)])
    assert [len(t.notes) for t in mixed.tracks] == [2, 0, 1]
    assert [t.name for t in mixed.tracks] == ["Melody", "Bass", "Drums"]  # the track stays
    assert mixed.tracks[0].notes == score.tracks[0].notes
    silent = mix_score(score, [TrackMix(0, 0.0), TrackMix(32), TrackMix(0)])
    assert [len(t.notes) for t in silent.tracks] == [0, 2, 1]  # volume 0 is silent, as mute


@pytest.mark.parametrize(
    ("mixes", "words"),
    [
        ([TrackMix(0), TrackMix(32)], "2 track settings for a take of 3 tracks"),
        ([TrackMix(0), TrackMix(128), TrackMix(0)], "track 2: the instrument must be a General MIDI program 0-127"),
        ([TrackMix(-1), TrackMix(32), TrackMix(0)], "track 1: the instrument"),
        ([TrackMix("Violin"), TrackMix(32), TrackMix(0)], "program number"),  # type: ignore[arg-type]
        ([TrackMix(0), TrackMix(32, 2.5), TrackMix(0)], "track 2: the volume must be from 0 to 2"),
        ([TrackMix(0), TrackMix(32), TrackMix(0, -0.1)], "track 3: the volume"),
        ([TrackMix(0, float("nan")), TrackMix(32), TrackMix(0)], "track 1: the volume"),
    ],
)
def test_mix_score_refuses_bad_settings(mixes, words):
    with pytest.raises(InputError) as exc:
        mix_score(_score(), mixes)
    assert words in _one_line(exc)


def test_remix_refuses_all_muted_and_wrong_count(take, tmp_path):
    tracks = take_tracks(take.midi_path)
    with pytest.raises(InputError) as exc:
        remix_take(take.midi_path, [TrackMix(t.program, mute=True) for t in tracks], tmp_path)
    assert _one_line(exc) == "every track is muted: unmute at least one track to hear the take"
    with pytest.raises(InputError) as exc:
        remix_take(take.midi_path, [TrackMix(0)], tmp_path)
    assert f"for a take of {len(tracks)} tracks" in _one_line(exc)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_remix_midi_keeps_the_take_length_and_applies_the_mix(plain_take, tmp_path):
    take = plain_take
    tracks = take_tracks(take.midi_path)
    assert max(t.end for t in take.score.tracks[1:]) > take.score.tracks[0].end  # the final chord rings on after the tune
    mixes = [TrackMix(40, 0.5)] + [TrackMix(t.program, mute=True) for t in tracks[1:]]
    with contextlib.suppress(SynthUnavailable):  # the MIDI file is written before synthesis
        remix_take(take.midi_path, mixes, tmp_path)
    [written] = tmp_path.glob("*.mid")
    assert written.name.startswith("melody-rules-seed0-mix-")
    # the muted accompaniment played last, yet the file lasts as long as the take
    original = mido.MidiFile(file=io.BytesIO(take.midi_path.read_bytes())).length
    assert mido.MidiFile(file=io.BytesIO(written.read_bytes())).length == pytest.approx(original, abs=1e-6)
    back = read_midi(written).score.tracks  # empty tracks are not read back
    assert len(back) == 1 and back[0].program == 40
    assert [n.velocity for n in back[0].notes] == [round(n.velocity * 0.5) for n in take.score.tracks[0].notes]


@needs_synth
def test_remix_muting_the_accompaniment_is_quieter_and_as_long(plain_take, tmp_path):
    take = plain_take
    assert take.score.tracks[0].end < max(t.end for t in take.score.tracks[1:])  # the melody ends first
    tracks = take_tracks(take.midi_path)
    full_mix = [TrackMix(t.program) for t in tracks]
    full_midi, full_wav = remix_take(take.midi_path, full_mix, tmp_path)
    melody_only = [full_mix[0]] + [TrackMix(t.program, mute=True) for t in tracks[1:]]
    solo_midi, solo_wav = remix_take(take.midi_path, melody_only, tmp_path)
    assert full_midi.suffix == ".mid" and full_wav == full_midi.with_suffix(".wav")
    assert solo_midi != full_midi and solo_wav.stat().st_size > 0
    original = audio_stats(_audio(take.wav_path))
    full, solo = audio_stats(_audio(full_wav)), audio_stats(_audio(solo_wav))
    assert full["rms_dbfs"] == pytest.approx(original["rms_dbfs"], abs=0.1)
    assert solo["rms_dbfs"] < full["rms_dbfs"] - 1.0
    assert solo["rms_dbfs"] > -60.0  # the melody is still heard
    _, quiet_wav = remix_take(take.midi_path, [TrackMix(t.program, 0.5) for t in tracks], tmp_path)
    quiet = audio_stats(_audio(quiet_wav))
    assert quiet["rms_dbfs"] < full["rms_dbfs"] - 3.0
    for stats in (full, solo, quiet):  # every mix lasts as long as the take (its release may die sooner)
        assert stats["duration_s"] == pytest.approx(original["duration_s"], abs=0.1)
    assert remix_take(take.midi_path, full_mix, tmp_path)[0] == full_midi  # same settings, same name


@needs_synth
def test_remix_with_another_instrument_changes_the_sound(take, tmp_path):
    tracks = take_tracks(take.midi_path)
    base = [TrackMix(t.program) for t in tracks]
    other = [TrackMix(40 if tracks[0].program != 40 else 0)] + base[1:]
    _, base_wav = remix_take(take.midi_path, base, tmp_path)
    other_midi, other_wav = remix_take(take.midi_path, other, tmp_path)
    assert read_midi(other_midi).score.tracks[0].program == other[0].program
    a, b = _audio(base_wav), _audio(other_wav)
    n = min(len(a), len(b))
    assert not np.array_equal(a[:n], b[:n])
    assert np.abs(a[:n].astype(np.int32) - b[:n]).mean() > 10


def test_preview_melody_writes_audio_and_a_piano_roll(tune_paths, tmp_path):
    source = tune_paths["multitrack_drums.mid"]
    wav, png = preview_melody(source.read_bytes(), tmp_path, name="my tune")
    assert png.is_file() and png.stat().st_size > 0 and png.read_bytes().startswith(b"\x89PNG")
    if SYNTH_OK:
        assert wav is not None and wav.is_file() and wav.stat().st_size > 0
        assert audio_stats(_audio(wav))["rms_dbfs"] > -60.0
    else:
        assert wav is None
    [written] = tmp_path.glob("*.mid")
    assert written.name == "my-tune-preview.mid"
    score = read_midi(source).score
    melody = extract_melody(score).track
    [alone] = read_midi(written).score.tracks
    assert (alone.program, len(alone.notes)) == (melody.program, len(melody.notes))
    assert alone.program == 73  # the flute, not the drums or the other parts


@pytest.mark.parametrize("data", [b"", b"hello, this is text", b"\x89PNG\r\n\x1a\n0000", b"MThd\x00\x00"])
def test_preview_melody_refuses_bad_bytes_as_accompany_does(data, tmp_path):
    with pytest.raises(InputError) as exc:
        preview_melody(data, tmp_path / "preview")
    with pytest.raises(InputError) as want:
        accompany(AccompanyRequest(midi=data, model="rules", out_dir=tmp_path / "take"))
    assert _one_line(exc) == str(want.value)
    assert not (tmp_path / "preview").exists()

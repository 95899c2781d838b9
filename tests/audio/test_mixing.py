"""studio.audio.mixing: re-render a take with per-track instrument, mute and volume; preview a melody alone."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import midi_factory
import mido
import numpy as np
import pytest

from studio.audio import loudness
from studio.audio.mixing import (
    GM_PROGRAMS,
    LOUDEST_VOLUME,
    MelodyPreview,
    Remix,
    TrackInfo,
    TrackMix,
    channel_volume,
    mix_score,
    preview_melody,
    remix_take,
    take_tracks,
)
from studio.audio.synth import SynthConfig, SynthUnavailable, audio_stats, render_midi, synth_status
from studio.core.errors import InputError
from studio.core.melody import extract_melody
from studio.core.midi import read_midi, write_midi
from studio.core.score import Note, Score, TempoChange, TimeSignature, Track
from studio.serving.service import AccompanyRequest, accompany

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
    return accompany(AccompanyRequest(midi=tune_paths["multitrack_drums.mid"], model="rules", out_dir=out, name="drums", want_png=False))


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


def test_mix_score_sets_programs_and_keeps_every_note():
    score = _score()
    mixed = mix_score(score, [TrackMix(40, 0.5), TrackMix(33, 2.0, mute=True), TrackMix(25, 0.0)])
    melody, bass, drums = mixed.tracks
    assert (melody.program, bass.program) == (40, 33)
    assert [t.notes for t in mixed.tracks] == [t.notes for t in score.tracks]  # pitches, times, velocities: as written
    assert drums.is_drum and drums.program == 0  # a drum track's program is not changed
    assert [t.name for t in mixed.tracks] == ["Melody", "Bass", "Drums"]
    assert mixed.tempos == score.tempos and mixed.time_signatures == score.time_signatures
    assert score.tracks[0].program == 0  # pure: the input is untouched


def test_channel_volume_is_an_amplitude_gain_through_cc7():
    assert channel_volume(TrackMix(0)) == 100  # a file without CC7 plays at 100: as generated
    assert channel_volume(TrackMix(0, 0.5)) == 71  # (71 / 100) ** 2 = 0.5
    assert channel_volume(TrackMix(0, 1.5)) == 122
    assert channel_volume(TrackMix(0, 2.0)) == channel_volume(TrackMix(0, LOUDEST_VOLUME)) == 127  # the most CC7 gives
    assert channel_volume(TrackMix(0, 1e-6)) == 1  # quiet, not muted
    assert channel_volume(TrackMix(0, mute=True)) == channel_volume(TrackMix(0, 0.0)) == 0


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


def _notes(path: Path) -> list[list[tuple[int, int, int, int]]]:
    """Every note of every track of a MIDI file as mido reads it: (start, end, pitch, velocity) in ticks."""
    tracks = []
    for track in mido.MidiFile(file=io.BytesIO(path.read_bytes())).tracks:
        now, sounding, notes = 0, {}, []
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity:
                sounding[msg.note] = (now, msg.velocity)
            elif msg.type in ("note_on", "note_off") and msg.note in sounding:
                start, velocity = sounding.pop(msg.note)
                notes.append((start, now, msg.note, velocity))
        if notes:
            tracks.append(sorted(notes))
    return tracks


def _channel_volumes(path: Path) -> list[int]:
    """The CC7 values of a MIDI file, in track order."""
    return [
        m.value
        for t in mido.MidiFile(file=io.BytesIO(path.read_bytes())).tracks
        for m in t
        if m.type == "control_change" and m.control == 7
    ]


def test_remix_midi_keeps_every_note_and_carries_the_mix(plain_take, tmp_path):
    take = plain_take
    tracks = take_tracks(take.midi_path)
    assert max(t.end for t in take.score.tracks[1:]) > take.score.tracks[0].end  # the final chord rings on after the tune
    mixes = [TrackMix(40, 0.5)] + [TrackMix(t.program, mute=True) for t in tracks[1:-1]] + [TrackMix(tracks[-1].program, 2.0)]
    try:  # the MIDI file is written before synthesis
        remix = remix_take(take.midi_path, mixes, tmp_path)
    except SynthUnavailable as exc:
        remix, no_synth = None, str(exc)
    [written] = tmp_path.glob("*.mid")
    assert written.name.startswith("melody-rules-seed0-mix-")
    # the mixer changes the sound, not the notes: every note of every track, muted ones too, is in the download
    assert _notes(written) == _notes(take.midi_path) and sum(map(len, _notes(written))) == sum(t.notes for t in tracks)
    original = mido.MidiFile(file=io.BytesIO(take.midi_path.read_bytes())).length
    assert mido.MidiFile(file=io.BytesIO(written.read_bytes())).length == pytest.approx(original, abs=1e-6)
    back = read_midi(written).score.tracks
    assert [t.name for t in back] == [t.name for t in take.score.tracks] and back[0].program == 40
    assert _channel_volumes(written) == [71] + [0] * (len(tracks) - 2) + [127]
    assert _channel_volumes(take.midi_path) == []  # a take sets none: FluidSynth's 100
    if remix is None:
        pytest.skip(f"FluidSynth is not installed ({no_synth}): the MIDI checks passed, the remixed audio was not made")
    assert Path(remix.wav).read_bytes()[:4] == b"RIFF"


def _lufs(path: Path) -> float:
    return loudness.integrated_loudness(_audio(path) / 32767.0, 44100)


def _lead(midi_path: Path, wav_path: Path) -> float:
    """Melody minus accompaniment (LU) in a WAV of this take, measured on the WAV: the take is
    rendered with the accompaniment muted and with the melody muted, through the mixer's own path
    (`mix_score`, `channel_volume`) without the loudness step, and the WAV is split into the two
    by least squares (`loudness.stem_loudness`)."""
    score = read_midi(midi_path).score
    stems = []
    for melody_on in (True, False):
        mixes = [TrackMix(t.program, mute=(t.index == 0) != melody_on) for t in take_tracks(midi_path)]
        data = write_midi(mix_score(score, mixes), volumes=[channel_volume(m) for m in mixes])
        stems.append(render_midi(data, SynthConfig(loudness_lufs=None)) / 32767.0)
    melody, accompaniment = loudness.stem_loudness(_audio(wav_path) / 32767.0, stems[0], stems[1], 44100)
    return melody - accompaniment


@needs_synth
def test_remix_at_the_studio_loudness_and_as_long(plain_take, tmp_path):
    """Every remix is at -16 LUFS, the melody alone too; turning every track down alike changes nothing."""
    take = plain_take
    assert take.score.tracks[0].end < max(t.end for t in take.score.tracks[1:])  # the melody ends first
    tracks = take_tracks(take.midi_path)
    full_mix = [TrackMix(t.program) for t in tracks]
    full = remix_take(take.midi_path, full_mix, tmp_path)
    full_midi, full_wav = full  # unpacks as the (MIDI, WAV) pair it was
    assert isinstance(full, Remix) and (full.midi, full.wav) == (full_midi, full_wav)
    melody_only = [full_mix[0]] + [TrackMix(t.program, mute=True) for t in tracks[1:]]
    solo_midi, solo_wav = remix_take(take.midi_path, melody_only, tmp_path)
    assert full_midi.suffix == ".mid" and full_wav == full_midi.with_suffix(".wav")
    assert full.listen in (full_wav, full_wav.with_suffix(".mp3")) and full.listen.is_file()
    assert solo_midi != full_midi and solo_wav.stat().st_size > 0
    original = audio_stats(_audio(take.wav_path))
    full_stats, solo = audio_stats(_audio(full_wav)), audio_stats(_audio(solo_wav))
    assert full_stats["rms_dbfs"] == pytest.approx(original["rms_dbfs"], abs=0.1)  # the take's own mix
    for wav in (take.wav_path, full_wav, solo_wav):
        assert _lufs(wav) == pytest.approx(-16.0, abs=0.2)
    assert solo["rms_dbfs"] != pytest.approx(full_stats["rms_dbfs"], abs=0.01)  # another sound, not a copy
    _, quiet_wav = remix_take(take.midi_path, [TrackMix(t.program, 0.5) for t in tracks], tmp_path)
    quiet = audio_stats(_audio(quiet_wav))
    assert quiet["rms_dbfs"] == pytest.approx(full_stats["rms_dbfs"], abs=0.2)  # the same balance, the same loudness
    for stats in (full_stats, solo, quiet):  # every mix lasts as long as the take (its release may die sooner)
        assert stats["duration_s"] == pytest.approx(original["duration_s"], abs=0.1)
    assert remix_take(take.midi_path, full_mix, tmp_path)[0] == full_midi  # same settings, same name


@needs_synth
def test_remix_volume_acts_relative_to_the_takes_mix(plain_take, tmp_path):
    """The take's melody leads; in a remix the melody's volume moves it from there (the mix does not
    undo the user's volume), and a muted melody leaves the accompaniment at the studio's loudness."""
    take = plain_take
    tracks = take_tracks(take.midi_path)
    rest = [TrackMix(t.program) for t in tracks[1:]]
    lead = {"take": _lead(take.midi_path, take.wav_path)}
    for label, first in (("1", TrackMix(tracks[0].program)), ("2", TrackMix(tracks[0].program, 2.0))):
        lead[label] = _lead(take.midi_path, remix_take(take.midi_path, [first, *rest], tmp_path).wav)
    print("the melody's lead (LU), take / volume 1 / volume 2:", lead)
    assert lead["take"] >= 1.0 - 0.2  # SynthConfig.lead_lu, or more when the melody led already
    assert lead["1"] == pytest.approx(lead["take"], abs=0.2)
    assert lead["2"] - lead["1"] == pytest.approx(20 * np.log10(LOUDEST_VOLUME), abs=0.5)  # CC7 127: +4.2 dB
    muted = remix_take(take.midi_path, [TrackMix(tracks[0].program, mute=True), *rest], tmp_path).wav
    assert _lufs(muted) == pytest.approx(-16.0, abs=0.2)


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
    preview = preview_melody(source.read_bytes(), tmp_path, name="my tune")
    wav, png = preview  # unpacks as the (WAV, PNG) pair it was
    assert isinstance(preview, MelodyPreview) and (preview.wav, preview.png) == (wav, png)
    assert png.is_file() and png.stat().st_size > 0 and png.read_bytes().startswith(b"\x89PNG")
    if SYNTH_OK:
        assert wav is not None and wav.is_file() and wav.stat().st_size > 0
        assert audio_stats(_audio(wav))["rms_dbfs"] > -60.0
        assert preview.listen in (wav, wav.with_suffix(".mp3")) and preview.listen.is_file()
    else:
        assert wav is None and preview.listen is None
    [written] = tmp_path.glob("*.mid")
    assert written.name == "my-tune-preview.mid"
    score = read_midi(source).score
    melody = extract_melody(score).track
    [alone] = read_midi(written).score.tracks
    assert (alone.program, len(alone.notes)) == (melody.program, len(melody.notes))
    assert alone.program == 73  # the flute, not the drums or the other parts
    assert preview.warnings == tuple(extract_melody(score).warnings)  # which track is the melody, as accompany says


def test_preview_melody_says_at_once_that_a_long_file_is_cut(tmp_path):
    """A 30-minute upload: the preview says what Generate would say, before anything is generated."""
    data = midi_factory.long_file(minutes=30)
    preview = preview_melody(data, tmp_path, name="long")
    cut = (
        "the music is 30.0 minutes (3,600 beats) long, over the studio's limit of 10 minutes or 4,000 beats: "
        "the studio uses its first 10.0 minutes (1,200 beats)"
    )
    assert cut in preview.warnings
    assert cut in accompany(AccompanyRequest(midi=data, model="rules", out_dir=tmp_path / "take", want_wav=False, want_png=False)).warnings
    [alone] = read_midi(tmp_path / "long-preview.mid").score.tracks
    assert alone.end / 480 * 0.5 == pytest.approx(600.0, abs=1.0)  # 120 qpm: the first 10 minutes only
    assert preview_melody(midi_factory.long_file(minutes=1), tmp_path, name="short").warnings == ()


@pytest.mark.parametrize("data", [b"", b"hello, this is text", b"\x89PNG\r\n\x1a\n0000", b"MThd\x00\x00"])
def test_preview_melody_refuses_bad_bytes_as_accompany_does(data, tmp_path):
    with pytest.raises(InputError) as exc:
        preview_melody(data, tmp_path / "preview")
    with pytest.raises(InputError) as want:
        accompany(AccompanyRequest(midi=data, model="rules", out_dir=tmp_path / "take"))
    assert _one_line(exc) == str(want.value)
    assert not (tmp_path / "preview").exists()

"""studio.synth: MIDI -> int16 stereo audio with FluidSynth in process, and the WAV writer."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mido
import numpy as np
import pytest

from studio import synth
from studio.errors import InputError, StudioError
from studio.synth import (
    SynthConfig,
    SynthUnavailable,
    audio_stats,
    find_soundfont,
    render_midi,
    render_to_wav,
    synth_status,
    write_wav,
)

SYNTH_OK, SYNTH_WHY = synth_status()
needs_synth = pytest.mark.skipif(not SYNTH_OK, reason=f"FluidSynth unavailable: {SYNTH_WHY}")

TPB = 480


def _midi_bytes(parts: dict[int, list[tuple]], programs: dict[int, int] | None = None,
                end_beats: float | None = None, controls: list[tuple] = ()) -> bytes:
    """A type-0 MIDI at 120 qpm from {channel: [(start_beat, beats, pitch, velocity), ...]}.

    `controls` are extra (beat, mido.Message) events; `end_beats` places the end of track.
    """
    events: list[tuple[int, int, mido.Message]] = []
    for ch, program in (programs or {}).items():
        events.append((0, 0, mido.Message("program_change", channel=ch, program=program)))
    for beat, msg in controls:
        events.append((round(beat * TPB), 0, msg))
    for ch, notes in parts.items():
        for start, beats, pitch, vel in notes:
            on = round(start * TPB)
            events.append((on, 2, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            if beats is not None:  # None: a hung note, never released
                events.append((on + round(beats * TPB), 1, mido.Message("note_off", channel=ch, note=pitch)))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    end = max(now, round(end_beats * TPB)) if end_beats is not None else now
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    buf = io.BytesIO()
    mido.MidiFile(type=0, ticks_per_beat=TPB, tracks=[track]).save(file=buf)
    return buf.getvalue()


def _song() -> bytes:
    """2 bars (4 s at 120 qpm): a C major chord per bar, a violin melody, kick and snare."""
    chord = [(bar * 4, 4, p, 80) for bar in range(2) for p in (60, 64, 67)]
    melody = [(i, 1, p, 90) for i, p in enumerate((72, 74, 76, 77, 79, 77, 76, 74))]
    drums = [(i, 0.5, 36 if i % 2 == 0 else 38, 100) for i in range(8)]
    return _midi_bytes({0: chord, 1: melody, 9: drums}, programs={0: 0, 1: 40})


def _other_song() -> bytes:
    """A song that leaves state behind if reset fails: pitch bend, low volume, pedal, hung notes."""
    controls = [
        (0, mido.Message("pitchwheel", channel=0, pitch=6000)),
        (0, mido.Message("control_change", channel=0, control=7, value=20)),
        (0, mido.Message("control_change", channel=0, control=64, value=127)),
        (0, mido.Message("control_change", channel=1, control=91, value=127)),
    ]
    notes = {0: [(0, None, 48, 127), (0.5, None, 55, 127)], 1: [(0, 1, 84, 110)]}
    return _midi_bytes(notes, programs={0: 56, 1: 73}, controls=controls, end_beats=2)


def _loud() -> bytes:
    """Many simultaneous velocity-127 notes on 8 channels for 2 s."""
    parts = {ch: [(0, 4, 36 + 6 * ch + k, 127) for k in (0, 4, 7, 12, 16)] for ch in range(8)}
    return _midi_bytes(parts, programs={ch: (0, 30, 61, 48, 56, 19, 81, 33)[ch] for ch in range(8)})


# --- SoundFont search and status (no FluidSynth needed) --------------------------------------


def test_find_soundfont_search_order(tmp_path, monkeypatch):
    folder = tmp_path / "soundfonts"
    folder.mkdir()
    for name in ("b.sf2", "a.sf3", "notes.txt"):
        (folder / name).write_bytes(b"not a real font")
    system = tmp_path / "system.sf2"
    system.write_bytes(b"x")
    config = SynthConfig(system_soundfonts=(str(tmp_path / "missing.sf2"), str(system)))
    monkeypatch.setattr(synth, "REPO_SOUNDFONTS", folder)
    monkeypatch.delenv("STUDIO_SOUNDFONT", raising=False)
    assert find_soundfont(config) == folder / "a.sf3"  # soundfonts/, sorted by name, .txt ignored

    env_font = tmp_path / "mine.sf2"
    env_font.write_bytes(b"x")
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(env_font))
    assert find_soundfont(config) == env_font  # $STUDIO_SOUNDFONT first

    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    assert find_soundfont(config) == folder / "a.sf3"  # set but missing: skipped

    for path in folder.iterdir():
        path.unlink()
    assert find_soundfont(config) == system  # then the system fonts, first existing one
    assert find_soundfont(SynthConfig(system_soundfonts=())) is None
    assert find_soundfont(SynthConfig(soundfont=env_font)) == env_font  # explicit font wins
    assert find_soundfont(SynthConfig(soundfont=tmp_path / "gone.sf2")) is None  # and has no fallback


def test_status_says_when_no_soundfont(monkeypatch, tmp_path):
    monkeypatch.setattr(synth, "find_soundfont", lambda config=None: None)
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    ok, message = synth_status()
    assert ok is False
    assert "SoundFont" in message and "STUDIO_SOUNDFONT" in message and "gone.sf2" in message
    assert "\n" not in message
    with pytest.raises(SynthUnavailable, match="no SoundFont found"):
        render_midi(_song())


def test_status_without_fluidsynth(monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # `import fluidsynth` raises ImportError
    monkeypatch.setattr(synth, "_FLUID", None)
    ok, message = synth_status()
    assert ok is False
    assert "FluidSynth is not installed" in message and "apt-get install fluidsynth" in message
    with pytest.raises(SynthUnavailable) as info:
        render_midi(_song())
    assert isinstance(info.value, StudioError)


def test_status_mentions_missing_env_font(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    ok, message = synth_status()
    if ok:
        assert message.startswith("FluidSynth ") and "gone.sf2 does not exist" in message
    else:
        assert "gone.sf2" in message or "FluidSynth" in message


# --- WAV writing and stats (no FluidSynth needed) --------------------------------------------


def test_write_wav_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    audio = rng.integers(-32768, 32767, size=(1000, 2), dtype=np.int16)
    path = write_wav(tmp_path / "sub" / "x.wav", audio, sample_rate=22050)
    assert path == tmp_path / "sub" / "x.wav" and not list(path.parent.glob("*.part"))
    with wave.open(str(path), "rb") as wav:
        params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes())
        assert params == (2, 2, 22050, 1000)
        back = np.frombuffer(wav.readframes(1000), dtype="<i2").reshape(-1, 2)
    np.testing.assert_array_equal(back, audio)

    mono = np.arange(10, dtype=np.int16)
    with wave.open(str(write_wav(tmp_path / "m.wav", mono)), "rb") as wav:
        back = np.frombuffer(wav.readframes(10), dtype="<i2").reshape(-1, 2)
    np.testing.assert_array_equal(back, np.stack([mono, mono], axis=1))
    with pytest.raises(TypeError):
        write_wav(tmp_path / "f.wav", np.zeros((4, 2), dtype=np.float32))


def test_audio_stats():
    square = np.full((44100, 2), 32767, dtype=np.int16)
    square[::2] = -32768
    stats = audio_stats(square)
    assert stats["duration_s"] == pytest.approx(1.0)
    assert stats["clipped_samples"] == 88200
    assert stats["rms_dbfs"] == pytest.approx(0.0, abs=0.01)
    half = (square // 2).astype(np.int16)
    assert audio_stats(half)["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)
    assert audio_stats(half)["clipped_samples"] == 0
    assert audio_stats(np.zeros((10, 2), dtype=np.int16))["rms_dbfs"] == -120.0


def test_rejects_what_is_not_midi(tmp_path):
    with pytest.raises(InputError, match="not a Standard MIDI File"):
        render_midi(b"RIFF....WAVE")
    with pytest.raises(InputError, match="not found"):
        render_midi(tmp_path / "nope.mid")


# --- rendering (FluidSynth and a SoundFont needed) -------------------------------------------


@needs_synth
def test_render_small_song():
    audio = render_midi(_song())
    assert audio.dtype == np.int16 and audio.ndim == 2 and audio.shape[1] == 2
    stats = audio_stats(audio)
    assert 4.0 <= stats["duration_s"] <= 4.0 + 3.0
    assert stats["rms_dbfs"] > -40.0
    assert stats["clipped_samples"] == 0
    assert stats["peak_dbfs"] <= -1.0 + 0.01
    assert not np.array_equal(audio[:, 0], audio[:, 1])  # stereo (pan, reverb), not mono twice
    # the drums, the violin and the piano all sound: the first beat is loud from its very start
    assert np.abs(audio[: 4410].astype(np.int32)).max() > 1000


@needs_synth
def test_tail_is_cut_at_silence_and_capped():
    # the music ends at 6 s (end of track 2 s after the last note-off): the tail adds only a window
    quiet_end = render_midi(_midi_bytes({0: [(0, 1, 60, 100)]}, end_beats=12))
    assert 6.0 <= audio_stats(quiet_end)["duration_s"] <= 6.0 + 0.3
    # hung notes (no note-off) ring to the cap, 2.5 s after the music, and fade out to silence
    config = SynthConfig(max_tail_seconds=1.0)
    hung = render_midi(_midi_bytes({0: [(0, None, 60, 100)]}, programs={0: 19}, end_beats=2), config)
    assert 1.0 + 1.0 <= audio_stats(hung)["duration_s"] <= 1.0 + 1.0 + 0.4
    ringing = np.abs(hung[-44100:-22050].astype(np.int32)).max()
    assert ringing > 100  # still ringing before the cap
    assert np.abs(hung[-8:].astype(np.int32)).max() <= 2  # the faded end: no click
    assert np.abs(hung[-64:].astype(np.int32)).max() < ringing / 10


@needs_synth
def test_loud_input_never_clips():
    loud = render_midi(_loud(), SynthConfig(gain=2.0))
    stats = audio_stats(loud)
    assert stats["clipped_samples"] == 0
    assert stats["peak_dbfs"] == pytest.approx(-1.0, abs=0.05)  # scaled down exactly to the limit
    # a quiet piece is never scaled up
    soft = render_midi(_midi_bytes({0: [(0, 1, 60, 20)]}))
    assert audio_stats(soft)["peak_dbfs"] < -12.0


def _assert_nearly_equal(a: np.ndarray, b: np.ndarray) -> None:
    """Equal but for FluidSynth's per-voice leftovers: at most 64 LSB (-54 dBFS), in few samples.

    FluidSynth keeps a little DSP state in the voices it recycles (filter ramps) and estimates each
    sample's noise floor on its first use, so a note's first milliseconds can differ very slightly
    with what the synth played before, even after a full reset.
    """
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.int32) - b)
    assert diff.max() <= 64
    assert np.count_nonzero(diff) <= 0.02 * diff.size


@needs_synth
def test_renders_are_reproducible_and_independent():
    song, other = _song(), _other_song()
    render_midi(song)
    after_same = render_midi(song)
    assert np.array_equal(render_midi(song), after_same)  # same MIDI, same predecessor: identical
    # `other` leaves a pitch bend, channel volume 20, the sustain pedal and hung notes behind: if
    # the reset missed any of them, the next render would differ everywhere, not by a few LSB
    leaky = render_midi(other)
    after_other = render_midi(song)
    _assert_nearly_equal(after_other, after_same)
    assert not np.array_equal(leaky[: len(after_same)], after_same[: len(leaky)])


@needs_synth
def test_path_bytes_and_threads_agree(tmp_path):
    song, other = _song(), _other_song()
    path = tmp_path / "song.mid"
    path.write_bytes(song)
    by_bytes = render_midi(song)
    np.testing.assert_array_equal(render_midi(path), by_bytes)
    np.testing.assert_array_equal(render_midi(str(path)), by_bytes)
    other_audio = render_midi(other)
    with ThreadPoolExecutor(max_workers=2) as pool:  # the lock serialises renders from threads
        results = list(pool.map(render_midi, [song, other, song, other]))
    for got, want in zip(results, [by_bytes, other_audio, by_bytes, other_audio], strict=True):
        _assert_nearly_equal(got, want)


@needs_synth
def test_corrupt_midi_is_an_input_error():
    with pytest.raises(InputError, match="could not read the MIDI data"):
        render_midi(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0garbage")
    assert audio_stats(render_midi(_song()))["rms_dbfs"] > -40.0  # and the synth still works


@needs_synth
def test_block_size_does_not_change_the_audio():
    # 64-frame blocks: many calls, and the float buffer spills over several chunks
    small = render_midi(_song(), SynthConfig(block_frames=64))
    large = render_midi(_song(), SynthConfig(block_frames=16384))
    n = min(len(small), len(large))
    assert n >= 4.0 * 44100
    _assert_nearly_equal(small[:n], large[:n])


@needs_synth
def test_render_to_wav(tmp_path):
    out = render_to_wav(_song(), tmp_path / "song.wav")
    with wave.open(str(out), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 44100)
        back = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    _assert_nearly_equal(back, render_midi(_song()))


@needs_synth
@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="the fluidsynth CLI is not installed")
def test_sounds_like_the_fluidsynth_cli(tmp_path):
    """Same player, same sample clock: the CLI's WAV lines up with ours sample for sample."""
    mid, wav_path = tmp_path / "song.mid", tmp_path / "cli.wav"
    mid.write_bytes(_song())
    config = SynthConfig()
    subprocess.run(
        ["fluidsynth", "-ni", "-g", str(config.gain), "-F", str(wav_path), "-r", "44100",
         str(find_soundfont(config)), str(mid)],
        check=True, capture_output=True, timeout=60,
    )
    with wave.open(str(wav_path), "rb") as wav:
        cli = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    ours = render_midi(mid, config)
    # FluidSynth 2.3.1's player runs on after the end of track until no voice sounds, plus 2 s;
    # ours stops at silence (-60 dBFS) or after `max_tail_seconds`
    assert len(cli) >= 4.0 * 44100 and len(ours) >= 4.0 * 44100
    assert abs(len(cli) - len(ours)) <= 4.5 * 44100
    n = min(len(cli), len(ours))
    x, y = ours[:n].astype(np.float64).ravel(), cli[:n].astype(np.float64).ravel()
    scale = np.dot(x, y) / np.dot(x, x)  # 1.0 unless our limiter scaled down
    assert scale == pytest.approx(1.0, abs=0.01)
    assert np.abs(x * scale - y).max() < 0.01 * 32767  # same samples at the same instants
    assert np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)) > 0.999


def test_config_validation():
    with pytest.raises(ValueError):
        SynthConfig(peak_dbfs=1.0)
    with pytest.raises(ValueError):
        SynthConfig(gain=0.0)
    assert Path(SynthConfig().system_soundfonts[0]).suffix == ".sf2"

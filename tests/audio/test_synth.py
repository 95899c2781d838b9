"""studio.audio.synth: MIDI -> int16 stereo audio with FluidSynth in process, and the WAV writer."""

from __future__ import annotations

import ctypes
import io
import shutil
import struct
import subprocess
import sys
import threading
import time
import types
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import midi_factory as mf
import mido
import numpy as np
import pytest
from synth_checks import needs_fluidsynth

from studio.audio import loudness
from studio.audio.synth import (
    SynthConfig,
    SynthUnavailable,
    audio_stats,
    engine,
    find_soundfont,
    fluid,
    render,
    render_midi,
    render_to_wav,
    soundfont,
    synth_status,
    write_wav,
)
from studio.audio.synth.budget import audio_cut
from studio.audio.synth.split import scan_midi
from studio.core.errors import InputError, StudioError

SYNTH_OK, SYNTH_WHY = synth_status()
needs_synth = pytest.mark.skipif(not SYNTH_OK, reason=f"FluidSynth unavailable: {SYNTH_WHY}")

TPB = 480


def _midi_bytes(
    parts: dict[int, list[tuple]], programs: dict[int, int] | None = None, end_beats: float | None = None, controls: list[tuple] = ()
) -> bytes:
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


# --- SoundFont search and status (the search needs no FluidSynth; the status looks at the font once FluidSynth loads) ---


def test_find_soundfont_search_order(tmp_path, monkeypatch):
    folder = tmp_path / "soundfonts"
    folder.mkdir()
    for name in ("b.sf2", "a.sf3", "notes.txt"):
        (folder / name).write_bytes(b"not a real font")
    system = tmp_path / "system.sf2"
    system.write_bytes(b"x")
    config = SynthConfig(system_soundfonts=(str(tmp_path / "missing.sf2"), str(system)))
    monkeypatch.setattr(soundfont, "REPO_SOUNDFONTS", folder)
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


@needs_fluidsynth
def test_status_says_when_no_soundfont(monkeypatch, tmp_path):
    monkeypatch.setattr(engine, "find_soundfont", lambda config=None: None)
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    ok, message = synth_status()
    assert ok is False
    assert "SoundFont" in message and "STUDIO_SOUNDFONT" in message and "gone.sf2" in message
    assert "\n" not in message
    with pytest.raises(SynthUnavailable, match="no SoundFont found"):
        render_midi(_song())


def test_a_changed_pyfluidsynth_is_one_clear_error(monkeypatch):
    """Without the private library handle the renders go through, one readable line, no AttributeError."""
    fake = types.ModuleType("fluidsynth")
    fake.Synth = object  # pyfluidsynth's public class is there, its `_fl` handle is not
    monkeypatch.setitem(sys.modules, "fluidsynth", fake)
    monkeypatch.setattr(fluid, "_FLUID", None)
    ok, message = synth_status()
    assert ok is False and message.startswith("pyfluidsynth changed: `fluidsynth._fl`")
    assert "requirements.txt" in message and "\n" not in message
    with pytest.raises(SynthUnavailable, match=r"^pyfluidsynth changed: "):
        render_midi(_song())


@needs_synth
def test_the_real_pyfluidsynth_without_its_handle(monkeypatch):
    import fluidsynth

    monkeypatch.delattr(fluidsynth, "_fl")
    monkeypatch.setattr(fluid, "_FLUID", None)
    with pytest.raises(SynthUnavailable, match=r"^pyfluidsynth changed: `fluidsynth._fl`"):
        render_midi(_song())


def test_status_without_fluidsynth(monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # `import fluidsynth` raises ImportError
    monkeypatch.setattr(fluid, "_FLUID", None)
    ok, message = synth_status()
    assert ok is False
    assert "FluidSynth is not installed" in message and "apt-get install fluidsynth" in message
    with pytest.raises(SynthUnavailable) as info:
        render_midi(_song())
    assert isinstance(info.value, StudioError)


@needs_fluidsynth
def test_status_mentions_missing_env_font(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    ok, message = synth_status()
    assert "gone.sf2" in message and "\n" not in message  # with another font found or with none, the missing one is named
    if ok:
        assert message.startswith("FluidSynth ") and "gone.sf2 does not exist" in message


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
    assert np.abs(audio[:4410].astype(np.int32)).max() > 1000


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
    assert np.abs(hung[-8:].astype(np.int32)).max() <= ringing / 100  # the faded end: no click
    assert np.abs(hung[-1].astype(np.int32)).max() <= 1
    assert np.abs(hung[-64:].astype(np.int32)).max() < ringing / 10


RAW = SynthConfig(loudness_lufs=None)  # no loudness step: the level FluidSynth and `gain` give


@needs_synth
def test_every_render_is_at_the_studio_loudness():
    """Loud or soft, a render is at -16 LUFS with its true peak at most -1 dBTP, never clipped."""
    for midi_data, config in ((_loud(), SynthConfig(gain=2.0)), (_midi_bytes({0: [(0, 1, 60, 20)]}), SynthConfig())):
        audio = render_midi(midi_data, config)
        x = audio.astype(np.float64) / 32767.0
        assert loudness.integrated_loudness(x, 44100) == pytest.approx(-16.0, abs=0.1)
        assert 20 * np.log10(loudness.true_peak(x)) <= -1.0 + 0.01
        assert audio_stats(audio)["clipped_samples"] == 0


@needs_synth
def test_without_the_loudness_step_loud_input_never_clips():
    loud = render_midi(_loud(), SynthConfig(gain=2.0, loudness_lufs=None))
    stats = audio_stats(loud)
    assert stats["clipped_samples"] == 0
    assert stats["peak_dbfs"] == pytest.approx(-1.0, abs=0.05)  # scaled down exactly to the limit
    # a quiet piece is never scaled up
    soft = render_midi(_midi_bytes({0: [(0, 1, 60, 20)]}), RAW)
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
    render_midi(song, RAW)
    after_same = render_midi(song, RAW)
    assert np.array_equal(render_midi(song, RAW), after_same)  # same MIDI, same predecessor: identical
    # `other` leaves a pitch bend, channel volume 20, the sustain pedal and hung notes behind: if
    # the reset missed any of them, the next render would differ everywhere, not by a few LSB
    # (without the loudness step, whose gain would scale those LSB)
    leaky = render_midi(other, RAW)
    after_other = render_midi(song, RAW)
    _assert_nearly_equal(after_other, after_same)
    assert not np.array_equal(leaky[: len(after_same)], after_same[: len(leaky)])


@needs_synth
def test_path_bytes_and_threads_agree(tmp_path):
    song, other = _song(), _other_song()
    path = tmp_path / "song.mid"
    path.write_bytes(song)
    by_bytes = render_midi(song, RAW)  # RAW: FluidSynth's voice leftovers unscaled by the loudness gain
    np.testing.assert_array_equal(render_midi(path, RAW), by_bytes)
    np.testing.assert_array_equal(render_midi(str(path), RAW), by_bytes)
    other_audio = render_midi(other, RAW)
    with ThreadPoolExecutor(max_workers=2) as pool:  # the lock serialises renders from threads
        results = list(pool.map(lambda m: render_midi(m, RAW), [song, other, song, other]))
    for got, want in zip(results, [by_bytes, other_audio, by_bytes, other_audio], strict=True):
        _assert_nearly_equal(got, want)


@needs_synth
def test_corrupt_midi_is_an_input_error():
    with pytest.raises(InputError, match="could not read the MIDI data"):
        render_midi(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0garbage")
    assert audio_stats(render_midi(_song()))["rms_dbfs"] > -40.0  # and the synth still works


def _without_end_of_track(data: bytes) -> bytes:
    """A one-track file with its end-of-track event cut off (FluidSynth plays it; the scanner gives up)."""
    assert data[-4:] == b"\x00\xff\x2f\x00"
    body = data[22:-4]
    return data[:14] + b"MTrk" + struct.pack(">I", len(body)) + body


@needs_synth
def test_a_file_longer_than_the_limit_is_refused_not_rendered():
    """Issue 23: a text event an hour after an 8 s tune rendered an hour of silence (635 MB)."""
    start = time.perf_counter()
    with pytest.raises(InputError, match="plays for more than 15 minutes"):
        render_midi(mf.events_after_music("text"))  # known long by its tempo map: refused at once
    with pytest.raises(InputError, match=r"plays for more than 0\.2 minutes"):  # found long while playing
        render_midi(_without_end_of_track(mf.events_after_music("text", delay=96 * 60)), SynthConfig(max_music_seconds=12))
    assert time.perf_counter() - start < 5  # a wide margin: about 0.3 s (25 s and 2 GB before)
    assert audio_stats(render_midi(mf.events_after_music("text", delay=0)))["duration_s"] < 8 + 3


@needs_synth
def test_block_size_does_not_change_the_audio():
    # 64-frame blocks: many calls, and the float buffer spills over several chunks
    small = render_midi(_song(), SynthConfig(block_frames=64))
    large = render_midi(_song(), SynthConfig(block_frames=16384))
    n = min(len(small), len(large))
    assert n >= 4.0 * 44100
    _assert_nearly_equal(small[:n], large[:n])


@needs_synth
def test_rendering_ahead_to_the_end_of_the_music_changes_nothing_audible(monkeypatch):
    # render_midi renders up to just before the end of the music (by the file's tempo map) in a
    # few large calls, then looks for the end block by block: the audio of looking after every
    # block from the start, but for FluidSynth's voice leftovers, and exactly as long
    ahead = render_midi(_song())
    monkeypatch.setattr(render, "_sure_music_frames", lambda *_args: 0)
    by_block = render_midi(_song())
    assert len(ahead) == len(by_block) >= 4.0 * 44100
    _assert_nearly_equal(ahead, by_block)


@needs_synth
@pytest.mark.parametrize(
    "config", [SynthConfig(loudness_lufs=None), SynthConfig(parallel_min_seconds=0.0, workers=2, loudness_lufs=None)], ids=["one", "two"]
)
def test_a_misjudged_end_of_the_music_renders_again_block_by_block(monkeypatch, config):
    want = render_midi(_song(), config)
    sure = render._sure_music_frames
    monkeypatch.setattr(render, "_sure_music_frames", lambda seconds, cfg, block: sure(seconds and seconds + 10.0, cfg, block))
    play, ahead = render._play, []

    def spy(*args, **kwargs):
        ahead.append(kwargs.get("music_seconds") is not None)
        return play(*args, **kwargs)

    monkeypatch.setattr(render, "_play", spy)
    got = render_midi(_song(), config)
    assert ahead[-2:] == [True, False]  # rendered past the end, so once more without rendering ahead
    assert len(got) == len(want)
    _assert_nearly_equal(got, want)


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
    config = SynthConfig(loudness_lufs=None)  # the CLI's level: no loudness step
    subprocess.run(
        ["fluidsynth", "-ni", "-g", str(config.gain), "-F", str(wav_path), "-r", "44100", str(find_soundfont(config)), str(mid)],
        check=True,
        capture_output=True,
        timeout=60,
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


def _dense_notes(seconds: float, per_second: int = 400) -> bytes:
    """`per_second` very short piano notes a second for `seconds`: each note's release keeps sounding,
    so hundreds of voices sound at once (issue 23's 20,000 notes in 50 s)."""
    step = 2.0 / per_second  # beats at 120 qpm
    notes = [(i * step, step / 2, 48 + i % 36, 90) for i in range(int(seconds * per_second))]
    return _midi_bytes({0: notes})


def test_the_voice_limit_shrinks_with_the_length_of_the_music():
    config = SynthConfig()
    assert config.polyphony_for(10.0) == 256  # a short take may use FluidSynth's every voice
    assert config.polyphony_for(25.0) == 128
    assert config.polyphony_for(600.0) == config.polyphony_for(60.0) == 64  # never under the floor
    assert config.polyphony_for(None) == 64  # length unknown: the floor
    with pytest.raises(ValueError):
        SynthConfig(min_polyphony=300)
    with pytest.raises(ValueError):
        SynthConfig(voice_seconds=0.0)


@needs_synth
def test_dense_music_sounds_at_most_the_voice_limit(monkeypatch):
    """Issue 23: 20,000 notes in 50 s kept 256 voices sounding on each engine (4.5 s to render where
    a take of that length takes under 1 s); an engine now sounds at most `polyphony_for` voices."""
    lib = fluid.get_fluid().fs._fl
    active = lib.fluid_synth_get_active_voice_count
    active.argtypes, active.restype = [ctypes.c_void_p], ctypes.c_int
    seen: list[int] = []
    real_render = fluid.Fluid.render

    def counting(self, synth, frames, address):
        status = real_render(self, synth, frames, address)
        seen.append(active(synth))
        return status

    monkeypatch.setattr(fluid.Fluid, "render", counting)
    data = _dense_notes(6.0)
    render_midi(data, SynthConfig(loudness_lufs=None))
    assert max(seen) > 100  # unbounded, this music keeps well over a hundred voices sounding
    seen.clear()
    limited = SynthConfig(loudness_lufs=None, voice_seconds=60.0, min_polyphony=24)  # 6 s: 24 voices
    audio = render_midi(data, limited)
    # FluidSynth counts a stolen voice until the end of the block: the count may pass the limit
    # by one note's voices (two, a stereo sample) at the block a note is started on
    assert 0 < max(seen) <= 24 + 2
    assert audio_stats(audio)["duration_s"] < 6 + 3  # every note still played, to the music's end


def test_config_validation():
    with pytest.raises(ValueError):
        SynthConfig(peak_dbfs=1.0)
    with pytest.raises(ValueError):
        SynthConfig(gain=0.0)
    assert Path(SynthConfig().system_soundfonts[0]).suffix == ".sf2"


# --- rendering long music on several engines at once ------------------------------------------

# every multi-channel song in parallel, and the same settings always on one engine; no loudness
# step, whose gain (measured on each) would turn the voice leftovers' LSB into a level difference
PARALLEL = SynthConfig(parallel_min_seconds=0.0, workers=2, loudness_lufs=None)
SINGLE = SynthConfig(parallel_min_seconds=1e9, workers=2, loudness_lufs=None)


def _assert_same_mix(a: np.ndarray, b: np.ndarray) -> None:
    """The same audio but for FluidSynth's voice leftovers, which differ when voices are shared out.

    FluidSynth ramps the first 64 samples of a note from the pan of the previous note its voice
    played (the fix of FluidSynth issue #768), and channels rendered apart hand their voices to
    other notes than when rendered together: some onsets differ for 1.5 ms, the difference stays
    60 dB below the music (measured: -70 to -84 dB, at most 170 LSB on a loud chord stack).
    """
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.float64) - b)
    assert diff.max() <= 256
    assert np.count_nonzero(diff) <= 0.03 * diff.size
    assert np.sqrt(np.mean(diff**2)) <= 1e-3 * np.sqrt(np.mean(np.square(b.astype(np.float64))))


@pytest.fixture
def parallel_calls(monkeypatch):
    """The results of `_render_parallel` during a test: True for a summed render, False for a refusal."""
    calls: list[bool] = []
    real = render._render_parallel

    def spy(*args, **kwargs):
        frames = real(*args, **kwargs)
        calls.append(frames is not None)
        return frames

    monkeypatch.setattr(render, "_render_parallel", spy)
    return calls


def _band(programs: dict[int, int], bars: int = 3, pan: bool = True) -> bytes:
    """Chords on channel 0, a melody on 1, a bass on 2 (2 s a bar): a pedal, a pitch bend, a pan."""
    chords = [(b * 4 + half * 2, 2, p, 80) for b in range(bars) for half in (0, 1) for p in (48, 52, 55)]
    melody = [(i * 0.5, 0.5, 72 + (i * 5) % 12, 90) for i in range(bars * 8)]
    bass = [(i, 1, 36 + (i % 4) * 2, 100) for i in range(bars * 4)]
    controls = [
        (0, mido.Message("control_change", channel=0, control=64, value=127)),
        (4, mido.Message("control_change", channel=0, control=64, value=0)),
        (2, mido.Message("pitchwheel", channel=1, pitch=2000)),
        (3, mido.Message("pitchwheel", channel=1, pitch=0)),
    ]
    if pan:
        controls.append((0, mido.Message("control_change", channel=2, control=10, value=30)))
    return _midi_bytes({0: chords, 1: melody, 2: bass}, programs=programs, controls=controls)


def test_split_keeps_every_event_but_the_other_channels_notes():
    song = _band({0: 0, 1: 40, 2: 32})
    split = scan_midi(song)
    assert split is not None
    assert split.seconds == pytest.approx(6.0, abs=0.01)  # 3 bars of 4 beats at 120 qpm
    assert sorted(split.weights) == [0, 1, 2] and split.sounding_channels() == 3
    groups = split.groups(2)
    assert sorted(ch for g in groups for ch in g) == [0, 1, 2] and len(groups) == 2
    # a group that starts loaded (its engine plays the melody first) gets less: the heaviest channel
    # goes to the other, and a load over everything leaves it empty (dropped)
    heaviest = max(split.weights, key=lambda c: split.weights[c])
    assert heaviest in split.groups(2, [0, split.weights[heaviest]])[0]
    assert split.groups(2, [0, sum(split.weights.values()) * 2]) == [[0, 1, 2]]

    def events(data: bytes) -> list[tuple[int, str]]:
        out, now = [], 0
        for msg in mido.MidiFile(file=io.BytesIO(data)).tracks[0]:
            now += msg.time
            out.append((now, str(msg.copy(time=0))))
        return out

    everything = events(song)
    assert events(split.midi([0, 1, 2])) == everything  # re-written with every channel: the same file
    only_bass = events(split.midi([2]))
    is_other_note = [m.startswith("note_") and "channel=2" not in m for _, m in everything]
    assert only_bass == [e for e, drop in zip(everything, is_other_note, strict=True) if not drop]
    assert only_bass[-1] == everything[-1]  # the end of track at the same tick


def test_split_reads_running_status_sysex_and_several_tracks():
    def track(*events: bytes) -> bytes:
        body = b"".join(events) + b"\x00\xff\x2f\x00"
        return b"MTrk" + len(body).to_bytes(4, "big") + body

    header = b"MThd\x00\x00\x00\x06\x00\x01\x00\x03\x01\xe0"
    conductor = track(b"\x00\xff\x51\x03\x07\xa1\x20", b"\x83\x60\xff\x51\x03\x0f\x42\x40")  # 120, then 60 qpm
    # running status: a note-on on channel 0, two more without a status byte, a SysEx (GM on),
    # then a control change and another (the pedal) without a status byte
    piano = track(
        b"\x00\x90\x3c\x64", b"\x00\x40\x64", b"\x83\x60\x3c\x00", b"\x00\xf0\x05\x7e\x7f\x09\x01\xf7", b"\x00\xb0\x07\x50", b"\x00\x40\x00"
    )
    bass = track(b"\x00\x91\x24\x64", b"\x8b\x20\x81\x24\x00")  # 3 beats
    data = header + conductor + piano + bass + b"junk"  # trailing bytes are kept as they are
    split = scan_midi(data)
    assert split is not None
    assert split.seconds == pytest.approx(0.5 + 2 * 1.0, abs=1e-6)  # a beat at 120, then 2 at 60 qpm
    assert split.sounding_channels() == 2
    only_piano = mido.MidiFile(file=io.BytesIO(split.midi([0])[: -len(b"junk")]))
    kinds = [[m.type for m in t] for t in only_piano.tracks]
    assert kinds[1] == ["note_on", "note_on", "note_on", "sysex", "control_change", "control_change", "end_of_track"]
    assert kinds[2] == ["end_of_track"] and sum(m.time for m in only_piano.tracks[2]) == 1440
    assert split.midi([0]).endswith(b"junk")
    # what FluidSynth reads its own way, or not at all, renders on one engine as it is
    after_meta = track(b"\x00\x90\x3c\x64", b"\x00\xff\x01\x01x", b"\x00\x40\x64")
    assert scan_midi(header[:-4] + b"\x00\x01" + header[-2:] + after_meta) is None
    no_end = b"MTrk\x00\x00\x00\x04\x00\x90\x3c\x64"
    assert scan_midi(header[:-4] + b"\x00\x01" + header[-2:] + no_end) is None


@needs_synth
def test_rewritten_midi_renders_identically():
    """The split's MIDI with every channel is the same music to FluidSynth, sample for sample."""
    song = _song()
    split = scan_midi(song)
    assert split is not None
    render_midi(song, SINGLE)
    want = render_midi(song, SINGLE)
    render_midi(song, SINGLE)  # the same predecessor for both
    assert np.array_equal(render_midi(split.midi(sorted(split.weights)), SINGLE), want)


@needs_synth
def test_parallel_render_equals_single_engine(parallel_calls):
    """Summing the channel groups' renders gives the one-engine render (up to FluidSynth's voice leftovers)."""
    song = _band({0: 0, 1: 40, 2: 32})
    single = render_midi(song, SINGLE)
    assert parallel_calls == []
    parallel = render_midi(song, PARALLEL)
    assert parallel_calls == [True]
    assert parallel.shape == single.shape  # same music end, same tail cut
    stats = audio_stats(parallel)
    assert 6.0 <= stats["duration_s"] <= 6.0 + 2.6
    assert stats["rms_dbfs"] > -40.0 and stats["clipped_samples"] == 0 and stats["peak_dbfs"] <= -1.0 + 0.01
    _assert_same_mix(parallel, single)
    loud = render_midi(_loud(), SynthConfig(gain=2.0, parallel_min_seconds=0.0, workers=2, loudness_lufs=None))
    assert audio_stats(loud)["peak_dbfs"] == pytest.approx(-1.0, abs=0.05)  # the limiter acts on the sum
    assert parallel_calls == [True, True]


FLUID_R3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@pytest.fixture
def fresh_pool(monkeypatch):
    """Swap in empty engine pools: `fresh_pool()` starts one whose voices have played nothing."""
    pools: list = []

    def start():
        pools.append(engine.Pool())
        monkeypatch.setattr(engine, "POOL", pools[-1])

    yield start
    for pool in pools:
        pool.clear()


@needs_synth
@pytest.mark.skipif(not FLUID_R3.is_file(), reason="the exact comparison needs FluidR3_GM's mono instruments")
def test_parallel_render_is_exact_for_centred_instruments(parallel_calls, fresh_pool):
    """Guitars and a bass (one centred sample per note) on fresh engines: a few LSB at most.

    Nothing is left in fresh voices, and these instruments leave no pan behind them, so the sum of
    the channels rendered apart is the one-engine render up to float rounding.
    """
    song = _band({0: 24, 1: 25, 2: 32}, pan=False)
    fresh_pool()
    single = render_midi(song, SynthConfig(soundfont=FLUID_R3, parallel_min_seconds=1e9, workers=3))
    fresh_pool()
    parallel = render_midi(song, SynthConfig(soundfont=FLUID_R3, parallel_min_seconds=0.0, workers=3))
    assert parallel_calls == [True]
    assert parallel.shape == single.shape
    assert np.abs(parallel.astype(np.int32) - single).max() <= 8  # measured: 4, at one onset
    assert audio_stats(parallel)["rms_dbfs"] > -40.0


@needs_synth
def test_parallel_tail_rule_on_the_sum(parallel_calls):
    # hung notes ring to the cap and fade out; the sum is cut exactly where one engine cuts
    config = SynthConfig(max_tail_seconds=1.0, parallel_min_seconds=0.0, workers=2)
    hung = render_midi(_other_song(), config)
    assert parallel_calls == [True]
    single = render_midi(_other_song(), SynthConfig(max_tail_seconds=1.0, parallel_min_seconds=1e9, workers=2))
    assert 1.0 + 1.0 <= audio_stats(hung)["duration_s"] <= 1.0 + 1.0 + 0.4
    assert np.abs(hung[-8:].astype(np.int32)).max() <= 2  # faded out
    _assert_same_mix(hung, single)
    # a quiet end: the tail stops at the first silent window of the sum
    quiet = _midi_bytes({0: [(0, 1, 60, 100)], 1: [(0.5, 1, 67, 100)]}, end_beats=12)
    quiet_audio = render_midi(quiet, SynthConfig(parallel_min_seconds=0.0, workers=2))
    assert 6.0 <= audio_stats(quiet_audio)["duration_s"] <= 6.0 + 0.3
    assert quiet_audio.shape == render_midi(quiet, SINGLE).shape


@needs_synth
def test_single_channel_and_short_music_use_one_engine(parallel_calls):
    solo = _midi_bytes({0: [(i, 1, 60 + i, 90) for i in range(8)]}, programs={0: 0})
    audio = render_midi(solo, PARALLEL)
    assert parallel_calls == []  # one channel with notes: nothing to share out
    assert audio_stats(audio)["rms_dbfs"] > -40.0
    _assert_nearly_equal(audio, render_midi(solo, SINGLE))
    render_midi(_song(), SynthConfig(workers=2))  # 4 s, under parallel_min_seconds
    render_midi(_song(), SynthConfig(parallel_min_seconds=0.0, workers=1))  # one worker
    assert parallel_calls == []


@needs_synth
def test_short_music_too_dense_for_one_engine_renders_on_several(parallel_calls, fresh_pool):
    """Under `parallel_min_seconds`, music whose work on one engine is over the budget renders on
    several (its channels split), so that it is not cut where two engines have the time."""
    busy = _midi_bytes(
        {0: [(i * 0.1, 0.05, 48 + i % 36, 90) for i in range(200)], 1: [(i * 0.1, 0.05, 40 + i % 24, 80) for i in range(200)]}
    )
    split = scan_midi(busy)
    fresh_pool()
    config = SynthConfig(workers=2, render_budget=600.0)  # between one engine's work and a half of it
    assert audio_cut(split, 1, 1, config) is not None and audio_cut(split, 2, 1, config) is None
    said: list[str] = []
    audio = render_midi(busy, config, warnings=said)
    assert parallel_calls == [True] and said == []
    _assert_same_mix(audio, render_midi(busy, SynthConfig(workers=1, render_budget=None)))


@needs_synth
def test_parallel_renders_from_two_threads(parallel_calls):
    band, song = _band({0: 0, 1: 40, 2: 32}), _song()
    want = {band: render_midi(band, SINGLE), song: render_midi(song, SINGLE)}
    jobs = [band, song, band, song]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda m: render_midi(m, PARALLEL), jobs))
    for got, midi in zip(results, jobs, strict=True):
        _assert_same_mix(got, want[midi])
    assert len(parallel_calls) >= 1  # a render finding one engine free renders on that one alone
    assert engine.POOL.engines() <= 2


def test_pool_shares_engines_between_renders(monkeypatch):
    """Renders borrow free engines (most recent first), create up to `workers`, else wait; never deadlock."""
    made: list[object] = []

    class FakeEngine:
        def __init__(self, fluid, soundfont, sample_rate, gain):
            self.key = (soundfont, sample_rate)
            made.append(self)

        def delete(self):
            made.remove(self)

    monkeypatch.setattr(engine, "Engine", FakeEngine)
    monkeypatch.setattr(engine, "get_fluid", lambda: None)
    monkeypatch.setattr(engine, "find_soundfont", lambda config=None: Path("/x/font.sf2"))
    pool = engine.Pool()
    config = SynthConfig(workers=2)
    a = pool.acquire(config, 4)
    assert len(a) == 2 and pool.engines() == 2  # capped by workers
    pool.release(a[:1])
    b = pool.acquire(config, 2)
    assert b == a[:1]  # takes what is free now, never waits for a second engine
    got: list[list] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(config, 1)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # nothing free and no room: it waits
    pool.release(b)
    waiter.join(5)
    assert got == [b]
    pool.release(got[0] + a[1:])
    one = pool.acquire(SynthConfig(workers=1), 1)
    assert len(one) == 1 and len(made) == 2  # more engines than this config's workers: none deleted
    pool.release(one)
    other = pool.acquire(SynthConfig(workers=2, sample_rate=22050), 2)
    assert len(other) == 2 and len(made) == 2  # idle engines of another rate make room
    assert all(e.key[1] == 22050 for e in made)


def test_parallel_config_validation():
    with pytest.raises(ValueError):
        SynthConfig(workers=-1)
    with pytest.raises(ValueError):
        SynthConfig(parallel_min_seconds=-1.0)
    assert 1 <= SynthConfig().worker_count() <= 4
    assert SynthConfig(workers=3).worker_count() == 3


def _tempo_changes() -> bytes:
    """Four bars of quarter notes whose tempo changes three times (twice at one tick), type 1."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    for i in range(16):
        if i in (4, 9):
            track.append(mido.MetaMessage("set_tempo", tempo=300_000 if i == 4 else 900_000, time=0))
        if i == 9:
            track.append(mido.MetaMessage("set_tempo", tempo=750_000, time=0))  # the later one holds
        track.append(mido.Message("note_on", note=60 + i, velocity=80, time=0))
        track.append(mido.Message("note_off", note=60 + i, time=TPB))
    track.append(mido.MetaMessage("end_of_track", time=0))
    buf = io.BytesIO()
    mido.MidiFile(type=1, ticks_per_beat=TPB, tracks=[track]).save(file=buf)
    return buf.getvalue()


def test_the_split_times_notes_by_the_tempo_map_as_the_reader_does():
    from studio.core.midi import read_midi

    data = _tempo_changes()
    split = scan_midi(data)
    score = read_midi(data).score
    ticks = np.array([0, 1, TPB * 4, TPB * 4 + 7, TPB * 9, TPB * 9 + 100, TPB * 16, TPB * 40])
    assert np.allclose(split.seconds_at(ticks), [score.tick_to_seconds(int(t)) for t in ticks])
    for seconds in (0.0, 1.3, 2.5, 6.0, 30.0):
        tick = split.tick_at(seconds)
        assert score.tick_to_seconds(tick) <= seconds + 1e-9 < score.tick_to_seconds(tick + 1)
    assert len(split.notes) == 16
    assert all(end == start + TPB + TPB // 2 for _, start, end, *_ in split.notes)  # its length plus the release allowance


def test_a_cut_file_ends_at_the_cut_with_every_note_released():
    data = _midi_bytes(
        {0: [(b, 3, 60 + b % 12, 80) for b in range(0, 40, 2)], 1: [(0, 40, 48, 70)]},
        controls=[(0, mido.Message("control_change", channel=0, control=64, value=127))],
    )
    split = scan_midi(data)
    until = 10 * TPB + 3
    cut = split.cut(until)
    read = mido.MidiFile(file=io.BytesIO(cut.midi(list(cut.weights))))
    now, events = 0, []
    for msg in read.tracks[0]:
        now += msg.time
        events.append((now, msg))
    assert max(t for t, _ in events) == until
    assert all(t < until for t, m in events if m.type == "note_on")
    last = [m for t, m in events if t == until]
    for channel in range(16):  # the pedal lifted and every note released, on every channel
        assert any(m.type == "control_change" and m.channel == channel and (m.control, m.value) == (64, 0) for m in last)
        assert any(m.type == "control_change" and m.channel == channel and m.control == 123 for m in last)
    assert last[-1].type == "end_of_track"
    assert cut.seconds == pytest.approx(until / TPB * 0.5)


def test_the_budget_cuts_only_what_would_take_too_long():
    from studio.audio.synth.budget import audio_cut

    sparse = scan_midi(_midi_bytes({0: [(b, 1, 60 + b % 12, 80) for b in range(540)]}))  # 4.5 minutes of one voice
    assert audio_cut(sparse, 2, 1, SynthConfig()) is None
    dense = scan_midi(_dense_notes(240.0, per_second=40))  # 40 notes a second, each sounding on in its release
    tick = audio_cut(dense, 2, 1, SynthConfig())
    assert tick is not None and 60.0 < dense.seconds_at(np.array([tick]))[0] < 180.0
    assert audio_cut(dense, 2, 1, SynthConfig(render_budget=None)) is None
    smaller = audio_cut(dense, 2, 1, SynthConfig(render_budget=1000.0))
    assert smaller is not None and smaller < tick  # a smaller budget cuts earlier
    assert audio_cut(dense, 2, 2, SynthConfig()) < tick  # an engine playing two files has less for each
    with pytest.raises(ValueError):
        SynthConfig(render_budget=0.0)


@needs_synth
def test_a_render_on_one_engine_fills_one_buffer_the_loudness_step_reads_without_a_copy(fresh_pool):
    """A render of known length on one engine goes into one float buffer sized for the music and
    its longest tail, so the loudness step reads it whole (no chunks joined, no copy of the take)."""
    from studio.audio.synth import render as rendering

    fresh_pool()
    config = SynthConfig(workers=1)
    data = _midi_bytes({0: [(b, 1, 60 + b % 12, 80) for b in range(80)]})  # 40 s: over one default chunk (24 s)
    split = scan_midi(data)
    engines = engine.POOL.acquire(config, 1)
    try:
        frames = rendering._render_single(engines[0], data, config, split.seconds)
    finally:
        engine.POOL.release(engines)
    views = frames.views()
    assert len(views) == 1 and 40.0 <= len(views[0]) / config.sample_rate <= 40.0 + config.max_tail_seconds + 0.1
    assert rendering._joined(views) is views[0]


def test_the_mix_of_several_renders_is_summed_into_one_buffer_or_where_it_lies():
    """`_Mix` sums each chunk of every render into one buffer at its place, so the mix is read
    whole without a copy; a chunk that does not fit is summed where it lies, and the sums agree."""
    from studio.audio.synth.render import _Mix

    rng = np.random.default_rng(0)
    parts = [[rng.standard_normal((n, 2)).astype(np.float32) for n in (8, 8, 5)] for _ in range(3)]
    for capacity, whole_expected in ((30, True), (16, False)):
        mix = _Mix(3, capacity)
        for p in (2, 0, 1):  # in any order of the renders, chunk by chunk
            start = 0
            for index, chunk in enumerate(parts[p]):
                mix.sink(p)(index, start, chunk.copy())
                start += len(chunk)
        chunks = mix.chunks()
        expected = np.concatenate([parts[0][i] + parts[1][i] + parts[2][i] for i in range(3)])
        np.testing.assert_allclose(np.concatenate(chunks), expected, rtol=1e-6)
        whole = mix.whole(chunks)
        assert (whole is not None) == whole_expected
        if whole is not None:
            assert np.shares_memory(whole, mix.buffer) and len(whole) == 21
            assert mix.whole(chunks[:1] + [chunks[2]]) is None  # not back to back
    mismatched = _Mix(2, 30)
    mismatched.sink(0)(0, 0, parts[0][0])
    mismatched.sink(1)(0, 3, parts[1][0])  # the renders disagree on where the chunk starts
    assert mismatched.mismatch and mismatched.chunks() is None


def test_the_budget_counts_what_follows_the_render(monkeypatch):
    """Issue 23: every second of audio costs the same after the render whatever sounds (the mix
    measured and limited, the WAV written), so a long take is cut where its synthesis and that work
    together pass the budget: ten minutes of one voice, which its synthesis alone would allow, are
    cut after four to seven minutes."""
    from studio.audio.synth import budget

    ten = scan_midi(_midi_bytes({0: [(b, 1, 60 + b % 12, 80) for b in range(1200)]}))  # 10 minutes of one voice
    tick = budget.audio_cut(ten, 1, 1, SynthConfig())
    assert tick is not None and 4 * 60 < ten.seconds_at(np.array([tick]))[0] < 7 * 60
    monkeypatch.setattr(budget, "_AFTER_VOICES", 0)
    synthesis_alone = budget.audio_cut(ten, 1, 1, SynthConfig())
    assert synthesis_alone is None or synthesis_alone > tick


def test_the_budget_charges_every_note_of_the_take(monkeypatch):
    """Issue 23: reading, guiding, writing and drawing a note cost the answer time whatever it
    sounds like, so of two files of the same synthesis work the one of more notes is cut earlier,
    and 20,000 rapid notes in 75 s (answered in 5.2-5.9 s when only their voices counted) are cut."""
    from studio.audio.synth import budget

    rapid = scan_midi(_dense_notes(75.0, per_second=266))  # 19,950 notes
    tick = budget.audio_cut(rapid, 2, 1, SynthConfig())
    assert tick is not None and rapid.seconds_at(np.array([tick]))[0] < 60.0
    monkeypatch.setattr(budget, "_NOTE_VOICE_SECONDS", 0.0)
    voices_alone = budget.audio_cut(rapid, 2, 1, SynthConfig())
    assert voices_alone is None or voices_alone > tick


def test_the_budget_never_cuts_the_last_second(monkeypatch):
    """A take the budget would cut within `_MIN_CUT_SECONDS` of its end plays whole (no "the audio
    stops at 1:15 of 1:15")."""
    from studio.audio.synth import budget

    split = scan_midi(_dense_notes(20.0, per_second=40))
    whole_work = budget.audio_cut(split, 1, 1, SynthConfig(render_budget=1e9))
    assert whole_work is None
    # a budget that runs out 0.3 s before the end: whole; 3 s before: cut
    monkeypatch.setattr(budget, "_NOTE_VOICE_SECONDS", 0.0)
    limit = SynthConfig().polyphony_for(split.seconds)
    busiest, together = budget._voices(split, split.seconds, limit)
    per_step = np.maximum(busiest, together) + budget._REVERB_VOICES + budget._AFTER_VOICES
    work = np.cumsum(per_step) * budget._STEP_SECONDS
    near_end = float(work[int((split.seconds - 0.3) / budget._STEP_SECONDS)])
    assert budget.audio_cut(split, 1, 1, SynthConfig(render_budget=near_end)) is None
    earlier = float(work[int((split.seconds - 3.0) / budget._STEP_SECONDS)])
    tick = budget.audio_cut(split, 1, 1, SynthConfig(render_budget=earlier))
    assert tick is not None and split.seconds - 3.5 < split.seconds_at(np.array([tick]))[0] < split.seconds - 2.5


def test_a_slow_models_time_comes_off_the_synthesis_budget():
    """The answer's time is shared: a model slower than the GANs the budget was set with leaves the
    render less (the diffusion model on 112 beats and 63 kept tracks of dense notes answered in
    5.4-5.8 s), at least a fifth of it; the same file is then cut earlier, and a fast model changes nothing."""
    from studio.audio.synth import budget

    config = SynthConfig()
    assert budget.after_model(config, 0.0) == config == budget.after_model(config, budget._MODEL_ALLOWANCE_S)
    slow = budget.after_model(config, budget._MODEL_ALLOWANCE_S + 1.0)
    assert slow.render_budget == pytest.approx(config.render_budget - 1.0 / budget._VOICE_SECOND_S)
    assert budget.after_model(config, 60.0).render_budget == pytest.approx(budget._MIN_BUDGET_SHARE * config.render_budget)
    assert budget.after_model(SynthConfig(render_budget=None), 5.0).render_budget is None
    split = scan_midi(_dense_notes(120.0, per_second=100))
    fast_cut, slow_cut = budget.audio_cut(split, 1, 1, config), budget.audio_cut(split, 1, 1, slow)
    assert fast_cut is not None and slow_cut is not None and slow_cut < fast_cut


@needs_synth
def test_a_cut_render_keeps_the_voice_limit_the_budget_counted(monkeypatch, fresh_pool):
    """The budget counts the voices of the whole music's limit (64 for a minute); the render of the
    part it keeps must not be given the larger limit of a shorter piece (213 for 15 s), or a cut take
    renders slower than the whole one would (20,000 notes: 0.57-0.79 s with the fix, 1.3-1.6 s without)."""
    data = _dense_notes(60.0, per_second=40)
    config = SynthConfig(render_budget=1500.0, workers=1)
    limits: list[int] = []
    real = engine.Engine.reset

    def spy(self, cfg, music_seconds=None):
        limits.append(cfg.polyphony_for(music_seconds))
        return real(self, cfg, music_seconds)

    monkeypatch.setattr(engine.Engine, "reset", spy)
    fresh_pool()
    said: list[str] = []
    render_midi(data, config, warnings=said)
    assert len(said) == 1 and "the audio stops at 0:" in said[0]  # cut to well under a minute
    assert limits and set(limits) == {config.polyphony_for(scan_midi(data).seconds)} == {64}


@needs_synth
def test_music_over_the_budget_is_cut_where_it_is_spent_and_said():
    data = _dense_notes(40.0, per_second=40)
    config = SynthConfig(render_budget=400.0)
    said: list[str] = []
    audio = render_midi(data, config, warnings=said)
    tick = __import__("studio.audio.synth.budget", fromlist=["audio_cut"]).audio_cut(scan_midi(data), 1, 1, config)
    cut_seconds = scan_midi(data).seconds_at(np.array([tick]))[0]
    seconds = audio_stats(audio)["duration_s"]
    assert cut_seconds < 20.0 and cut_seconds <= seconds <= cut_seconds + config.max_tail_seconds + 0.1
    assert len(said) == 1 and "the audio stops at 0:" in said[0] and "of 0:40" in said[0]
    tail = audio[-int(0.05 * config.sample_rate) :].astype(np.float64)
    assert np.abs(tail).max() < 0.05 * 32767  # released and faded, not stopped mid-note
    whole: list[str] = []
    assert audio_stats(render_midi(_song(), config, warnings=whole))["duration_s"] > 4.0 and whole == []


@needs_synth
def test_the_cut_is_the_same_when_the_engines_are_busy():
    """The budget counts the engines a render would get on a free machine, so a take is cut at the
    same place whether or not another render holds an engine (the same music, the same audio)."""
    from studio.audio.synth import Lead

    # two busy channels: their work together on one engine is more than the busiest's alone
    both = _midi_bytes(
        {0: [(i * 0.05, 0.025, 48 + i % 36, 90) for i in range(1200)], 1: [(i * 0.1, 0.05, 40 + i % 12, 70) for i in range(600)]}
    )
    config = SynthConfig(render_budget=300.0, workers=2)
    free = render_midi(both, config, Lead((0,)))
    held = engine.POOL.acquire(config, 1)
    try:
        busy = render_midi(both, config, Lead((0,)))
    finally:
        engine.POOL.release(held)
    assert len(free) == len(busy) and len(free) < 25 * config.sample_rate

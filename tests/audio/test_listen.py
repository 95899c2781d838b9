"""studio.audio.listen: the MP3 copy of each WAV that the page plays, and the WAV when there is no encoder."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from studio.audio import listen
from studio.audio.synth import synth_status, write_wav
from studio.serving.service import AccompanyRequest, InterpolateRequest, accompany, interpolate
from studio.serving.takes import take_from_result

SYNTH_OK, SYNTH_WHY = synth_status()
needs_synth = pytest.mark.skipif(not SYNTH_OK, reason=f"FluidSynth unavailable: {SYNTH_WHY}")


def _tone(seconds: float, rate: int = 44100) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    left = 8000 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, 0.5 * left], axis=1).astype(np.int16)


def _is_mp3(path: Path) -> bool:
    head = path.read_bytes()[:2]
    return head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # an MPEG audio frame's sync word (no ID3 tag is written)


@pytest.fixture
def no_encoder(monkeypatch):
    """As if `lameenc` were not installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "lameenc", None)
    assert not listen.encoder_available()


def test_mp3_copy_is_small_and_beside_the_wav(tmp_path):
    audio = _tone(10.0)
    wav = write_wav(tmp_path / "tone.wav", audio)
    heard = listen.listen_copy(wav, audio)
    assert heard == tmp_path / "tone.mp3" and _is_mp3(heard)
    expected = listen.BITRATE_KBPS * 1000 / 8 * 10.0  # constant bit rate: bytes for 10 s
    assert heard.stat().st_size == pytest.approx(expected, rel=0.03)
    assert heard.stat().st_size < wav.stat().st_size / 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.mp3", "tone.wav"]  # no .part left
    assert listen.listen_copy(wav).read_bytes() == heard.read_bytes()  # read from the WAV: the same file


def test_without_an_encoder_the_page_plays_the_wav(tmp_path, no_encoder):
    audio = _tone(1.0)
    wav = write_wav(tmp_path / "tone.wav", audio)
    assert listen.listen_copy(wav, audio) == wav
    assert listen.listen_copy(wav) == wav
    assert [p.name for p in tmp_path.iterdir()] == ["tone.wav"]
    with pytest.raises(listen.EncoderUnavailable, match="install lameenc"):
        listen.write_mp3(tmp_path / "x.mp3", audio)


def test_a_full_disk_is_not_hidden(tmp_path, monkeypatch):
    wav = write_wav(tmp_path / "tone.wav", _tone(0.5))

    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError):
        listen.listen_copy(wav)


@needs_synth
def test_accompany_gives_the_page_an_mp3_and_keeps_the_wav(tune_paths, tmp_path):
    result = accompany(AccompanyRequest(midi=tune_paths["four_four.mid"], model="rules", out_dir=tmp_path, want_png=False))
    assert result.wav_path.suffix == ".wav" and result.wav_path.read_bytes()[:4] == b"RIFF"
    assert result.listen_path == result.wav_path.with_suffix(".mp3") and _is_mp3(result.listen_path)
    with wave.open(str(result.wav_path), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    assert result.listen_path.stat().st_size == pytest.approx(listen.BITRATE_KBPS * 125 * seconds, rel=0.05)
    take = take_from_result(result, 1, "tune")
    assert take["listen"] == str(result.listen_path) and take["wav"] == str(result.wav_path)
    plain = accompany(AccompanyRequest(midi=tune_paths["four_four.mid"], model="rules", out_dir=tmp_path / "cli", want_listen=False))
    assert plain.listen_path == plain.wav_path and not list((tmp_path / "cli").glob("*.mp3"))


@needs_synth
def test_accompany_without_an_encoder_plays_the_wav(tune_paths, tmp_path, no_encoder):
    result = accompany(AccompanyRequest(midi=tune_paths["four_four.mid"], model="rules", out_dir=tmp_path, want_png=False))
    assert result.listen_path == result.wav_path and result.wav_path.is_file()
    assert not list(tmp_path.glob("*.mp3")) and not result.warnings
    assert take_from_result(result, 1, "tune")["listen"] == str(result.wav_path)


def test_no_audio_no_listen_path(tune_paths, tmp_path):
    result = accompany(AccompanyRequest(midi=tune_paths["four_four.mid"], model="rules", out_dir=tmp_path, want_wav=False, want_png=False))
    assert result.wav_path is None and result.listen_path is None
    assert take_from_result(result, 1, "tune")["listen"] is None


@needs_synth
def test_interpolation_gives_the_page_an_mp3(tune_paths, tmp_path):
    result = interpolate(
        InterpolateRequest(first=tune_paths["four_four.mid"], second=tune_paths["two_four.mid"], steps=2, out_dir=tmp_path, want_png=False)
    )
    assert result.listen_path == result.wav_path.with_suffix(".mp3") and _is_mp3(result.listen_path)

"""The page's copy of the audio: an MP3 written beside each WAV, for the browser's player.

A 10-minute take is a 106 MB WAV (44.1 kHz, 16-bit stereo), which the browser downloads before it
plays; its 160 kbps MP3 is 12 MB. The WAV stays the result (download, the API's `/accompany`
output, the CLI); the MP3 is only what the page plays. MP3 plays in every browser, Safari included
(Ogg Vorbis and Opus do not, in every Safari).

The encoder is LAME through `lameenc` (its wheels carry the library). `soundfile`'s libsndfile
also writes MP3 through LAME, but 10 times slower in the measures behind this choice (a 10-minute
take: 33-39 s against 2.8-3.5 s here, on the 2-core development machine; rendering it takes about 3 s).
`lameenc` releases the GIL while it encodes, so the piano roll is drawn meanwhile.

When the encoder is missing (not installed) or fails, `listen_copy` gives back the WAV: the page
plays it as before, only slower to load.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from studio.core.files import atomic_write_bytes

__all__ = ["BITRATE_KBPS", "QUALITY", "EncoderUnavailable", "encoder_available", "listen_copy", "write_mp3"]

BITRATE_KBPS = 160  # constant bit rate, joint stereo: 1.2 MB a minute (the WAV: 10.6 MB)
# LAME's algorithm quality, 2 (best, slowest) .. 7 (fastest). 7 keeps the psychoacoustic model but
# skips noise shaping: half the time of 5 or less (a 16-bar request: +0.04 s against +0.16 s; 10
# minutes: 2.8 s against 5.7 s), and the 160 kbps (rather than 128) pays for the shaping it skips.
QUALITY = 7


class EncoderUnavailable(RuntimeError):
    """No MP3 encoder (the `lameenc` package) is installed."""


def _lameenc():
    """The `lameenc` module, imported when first needed (an optional part fails late)."""
    try:
        import lameenc  # optional: the page falls back to the WAV without it
    except ImportError as exc:
        raise EncoderUnavailable(f"no MP3 encoder: install lameenc ({exc})") from None
    return lameenc


def encoder_available() -> bool:
    """True when MP3 copies can be written (`lameenc` imports)."""
    try:
        _lameenc()
    except EncoderUnavailable:
        return False
    return True


def write_mp3(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = 44100) -> Path:
    """Encode int16 audio of shape (N, 2) to a constant-bit-rate MP3 at `BITRATE_KBPS`, atomically
    (a temp file, then a rename); returns `path`.

    Raises
    ------
    EncoderUnavailable
        `lameenc` is not installed.
    OSError
        The file cannot be written.
    """
    lameenc = _lameenc()
    arr = np.asarray(audio)
    if arr.dtype != np.int16 or arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"write_mp3 needs int16 audio of shape (N, 2), got {arr.dtype} {arr.shape}")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(BITRATE_KBPS)
    encoder.set_in_sample_rate(int(sample_rate))
    encoder.set_channels(2)
    encoder.set_quality(QUALITY)
    data = encoder.encode(np.ascontiguousarray(arr, dtype="<i2").tobytes()) + encoder.flush()
    return atomic_write_bytes(path, data)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit stereo WAV as written by `studio.audio.synth.write_wav`: (N, 2) int16 and its rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 2:
            raise ValueError(f"{path.name} is not 16-bit stereo")
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2), wav.getframerate()


def listen_copy(wav_path: str | os.PathLike, audio: np.ndarray | None = None, sample_rate: int = 44100) -> Path:
    """What the page's player should play for `wav_path`: its MP3 copy ``<stem>.mp3`` beside it,
    written now (from `audio` when given, the WAV's own samples, otherwise read from the WAV); or
    the WAV itself when there is no encoder or it fails.

    Raises
    ------
    OSError
        The MP3 cannot be written (a full disk): as for the WAV, the caller reports it.
    """
    wav = Path(wav_path)
    try:
        if audio is None:
            audio, sample_rate = _read_wav(wav)
        return write_mp3(wav.with_suffix(".mp3"), audio, sample_rate)
    except (EncoderUnavailable, RuntimeError, ValueError, EOFError, wave.Error):
        return wav  # no encoder, it failed, or the WAV is not ours: the page plays the WAV (slower to load, same music)

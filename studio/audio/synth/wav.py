"""WAV out (16-bit stereo PCM, stdlib `wave`) and loudness figures of int16 audio.

WAV is the only audio format written (the studio does not need ffmpeg).
"""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import numpy as np

from studio.audio.synth.config import FULL_SCALE, SynthConfig
from studio.audio.synth.render import render_midi
from studio.core.files import atomic_file

__all__ = ["audio_stats", "render_to_wav", "write_wav"]


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = 44100) -> Path:
    """Write 16-bit stereo PCM WAV (stdlib `wave`), atomically (a temp file, then a rename).

    Parameters
    ----------
    path
        Where to write; parent folders are created.
    audio
        int16 of shape (N, 2) (also accepted: (N,) or (N, 1), written as both channels).
    sample_rate
        Frames per second.

    Returns
    -------
    Path
        `path`.
    """
    arr = np.asarray(audio)
    if arr.dtype != np.int16:
        raise TypeError(f"write_wav needs int16 samples, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2):
        raise ValueError(f"write_wav needs audio of shape (N, 2), got {arr.shape}")
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 2, axis=1)
    arr = np.ascontiguousarray(arr, dtype="<i2")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as f, wave.open(f, "wb") as wav:
        # `wave` writes into a file `atomic_file` opened: given a path, a failed open left a half-made
        # `Wave_write` whose `__del__` printed a traceback. With the frame count given first, the
        # header is written once and never patched.
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.setnframes(len(arr))
        wav.writeframes(arr.reshape(-1).view(np.uint8))
    return out


def render_to_wav(
    midi: bytes | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: SynthConfig | None = None,
    warnings: list[str] | None = None,
) -> Path:
    """`render_midi` then `write_wav`; returns the WAV's path (`warnings` as `render_midi`'s)."""
    config = config or SynthConfig()
    return write_wav(out_path, render_midi(midi, config, warnings=warnings), config.sample_rate)


def audio_stats(audio: np.ndarray, sample_rate: int = 44100) -> dict[str, float | int]:
    """Loudness figures of int16 audio, for tests and acceptance checks.

    Returns
    -------
    dict
        ``duration_s``; ``rms_dbfs`` and ``peak_dbfs`` relative to full scale 32767 (-120.0 for
        digital silence); ``clipped_samples``, the count of samples with ``|x| >= 32767``.
    """
    arr = np.asarray(audio)
    if arr.dtype != np.int16:
        raise TypeError(f"audio_stats needs int16 samples, got {arr.dtype}")
    frames = arr.shape[0] if arr.ndim else 0
    flat = arr.reshape(-1)
    total = 0.0
    peak = 0
    clipped = 0
    step = 1 << 20
    for start in range(0, flat.size, step):
        part = np.abs(flat[start : start + step].astype(np.float64))
        total += float(np.dot(part, part))
        peak = max(peak, int(np.max(part)))
        clipped += int(np.count_nonzero(part >= 32767))
    rms = math.sqrt(total / flat.size) if flat.size else 0.0

    def dbfs(value: float) -> float:
        return round(20.0 * math.log10(value / FULL_SCALE), 2) if value > 0 else -120.0

    return {
        "duration_s": frames / float(sample_rate),
        "rms_dbfs": dbfs(rms),
        "peak_dbfs": dbfs(float(peak)),
        "clipped_samples": clipped,
    }

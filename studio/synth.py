"""MIDI to audio: 44.1 kHz, 16-bit stereo WAV, rendered in process by FluidSynth (pyfluidsynth).

One `fluidsynth.Synth` with one loaded SoundFont lives per process. It is created on the first
render (loading a General MIDI SoundFont takes a moment) and shared by every later render, under a
lock, since a synth is not reentrant. Each render resets it first (all sounds off; programs,
controllers and pitch bend; the reverb and chorus buffers and LFOs), so one render cannot leak into
the next: the same MIDI renders to the same samples, except that FluidSynth keeps a little DSP
state in the voices it recycles, which can change a note's first milliseconds by a few LSB
(below -54 dBFS) depending on what was played before.

The MIDI file is played by FluidSynth's own MIDI player driven by the synth's sample clock
(``player.timing-source = "sample"``), exactly as ``fluidsynth -F out.wav`` does, so every event
(control changes, pitch bend, sustain pedal, program changes, drums on channel 10) sounds as it
does in the FluidSynth CLI (same samples at the same instants). Samples are pulled as 32-bit floats
in large blocks until the player passes the file's last tick, then a release tail is added (cut at
silence), and the floats become int16 with a peak limit (see `SynthConfig`).

WAV is the only audio format written (stdlib `wave`; the studio does not need ffmpeg).
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from studio.errors import InputError, StudioError

__all__ = [
    "SynthConfig",
    "SynthUnavailable",
    "audio_stats",
    "find_soundfont",
    "render_midi",
    "render_to_wav",
    "synth_status",
    "write_wav",
]


@dataclass(frozen=True)
class SynthConfig:
    """How MIDI becomes audio.

    Attributes
    ----------
    sample_rate
        Output rate in Hz.
    gain
        FluidSynth ``synth.gain``, the master volume before the int16 conversion (the CLI's
        default is 0.2, quiet for a small band; 0.5 is about +8 dB and rarely needs the limiter).
    reverb, chorus
        FluidSynth's reverb (on, as in the CLI) and chorus (off: it smears a small band and costs
        about 15% of the render time; the benchmark gives the CLI the same setting).
    max_tail_seconds
        Longest release tail rendered after the MIDI player ends (reverb, string releases). The
        tail stops early at the first `silence_window_seconds` window whose peak is below
        `silence_dbfs`; when the full tail is used, its last window fades out to avoid a click.
    silence_dbfs, silence_window_seconds
        What counts as silence for cutting the tail.
    peak_dbfs
        Highest sample peak in the WAV, in dB relative to full scale. The float mix is scaled
        *down* by exactly the factor needed when its peak would exceed this, so the WAV never
        clips; it is never scaled up, so the loudness set by `gain` stays comparable between
        renders (a quiet piece stays quiet).
    soundfont
        An explicit ``.sf2``/``.sf3`` to use instead of the search of `find_soundfont`.
    system_soundfonts
        General MIDI SoundFonts installed by Linux packages, searched last, in this order.
    block_frames
        Frames per call into FluidSynth (rounded up to a multiple of its 64-frame block); also how
        finely the end of the music is found. Larger blocks are not faster.
    """

    sample_rate: int = 44100
    gain: float = 0.5
    reverb: bool = True
    chorus: bool = False
    max_tail_seconds: float = 2.5
    silence_dbfs: float = -60.0
    silence_window_seconds: float = 0.05
    peak_dbfs: float = -1.0
    soundfont: str | os.PathLike[str] | None = None
    system_soundfonts: tuple[str, ...] = (
        "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        "/usr/share/sounds/sf2/default-GM.sf2",
        "/usr/share/soundfonts/default.sf2",
        "/usr/share/soundfonts/FluidR3_GM.sf2",
        "/usr/share/sounds/sf3/default-GM.sf3",
    )
    block_frames: int = 4096

    def __post_init__(self) -> None:
        if self.sample_rate < 8000 or self.sample_rate > 192000:
            raise ValueError(f"sample_rate must be 8000-192000 Hz, got {self.sample_rate}")
        if not 0.0 < self.gain <= 10.0:
            raise ValueError(f"gain must be in (0, 10], got {self.gain}")
        if self.peak_dbfs > 0.0:
            raise ValueError(f"peak_dbfs must be <= 0 dBFS, got {self.peak_dbfs}")
        if self.max_tail_seconds < 0.0:
            raise ValueError(f"max_tail_seconds must be >= 0, got {self.max_tail_seconds}")
        if self.block_frames < 64:
            raise ValueError(f"block_frames must be >= 64, got {self.block_frames}")


class SynthUnavailable(StudioError):
    """FluidSynth or a SoundFont is missing; the message says what to install or set."""


ENV_SOUNDFONT = "STUDIO_SOUNDFONT"
REPO_SOUNDFONTS = Path(__file__).resolve().parent.parent / "soundfonts"
SOUNDFONT_SUFFIXES = (".sf2", ".sf3")
INSTALL_HINT = "run `apt-get install fluidsynth` (or `make run`)"
_FLUID_BLOCK = 64  # FluidSynth renders in blocks of 64 frames (FLUID_BUFSIZE)
_FULL_SCALE = 32767.0  # float 1.0 -> int16, as libsndfile (and so the fluidsynth CLI) converts


# --- finding FluidSynth and a SoundFont ------------------------------------------------------


def _soundfont_candidates(config: SynthConfig) -> list[tuple[str, Path]]:
    """Every place a SoundFont may be, in search order, each with where it came from."""
    candidates: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_SOUNDFONT, "").strip()
    if env:
        candidates.append((ENV_SOUNDFONT, Path(env).expanduser()))
    if REPO_SOUNDFONTS.is_dir():
        for path in sorted(REPO_SOUNDFONTS.iterdir(), key=lambda p: p.name):
            if path.suffix.lower() in SOUNDFONT_SUFFIXES:
                candidates.append(("soundfonts/", path))
    candidates.extend(("system", Path(p)) for p in config.system_soundfonts)
    return candidates


def find_soundfont(config: SynthConfig | None = None) -> Path | None:
    """The SoundFont to render with, or None when there is none.

    Parameters
    ----------
    config
        When ``config.soundfont`` is set, that file alone is considered (None if it is missing).

    Returns
    -------
    Path or None
        The first existing file of: ``$STUDIO_SOUNDFONT`` (skipped when set to a missing file),
        ``<repo>/soundfonts/*.sf2|*.sf3`` sorted by name, then the system GM fonts of
        `SynthConfig.system_soundfonts`.
    """
    config = config or SynthConfig()
    if config.soundfont is not None:
        path = Path(config.soundfont).expanduser()
        return path if path.is_file() else None
    for _, path in _soundfont_candidates(config):
        if path.is_file():
            return path
    return None


def _missing_env_note() -> str:
    """A note when ``$STUDIO_SOUNDFONT`` names a file that does not exist, else ''."""
    env = os.environ.get(ENV_SOUNDFONT, "").strip()
    if env and not Path(env).expanduser().is_file():
        return f"{ENV_SOUNDFONT}={env} does not exist, ignored"
    return ""


def _no_soundfont_message(config: SynthConfig) -> str:
    if config.soundfont is not None:
        return f"SoundFont {config.soundfont} does not exist: fix the path or leave it unset"
    note = _missing_env_note()
    return (
        ("" if not note else note + "; ")
        + "no SoundFont found: put a .sf2 in soundfonts/, set STUDIO_SOUNDFONT=/path/to/font.sf2, "
        "or run `apt-get install fluid-soundfont-gm` (or `make run`)"
    )


def _import_fluidsynth() -> ModuleType:
    """The pyfluidsynth module; `SynthUnavailable` when it or libfluidsynth is missing."""
    try:
        import fluidsynth  # pyfluidsynth raises ImportError/OSError without libfluidsynth
    except (ImportError, OSError) as exc:
        raise SynthUnavailable(
            f"FluidSynth is not installed ({exc}): {INSTALL_HINT}, and `pip install pyfluidsynth`"
        ) from None
    if not hasattr(fluidsynth, "_fl") or not hasattr(fluidsynth, "Synth"):
        raise SynthUnavailable(
            "the `fluidsynth` Python module is not pyfluidsynth: `pip install pyfluidsynth`"
        )
    return fluidsynth


class _Fluid:
    """ctypes prototypes for the few libfluidsynth calls pyfluidsynth does not wrap."""

    def __init__(self, fs: ModuleType) -> None:
        lib = fs._fl
        void_p, c_int = ctypes.c_void_p, ctypes.c_int

        def proto(name: str, restype: Any, *argtypes: Any, required: bool = True) -> Any:
            if not hasattr(lib, name):
                if not required:
                    return None
                raise SynthUnavailable(
                    f"libfluidsynth lacks {name} (FluidSynth 2.x is needed): {INSTALL_HINT}"
                )
            return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))

        self.fs = fs
        self.version_str = proto("fluid_version_str", ctypes.c_char_p)
        self.write_float = proto(
            "fluid_synth_write_float", c_int, void_p, c_int, void_p, c_int, c_int, void_p, c_int, c_int
        )
        self.player_add_mem = proto("fluid_player_add_mem", c_int, void_p, ctypes.c_char_p, ctypes.c_size_t)
        self.player_current_tick = proto("fluid_player_get_current_tick", c_int, void_p)
        self.player_total_ticks = proto("fluid_player_get_total_ticks", c_int, void_p)
        self.set_gain = proto("fluid_synth_set_gain", None, void_p, ctypes.c_float)
        self.reverb_on = proto("fluid_synth_reverb_on", c_int, void_p, c_int, c_int)
        self.chorus_on = proto("fluid_synth_chorus_on", c_int, void_p, c_int, c_int)
        # Deprecated since 2.1 but still exported by libfluidsynth.so.3; used only while silent.
        self.set_sample_rate = proto(
            "fluid_synth_set_sample_rate", None, void_p, ctypes.c_float, required=False
        )
        self.settings_copystr = proto(
            "fluid_settings_copystr", c_int, void_p, ctypes.c_char_p, ctypes.c_char_p, c_int
        )

    def version(self) -> str:
        raw = self.version_str()
        return raw.decode() if raw else "?"


_FLUID: _Fluid | None = None


def _fluid() -> _Fluid:
    global _FLUID
    if _FLUID is None:
        _FLUID = _Fluid(_import_fluidsynth())
    return _FLUID


def synth_status() -> tuple[bool, str]:
    """Whether audio can be rendered here, and a one-line message saying with what or why not.

    Cheap (no SoundFont is loaded) and never raises.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "FluidSynth 2.3.1 with /path/font.sf2")`` or ``(False, "<what to install or set>")``.
    """
    try:
        fluid = _fluid()
        version = fluid.version()
        config = SynthConfig()
        soundfont = find_soundfont(config)
        if soundfont is None:
            return False, _no_soundfont_message(config)
        note = _missing_env_note()
        return True, f"FluidSynth {version} with {soundfont}" + (f" ({note})" if note else "")
    except SynthUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a status line must never crash its caller
        return False, f"FluidSynth cannot be used ({type(exc).__name__}: {exc}): {INSTALL_HINT}"


# --- the process-wide synth ------------------------------------------------------------------


class _Engine:
    """The one synth of this process with its SoundFont loaded; used only under `_LOCK`."""

    def __init__(self, fluid: _Fluid, soundfont: Path, sample_rate: int, gain: float) -> None:
        fs = fluid.fs
        self.fluid = fluid
        self.key = (soundfont, sample_rate)
        self.sample_rate = sample_rate
        # Settings as the fluidsynth CLI's fast render (-F) uses them: 16 MIDI channels, the player
        # clocked by rendered samples (not the wall clock), no memory locking.
        self.synth = fs.Synth(
            gain=float(gain),
            samplerate=float(sample_rate),
            channels=16,
            # player.reset-synth=0: the player must not reset the synth when it finishes (that
            # would cut the release tail); `reset` does it before each render instead.
            **{"player.timing-source": "sample", "player.reset-synth": 0, "synth.lock-memory": 0},
        )
        buf = ctypes.create_string_buffer(32)
        fluid.settings_copystr(self.synth.settings, b"player.timing-source", buf, 32)
        if buf.value != b"sample":
            self.synth.delete()
            raise SynthUnavailable(f"FluidSynth refused player.timing-source=sample (got {buf.value!r})")
        self._flush = np.zeros((2 * _FLUID_BLOCK, 2), dtype=np.float32)
        self.sfid = self.synth.sfload(str(soundfont))
        if self.sfid < 0:
            self.synth.delete()
            raise SynthUnavailable(
                f"FluidSynth could not load the SoundFont {soundfont}: use a valid .sf2/.sf3 "
                f"(set STUDIO_SOUNDFONT, or put one in soundfonts/)"
            )

    def reset(self, config: SynthConfig) -> None:
        """Silence and reset everything a previous render may have left, then apply `config`."""
        synth = self.synth.synth
        self.fluid.fs.fluid_synth_all_sounds_off(synth, -1)
        # system_reset: all voices off, every channel's program/bank/controllers/pitch bend back
        # to the defaults, and the reverb and chorus delay lines cleared.
        self.fluid.fs.fluid_synth_system_reset(synth)
        if self.fluid.set_sample_rate is not None:
            # Re-setting the same rate re-initialises the reverb's and chorus's modulators (LFO
            # phases), which system_reset leaves running: without it, the reverb of a render
            # depends on how much audio was rendered before. All voices are off, so nothing clicks.
            self.fluid.set_sample_rate(synth, float(self.sample_rate))
        self.fluid.set_gain(synth, config.gain)
        self.fluid.reverb_on(synth, -1, int(config.reverb))
        self.fluid.chorus_on(synth, -1, int(config.chorus))
        # Render (and drop) two silent blocks: the mixer applies the queued resets and hands the
        # voices killed above back to the synth, so the next notes find them free. Without this,
        # a render's first half second depends slightly on how the previous render ended.
        self.fluid.write_float(synth, 2 * _FLUID_BLOCK, self._flush.ctypes.data, 0, 2,
                               self._flush.ctypes.data, 1, 2)

    def delete(self) -> None:
        self.synth.delete()


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine(config: SynthConfig) -> _Engine:
    """The process-wide engine for `config` (created, or recreated for another font or rate)."""
    global _ENGINE
    fluid = _fluid()
    soundfont = find_soundfont(config)
    if soundfont is None:
        raise SynthUnavailable(_no_soundfont_message(config))
    soundfont = soundfont.resolve()
    if _ENGINE is None or _ENGINE.key != (soundfont, config.sample_rate):
        if _ENGINE is not None:
            _ENGINE.delete()
            _ENGINE = None
        _ENGINE = _Engine(fluid, soundfont, config.sample_rate, config.gain)
    return _ENGINE


# --- rendering -------------------------------------------------------------------------------


class _FloatFrames:
    """Interleaved float32 stereo frames, appended block by block straight from FluidSynth."""

    def __init__(self, chunk_frames: int) -> None:
        self.chunk_frames = chunk_frames
        self.chunks: list[np.ndarray] = []  # each (chunk_frames, 2), the last one partly used
        self.used: list[int] = []  # frames used in each chunk
        self.frames = 0

    def render(self, fluid: _Fluid, synth: int, frames: int) -> np.ndarray:
        """Render `frames` (a multiple of 64, at most `chunk_frames`) and return them as a view."""
        if not self.chunks or self.used[-1] + frames > self.chunk_frames:
            self.chunks.append(np.empty((self.chunk_frames, 2), dtype=np.float32))
            self.used.append(0)
        chunk, start = self.chunks[-1], self.used[-1]
        address = chunk.ctypes.data + start * chunk.strides[0]
        if fluid.write_float(synth, frames, address, 0, 2, address, 1, 2) != 0:
            raise SynthUnavailable("FluidSynth failed to render audio (fluid_synth_write_float)")
        self.used[-1] += frames
        self.frames += frames
        return chunk[start : start + frames]

    def views(self) -> list[np.ndarray]:
        """The rendered frames, chunk by chunk."""
        return [chunk[:used] for chunk, used in zip(self.chunks, self.used, strict=True)]

    def peak(self) -> float:
        """Largest absolute sample value."""
        return max((float(max(v.max(), -v.min())) for v in self.views() if len(v)), default=0.0)

    def to_int16(self, scale: float) -> np.ndarray:
        """All frames as int16, each float multiplied by `scale` full scales (in place, then copied)."""
        out = np.empty((self.frames, 2), dtype=np.int16)
        start = 0
        factor = np.float32(scale * _FULL_SCALE)
        for view in self.views():
            np.multiply(view, factor, out=view)
            np.rint(view, out=view)
            np.clip(view, -_FULL_SCALE, _FULL_SCALE, out=view)
            out[start : start + len(view)] = view
            start += len(view)
        return out


def _read_midi(midi: bytes | str | os.PathLike[str]) -> bytes:
    """The bytes of a Standard MIDI File given as bytes or a path; `InputError` if it is not one."""
    if isinstance(midi, (bytes, bytearray, memoryview)):
        data = bytes(midi)
        where = "the MIDI data"
    else:
        path = Path(midi)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"MIDI file not found: {path}") from None
        except OSError as exc:
            raise InputError(f"cannot read MIDI file {path}: {exc.strerror or exc}") from None
        where = str(path)
    if not data.startswith(b"MThd"):
        raise InputError(f"{where} is not a Standard MIDI File (no MThd header)")
    return data


def _render_locked(engine: _Engine, data: bytes, config: SynthConfig) -> _FloatFrames:
    """Play `data` through FluidSynth's player, then the release tail; floats, unscaled.

    The music ends when the player has passed the MIDI file's last tick (its end of track), which
    is where the CLI of FluidSynth < 2.3.1 stops. Since 2.3.1 the player itself goes on until no
    voice sounds plus 2 s, and never ends while a note hangs (FluidSynth issue #1257), so its status
    is not waited for: the tail is ours, capped by `SynthConfig.max_tail_seconds`. The player keeps
    running during the tail, so what it does after the last event (2.3.1+ lifts sustain pedals) is
    heard as in the CLI.
    """
    fluid, fs = engine.fluid, engine.fluid.fs
    synth = engine.synth.synth
    block = -(-config.block_frames // _FLUID_BLOCK) * _FLUID_BLOCK
    window = -(-round(config.silence_window_seconds * config.sample_rate) // _FLUID_BLOCK) * _FLUID_BLOCK
    window = max(_FLUID_BLOCK, window)
    frames = _FloatFrames(max(block, window) * 64)

    player = fs.new_fluid_player(synth)
    if not player:
        raise SynthUnavailable("FluidSynth could not create a MIDI player")
    try:
        if fluid.player_add_mem(player, data, len(data)) != 0:
            raise InputError("FluidSynth could not take the MIDI data")
        fs.fluid_player_play(player)
        # The player is called back inside fluid_synth_write_float every 64 frames, as in the
        # CLI; its first call loads the file and sends the events of tick 0.
        frames.render(fluid, synth, block)
        total_ticks = fluid.player_total_ticks(player)
        if total_ticks <= 0 and fs.fluid_player_get_status(player) != fs.FLUID_PLAYER_PLAYING:
            raise InputError("FluidSynth could not read the MIDI data (a corrupt or empty MIDI file)")
        while (fs.fluid_player_get_status(player) == fs.FLUID_PLAYER_PLAYING
               and fluid.player_current_tick(player) < total_ticks):
            frames.render(fluid, synth, block)

        # Release tail: stop at the first silent window, or fade out the last one at the limit.
        silence = 10.0 ** (config.silence_dbfs / 20.0)
        tail_windows = math.ceil(config.max_tail_seconds * config.sample_rate / window)
        for i in range(tail_windows):
            chunk = frames.render(fluid, synth, window)
            if float(np.max(np.abs(chunk))) < silence:
                break
            if i == tail_windows - 1:
                chunk *= np.linspace(1.0, 0.0, len(chunk), dtype=np.float32)[:, None]
    finally:
        fs.fluid_player_stop(player)
        fs.delete_fluid_player(player)
    return frames


def render_midi(midi: bytes | str | os.PathLike[str], config: SynthConfig | None = None) -> np.ndarray:
    """Render a MIDI file to 16-bit stereo audio, as the FluidSynth CLI plays it.

    Parameters
    ----------
    midi
        A Standard MIDI File: its bytes, or a path.
    config
        Rendering settings (`SynthConfig()` when None).

    Returns
    -------
    numpy.ndarray
        Shape (N, 2), int16, at ``config.sample_rate``: the music to the MIDI file's end, then
        at most ``config.max_tail_seconds`` of release. Peaks never exceed ``config.peak_dbfs``.

    Raises
    ------
    SynthUnavailable
        FluidSynth or a SoundFont is missing.
    InputError
        `midi` is not a readable Standard MIDI File.
    """
    config = config or SynthConfig()
    data = _read_midi(midi)
    with _LOCK:
        engine = _engine(config)
        engine.reset(config)
        frames = _render_locked(engine, data, config)
    limit = 10.0 ** (config.peak_dbfs / 20.0)
    peak = frames.peak()
    scale = limit / peak if peak > limit else 1.0
    return frames.to_int16(scale)


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
    part = out.with_name(out.name + ".part")
    try:
        with wave.open(str(part), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(int(sample_rate))
            wav.writeframes(arr.reshape(-1).view(np.uint8))
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    return out


def render_to_wav(
    midi: bytes | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: SynthConfig | None = None,
) -> Path:
    """`render_midi` then `write_wav`; returns the WAV's path."""
    config = config or SynthConfig()
    return write_wav(out_path, render_midi(midi, config), config.sample_rate)


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
        return round(20.0 * math.log10(value / _FULL_SCALE), 2) if value > 0 else -120.0

    return {
        "duration_s": frames / float(sample_rate),
        "rms_dbfs": dbfs(rms),
        "peak_dbfs": dbfs(float(peak)),
        "clipped_samples": clipped,
    }

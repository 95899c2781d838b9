"""MIDI to audio: 44.1 kHz, 16-bit stereo WAV, rendered in process by FluidSynth (pyfluidsynth).

Engines (one `fluidsynth.Synth` with the SoundFont loaded) live in a small per-process pool, at
most `SynthConfig.workers` of them, created on first need (FluidSynth shares the sample data of a
SoundFont between the synths that load the same file, so each further engine costs about 13 MB and
50 ms). A synth is not reentrant: each render borrows a free engine (or waits for one), so several
renders can run at the same time on different engines. Each render resets its engine first (all
sounds off; programs, controllers and pitch bend; the reverb and chorus buffers and LFOs), so one
render cannot leak into the next: the same MIDI renders to the same samples, except that
FluidSynth keeps a little DSP state in the voices it recycles, which can change a note's first
milliseconds by a few LSB (below -54 dBFS) depending on what was played before.

The MIDI file is played by FluidSynth's own MIDI player driven by the synth's sample clock
(``player.timing-source = "sample"``), exactly as ``fluidsynth -F out.wav`` does, so every event
(control changes, pitch bend, sustain pedal, program changes, drums on channel 10) sounds as it
does in the FluidSynth CLI (same samples at the same instants). Samples are pulled as 32-bit floats
in large blocks until the player passes the file's last tick, then a release tail is added (cut at
silence), and the floats become int16 with a peak limit (see `SynthConfig`). Up to about a block
before the end of the music (known from the file's tempo map) the render goes in a few long calls
that release the GIL, so that it runs beside Python work in other threads (see `_play`).

Long music (`SynthConfig.parallel_min_seconds`) is rendered on several engines at once, one CPU
core each: synthesis is linear (every voice is rendered on its own and FluidSynth's reverb and
chorus are linear filters that start empty), so the MIDI's channels are split into groups balanced
by note duration, each group's MIDI keeps every event of the file but the notes of the other
groups' channels, the groups render in threads (long render calls release the GIL, see `_Fluid`), and
their float buffers are summed before the tail and the peak limit are applied, once, to the sum. The result is
the single-engine render but for the voice leftovers above: FluidSynth ramps the first 64 samples
of a note from the pan of the previous note its voice played (its fix of issue #768), and channels
rendered apart hand their voices to other notes, so some onsets differ for 1.5 ms (measured: at
most 110 LSB, -50 dBFS, in 0.4% of the samples of a dense 10-minute song; the difference is 70 dB
below the music). Each engine runs its own reverb (about a fifth of the work), and two renders in
parallel need two free cores: on a machine whose cores are busy it is no faster.

WAV is the only audio format written (stdlib `wave`; the studio does not need ffmpeg).
"""

from __future__ import annotations

import ctypes
import math
import os
import struct
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from studio.core.errors import InputError, StudioError
from studio.core.midi import _varlen, _varlen_bytes

__all__ = [
    "SynthConfig",
    "SynthUnavailable",
    "audio_stats",
    "find_soundfont",
    "render_midi",
    "render_to_wav",
    "soundfont_problem",
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
    max_music_seconds
        Longest music rendered (by the file's tempo map, then as played): a longer file is an
        `InputError`, never hours of audio. The studio's reader already cuts music to 10 minutes
        and drops events after the last note (`studio.core.midi`); this bounds any other file.
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
    workers
        Most engines (and CPU cores) used, by one long render or by renders running at the same
        time; 0 means ``min(os.cpu_count(), 4)``. Each engine costs about 13 MB once the first has
        loaded the SoundFont.
    parallel_min_seconds
        Music at least this long (by the MIDI file's tempo map, to its end of track) is rendered
        on several engines at once, its channels split between them; shorter music, or music with
        notes on one channel only, renders on one engine (starting the threads and summing the
        buffers is not worth it for a short song).
    """

    sample_rate: int = 44100
    gain: float = 0.5
    reverb: bool = True
    chorus: bool = False
    max_music_seconds: float = 900.0
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
    workers: int = 0
    parallel_min_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.sample_rate < 8000 or self.sample_rate > 192000:
            raise ValueError(f"sample_rate must be 8000-192000 Hz, got {self.sample_rate}")
        if not 0.0 < self.gain <= 10.0:
            raise ValueError(f"gain must be in (0, 10], got {self.gain}")
        if self.peak_dbfs > 0.0:
            raise ValueError(f"peak_dbfs must be <= 0 dBFS, got {self.peak_dbfs}")
        if not self.max_music_seconds > 0.0:
            raise ValueError(f"max_music_seconds must be > 0, got {self.max_music_seconds}")
        if self.max_tail_seconds < 0.0:
            raise ValueError(f"max_tail_seconds must be >= 0, got {self.max_tail_seconds}")
        if self.block_frames < 64:
            raise ValueError(f"block_frames must be >= 64, got {self.block_frames}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: one per CPU core, at most 4), got {self.workers}")
        if self.parallel_min_seconds < 0.0:
            raise ValueError(f"parallel_min_seconds must be >= 0, got {self.parallel_min_seconds}")

    def worker_count(self) -> int:
        """How many engines this config may use: `workers`, or ``min(os.cpu_count(), 4)`` for 0."""
        return self.workers if self.workers > 0 else max(1, min(os.cpu_count() or 1, 4))


class SynthUnavailable(StudioError):
    """FluidSynth or a SoundFont is missing; the message says what to install or set."""


ENV_SOUNDFONT = "STUDIO_SOUNDFONT"
REPO_SOUNDFONTS = Path(__file__).resolve().parents[2] / "soundfonts"
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


def soundfont_problem(path: Path) -> str | None:
    """Why `path` cannot be a SoundFont, from its RIFF header (not a RIFF sfbk/DLS file, or shorter
    than the header says), or None. Checked before FluidSynth loads it, so that a damaged file gives
    one clear line instead of FluidSynth's own log lines on stderr."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(12)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] not in (b"sfbk", b"DLS "):
        return "is not a SoundFont (no RIFF sfbk header)"
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if declared > size:
        return f"is truncated ({size:,} of its {declared:,} bytes)"
    return None


def _bad_soundfont_message(path: Path, problem: str) -> str:
    return f"the SoundFont {path} {problem}: use a valid .sf2/.sf3 (set STUDIO_SOUNDFONT, or put one in soundfonts/)"


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


_CHUNK_CALLS = 256  # a float buffer holds this many render calls (1,048,576 frames, 24 s at 44.1 kHz)
_RELEASE_GIL_FRAMES = 32768  # render calls this long (0.74 s at 44.1 kHz, a few ms of work) let other threads run


class _Fluid:
    """ctypes prototypes for the libfluidsynth calls of a render.

    Only long renders release the GIL (`write_float`, `_RELEASE_GIL_FRAMES` frames or more). The
    calls of a few microseconds (the player's status and tick, resets, small renders) keep it:
    taking the GIL back after a call waits until the thread holding it lets go, up to the
    interpreter's switch interval (5 ms) while another thread runs Python (the piano roll drawn
    beside the render, other requests), much longer on a busy machine, so a render that gave it
    away at every call ran several times slower beside Python work than alone.
    """

    def __init__(self, fs: ModuleType) -> None:
        lib = fs._fl
        void_p, c_int = ctypes.c_void_p, ctypes.c_int

        def proto(name: str, restype: Any, *argtypes: Any, required: bool = True, release_gil: bool = False) -> Any:
            if not hasattr(lib, name):
                if not required:
                    return None
                raise SynthUnavailable(
                    f"libfluidsynth lacks {name} (FluidSynth 2.x is needed): {INSTALL_HINT}"
                )
            kind = ctypes.CFUNCTYPE if release_gil else ctypes.PYFUNCTYPE
            return kind(restype, *argtypes)((name, lib))

        self.fs = fs
        self.version_str = proto("fluid_version_str", ctypes.c_char_p)
        write_float = ("fluid_synth_write_float", c_int, void_p, c_int, void_p, c_int, c_int, void_p, c_int, c_int)
        self.write_float = proto(*write_float, release_gil=True)
        self.write_float_held = proto(*write_float)
        self.new_player = proto("new_fluid_player", void_p, void_p)
        self.delete_player = proto("delete_fluid_player", None, void_p)
        self.player_add_mem = proto("fluid_player_add_mem", c_int, void_p, ctypes.c_char_p, ctypes.c_size_t)
        self.player_play = proto("fluid_player_play", c_int, void_p)
        self.player_stop = proto("fluid_player_stop", c_int, void_p)
        self.player_status = proto("fluid_player_get_status", c_int, void_p)
        self.player_current_tick = proto("fluid_player_get_current_tick", c_int, void_p)
        self.player_total_ticks = proto("fluid_player_get_total_ticks", c_int, void_p)
        self.all_sounds_off = proto("fluid_synth_all_sounds_off", c_int, void_p, c_int)
        self.system_reset = proto("fluid_synth_system_reset", c_int, void_p)
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

    def render(self, synth: int, frames: int, address: int) -> int:
        """`frames` stereo float frames into interleaved memory at `address`; FluidSynth's status."""
        write = self.write_float if frames >= _RELEASE_GIL_FRAMES else self.write_float_held
        return write(synth, frames, address, 0, 2, address, 1, 2)

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
        problem = soundfont_problem(soundfont)
        if problem:
            return False, _bad_soundfont_message(soundfont, problem)
        note = _missing_env_note()
        return True, f"FluidSynth {version} with {soundfont}" + (f" ({note})" if note else "")
    except SynthUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a status line must never crash its caller
        return False, f"FluidSynth cannot be used ({type(exc).__name__}: {exc}): {INSTALL_HINT}"


# --- the engines -----------------------------------------------------------------------------

# FluidSynth's synth.dynamic-sample-loading (load a preset's samples only when a channel selects
# it) stays off. Without it the first engine loads all of FluidR3_GM (+157 MB RSS, 0.16 s) and each
# further engine costs +13 MB and 0.05 s, because FluidSynth's sample cache shares the sample data
# of one file between synths. With it an engine starts in 0.02 s and +16 MB, but each engine keeps
# its own copy of the samples it has played: after the 10-minute and 5-minute test files two held
# +236 MB against +170 MB without. Render times were the same either way (within the noise).
_DYNAMIC_SAMPLE_LOADING = False


class _Engine:
    """One synth with its SoundFont loaded; used by one render at a time (see `_Pool`)."""

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
            **{"player.timing-source": "sample", "player.reset-synth": 0, "synth.lock-memory": 0,
               "synth.dynamic-sample-loading": int(_DYNAMIC_SAMPLE_LOADING)},
        )
        buf = ctypes.create_string_buffer(32)
        fluid.settings_copystr(self.synth.settings, b"player.timing-source", buf, 32)
        if buf.value != b"sample":
            self.synth.delete()
            raise SynthUnavailable(f"FluidSynth refused player.timing-source=sample (got {buf.value!r})")
        self._flush = np.zeros((2 * _FLUID_BLOCK, 2), dtype=np.float32)
        problem = soundfont_problem(soundfont)
        if problem:
            self.synth.delete()
            raise SynthUnavailable(_bad_soundfont_message(soundfont, problem))
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
        self.fluid.all_sounds_off(synth, -1)
        # system_reset: all voices off, every channel's program/bank/controllers/pitch bend back
        # to the defaults, and the reverb and chorus delay lines cleared.
        self.fluid.system_reset(synth)
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
        self.fluid.render(synth, 2 * _FLUID_BLOCK, self._flush.ctypes.data)

    def delete(self) -> None:
        self.synth.delete()


class _Pool:
    """The engines of this process: lent to one render at a time, created when first needed.

    At most ``config.worker_count()`` engines exist for a render's config; idle engines for
    another SoundFont or sample rate are deleted to make room. A render asks for up to `want`
    engines and gets at least one: those free now (most recently used first, so renders one after
    another use the same engine) and new ones while there is room; it waits only when it would
    get none. Never waiting for a second engine while holding one keeps two long renders from
    deadlocking each other.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._idle: list[_Engine] = []  # most recently released last
        self._lent = 0  # engines lent out, plus places kept for engines being created

    def acquire(self, config: SynthConfig, want: int = 1) -> list[_Engine]:
        fluid = _fluid()
        soundfont = find_soundfont(config)
        if soundfont is None:
            raise SynthUnavailable(_no_soundfont_message(config))
        key = (soundfont.resolve(), config.sample_rate)
        capacity = config.worker_count()
        want = max(1, min(want, capacity))
        doomed: list[_Engine] = []
        with self._cond:
            while True:
                mine = [e for e in self._idle if e.key == key][::-1][:want]
                for engine in mine:
                    self._idle.remove(engine)
                missing = want - len(mine)
                room = capacity - self._lent - len(self._idle) - len(mine)
                if missing:  # then every idle engine left is for another font or rate
                    while room < missing and self._idle:
                        doomed.append(self._idle.pop(0))
                        room += 1
                new = max(0, min(missing, room))
                if mine or new:
                    self._lent += len(mine) + new
                    break
                self._cond.wait()
        for engine in doomed:
            engine.delete()
        engines = list(mine)
        try:
            for _ in range(new):
                engines.append(_Engine(fluid, key[0], config.sample_rate, config.gain))
        except BaseException:
            with self._cond:
                self._lent -= len(mine) + new - len(engines)  # the places never filled
            self.release(engines)
            raise
        return engines

    def release(self, engines: list[_Engine]) -> None:
        with self._cond:
            self._idle.extend(engines)
            self._lent -= len(engines)
            self._cond.notify_all()

    def engines(self) -> int:
        """How many engines exist now (idle or lent)."""
        with self._cond:
            return self._lent + len(self._idle)

    def clear(self) -> int:
        """Delete the idle engines (those lent out stay) and return how many were deleted."""
        with self._cond:
            idle, self._idle = self._idle, []
        for engine in idle:
            engine.delete()
        return len(idle)


_POOL = _Pool()


# --- splitting a MIDI file by channels -------------------------------------------------------


@dataclass
class _Split:
    """A Standard MIDI File taken apart to be written again with some channels' notes left out.

    `parts` are, in file order, chunks kept byte for byte (the header, unknown chunks, trailing
    bytes) and MTrk chunks as their events: (absolute tick, channel for a note-on/off else -1,
    the event's bytes with an explicit status byte).
    """

    parts: list[bytes | list[tuple[int, int, bytes]]]
    weights: dict[int, int]  # channel -> note ticks (plus an allowance per note for its release)
    seconds: float  # the music's length by the tempo map, to the last end of track

    def groups(self, n: int) -> list[list[int]]:
        """The note channels in at most `n` groups of about equal weight (greedy, heaviest first)."""
        loads = [0] * n
        groups: list[list[int]] = [[] for _ in range(n)]
        for channel in sorted(self.weights, key=lambda c: (-self.weights[c], c)):
            i = min(range(n), key=lambda g: (loads[g], g))
            groups[i].append(channel)
            loads[i] += self.weights[channel]
        return [sorted(g) for g in groups if g]

    def sounding_channels(self) -> int:
        return sum(1 for w in self.weights.values() if w > 0)

    def midi(self, channels: list[int]) -> bytes:
        """The file with every event but the note-ons and note-offs of channels not in `channels`."""
        keep = frozenset(channels)
        out: list[bytes] = []
        for part in self.parts:
            if isinstance(part, bytes):
                out.append(part)
                continue
            body = bytearray()
            now = 0
            for tick, channel, raw in part:
                if channel >= 0 and channel not in keep:
                    continue  # its delta time goes to the next event kept
                delta = tick - now
                if delta > 0x0FFFFFFF:
                    raise ValueError("delta time too long for a MIDI file")
                body += _varlen_bytes(delta)
                body += raw
                now = tick
            out.append(b"MTrk" + struct.pack(">I", len(body)) + bytes(body))
        return b"".join(out)


_CHANNEL_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def _scan_track(body: bytes, allowance: int, tempos: list[tuple[int, int]],
                weights: dict[int, int]) -> tuple[list[tuple[int, int, bytes]], int] | None:
    """The events of one MTrk body and its end tick, or None when FluidSynth might read it otherwise.

    None for what FluidSynth's reader treats differently from the standard (running status after
    a meta or SysEx event, which it takes as another meta or SysEx), for events it does not accept
    in a file (0xF1-0xFE, 0xF7) and for a track without an end-of-track: such files render on one
    engine, exactly as FluidSynth reads them.
    """
    events: list[tuple[int, int, bytes]] = []
    sounding: dict[tuple[int, int], list[int]] = {}
    pos, tick, running, end = 0, 0, 0, len(body)
    while pos < end:
        delta, pos = _varlen(body, pos)
        tick += delta
        start = pos
        status = body[pos]
        if status < 0x80:
            if not running:
                return None
            status = running
        else:
            pos += 1
        if status == 0xFF:
            kind = body[pos]
            length, pos = _varlen(body, pos + 1)
            pos += length
            if pos > end:
                return None
            if kind == 0x2F:
                if length:
                    return None
                events.append((tick, -1, b"\xff\x2f\x00"))
                for (channel, _), starts in sounding.items():  # notes never released
                    weights[channel] += sum(tick - t + allowance for t in starts)
                return events, tick
            if kind == 0x51 and length == 3:
                tempos.append((tick, int.from_bytes(body[pos - 3 : pos], "big")))
            events.append((tick, -1, body[start:pos]))
            running = 0
        elif status == 0xF0:
            length, pos = _varlen(body, pos)
            pos += length
            if pos > end:
                return None
            events.append((tick, -1, body[start:pos]))
            running = 0
        elif status > 0xF0:
            return None
        else:
            n = _CHANNEL_DATA_BYTES[status & 0xF0]
            if pos + n > end:
                return None
            raw = bytes([status]) + body[pos : pos + n]
            pos += n
            running = status
            kind, channel = status & 0xF0, status & 0x0F
            if kind in (0x80, 0x90):
                weights.setdefault(channel, 0)
                key = (channel, raw[1])
                if kind == 0x90 and raw[2]:
                    sounding.setdefault(key, []).append(tick)
                elif sounding.get(key):
                    weights[channel] += tick - sounding[key].pop(0) + allowance
                events.append((tick, channel, raw))
            else:
                events.append((tick, -1, raw))
    return None  # no end of track


def _scan_midi(data: bytes) -> _Split | None:
    """`data` taken apart by `_Split`, or None when it should render on one engine as it is."""
    try:
        header_len = struct.unpack(">I", data[4:8])[0]
        _, n_tracks, division = struct.unpack(">HHH", data[8:14])
    except struct.error:
        return None
    pos = 8 + header_len
    if header_len < 6 or pos > len(data):
        return None
    if division & 0x8000:
        frames = 256 - (division >> 8)
        ticks_per_second = (29.97 if frames == 29 else frames) * (division & 0xFF)
        allowance = round(ticks_per_second / 4)
    else:
        ticks_per_second = 0.0
        allowance = division // 2  # half a beat of release per note
    if not division & 0x7FFF or (division & 0x8000 and ticks_per_second <= 0):
        return None
    parts: list[bytes | list[tuple[int, int, bytes]]] = [data[:pos]]
    tempos: list[tuple[int, int]] = []
    weights: dict[int, int] = {}
    end_tick = 0
    tracks = 0
    try:
        while pos + 8 <= len(data):
            length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
            if pos + 8 + length > len(data):
                return None
            if data[pos : pos + 4] == b"MTrk" and tracks < n_tracks:
                tracks += 1
                scanned = _scan_track(data[pos + 8 : pos + 8 + length], allowance, tempos, weights)
                if scanned is None:
                    return None
                parts.append(scanned[0])
                end_tick = max(end_tick, scanned[1])
            else:
                parts.append(data[pos : pos + 8 + length])
            pos += 8 + length
    except (IndexError, ValueError):
        return None
    if pos < len(data):
        parts.append(data[pos:])
    if ticks_per_second:
        seconds = end_tick / ticks_per_second
    else:
        seconds, tick, tempo = 0.0, 0, 500_000
        for at, new_tempo in sorted(t for t in tempos if t[0] < end_tick):
            seconds += (at - tick) * tempo / 1e6 / division
            tick, tempo = at, new_tempo
        seconds += (end_tick - tick) * tempo / 1e6 / division
    return _Split(parts, weights, seconds)


# --- rendering -------------------------------------------------------------------------------


class _FloatFrames:
    """Interleaved float32 stereo frames, appended block by block straight from FluidSynth.

    With a `sink`, each chunk is handed to it, ``sink(index, frames)``, as soon as it is full
    (and the last one by `flush`), and dropped here.
    """

    def __init__(self, chunk_frames: int, sink: Callable[[int, np.ndarray], None] | None = None) -> None:
        self.chunk_frames = chunk_frames
        self.chunks: list[np.ndarray] = []  # each (chunk_frames, 2), the last one partly used
        self.used: list[int] = []  # frames used in each chunk
        self.frames = 0
        self.sink = sink
        self.last = (0, 0)  # (chunk index, start frame) of the latest `render`

    @classmethod
    def of(cls, chunks: list[np.ndarray]) -> _FloatFrames:
        """Frames made of these full chunks."""
        frames = cls(0)
        frames.chunks = chunks
        frames.used = [len(c) for c in chunks]
        frames.frames = sum(frames.used)
        return frames

    def render(self, fluid: _Fluid, synth: int, frames: int) -> np.ndarray:
        """Render `frames` (a multiple of 64, at most `chunk_frames`) and return them as a view."""
        if not self.chunks or not len(self.chunks[-1]) or self.used[-1] + frames > self.chunk_frames:
            self.flush()
            self.chunks.append(np.empty((self.chunk_frames, 2), dtype=np.float32))
            self.used.append(0)
        chunk, start = self.chunks[-1], self.used[-1]
        address = chunk.ctypes.data + start * chunk.strides[0]
        if fluid.render(synth, frames, address) != 0:
            raise SynthUnavailable("FluidSynth failed to render audio (fluid_synth_write_float)")
        self.used[-1] += frames
        self.frames += frames
        self.last = (len(self.chunks) - 1, start)
        return chunk[start : start + frames]

    def render_many(self, fluid: _Fluid, synth: int, frames: int, step: int) -> None:
        """Render `frames` (a multiple of `step`, itself a multiple of 64) in as few calls as the
        chunks allow, each call a multiple of `step`: the same samples as `frames // step` calls of
        `step` (FluidSynth renders 64-frame blocks either way), with the GIL released for all but
        a few Python steps."""
        while frames > 0:
            room = self.chunk_frames - self.used[-1] if self.chunks and len(self.chunks[-1]) else self.chunk_frames
            n = min(frames, room // step * step) or step  # no room left: `render` starts a chunk
            self.render(fluid, synth, n)
            frames -= n

    def cut_last(self, frames: int) -> None:
        """Drop the last `frames` frames of the latest `render` (they are not heard)."""
        self.used[-1] -= frames
        self.frames -= frames

    def flush(self) -> None:
        """Hand the current chunk to the sink, if there is one."""
        if self.sink is not None and self.chunks and len(self.chunks[-1]):
            i = len(self.chunks) - 1
            self.sink(i, self.chunks[i][: self.used[i]])
            self.chunks[i] = np.empty((0, 2), dtype=np.float32)
            self.used[i] = 0

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
        for view in self.views():  # two passes a chunk (each gives the GIL away and takes it back)
            np.multiply(view, factor, out=view)
            # No clip needed: `render_midi` scales the peak to at most peak_dbfs <= 0 dBFS, so every
            # product lies within +-32767.
            np.rint(view, out=out[start : start + len(view)], casting="unsafe")
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


def _block_and_window(config: SynthConfig) -> tuple[int, int]:
    """Frames per render call during the music, and per silence window during the tail."""
    block = -(-config.block_frames // _FLUID_BLOCK) * _FLUID_BLOCK
    window = -(-round(config.silence_window_seconds * config.sample_rate) // _FLUID_BLOCK) * _FLUID_BLOCK
    return block, max(_FLUID_BLOCK, window)


_TAIL_GROUP_SECONDS = 0.5  # the release tail is rendered this much at a time, then searched for silence


class _Overshot(Exception):
    """Rendering ahead went past the end of the music (the tempo map misjudged it): render again,
    block by block."""


def _too_long(config: SynthConfig) -> InputError:
    return InputError(
        f"the MIDI file plays for more than {config.max_music_seconds / 60:g} minutes: "
        "the studio renders shorter music (read it with the studio first to cut it)"
    )


def _sure_music_frames(seconds: float | None, config: SynthConfig, block: int) -> int:
    """Frames, in whole blocks, that surely come before the player reaches the end of music of
    `seconds` (by the file's tempo map): one block and 0.1 s short of it. 0 when unknown."""
    if seconds is None:
        return 0
    return max(0, math.floor((seconds * config.sample_rate - 0.1 * config.sample_rate) / block) - 1) * block


def _play(engine: _Engine, data: bytes, config: SynthConfig, frames: _FloatFrames,
          cut_tail: bool = True, music_seconds: float | None = None) -> tuple[int, list[tuple[int, int]]]:
    """Play `data` through FluidSynth's player into `frames`, then the release tail; floats, unscaled.

    The music ends when the player has passed the MIDI file's last tick (its end of track), which
    is where the CLI of FluidSynth < 2.3.1 stops. Since 2.3.1 the player itself goes on until no
    voice sounds plus 2 s, and never ends while a note hangs (FluidSynth issue #1257), so its status
    is not waited for: the tail is ours, capped by `SynthConfig.max_tail_seconds`. The player keeps
    running during the tail, so what it does after the last event (2.3.1+ lifts sustain pedals) is
    heard as in the CLI.

    The end of the music is looked for after every block; when the music's length by its tempo map
    is known (`music_seconds`), everything up to a block and 0.1 s before it is rendered first in
    as few calls as the buffer allows, then block by block as before: the same samples, but the
    GIL is taken a few times rather than three times a block, so a render in one thread and
    Python work in another (the piano roll drawn beside it, other requests) run at the same time
    instead of handing the GIL to each other hundreds of times (each hand-off waits up to 5 ms
    for a busy thread). `_Overshot` if the player had already passed the end (never seen; the
    caller renders again without it). The tail is rendered `_TAIL_GROUP_SECONDS` at a time
    likewise, and cut at its first silent window.

    With `cut_tail` the tail stops at its first silent window, or its last window fades out (see
    `_cut_tail`); without, the whole tail is rendered, for `_cut_tail` to cut the sum of several.

    Returns
    -------
    tuple
        The frames of music before the tail, and where each tail window lies in `frames` (chunk
        index, start frame).
    """
    fluid, fs = engine.fluid, engine.fluid.fs
    synth = engine.synth.synth
    block, window = _block_and_window(config)
    player = fluid.new_player(synth)
    if not player:
        raise SynthUnavailable("FluidSynth could not create a MIDI player")
    windows: list[tuple[int, int]] = []
    try:
        if fluid.player_add_mem(player, data, len(data)) != 0:
            raise InputError("FluidSynth could not take the MIDI data")
        fluid.player_play(player)
        # The player is called back inside fluid_synth_write_float every 64 frames, as in the
        # CLI; its first call loads the file and sends the events of tick 0.
        frames.render(fluid, synth, block)
        total_ticks = fluid.player_total_ticks(player)
        if total_ticks <= 0 and fluid.player_status(player) != fs.FLUID_PLAYER_PLAYING:
            raise InputError("FluidSynth could not read the MIDI data (a corrupt or empty MIDI file)")
        ahead = _sure_music_frames(music_seconds, config, block) - frames.frames
        if ahead > 0:
            frames.render_many(fluid, synth, ahead, block)
            if not (fluid.player_status(player) == fs.FLUID_PLAYER_PLAYING
                    and fluid.player_current_tick(player) < total_ticks):
                raise _Overshot
        longest = config.max_music_seconds * config.sample_rate
        while (fluid.player_status(player) == fs.FLUID_PLAYER_PLAYING
               and fluid.player_current_tick(player) < total_ticks):
            if frames.frames > longest:
                raise _too_long(config)
            frames.render(fluid, synth, block)
        music = frames.frames

        # Release tail: stop at the first silent window, or fade out the last one at the limit.
        silence = 10.0 ** (config.silence_dbfs / 20.0)
        tail_windows = math.ceil(config.max_tail_seconds * config.sample_rate / window)
        group = max(1, min(round(_TAIL_GROUP_SECONDS * config.sample_rate / window), frames.chunk_frames // window))
        done = 0
        while done < tail_windows:
            n = min(group, tail_windows - done)
            rendered = frames.render(fluid, synth, n * window)
            index, start = frames.last
            peaks = np.abs(rendered).reshape(n, -1).max(axis=1) if cut_tail else None
            for k in range(n):
                windows.append((index, start + k * window))
                if peaks is None:
                    continue
                if peaks[k] < silence:
                    frames.cut_last((n - k - 1) * window)  # rendered past the silence: not heard
                    return music, windows
                if done + k == tail_windows - 1:
                    rendered[k * window :] *= np.linspace(1.0, 0.0, window, dtype=np.float32)[:, None]
            done += n
    finally:
        fluid.player_stop(player)
        fluid.delete_player(player)
    return music, windows


def _cut_tail(chunks: list[np.ndarray], windows: list[tuple[int, int]], config: SynthConfig) -> None:
    """The tail rule of `_play`, on fully rendered tail `windows` of `chunks` (cut in place)."""
    _, window = _block_and_window(config)
    silence = 10.0 ** (config.silence_dbfs / 20.0)
    for i, (index, start) in enumerate(windows):
        chunk = chunks[index][start : start + window]
        if float(np.max(np.abs(chunk))) < silence:
            chunks[index] = chunks[index][: start + window]
            del chunks[index + 1 :]
            return
        if i == len(windows) - 1:
            chunk *= np.linspace(1.0, 0.0, len(chunk), dtype=np.float32)[:, None]


class _Mix:
    """The sum of several renders' float chunks, each summed as soon as every render has made it.

    Chunks are added in render order (0 + 1 + 2 ...) whatever the thread that finishes last, so
    the sum is the same from run to run; summing as they come keeps about one render's buffer in
    memory rather than one per engine.
    """

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self._lock = threading.Lock()
        self._waiting: dict[int, list[np.ndarray | None]] = {}
        self.sums: dict[int, np.ndarray] = {}
        self.mismatch = False

    def sink(self, part: int) -> Callable[[int, np.ndarray], None]:
        def add(index: int, chunk: np.ndarray) -> None:
            with self._lock:
                slot = self._waiting.setdefault(index, [None] * self.parts)
                slot[part] = chunk
                if any(c is None for c in slot):
                    return
                del self._waiting[index]
            total = slot[0]
            assert total is not None
            for other in slot[1:]:
                assert other is not None
                if other.shape != total.shape:
                    self.mismatch = True
                    return
                np.add(total, other, out=total)
            self.sums[index] = total
        return add

    def chunks(self) -> list[np.ndarray] | None:
        """The summed chunks in order, or None when the renders did not line up."""
        if self.mismatch or self._waiting or sorted(self.sums) != list(range(len(self.sums))):
            return None
        return [self.sums[i] for i in range(len(self.sums))]


def _render_single(engine: _Engine, data: bytes, config: SynthConfig, music_seconds: float | None = None) -> _FloatFrames:
    block, window = _block_and_window(config)
    frames = _FloatFrames(max(block, window) * _CHUNK_CALLS)
    engine.reset(config)
    try:
        _play(engine, data, config, frames, music_seconds=music_seconds)
    except _Overshot:  # the tempo map misjudged the end: block by block from the start
        frames = _FloatFrames(max(block, window) * _CHUNK_CALLS)
        engine.reset(config)
        _play(engine, data, config, frames)
    return frames


def _render_parallel(engines: list[_Engine], split: _Split, config: SynthConfig) -> _FloatFrames | None:
    """Render `split`'s channel groups on `engines` at once and sum them; None if they disagree.

    The renders disagree (and the caller renders on one engine instead) only if FluidSynth refuses
    a group's file or the groups' music ends at different frames, neither of which should happen:
    every group keeps the file's tempo map and end of track.
    """
    groups = split.groups(len(engines))
    if len(groups) < 2:
        return None
    datas = [split.midi(group) for group in groups]
    block, window = _block_and_window(config)
    mix = _Mix(len(groups))
    results: list[tuple[int, list[tuple[int, int]]] | BaseException | None] = [None] * len(groups)

    def run(i: int) -> None:
        try:
            frames = _FloatFrames(max(block, window) * _CHUNK_CALLS, sink=mix.sink(i))
            engines[i].reset(config)
            results[i] = _play(engines[i], datas[i], config, frames, cut_tail=False, music_seconds=split.seconds)
            frames.flush()
        except BaseException as exc:  # noqa: BLE001 - re-raised (or answered) by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"studio-synth-{i}", daemon=True)
               for i in range(1, len(groups))]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, (StudioError, _Overshot)):
            return None
        if isinstance(result, BaseException):
            raise result
    chunks = mix.chunks()
    if chunks is None or any(r != results[0] for r in results):
        return None
    _, windows = results[0]  # type: ignore[misc]
    _cut_tail(chunks, windows, config)
    return _FloatFrames.of(chunks)


def render_midi(midi: bytes | str | os.PathLike[str], config: SynthConfig | None = None) -> np.ndarray:
    """Render a MIDI file to 16-bit stereo audio, as the FluidSynth CLI plays it.

    Music of at least `SynthConfig.parallel_min_seconds` with notes on several channels is
    rendered on several engines at once (see the module's notes); the audio is the same.

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
    split = _scan_midi(data)  # the music's length (to render ahead in large calls) and its channels
    if split is not None and split.seconds > config.max_music_seconds:
        raise _too_long(config)
    want = 1
    if split is not None and split.seconds >= config.parallel_min_seconds:
        want = min(config.worker_count(), split.sounding_channels())
    engines = _POOL.acquire(config, want)
    try:
        frames = None
        if len(engines) > 1 and split is not None:
            frames = _render_parallel(engines, split, config)
        if frames is None:
            frames = _render_single(engines[0], data, config, split.seconds if split is not None else None)
    finally:
        _POOL.release(engines)
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

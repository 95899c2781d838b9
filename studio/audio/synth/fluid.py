"""pyfluidsynth, and the one wrapper (`Fluid`) around its private libfluidsynth handle.

pyfluidsynth's public API is used wherever it serves: `fluidsynth.Synth` creates a synth with its
settings, and `Synth.get_setting`, `Synth.sfload` and `Synth.delete` are called as they are.

The rest of a render goes through `fluidsynth._fl`, the ctypes library pyfluidsynth loads, with
prototypes of our own (`Fluid`), because the public API lacks it or does it too slowly:

1. Float output: ``fluid_synth_write_float`` straight into our numpy buffers. The public
   `Synth.get_samples` gives int16 from ``fluid_synth_write_s16``, which dithers (other bytes than
   the float-to-int16 conversion of the fluidsynth CLI and of this studio's peak limit) and
   allocates a new array on every call.
2. The MIDI player fed from memory and polled after every block (status, current and total tick):
   the public `Synth.play_midi_file` takes only a file name and has no status or tick getters.
3. The GIL: pyfluidsynth builds its prototypes with `ctypes.CFUNCTYPE`, which gives the GIL away on
   every call. Calls of a few microseconds made after every block must keep it (see `Fluid`).
4. Resets between renders (``fluid_synth_set_sample_rate``, ``fluid_synth_set_gain``,
   ``fluid_synth_set_polyphony``,
   ``fluid_synth_reverb_on``/``chorus_on``) and the library's version, which pyfluidsynth does not
   wrap; these keep the GIL as in 3.

If pyfluidsynth changes so that this no longer works, `Fluid` fails with one `SynthUnavailable`
line starting "pyfluidsynth changed:" (the studio is tested with the pyfluidsynth of
``requirements.txt``), never an `AttributeError` from deep inside a render.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
from importlib import metadata
from types import ModuleType
from typing import Any

from studio.audio.synth.config import INSTALL_HINT, SynthUnavailable

__all__ = ["RELEASE_GIL_FRAMES", "Fluid", "get_fluid", "import_fluidsynth"]

RELEASE_GIL_FRAMES = 32768  # render calls this long (0.74 s at 44.1 kHz, a few ms of work) let other threads run


def import_fluidsynth() -> ModuleType:
    """The pyfluidsynth module; `SynthUnavailable` when it or libfluidsynth is missing."""
    try:
        # Deferred: loading libfluidsynth takes time at start-up and is optional (without it the
        # studio answers with MIDI and a piano roll), so it is loaded when audio is first asked for.
        # pyfluidsynth prints where it found the library when CI is set in the environment: that
        # debugging line is dropped, so the CLI's output stays its own (`bench --json` is one JSON
        # document, an error is one `error:` line).
        with contextlib.redirect_stdout(io.StringIO()):
            import fluidsynth  # pyfluidsynth raises ImportError/OSError without libfluidsynth
    except (ImportError, OSError) as exc:
        raise SynthUnavailable(f"FluidSynth is not installed ({exc}): {INSTALL_HINT}, and `pip install pyfluidsynth`") from None
    if not hasattr(fluidsynth, "Synth"):
        raise SynthUnavailable("the `fluidsynth` Python module is not pyfluidsynth: `pip install pyfluidsynth`")
    return fluidsynth


def _changed(what: str) -> SynthUnavailable:
    """The error for a pyfluidsynth that no longer has what `Fluid` relies on."""
    try:
        version = metadata.version("pyfluidsynth")
    except metadata.PackageNotFoundError:
        version = "unknown version"
    return SynthUnavailable(
        f"pyfluidsynth changed: {what} (pyfluidsynth {version}); "
        "install the version in requirements.txt (`pip install -r requirements.txt`)"
    )


class Fluid:
    """ctypes prototypes, on pyfluidsynth's private library handle, for the libfluidsynth calls of
    a render (why they are not pyfluidsynth's public API: see the module's notes).

    Only long renders release the GIL (`write_float`, `RELEASE_GIL_FRAMES` frames or more). The
    calls of a few microseconds (the player's status and tick, resets, small renders) keep it:
    taking the GIL back after a call waits until the thread holding it lets go, up to the
    interpreter's switch interval (5 ms) while another thread runs Python (the piano roll drawn
    beside the render, other requests), much longer on a busy machine, so a render that gave it
    away at every call ran several times slower beside Python work than alone.
    """

    def __init__(self, fs: ModuleType) -> None:
        lib = getattr(fs, "_fl", None)
        if not isinstance(lib, ctypes.CDLL):
            raise _changed("`fluidsynth._fl`, the libfluidsynth library the studio renders through, is gone")
        playing = getattr(fs, "FLUID_PLAYER_PLAYING", None)
        if not isinstance(playing, int):
            raise _changed("`fluidsynth.FLUID_PLAYER_PLAYING` is gone")
        void_p, c_int = ctypes.c_void_p, ctypes.c_int

        def proto(name: str, restype: Any, *argtypes: Any, required: bool = True, release_gil: bool = False) -> Any:
            if not hasattr(lib, name):
                if not required:
                    return None
                raise SynthUnavailable(f"libfluidsynth lacks {name} (FluidSynth 2.x is needed): {INSTALL_HINT}")
            kind = ctypes.CFUNCTYPE if release_gil else ctypes.PYFUNCTYPE
            return kind(restype, *argtypes)((name, lib))

        self.fs = fs
        self.playing = playing  # the player's status while it plays
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
        self.set_polyphony = proto("fluid_synth_set_polyphony", c_int, void_p, c_int)
        self.reverb_on = proto("fluid_synth_reverb_on", c_int, void_p, c_int, c_int)
        self.chorus_on = proto("fluid_synth_chorus_on", c_int, void_p, c_int, c_int)
        # Deprecated since 2.1 but still exported by libfluidsynth.so.3; used only while silent.
        self.set_sample_rate = proto("fluid_synth_set_sample_rate", None, void_p, ctypes.c_float, required=False)

    def new_synth(self, **settings: Any) -> Any:
        """A public `fluidsynth.Synth` made with `settings`, checked for what the calls above need:
        its ``fluid_synth_t`` pointer (``Synth.synth``, handed to them) and `Synth.get_setting`."""
        synth = self.fs.Synth(**settings)
        if not isinstance(getattr(synth, "synth", None), int) or not callable(getattr(synth, "get_setting", None)):
            raise _changed("`fluidsynth.Synth` no longer has its `synth` pointer or `get_setting`")
        return synth

    def render(self, synth: int, frames: int, address: int) -> int:
        """`frames` stereo float frames into interleaved memory at `address`; FluidSynth's status."""
        write = self.write_float if frames >= RELEASE_GIL_FRAMES else self.write_float_held
        return write(synth, frames, address, 0, 2, address, 1, 2)

    def version(self) -> str:
        raw = self.version_str()
        return raw.decode() if raw else "?"


_FLUID: Fluid | None = None  # made on first use, then shared by every engine of the process


def get_fluid() -> Fluid:
    """The process's `Fluid`; `SynthUnavailable` when FluidSynth is missing or pyfluidsynth changed."""
    global _FLUID
    if _FLUID is None:
        _FLUID = Fluid(import_fluidsynth())
    return _FLUID

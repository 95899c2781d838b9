"""FluidSynth engines: one `fluidsynth.Synth` with the SoundFont loaded, in a pool per process.

Engines live in a small per-process pool (`POOL`), at most `SynthConfig.workers` of them, created
on first need (FluidSynth shares the sample data of a SoundFont between the synths that load the
same file, so each further engine costs about 13 MB and 50 ms). A synth is not reentrant: each
render borrows a free engine (or waits for one), so several renders can run at the same time on
different engines. Each render resets its engine first (all sounds off; programs, controllers and
pitch bend; the reverb and chorus buffers and LFOs), so one render cannot leak into the next: the
same MIDI renders to the same samples, except that FluidSynth keeps a little DSP state in the
voices it recycles, which can change a note's first milliseconds by a few LSB (below -54 dBFS)
depending on what was played before.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from studio.audio.synth.config import FLUID_BLOCK, INSTALL_HINT, SynthConfig, SynthUnavailable
from studio.audio.synth.fluid import Fluid, get_fluid
from studio.audio.synth.soundfont import (
    bad_soundfont_message,
    find_soundfont,
    missing_env_note,
    no_soundfont_message,
    soundfont_problem,
)

__all__ = ["POOL", "Engine", "Pool", "synth_status"]


def synth_status() -> tuple[bool, str]:
    """Whether audio can be rendered here, and a one-line message saying with what or why not.

    Cheap (no SoundFont is loaded) and never raises.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "FluidSynth 2.3.1 with /path/font.sf2")`` or ``(False, "<what to install or set>")``.
    """
    try:
        fluid = get_fluid()
        version = fluid.version()
        config = SynthConfig()
        soundfont = find_soundfont(config)
        if soundfont is None:
            return False, no_soundfont_message(config)
        problem = soundfont_problem(soundfont)
        if problem:
            return False, bad_soundfont_message(soundfont, problem)
        note = missing_env_note()
        return True, f"FluidSynth {version} with {soundfont}" + (f" ({note})" if note else "")
    except SynthUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a status line must never crash its caller
        return False, f"FluidSynth cannot be used ({type(exc).__name__}: {exc}): {INSTALL_HINT}"


# FluidSynth's synth.dynamic-sample-loading (load a preset's samples only when a channel selects
# it) stays off. Without it the first engine loads all of FluidR3_GM (+157 MB RSS, 0.16 s) and each
# further engine costs +13 MB and 0.05 s, because FluidSynth's sample cache shares the sample data
# of one file between synths. With it an engine starts in 0.02 s and +16 MB, but each engine keeps
# its own copy of the samples it has played: after the 10-minute and 5-minute test files two held
# +236 MB against +170 MB without. Render times were the same either way (within the noise).
_DYNAMIC_SAMPLE_LOADING = False


class Engine:
    """One synth with its SoundFont loaded; used by one render at a time (see `Pool`)."""

    def __init__(self, fluid: Fluid, soundfont: Path, sample_rate: int, gain: float) -> None:
        self.fluid = fluid
        self.key = (soundfont, sample_rate)
        self.sample_rate = sample_rate
        # Settings as the fluidsynth CLI's fast render (-F) uses them: 16 MIDI channels, the player
        # clocked by rendered samples (not the wall clock), no memory locking.
        self.synth = fluid.new_synth(
            gain=float(gain),
            samplerate=float(sample_rate),
            channels=16,
            # player.reset-synth=0: the player must not reset the synth when it finishes (that
            # would cut the release tail); `reset` does it before each render instead.
            **{
                "player.timing-source": "sample",
                "player.reset-synth": 0,
                "synth.lock-memory": 0,
                "synth.dynamic-sample-loading": int(_DYNAMIC_SAMPLE_LOADING),
            },
        )
        timing = self.synth.get_setting("player.timing-source")
        if timing != "sample":
            self.synth.delete()
            raise SynthUnavailable(f"FluidSynth refused player.timing-source=sample (got {timing!r})")
        self._flush = np.zeros((2 * FLUID_BLOCK, 2), dtype=np.float32)
        problem = soundfont_problem(soundfont)
        if problem:
            self.synth.delete()
            raise SynthUnavailable(bad_soundfont_message(soundfont, problem))
        self.sfid = self.synth.sfload(str(soundfont))
        if self.sfid < 0:
            self.synth.delete()
            raise SynthUnavailable(
                f"FluidSynth could not load the SoundFont {soundfont}: use a valid .sf2/.sf3 "
                f"(set STUDIO_SOUNDFONT, or put one in soundfonts/)"
            )

    def reset(self, config: SynthConfig, music_seconds: float | None = None) -> None:
        """Silence and reset everything a previous render may have left, then apply `config` (its
        voice limit for music `music_seconds` long, `SynthConfig.polyphony_for`)."""
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
        if self.fluid.set_polyphony(synth, config.polyphony_for(music_seconds)) != 0:
            raise SynthUnavailable("FluidSynth refused to set its polyphony (fluid_synth_set_polyphony)")
        self.fluid.reverb_on(synth, -1, int(config.reverb))
        self.fluid.chorus_on(synth, -1, int(config.chorus))
        # Render (and drop) two silent blocks: the mixer applies the queued resets and hands the
        # voices killed above back to the synth, so the next notes find them free. Without this,
        # a render's first half second depends slightly on how the previous render ended.
        self.fluid.render(synth, 2 * FLUID_BLOCK, self._flush.ctypes.data)

    def delete(self) -> None:
        self.synth.delete()


class Pool:
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
        self._idle: list[Engine] = []  # most recently released last
        self._lent = 0  # engines lent out, plus places kept for engines being created

    def acquire(self, config: SynthConfig, want: int = 1) -> list[Engine]:
        fluid = get_fluid()
        soundfont = find_soundfont(config)
        if soundfont is None:
            raise SynthUnavailable(no_soundfont_message(config))
        key = (soundfont.resolve(), config.sample_rate)
        capacity = config.worker_count()
        want = max(1, min(want, capacity))
        doomed: list[Engine] = []
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
                engines.append(Engine(fluid, key[0], config.sample_rate, config.gain))
        except BaseException:
            with self._cond:
                self._lent -= len(mine) + new - len(engines)  # the places never filled
            self.release(engines)
            raise
        return engines

    def release(self, engines: list[Engine]) -> None:
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


POOL = Pool()

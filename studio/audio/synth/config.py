"""The synthesizer's settings (`SynthConfig`), its error (`SynthUnavailable`) and fixed numbers."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from studio.core.errors import StudioError

__all__ = ["FLUID_BLOCK", "FULL_SCALE", "INSTALL_HINT", "Lead", "SynthConfig", "SynthUnavailable"]


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
    loudness_lufs
        Integrated loudness of every render (ITU-R BS.1770, `studio.audio.loudness`): the float mix
        is scaled to it, so every take, preview and remix plays equally loud whatever the model
        and the instruments. None: no loudness step (nor melody lead), the mix only scaled down to
        `peak_dbfs`, as FluidSynth's level and `gain` leave it.
    true_peak_dbtp
        Highest true peak (4x oversampled) after the loudness step; above it a look-ahead limiter
        takes the peaks down (`studio.audio.loudness.normalize`).
    lead_lu
        With a `Lead` (the melody's channels), how far the melody is set above the accompaniment
        together, in LU, when it is under that: the accompaniment is turned down (never up).
    peak_dbfs
        Without the loudness step: highest sample peak in the WAV, in dB relative to full scale.
        The float mix is scaled *down* by exactly the factor needed when its peak would exceed
        this, so the WAV never clips; it is never scaled up.
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
    polyphony, min_polyphony, voice_seconds
        How many voices (one sample playing: a note is one or two) an engine sounds at once, at most:
        FluidSynth steals the quietest, oldest releasing voices beyond it, as a hardware synth does.
        Rendering costs about the voices sounding times the music's length, so the limit shrinks
        with the length, ``voice_seconds / seconds``, but never under `min_polyphony` (64, what a
        Sound Canvas SC-88 sounds; the studio's own takes peak at 64 on one engine, a dense jig
        with the choir) nor over `polyphony` (FluidSynth's default, 256): a take of 12 s may use
        all 256, one of 25 s 128, music of 50 s or longer 64. Without it, notes packed densely
        enough to keep 256 voices sounding (20,000 notes in 50 s) took 4.5 s to render, 1.3 s with it.
    render_budget
        Most work an engine does for one render, in estimated voice-seconds (one voice sounding
        for a second; an engine's reverb counts as ten voices, what follows the render as five, and
        each note of the take 0.12 voice-seconds for its reading, drawing and writing;
        `studio.audio.synth.budget`): the audio of music that would need more is cut where the
        budget is spent, every note released there, and the render says so. Set so that a take is
        answered within 5 s through the command on the project's 2-core machine (issue 23; measured
        2026-12-07): a take of four voices plays whole to about four minutes (a longer one is cut
        at about 3:45, its every note read and drawn), one voice alone to about five minutes, 20,000
        notes after 35-45 s. None: no budget.
    parallel_min_seconds
        Music at least this long (by the MIDI file's tempo map, to its end of track) is rendered
        on several engines at once, its channels split between them; shorter music, or music with
        notes on one channel only, renders on one engine (starting the threads and summing the
        buffers is not worth it for a short song), unless it is too dense for one engine's
        `render_budget` (thousands of notes in a minute): then on several too.
    """

    sample_rate: int = 44100
    gain: float = 0.5
    reverb: bool = True
    chorus: bool = False
    max_music_seconds: float = 900.0
    max_tail_seconds: float = 2.5
    silence_dbfs: float = -60.0
    silence_window_seconds: float = 0.05
    loudness_lufs: float | None = -16.0
    true_peak_dbtp: float = -1.0
    lead_lu: float = 1.0
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
    polyphony: int = 256
    min_polyphony: int = 64
    voice_seconds: float = 3200.0
    render_budget: float | None = 6000.0

    def __post_init__(self) -> None:
        if self.sample_rate < 8000 or self.sample_rate > 192000:
            raise ValueError(f"sample_rate must be 8000-192000 Hz, got {self.sample_rate}")
        if not 0.0 < self.gain <= 10.0:
            raise ValueError(f"gain must be in (0, 10], got {self.gain}")
        if self.loudness_lufs is not None and not -70.0 < self.loudness_lufs < 0.0:
            raise ValueError(f"loudness_lufs must be between -70 and 0 LUFS (or None), got {self.loudness_lufs}")
        if self.true_peak_dbtp > 0.0:
            raise ValueError(f"true_peak_dbtp must be <= 0 dBTP, got {self.true_peak_dbtp}")
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
        if not 1 <= self.min_polyphony <= self.polyphony <= 65535:
            raise ValueError(f"need 1 <= min_polyphony <= polyphony <= 65535, got {self.min_polyphony} and {self.polyphony}")
        if self.render_budget is not None and not self.render_budget > 0.0:
            raise ValueError(f"render_budget must be > 0 or None, got {self.render_budget}")
        if not self.voice_seconds > 0.0:
            raise ValueError(f"voice_seconds must be > 0, got {self.voice_seconds}")

    def polyphony_for(self, music_seconds: float | None) -> int:
        """The voice limit of an engine rendering music this long (`min_polyphony` when unknown)."""
        if music_seconds is None or not music_seconds > 0.0:
            return self.min_polyphony if music_seconds is None else self.polyphony
        return max(self.min_polyphony, min(self.polyphony, math.floor(self.voice_seconds / music_seconds)))

    def worker_count(self) -> int:
        """How many engines this config may use: `workers`, or ``min(os.cpu_count(), 4)`` for 0."""
        return self.workers if self.workers > 0 else max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class Lead:
    """The melody of a render, which the loudness step sets above the rest (`SynthConfig.lead_lu`).

    Attributes
    ----------
    channels : tuple of int
        The MIDI channels (0-15) that play the melody; every other channel is the accompaniment.
    lead_db, rest_db : float, default: 0.0
        Gains the two already carry relative to the take as generated (the mixer's volumes, in dB):
        taken out before the balance is found, so the mixer acts relative to the take's mix.
    """

    channels: tuple[int, ...] = (0,)
    lead_db: float = 0.0
    rest_db: float = 0.0


class SynthUnavailable(StudioError):
    """FluidSynth or a SoundFont is missing; the message says what to install or set."""


INSTALL_HINT = "run `apt-get install fluidsynth` (or `make run`)"
FLUID_BLOCK = 64  # FluidSynth renders in blocks of 64 frames (FLUID_BUFSIZE)
FULL_SCALE = 32767.0  # float 1.0 -> int16, as libsndfile (and so the fluidsynth CLI) converts

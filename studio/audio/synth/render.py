"""Rendering: MIDI bytes played by FluidSynth's own player into float buffers, then int16.

The MIDI file is played by FluidSynth's own MIDI player driven by the synth's sample clock
(``player.timing-source = "sample"``), exactly as ``fluidsynth -F out.wav`` does, so every event
(control changes, pitch bend, sustain pedal, program changes, drums on channel 10) sounds as it
does in the FluidSynth CLI (same samples at the same instants). Samples are pulled as 32-bit floats
in large blocks until the player passes the file's last tick, then a release tail is added (cut at
silence), and the floats become int16 with a peak limit (see `SynthConfig`). Up to about a block
before the end of the music (known from the file's tempo map) the render goes in a few long calls
that release the GIL, so that it runs beside Python work in other threads (see `_play`).

Long music (`SynthConfig.parallel_min_seconds`), and shorter music too dense for one engine's
synthesis budget, is rendered on several engines at once, one CPU core each: synthesis is linear
(every voice is rendered on its own and FluidSynth's reverb and chorus are linear filters that
start empty), so the MIDI's channels are split into groups balanced
by note duration (`studio.audio.synth.split`), each group's MIDI keeps every event of the file but
the notes of the other groups' channels, the groups render in threads (long render calls release
the GIL, see `Fluid`), and their float buffers are summed before the tail and the peak limit are
applied, once, to the sum. The result is the single-engine render but for the voice leftovers of
`studio.audio.synth.engine`: FluidSynth ramps the first 64 samples of a note from the pan of the
previous note its voice played (its fix of issue #768), and channels rendered apart hand their
voices to other notes, so some onsets differ for 1.5 ms (measured: at most 110 LSB, -50 dBFS, in
0.4% of the samples of a dense 10-minute song; the difference is 70 dB below the music). Each
engine runs its own reverb (about a fifth of the work), and two renders in parallel need two free
cores: on a machine whose cores are busy it is no faster.

The loudness step (`studio.audio.loudness`) brings the float mix to the studio's loudness before
int16. With a melody to lead, the balance is set before the render: each part's loudness is
predicted from its notes (`studio.audio.synth.balance`) and the accompaniment's channel volumes are
turned down by the gain that asks (`Split.with_volume`), so the take renders once, as any file,
and only the mix is measured. What it costs beyond the render (`docs/benchmarks.md`, "Loudness"):
the prediction (a millisecond or two once the notes' envelopes are known; a few milliseconds a new
note the first time, `studio.audio.synth.note_energy`), measuring the mix, and its true peak.

Before anything is rendered, the work each engine would do is estimated from the notes
(`studio.audio.synth.budget`); music that would take more than `SynthConfig.render_budget` (thousands
of overlapping notes, or a long take of several voices) is cut where the budget is spent, every note
released there (`Split.cut`), and the caller is told through `warnings`.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

import studio.audio.synth.engine as _engines  # its POOL is looked up at each render (tests swap it)
from studio.audio.synth.balance import rest_gain
from studio.audio.synth.budget import audio_cut
from studio.audio.synth.config import FLUID_BLOCK, FULL_SCALE, Lead, SynthConfig, SynthUnavailable
from studio.audio.synth.engine import Engine
from studio.audio.synth.fluid import Fluid
from studio.audio.synth.split import Split, scan_midi
from studio.core.errors import InputError, StudioError

__all__ = ["render_midi"]

_CHUNK_CALLS = 256  # a float buffer holds this many render calls (1,048,576 frames, 24 s at 44.1 kHz)


class _FloatFrames:
    """Interleaved float32 stereo frames, appended block by block straight from FluidSynth.

    With a `sink`, each chunk is handed to it, ``sink(index, start, frames)`` (`start`: its first
    frame's place in the whole), as soon as it is full (and the last one by `flush`), and dropped here.
    """

    def __init__(self, chunk_frames: int, sink: Callable[[int, int, np.ndarray], None] | None = None) -> None:
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

    def render(self, fluid: Fluid, synth: int, frames: int) -> np.ndarray:
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

    def render_many(self, fluid: Fluid, synth: int, frames: int, step: int) -> None:
        """Render `frames` (a multiple of `step`, itself a multiple of 64) in as few calls as the
        chunks allow, each call a multiple of `step`: the same music as `frames // step` calls of
        `step`, with the GIL released for all but a few Python steps. FluidSynth's samples are not
        quite independent of the calls' sizes (measured 2026-12-07 on chester.mid, one call against
        calls of 4,096 frames: 3.4% of the samples differ, by at most -41 dB under the take's peak;
        docs/benchmarks.md, "Loudness"), so a render is repeatable only with the same calls."""
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
            self.sink(i, self.frames - self.used[i], self.chunks[i][: self.used[i]])
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
        factor = np.float32(scale * FULL_SCALE)
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
    block = -(-config.block_frames // FLUID_BLOCK) * FLUID_BLOCK
    window = -(-round(config.silence_window_seconds * config.sample_rate) // FLUID_BLOCK) * FLUID_BLOCK
    return block, max(FLUID_BLOCK, window)


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


def _play(
    engine: Engine, data: bytes, config: SynthConfig, frames: _FloatFrames, tail: str = "cut", music_seconds: float | None = None
) -> tuple[int, list[tuple[int, int]]]:
    """Play `data` through FluidSynth's player into `frames`, then the release tail; floats, unscaled.

    The music ends when the player has passed the MIDI file's last tick (its end of track), which
    is where the CLI of FluidSynth < 2.3.1 stops. Since 2.3.1 the player itself goes on until no
    voice sounds plus 2 s, and never ends while a note hangs (FluidSynth issue #1257), so its status
    is not waited for: the tail is ours, capped by `SynthConfig.max_tail_seconds`. The player keeps
    running during the tail, so what it does after the last event (2.3.1+ lifts sustain pedals) is
    heard as in the CLI.

    The end of the music is looked for after every block; when the music's length by its tempo map
    is known (`music_seconds`), everything up to a block and 0.1 s before it is rendered first in
    as few calls as the buffer allows, then block by block as before: the same music (FluidSynth's
    samples differ a little with the calls' sizes, see `_FloatFrames.render_many`), but the
    GIL is taken a few times rather than three times a block, so a render in one thread and
    Python work in another (the piano roll drawn beside it, other requests) run at the same time
    instead of handing the GIL to each other hundreds of times (each hand-off waits up to 5 ms
    for a busy thread). `_Overshot` if the player had already passed the end (never seen; the
    caller renders again without it). The tail is rendered `_TAIL_GROUP_SECONDS` at a time
    likewise, and cut at its first silent window.

    `tail` says where the release tail stops: ``"cut"`` at its first silent window, or its last
    window fades out; ``"whole"``: the whole tail, for `_cut_tail` to cut the sum of several
    renders.

    Returns
    -------
    tuple
        The frames of music before the tail, and where each tail window lies in `frames` (chunk
        index, start frame).
    """
    fluid = engine.fluid
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
        if total_ticks <= 0 and fluid.player_status(player) != fluid.playing:
            raise InputError("FluidSynth could not read the MIDI data (a corrupt or empty MIDI file)")
        ahead = _sure_music_frames(music_seconds, config, block) - frames.frames
        if ahead > 0:
            frames.render_many(fluid, synth, ahead, block)
            if not (fluid.player_status(player) == fluid.playing and fluid.player_current_tick(player) < total_ticks):
                raise _Overshot
        longest = config.max_music_seconds * config.sample_rate
        while fluid.player_status(player) == fluid.playing and fluid.player_current_tick(player) < total_ticks:
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
            peaks = np.abs(rendered).reshape(n, -1).max(axis=1) if tail != "whole" else None
            for k in range(n):
                windows.append((index, start + k * window))
                if peaks is None:
                    continue
                if peaks[k] < silence:
                    frames.cut_last((n - k - 1) * window)  # rendered past the silence: not heard
                    return music, windows
                if tail == "cut" and done + k == tail_windows - 1:
                    rendered[k * window :] *= np.linspace(1.0, 0.0, window, dtype=np.float32)[:, None]
            done += n
    finally:
        fluid.player_stop(player)
        fluid.delete_player(player)
    return music, windows


def _cut_tail(chunks: list[np.ndarray], windows: list[tuple[int, int]], config: SynthConfig) -> None:
    """The tail rule of `_play`, on fully rendered tail `windows` of `chunks` (cut in place).

    The windows' peaks are found a run of windows at a time (those back to back in one chunk), in a
    few array operations rather than two per window: each operation may wait for the GIL while the
    piano roll is drawn in another thread."""
    _, window = _block_and_window(config)
    silence = 10.0 ** (config.silence_dbfs / 20.0)
    peaks = np.empty(len(windows))
    i = 0
    while i < len(windows):
        index, start = windows[i]
        j = i + 1
        while j < len(windows) and windows[j] == (index, start + (j - i) * window):
            j += 1
        peaks[i:j] = np.abs(chunks[index][start : start + (j - i) * window].reshape(j - i, -1)).max(axis=1)
        i = j
    quiet = np.flatnonzero(peaks < silence)
    if len(quiet):
        index, start = windows[quiet[0]]
        chunks[index] = chunks[index][: start + window]
        del chunks[index + 1 :]
    elif windows:
        index, start = windows[-1]
        chunk = chunks[index][start : start + window]
        chunk *= np.linspace(1.0, 0.0, len(chunk), dtype=np.float32)[:, None]


class _Mix:
    """The sum of several renders' float chunks, each summed as soon as every render has made it.

    Chunks are added in render order (0 + 1 + 2 ...) whatever the thread that finishes last, so
    the sum is the same from run to run; summing as they come keeps about one render's buffer in
    memory rather than one per engine. The sums are written in place into one buffer of `capacity`
    frames (the music and its longest tail), so that the mix is read whole without joining its
    chunks (`whole`: no copy of the take); a chunk that would not fit is summed where it is.
    """

    def __init__(self, parts: int, capacity: int = 0) -> None:
        self.parts = parts
        self._lock = threading.Lock()
        self._waiting: dict[int, list[tuple[int, np.ndarray] | None]] = {}
        self.sums: dict[int, np.ndarray] = {}
        self.placed: dict[int, int] = {}  # chunk index -> its first frame in `buffer`
        self.buffer = np.empty((capacity, 2), dtype=np.float32)  # pages are touched only where written
        self.mismatch = False

    def sink(self, part: int) -> Callable[[int, int, np.ndarray], None]:
        def add(index: int, start: int, chunk: np.ndarray) -> None:
            with self._lock:
                slot = self._waiting.setdefault(index, [None] * self.parts)
                slot[part] = (start, chunk)
                if any(c is None for c in slot):
                    return
                del self._waiting[index]
            parts = [c for c in slot if c is not None]
            first, total = parts[0]
            if any(c.shape != total.shape or at != first for at, c in parts[1:]):
                self.mismatch = True
                return
            if first + len(total) <= len(self.buffer):
                target = self.buffer[first : first + len(total)]
                np.add(total, parts[1][1], out=target)
                self.placed[index] = first
            else:
                target = total
                np.add(target, parts[1][1], out=target)
            for _, other in parts[2:]:
                np.add(target, other, out=target)
            self.sums[index] = target

        return add

    def whole(self, chunks: list[np.ndarray]) -> np.ndarray | None:
        """`chunks` (the sums in order, perhaps cut shorter by `_cut_tail`) as one view of the buffer
        when they lie there back to back from its start; else None."""
        at = 0
        base = self.buffer.ctypes.data
        for index, chunk in enumerate(chunks):
            if self.placed.get(index) != at or chunk.ctypes.data != base + at * self.buffer.strides[0]:
                return None
            at += len(chunk)
        return self.buffer[:at]

    def chunks(self) -> list[np.ndarray] | None:
        """The summed chunks in order, or None when the renders did not line up."""
        if self.mismatch or self._waiting or sorted(self.sums) != list(range(len(self.sums))):
            return None
        return [self.sums[i] for i in range(len(self.sums))]


def _render_single(engine: Engine, data: bytes, config: SynthConfig, music_seconds: float | None = None) -> _FloatFrames:
    block, window = _block_and_window(config)
    step = max(block, window)
    # One buffer for the music and its longest tail when the tempo map tells its length, so that the
    # loudness step reads it whole without joining chunks (a copy of the take: a 5-minute render
    # 0.5 s and 106 MB less). Pages are touched only as they are rendered.
    frames = _FloatFrames(max(step * _CHUNK_CALLS, _whole_frames(music_seconds, config, step)))
    engine.reset(config, music_seconds)
    try:
        _play(engine, data, config, frames, music_seconds=music_seconds)
    except _Overshot:  # the tempo map misjudged the end: block by block from the start
        frames = _FloatFrames(max(block, window) * _CHUNK_CALLS)
        engine.reset(config, music_seconds)
        _play(engine, data, config, frames)
    return frames


def _whole_frames(music_seconds: float | None, config: SynthConfig, step: int) -> int:
    """Frames, in whole render calls of `step`, for music this long (by the tempo map) and its longest
    tail, with a second to spare; 0 when the length is unknown."""
    if music_seconds is None:
        return 0
    return -(-math.ceil((music_seconds + config.max_tail_seconds + 1.0) * config.sample_rate) // step) * step


_Played = tuple[int, list[tuple[int, int]]]  # what `_play` returns


def _render_groups(
    engines: list[Engine],
    datas: list[bytes],
    config: SynthConfig,
    music_seconds: float,
    frames: list[_FloatFrames],
) -> list[_Played | BaseException | None]:
    """Play `datas[j]` into `frames[j]` with its whole tail (`_play`), on `engines` at once: engine i
    plays files i, i + len(engines), ... (one after the other when there are fewer engines than
    files). Returns each file's `_play` result, or the exception it raised."""
    results: list[_Played | BaseException | None] = [None] * len(datas)

    def run(i: int) -> None:
        for j in range(i, len(datas), len(engines)):
            try:
                engines[i].reset(config, music_seconds)
                results[j] = _play(engines[i], datas[j], config, frames[j], tail="whole", music_seconds=music_seconds)
                frames[j].flush()
            except BaseException as exc:  # noqa: BLE001 - re-raised (or answered) by the caller
                results[j] = exc

    count = min(len(engines), len(datas))
    threads = [threading.Thread(target=run, args=(i,), name=f"studio-synth-{i}", daemon=True) for i in range(1, count)]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    return results


def _agreed(results: list[_Played | BaseException | None]) -> _Played | None:
    """The renders' common `_play` result; None when one was refused or they ended apart (then the
    caller renders on one engine); an unexpected exception is raised."""
    for result in results:
        if isinstance(result, (StudioError, _Overshot)):
            return None
        if isinstance(result, BaseException):
            raise result
    played = [r for r in results if r is not None]
    if len(played) != len(results) or any(r != played[0] for r in played):
        return None
    return played[0]


def _render_parallel(engines: list[Engine], split: Split, config: SynthConfig) -> _FloatFrames | None:
    """Render `split`'s channel groups on `engines` at once and sum them; None if they disagree.

    The renders disagree (and the caller renders on one engine instead) only if FluidSynth refuses
    a group's file or the groups' music ends at different frames, neither of which should happen:
    every group keeps the file's tempo map and end of track.
    """
    groups = split.groups(len(engines))
    if len(groups) < 2:
        return None
    block, window = _block_and_window(config)
    mix = _Mix(len(groups), _whole_frames(split.seconds, config, max(block, window)))
    frames = [_FloatFrames(max(block, window) * _CHUNK_CALLS, sink=mix.sink(i)) for i in range(len(groups))]
    played = _agreed(_render_groups(engines, [split.midi(g) for g in groups], config, split.seconds, frames))
    chunks = mix.chunks()
    if played is None or chunks is None:
        return None
    _cut_tail(chunks, played[1], config)
    whole = mix.whole(chunks)
    return _FloatFrames.of([whole] if whole is not None else chunks)


def render_midi(
    midi: bytes | str | os.PathLike[str],
    config: SynthConfig | None = None,
    lead: Lead | None = None,
    warnings: list[str] | None = None,
) -> np.ndarray:
    """Render a MIDI file to 16-bit stereo audio, as the FluidSynth CLI plays it, at the studio's loudness.

    Music of at least `SynthConfig.parallel_min_seconds` (or too dense for one engine's budget) with
    notes on several channels is rendered on several engines at once (see the module's notes); the
    audio is the same.

    The float mix is then scaled to `SynthConfig.loudness_lufs` (BS.1770 integrated loudness, by
    `studio.audio.loudness.hop_energies`) with its true peak at most `SynthConfig.true_peak_dbtp`
    (`studio.audio.loudness.normalize`), and quantised to int16. With a `lead`, the rest's channel
    volumes are first turned down, when needed, so that the melody is `SynthConfig.lead_lu` louder
    than the accompaniment together, as predicted from the notes (`studio.audio.synth.balance`).

    Parameters
    ----------
    midi
        A Standard MIDI File: its bytes, or a path.
    config
        Rendering settings (`SynthConfig()` when None).
    lead
        The melody's channels (and the mixer's gains), or None: the file's own balance.
    warnings
        Where a line is added when the audio is cut short to keep within `SynthConfig.render_budget`
        (`studio.audio.synth.budget`): music that would take too long to synthesize.

    Returns
    -------
    numpy.ndarray
        Shape (N, 2), int16, at ``config.sample_rate``: the music to the MIDI file's end (or to the
        budget's cut), then at most ``config.max_tail_seconds`` of release. Never at full scale (no
        clipping).

    Raises
    ------
    SynthUnavailable
        FluidSynth or a SoundFont is missing.
    InputError
        `midi` is not a readable Standard MIDI File.
    """
    config = config or SynthConfig()
    data = _read_midi(midi)
    split = scan_midi(data)  # the music's length (to render ahead in large calls) and its channels
    if split is not None and split.seconds > config.max_music_seconds:
        raise _too_long(config)
    if config.loudness_lufs is not None:
        _import_meanwhile("scipy.fft")  # the mix's measure needs it (0.2 s in a fresh process)
    want = _engines_wanted(split, config)
    if split is not None:
        # The budget counts the engines a render gets on a free machine (`want`), not those free now,
        # so the same music is cut at the same place under load.
        cut = audio_cut(split, want, 1, config)
        if cut is not None:
            whole = split.seconds
            # The voice limit the budget counted (the whole music's): a shorter render would be given
            # more voices (`SynthConfig.polyphony_for`), 213 for a 15-s cut of 50 s against 64, and
            # rendered 20,000 dense notes' 15 s slower than their whole 50 s.
            limit = config.polyphony_for(whole)
            config = replace(config, polyphony=limit, min_polyphony=limit)
            split = split.cut(cut)
            data = split.midi(list(split.weights))
            want = _engines_wanted(split, config)
            if warnings is not None:
                warnings.append(
                    f"the audio stops at {_clock(split.seconds)} of {_clock(whole)}: the music is too long or dense to "
                    f"synthesize in the studio's answer time; the MIDI file and the piano roll have the whole take"
                )
    engines = _engines.POOL.acquire(config, want)
    try:
        if config.loudness_lufs is not None and lead is not None and split is not None:
            gain = rest_gain(split, lead, engines[0], config)
            if gain < 1.0:
                split = split.with_volume([c for c in split.weights if c not in lead.channels], gain)
                data = split.midi(list(split.weights))
        frames = None
        if len(engines) > 1 and split is not None:  # long or dense music (`_engines_wanted`)
            frames = _render_parallel(engines, split, config)
        if frames is None:
            frames = _render_single(engines[0], data, config, split.seconds if split is not None else None)
    finally:
        _engines.POOL.release(engines)
    if config.loudness_lufs is None:
        limit = 10.0 ** (config.peak_dbfs / 20.0)
        peak = frames.peak()
        return frames.to_int16(limit / peak if peak > limit else 1.0)
    return _loudness_step(frames, config)


def _import_meanwhile(module: str) -> None:
    """Import `module` in a thread of its own unless it is imported: it loads while FluidSynth
    renders (its calls release the GIL), and whoever needs it first waits for the import to end."""
    if module not in sys.modules:
        threading.Thread(target=importlib.import_module, args=(module,), name="studio-import", daemon=True).start()


def _engines_wanted(split: Split | None, config: SynthConfig) -> int:
    """How many engines a render of `split` uses when they are free: one per sounding channel (at
    most `SynthConfig.worker_count`) for long music, and for shorter music too dense for one engine's
    budget (`studio.audio.synth.budget`: 20,000 notes in 50 s); else one."""
    if split is None:
        return 1
    many = max(1, min(config.worker_count(), split.sounding_channels()))
    if split.seconds >= config.parallel_min_seconds or (many > 1 and audio_cut(split, 1, 1, config) is not None):
        return many
    return 1


def _clock(seconds: float) -> str:
    """`seconds` as minutes:seconds, to the nearest second (``4:07``)."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    """Float chunks (each (n, 2)) as one array: the chunk itself when there is one (no copy)."""
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)


def _loudness_step(frames: _FloatFrames, config: SynthConfig) -> np.ndarray:
    """The float mix at the studio's loudness and true-peak ceiling, as int16 (`studio.audio.loudness`)."""
    from studio.audio import loudness

    audio = _joined(frames.views())  # no copy for a render into one buffer (`_render_single`)
    assert config.loudness_lufs is not None
    measured = loudness.hop_loudness(audio, config.sample_rate)
    # Scaled to the loudness and to int16's full scale in one pass. No clip needed: the true peak is
    # at most the ceiling, <= 0 dBTP (or, for silence, nothing was scaled up), and it is at least
    # 1.0006 times the sample peak (`loudness.true_peak`'s phase 0), so every sample lies within +-32767.
    scaled, _ = loudness.normalize(
        audio,
        config.sample_rate,
        config.loudness_lufs,
        config.true_peak_dbtp,
        measured,
        full_scale=FULL_SCALE,
        measure=loudness.hop_loudness,
    )
    out = np.empty(scaled.shape, dtype=np.int16)
    np.rint(scaled, out=out, casting="unsafe")
    return out

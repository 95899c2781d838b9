"""A MIDI file's channels split into groups, each group's file written for FluidSynth to play.

Used by the parallel render (`studio.audio.synth.render`): long music is played on several
engines at once, each playing the file without the notes of the other groups' channels. The
scan also gives every render the music's length by its tempo map (to render ahead in long calls).

What comes from the studio's MIDI reader (`studio.core.midi`): the header's timing
(`read_division`, ticks per beat or SMPTE ticks per second), the variable-length numbers, the
channel messages' lengths, and the tempo map's arithmetic (`Score.tick_to_seconds`).

What stays a scanner of its own (`scan_track`), and why: FluidSynth must play the file's own
bytes, so each group's file is the original with only some note events taken out, every other
event and chunk kept byte for byte. The studio's reader cannot give that: it keeps no bytes, and
it reads a file as music rather than as FluidSynth plays it (it clips data bytes over 127, drops
SysEx and system messages, keeps running status across meta and SysEx events where FluidSynth does
not, skips unknown chunks and trailing bytes, applies the upload limits). Where FluidSynth might
read a file otherwise than the standard says, the scan gives up (None) and the file renders on one
engine as it is. Reading the file twice (the studio's reader for the length and channels, a
scanner for the bytes) would cost a second pass on every long render, and the note weights that
group the channels must come from the same events that are cut (notes never released count to
the end of their track, zero-length notes count), or the groups, and so the rendered bytes,
would change.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.core.errors import InputError
from studio.core.midi import _DATA_BYTES, _varlen, _varlen_bytes, read_division
from studio.core.score import DEFAULT_MICROSECONDS_PER_BEAT, Score, TempoChange

__all__ = ["DEFAULT_VOLUME", "PROGRAM", "Split", "scan_midi"]

Event = tuple[int, int, bytes]  # an MTrk event of `Split.parts`: (absolute tick, channel of a note-on/off else -1, bytes)

PROGRAM = 128  # `Split.controls`' number for a program change (controllers are 0-127)
DEFAULT_VOLUME = 100  # a channel's volume (CC7) before any is set: General MIDI's, and FluidSynth's
# the controllers that choose a channel's instrument or set its level: bank select, volume, expression
_LEVEL_CONTROLLERS = frozenset((0, 7, 11))


@dataclass
class Split:
    """A Standard MIDI File taken apart to be written again with some channels' notes left out.

    `parts` are, in file order, chunks kept byte for byte (the header, unknown chunks, trailing
    bytes) and MTrk chunks as their events: (absolute tick, channel for a note-on/off else -1,
    the event's bytes with an explicit status byte).
    """

    parts: list[bytes | list[Event]]
    weights: dict[int, int]  # channel -> note ticks (plus an allowance per note for its release)
    seconds: float  # the music's length by the tempo map, to the last end of track
    # every note as (channel, start tick, end tick plus the release allowance, key, velocity), in release order
    notes: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    # the tempo map as points (tick, seconds), ticks increasing; the last tempo goes on past the last point
    time_map: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.array([0.0, 1.0]), np.array([0.0, 0.5 / 480])))
    allowance: int = 0  # the release allowance in ticks, added to every note's end
    # what sets a channel's instrument and level, in file order (track by track) as (tick, channel,
    # number, value): `PROGRAM` for a program change, else the controller (bank select, volume, expression)
    controls: list[tuple[int, int, int, int]] = field(default_factory=list)

    def seconds_at(self, ticks: np.ndarray) -> np.ndarray:
        """The times of `ticks` by the file's tempo map (the arithmetic of `Score.tick_to_seconds`)."""
        at, seconds = self.time_map
        ticks = np.asarray(ticks, dtype=np.float64)
        rate = (seconds[-1] - seconds[-2]) / (at[-1] - at[-2])  # the last tempo, past the last point
        return np.where(ticks <= at[-1], np.interp(ticks, at, seconds), seconds[-1] + (ticks - at[-1]) * rate)

    def tick_at(self, seconds: float) -> int:
        """The last tick at or before `seconds` (the inverse of `seconds_at`)."""
        at, times = self.time_map
        if seconds >= times[-1]:
            rate = (times[-1] - times[-2]) / (at[-1] - at[-2])
            return int(at[-1] + (seconds - times[-1]) / rate)
        return int(np.interp(seconds, times, at))

    def _rewritten(
        self, each: Callable[[list[Event]], list[Event]], first: Callable[[list[Event]], list[Event]]
    ) -> list[bytes | list[Event]]:
        """The parts with every MTrk's events passed through `each`, the first MTrk's then through `first`."""
        parts: list[bytes | list[Event]] = []
        seen = False
        for part in self.parts:
            if isinstance(part, bytes):
                parts.append(part)
                continue
            parts.append(each(part) if seen else first(each(part)))
            seen = True
        return parts

    def cut(self, until: int) -> Split:
        """The file's music up to tick `until`, where every note is released: the events before
        `until` kept, then, on every channel, the sustain pedal lifted and all notes off (their
        releases sound, as at the end of a song), and each track's end there."""
        end = (until, -1, b"\xff\x2f\x00")
        released = [(until, -1, bytes([0xB0 | c, cc, 0])) for c in range(16) for cc in (64, 123)]
        parts = self._rewritten(
            lambda events: [e for e in events if e[0] < until and e[2] != end[2]] + [end],
            lambda events: events[:-1] + released + events[-1:],
        )
        seconds = float(self.seconds_at(np.array([until]))[0])
        notes = [(c, s, min(e, until), k, v) for c, s, e, k, v in self.notes if s < until]
        controls = [c for c in self.controls if c[0] < until]
        return Split(parts, dict(self.weights), seconds, notes, self.time_map, self.allowance, controls)

    def with_volume(self, channels: list[int], gain: float) -> Split:
        """The file with `channels` played at `gain` times their amplitude: each of their channel
        volumes (control change 7) scaled by ``sqrt(gain)`` (FluidSynth's amplitude goes as CC7
        squared, the SoundFont 2 default modulator), and their default volume (100) set so at the
        start of the first track. Every other event is kept byte for byte."""
        if gain == 1.0:
            return self
        scale = math.sqrt(gain)
        mine = frozenset(channels)

        def volume(value: int) -> int:
            return 0 if value == 0 else max(1, min(127, round(value * scale)))

        def scaled(events: list[Event]) -> list[Event]:
            return [
                (tick, -1, bytes([raw[0], 7, volume(raw[2])]))
                if channel < 0 and len(raw) == 3 and raw[0] & 0xF0 == 0xB0 and raw[1] == 7 and raw[0] & 0x0F in mine
                else (tick, channel, raw)
                for tick, channel, raw in events
            ]

        defaults = [(0, -1, bytes([0xB0 | c, 7, volume(DEFAULT_VOLUME)])) for c in sorted(mine)]
        parts = self._rewritten(scaled, lambda events: defaults + events)
        controls = [(0, c, 7, volume(DEFAULT_VOLUME)) for c in sorted(mine)] + [
            (tick, c, number, volume(value) if number == 7 and c in mine else value) for tick, c, number, value in self.controls
        ]
        return Split(parts, dict(self.weights), self.seconds, self.notes, self.time_map, self.allowance, controls)

    def groups(self, n: int, loads: list[int] | None = None) -> list[list[int]]:
        """The note channels in at most `n` groups of about equal weight (greedy, heaviest first); with
        `loads`, group i starts with that weight already (work its engine does besides)."""
        loads = list(loads) if loads is not None else [0] * n
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


def scan_track(
    body: bytes,
    allowance: int,
    tempos: list[tuple[int, int]],
    weights: dict[int, int],
    notes: list[tuple[int, int, int, int, int]] | None = None,
    controls: list[tuple[int, int, int, int]] | None = None,
) -> tuple[list[Event], int] | None:
    """The events of one MTrk body and its end tick, or None when FluidSynth might read it otherwise.

    None for what FluidSynth's reader treats differently from the standard (running status after
    a meta or SysEx event, which it takes as another meta or SysEx), for events it does not accept
    in a file (0xF1-0xFE, 0xF7) and for a track without an end-of-track: such files render on one
    engine, exactly as FluidSynth reads them.
    """
    events: list[Event] = []
    sounding: dict[tuple[int, int], deque[tuple[int, int]]] = {}  # (start, velocity) per key, released first in, first out
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
                for (channel, key), starts in sounding.items():  # notes never released
                    weights[channel] += sum(tick - t + allowance for t, _ in starts)
                    if notes is not None:
                        notes.extend((channel, t, tick + allowance, key, v) for t, v in starts)
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
            n = _DATA_BYTES[status & 0xF0]
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
                    sounding.setdefault(key, deque()).append((tick, raw[2]))
                elif sounding.get(key):
                    start, velocity = sounding[key].popleft()
                    weights[channel] += tick - start + allowance
                    if notes is not None:
                        notes.append((channel, start, tick + allowance, raw[1], velocity))
                events.append((tick, channel, raw))
            else:
                if controls is not None:
                    if kind == 0xC0:
                        controls.append((tick, channel, PROGRAM, raw[1]))
                    elif kind == 0xB0 and raw[1] in _LEVEL_CONTROLLERS:
                        controls.append((tick, channel, raw[1], raw[2]))
                events.append((tick, -1, raw))
    return None  # no end of track


def scan_midi(data: bytes) -> Split | None:
    """`data` taken apart by `Split`, or None when it should render on one engine as it is."""
    try:
        header_len = struct.unpack(">I", data[4:8])[0]
        _, n_tracks, division = struct.unpack(">HHH", data[8:14])
    except struct.error:
        return None
    pos = 8 + header_len
    if header_len < 6 or pos > len(data):
        return None
    try:
        ticks_per_beat, ticks_per_second = read_division(division)  # the studio's reader's timing
    except InputError:
        return None
    # a release allowance per note: half a beat, or a quarter of a second in SMPTE time
    allowance = round(ticks_per_second / 4) if ticks_per_second else ticks_per_beat // 2
    parts: list[bytes | list[Event]] = [data[:pos]]
    tempos: list[tuple[int, int]] = []
    weights: dict[int, int] = {}
    notes: list[tuple[int, int, int, int, int]] = []
    controls: list[tuple[int, int, int, int]] = []
    end_tick = 0
    tracks = 0
    try:
        while pos + 8 <= len(data):
            length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
            if pos + 8 + length > len(data):
                return None
            if data[pos : pos + 4] == b"MTrk" and tracks < n_tracks:
                tracks += 1
                scanned = scan_track(data[pos + 8 : pos + 8 + length], allowance, tempos, weights, notes, controls)
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
        time_map = (np.array([0.0, 1.0]), np.array([0.0, 1.0 / ticks_per_second]))
    else:  # the tempo map's arithmetic is the studio's (`Score.tick_to_seconds`)
        # in file order at a tick (a later change there holds, as in the reader), not by value
        changes = [TempoChange(at, us) for at, us in sorted((t for t in tempos if t[0] < end_tick), key=lambda t: t[0])]
        tempo_map = Score(ticks_per_beat, [], [TempoChange(0, DEFAULT_MICROSECONDS_PER_BEAT), *changes])
        seconds = tempo_map.tick_to_seconds(end_tick)
        time_map = _time_map(tempo_map)
    return Split(parts, weights, seconds, notes, time_map, allowance, controls)


def _time_map(tempo_map: Score) -> tuple[np.ndarray, np.ndarray]:
    """`tempo_map`'s tempo changes as (tick, seconds) points, and one a beat after the last."""
    ticks: list[float] = []
    seconds: list[float] = []
    elapsed = 0.0
    for i, tempo in enumerate(tempo_map.tempos):
        if i and tempo.tick == ticks[-1]:  # a later change at the same tick replaces the earlier one
            ticks.pop(), seconds.pop()
        ticks.append(float(tempo.tick))
        seconds.append(elapsed)
        nxt = tempo_map.tempos[i + 1].tick if i + 1 < len(tempo_map.tempos) else tempo.tick + tempo_map.ticks_per_beat
        elapsed += (nxt - tempo.tick) * tempo.microseconds_per_beat / 1e6 / tempo_map.ticks_per_beat
    ticks.append(float(tempo_map.tempos[-1].tick + tempo_map.ticks_per_beat))
    seconds.append(elapsed)
    return np.array(ticks), np.array(seconds)

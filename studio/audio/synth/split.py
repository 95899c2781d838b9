"""A MIDI file's channels split into groups, each group's file written for FluidSynth to play.

Used by the parallel render (`studio.audio.synth.render`): long music is played on several
engines at once, each playing the file without the notes of the other groups' channels.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from studio.core.midi import _varlen, _varlen_bytes

__all__ = ["Split", "scan_midi"]


@dataclass
class Split:
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


def scan_track(body: bytes, allowance: int, tempos: list[tuple[int, int]],
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
                scanned = scan_track(data[pos + 8 : pos + 8 + length], allowance, tempos, weights)
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
    return Split(parts, weights, seconds)


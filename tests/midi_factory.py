"""Hostile and edge-case MIDI inputs, built in memory for the tests.

Every public function is pure and returns the bytes of one "file" (nothing is written to disk), so
a test can save it under any name it likes (`.mid` for the renamed PNG/WAV/text ones). Valid files
are written byte by byte with `struct` rather than with mido, because several cases (a lying track
count, a zero or SMPTE division, running status, a maximal delta time) are forms that mido either
cannot write or would silently normalise.

Times given to `melody` are in beats (quarter notes); everything else is in ticks.
"""

from __future__ import annotations

import io
import random
import struct
import wave
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "all_pitches",
    "band_song",
    "drums_only",
    "empty_bytes",
    "events_after_music",
    "far_meter_change",
    "huge_delta",
    "long_file",
    "lying_track_count",
    "melody",
    "midi_from_tracks",
    "no_notes",
    "png_renamed",
    "random_bytes",
    "running_status",
    "smpte_timing",
    "stacked_note_ons",
    "sysex_file",
    "text_renamed",
    "too_large",
    "too_many_notes",
    "too_many_tracks",
    "truncated",
    "wav_renamed",
    "wide_meter",
    "zero_ticks_per_beat",
]

MAX_DELTA = 0x0FFFFFFF  # the largest value a 4-byte variable-length quantity can hold

# A short, valid, ordinary tune (C major, 4/4, 2 bars): (start_beat, dur_beats, pitch).
_SAMPLE_NOTES: tuple[tuple[float, float, int], ...] = (
    (0, 1, 60),
    (1, 1, 62),
    (2, 1, 64),
    (3, 1, 65),
    (4, 1, 67),
    (5, 1, 65),
    (6, 2, 64),
)


# --------------------------------------------------------------------------- raw SMF writing


def _vlq(value: int) -> bytes:
    """Encode a non-negative int (at most 0x0FFFFFFF) as a MIDI variable-length quantity."""
    if not 0 <= value <= MAX_DELTA:
        raise ValueError(f"variable-length quantity out of range: {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _chunk(tag: bytes, body: bytes) -> bytes:
    """One SMF chunk: 4-byte tag, 32-bit big-endian length, body."""
    return tag + struct.pack(">I", len(body)) + body


def _header(fmt: int, n_tracks: int, division: int) -> bytes:
    """The MThd chunk; `division` is the raw 16-bit field (ticks per beat, or SMPTE when bit 15 set)."""
    return _chunk(b"MThd", struct.pack(">HHH", fmt, n_tracks, division & 0xFFFF))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(data)) + data


def _tempo(us_per_beat: int) -> bytes:
    return _meta(0x51, us_per_beat.to_bytes(3, "big"))


def _time_signature(numerator: int, denominator: int) -> bytes:
    return _meta(0x58, bytes([numerator, denominator.bit_length() - 1, 24, 8]))


def _key_signature(sharps: int, minor: bool = False) -> bytes:
    return _meta(0x59, bytes([sharps & 0xFF, int(minor)]))


def _track_name(name: str) -> bytes:
    return _meta(0x03, name.encode("latin-1"))


_END_OF_TRACK = b"\xff\x2f\x00"


def _note_on(channel: int, pitch: int, velocity: int) -> bytes:
    return bytes([0x90 | channel, pitch, velocity])


def _note_off(channel: int, pitch: int) -> bytes:
    return bytes([0x80 | channel, pitch, 0])


def _program(channel: int, program: int) -> bytes:
    return bytes([0xC0 | channel, program])


def _sysex(payload: bytes) -> bytes:
    """An SMF SysEx event: F0, length, payload (without F0), terminating F7 counted in the length."""
    return b"\xf0" + _vlq(len(payload) + 1) + payload + b"\xf7"


def _event_bytes(event: Any) -> bytes:
    """Raw bytes of one event: bytes as they are, or a mido Message/MetaMessage (SysEx framed for SMF)."""
    if isinstance(event, bytes | bytearray):
        return bytes(event)
    if getattr(event, "type", None) == "sysex":
        return _sysex(bytes(event.data))
    return bytes(event.bin())


def _track_body(events: Iterable[tuple[int, Any]], *, add_end: bool = True) -> bytes:
    """Absolute-tick (tick, event) pairs -> track bytes (stable-sorted by tick, end-of-track added)."""
    ordered = sorted(((int(t), i, _event_bytes(e)) for i, (t, e) in enumerate(events)), key=lambda x: x[:2])
    out = bytearray()
    now = 0
    for tick, _, raw in ordered:
        if tick < now:
            raise ValueError("negative delta")
        out += _vlq(tick - now) + raw
        now = tick
    if add_end and not out.endswith(_END_OF_TRACK):
        out += _vlq(0) + _END_OF_TRACK
    return bytes(out)


def midi_from_tracks(
    tracks: Sequence[Iterable[tuple[int, Any]]],
    ticks_per_beat: int = 480,
    fmt: int | None = None,
    division: int | None = None,
) -> bytes:
    """Build an SMF from tracks of (absolute_tick, event) pairs; an event is raw bytes or a mido message."""
    if fmt is None:
        fmt = 0 if len(tracks) == 1 else 1
    raw_division = ticks_per_beat if division is None else division
    body = b"".join(_chunk(b"MTrk", _track_body(t)) for t in tracks)
    return _header(fmt, len(tracks), raw_division) + body


def _conductor(tempo: int = 500_000, numerator: int = 4, denominator: int = 4) -> list[tuple[int, bytes]]:
    return [(0, _track_name("")), (0, _tempo(tempo)), (0, _time_signature(numerator, denominator))]


def _note_events(
    notes: Iterable[tuple[float, float, int]],
    ticks_per_beat: int,
    channel: int = 0,
    velocity: int = 90,
) -> list[tuple[int, bytes]]:
    """(start_beat, dur_beats, pitch) triples -> absolute-tick note-off/note-on events (offs sort first)."""
    events: list[tuple[int, bytes]] = []
    for start, dur, pitch in notes:
        on = round(start * ticks_per_beat)
        off = max(on + 1, round((start + dur) * ticks_per_beat))
        events.append((on, _note_on(channel, pitch, velocity)))
        events.append((off, _note_off(channel, pitch)))
    # At equal ticks a note-off must come before the next note-on of the same pitch.
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80))
    return events


def melody(
    notes: Iterable[tuple[float, float, int]],
    ticks_per_beat: int = 480,
    tempo: int = 500_000,
    numerator: int = 4,
    denominator: int = 4,
    channel: int = 0,
    program: int = 0,
) -> bytes:
    """A type-1 file (conductor track + one melody track) from (start_beat, dur_beats, pitch) triples."""
    track = [(0, _track_name("Melody")), (0, _program(channel, program))]
    track += _note_events(notes, ticks_per_beat, channel)
    return midi_from_tracks([_conductor(tempo, numerator, denominator), track], ticks_per_beat)


def _sample() -> bytes:
    return melody(_SAMPLE_NOTES)


def band_song(bars: int = 4, ticks_per_beat: int = 480) -> bytes:
    """A song of four tracks, 4/4 in C: a flute melody (channel 1, GM 73), drums (channel 10:
    kick, snare and closed hi-hat), a fingered bass (channel 2, GM 33) and a pad (channel 3, GM 89)."""
    tune = [60, 62, 64, 65, 67, 65, 64, 62, 64, 67, 72, 71, 69, 67, 64, 60]
    lead = [(0, _track_name("Flute")), (0, _program(0, 73))]
    lead += _note_events([(i, 1, tune[i % len(tune)]) for i in range(bars * 4)], ticks_per_beat, 0)
    drums = [(0, _track_name("Drums"))]
    hits = [(b / 2, 0.25, 42) for b in range(bars * 8)] + [(b, 0.5, 36 if b % 2 == 0 else 38) for b in range(bars * 4)]
    drums += _note_events(hits, ticks_per_beat, 9, 100)
    bass = [(0, _track_name("Bass")), (0, _program(1, 33))]
    bass += _note_events([(b * 4 + h * 2, 2, (36, 43, 41, 43)[b % 4] + 7 * h) for b in range(bars) for h in (0, 1)], ticks_per_beat, 1)
    pad = [(0, _track_name("Pad")), (0, _program(2, 89))]
    pad += _note_events([(b * 4, 4, p) for b in range(bars) for p in (60, 64, 67)], ticks_per_beat, 2, 60)
    return midi_from_tracks([_conductor(), lead, drums, bass, pad], ticks_per_beat)


# --------------------------------------------------------------------------- not MIDI at all


def empty_bytes() -> bytes:
    """A zero-byte file."""
    return b""


def random_bytes(n: int = 2000, seed: int = 0) -> bytes:
    """`n` bytes of deterministic noise that do not start with the MThd magic."""
    data = bytearray(random.Random(seed).randbytes(n))
    if data[:4] == b"MThd":
        data[0] ^= 0xFF
    return bytes(data)


def truncated(midi_bytes: bytes | None = None, keep: float = 0.5) -> bytes:
    """The first `keep` fraction of a valid file (default: a sample tune), so a track chunk ends early."""
    data = _sample() if midi_bytes is None else midi_bytes
    return data[: max(1, int(len(data) * keep))]


def png_renamed() -> bytes:
    """A valid 1x1 RGB PNG image (to be saved as .mid)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x80\x00")  # filter byte + one orange pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def wav_renamed() -> bytes:
    """A valid 10 ms mono 16-bit 8 kHz silent WAV (to be saved as .mid)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 80)
    return buf.getvalue()


def text_renamed() -> bytes:
    """A plain-text file (to be saved as .mid)."""
    return b"X:1\nT:This is ABC text, not a Standard MIDI File\nM:4/4\nL:1/8\nK:C\nCDEF GABc|c2G2 E2C2|]\n"


# --------------------------------------------------------------------------- malformed MIDI


def lying_track_count(midi_bytes: bytes | None = None, claimed: int = 12) -> bytes:
    """A valid file (default: a sample tune) whose MThd says it holds `claimed` tracks, more than it does."""
    data = bytearray(_sample() if midi_bytes is None else midi_bytes)
    if data[:4] != b"MThd":
        raise ValueError("not a MIDI file")
    data[10:12] = struct.pack(">H", claimed)
    return bytes(data)


def zero_ticks_per_beat() -> bytes:
    """A sample tune whose division field is 0 ticks per beat (invalid)."""
    data = bytearray(_sample())
    data[12:14] = b"\x00\x00"
    return bytes(data)


def huge_delta() -> bytes:
    """A short tune whose last note starts after a delta time of 0x0FFFFFFF ticks (~78 hours at 120 qpm, 480 tpb)."""
    tpb = 480
    events = _note_events(_SAMPLE_NOTES[:4], tpb)
    last_off = events[-1][0]
    start = last_off + MAX_DELTA  # delta from the previous event is exactly MAX_DELTA
    events += [(start, _note_on(0, 72, 90)), (start + tpb, _note_off(0, 72))]
    track = [(0, _program(0, 0)), *events]
    return midi_from_tracks([_conductor(), track], tpb)


# --------------------------------------------------------------------------- valid but unusual


def smpte_timing() -> bytes:
    """A valid melody with SMPTE division: 25 fps x 40 ticks per frame (1000 ticks per second)."""
    division = ((-25) & 0xFF) << 8 | 40  # 0xE728
    ticks_per_second = 25 * 40
    # Half a second per note: treat one "beat" as 500 ticks in the note helper.
    events = _note_events(_SAMPLE_NOTES, ticks_per_second // 2)
    track = [(0, _track_name("Melody")), (0, _program(0, 0)), *events]
    return midi_from_tracks([[(0, _time_signature(4, 4))], track], division=division)


def running_status(n: int = 200) -> bytes:
    """A type-0 melody of `n` eighth notes where every event after the first omits its status byte."""
    tpb = 480
    body = bytearray()
    body += _vlq(0) + _tempo(500_000)
    body += _vlq(0) + _time_signature(4, 4)
    body += _vlq(0) + _program(0, 0)
    scale = (60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62)
    first = True
    for i in range(n):
        pitch = scale[i % len(scale)]
        # note-on, then note "off" as a note-on with velocity 0: one status byte for the whole track
        body += _vlq(0) + (b"\x90" if first else b"") + bytes([pitch, 90])
        body += _vlq(tpb // 2) + bytes([pitch, 0])
        first = False
    body += _vlq(0) + _END_OF_TRACK
    return _header(0, 1, tpb) + _chunk(b"MTrk", bytes(body))


def sysex_file() -> bytes:
    """A valid melody preceded by SysEx messages (GM System On, a GS Reset and a Roland DT1 parameter change)."""
    gm_on = bytes.fromhex("7e7f0901")
    gs_reset = bytes.fromhex("4110421240007f0041")  # Roland GS Reset
    roland = bytes.fromhex("41104212400130000f")  # Roland DT1: reverb macro, checksummed
    conductor = [*_conductor(), (0, _sysex(gm_on)), (0, _sysex(gs_reset)), (0, _sysex(roland))]
    track = [(0, _track_name("Melody")), (0, _program(0, 0)), *_note_events(_SAMPLE_NOTES, 480)]
    return midi_from_tracks([conductor, track], 480)


def drums_only() -> bytes:
    """A valid 4-bar 4/4 file whose only notes are on channel 9 (GM percussion)."""
    tpb = 480
    notes: list[tuple[float, float, int]] = []
    for bar in range(4):
        for eighth in range(8):
            beat = bar * 4 + eighth / 2
            notes.append((beat, 0.25, 42))  # closed hi-hat
            if eighth in (0, 4):
                notes.append((beat, 0.25, 36))  # kick
            if eighth in (2, 6):
                notes.append((beat, 0.25, 38))  # snare
    track = [(0, _track_name("Drums")), *_note_events(notes, tpb, channel=9, velocity=100)]
    return midi_from_tracks([_conductor(), track], tpb)


def no_notes() -> bytes:
    """A valid file with a tempo, a 3/4 time signature, a key signature and a named track, but no notes."""
    conductor = [*_conductor(numerator=3, denominator=4), (0, _key_signature(0))]
    track = [(0, _track_name("Empty")), (0, _program(0, 0)), (1920, _meta(0x01, b"nothing here"))]
    return midi_from_tracks([conductor, track], 480)


def too_many_notes(n: int = 25000) -> bytes:
    """A valid single-melody file with `n` sixteenth notes (n / 16 bars of 4/4)."""
    pattern = (60, 64, 67, 72, 67, 64)
    notes = [(i / 4, 0.25, pattern[i % len(pattern)] + 2 * ((i // 96) % 6)) for i in range(n)]
    return melody(notes)


def too_many_tracks(n: int = 80) -> bytes:
    """A valid type-1 file with `n` MTrk chunks: a conductor track and n-1 tracks of four notes each."""
    tpb = 480
    melodic_channels = [c for c in range(16) if c != 9]
    tracks: list[list[tuple[int, bytes]]] = [_conductor()]
    for i in range(1, n):
        ch = melodic_channels[i % len(melodic_channels)]
        base = 48 + (i * 5) % 36
        notes = [(b, 1, base + step) for b, step in enumerate((0, 4, 7, 12))]
        tracks.append([(0, _track_name(f"Track {i}")), (0, _program(ch, i % 128)), *_note_events(notes, tpb, ch)])
    return midi_from_tracks(tracks, tpb)


def too_large(size: int = 3_000_000, filler: str = "sysex") -> bytes:
    """A valid sample tune padded in its conductor track (4 KiB SysEx dumps, or 64 KiB text events) past `size` bytes."""
    if filler == "sysex":
        block = bytes([0x7D]) + bytes(i % 128 for i in range(4095))  # 0x7D: non-commercial manufacturer id
        event = _sysex(block)
    elif filler == "text":
        event = _meta(0x01, b"padding " * 8192)
    else:
        raise ValueError(f"filler must be 'sysex' or 'text', not {filler!r}")
    base = len(_sample())
    count = max(1, (size - base) // (len(event) + 1) + 1)  # +1: the zero delta before each event
    conductor = [*_conductor(), *((0, event) for _ in range(count))]
    track = [(0, _track_name("Melody")), (0, _program(0, 0)), *_note_events(_SAMPLE_NOTES, 480)]
    data = midi_from_tracks([conductor, track], 480)
    assert len(data) > size
    return data


def long_file(minutes: float = 30) -> bytes:
    """A valid melody of quarter notes at 120 qpm lasting `minutes` minutes (3600 notes for 30 minutes)."""
    n = round(minutes * 120)
    tune = (67, 64, 64, 65, 62, 62, 60, 62, 64, 65, 67, 67, 67, 67)
    return melody([(i, 1, tune[i % len(tune)]) for i in range(n)])


def all_pitches(n_notes: int = 10000) -> bytes:
    """A valid file of `n_notes` sixteenth notes cycling through every MIDI pitch 0-127."""
    return melody([(i / 4, 0.25, i % 128) for i in range(n_notes)])


# --------------------------------------------------------------------------- hostile, second round (issue 23)


def events_after_music(kind: str = "time_signature", delay: int = 3600 * 192, ticks_per_beat: int = 96) -> bytes:
    """16 quarter notes (8 s at 120 qpm), then one event of `kind` `delay` ticks after the last note
    (an hour by default): "time_signature" (3/4), "tempo", "text" or "control" (a volume change)."""
    events = {
        "time_signature": _time_signature(3, 4),
        "tempo": _tempo(400_000),
        "text": _meta(0x01, b"the end"),
        "control": bytes([0xB0, 7, 100]),
    }[kind]
    notes = _note_events([(i, 1, 60 + i % 8) for i in range(16)], ticks_per_beat)
    track = [(0, _track_name("Melody")), *notes, (16 * ticks_per_beat + delay, events)]
    return midi_from_tracks([track], ticks_per_beat)


def dense_melody(minutes: float = 3.0, per_beat: int = 32) -> bytes:
    """`per_beat` short notes a beat at 120 qpm for `minutes` (11,520 for 3 minutes): each note's
    release sounds on, so the synthesizer sounds its voice limit the whole time."""
    step = 1 / per_beat
    return melody([(i * step, step / 2, 48 + (i * 7) % 36) for i in range(round(minutes * 120 * per_beat))])


def dense_after_meta(minutes: float = 3.0, per_beat: int = 32) -> bytes:
    """`dense_melody`'s notes in one track whose second note keeps the running status across a text
    event: the studio's reader takes it as a note, FluidSynth's would not, so the file is played as
    the studio read it (`studio.audio.synth.split.scan_midi` gives up on such a file)."""
    tpb = 480
    step = tpb // per_beat
    body = bytearray(_vlq(0) + _tempo(500_000) + _vlq(0) + b"\x90" + bytes([48, 90]))
    body += _vlq(0) + _meta(0x01, b"x") + _vlq(step) + bytes([55, 90])  # running status after a meta event
    for i in range(2, round(minutes * 120 * per_beat)):
        body += _vlq(step if i > 2 else 0) + b"\x90" + bytes([48 + (i * 7) % 36, 90])
        body += _vlq(0) + b"\x80" + bytes([48 + ((i - 2) * 7) % 36, 0])
    body += _vlq(step) + _END_OF_TRACK
    return _header(0, 1, tpb) + _chunk(b"MTrk", bytes(body))


def far_meter_change() -> bytes:
    """8 notes at 1 tick per beat, then a 3/4 time signature MAX_DELTA ticks later (about 10^9 16ths)."""
    notes = _note_events([(i, 1, 60 + i) for i in range(8)], 1)
    return midi_from_tracks([[*notes, (8 + MAX_DELTA, _time_signature(3, 4))]], 1)


def stacked_note_ons(size: int = 2 * 1024 * 1024 - 200) -> bytes:
    """About `size` bytes of one pitch struck over and over at tick 0 (running status), then released
    as often one tick later: every note-off ends the oldest of a stack of ~175,000 notes."""
    n = size // 6
    body = b"\x00\x90\x3c\x40" + b"\x00\x3c\x40" * (n - 1) + b"\x01\x3c\x00" + b"\x00\x3c\x00" * (n - 1)
    return _header(0, 1, 96) + _chunk(b"MTrk", body + b"\x00" + _END_OF_TRACK)


def wide_meter(n_notes: int = 19_999, numerator: int = 255, denominator: int = 1, microseconds_per_beat: int = 20_000) -> bytes:
    """`n_notes` short notes under a 255/1 meter at 960 ticks per beat (2,040 eighth-note bar shifts
    for the pickup search to try), fast enough to stay under 10 minutes (50 s at the default tempo)."""
    tpb = 960
    conductor = [(0, _time_signature(numerator, denominator)), (0, _tempo(microseconds_per_beat))]
    notes = _note_events([(i / 8, 0.125, 60 + i % 12) for i in range(n_notes)], tpb)
    return midi_from_tracks([conductor, [(0, _track_name("Melody")), *notes]], tpb)

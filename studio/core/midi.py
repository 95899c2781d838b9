"""MIDI in and out: read and validate a Standard MIDI File into a `Score`, write a `Score` back.

Reading accepts type 0, 1 and 2 files, any ticks-per-beat, SMPTE timing, tempo and meter changes,
any channel, running status and SysEx, from bytes or a path. Everything a user can get wrong ends
in one `InputError` whose message says what is wrong and what to do; nothing else escapes.

We read the file ourselves rather than with mido: mido's errors for a truncated or lying file
are not messages a person can act on, it cannot read SMPTE timing, and it builds a validated
object per event, which is too slow to refuse a 2 MB upload within a second.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.config import Limits
from studio.core.errors import InputError, one_line
from studio.core.score import DEFAULT_MICROSECONDS_PER_BEAT, Marker, Note, Score, TempoChange, TimeSignature, Track

__all__ = ["ParsedMidi", "read_division", "read_midi", "track_channels", "write_midi"]

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0

# Signatures of files people upload by mistake, for a message that names what they uploaded.
_OTHER_FORMATS = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (MusicXML .mxl, a Word or a zip file)"),
    (b"ID3", "an MP3 recording"),
    (b"\xff\xfb", "an MP3 recording"),
    (b"OggS", "an Ogg recording"),
    (b"fLaC", "a FLAC recording"),
    (b"RIFF", "a WAV recording"),
    (b"<?xml", "an XML file (MusicXML?)"),
]


@dataclass
class ParsedMidi:
    """A validated song and the warnings a person should see (cut to the limit, pitches moved, ...)."""

    score: Score
    warnings: list[str] = field(default_factory=list)
    source_format: int = 1
    cut: bool = False  # True when the music was cut to the length limit
    trimmed: bool = False  # True when events long after the last note were dropped (see `_drop_after_music`)
    repaired: bool = False  # True when part of the file was ignored (a tempo of 0, bytes after the MIDI data):
    # a player should get `write_midi(score)`, not the file's own bytes


def _fail(message: str) -> InputError:
    return InputError(message)


def _too_large(size: int, cap: int) -> str:
    mb = 1024 * 1024
    return f"the file is {size / mb:.1f} MB, over the {cap / mb:g} MB limit: upload a shorter MIDI file (a melody needs only a few KB)"


def _load_bytes(source: bytes | bytearray | str | os.PathLike, limits: Limits) -> bytes:
    """The file's bytes, refusing oversized uploads before reading them."""
    cap = limits.max_upload_bytes
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise _fail(f"cannot read {path.name!r}: no such file; check the path and try again")
        size = path.stat().st_size
        if size > cap:
            raise _fail(_too_large(size, cap))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _fail(f"cannot read {path.name!r} ({exc.strerror}); check the file and try again") from None
    if len(data) > cap:
        raise _fail(_too_large(len(data), cap))
    return data


def _unwrap_rmid(data: bytes) -> bytes:
    """RIFF-wrapped MIDI (.rmi): return the Standard MIDI File inside (the body of its ``data``
    chunk, without the INFO chunks that may follow it), else the data unchanged."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    pos = 12
    while pos + 8 <= len(data):
        kind, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if kind == b"data" and data[pos + 8 : pos + 12] == b"MThd":
            return data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)  # RIFF chunks are padded to an even length
    at = data.find(b"MThd")  # a damaged RIFF layout: the MIDI file is still in there
    return data[at:] if at >= 0 else data


def _identify(data: bytes) -> str:
    for magic, what in _OTHER_FORMATS:
        if data.startswith(magic):
            return what
    head = data[:512]
    if head.startswith(b"X:") and b"\nK:" in data[:4096]:
        return "an ABC text file"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return "not a MIDI file"


@dataclass
class _Layout:
    format: int
    ticks_per_beat: int
    smpte_ticks_per_second: float | None
    tracks: list[bytes]
    extra_bytes: int = 0  # bytes after the tracks the header announced that are not a chunk: ignored


def read_division(division: int) -> tuple[int, float | None]:
    """The timing of a MIDI header's division word: ``(ticks_per_beat, None)`` for metrical time,
    ``(0, ticks_per_second)`` for SMPTE time (29 frames means 29.97); `InputError` when invalid.
    Shared with the synthesizer's channel split (`studio.audio.synth.split`)."""
    if division & 0x8000:
        fps_byte = (division >> 8) & 0xFF
        frames = 256 - fps_byte  # two's complement: -24, -25, -29 (29.97), -30
        ticks_per_frame = division & 0xFF
        if frames not in (24, 25, 29, 30) or ticks_per_frame == 0:
            raise _fail("the MIDI file's SMPTE timing is invalid: export it again with beats (ticks per quarter note)")
        return 0, (29.97 if frames == 29 else frames) * ticks_per_frame
    if division == 0:
        raise _fail("the MIDI file says 0 ticks per beat, so its notes have no timing: export it again")
    return division, None


def _walk_chunks(data: bytes, limits: Limits) -> _Layout:
    """Check the header and chunk lengths; return the track chunks (unknown chunks are skipped, as the spec says)."""
    if not data:
        raise _fail("the file is empty (0 bytes): choose a Standard MIDI File (.mid) that contains music")
    data = _unwrap_rmid(data)
    if not data.startswith(b"MThd"):
        what = _identify(data)
        if what == "not a MIDI file":
            raise _fail("this is not a MIDI file (no MIDI header): upload a Standard MIDI File (.mid)")
        raise _fail(f"this is {what}, not a MIDI file: upload a Standard MIDI File (.mid)")
    if len(data) < 14:
        raise _fail("the MIDI file is truncated (its header is incomplete): export it again from your music program")
    header_len = struct.unpack(">I", data[4:8])[0]
    if header_len < 6 or 8 + header_len > len(data):
        raise _fail("the MIDI header is damaged (wrong length): export the file again from your music program")
    fmt, n_claimed, division = struct.unpack(">HHH", data[8:14])
    if fmt > 2:
        raise _fail(f"unknown MIDI file format {fmt} (only 0, 1 and 2 exist): the file is damaged; export it again")
    if n_claimed == 0:
        raise _fail("the MIDI header says the file has no tracks: there is no music in it")
    if n_claimed > limits.max_tracks:
        raise _fail(
            f"the file has {n_claimed:,} tracks, over the {limits.max_tracks}-track limit: "
            "export only the tracks you need (the melody is enough)"
        )
    ticks_per_beat, smpte = read_division(division)
    pos = 8 + header_len
    tracks: list[bytes] = []
    while len(tracks) < n_claimed and pos + 8 <= len(data):
        kind, length = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        body_start = pos + 8
        if body_start + length > len(data):
            where = f"track {len(tracks) + 1}" if kind == b"MTrk" else "its last chunk"
            raise _fail(f"the MIDI file is truncated ({where} ends early): it was cut off while saving or uploading; export it again")
        if kind == b"MTrk":
            tracks.append(data[body_start : body_start + length])
        elif not kind.isascii() or not kind.isalpha():
            break  # trailing garbage after the last chunk (common after downloads): ignore it
        pos = body_start + length
    if len(tracks) < n_claimed:
        raise _fail(
            f"the MIDI header says the file has {n_claimed} tracks but only {len(tracks)} are there: the file is damaged; export it again"
        )
    # After the last track the header announced, the music is whole: well-formed chunks (more tracks,
    # a program's own data) are skipped as the specification says, and bytes that are no chunk (a
    # download's padding, a text appended) are ignored with a warning. Refusing them would turn away
    # files every player plays; calling them "truncated" sent people to export a good file again.
    while pos + 8 <= len(data):
        kind, length = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if not (kind.isascii() and kind.isalpha()) or pos + 8 + length > len(data):
            break
        pos += 8 + length
    return _Layout(fmt, ticks_per_beat, smpte, tracks, len(data) - pos)


def _varlen(chunk: bytes, pos: int) -> tuple[int, int]:
    """A MIDI variable-length number at `pos` (at most 4 bytes); returns (value, next position)."""
    if pos < len(chunk) and chunk[pos] < 0x80:  # one byte, as most delta times are
        return chunk[pos], pos + 1
    value = 0
    for i in range(4):
        if pos + i >= len(chunk):
            raise IndexError("variable-length number runs past the track")
        byte = chunk[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    raise ValueError("variable-length number longer than 4 bytes")


# Events as plain tuples: (tick, status, data1, data2) for channel messages (status 0x80-0xEF),
# (tick, 0xFF, meta type, payload bytes) for meta events. SysEx and system messages are skipped.
_Event = tuple[int, int, int, int | bytes]
_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1}


def _read_track(chunk: bytes) -> tuple[list[_Event], int]:
    """The events of one track chunk, with running status, and the tick of its end; raises on damaged data.

    We read events ourselves instead of with mido: mido builds and validates an object per event,
    so a 2 MB upload takes seconds, and a refusal must take a fraction of one. Data bytes over 127
    are clipped to 127, as mido's `clip=True` does.
    """
    events: list[_Event] = []
    pos, tick, running, end = 0, 0, 0, len(chunk)
    while pos < end:
        delta, pos = _varlen(chunk, pos)
        tick += delta
        status = chunk[pos]
        if status < 0x80:
            if not running:
                raise ValueError("running status without a status byte")
            status = running
        else:
            pos += 1
        if status == 0xFF:
            kind = chunk[pos]
            length, pos = _varlen(chunk, pos + 1)
            if pos + length > end:
                raise IndexError("meta event runs past the track")
            if kind == 0x2F:  # end of track: anything after it is not music
                break
            events.append((tick, 0xFF, kind, chunk[pos : pos + length]))
            pos += length
        elif status in (0xF0, 0xF7):
            length, pos = _varlen(chunk, pos)
            pos += length
            if pos > end:
                raise IndexError("SysEx runs past the track")
        elif status >= 0xF0:
            pos += _SYSTEM_DATA_BYTES.get(status, 0)
        else:
            running = status
            n = _DATA_BYTES[status & 0xF0]
            if pos + n > end:
                raise IndexError("message runs past the track")
            d1 = min(chunk[pos], 127)
            d2 = min(chunk[pos + 1], 127) if n == 2 else 0
            events.append((tick, status, d1, d2))
            pos += n
    return events, tick


def _parse_tracks(layout: _Layout) -> tuple[list[list[_Event]], int]:
    """Parse each track chunk; a damaged track becomes one clear error. Returns the tracks' events
    and the tick where the file's time line ends (its last end of track), whatever the events."""
    parsed = []
    file_end = 0
    for i, chunk in enumerate(layout.tracks):
        try:
            events, end = _read_track(chunk)
        except (IndexError, ValueError):
            raise _fail(
                f"track {i + 1} of the MIDI file is damaged (its events cannot be read): export the file again from your music program"
            ) from None
        parsed.append(events)
        file_end = max(file_end, end)
    return parsed, file_end


_NAME_CHARS = 60
MAX_MARKERS = 10_000  # marker events read from one file (a take has one per chord); more are ignored


def _text_from_file(payload: bytes, limit: int = _NAME_CHARS) -> str:
    """A text event (a track name) as one clean line of at most `limit` characters.

    UTF-8 first (what current programs write, emoji included), else latin-1 (older files); control
    characters are dropped and runs of spaces and line breaks become one space (`one_line`), so a
    name can neither forge a line of the CLI's output nor send escape codes to a terminal.
    """
    head = payload[: 4 * limit + 4]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(head) - 3 and len(head) < len(payload):
            text = head[: exc.start].decode("utf-8")  # the cut fell inside a character
        else:
            text = head.decode("latin-1")
    return " ".join(one_line(text).split())[:limit]


def _ensure_at_zero(events: list, default):
    events = sorted(events, key=lambda e: e.tick)
    deduped: dict[int, object] = {}
    for e in events:
        deduped[e.tick] = e  # the last event at a tick wins
    events = list(deduped.values())
    if not events or events[0].tick > 0:
        events.insert(0, default)
    # Drop events that repeat the one before them.
    out = [events[0]]
    for e in events[1:]:
        if any(getattr(e, f) != getattr(out[-1], f) for f in e.__slots__ if f != "tick"):
            out.append(e)
    return out


def _tracks_from_events(tracks: list[list[_Event]], layout: _Layout) -> tuple[Score, list[str], int]:
    """Notes per (track, channel), tempo map and meter map, in ticks; the warnings; and how many
    tempo events were ignored (a tempo of 0)."""
    warnings: list[str] = []
    tempos: list[TempoChange] = []
    sigs: list[TimeSignature] = []
    program_changes: list[tuple[int, int, int]] = []  # (tick, channel, program)
    raw: dict[tuple[int, int], list[Note]] = {}
    names: dict[int, str] = {}
    markers: list[Marker] = []
    zero_length = zero_tempos = 0
    for t_index, events in enumerate(tracks):
        # Notes sounding per (channel, pitch), oldest first: a note-off ends the oldest (FIFO), in
        # constant time whatever the number stacked (a list's pop(0) made a 2 MB file take 17 s).
        open_notes: dict[tuple[int, int], deque[tuple[int, int]]] = {}
        tick = 0
        for tick, status, d1, d2 in events:
            if status == 0xFF:
                payload = d2
                if d1 == 0x51 and len(payload) == 3 and layout.smpte_ticks_per_second is None:
                    if int.from_bytes(payload, "big"):
                        tempos.append(TempoChange(tick, int.from_bytes(payload, "big")))
                    else:  # 0 microseconds a beat: no speed a player can keep
                        zero_tempos += 1
                elif d1 == 0x58 and len(payload) >= 2 and payload[0] > 0 and payload[1] < 8:
                    sigs.append(TimeSignature(tick, payload[0], 2 ** payload[1]))
                elif d1 == 0x03 and t_index not in names:
                    name = _text_from_file(payload)
                    if name:
                        names[t_index] = name
                elif d1 == 0x06 and len(markers) < MAX_MARKERS and (text := _text_from_file(payload)):
                    markers.append(Marker(tick, text))
                continue
            kind, channel = status & 0xF0, status & 0x0F
            if kind == 0x90 and d2 > 0:
                stack = open_notes.get((channel, d1))
                if stack is None:
                    stack = open_notes[(channel, d1)] = deque()
                stack.append((tick, d2))
            elif kind in (0x80, 0x90):
                stack = open_notes.get((channel, d1))
                if stack:
                    start, velocity = stack.popleft()
                    if tick > start:
                        raw.setdefault((t_index, channel), []).append(Note(start, tick, d1, velocity))
                    else:
                        zero_length += 1
            elif kind == 0xC0:
                program_changes.append((tick, channel, d1))
        for (channel, pitch), stack in open_notes.items():  # notes never released end with their track
            for start, velocity in stack:
                if tick > start:
                    raw.setdefault((t_index, channel), []).append(Note(start, tick, pitch, velocity))
    if zero_length:
        warnings.append(f"{zero_length} zero-length notes were ignored")
    if zero_tempos:  # ignored as a player would, rather than refused: the rest of the file is good music
        warnings.append(
            f"the file sets a tempo of 0 (no speed at all){f' {zero_tempos} times' if zero_tempos > 1 else ''}: "
            "ignored, the tempo before it goes on (120 bpm at the start)"
        )

    if layout.smpte_ticks_per_second is not None:
        # SMPTE files count ticks in seconds: one beat of 1 s (60 qpm) keeps every time exact.
        ticks_per_beat = max(1, round(layout.smpte_ticks_per_second))
        tempos = [TempoChange(0, 1_000_000)]
        warnings.append("the file uses SMPTE (clock) timing: read as 60 quarter notes per minute")
    else:
        ticks_per_beat = layout.ticks_per_beat
    tempos = _ensure_at_zero(tempos, TempoChange(0, DEFAULT_MICROSECONDS_PER_BEAT))
    if not sigs:
        warnings.append("the file has no time signature: assuming 4/4")
    sigs = _ensure_at_zero(sigs, TimeSignature(0, 4, 4))

    program_changes.sort()
    tracks: list[Track] = []
    for (t_index, channel), notes in sorted(raw.items()):
        notes.sort(key=lambda n: (n.start, n.pitch))
        first = notes[0].start
        program = 0
        for tick, ch, prog in program_changes:
            if ch == channel and tick <= first:
                program = prog
        base = names.get(t_index) or f"Track {t_index + 1}"
        split = sum(1 for (ti, _c) in raw if ti == t_index) > 1
        name = f"{base} (ch {channel + 1})" if split else base
        tracks.append(Track(name, program, channel == DRUM_CHANNEL, channel, notes))
    markers.sort(key=lambda m: m.tick)
    return Score(ticks_per_beat, tracks, tempos, sigs, markers), warnings, zero_tempos


# After the last note, a file's time line may go on for at most this long (the rest of a final bar,
# a release): tempo, meter or text events later than that are not music, and are dropped.
_TRAILING_BEATS = 4
_TRAILING_SECONDS = 5.0


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} minutes" if seconds < 7200 else f"{seconds / 3600:,.0f} hours"


def _drop_after_music(score: Score, file_end: int, warnings: list[str]) -> bool:
    """Cut the file's time line to its music: True (with a warning) when it went on past the last note.

    Every limit looks at the notes; without this, a tempo, meter or text event an hour after an 8 s
    tune made an hour of silence, and a far-off meter change made the roll build tens of millions of bars. The time
    line keeps at most one bar, `_TRAILING_BEATS` beats and `_TRAILING_SECONDS` after the last note
    ends (so the audio is the music plus its final bar at most); meter and tempo changes later than
    that are dropped, so nothing downstream sees a time line longer than the music.
    """
    end = score.end_tick
    bar = score.time_signature_at(end).bar_ticks(score.ticks_per_beat)
    seconds_end = score.seconds_to_tick(score.tick_to_seconds(end) + _TRAILING_SECONDS)
    limit = end + max(0, min(bar, _TRAILING_BEATS * score.ticks_per_beat, seconds_end - end))
    if file_end <= limit:
        return False
    score.tempos = [t for t in score.tempos if t.tick <= limit]
    score.time_signatures = [s for s in score.time_signatures if s.tick <= limit]
    score.markers = [m for m in score.markers if m.tick <= limit]
    extra = score.tick_to_seconds(file_end) - score.tick_to_seconds(end)
    warnings.append(
        f"the file goes on for {_span(extra)} after its last note with nothing to play "
        "(tempo, meter, text or controller events): the studio ends the music after its last bar"
    )
    return True


def _apply_limits(score: Score, limits: Limits, warnings: list[str]) -> bool:
    """Refuse too many notes; cut music past 10 minutes (or `max_beats`) with a warning. True if cut."""
    n_notes = score.n_notes
    if n_notes > limits.max_notes:
        raise _fail(
            f"the file has {n_notes:,} notes, over the {limits.max_notes:,}-note limit: upload a shorter piece or only its melody track"
        )
    cut = min(
        score.seconds_to_tick(limits.max_seconds),
        limits.max_beats * score.ticks_per_beat,
    )
    if score.end_tick > cut:
        minutes, beats = score.duration_seconds / 60, score.end_tick / score.ticks_per_beat
        for track in score.tracks:
            track.notes = [Note(n.start, min(n.end, cut), n.pitch, n.velocity) for n in track.notes if n.start < cut]
        score.tracks = [t for t in score.tracks if t.notes]
        # Both limits are named: at a fast tempo the beats end first (8 minutes of music, 6.7 kept).
        limit = f"the studio's limit of {limits.max_seconds / 60:g} minutes or {limits.max_beats:,} beats"
        kept = f"{score.tick_to_seconds(cut) / 60:.1f} minutes ({cut / score.ticks_per_beat:,.0f} beats)"
        if all(t.is_drum for t in score.tracks):  # also when no track is left
            raise _fail(
                f"the first {kept} of the music ({limit}) hold no melody notes: "
                "remove the silence before the melody, or check the file's tempo"
            )
        warnings.append(f"the music is {minutes:.1f} minutes ({beats:,.0f} beats) long, over {limit}: the studio uses its first {kept}")
        score.tempos = [t for t in score.tempos if t.tick < cut] or score.tempos[:1]
        score.time_signatures = [s for s in score.time_signatures if s.tick < cut] or score.time_signatures[:1]
        score.markers = [m for m in score.markers if m.tick < cut]
        return True
    return False


def read_midi(source: bytes | bytearray | str | os.PathLike, limits: Limits | None = None) -> ParsedMidi:
    """Read and validate a Standard MIDI File (bytes or a path) into a `Score`.

    Parameters
    ----------
    source : bytes or path
        The file's contents or its path.
    limits : Limits, default: Limits()
        Upload size, notes, tracks and duration the studio accepts.

    Raises
    ------
    InputError
        With one line saying what is wrong and what to do (empty, not MIDI, damaged, over a limit,
        no notes, drums only).
    """
    limits = limits or Limits()
    data = _load_bytes(source, limits)
    layout = _walk_chunks(data, limits)
    events, file_end = _parse_tracks(layout)
    score, warnings, ignored_tempos = _tracks_from_events(events, layout)
    if not score.tracks:
        raise _fail("the file has no notes: record or choose a melody with at least one note")
    if all(t.is_drum for t in score.tracks):
        raise _fail("the file has only drum notes (MIDI channel 10): the studio needs a melody on another channel")
    if layout.extra_bytes:
        warnings.append(f"{layout.extra_bytes:,} extra bytes after the MIDI data were ignored")
    repaired = bool(layout.extra_bytes or ignored_tempos)
    trimmed = _drop_after_music(score, file_end, warnings)
    cut = _apply_limits(score, limits, warnings)
    return ParsedMidi(score, warnings, layout.format, cut, trimmed, repaired)


def track_channels(tracks: list[Track]) -> list[int]:
    """The MIDI channel `write_midi` gives each track: one per melodic track (skipping 10, the drum
    channel), channel 10 for drums; wraps past 15."""
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    channels, next_free = [], 0
    for track in tracks:
        if track.is_drum:
            channels.append(DRUM_CHANNEL)
        else:
            channels.append(free[next_free % len(free)])
            next_free += 1
    return channels


def _varlen_bytes(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


MAX_DELTA = 0x0FFFFFFF  # the largest delta time a MIDI file can hold (4 bytes of 7 bits)
_EMPTY_TEXT = b"\xff\x01\x00"  # a text event with no text: every player skips it


def _track_chunk(events: list[tuple[int, int, bytes]]) -> bytes:
    """An MTrk chunk of (tick, order, event bytes), sorted by tick then order, closed by end-of-track.

    A gap longer than `MAX_DELTA` ticks cannot be one delta time (it would take 5 bytes, which our
    reader and FluidSynth refuse as a damaged file): it is bridged by empty text events every
    `MAX_DELTA` ticks, so every time stays exact and the file stays valid."""
    body = bytearray()
    now = 0
    for tick, _order, data in sorted(events, key=lambda e: (e[0], e[1])):
        while tick - now > MAX_DELTA:
            body += _varlen_bytes(MAX_DELTA) + _EMPTY_TEXT
            now += MAX_DELTA
        body += _varlen_bytes(tick - now) + data
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _note_track_chunk(head: list[tuple[int, int, bytes]], notes: Sequence[Note], channel: int) -> bytes:
    """`_track_chunk` of `head`'s events and `notes` as note-on/note-off pairs on `channel`, the
    same bytes, encoded with numpy: a track of 20,000 notes took 0.1 s one event at a time.

    The events are sorted as `_track_chunk` sorts them (by tick, then order, then as given; head
    first); a gap over `MAX_DELTA` is bridged there (`_track_chunk` itself writes the track)."""
    if not notes:
        return _track_chunk(head)
    table = np.array([(n.start, n.end, n.pitch, n.velocity) for n in notes], np.int64).reshape(-1, 4)
    n = len(table)
    # rows: the head's events, then each note's on (order 1) and off (order 0), interleaved as given
    ticks = np.concatenate([[e[0] for e in head], np.column_stack([table[:, 0], table[:, 1]]).ravel()]).astype(np.int64)
    orders = np.concatenate([[e[1] for e in head], np.tile([1, 0], n)]).astype(np.int64)
    fixed = np.zeros((len(head) + 2 * n, 3), np.uint8)  # a note event's three bytes
    fixed[len(head) :: 2] = np.column_stack([np.full(n, 0x90 | channel), table[:, 2], np.clip(table[:, 3], 1, 127)])
    fixed[len(head) + 1 :: 2] = np.column_stack([np.full(n, 0x80 | channel), table[:, 2], np.zeros(n, np.int64)])
    order = np.lexsort((orders, ticks))  # stable: equal (tick, order) keep their place, as `sorted` does
    deltas = np.diff(ticks[order], prepend=0)
    if len(deltas) and int(deltas.max()) > MAX_DELTA:
        notes_events = zip(ticks[len(head) :].tolist(), orders[len(head) :].tolist(), map(bytes, fixed[len(head) :]), strict=True)
        return _track_chunk(head + list(notes_events))
    fixed = fixed[order]
    head_at = np.flatnonzero(order < len(head))  # where the head's events went
    sizes = np.full(len(order), 3)
    sizes[head_at] = [len(head[int(order[i])][2]) for i in head_at]
    widths = 1 + (deltas >= 1 << 7) + (deltas >= 1 << 14) + (deltas >= 1 << 21)  # the delta's bytes
    starts = np.concatenate([[0], np.cumsum(widths + sizes)[:-1]])
    out = np.zeros(int((widths + sizes).sum()), np.uint8)
    for j in range(4):  # the delta's j-th byte, most significant first, continuation bit on all but the last
        has = widths > j
        shift = 7 * (widths[has] - 1 - j)
        out[starts[has] + j] = ((deltas[has] >> shift) & 0x7F) | np.where(widths[has] - 1 > j, 0x80, 0)
    payload = starts + widths
    notes_at = np.ones(len(order), bool)
    notes_at[head_at] = False
    for k in range(3):
        out[payload[notes_at] + k] = fixed[notes_at, k]
    body = bytearray(out.tobytes())
    for i in head_at:
        body[payload[i] : payload[i] + sizes[i]] = head[int(order[i])][2]
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _meta(kind: int, payload: bytes) -> bytes:
    return bytes([0xFF, kind]) + _varlen_bytes(len(payload)) + payload


def _text(name: str) -> bytes:
    """A name as a text event: UTF-8 (as `_text_from_file` reads it), at most 127 bytes, whole characters."""
    return name.encode("utf-8")[:127].decode("utf-8", "ignore").encode("utf-8")


def write_midi(score: Score, title: str = "", volumes: Sequence[int | None] | None = None) -> bytes:
    """A type 1 Standard MIDI File of `score`: a conductor track with the tempo and meter maps and
    the markers (marker meta events, one clean line of at most 60 characters each), then one named
    track per instrument with its General MIDI program and, when `volumes[i]` is a
    number (0-127), a channel volume (control change 7) at its start. Without one, players use
    their default (100 in FluidSynth and the GM specification's recommended practice).

    Encoded directly (the format is a few lines to write); mido builds and validates an object
    per event, which made writing a 10-minute song take a second. Tests read our files with mido.
    """
    conductor = [(0, 0, _meta(0x03, _text(title or "Studio")))]
    for sig in score.time_signatures:
        power = max(0, sig.denominator.bit_length() - 1)
        conductor.append((sig.tick, 1, _meta(0x58, bytes([sig.numerator, power, 24, 8]))))
    for tempo in score.tempos:
        conductor.append((tempo.tick, 2, _meta(0x51, max(1, min(tempo.microseconds_per_beat, 0xFFFFFF)).to_bytes(3, "big"))))
    for marker in score.markers:  # one clean line each, as the reader reads them back
        if text := " ".join(one_line(marker.text).split())[:_NAME_CHARS]:
            conductor.append((max(0, marker.tick), 3, _meta(0x06, _text(text))))
    chunks = [_track_chunk(conductor)]
    if volumes is not None and len(volumes) != len(score.tracks):
        raise ValueError(f"got {len(volumes)} volumes for {len(score.tracks)} tracks")
    for i, (track, channel) in enumerate(zip(score.tracks, track_channels(score.tracks), strict=True)):
        events = [(0, -2, _meta(0x03, _text(track.name)))]
        if not track.is_drum:
            events.append((0, -1, bytes([0xC0 | channel, track.program & 0x7F])))
        if volumes is not None and volumes[i] is not None:
            events.append((0, -1, bytes([0xB0 | channel, 7, max(0, min(127, int(volumes[i])))])))
        chunks.append(_note_track_chunk(events, track.notes, channel))  # note-offs before note-ons at a tick
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), score.ticks_per_beat)
    return header + b"".join(chunks)

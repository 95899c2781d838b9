"""Fuzz the studio's input path: mutated MIDI files through `studio.serving.service.accompany`.

Every case takes a real file (the test tunes in tests/data/tunes and the hand-built files of
tests/midi_factory.py), applies one to four mutations (bit flips, truncations, wrong chunk
lengths, huge delta times, running-status abuse, SysEx, up to 65,535 tracks, zero or SMPTE
division, meta events with absurd values, note storms, spliced files); every fifth case is instead a
hostile file of issue 23 (`hostile_file`: events long after the music, far meter changes, stacked
note-ons, wide meters, odd track names), mutated or not. Each runs through
the whole `accompany` path (parse, melody, pickup, grid, model, MIDI out; no audio). The only
exception allowed out is `studio.core.errors.InputError`; each case must finish within `--max-cpu-s`
seconds of CPU time, and the process's peak resident memory (the kernel's high-water mark,
`ru_maxrss`) must stay within `--max-mb` of what it held after warm-up.

The mutations are plain functions of (bytes, x, y) so that the hypothesis tests in
tests/test_fuzz.py draw the very same operations; here they are drawn by a seeded `random.Random`,
one stream per case, so any case can be replayed alone (`--replay N`).

Usage:
    python -m bench.fuzz --cases 100000 [--seed 0] [--gan-every 20] [--png-every 500] [--json]
    python -m bench.fuzz --seed 0 --replay 1234      # run case 1234 alone, with its traceback
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.config import REPO_ROOT
from studio.core.midi import _varlen_bytes as _vlq  # the writer's own variable-length quantity encoder

__all__ = ["OPS", "CaseResult", "Mutation", "apply", "mutate", "peak_rss_mb", "rss_mb", "run_case", "seed_files"]

MAX_VLQ = 0x0FFFFFFF
Mutation = tuple[str, int, int]  # (operation name, x, y): x and y pick where and what


# --------------------------------------------------------------------------- seed files


def seed_files() -> list[tuple[str, bytes]]:
    """The files every mutation starts from: the real test tunes, then the factory's edge cases."""
    seeds = [(p.name, p.read_bytes()) for p in sorted((REPO_ROOT / "tests" / "data" / "tunes").glob("*.mid"))]
    mf = _factory()
    made: list[tuple[str, Callable[[], bytes]]] = [
        ("running_status", lambda: mf.running_status(64)),
        ("sysex_file", mf.sysex_file),
        ("smpte_timing", mf.smpte_timing),
        ("huge_delta", mf.huge_delta),
        ("drums_only", mf.drums_only),
        ("no_notes", mf.no_notes),
        ("waltz", lambda: mf.melody([(i, 1, 60 + (i * 5) % 12) for i in range(24)], numerator=3, denominator=4)),
        ("all_pitches", lambda: mf.all_pitches(256)),
    ]
    return seeds + [(name, make()) for name, make in made]


# --------------------------------------------------------------------------- reading the layout


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset of the chunk's tag, length field) of each well-formed chunk, header included."""
    found, pos = [], 0
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        found.append((pos, length))
        if pos + 8 + length > len(data):
            break
        pos += 8 + length
    return found


def _tracks(data: bytes) -> list[tuple[int, int]]:
    """(offset of the body, length) of each MTrk chunk whose body lies within the data."""
    return [(pos + 8, n) for pos, n in _chunks(data) if data[pos : pos + 4] == b"MTrk" and pos + 8 + n <= len(data)]


def _events(body: bytes) -> list[tuple[int, int]]:
    """(start of the delta, start of the status or data) of each event, read leniently until a damaged one."""
    found, pos, running = [], 0, 0
    lengths = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
    try:
        while pos < len(body):
            start = pos
            while body[pos] & 0x80:
                pos += 1
            pos += 1
            found.append((start, pos))
            status = body[pos]
            if status < 0x80:
                status, pos = running, pos - 1
            if status == 0xFF:
                n, pos = _read_vlq(body, pos + 2)
                pos += n
            elif status in (0xF0, 0xF7):
                n, pos = _read_vlq(body, pos + 1)
                pos += n
            elif status >= 0x80:
                running = status
                pos += 1 + lengths.get(status & 0xF0, 0)
            else:
                break
    except IndexError:
        pass
    return found


def _read_vlq(body: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = body[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    return value, pos


def _replace(data: bytes, track: tuple[int, int], start: int, stop: int, new: bytes) -> bytes:
    """`data` with body bytes [start, stop) of `track` replaced by `new`, its chunk length kept true."""
    body_at, length = track
    out = bytearray(data[: body_at + start] + new + data[body_at + stop :])
    struct.pack_into(">I", out, body_at - 4, length + len(new) - (stop - start))
    return bytes(out)


def _pick_track(data: bytes, x: int) -> tuple[int, int] | None:
    tracks = _tracks(data)
    return tracks[x % len(tracks)] if tracks else None


def _boundary(data: bytes, track: tuple[int, int], y: int) -> tuple[int, int]:
    """An event of `track` picked by `y`: (start of its delta, start of its status); the end if none."""
    events = _events(data[track[0] : track[0] + track[1]])
    if not events:
        return track[1], track[1]
    return events[y % len(events)]


# --------------------------------------------------------------------------- what gets inserted


def _meta(kind: int, payload: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(payload)) + payload


def _catalogue(y: int) -> bytes:
    """One hostile event (with its delta) chosen by `y`; the low byte gives a free value."""
    v = y & 0xFF
    events = [
        _vlq(MAX_VLQ) + bytes([0x90, 60, 100]),  # a note after the largest delta there is
        b"\xff\xff\xff\xff\x7f" + bytes([0x90, 60, 100]),  # a delta of 5 bytes (invalid)
        b"\x00" + bytes([v & 0x7F, 100]),  # data bytes with no status before them (running status abuse)
        b"\x00\xf0" + _vlq(5) + bytes([0x7E, 0x7F, 9, 1, 0xF7]),  # a GM System On SysEx
        b"\x00\xf0" + _vlq(100 + v) + b"\x01\x02",  # SysEx whose length runs past the track
        b"\x00\xf7" + _vlq(3) + b"\x01\x02\xf7",  # an escape SysEx packet
        b"\x00\xf0" + b"\xff\xff\xff\x7f",  # SysEx with the largest length
        b"\x00" + _meta(0x51, b"\x00\x00\x00"),  # tempo 0
        b"\x00" + _meta(0x51, b"\xff\xff\xff"),  # slowest tempo
        b"\x00" + _meta(0x51, bytes([0, 0, v])),  # absurdly fast tempo
        b"\x00" + _meta(0x51, b"\x07"),  # tempo of the wrong length
        b"\x00" + _meta(0x58, bytes([v, 7, 24, 8])),  # n/128
        b"\x00" + _meta(0x58, bytes([0, 2, 24, 8])),  # 0/4
        b"\x00" + _meta(0x58, bytes([255, v % 8, 24, 8])),  # 255/d
        b"\x00" + _meta(0x58, bytes([v])),  # too short
        b"\x00" + _meta(0x03, bytes([v, 0, 0xFF, 0x80]) * 64),  # a name of odd bytes
        b"\x00" + _meta(0x2F, b""),  # end of track in the middle
        b"\x00\xff\x7f\xff\xff\xff\x7f",  # a meta event claiming the largest length
        b"\x00" + bytes([0x90 | (v & 0x0F), 0xFF, 0xFF]),  # note-on with data bytes over 127
        b"\x00" + bytes([0x80 | (v & 0x0F), 60, 0]),  # a note-off with no note-on
        b"\x00" + bytes([0x99, 36, 100]) + _vlq(v) + bytes([0x89, 36, 0]),  # a drum hit
        b"\x00" + bytes([0xF1, v & 0x7F, 0xF2, 1, 2, 0xF3, 1, 0xF8, 0xFE]),  # system messages
        b"\x00" + bytes([0xC0 | (v & 0x0F), v & 0x7F, 0, 0xE0, 0x7F, 0x7F]),  # program change, pitch bend
        _vlq(MAX_VLQ) + bytes([0x80, 60, 0]) + _vlq(MAX_VLQ) + _meta(0x51, b"\x00\x00\x01"),  # far end, fast tempo
    ]
    return events[(y >> 8) % len(events)]


def _storm(y: int) -> bytes:
    """Many notes at once or in a rush: up to 21,000 (over the 20,000-note limit)."""
    n = (50, 500, 5000, 19_000, 21_000)[(y >> 8) % 5]
    delta = _vlq((0, 1, 7, 480, MAX_VLQ)[y % 5])
    pitch = 20 + y % 90
    ons = b"".join(delta + bytes([0x90, (pitch + i) % 128, 90]) for i in range(n))
    return ons + _vlq(480) + b"".join(b"\x00" + bytes([0x80, (pitch + i) % 128, 0]) for i in range(n))


# --------------------------------------------------------------------------- the mutations


def _flip(data: bytes, x: int, y: int) -> bytes:
    out = bytearray(data)
    out[x % len(out)] ^= 1 << (y % 8)
    return bytes(out)


def _set_byte(data: bytes, x: int, y: int) -> bytes:
    out = bytearray(data)
    out[x % len(out)] = y & 0xFF
    return bytes(out)


def _truncate(data: bytes, x: int, y: int) -> bytes:
    return data[: x % (len(data) + 1)]


def _chunk_length(data: bytes, x: int, y: int) -> bytes:
    chunks = _chunks(data)
    if not chunks:
        return data
    pos, true = chunks[x % len(chunks)]
    value = (0, 1, 5, true - 1, true + 1, 2 * true, 0xFFFFFFFF, 0x7FFFFFFF, 0x10000, y >> 8)[y % 10]
    out = bytearray(data)
    struct.pack_into(">I", out, pos + 4, max(0, value) & 0xFFFFFFFF)
    return bytes(out)


def _header_field(data: bytes, offset: int, value: int) -> bytes:
    if len(data) < offset + 2:
        return data
    out = bytearray(data)
    struct.pack_into(">H", out, offset, value & 0xFFFF)
    return bytes(out)


def _track_count(data: bytes, x: int, y: int) -> bytes:
    values = (0, 1, 2, 63, 64, 65, 1000, 65535)
    return _header_field(data, 10, values[y % 9] if y % 9 < len(values) else y >> 4)


def _format(data: bytes, x: int, y: int) -> bytes:
    return _header_field(data, 8, (0, 1, 2, 3, 0xFFFF)[y % 5])


def _division(data: bytes, x: int, y: int) -> bytes:
    """Zero, tiny, huge or SMPTE ticks per beat (24, 25, 29.97, 30 fps or an invalid rate)."""
    kind = y % 8
    if kind < 4:
        value = (0, 1, 3, 0x7FFF)[kind]
    elif kind < 7:
        fps = (-24, -25, -29, -30, -1, -128)[(y >> 3) % 6]
        value = ((fps & 0xFF) << 8) | (0, 1, 40, 255)[(y >> 6) % 4]
    else:
        value = y >> 3
    return _header_field(data, 12, value)


def _insert(data: bytes, x: int, y: int) -> bytes:
    track = _pick_track(data, x)
    if track is None:
        return data
    at, _ = _boundary(data, track, y >> 16)
    return _replace(data, track, at, at, _catalogue(y))


def _note_storm(data: bytes, x: int, y: int) -> bytes:
    track = _pick_track(data, x)
    if track is None:
        return data
    at, _ = _boundary(data, track, x >> 8)
    return _replace(data, track, at, at, _storm(y))


def _delete_event(data: bytes, x: int, y: int) -> bytes:
    track = _pick_track(data, x)
    if track is None:
        return data
    events = _events(data[track[0] : track[0] + track[1]])
    if not events:
        return data
    i = y % len(events)
    stop = events[i + 1][0] if i + 1 < len(events) else track[1]
    return _replace(data, track, events[i][0], stop, b"")


def _drop_status(data: bytes, x: int, y: int) -> bytes:
    """Remove the status byte of a channel event: it now runs on the status before it."""
    track = _pick_track(data, x)
    if track is None:
        return data
    body = data[track[0] : track[0] + track[1]]
    channel = [s for _, s in _events(body) if s < len(body) and 0x80 <= body[s] < 0xF0]
    if not channel:
        return data
    at = channel[y % len(channel)]
    return _replace(data, track, at, at + 1, b"")


def _delta(data: bytes, x: int, y: int) -> bytes:
    """Replace an event's delta time: 0, small, the largest 4-byte one, or an invalid 5-byte one."""
    track = _pick_track(data, x)
    if track is None:
        return data
    start, status = _boundary(data, track, y >> 4)
    new = (_vlq(0), _vlq(0x7F), _vlq(0x3FFF), _vlq(MAX_VLQ), b"\xff\xff\xff\xff\x7f", _vlq(MAX_VLQ - 1))[y % 6]
    return _replace(data, track, start, status, new)


def _duplicate_tracks(data: bytes, x: int, y: int) -> bytes:
    """Copy a track chunk 1..8 times, or add tracks up to 65,535; the header counts them (or not)."""
    chunks = [(p, n) for p, n in _chunks(data) if data[p : p + 4] == b"MTrk" and p + 8 + n <= len(data)]
    if not chunks:
        return data
    pos, n = chunks[x % len(chunks)]
    if y % 4 == 0:
        copy, copies = b"MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", 65_535 - len(chunks)
    else:
        copy, copies = data[pos : pos + 8 + n], 1 + (y >> 2) % 8
    out = data + copy * copies
    if (y >> 5) % 2 == 0:
        out = _header_field(out, 10, min(65_535, len(chunks) + copies))
    return out


def _splice(data: bytes, x: int, y: int) -> bytes:
    """Bytes of another seed file inserted anywhere (a header in a track, a track in a header...)."""
    seeds = _seed_cache()
    other = seeds[(y >> 1) % len(seeds)][1]
    part = other[(y >> 8) % len(other) :][: 1 + (x >> 12) % 512]
    track = _pick_track(data, x)
    if y % 2 and track is not None:  # inside a track, whose length stays true: the events are what is wrong
        at = (x >> 4) % (track[1] + 1)
        return _replace(data, track, at, at, part)
    at = x % (len(data) + 1)
    return data[:at] + part + data[at:]


def _tail(data: bytes, x: int, y: int) -> bytes:
    """Junk after the last chunk: text, zeros, another header."""
    return data + (b"\x00" * (1 + x % 64), b"garbage\n", b"MThd\x00\x00\x00\x06", b"RIFF", bytes([y & 0xFF]) * 7)[y % 5]


def _rmid(data: bytes, x: int, y: int) -> bytes:
    """RIFF-wrapped (.rmi), with a true or a wrong RIFF size."""
    size = len(data) + 12 if y % 2 else y & 0xFFFFFFFF
    return b"RIFF" + struct.pack("<I", size & 0xFFFFFFFF) + b"RMIDdata" + struct.pack("<I", len(data)) + data


OPS: dict[str, Callable[[bytes, int, int], bytes]] = {
    "flip": _flip,
    "byte": _set_byte,
    "truncate": _truncate,
    "chunk_length": _chunk_length,
    "track_count": _track_count,
    "format": _format,
    "division": _division,
    "insert": _insert,
    "note_storm": _note_storm,
    "delete_event": _delete_event,
    "drop_status": _drop_status,
    "delta": _delta,
    "duplicate_tracks": _duplicate_tracks,
    "splice": _splice,
    "tail": _tail,
    "rmid": _rmid,
}


def apply(data: bytes, op: str, x: int, y: int) -> bytes:
    """`data` after one mutation (empty data stays empty: there is nothing to mutate)."""
    return OPS[op](data, x, y) if data else data


def mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    for op, x, y in mutations:
        data = apply(data, op, x, y)
    return data


_SEEDS: list[tuple[str, bytes]] = []


def _seed_cache() -> list[tuple[str, bytes]]:
    if not _SEEDS:
        _SEEDS.extend(seed_files())
    return _SEEDS


def random_case(rng: random.Random) -> tuple[int, list[Mutation]]:
    """A seed file's index and one to four mutations, drawn from `rng`."""
    seeds = _seed_cache()
    names = list(OPS)
    mutations = [(rng.choice(names), rng.getrandbits(32), rng.getrandbits(32)) for _ in range(rng.randint(1, 4))]
    return rng.randrange(len(seeds)), mutations


# --------------------------------------------------------------------------- hostile files (issue 23)

_NAMES = [
    b"\x1b[31mred\x1b[0m \x1b]0;title\x07",  # terminal escape codes
    b"Melody\nerror: forged line\r\n",  # a line of the CLI's output forged
    b"<a href='https://example.invalid'>log in</a><img src=x onerror=alert(1)><h1 style='color:red'>",  # HTML
    "\U0001f3b9 Klavier \u00e9t\u00e9 \u202eevil".encode(),  # emoji, accents, a right-to-left override
    b"\xff\xfe\xc3(\x80\xed\xa0\x80",  # invalid UTF-8
    b"\x00\x01\x7f\x9b" * 8,  # NUL, DEL and C1 controls
    b"",
]


def _odd_name(rng: random.Random) -> bytes:
    name = rng.choice(_NAMES)
    return name * rng.choice((1, 1, 40, 2000)) if name else name  # up to a name of 100 KB


def hostile_file(rng: random.Random) -> tuple[str, bytes]:
    """One file of a class from issue 23, with its parameters drawn from `rng`: ``(class, bytes)``.

    Classes: events long after the music (a meter, tempo, text or controller change minutes to
    days later), a far meter change (bars by the billion at 1 tick per beat), a stack of note-ons
    of one pitch (up to the 2 MB limit), a wide meter (up to 255/1 over many notes: the pickup
    search), and odd track names (escape codes, forged lines, HTML, emoji, invalid UTF-8, 100 KB)."""
    mf = _factory()
    kind = rng.choice(("after_music", "far_meter", "stacked", "wide_meter", "names"))
    if kind == "after_music":
        tpb = rng.choice((1, 24, 96, 480, 0x7FFF))
        delay = rng.choice((tpb * 20, 3600 * 2 * tpb, MAX_VLQ - 16 * tpb, rng.randrange(1, MAX_VLQ - 16 * tpb)))
        what = rng.choice(("time_signature", "tempo", "text", "control"))
        return f"hostile:after_music:{what}", mf.events_after_music(what, max(1, delay), tpb)
    if kind == "far_meter":
        data = mf.far_meter_change()
        if rng.random() < 0.5:  # the far change in its own conductor track of a type 1 file
            notes = mf._note_events([(i, 1, 60 + i) for i in range(rng.randint(1, 64))], 1)
            conductor = [(rng.choice((MAX_VLQ, MAX_VLQ // 2, 10**6)), mf._time_signature(rng.randint(1, 255), 2 ** rng.randint(0, 7)))]
            data = mf.midi_from_tracks([conductor, notes], 1)
        return "hostile:far_meter", data
    if kind == "stacked":
        size = rng.choice((6_000, 60_000, 600_000, 2 * 1024 * 1024 - 200))
        return "hostile:stacked", mf.stacked_note_ons(size)
    if kind == "wide_meter":
        n = rng.choice((16, 1000, 19_999))
        meter = rng.choice(((255, 1), (255, 128), (1, 128), (127, 2), (rng.randint(1, 255), 2 ** rng.randint(0, 7))))
        return "hostile:wide_meter", mf.wide_meter(n, *meter)
    tracks = []
    for i in range(rng.randint(1, 4)):  # a melody and low, slow parts, each with an odd name
        notes = [(b, 1, 72 + b % 5) for b in range(8)] if i == 0 else [(b, 4, 40 - i) for b in range(0, 8, 4)]
        named = [(0, mf._meta(rng.choice((0x01, 0x03, 0x05, 0x06)), _odd_name(rng))), (0, mf._meta(0x03, _odd_name(rng)))]
        tracks.append([*named, *mf._note_events(notes, 480, channel=i)])
    rng.shuffle(tracks)
    return "hostile:names", mf.midi_from_tracks(tracks)


def _factory():
    tests = str(REPO_ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import midi_factory

    return midi_factory


# --------------------------------------------------------------------------- running a case


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (the kernel's high-water mark), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The process's resident memory now, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class CaseResult:
    """How one case ended: 'ok' (accompanied) or 'refused' (InputError), with its costs."""

    outcome: str
    message: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    warnings: tuple[str, ...] = ()  # what the studio said about the file, when it accompanied it


def run_case(data: bytes, model: str = "rules", registry=None, want_png: bool = False, out_dir: Path | None = None) -> CaseResult:
    """Accompany `data` (no audio); returns how it ended. Any exception but `InputError` propagates."""
    from studio.core.errors import InputError
    from studio.serving.service import AccompanyRequest, accompany

    scratch = Path(tempfile.mkdtemp(prefix="fuzz-", dir=out_dir))
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result = accompany(AccompanyRequest(midi=data, model=model, want_wav=False, want_png=want_png, out_dir=scratch), registry)
        outcome, message, warnings = "ok", "", tuple(result.warnings)
    except InputError as exc:
        outcome, message, warnings = "refused", str(exc), ()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return CaseResult(outcome, message, time.perf_counter() - wall, time.process_time() - cpu, peak_rss_mb(), warnings)


# --------------------------------------------------------------------------- the long run


@dataclass
class Report:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    slow: list[dict] = field(default_factory=list)
    max_wall_s: float = 0.0
    slowest: dict = field(default_factory=dict)  # the case of `max_wall_s`: its number and file
    max_cpu_s: float = 0.0
    baseline_mb: float = 0.0  # peak after warm-up
    peak_mb: float = 0.0
    rss_start_mb: float = 0.0  # resident memory now, after warm-up and at the end
    rss_end_mb: float = 0.0
    seconds: float = 0.0


class _Watchdog:
    """Ends the run (exit 3) when one case runs past `limit_s` of wall time: a hang, reported with its case."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.case: int | None = None
        self.started = 0.0
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            case = self.case
            if case is not None and time.monotonic() - self.started > self.limit_s:
                print(f"HANG: case {case} ran over {self.limit_s:.0f} s (replay: --replay {case})", file=sys.stderr, flush=True)
                os._exit(3)

    def start(self, case: int) -> None:
        self.started, self.case = time.monotonic(), case


HOSTILE_EVERY = 5  # every 5th case of a run is a hostile file of issue 23 (`hostile_file`), mutated or not


def case_data(seed: int, case: int, hostile_every: int = HOSTILE_EVERY) -> tuple[str, bytes, list[Mutation]]:
    """The seed file's name (or the hostile class), the mutated bytes and the mutations of case
    `case` of run `seed`."""
    rng = random.Random(f"{seed}:{case}")
    if hostile_every and case % hostile_every == hostile_every - 1:
        name, data = hostile_file(rng)
        mutations = [(rng.choice(list(OPS)), rng.getrandbits(32), rng.getrandbits(32))] if rng.random() < 0.3 else []
        return name, mutate(data, mutations), mutations
    seeds = _seed_cache()
    index, mutations = random_case(rng)
    name, data = seeds[index]
    return name, mutate(data, mutations), mutations


def run(
    cases: int,
    seed: int = 0,
    gan_every: int = 20,
    png_every: int = 500,
    max_cpu_s: float = 2.0,
    max_mb: float = 500.0,
    hang_s: float = 60.0,
    save_dir: Path | None = None,
    progress: bool = True,
    other_model: str = "gan-chorale",
    hostile_every: int = HOSTILE_EVERY,
) -> Report:
    """Run `cases` cases; failures (other exceptions, over `max_cpu_s`, over `max_mb`) are collected.
    Every `gan_every`-th case goes to `other_model` (1: all of them), the others to `rules`; several
    models (comma-separated, or "all": every model with a card) take those cases in turn."""
    from studio.serving.registry import ModelRegistry

    registry = ModelRegistry()
    others = other_models(other_model, registry)
    tmp = Path(tempfile.mkdtemp(prefix="studio-fuzz-"))
    for model in ("rules", *others):  # warm-up: weights and imports are not the fuzzed input's cost
        run_case(seed_files()[0][1], model, registry, want_png=True, out_dir=tmp)
    report = Report(baseline_mb=peak_rss_mb(), rss_start_mb=rss_mb())
    watchdog = _Watchdog(hang_s)
    began = time.perf_counter()
    for case in range(cases):
        name, data, mutations = case_data(seed, case, hostile_every)
        if name.startswith("hostile:"):
            report.models[name.rsplit(":", 1)[0] if name.count(":") > 1 else name] += 1
        model = case_model(case, gan_every, others)
        want_png = bool(png_every) and case % png_every == png_every - 1
        watchdog.start(case)
        try:
            result = run_case(data, model, registry, want_png, tmp)
        except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
            result = None
            report.failures.append(
                {
                    "case": case,
                    "seed_file": name,
                    "mutations": mutations,
                    "model": model,
                    "error": f"{type(exc).__name__}: {exc}",
                    "where": traceback.format_exc(limit=-2),
                }
            )
            if save_dir:
                save_dir.mkdir(parents=True, exist_ok=True)
                (save_dir / f"case{case}.mid").write_bytes(data)
        watchdog.case = None
        report.cases += 1
        report.models[model] += 1
        if result is not None:
            report.outcomes[result.outcome] += 1
            if result.wall_s > report.max_wall_s:
                report.max_wall_s, report.slowest = result.wall_s, {"case": case, "file": name, "model": model}
            report.max_cpu_s = max(report.max_cpu_s, result.cpu_s)
            if result.cpu_s > max_cpu_s:
                report.slow.append(
                    {"case": case, "seed_file": name, "model": model, "cpu_s": round(result.cpu_s, 3), "wall_s": round(result.wall_s, 3)}
                )
        else:
            report.outcomes["failed"] += 1
        report.peak_mb = peak_rss_mb()
        if progress and (case + 1) % 1000 == 0:
            print(
                f"{case + 1:,} cases, {time.perf_counter() - began:.0f} s: {dict(report.outcomes)}, "
                f"max cpu {report.max_cpu_s:.2f} s, memory {rss_mb():.0f} MB (peak {report.peak_mb:.0f} MB)",
                flush=True,
            )
    report.seconds = time.perf_counter() - began
    report.rss_end_mb = rss_mb()
    shutil.rmtree(tmp, ignore_errors=True)
    return report


def other_models(names: str, registry: Any) -> tuple[str, ...]:
    """The models named by `--other-model`: one name, several separated by commas, or "all" (every card)."""
    if names.strip() == "all":
        return tuple(registry.names())
    return tuple(n.strip() for n in names.split(",") if n.strip())


def case_model(case: int, every: int, others: Sequence[str]) -> str:
    """The model of case number `case`: every `every`-th case goes to `others` in turn, the rest to rules."""
    if not (every and others) or case % every != every - 1:
        return "rules"
    return others[(case // every) % len(others)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="how many cases (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed; case N of a seed is always the same file")
    parser.add_argument("--gan-every", type=int, default=20, help="every Nth case goes to --other-model (0: never, 1: all)")
    parser.add_argument(
        "--other-model",
        default="gan-chorale",
        help="the learned model(s) fuzzed beside rules: a name (default gan-chorale), names separated by commas, or 'all'",
    )
    parser.add_argument("--png-every", type=int, default=500, help="every Nth case also draws the piano roll (0: never)")
    parser.add_argument("--max-cpu-s", type=float, default=2.0, help="CPU seconds a case may take")
    parser.add_argument("--max-mb", type=float, default=500.0, help="peak memory growth allowed over the warm process, MB")
    parser.add_argument("--save-dir", type=Path, help="write the files of failing cases here")
    parser.add_argument("--hostile-every", type=int, default=HOSTILE_EVERY, help="every Nth case is a hostile file of issue 23 (0: never)")
    parser.add_argument("--replay", type=int, help="run only this case, with its traceback")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.replay is not None:
        name, data, mutations = case_data(args.seed, args.replay, args.hostile_every)
        from studio.serving.registry import ModelRegistry

        model = case_model(args.replay, args.gan_every, other_models(args.other_model, ModelRegistry()))
        print(f"case {args.replay}: {name} with {mutations} ({len(data):,} bytes), model {model}")
        print(run_case(data, model))
        return 0
    report = run(
        args.cases,
        args.seed,
        args.gan_every,
        args.png_every,
        args.max_cpu_s,
        args.max_mb,
        save_dir=args.save_dir,
        other_model=args.other_model,
        hostile_every=args.hostile_every,
    )
    growth = report.peak_mb - report.baseline_mb
    summary = {
        "cases": report.cases,
        "seed": args.seed,
        "seconds": round(report.seconds, 1),
        "outcomes": dict(report.outcomes),
        "models": dict(report.models),
        "failures": report.failures[:20],
        "n_failures": len(report.failures),
        "over_cpu_limit": report.slow[:20],
        "n_over_cpu_limit": len(report.slow),
        "max_case_wall_s": round(report.max_wall_s, 3),
        "slowest_case": report.slowest,
        "max_case_cpu_s": round(report.max_cpu_s, 3),
        "rss_after_warmup_mb": round(report.baseline_mb, 1),
        "peak_rss_mb": round(report.peak_mb, 1),
        "peak_growth_mb": round(growth, 1),
        "rss_start_mb": round(report.rss_start_mb, 1),
        "rss_end_mb": round(report.rss_end_mb, 1),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{report.cases:,} cases in {report.seconds:.0f} s (seed {args.seed}): {dict(report.outcomes)}; models {dict(report.models)}")
        print(
            f"slowest case: {report.max_wall_s:.2f} s wall ({report.slowest}), {report.max_cpu_s:.2f} s CPU; "
            f"peak memory {report.peak_mb:.0f} MB ({growth:+.0f} MB over the warm process); "
            f"resident {report.rss_start_mb:.0f} MB after warm-up, {report.rss_end_mb:.0f} MB at the end"
        )
        for failure in report.failures[:20]:
            print(f"FAILED case {failure['case']} ({failure['seed_file']}, {failure['model']}): {failure['error']}")
        for slow in report.slow[:20]:
            print(f"OVER {args.max_cpu_s:g} s CPU: case {slow['case']} ({slow['seed_file']}, {slow['model']}): {slow['cpu_s']} s")
    ok = not report.failures and not report.slow and growth <= args.max_mb
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

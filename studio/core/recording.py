"""A melody played on the page's keyboard: validate the browser's JSON, snap it to the grid, write MIDI.

The page's JavaScript records what the person played (mouse, computer keys, Web MIDI) and sends

    {"notes": [{"pitch": 60, "start": 0.0, "end": 0.45, "velocity": 90}, ...],
     "tempo": 100, "meter": "3/4", "aligned": true}

with times in seconds. `aligned: true` means Record with a one-bar count-in was used: t = 0 is the
first downbeat after the count-in and `tempo` is the metronome's. `aligned: false` is free play
(no metronome): t = 0 is the first note's onset and `tempo` is only the grid to snap to.

Rules (all in `quantize` unless said otherwise):

* The grid is a 16th note (`RecordingLimits.steps_per_beat` = 4 steps per quarter) at the recording
  tempo; onsets and ends snap to the nearest step (halves round up).
* Aligned: a note starting less than one 16th before 0 (an early first note) snaps to 0; a note
  starting earlier than that was played during the count-in and is left out (`parse_recording`
  drops it, with a warning). A late first note keeps its leading rest.
* Free play: the grid is anchored at the first onset, so the first note starts at tick 0.
* A held note (``"end"`` null or missing: the key was still down when the person pressed Use)
  lasts until the last event of the recording (any onset or release) plus one beat
  (`RecordingLimits.held_beats`), and always at least one beat after its own onset
  (`parse_recording` fills in its end).
* ``end <= start`` is a very short note, not an error; every note lasts at least one 16th.
* Chords (several pitches at one onset) are kept. Two notes of the same pitch that overlap after
  snapping: the earlier one is cut at the later one's start; two at the same onset become one (the
  longer, the louder).
* Velocity: rounded and clamped to 1..127; 90 when missing.

Everything a person (or a broken page) can get wrong raises one `InputError` with a one-line message.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from studio.core import midi
from studio.core.errors import InputError
from studio.core.score import Note, Score, TempoChange, TimeSignature, Track

__all__ = [
    "DEFAULT_VELOCITY",
    "MELODY_TITLE",
    "Recording",
    "RecordingLimits",
    "parse_recording",
    "quantize",
    "recording_to_midi",
]

DEFAULT_VELOCITY = 90
MELODY_TITLE = "My melody"

RecordedNote = tuple[int, float, float, int]  # (pitch, start_s, end_s, velocity)

_METER = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")


@dataclass(frozen=True)
class RecordingLimits:
    """What a keyboard recording may hold, and the grid it is snapped to."""

    max_notes: int = 2000
    min_tempo: float = 30.0  # quarter notes per minute
    max_tempo: float = 300.0
    max_seconds: float = 600.0  # from t = 0 (aligned) or the first onset (free play) to the last release
    max_text_chars: int = 1_000_000  # the JSON text itself, checked before parsing it
    # Meters: any n/d with d in `denominators` and 1 <= n <= `max_numerator`; `common_meters` is the page's menu.
    common_meters: tuple[str, ...] = ("2/4", "3/4", "4/4", "6/8", "9/8", "12/8", "5/4", "7/8")
    denominators: tuple[int, ...] = (2, 4, 8, 16)
    max_numerator: int = 32
    steps_per_beat: int = 4  # grid: 16th notes
    ticks_per_beat: int = 480
    held_beats: float = 1.0  # a held note lasts until the last event + this many beats

    def __post_init__(self) -> None:
        if self.steps_per_beat < 1 or self.ticks_per_beat % self.steps_per_beat:
            raise ValueError("ticks_per_beat must be a positive multiple of steps_per_beat")


@dataclass
class Recording:
    """A validated recording: notes as (pitch, start_s, end_s, velocity), held notes already given an end."""

    notes: list[RecordedNote]
    tempo_qpm: float
    numerator: int
    denominator: int
    aligned: bool
    warnings: list[str] = field(default_factory=list)  # e.g. notes left out as count-in slips


# --------------------------------------------------------------------------- parsing


def _show(value: Any) -> str:
    """A short, one-line rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    """A JSON number that is finite as a float (an integer of 400 digits is not: float() overflows)."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _parse_meter(value: Any, limits: RecordingLimits) -> tuple[int, int]:
    """'6/8' -> (6, 8), within the limits."""
    hint = f"use n/d with d one of {', '.join(map(str, limits.denominators))} and n from 1 to {limits.max_numerator}, e.g. 3/4"
    if value is None:
        return 4, 4
    match = _METER.match(value) if isinstance(value, str) else None
    if not match:
        raise InputError(f"the meter {_show(value)} is not a time signature: {hint}")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator not in limits.denominators or not 1 <= numerator <= limits.max_numerator:
        raise InputError(f"the meter {numerator}/{denominator} is not supported: {hint}")
    return numerator, denominator


def _parse_tempo(value: Any, limits: RecordingLimits) -> float:
    if value is None:
        return 120.0
    if not _is_finite(value):
        raise InputError(f"the tempo {_show(value)} is not a number: set the tempo (beats per minute) and record again")
    tempo = float(value)
    if not limits.min_tempo <= tempo <= limits.max_tempo:
        raise InputError(
            f"the tempo {tempo:g} is outside {limits.min_tempo:g}-{limits.max_tempo:g} beats per minute: choose a tempo in that range"
        )
    return tempo


def _time(note: dict, key: str, index: int) -> float:
    value = note.get(key)
    if not _is_finite(value):
        what = "missing" if value is None else f"{_show(value)}, not a finite number"
        raise InputError(f"note {index}: its {key} time is {what}: play the melody again")
    return float(value)


def _parse_note(raw: Any, index: int, aligned: bool) -> tuple[int, float, float | None, int]:
    """One note of the JSON: (pitch, start, end or None when held, velocity); raises on bad values."""
    if not isinstance(raw, dict):
        raise InputError(f"note {index} is {_show(raw)}, not an object with pitch, start and end: play the melody again")
    pitch = raw.get("pitch")
    if pitch is None:
        raise InputError(f"note {index} has no pitch: play the melody again")
    if not (_is_finite(pitch) and float(pitch).is_integer() and 0 <= pitch <= 127):
        raise InputError(f"note {index}: pitch {_show(pitch)} is not a MIDI pitch (a whole number 0-127): play the melody again")
    start = _time(raw, "start", index)
    end = None if raw.get("end") is None else _time(raw, "end", index)
    if not aligned and (start < 0 or (end is not None and end < 0)):
        negative = start if start < 0 else end
        raise InputError(f"note {index} has a negative time ({negative:g} s): in free play times start at the first note, 0 s")
    velocity = raw.get("velocity")
    if velocity is None:
        velocity = DEFAULT_VELOCITY
    elif not _is_finite(velocity):
        raise InputError(f"note {index}: velocity {_show(velocity)} is not a number (1-127): play the melody again")
    return int(pitch), start, end, max(1, min(127, math.floor(velocity + 0.5)))


def parse_recording(text: str, limits: RecordingLimits | None = None) -> Recording:
    """Validate the page's JSON text and return the `Recording` (count-in slips dropped, held notes ended).

    Missing fields take defaults: tempo 120, meter 4/4, aligned false, velocity 90.
    Raises `InputError` with a one-line message for anything that cannot be used.
    """
    limits = limits or RecordingLimits()
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise InputError(f"the recording must be JSON text, not {type(text).__name__}: record the melody again")
    if len(text) > limits.max_text_chars:
        raise InputError(f"the recording is {len(text):,} characters, over the {limits.max_text_chars:,} limit: record a shorter melody")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InputError("the recording is not valid JSON: record the melody again on the keyboard") from None
    if not isinstance(data, dict):
        raise InputError("the recording must be a JSON object with notes, tempo and meter: record the melody again")

    aligned = data.get("aligned", False)
    if not isinstance(aligned, bool):
        raise InputError(f"'aligned' must be true or false, not {_show(aligned)}: record the melody again")
    tempo = _parse_tempo(data.get("tempo"), limits)
    numerator, denominator = _parse_meter(data.get("meter"), limits)

    raw_notes = data.get("notes")
    if raw_notes is not None and not isinstance(raw_notes, list):
        raise InputError("the recording's notes must be a list: record the melody again on the keyboard")
    if not raw_notes:
        raise InputError("nothing was played yet: play some notes on the keyboard first")
    if len(raw_notes) > limits.max_notes:
        raise InputError(f"the recording has {len(raw_notes):,} notes, over the {limits.max_notes:,}-note limit: record a shorter melody")
    parsed = [_parse_note(raw, i, aligned) for i, raw in enumerate(raw_notes, start=1)]

    warnings: list[str] = []
    beat_s = 60.0 / tempo
    if aligned:
        earliest = -beat_s / limits.steps_per_beat  # within a 16th before the downbeat: an early first note
        kept = [n for n in parsed if n[1] >= earliest]
        slips = len(parsed) - len(kept)
        if not kept:
            raise InputError("every note was played during the count-in: start playing on the first beat after it")
        if slips:
            warnings.append(f"{slips} note{'s' if slips > 1 else ''} played during the count-in left out")
        parsed = kept

    # A held note lasts until the last event (onset or release) plus one beat.
    last_event = max(max(start, end if end is not None else start) for _, start, end, _ in parsed)
    held_s = limits.held_beats * beat_s
    notes: list[RecordedNote] = []
    for pitch, start, end, velocity in parsed:
        if end is None:
            end = max(last_event, start) + held_s
        notes.append((pitch, start, end, velocity))

    origin = 0.0 if aligned else min(n[1] for n in notes)
    length = max(max(n[1], n[2]) for n in notes) - origin
    if length > limits.max_seconds:
        raise InputError(f"the recording lasts {length:.1f} s, over the {limits.max_seconds:g} s limit: record a shorter melody")
    return Recording(notes, tempo, numerator, denominator, aligned, warnings)


# --------------------------------------------------------------------------- quantizing


def _snap(seconds: float, step_s: float) -> int:
    """Nearest grid step (halves round up, also below zero)."""
    return math.floor(seconds / step_s + 0.5)


def quantize(recording: Recording, limits: RecordingLimits | None = None) -> Score:
    """The recording snapped to 16ths: a one-track Score ("Melody", piano, channel 0) with its tempo and meter."""
    limits = limits or RecordingLimits()
    step_s = 60.0 / recording.tempo_qpm / limits.steps_per_beat
    step_ticks = limits.ticks_per_beat // limits.steps_per_beat
    origin = 0.0 if recording.aligned else min((n[1] for n in recording.notes), default=0.0)

    # (pitch, on_step) -> (off_step, velocity): a repeated pitch at one onset becomes one note.
    snapped: dict[tuple[int, int], tuple[int, int]] = {}
    for pitch, start, end, velocity in recording.notes:
        on = max(0, _snap(start - origin, step_s))
        off = max(on + 1, _snap(end - origin, step_s))
        if (pitch, on) in snapped:
            old_off, old_velocity = snapped[(pitch, on)]
            off, velocity = max(off, old_off), max(velocity, old_velocity)
        snapped[(pitch, on)] = (off, max(1, min(127, velocity)))

    notes: list[Note] = []
    ordered = sorted(snapped.items())  # by pitch, then onset
    for i, ((pitch, on), (off, velocity)) in enumerate(ordered):
        if i + 1 < len(ordered) and ordered[i + 1][0][0] == pitch:
            off = min(off, ordered[i + 1][0][1])  # cut at the next onset of the same pitch
        notes.append(Note(on * step_ticks, off * step_ticks, pitch, velocity))
    notes.sort(key=lambda n: (n.start, n.pitch))

    track = Track("Melody", program=0, is_drum=False, channel=0, notes=notes)
    return Score(
        limits.ticks_per_beat,
        [track],
        [TempoChange(0, round(60_000_000 / recording.tempo_qpm))],
        [TimeSignature(0, recording.numerator, recording.denominator)],
    )


def recording_to_midi(text: str, limits: RecordingLimits | None = None) -> bytes:
    """The page's JSON text -> a Standard MIDI File of the quantized melody (title "My melody")."""
    limits = limits or RecordingLimits()
    return midi.write_midi(quantize(parse_recording(text, limits), limits), title=MELODY_TITLE)

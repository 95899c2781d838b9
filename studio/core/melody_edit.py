"""A melody edited in the page's live roll, back into a score the studio can accompany.

The page's roll (`assets/ui/roll.js`, fed by `studio.audio.roll_view`) sends the melody as

    {"notes": [[start_s, end_s, pitch, velocity], ...]}

with times in seconds on the take's own clock. `edited_melody` puts them back on the take's tempo
map, each time at its nearest tick: a note the person did not touch comes back exactly where it was
(the roll was given its times to the microsecond, and a tick lasts about a millisecond), and a note
they added, moved or lengthened lands on the 16th grid where the roll snapped it. The result is
the melody alone, with the take's ticks per beat, tempo map and meter map.

Everything a person (or a broken page) can get wrong raises one `InputError` with a one-line message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from studio.core.errors import InputError
from studio.core.score import Note, Score, Track

__all__ = ["EditLimits", "edited_melody", "nearest_tick", "parse_edited_notes"]

EditedNote = tuple[float, float, int, int]  # (start_s, end_s, pitch, velocity)


@dataclass(frozen=True)
class EditLimits:
    """What an edited melody may hold."""

    max_notes: int = 20_000  # as `studio.core.config.Limits`
    max_seconds: float = 600.0
    max_text_chars: int = 2_000_000  # the JSON text itself, checked before parsing it


def _number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer of hundreds of digits
        return False


def _note(raw: Any, index: int, limits: EditLimits) -> EditedNote:
    """One [start_s, end_s, pitch, velocity] row, checked."""
    if not isinstance(raw, list) or len(raw) != 4 or not all(_number(v) for v in raw):
        raise InputError(f"note {index} is not [start, end, pitch, velocity] in numbers: edit the melody again")
    start, end, pitch, velocity = raw
    if not (float(pitch).is_integer() and 0 <= pitch <= 127):
        raise InputError(f"note {index}: pitch {pitch!r} is not a MIDI pitch (a whole number 0-127)")
    if start < 0 or end > limits.max_seconds:
        raise InputError(f"note {index} lies outside 0-{limits.max_seconds:g} s: keep the melody within the take")
    if end <= start:
        raise InputError(f"note {index} ends before it starts: lengthen it in the roll")
    return float(start), float(end), int(pitch), max(1, min(127, round(velocity)))


def parse_edited_notes(text: str, limits: EditLimits | None = None) -> list[EditedNote]:
    """The page's JSON text -> [(start_s, end_s, pitch, velocity), ...]; `InputError` when it cannot be used."""
    limits = limits or EditLimits()
    if not isinstance(text, str):
        raise InputError("the edited melody must be JSON text: edit the melody in the roll again")
    if len(text) > limits.max_text_chars:
        raise InputError(f"the edited melody is {len(text):,} characters, over the {limits.max_text_chars:,} limit")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InputError("the edited melody is not valid JSON: show a take and edit its melody in the roll") from None
    notes = data.get("notes") if isinstance(data, dict) else None
    if not isinstance(notes, list):
        raise InputError("the edited melody has no list of notes: show a take and edit its melody in the roll")
    if not notes:
        raise InputError("the edited melody has no notes: add some in the roll first")
    if len(notes) > limits.max_notes:
        raise InputError(f"the edited melody has {len(notes):,} notes, over the {limits.max_notes:,}-note limit")
    return [_note(raw, i, limits) for i, raw in enumerate(notes, start=1)]


def nearest_tick(score: Score, seconds: float) -> int:
    """The tick nearest to `seconds` on the score's tempo map (`Score.seconds_to_tick` rounds down,
    which a time computed from a tick can fall a hair short of)."""
    elapsed = 0.0
    for i, tempo in enumerate(score.tempos):
        per_tick = tempo.microseconds_per_beat / 1e6 / score.ticks_per_beat
        nxt = score.tempos[i + 1].tick if i + 1 < len(score.tempos) else None
        span = (nxt - tempo.tick) * per_tick if nxt is not None else math.inf
        if seconds < elapsed + span:
            return tempo.tick + round((seconds - elapsed) / per_tick)
        elapsed += span
    return score.tempos[-1].tick  # unreachable: the last tempo spans to infinity


def edited_melody(take: Score, text: str, melody_track: int = 0, limits: EditLimits | None = None) -> Score:
    """The melody as edited in the roll, alone, on `take`'s tempo and meter maps.

    Parameters
    ----------
    take : Score
        The take whose melody was edited (its tempo map turns seconds back into ticks).
    text : str
        The page's JSON (see the module's docstring).
    melody_track : int, default: 0
        The take's melody track: its name and instrument are kept.
    """
    notes = []
    for start_s, end_s, pitch, velocity in parse_edited_notes(text, limits):
        start = nearest_tick(take, start_s)
        notes.append(Note(start, max(start + 1, nearest_tick(take, end_s)), pitch, velocity))
    notes.sort(key=lambda n: (n.start, n.pitch))
    source = take.tracks[melody_track] if 0 <= melody_track < len(take.tracks) else Track("Melody")
    melody = Track(source.name or "Melody", source.program, False, 0, notes)
    return Score(take.ticks_per_beat, [melody], list(take.tempos), list(take.time_signatures))

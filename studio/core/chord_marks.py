"""A take's chords in ticks: the ones the studio heard in it and the ones the user gave, as the take
carries them (its MIDI's marker events, the page's chord lane) and back as text to edit.

    ChordSpans on the grid (studio.core.chords) -> chord_marks -> ChordMark (ticks, name spelt for the key)
    ChordMarks -> chord_markers -> Score.markers ("chord: G/B", "analysed: Am") -> the take's .mid
    the take's .mid -> Score.markers -> marks_from_markers -> ChordMarks -> the chord lane, progression_text
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from studio.core.chords import ChordSpan, ChordSymbol, parse_chord
from studio.core.errors import InputError
from studio.core.roll import Grid
from studio.core.score import Marker
from studio.core.theory import Key

__all__ = [
    "ANALYSED_PREFIX",
    "GIVEN_PREFIX",
    "ChordMark",
    "chord_markers",
    "chord_marks",
    "marks_from_markers",
    "moved_chord",
    "moved_markers",
    "moved_progression",
    "progression_text",
]

GIVEN_PREFIX = "chord: "  # a marker of a chord the user gave (followed by the accompanist)
ANALYSED_PREFIX = "analysed: "  # a marker of a chord the studio's analysis heard in the take


@dataclass(frozen=True)
class ChordMark:
    """A chord of a take from tick `start` to `end`: its `name` ('G/B') and whether the user `given` it."""

    start: int
    end: int
    name: str
    given: bool


def chord_marks(spans: Sequence[ChordSpan], grid: Grid, key: Key | None, given: bool) -> list[ChordMark]:
    """`spans` (steps on `grid`) as marks in ticks, names spelt for `key`; spans without a chord are left out."""
    return [ChordMark(grid.step_to_tick(s.start), grid.step_to_tick(s.end), s.chord.name(key), given) for s in spans if s.chord is not None]


def chord_markers(marks: Sequence[ChordMark]) -> list[Marker]:
    """The marks as MIDI markers at their starts, sorted by tick (given chords before analysed ones at the same tick)."""
    ordered = sorted(marks, key=lambda m: (m.start, not m.given))
    return [Marker(m.start, (GIVEN_PREFIX if m.given else ANALYSED_PREFIX) + m.name) for m in ordered]


def marks_from_markers(markers: Sequence[Marker], end_tick: int) -> list[ChordMark]:
    """The chord marks among a file's `markers` (other markers are ignored): each lasts until the next
    of its kind, the last until `end_tick`."""
    marks: list[ChordMark] = []
    for given, prefix in ((True, GIVEN_PREFIX), (False, ANALYSED_PREFIX)):
        found = [(m.tick, m.text[len(prefix) :].strip()) for m in markers if m.text.startswith(prefix) and m.text[len(prefix) :].strip()]
        if not found:
            continue
        ends = [tick for tick, _ in found[1:]] + [max(end_tick, found[-1][0])]
        marks += [ChordMark(tick, end, name, given) for (tick, name), end in zip(found, ends, strict=True)]
    return sorted(marks, key=lambda m: (m.start, not m.given))


def progression_text(marks: Sequence[ChordMark], bar_ticks: Sequence[int], end_tick: int) -> str:
    """The marks as a progression to type over ("C G | Am F | ..."), from the first full bar (a first bar
    shorter than the next is a pickup, which typed chords leave free): in each bar, the chord
    sounding at its start and every chord starting inside it; a bar where nothing sounds repeats the
    chord before it. '' without marks."""
    marks = sorted(marks, key=lambda m: m.start)
    if not marks:
        return ""
    starts = sorted(set(bar_ticks)) or [0]
    edges = [*starts, max(end_tick, starts[-1] + 1)]
    bars = list(itertools.pairwise(edges))
    if len(bars) >= 2 and bars[0][1] - bars[0][0] < bars[1][1] - bars[1][0]:
        bars = bars[1:]  # the pickup
    out: list[str] = []
    previous = marks[0].name
    mark_starts = [m.start for m in marks]
    ended = 0  # marks before this one (in start order) have ended by the bar's start: bars only move on
    for a, b in bars:
        begun = bisect.bisect_right(mark_starts, a)
        while ended < begun and marks[ended].end <= a:
            ended += 1
        names = ([marks[ended].name] if ended < begun else []) + [m.name for m in marks[begun : bisect.bisect_left(mark_starts, b)]]
        names = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]] or [previous]
        previous = names[-1]
        out.append(" ".join(names))
    return " | ".join(out)


def moved_chord(name: str, semitones: int) -> str:
    """A chord's name moved by `semitones` ('G/B' up 2 -> 'A/C#'); a name that is not a chord symbol stays as it is."""
    try:
        chord = parse_chord(name)
    except InputError:
        return name
    bass = None if chord.bass is None else (chord.bass + semitones) % 12
    return ChordSymbol((chord.root + semitones) % 12, chord.quality, bass).name()


def moved_progression(text: str | None, semitones: int) -> str | None:
    """A typed progression ("C G/B | Am %") with every chord moved by `semitones` (bar lines and '%' stay)."""
    if not text or not semitones:
        return text
    return " ".join(
        token if token in ("|", "%") else "|".join(moved_chord(part, semitones) for part in token.split("|")) for token in text.split()
    )


def moved_markers(markers: Sequence[Marker], semitones: int) -> list[Marker]:
    """A file's markers with the chords among them moved by `semitones` (other markers as they are)."""
    out = []
    for marker in markers:
        prefix = next((p for p in (GIVEN_PREFIX, ANALYSED_PREFIX) if marker.text.startswith(p)), None)
        text = marker.text if prefix is None else prefix + moved_chord(marker.text[len(prefix) :].strip(), semitones)
        out.append(Marker(marker.tick, text))
    return out

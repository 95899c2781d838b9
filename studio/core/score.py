"""The studio's in-memory song: notes in MIDI ticks, with the tempo map and the meter map.

A `Score` is what `studio.core.midi` reads and writes. Times are integer MIDI ticks at the file's own
resolution (`ticks_per_beat`), so a melody written back keeps every note exactly where it was.
The grid used by models lives in `studio.core.roll`; this module knows nothing about it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MICROSECONDS_PER_BEAT",
    "Marker",
    "Note",
    "Score",
    "TempoChange",
    "TimeSignature",
    "Track",
]

DEFAULT_MICROSECONDS_PER_BEAT = 500_000  # 120 quarter notes per minute, the MIDI default


@dataclass(frozen=True, slots=True)
class Note:
    """One note: `start` and `end` in ticks (end > start), MIDI `pitch` 0-127, `velocity` 1-127."""

    start: int
    end: int
    pitch: int
    velocity: int = 90


@dataclass(frozen=True, slots=True)
class TempoChange:
    """A tempo event: from `tick` on, one quarter note lasts `microseconds_per_beat`."""

    tick: int
    microseconds_per_beat: int

    @property
    def qpm(self) -> float:
        """Quarter notes per minute."""
        return 60_000_000 / self.microseconds_per_beat


@dataclass(frozen=True, slots=True)
class TimeSignature:
    """A meter event: from `tick` on, bars of `numerator`/`denominator` (e.g. 6/8)."""

    tick: int
    numerator: int
    denominator: int

    def bar_ticks(self, ticks_per_beat: int) -> int:
        """Length of one bar of this meter in ticks (a beat is a quarter note)."""
        return max(1, round(self.numerator * ticks_per_beat * 4 / self.denominator))


@dataclass(frozen=True, slots=True)
class Marker:
    """A marker meta event: a word on the time line at `tick` (a take's chords, `studio.core.chord_marks`)."""

    tick: int
    text: str


@dataclass
class Track:
    """A named instrument part: General MIDI `program` 0-127, drums when `is_drum` (channel 10)."""

    name: str
    program: int = 0
    is_drum: bool = False
    channel: int = 0
    notes: list[Note] = field(default_factory=list)

    @property
    def end(self) -> int:
        """Tick at which the last note of this track ends (0 when empty)."""
        return max((n.end for n in self.notes), default=0)


@dataclass
class Score:
    """A song: tracks of notes plus the tempo map and meter map, all in ticks.

    `tempos` and `time_signatures` are sorted by tick and always start at tick 0 (`studio.core.midi`
    fills in the MIDI defaults, 120 qpm and 4/4, when a file has none). `markers` are sorted by tick.
    """

    ticks_per_beat: int
    tracks: list[Track] = field(default_factory=list)
    tempos: list[TempoChange] = field(default_factory=lambda: [TempoChange(0, DEFAULT_MICROSECONDS_PER_BEAT)])
    time_signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature(0, 4, 4)])
    markers: list[Marker] = field(default_factory=list)

    @property
    def end_tick(self) -> int:
        """Tick at which the last note of any track ends."""
        return max((t.end for t in self.tracks), default=0)

    @property
    def n_notes(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    def tick_to_seconds(self, tick: int) -> float:
        """Wall-clock time of `tick`, following the tempo map."""
        seconds = 0.0
        for i, tempo in enumerate(self.tempos):
            nxt = self.tempos[i + 1].tick if i + 1 < len(self.tempos) else None
            if nxt is not None and tick > nxt:
                seconds += (nxt - tempo.tick) * tempo.microseconds_per_beat
            else:
                seconds += (tick - tempo.tick) * tempo.microseconds_per_beat
                break
        return seconds / 1e6 / self.ticks_per_beat

    def seconds_to_tick(self, seconds: float) -> int:
        """The tick sounding at `seconds` (inverse of `tick_to_seconds`)."""
        elapsed = 0.0
        for i, tempo in enumerate(self.tempos):
            per_tick = tempo.microseconds_per_beat / 1e6 / self.ticks_per_beat
            nxt = self.tempos[i + 1].tick if i + 1 < len(self.tempos) else None
            span = (nxt - tempo.tick) * per_tick if nxt is not None else float("inf")
            if seconds <= elapsed + span:
                return tempo.tick + int((seconds - elapsed) / per_tick)
            elapsed += span
        return 0  # unreachable: the last tempo spans to infinity

    @property
    def duration_seconds(self) -> float:
        """Length of the music in seconds, to the end of its last note."""
        return self.tick_to_seconds(self.end_tick)

    def time_signature_at(self, tick: int) -> TimeSignature:
        """The meter in force at `tick`."""
        ticks = [ts.tick for ts in self.time_signatures]
        return self.time_signatures[max(0, bisect.bisect_right(ticks, tick) - 1)]

    def bar_starts(self, until: int | None = None) -> list[int]:
        """Tick of every bar line from 0 to `until` (default: the end of the music), from the meter map.

        A meter change that falls inside a bar starts a new bar there (as notation programs do).
        """
        end = self.end_tick if until is None else until
        starts: list[int] = []
        sigs = self.time_signatures
        for i, sig in enumerate(sigs):
            stop = sigs[i + 1].tick if i + 1 < len(sigs) else max(end, sig.tick + 1)
            step = sig.bar_ticks(self.ticks_per_beat)
            tick = sig.tick
            while tick < stop and tick < max(end, 1):
                starts.append(tick)
                tick += step
        return starts or [0]

"""Where the bar lines are: detect a pickup (anacrusis) that a MIDI file does not mark.

Many files (music21's export among them) start a tune's pickup at tick 0 under a plain 3/4 or 6/8
signature, so the file's bar lines fall in the wrong places. We test each shift of the bar lines,
in eighth notes, against a metrical template (downbeats strongest, then the half bar and beats,
then eighths) weighted by note length, as in Temperley's metrical preference rules: long notes
and many onsets fall on strong beats. The file's own bar lines win unless a shift fits clearly better.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.score import Note, Score

__all__ = ["MeterConfig", "estimate_pickup"]


@dataclass(frozen=True)
class MeterConfig:
    """Weights of the metrical template and how much better a shift must fit to be believed."""

    downbeat: float = 4.0
    half_bar: float = 2.0
    beat: float = 1.5
    eighth: float = 0.5
    min_gain: float = 1.15  # a shifted bar line must explain the notes this much better than the file's


def _position_weight(offset: int, bar: int, beat: int, eighth: int, config: MeterConfig) -> float:
    if offset == 0:
        return config.downbeat
    if bar % 2 == 0 and (bar // beat) % 2 == 0 and offset == bar // 2:
        return config.half_bar
    if beat and offset % beat == 0:
        return config.beat
    if eighth and offset % eighth == 0:
        return config.eighth
    return 0.0


def _fit(notes: list[Note], shift: int, bar: int, beat: int, eighth: int, config: MeterConfig) -> float:
    total = 0.0
    for note in notes:
        salience = 0.5 + min(note.end - note.start, bar) / beat
        total += salience * _position_weight((note.start - shift) % bar, bar, beat, eighth, config)
    return total


def estimate_pickup(melody: list[Note], score: Score, config: MeterConfig | None = None) -> int:
    """Ticks of music before the first bar line (0 when the melody starts on a downbeat).

    Only a file with one meter throughout is examined: a meter map with several signatures already
    says where its bars are (a pickup written as its own short bar, for instance).
    """
    config = config or MeterConfig()
    if len(score.time_signatures) != 1 or len(melody) < 4:
        return 0
    sig = score.time_signatures[0]
    tpb = score.ticks_per_beat
    bar = sig.bar_ticks(tpb)
    eighth = max(1, tpb // 2)
    unit_beat = max(1, round(tpb * 4 / sig.denominator))
    compound = sig.denominator >= 8 and sig.numerator % 3 == 0 and sig.numerator > 3
    beat = 3 * unit_beat if compound else unit_beat
    if bar % eighth:
        return 0
    # Judge by the opening phrase: later notes are a repeat of the same evidence and cost time.
    window = [n for n in melody if n.start < melody[0].start + 16 * bar]
    fits = {shift: _fit(window, shift, bar, beat, eighth, config) for shift in range(0, bar, eighth)}
    best = max(fits, key=lambda s: (fits[s], -s))
    if best == 0 or fits[best] < config.min_gain * fits[0]:
        return 0
    return best

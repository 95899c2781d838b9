"""A take's notes as data for the page's live piano roll (drawn in the browser by `assets/ui/roll.js`).

The PNG (`studio.audio.plot`) is a picture; this is the same music as plain JSON-ready data, so the
browser can draw it with a playhead that follows the audio, zoom and scroll it, and edit the melody
on the 16th-note grid. Times are in seconds (the audio player's clock), following the tempo map;
colours and legend words are the PNG's (`studio.audio.legend`). The result of `roll_view`:

    {"title": str,
     "tracks": [{"name", "label", "colour", "drums": bool, "melody": bool,
                 "notes": [[start_s, end_s, pitch, velocity], ...]}, ...],
     "melody": index of the melody track in "tracks" (the one the page edits), or None,
     "bars": [start_s of every bar], "bar_numbers": [1, 2, ...] (a pickup is bar 0),
     "beats": [start_s of every beat], "end_s": where the last bar ends,
     "given_until_s": where the student's music ends and a model's added bars begin, or None,
     "chords": [{"start_s", "end_s", "name", "given": bool}, ...] the take's chords (its MIDI's
               markers, `studio.core.chord_marks`): the ones the user gave and the ones heard in it,
     "pitch_range": [lowest, highest] pitch shown (drums aside),
     "grid": {"ticks_per_beat", "ticks_per_step", "tempo": [[tick, start_s, seconds_per_tick], ...]}}

"grid" lets the browser snap an edit to the 16th grid (a step is `ticks_per_step` ticks from tick 0)
and turn seconds into ticks and back under any tempo map; an edited melody comes back as
`studio.core.melody_edit` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio.audio.legend import legend_label, track_colours
from studio.core.chord_marks import marks_from_markers
from studio.core.roll import STEPS_PER_BEAT, Bar
from studio.core.score import Score

__all__ = ["RollViewConfig", "roll_view"]


@dataclass(frozen=True)
class RollViewConfig:
    """What the live roll is given besides the notes."""

    pitch_margin: int = 2  # empty semitones shown below the lowest and above the highest note
    empty_pitch_range: tuple[int, int] = (60, 72)  # the pitch axis of a take with no melodic notes
    decimals: int = 6  # seconds to the microsecond: a tick lasts about a millisecond, so ticks come back exact


def _bar_numbers(starts: Sequence[int], end: int) -> list[int]:
    """1 for the first full bar; a first bar shorter than the next is a pickup, bar 0 (as in the PNG)."""
    pickup = len(starts) >= 2 and starts[0] == 0 and starts[1] - starts[0] < (starts[2] if len(starts) > 2 else end) - starts[1]
    first = 0 if pickup else 1
    return [first + i for i in range(len(starts))]


def roll_view(
    score: Score,
    bar_ticks: Sequence[int] | None = None,
    melody_track: int | None = 0,
    given_until_tick: int | None = None,
    title: str = "",
    config: RollViewConfig | None = None,
) -> dict:
    """The live roll's data for `score` (see the module's docstring for its layout).

    Parameters
    ----------
    score : Score
        The take; times in ticks.
    bar_ticks : sequence of int, optional
        Tick of every bar line (the service's grid, which knows a pickup the meter map does not);
        default `score.bar_starts()`.
    melody_track : int or None, default: 0
        Index in `score.tracks` of the melody (a drum track is never the melody); None for none.
    given_until_tick : int, optional
        Where the student's music ends and a model's added bars begin (a continuation).
    title : str
        Words above the roll.
    config : RollViewConfig, optional
    """
    cfg = config or RollViewConfig()
    tpb = score.ticks_per_beat

    def seconds(tick: int) -> float:
        return round(score.tick_to_seconds(tick), cfg.decimals)

    starts = sorted({int(t) for t in (score.bar_starts() if bar_ticks is None else bar_ticks)}) or [0]
    end = max(score.end_tick, starts[-1] + score.time_signature_at(starts[-1]).bar_ticks(tpb))
    beats: list[float] = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else end
        sig = score.time_signature_at(start)
        beat = max(1, round(Bar(0, 0, sig.numerator, sig.denominator).beat_steps * tpb / STEPS_PER_BEAT))
        beats += [seconds(t) for t in range(start, stop, beat)]

    melody = melody_track if melody_track is not None and 0 <= melody_track < len(score.tracks) else None
    if melody is not None and score.tracks[melody].is_drum:
        melody = None
    colours = track_colours(len(score.tracks), melody)
    tracks = [
        {
            "name": t.name,
            "label": legend_label(t.name, t.program, t.is_drum, i == melody) + ("" if t.notes else " (silent)"),
            "colour": colours[i],
            "drums": t.is_drum,
            "melody": i == melody,
            "notes": [[seconds(n.start), seconds(n.end), n.pitch, n.velocity] for n in sorted(t.notes, key=lambda n: (n.start, n.pitch))],
        }
        for i, t in enumerate(score.tracks)
    ]
    pitches = [n.pitch for t in score.tracks if not t.is_drum for n in t.notes]
    low, high = (max(0, min(pitches) - cfg.pitch_margin), min(127, max(pitches) + cfg.pitch_margin)) if pitches else cfg.empty_pitch_range
    tempo = []
    for tempo_change in score.tempos:
        per_tick = tempo_change.microseconds_per_beat / 1e6 / tpb
        tempo.append([tempo_change.tick, seconds(tempo_change.tick), per_tick])
    return {
        "title": title,
        "tracks": tracks,
        "melody": melody,
        "bars": [seconds(t) for t in starts],
        "bar_numbers": _bar_numbers(starts, end),
        "beats": beats,
        "end_s": seconds(end),
        "given_until_s": None if given_until_tick is None else seconds(given_until_tick),
        "chords": [
            {"start_s": seconds(m.start), "end_s": seconds(m.end), "name": m.name, "given": m.given}
            for m in marks_from_markers(score.markers, end)
        ],
        "pitch_range": [low, high],
        "grid": {"ticks_per_beat": tpb, "ticks_per_step": tpb / STEPS_PER_BEAT, "tempo": tempo},
    }

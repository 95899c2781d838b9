"""Four voices out of a piece with more: which voices a four-track data set takes (pure functions on notes).

A piece with five to eight voices (many of Palestrina's) must become four tracks: melody and three
accompaniment voices. Two reductions, each on the voices ordered high to low (by mean pitch):

- ``highest``: the four highest voices. In a piece with more than four voices the lowest track is
  then an inner voice and the real bass is left out.
- ``bass``: the top voice, the middle voices folded into two lines, and the lowest voice. The middle
  voices are shared out in order, the upper half (one more when their number is odd) to the first
  line, the rest to the second; a line is its group's first voice with its rests filled by the next
  voice's notes (a note of the next voice that starts where the line rests, cut where the line's next
  note starts), then the rests left filled by the voice after that, and so on.

With four voices both give the four voices as they are.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from studio.core.score import Note

__all__ = ["REDUCTIONS", "fill_rests", "fold_voices", "reduce_voices"]

REDUCTIONS = ("highest", "bass")
N_VOICES = 4


def fill_rests(line: Sequence[Note], filler: Sequence[Note]) -> list[Note]:
    """`line` with its rests filled by `filler`'s notes, sorted by start.

    A note of `filler` is taken when it starts where no note of `line` sounds, and it is cut where
    `line`'s next note starts. Both are one note at a time (a voice), so the result is too.
    """
    own = sorted(line, key=lambda n: n.start)
    starts = [n.start for n in own]
    added = []
    for note in filler:
        i = bisect.bisect_right(starts, note.start) - 1
        if i >= 0 and own[i].end > note.start:  # the line sounds here
            continue
        end = min(note.end, starts[i + 1]) if i + 1 < len(own) else note.end
        if end > note.start:
            added.append(Note(note.start, end, note.pitch, note.velocity))
    return sorted([*own, *added], key=lambda n: n.start)


def fold_voices(voices: Sequence[Sequence[Note]]) -> list[Note]:
    """One line from `voices` (high to low): the first voice, its rests filled by the second's notes,
    the rests left by the third's, and so on (`fill_rests`)."""
    line: list[Note] = list(voices[0]) if voices else []
    for voice in voices[1:]:
        line = fill_rests(line, voice)
    return line


def reduce_voices(voices: Sequence[Sequence[Note]], reduction: str) -> list[list[Note]]:
    """Four voices, high to low, out of `voices` (at least four, ordered high to low) by `reduction`
    (see the module docstring). Four voices come back as they are with either reduction."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown voice reduction {reduction!r}: use one of {', '.join(REDUCTIONS)}")
    if len(voices) < N_VOICES:
        raise ValueError(f"{len(voices)} voices: a reduction needs at least {N_VOICES}")
    if reduction == "highest" or len(voices) == N_VOICES:
        return [list(v) for v in voices[:N_VOICES]]
    middle = voices[1:-1]
    upper = math.ceil(len(middle) / 2)
    return [list(voices[0]), fold_voices(middle[:upper]), fold_voices(middle[upper:]), list(voices[-1])]

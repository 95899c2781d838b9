"""A score transposed, or played at another tempo: the same notes, nothing regenerated.

Pure functions on `Score` (ticks stay where they are: a tempo change rescales the tempo map, so bars,
beats and the grid are untouched and only the seconds move).
"""

from __future__ import annotations

from dataclasses import replace

from studio.core.chord_marks import moved_markers
from studio.core.errors import InputError
from studio.core.score import Score, TempoChange, Track

__all__ = ["MAX_TEMPO_FACTOR", "MAX_TRANSPOSE", "MIN_TEMPO_FACTOR", "check_change", "scale_tempo", "transpose"]

MAX_TRANSPOSE = 12  # semitones either way: an octave
MIN_TEMPO_FACTOR = 0.5  # half as fast
MAX_TEMPO_FACTOR = 2.0  # twice as fast


def check_change(semitones: object, tempo: object) -> tuple[int, float]:
    """(semitones, tempo factor) checked: a whole number of semitones within an octave either way, and
    a tempo factor within 0.5-2 (InputError, one line, otherwise)."""
    try:
        shift = float(semitones)  # type: ignore[arg-type]
        factor = float(tempo)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InputError("transpose by a whole number of semitones and set the tempo as a factor, e.g. 2 and 1.25") from None
    if not shift.is_integer() or abs(shift) > MAX_TRANSPOSE:
        raise InputError(f"transpose by a whole number of semitones from -{MAX_TRANSPOSE} to {MAX_TRANSPOSE}")
    if not MIN_TEMPO_FACTOR <= factor <= MAX_TEMPO_FACTOR:  # also refuses NaN
        raise InputError(f"the tempo can change from {MIN_TEMPO_FACTOR:g}x to {MAX_TEMPO_FACTOR:g}x of the take's")
    return int(shift), factor


def _moved(track: Track, semitones: int) -> Track:
    if track.is_drum or not semitones:  # a drum's 'pitch' is which drum it is
        return replace(track, notes=list(track.notes))
    notes = []
    for note in track.notes:
        pitch = note.pitch + semitones
        while pitch > 127:  # the rare note pushed off the keyboard comes back an octave
            pitch -= 12
        while pitch < 0:
            pitch += 12
        notes.append(replace(note, pitch=pitch))
    return replace(track, notes=notes)


def transpose(score: Score, semitones: int) -> Score:
    """`score` with every pitched note moved by `semitones` (drums stay; a note that would leave
    MIDI's 0-127 moves an octave less), and the chords its markers name with them."""
    return replace(score, tracks=[_moved(t, semitones) for t in score.tracks], markers=moved_markers(score.markers, semitones))


def scale_tempo(score: Score, factor: float) -> Score:
    """`score` played `factor` times as fast (every tempo of its tempo map; ticks unchanged)."""
    tempos = [TempoChange(t.tick, max(1, min(0xFFFFFF, round(t.microseconds_per_beat / factor)))) for t in score.tempos]
    return replace(score, tempos=tempos, tracks=[replace(t, notes=list(t.notes)) for t in score.tracks])

"""Checks on generated rolls that several test files share (kept apart from the code under test)."""

from __future__ import annotations

import numpy as np

from studio.core.roll import RollTrack


def melody_end_step(melody: RollTrack) -> int:
    """The step after the melody's last sounding step."""
    return int(np.flatnonzero(melody.velocity.any(axis=1)).max()) + 1


def starts_a_note_after(track: RollTrack, end: int) -> bool:
    """Whether a pitch begins to sound in `track` at `end` or later: a new note after the tune."""
    on = track.velocity > 0  # (steps, pitches)
    return bool((on[end:] & ~on[end - 1 : -1]).any())

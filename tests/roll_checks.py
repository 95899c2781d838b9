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


def starts_dropped(thinned: list[RollTrack], alone: list[RollTrack]) -> int:
    """How many note starts `thinned` has fewer than `alone`, voice by voice, after checking that every
    step sounds the same pitch in both and that `thinned` starts no note `alone` does not: a thinning
    of re-strikes, which holds a pitch on instead of striking it again."""
    from studio.core.conditioning import track_to_tokens

    fewer = 0
    for a, b in zip(thinned, alone, strict=True):
        (ta, sa), (tb, sb) = track_to_tokens(a), track_to_tokens(b)
        assert np.array_equal(ta, tb) and not (sa & ~sb).any()
        fewer += int(sb.sum() - sa.sum())
    return fewer


def registry_without(model: str, key: str, folder, also: dict | None = None):
    """A registry of `model`'s shipped card and weights copied into `folder` with its config's `key`
    emptied (and the keys of `also` set to its values)."""
    import json
    import shutil

    from studio.serving.registry import CHECKPOINTS, ModelRegistry

    card = json.loads((CHECKPOINTS / f"{model}.json").read_text())
    card["config"][key] = []
    card["config"].update(also or {})
    (folder / f"{model}.json").write_text(json.dumps(card))
    shutil.copy(CHECKPOINTS / f"{model}.safetensors", folder)
    return ModelRegistry(folder)


def wandering_melody(notes: int, ticks: int):
    """A melody of `notes` notes of `ticks` each (480 a beat) wandering around G4, and its grid."""
    from studio.core.roll import make_grid, notes_to_roll
    from studio.core.score import Note, Score, Track

    score = Score(480, [Track("m", notes=[Note(ticks * i, ticks * (i + 1), 67 + (i * 5) % 7) for i in range(notes)])])
    grid = make_grid(score)
    return notes_to_roll(score.tracks[0].notes, grid, "Melody", 0), grid

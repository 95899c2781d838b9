"""The take's live piano roll on the page: its notes as data for the browser, and the melody edited
there written back as a MIDI file that becomes the next melody (the page's "Use the edited melody").

    take .mid -> studio.core.midi.read_midi -> studio.audio.roll_view.roll_view -> JSON for assets/ui/roll.js
    the roll's JSON + take .mid -> studio.core.melody_edit.edited_melody -> .mid (the melody alone)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from studio.audio.roll_view import roll_view
from studio.core import midi
from studio.core.errors import InputError
from studio.core.filenames import safe_stem
from studio.core.files import atomic_write_bytes, saving_results
from studio.core.melody_edit import edited_melody

__all__ = ["EDITED_TITLE", "take_roll", "write_edited_melody"]

EDITED_TITLE = "My edited melody"


def _take_score(take_midi: str | os.PathLike):
    path = Path(take_midi)
    if not path.is_file():
        raise InputError("this take has expired (files are kept an hour): generate it again")
    return midi.read_midi(path).score


def take_roll(
    take_midi: str | os.PathLike, bar_ticks: Sequence[int] | None = None, given_until_tick: int | None = None, title: str = ""
) -> dict:
    """The live roll's data for a take's MIDI file (`studio.audio.roll_view`): track 0 is the
    melody (as `accompany` writes it); `bar_ticks` and `given_until_tick` as the take recorded them."""
    return roll_view(_take_score(take_midi), bar_ticks, 0, given_until_tick, title)


def write_edited_melody(take_midi: str | os.PathLike, edited_json: str, out_dir: str | os.PathLike, name: str = "edited-melody") -> Path:
    """Write the melody edited in the roll (the page's JSON) as `<name>.mid` in `out_dir`, on the
    take's tempo and meter maps; returns its path. A full or read-only disk is one line."""
    score = edited_melody(_take_score(take_midi), edited_json)
    with saving_results():
        return atomic_write_bytes(Path(out_dir) / f"{safe_stem(name)}.mid", midi.write_midi(score, title=EDITED_TITLE))

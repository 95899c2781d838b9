"""Real tunes for testing generators on music they never saw: folk songs and fiddle tunes of every
meter from music21's corpus (Essen folk songs, O'Neill's 1850, American fife tunes, Northumbrian
minstrelsy), read as a MIDI export of them would be (one melody track, the meter, pickups unmarked:
the studio's own pickup detection finds them).

None of these collections is used to train the corpus genres (chorale, renaissance, quartet); a
model trained on folk melodies must exclude them itself (see `held_out_only`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.meter import estimate_pickup
from studio.core.roll import Grid, RollTrack, make_grid, notes_to_roll, to_model_range
from studio.core.score import Note, Score, TimeSignature, Track

__all__ = ["UNSEEN_COLLECTIONS", "Tune", "corpus_tunes", "tune_roll"]

UNSEEN_COLLECTIONS = (
    "essenFolksong/altdeu10.abc",
    "essenFolksong/ballad10.abc",
    "essenFolksong/han1.abc",
    "oneills1850/0001-0050.abc",
    "miscFolk/americanfifeopus.abc",
    "miscFolk/northumbrianminstrelsyopus.abc",
)
TICKS = 480


@dataclass
class Tune:
    """A one-line tune: `title`, its `source` (collection and number) and a one-track `score`."""

    title: str
    source: str
    score: Score

    @property
    def meter(self) -> str:
        sig = self.score.time_signatures[0]
        return f"{sig.numerator}/{sig.denominator}"


def _reference_numbers(path: str) -> list[int] | None:
    """The ``X:`` reference numbers of an ABC collection in file order; None when they repeat (or the
    work is not ABC): then only the whole collection can be parsed tune by tune in order."""
    from music21 import corpus

    found = corpus.getWork(path)
    file = found[0] if isinstance(found, list) else found
    if not str(file).endswith(".abc"):
        return None
    numbers = [int(m.group(1)) for m in re.finditer(r"^X:\s*(\d+)", Path(file).read_text(encoding="utf-8", errors="replace"), re.M)]
    return numbers if len(set(numbers)) == len(numbers) else None


def _collection_scores(path: str) -> Iterator[Any]:
    """The scores of a corpus collection in order, each parsed only when it is asked for.

    music21 parses an ABC file's tunes one at a time when given a tune's reference number, and a
    whole collection (313 tunes in the first, 12-23 s on 2 cores the first time, before music21
    caches it) only to hand the first few to a caller that wants a handful; the scores are the
    same either way (every tune of the first 100 compared note for note, title and meter)."""
    from music21 import corpus  # music21 loads on first use (start-up speed)

    numbers = _reference_numbers(path)
    if numbers is None:
        opus = corpus.parse(path)
        yield from getattr(opus, "scores", [opus])
        return
    for number in numbers:
        yield corpus.parse(path, number=number)


def corpus_tunes(limit: int | None = None, collections: tuple[str, ...] = UNSEEN_COLLECTIONS, min_notes: int = 8) -> Iterator[Tune]:
    """Single-meter, single-line tunes of `collections`, in corpus order (at most `limit`)."""
    count = 0
    for path in collections:
        for number, score in enumerate(_collection_scores(path)):
            if not score.parts:
                continue
            part = score.parts[0]
            sigs = list(part.recurse().getElementsByClass("TimeSignature"))
            if len(sigs) != 1:
                continue
            notes = []
            for n in part.flatten().notes:
                if n.isChord:
                    continue
                start = round(float(n.offset) * TICKS)
                end = start + round(float(n.quarterLength) * TICKS)
                if end > start:
                    notes.append(Note(start, end, n.pitch.midi))
            if len(notes) < min_notes:
                continue
            sig = sigs[0]
            title = score.metadata.title if score.metadata and score.metadata.title else f"{path} #{number}"
            yield Tune(
                title,
                f"{path} #{number}",
                Score(TICKS, [Track("Melody", notes=notes)], time_signatures=[TimeSignature(0, sig.numerator, sig.denominator)]),
            )
            count += 1
            if limit and count >= limit:
                return


def tune_roll(score: Score) -> tuple[RollTrack, Grid]:
    """The melody of a one-track score on its grid (pickup found), pitches as models see them."""
    notes = score.tracks[0].notes
    grid = make_grid(score, estimate_pickup(notes, score))
    folded = [Note(n.start, n.end, to_model_range(n.pitch), n.velocity) for n in notes]
    return notes_to_roll(folded, grid, "Melody", 0), grid

"""``python -m studio.training.make_splits GENRE... [--write]``: make a genre's pinned split from today's seeded
draw, or compare the committed one with it. A tool on top of the data readers and `studio.training.splits`
(which stays free of them, so the readers can use the pinned lists)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from studio.training.data import CORPUS_GENRES, DatasetConfig, build_dataset
from studio.training.melodies import MelodyDatasetConfig, build_melodies
from studio.training.splits import Split, make_split, read_split, split_path, write_split

HOW = (
    "made once by python -m studio.training.make_splits {genre} --write from {source}: held out = studio.training.splits.split_pieces over the "
    "pieces' groups (seed 0, 10%, related pieces together), validation = studio.training.splits.validation_ids over the rest "
    "(seed 1, 10%, at most 40 pieces, whole groups); the lists, not the seeds, decide from then on"
)


def computed_split(genre: str, progress: bool = False) -> Split:
    """The split today's seeded draw gives `genre` (a corpus genre or 'folk'), ignoring any pinned file."""
    if genre in CORPUS_GENRES:
        data = build_dataset(DatasetConfig(genre, split_file=""), progress=progress)
        pieces = data.train + data.held_out
        return make_split(
            genre,
            [p.id for p in pieces],
            [p.group for p in pieces],
            HOW.format(genre=genre, source=f"music21's {genre} corpus"),
            held_out=[p.id for p in data.held_out],
        )
    data = build_melodies(MelodyDatasetConfig(genre, split_file=""), progress=progress)
    pieces = data.train + data.held_out
    how = HOW.format(
        genre=genre,
        source="the folk tunes of studio.training.melodies (held out per tune title) and the chorale sopranos (held out "
        "as in the chorale split)",
    )
    return make_split(genre, [p.id for p in pieces], [p.group for p in pieces], how, held_out=[p.id for p in data.held_out])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m studio.training.make_splits GENRE... [--write]``: compare (or write) the pinned split with today's draw."""
    parser = argparse.ArgumentParser(prog="python -m studio.training.make_splits", description=main.__doc__)
    parser.add_argument("genres", nargs="+")
    parser.add_argument("--write", action="store_true", help="write models/checkpoints/splits/GENRE.json (only for a new genre)")
    args = parser.parse_args(argv)
    status = 0
    for genre in args.genres:
        fresh = computed_split(genre, progress=True)
        path = split_path(genre)
        if args.write:
            write_split(fresh, path)
            print(f"wrote {path}: {len(fresh.train)} train, {len(fresh.validation)} validation, {len(fresh.held_out)} held out")
            continue
        pinned = read_split(path)
        same = all(getattr(pinned, side) == getattr(fresh, side) for side in ("train", "validation", "held_out"))
        print(
            f"{genre}: pinned {len(pinned.train)}/{len(pinned.validation)}/{len(pinned.held_out)}, today's draw "
            f"{len(fresh.train)}/{len(fresh.validation)}/{len(fresh.held_out)}: {'identical' if same else 'DIFFERENT'}"
        )
        status |= not same
    return status


if __name__ == "__main__":
    sys.exit(main())

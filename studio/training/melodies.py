"""Melody datasets: single-line tunes for the models that learn melodies (Transformer, VAE).

`folk`: the folk songs and fiddle tunes of music21's corpus (the Essen folk-song collection,
O'Neill's Music of Ireland 1850, Ryan's Mammoth Collection) and the soprano lines of Bach's chorales.
The collections `studio.training.tunes.UNSEEN_COLLECTIONS` reads to test every generator on tunes it never
saw are left out entirely, so those tests stay honest for the melody models too.

Each tune is a one-track `studio.training.data.Piece` on the studio's grid, with the bar lines of its own
measures (pickups and meter changes kept). Membership is pinned (`studio.training.splits`,
``models/checkpoints/splits/folk.json``), made once from the seeded draw by tune: settings of one
tune (same title) stay on one side; the chorale sopranos keep the chorale dataset's held-out side. Builds are cached
like `studio.training.data`'s (compressed arrays + JSON sidecar outside git, checked by hash).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.training.data import (
    Dataset,
    DatasetConfig,
    Piece,
    _corpus_root,
    _load_cache,
    _m21_layout,
    _m21_part_notes,
    _make_piece,
    _save_cache,
    apply_split,
    build_dataset,
    default_cache_dir,
    pinned_split_file,
    read_pieces,
)
from studio.training.splits import read_split, split_pieces
from studio.training.tunes import UNSEEN_COLLECTIONS

__all__ = ["MELODY_GENRES", "MelodyDatasetConfig", "build_melodies", "folk_sources", "held_out_tunes", "melody_dataset", "read_tunes"]

MELODY_GENRES = ("folk",)
MELODY_TRACK = (("Melody", 0, False),)
FORMAT_VERSION = 1
_CHUNK = 60  # Ryan's tunes are one file each: this many files per parser task


@dataclass(frozen=True)
class MelodyDatasetConfig:
    """What to build: `genre` 'folk'; `chorales` adds Bach's sopranos; `transpose` is the range of
    semitone shifts for training windows; `max_sources` keeps the first parser tasks (tests)."""

    genre: str = "folk"
    held_out_fraction: float = 0.1
    seed: int = 0
    transpose: tuple[int, int] = (-5, 6)
    chorales: bool = True
    max_sources: int | None = None
    cache_dir: str | Path | None = None
    workers: int = 2
    split_file: str | None = None  # as `studio.training.data.DatasetConfig.split_file`: None, the committed splits/<genre>.json
    add_unlisted: bool = False  # tunes in no list of the pinned split train (default: left out, with a warning)

    def __post_init__(self) -> None:
        if self.genre not in MELODY_GENRES:
            raise ValueError(f"unknown melody genre {self.genre!r}: use one of {', '.join(MELODY_GENRES)}")

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()


def folk_sources() -> list[list[str]]:
    """Parser tasks: lists of corpus paths (relative to music21's corpus), one opus or a chunk of tunes each."""
    root = _corpus_root()
    unseen = set(UNSEEN_COLLECTIONS)
    tasks: list[list[str]] = []
    for folder in ("essenFolksong", "oneills1850"):
        for path in sorted((root / folder).glob("*.abc")):
            rel = f"{folder}/{path.name}"
            if rel in unseen or path.name.startswith("test"):
                continue
            tasks.append([rel])
    ryans = sorted(f"ryansMammoth/{p.name}" for p in (root / "ryansMammoth").glob("*.abc"))
    tasks += [ryans[i : i + _CHUNK] for i in range(0, len(ryans), _CHUNK)]
    return tasks


def _title_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", title.lower()) or "untitled"


def _parse_task(paths: list[str]) -> tuple[list[Piece], list[tuple[str, str]]]:
    """The tunes of some corpus files as one-track pieces, and (source, reason) for those skipped."""
    from music21 import corpus, stream  # music21 loads on first use (start-up speed)

    pieces: list[Piece] = []
    skipped: list[tuple[str, str]] = []
    for rel in paths:
        try:
            obj = corpus.parse(rel)
        except Exception as exc:  # noqa: BLE001 - a corpus file music21 cannot read is skipped, with the reason
            skipped.append((rel, f"music21 cannot parse it: {type(exc).__name__}"))
            continue
        scores = list(obj.scores) if isinstance(obj, stream.Opus) else [obj]
        for number, score in enumerate(scores):
            source = f"{rel} #{number}"
            try:
                part = score.parts[0] if score.parts else score
                notes = _m21_part_notes(part)
                if len(notes) < 8:
                    skipped.append((source, "fewer than 8 notes"))
                    continue
                sigs, bars = _m21_layout(part)
                title = score.metadata.title if score.metadata and score.metadata.title else source
                pid = f"folk/{rel.rsplit('.', 1)[0]}/{number:04d}"
                pieces.append(_make_piece(pid, source, "folk", f"folk:{_title_key(title)}", MELODY_TRACK, [notes], sigs, bars))
            except Exception as exc:  # noqa: BLE001 - one odd tune must not stop the build
                skipped.append((source, f"{type(exc).__name__}: {exc}"[:200]))
    return pieces, skipped


def _chorale_sopranos(config: MelodyDatasetConfig, progress: bool) -> tuple[list[Piece], list[Piece]]:
    """(train, held-out) soprano lines of the chorale dataset, with its split."""

    data = build_dataset(
        DatasetConfig(
            "chorale",
            seed=config.seed,
            cache_dir=config.cache_dir,
            workers=config.workers,
            split_file="" if config.split_file == "" else None,
        ),
        progress=progress,
    )

    return [_soprano(p) for p in data.train], [_soprano(p) for p in data.held_out]


def _soprano(p: Piece) -> Piece:
    """A chorale's soprano line as a one-track tune (its group marked as a chorale's)."""
    notes = p.notes[p.notes[:, 0] == 0]
    return dataclasses.replace(
        p, track_names=(p.track_names[0],), programs=(p.programs[0],), drums=(False,), notes=notes, group=f"chorale:{p.group}"
    )


def read_tunes(ids: Sequence[str]) -> list[Piece]:
    """The tunes `ids` of the folk set (``folk/<collection>/<file>/<number>`` or a chorale's
    ``chorale/bwv...`` soprano), read alone as `build_melodies` reads them (no cache, no split), in
    the order of `ids`: a few held-out tunes in seconds. A Ryan's tune or a chorale takes a tenth of
    a second; an Essen or O'Neill's tune parses its whole collection file (seconds). An id not in
    the set is an `InputError`."""
    chorales = [i for i in ids if i.startswith("chorale/")]
    found = {p.id: _soprano(p) for p in read_pieces("chorale", chorales)} if chorales else {}
    files: dict[str, list[str]] = {}
    for pid in ids:
        parts = pid.split("/")
        if pid.startswith("folk/") and len(parts) == 4:
            files.setdefault(f"{parts[1]}/{parts[2]}.abc", []).append(pid)
        elif not pid.startswith("chorale/"):
            raise InputError(f"no tune '{pid}' in the folk set: tune ids are listed in models/checkpoints/splits/folk.json")
    known = {path for task in folk_sources() for path in task}
    for rel in files:
        if rel not in known:
            raise InputError(f"no tune '{files[rel][0]}' in the folk set: {rel} is not one of its files")
        pieces, _skipped = _parse_task([rel])
        found.update((p.id, p) for p in pieces if p.id in files[rel])
    missing = [i for i in ids if i not in found]
    if missing:
        raise InputError(f"no tune '{missing[0]}' in the folk set: its file has no such tune (or it was skipped)")
    return [found[i] for i in ids]


def build_melodies(config: MelodyDatasetConfig | None = None, progress: bool = True, rebuild: bool = False) -> Dataset:
    """Build (or load from the cache) a melody dataset, split by tune into `train` and `held_out`."""
    import music21  # music21 loads on first use (start-up speed)
    from tqdm import tqdm  # only while building a data set

    config = config or MelodyDatasetConfig()
    t0 = time.perf_counter()
    tasks = folk_sources()[: config.max_sources]
    root = _corpus_root()
    sizes = [(p, (root / p).stat().st_size) for task in tasks for p in task]
    identity = {
        "kind": "melodies",
        "format": FORMAT_VERSION,
        "genre": config.genre,
        "music21": music21.__version__,
        "sources": hashlib.sha256(repr(sizes).encode()).hexdigest()[:16],
        "held_out": config.held_out_fraction,
        "seed": config.seed,
    }
    stem = config.cache_path / f"melodies-{config.genre}-{hashlib.sha256(repr(sorted(identity.items())).encode()).hexdigest()[:12]}"
    cached = None if rebuild else _load_cache(stem, identity)
    if cached is not None:
        pieces, meta = cached
    else:
        pieces, skipped = [], []
        bar = tqdm(total=len(tasks), desc=f"parsing {config.genre} tunes", unit="file", disable=not progress, file=sys.stderr)
        if config.workers > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(config.workers) as pool:
                for found, skip in pool.map(_parse_task, tasks):
                    pieces += found
                    skipped += skip
                    bar.update(1)
        else:
            for task in tasks:
                found, skip = _parse_task(task)
                pieces += found
                skipped += skip
                bar.update(1)
        bar.close()
        train_ids, held_ids = split_pieces([p.id for p in pieces], [p.group for p in pieces], config.held_out_fraction, config.seed)
        meta = {
            "identity": identity,
            "split": {"train": train_ids, "held_out": held_ids},
            "skipped": [{"source": s, "reason": r} for s, r in skipped],
            "sources": len(sizes),
            "build_seconds": round(time.perf_counter() - t0, 2),
        }
        _save_cache(stem, pieces, meta)
    train_ids, held_ids = list(meta["split"]["train"]), list(meta["split"]["held_out"])
    sources = meta["sources"]
    if config.chorales:
        chorale_train, chorale_held = _chorale_sopranos(config, progress)
        pieces = pieces + chorale_train + chorale_held
        train_ids += [p.id for p in chorale_train]
        held_ids += [p.id for p in chorale_held]
        sources += len(chorale_train) + len(chorale_held)
    pinned = pinned_split_file(config.genre, config.split_file, config.max_sources)
    train, held, validation, split_facts = apply_split(pieces, (train_ids, held_ids), pinned, config.add_unlisted, config.genre)
    info: dict[str, Any] = {
        "split": split_facts,
        "from_cache": cached is not None,
        "seconds": round(time.perf_counter() - t0, 2),
        "build_seconds": meta["build_seconds"],
        "sources": sources,
        "cache": str(stem.with_suffix(".npz")),
    }
    skipped_list = [(s["source"], s["reason"]) for s in meta["skipped"]]
    if progress:
        how = "loaded from the cache" if cached is not None else f"built in {meta['build_seconds']:.0f} s"
        print(
            f"{config.genre} melodies: {len(train)} training and {len(held)} held-out tunes ({how}); {len(skipped_list)} skipped",
            file=sys.stderr,
        )
    return Dataset(config, train, held, skipped_list, info, validation)  # type: ignore[arg-type]  # duck-typed config: transpose


def melody_dataset(genre: str, max_pieces: int | None = None, progress: bool = True) -> Dataset:
    """The training loop's `family.dataset` hook for the melody models (the Transformer, the VAE):
    the tunes of `build_melodies` for `genre`."""
    return build_melodies(MelodyDatasetConfig(genre, max_sources=max_pieces), progress=progress)


def held_out_tunes(genre: str, ids: Sequence[str]) -> list[Piece]:
    """The tunes `ids`, read alone (`read_tunes`), after checking that each is on the held-out list
    of the genre's pinned split (a training tune is no test: `InputError`)."""
    pinned = pinned_split_file(genre, None, None)
    if pinned is None:
        raise InputError(f"no pinned split for '{genre}': evaluating named tunes needs one (models/checkpoints/splits/)")
    held_out = set(read_split(pinned).held_out)
    stray = [i for i in ids if i not in held_out]
    if stray:
        raise InputError(
            f"'{stray[0]}' is not a held-out tune of models/checkpoints/splits/{genre}.json: name tunes from its held_out list"
        )
    return read_tunes(ids)

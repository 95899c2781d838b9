"""Training data for every learned model: real music as a melody plus accompaniment tracks on the grid.

Genres (no downloads: the corpora ship inside the music21 wheel)
-----------------------------------------------------------------
- ``chorale``: Bach's chorales (``bach/bwv*``; the .mxl copy wins over a .xml/.krn copy of the same
  chorale). Soprano = melody; Alto, Tenor, Bass = accompaniment, in score order. Only pieces with
  exactly four parts: a chorale with instrumental parts (horns, violins, continuo) is skipped.
- ``renaissance``: Palestrina's mass movements (Humdrum) and Josquin's chansons (ABC, one voice per
  tune) with at least four voices, ordered by mean pitch, highest first (Cantus = melody; Altus, Tenor,
  Bassus): a piece with more voices is reduced to four by `GENRE_REDUCTION` (``DatasetConfig.reduction``,
  `studio.training.voice_reduction`: the four highest voices, or the top voice, two folded middle lines and the bass).
- ``quartet``: the string quartets of Haydn (op. 1 no. 1, op. 74 no. 1), Mozart (K. 80, 155, 156, 458)
  and Beethoven (op. 18 nos. 1, 3, 4, 5; op. 59 nos. 1-3; op. 74; op. 132; op. 133) in the corpus
  (``QUARTET_COMPOSERS``; a file with other than four parts, such as the K. 545 piano sonata, is
  skipped, and a .krn copy of an .mxl movement is left out). Violin I = melody; Violin II, Viola, Cello.
- ``folder:PATH``: every ``.mid``/``.midi`` under PATH, read with `studio.core.midi.read_midi` (a file it
  refuses is skipped with its message). The melody comes from `studio.core.melody.extract_melody`; every
  other track goes by General MIDI program family to one of five fixed roles (`FOLDER_ROLES`, as in
  LPD-5): Piano (programs 0-23: pianos, chromatic percussion, organs), Guitar (24-31), Bass (32-39),
  Strings (40-55 strings and ensembles, 88-95 pads), Drums (channel 10). Tracks of the other
  families (brass, reeds, pipes, synth leads, effects) are left out; a role with no notes stays empty.

Representation
--------------
A `Piece` holds its `grid` (`studio.core.roll.Grid`: 16th-note steps, bars from the score's measures, a
pickup bar as a short first bar, two short measures that make one bar at a repeat sign joined) and its notes as one
compact int32 array (track, start step, end step, pitch, velocity). `Piece.tracks` builds the `RollTrack` list (melody first) on access, exactly
as `studio.core.roll.notes_to_roll` would: dense (T, 128) rolls of all 1,318 Palestrina movements would
take 2 GB. Voices are monophonic: a chord in a voice keeps its top note, tied notes are merged, and
the melody is a skyline (`studio.core.melody.skyline`), as the studio's own melody extraction makes it.
Note times come from music21's offsets (quarter lengths x 480 ticks per beat); the Palestrina
Humdrum files, simple **kern without spine splits, are read by a small reader of our own that gives
the same notes and bars as music21 20 times faster (``DatasetConfig.fast_kern``; anything it does
not know goes to music21).

Split and cache
---------------
Membership is pinned: the corpus genres read ``models/checkpoints/splits/<genre>.json`` (`studio.training.splits`),
lists of piece ids made once from the seeded draw below, so a new or changed file moves no piece (a
piece in no list is left out unless ``add_unlisted``, and never held out). The seeded draw
(`split_pieces`: ids sorted, then groups shuffled with ``random.Random(seed)``) still makes the split
of a new genre, a folder's first training run and a ``max_pieces`` quick look. With
``group_related`` (default) related pieces move together: the harmonizations of one chorale tune
(music21's Riemenschneider list) and the movements of one Palestrina mass. A build is cached under
`default_cache_dir` as ``numpy.savez_compressed`` arrays (loaded with ``allow_pickle=False``) plus a
JSON sidecar (ids, keys, meters, bars, tracks, the split, skipped files, the music21 version, the
config).

Windows
-------
`windows` cuts fixed-size training examples, shape=(N, n_tracks, bars * steps_per_bar, 84) bool
(pitches 24..107, melody = track 0), from full bars of exactly ``steps_per_bar`` steps; a full bar
of k times that length whose beats split evenly (4/2 = two 2/2 halves) gives k. Pickups, short or
long bars and other meters are skipped (3/4, 6/8, 3/2 and 2/4 bars never enter a 16-step window).
Random transposition (augmentation, training only) moves all pitched tracks of a window by the same
interval; notes that leave 24..107 move by octaves.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.config import cache_dir
from studio.core.errors import InputError
from studio.core.melody import extract_melody, skyline
from studio.core.meter import estimate_pickup
from studio.core.metrics import TRACK_METRICS, piece_metrics
from studio.core.midi import read_midi
from studio.core.roll import (
    MODEL_PITCH_HIGH,
    MODEL_PITCH_LOW,
    N_MODEL_PITCHES,
    STEPS_PER_BEAT,
    Bar,
    Grid,
    Roll,
    RollTrack,
    make_grid,
)
from studio.core.score import Note, Score, TimeSignature, Track
from studio.training.splits import assign, read_split, split_path, split_pieces
from studio.training.voice_reduction import REDUCTIONS, reduce_voices

__all__ = [
    "CORPUS_GENRES",
    "DATA_FORMAT_VERSION",
    "FOLDER_ROLES",
    "GENRE_REDUCTION",
    "GENRE_TRACKS",
    "QUARTET_COMPOSERS",
    "TICKS_PER_BEAT",
    "Dataset",
    "DatasetConfig",
    "Piece",
    "apply_split",
    "build_dataset",
    "dataset_stats",
    "default_cache_dir",
    "folder_role",
    "genre_reduction",
    "list_sources",
    "load_cached_dataset",
    "pinned_split_file",
    "read_pieces",
    "window_index",
    "windows",
]

log = logging.getLogger(__name__)

DATA_FORMAT_VERSION = 1  # bump when the arrays or their meaning change: old caches are rebuilt
TICKS_PER_BEAT = 480
CORPUS_GENRES = ("chorale", "renaissance", "quartet")
QUARTET_COMPOSERS = ("haydn", "mozart", "beethoven")

# Track names and General MIDI programs per genre, melody first.
GENRE_TRACKS: dict[str, tuple[tuple[str, int, bool], ...]] = {
    "chorale": (("Soprano", 52, False), ("Alto", 52, False), ("Tenor", 52, False), ("Bass", 52, False)),
    "renaissance": (("Cantus", 52, False), ("Altus", 52, False), ("Tenor", 52, False), ("Bassus", 52, False)),
    "quartet": (("Violin I", 40, False), ("Violin II", 40, False), ("Viola", 41, False), ("Cello", 42, False)),
}
# How a piece with more than four voices becomes four (`studio.training.voice_reduction`); other genres: "highest".
GENRE_REDUCTION: dict[str, str] = {"renaissance": "highest"}
# Accompaniment roles of a folder of MIDI files (LPD-5's five instruments), in track order after the melody.
FOLDER_ROLES: tuple[tuple[str, int, bool], ...] = (
    ("Piano", 0, False),
    ("Guitar", 24, False),
    ("Bass", 32, False),
    ("Strings", 48, False),
    ("Drums", 0, True),
)
_MIDI_SUFFIXES = (".mid", ".midi")
_FORMAT_RANK = {".mxl": 0, ".xml": 1, ".musicxml": 1, ".krn": 2, ".abc": 3}


# --------------------------------------------------------------------------- configuration and types


def default_cache_dir() -> Path:
    """``$STUDIO_CACHE/datasets`` when ``STUDIO_CACHE`` is set, else ``~/.cache/music-studio/datasets``."""
    return cache_dir("datasets")


@dataclass(frozen=True)
class DatasetConfig:
    """What to build and how.

    Attributes
    ----------
    genre : str
        ``chorale``, ``renaissance``, ``quartet`` or ``folder:PATH``.
    held_out_fraction : float
        Share of pieces kept out of training (at least one piece when there are two or more groups).
    seed : int
        Seed of the split (and nothing else).
    transpose : tuple of int
        Inclusive range of semitone shifts for training windows (`Dataset.windows`); never held-out.
    max_pieces : int or None
        Keep only the first pieces (sorted by source) that parse; for tests and quick looks.
    cache_dir : path or None
        Where builds are cached; None: `default_cache_dir`.
    group_related : bool
        Keep the settings of one chorale tune and the movements of one mass in the same split.
    workers : int
        Parser processes for a cold build (1: parse in this process).
    fast_kern : bool
        Read plain **kern files with this module's reader instead of music21's (same result, 20x faster).
    split_file : str or None
        The pinned split (`studio.training.splits`) that decides train / validation / held-out membership.
        None: the committed ``models/checkpoints/splits/<genre>.json`` of a corpus genre (not with
        `max_pieces`: a quick look keeps the seeded draw over its few pieces); ``""``: no file, the
        seeded draw (`split_pieces`); a path: that file (a folder's split beside its checkpoint).
    add_unlisted : bool
        Pieces in no list of the pinned split train (default: left out, with a warning); never held out.
    reduction : str or None
        How a piece with more than four voices becomes four (`studio.training.voice_reduction.REDUCTIONS`:
        ``highest`` or ``bass``); None: the genre's `GENRE_REDUCTION`. Pieces and split membership stay
        the same; only the voices taken from a piece of five or more change.
    """

    genre: str = "chorale"
    held_out_fraction: float = 0.1
    seed: int = 0
    transpose: tuple[int, int] = (-5, 6)
    max_pieces: int | None = None
    cache_dir: str | Path | None = None
    group_related: bool = True
    workers: int = 2
    fast_kern: bool = True
    split_file: str | None = None
    add_unlisted: bool = False
    reduction: str | None = None

    def __post_init__(self) -> None:
        if not (self.genre in CORPUS_GENRES or self.genre.startswith("folder:")):
            raise ValueError(f"unknown genre {self.genre!r}: use one of {', '.join(CORPUS_GENRES)} or folder:PATH")
        if not 0.0 <= self.held_out_fraction < 1.0:
            raise ValueError("held_out_fraction must be in [0, 1)")
        if self.transpose[0] > self.transpose[1]:
            raise ValueError("transpose must be (low, high) with low <= high")
        if self.reduction is not None and self.reduction not in REDUCTIONS:
            raise ValueError(f"unknown voice reduction {self.reduction!r}: use one of {', '.join(REDUCTIONS)}")

    @property
    def voice_reduction(self) -> str:
        """The reduction in use: `reduction`, else the genre's `GENRE_REDUCTION` (``highest`` by default)."""
        return genre_reduction(self.genre, self.reduction)

    @property
    def cache_path(self) -> Path:
        """The cache folder in use."""
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()

    @property
    def pinned_split(self) -> Path | None:
        """The split file that decides membership (see `split_file`), or None for the seeded draw."""
        return pinned_split_file(self.genre, self.split_file, self.max_pieces)


@dataclass
class Piece:
    """One piece of music on the studio's grid: melody (track 0) and accompaniment tracks.

    `notes` is the compact form, shape=(n, 5) int32: track, start step, end step (exclusive), pitch,
    velocity, in the order `notes_to_roll` adds them. `tracks` builds the `RollTrack`s from it on
    every access (bind it once when you use it several times).
    """

    id: str
    source: str
    genre: str
    grid: Grid
    track_names: tuple[str, ...]
    programs: tuple[int, ...]
    drums: tuple[bool, ...]
    notes: np.ndarray
    key: str
    meter: str
    n_bars: int
    group: str = ""

    @property
    def n_tracks(self) -> int:
        return len(self.track_names)

    @property
    def n_steps(self) -> int:
        return self.grid.n_steps

    @property
    def tracks(self) -> list[RollTrack]:
        """The `RollTrack`s, melody first, shape=(T, 128) each (built on access)."""
        out = [
            RollTrack.empty(name, program, self.grid.n_steps, drum)
            for name, program, drum in zip(self.track_names, self.programs, self.drums, strict=True)
        ]
        for t, s, e, p, v in self.notes.tolist():
            out[t].velocity[s:e, p] = v
            out[t].onset[s, p] = True
        return out

    @property
    def roll(self) -> Roll:
        """The piece as a `Roll` (tracks built on access)."""
        return Roll(self.grid, self.tracks)

    def sounding(self) -> np.ndarray:
        """Where each track sounds, shape=(n_tracks, T, 128) bool."""
        diff = np.zeros((self.n_tracks, self.n_steps + 1, 128), np.int32)
        if len(self.notes):
            t, s, e, p = self.notes[:, 0], self.notes[:, 1], self.notes[:, 2], self.notes[:, 3]
            np.add.at(diff, (t, s, p), 1)
            np.add.at(diff, (t, e, p), -1)
        return np.cumsum(diff, axis=1)[:, :-1] > 0


@dataclass
class Dataset:
    """A built dataset: `train` and `held_out` pieces (disjoint), what was skipped, and build facts.

    `train` holds every piece that is not held out, the `validation` ids among them too (the training
    loop takes those out to choose its checkpoint); `validation` is None when no pinned split names
    them (the loop then draws them, `studio.training.splits.validation_ids`). ``info["split"]`` says where the
    membership came from."""

    config: DatasetConfig
    train: list[Piece]
    held_out: list[Piece]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    validation: list[str] | None = None

    @property
    def pieces(self) -> list[Piece]:
        return self.train + self.held_out

    def windows(
        self,
        split: str = "train",
        bars: int = 4,
        steps_per_bar: int = 16,
        hop_bars: int = 1,
        rng: np.random.Generator | None = None,
        return_index: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """`windows` of a split: training windows get the config's random transposition, held-out none."""
        if split not in ("train", "held_out"):
            raise ValueError("split must be 'train' or 'held_out'")
        pieces = self.train if split == "train" else self.held_out
        shift = self.config.transpose if split == "train" else None
        return windows(pieces, bars, steps_per_bar, hop_bars, shift, rng, return_index=return_index)


# --------------------------------------------------------------------------- sources


def _corpus_root() -> Path:
    import music21  # music21 loads on first use (start-up speed)

    return Path(music21.__file__).resolve().parent / "corpus"


def _dedupe_formats(paths: Iterable[Path]) -> list[Path]:
    """One file per work: .mxl before .xml before .krn before .abc copies of the same stem."""
    best: dict[Path, Path] = {}
    for path in paths:
        stem = path.with_suffix("")
        rank = _FORMAT_RANK.get(path.suffix.lower(), 9)
        if stem not in best or rank < _FORMAT_RANK.get(best[stem].suffix.lower(), 9):
            best[stem] = path
    return sorted(best.values())


def list_sources(genre: str) -> list[tuple[str, str, Path]]:
    """(id, source, absolute path) of every file a genre reads, sorted by id.

    Corpus sources are paths relative to music21's corpus folder (the same on every machine);
    folder sources are paths relative to the folder.
    """
    if genre.startswith("folder:"):
        root = Path(genre.removeprefix("folder:")).expanduser()
        if not root.is_dir():
            raise InputError(f"cannot read the folder {str(root)!r}: no such folder; check the path")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _MIDI_SUFFIXES)
        out = [(f"folder/{p.relative_to(root).with_suffix('').as_posix()}", p.relative_to(root).as_posix(), p) for p in files]
        return sorted(out)
    from music21 import corpus  # music21 loads on first use (start-up speed)

    root = _corpus_root()
    composers = {"chorale": ("bach",), "renaissance": ("palestrina", "josquin"), "quartet": QUARTET_COMPOSERS}[genre]
    found: list[Path] = []
    for composer in composers:
        found += [Path(p) for p in corpus.getComposer(composer)]
    if genre == "chorale":
        found = [p for p in found if p.name.startswith("bwv")]
    out = []
    for path in _dedupe_formats(found):
        rel = path.resolve().relative_to(root).as_posix()
        stem = rel.rsplit(".", 1)[0]
        pid = f"chorale/{stem.removeprefix('bach/')}" if genre == "chorale" else f"{genre}/{stem}"
        out.append((pid, rel, path))
    return sorted(out)


# --------------------------------------------------------------------------- notes from music21


class _Skip(Exception):
    """A source that does not make a piece of this genre (the message says why)."""


def _tick(quarter_length: float | Fraction) -> int:
    return round(float(quarter_length) * TICKS_PER_BEAT)


def _m21_part_notes(part) -> list[Note]:
    """Notes of one part in ticks: top note of each chord, ties merged, grace notes left out."""
    from music21 import chord, harmony, note  # music21 loads on first use (start-up speed)

    out: list[Note] = []
    open_ties: dict[int, int] = {}
    for el in part.flatten().notes:
        if isinstance(el, harmony.ChordSymbol) or el.duration.isGrace or el.quarterLength <= 0:
            continue
        if isinstance(el, note.Note):
            midi, tie = el.pitch.midi, el.tie
        elif isinstance(el, chord.Chord) and len(el.pitches):
            top = max(el.notes, key=lambda n: n.pitch.midi)
            midi, tie = top.pitch.midi, top.tie or el.tie
        else:
            continue  # unpitched percussion
        if not 0 <= midi <= 127:
            continue
        start, end = _tick(el.offset), _tick(el.offset + el.quarterLength)
        kind = tie.type if tie is not None else None
        if kind in ("stop", "continue") and midi in open_ties:
            index = open_ties[midi]
            prev = out[index]
            out[index] = Note(prev.start, max(prev.end, end), midi, prev.velocity)
            if kind == "stop":
                del open_ties[midi]
            continue
        out.append(Note(start, end, midi))
        if kind in ("start", "continue"):
            open_ties[midi] = len(out) - 1
    return [n for n in out if n.end > n.start]


def _m21_layout(part) -> tuple[list[TimeSignature], list[tuple[int, int, int, int]]]:
    """Meter map and bars (start tick, length in ticks, numerator, denominator) from a part's measures."""
    from music21 import meter, stream  # music21 loads on first use (start-up speed)

    measures = list(part.getElementsByClass(stream.Measure))
    sigs: list[TimeSignature] = []
    if not measures:
        for ts in part.flatten().getElementsByClass(meter.TimeSignature):
            sigs.append(TimeSignature(_tick(ts.offset), ts.numerator, ts.denominator))
        return sigs, []
    bars: list[tuple[int, int, int, int]] = []
    current: tuple[int, int] | None = None
    for i, m in enumerate(measures):
        ts = m.timeSignature
        if ts is None and current is None:
            ts = m.getContextByClass(meter.TimeSignature)
        if ts is not None and (ts.numerator, ts.denominator) != current:
            current = (ts.numerator, ts.denominator)
            sigs.append(TimeSignature(_tick(m.offset), *current))
        num, den = current or (4, 4)
        start = _tick(m.offset)
        end = _tick(measures[i + 1].offset) if i + 1 < len(measures) else _tick(m.offset + m.duration.quarterLength)
        bars.append((start, end - start, num, den))
    return sigs, bars


def _m21_read(path: Path) -> tuple[list[list[Note]], list[TimeSignature], list[tuple[int, int, int, int]]]:
    """Parts (notes in ticks, score order), meter map and bars of a file, parsed by music21."""
    from music21 import converter, stream  # music21 loads on first use (start-up speed)

    obj = converter.parse(str(path), forceSource=True)
    if isinstance(obj, stream.Opus):  # ABC: one tune per voice
        parts = [p for sc in obj.scores for p in (sc.parts or [sc])]
    elif isinstance(obj, stream.Score):
        parts = list(obj.parts)
    else:
        parts = [obj]
    if not parts:
        raise _Skip("no parts")
    sigs, bars = _m21_layout(parts[0])
    return [_m21_part_notes(p) for p in parts], sigs, bars


# --------------------------------------------------------------------------- a fast reader for plain **kern

_KERN_DURATION = re.compile(r"(\d+)(\.*)")
_KERN_PITCH = re.compile(r"([a-gA-G])\1*")
_KERN_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_KERN_METER = re.compile(r"\*M(\d+)/(\d+)$")
_KERN_SPINE_OPS = ("*^", "*v", "*+", "*x", "*-")


class _Unsupported(Exception):
    """A **kern construct the fast reader leaves to music21."""


def _kern_token(token: str) -> tuple[Fraction, int | None, str]:
    """(quarter length, MIDI pitch or None for a rest, tie mark '[', '_', ']' or '') of one **kern note."""
    if any(c in token for c in "qQP%"):
        raise _Unsupported(token)  # grace notes, appoggiaturas, rational durations
    match = _KERN_DURATION.search(token)
    if not match:
        raise _Unsupported(token)
    digits, dots = match.group(1), len(match.group(2))
    if set(digits) == {"0"}:
        base = Fraction(8 * 2 ** (len(digits) - 1))  # 0 = breve, 00 = long
    else:
        base = Fraction(4, int(digits))
    length = base * (2 - Fraction(1, 2**dots))
    tie = "[" if "[" in token else "]" if "]" in token else "_" if "_" in token else ""
    if "r" in token:
        return length, None, tie
    pitch = _KERN_PITCH.search(token)
    if not pitch:
        raise _Unsupported(token)
    letters = pitch.group(0)
    octave = 4 + len(letters) - 1 if letters[0].islower() else 3 - (len(letters) - 1)
    alter = token.count("#") - token.count("-")
    return length, 12 * (octave + 1) + _KERN_PC[letters[0].lower()] + alter, tie


def _kern_read(text: str) -> tuple[list[list[Note]], list[TimeSignature], list[tuple[int, int, int, int]]]:
    """Parts (top spine first), meter map and bars of a **kern file without spine splits or merges."""
    n_spines = 0
    now = Fraction(0)
    free: list[Fraction] = []
    parts: list[list[Note]] = []
    open_ties: list[dict[int, int]] = []
    sigs: list[TimeSignature] = []
    barlines: list[Fraction] = []
    for line in text.splitlines():
        if not line or line.startswith("!"):
            continue
        tokens = line.split("\t")
        if line.startswith("**"):
            if n_spines or any(t != "**kern" for t in tokens):
                raise _Unsupported("spines other than **kern")
            n_spines = len(tokens)
            free = [Fraction(0)] * n_spines
            parts = [[] for _ in tokens]
            open_ties = [{} for _ in tokens]
            continue
        if len(tokens) != n_spines:
            raise _Unsupported("spine split or merge")
        if line.startswith("*"):
            if any(t in _KERN_SPINE_OPS[:4] for t in tokens):
                raise _Unsupported("spine manipulation")
            meter_match = _KERN_METER.match(tokens[0])
            if meter_match:
                sig = TimeSignature(_tick(now), int(meter_match.group(1)), int(meter_match.group(2)))
                if not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (sig.numerator, sig.denominator):
                    sigs.append(sig)
            continue
        if line.startswith("="):
            barlines.append(now)
            continue
        for i, token in enumerate(tokens):
            if token == ".":
                continue
            length = None
            for sub in token.split(" "):
                sub_length, midi, tie = _kern_token(sub)
                length = sub_length if length is None else max(length, sub_length)
                if midi is None or not 0 <= midi <= 127:
                    continue
                start, end = _tick(now), _tick(now + sub_length)
                ties = open_ties[i]
                if tie in ("_", "]") and midi in ties:
                    prev = parts[i][ties[midi]]
                    parts[i][ties[midi]] = Note(prev.start, max(prev.end, end), midi, prev.velocity)
                    if tie == "]":
                        del ties[midi]
                    continue
                parts[i].append(Note(start, end, midi))
                if tie in ("[", "_"):
                    ties[midi] = len(parts[i]) - 1
            if length is not None:
                free[i] = now + length
        nxt = min(free)
        if nxt <= now:
            raise _Unsupported("a data line that does not advance time")
        now = nxt
    if not n_spines:
        raise _Unsupported("no **kern spines")
    # Chords keep their top note (as music21's path does).
    parts = [_top_notes(p) for p in parts]
    end = now
    starts = [b for b in barlines if b < end]
    if not starts or starts[0] > 0:
        starts.insert(0, Fraction(0))
    starts = sorted(set(starts))
    if not sigs:
        sigs = [TimeSignature(0, 4, 4)]
    bars = []
    for j, s in enumerate(starts):
        e = starts[j + 1] if j + 1 < len(starts) else end
        sig = [g for g in sigs if g.tick <= _tick(s)] or sigs[:1]
        bars.append((_tick(s), _tick(e) - _tick(s), sig[-1].numerator, sig[-1].denominator))
    return parts[::-1], sigs, bars  # kern lists the lowest voice first, music21 the highest


def _top_notes(notes: list[Note]) -> list[Note]:
    """Keep the highest of notes that start together (a chord within one voice)."""
    best: dict[int, Note] = {}
    for n in notes:
        if n.start not in best or n.pitch > best[n.start].pitch:
            best[n.start] = n
    return sorted(best.values(), key=lambda n: n.start)


def _read_source(path: Path, fast_kern: bool) -> tuple[list[list[Note]], list[TimeSignature], list[tuple[int, int, int, int]]]:
    if fast_kern and path.suffix.lower() == ".krn":
        try:
            return _kern_read(path.read_text(encoding="utf-8", errors="replace"))
        except _Unsupported:
            pass
    return _m21_read(path)


# --------------------------------------------------------------------------- pieces


def _key_name(notes: Iterable[Note]) -> str:
    """music21's key analysis (`Stream.analyze('key')`: Aarden-Essen weights) of duration-weighted pitch classes."""
    dist = [0.0] * 12
    for n in notes:
        dist[n.pitch % 12] += (n.end - n.start) / TICKS_PER_BEAT
    if not any(dist):
        return "C major"
    from music21 import stream  # music21 loads on first use (start-up speed)
    from music21.analysis import discrete  # music21 loads on first use (start-up speed)

    class _FromHistogram(discrete.AardenEssen):
        def _getPitchClassDistribution(self, streamObj):
            return list(dist)

    found = _FromHistogram().getSolution(stream.Stream())
    return f"{found.tonic.name.replace('-', 'b')} {found.mode}"


def _join_split_bars(bars: list[Bar]) -> list[Bar]:
    """One bar for two short measures of one meter that add up to a full bar (a bar split by a repeat sign)."""
    out: list[Bar] = []
    for bar in bars:
        prev = out[-1] if out else None
        if (
            prev is not None
            and len(out) > 1  # a pickup stays a pickup
            and prev.length < prev.full_length
            and bar.length < bar.full_length
            and (prev.numerator, prev.denominator) == (bar.numerator, bar.denominator)
            and prev.length + bar.length == prev.full_length
        ):
            out[-1] = Bar(prev.start, prev.full_length, prev.numerator, prev.denominator)
        else:
            out.append(bar)
    return out


def _grid_from_bars(score: Score, bars_ticks: Sequence[tuple[int, int, int, int]], pickup_ticks: int = 0) -> Grid:
    """The grid from the score's own measures (exact bar lines, pickup and short bars included).

    Without measures, or with measures that do not tile the music, `make_grid(score, pickup_ticks)`.
    """
    to_step = STEPS_PER_BEAT / score.ticks_per_beat
    bars: list[Bar] = []
    pos = 0
    for start, length, num, den in bars_ticks:
        s, e = round(start * to_step), round((start + length) * to_step)
        if e <= s:
            continue
        if s != pos:
            return make_grid(score, pickup_ticks)
        bars.append(Bar(s, e - s, num, den))
        pos = e
    if not bars:
        return make_grid(score, pickup_ticks)
    bars = _join_split_bars(bars)
    last = math.ceil(score.end_tick * to_step)
    while pos < last:  # notes past the last measure: more bars of the last meter
        tail = bars[-1]
        bars.append(Bar(pos, tail.full_length, tail.numerator, tail.denominator))
        pos += tail.full_length
    return Grid(score.ticks_per_beat, pos, bars)


def _quantize(parts: Sequence[Sequence[Note]], grid: Grid) -> np.ndarray:
    """Notes on the grid as `notes_to_roll` places them, shape=(n, 5) int32 (track, start, end, pitch, velocity)."""
    rows: list[tuple[int, int, int, int, int]] = []
    for t, notes in enumerate(parts):
        for n in sorted(notes, key=lambda n: (n.start, n.pitch)):
            start = grid.tick_to_step(n.start)
            if start >= grid.n_steps or not 0 <= n.pitch < 128:
                continue
            end = min(grid.n_steps, max(start + 1, grid.tick_to_step(n.end)))
            rows.append((t, max(0, start), end, n.pitch, max(1, min(127, n.velocity))))
    return np.array(rows, np.int32).reshape(-1, 5)


def _make_piece(
    pid: str,
    source: str,
    genre: str,
    group: str,
    spec: Sequence[tuple[str, int, bool]],
    parts: list[list[Note]],
    sigs: list[TimeSignature],
    bars_ticks: Sequence[tuple[int, int, int, int]],
    pickup_ticks: int = 0,
) -> Piece:
    sigs = sorted(sigs, key=lambda s: s.tick) or [TimeSignature(0, 4, 4)]
    if sigs[0].tick > 0:
        sigs.insert(0, TimeSignature(0, sigs[0].numerator, sigs[0].denominator))
    parts = [skyline(parts[0]), *parts[1:]]
    tracks = [Track(name, program, drum, 9 if drum else 0, notes) for (name, program, drum), notes in zip(spec, parts, strict=True)]
    score = Score(TICKS_PER_BEAT, tracks, time_signatures=sigs)
    grid = _grid_from_bars(score, bars_ticks, pickup_ticks)
    pitched = [n for track in tracks if not track.is_drum for n in track.notes]
    return Piece(
        id=pid,
        source=source,
        genre=genre,
        grid=grid,
        track_names=tuple(s[0] for s in spec),
        programs=tuple(s[1] for s in spec),
        drums=tuple(s[2] for s in spec),
        notes=_quantize(parts, grid),
        key=_key_name(pitched),
        meter=f"{sigs[0].numerator}/{sigs[0].denominator}",
        n_bars=len(grid.bars),
        group=group or pid,
    )


def _mean_pitch(notes: Sequence[Note]) -> float:
    return float(np.mean([n.pitch for n in notes])) if notes else float("-inf")


@functools.cache
def _chorale_titles() -> dict[str, str]:
    from music21.corpus import chorales  # music21 loads on first use (start-up speed)

    return {bwv: entry["title"] for bwv, entry in chorales.ChoraleListRKBWV().byBWV.items()}


def _group(genre: str, pid: str, path: Path, related: bool) -> str:
    """Pieces of one group share a split: one chorale tune, one Palestrina mass; otherwise the piece itself."""
    if not related:
        return pid
    if genre == "chorale":
        bwv = pid.removeprefix("chorale/bwv")
        title = _chorale_titles().get(bwv) or _chorale_titles().get(bwv.split("-")[0])
        return f"chorale tune: {title}" if title else f"chorale/bwv{bwv.split('-')[0]}"
    if genre == "renaissance" and path.suffix.lower() == ".krn":
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("!!!OPR:"):
                    return f"mass: {line.split(':', 1)[1].strip()}"
                if not line.startswith("!"):
                    break
    return pid


def genre_reduction(genre: str, reduction: str | None = None) -> str:
    """`reduction` when given, else the genre's `GENRE_REDUCTION` (``highest`` for a genre not listed)."""
    return reduction or GENRE_REDUCTION.get(genre, "highest")


def _corpus_piece(genre: str, pid: str, source: str, path: Path, fast_kern: bool, related: bool, reduction: str = "highest") -> Piece:
    parts, sigs, bars = _read_source(path, fast_kern)
    if genre in ("chorale", "quartet"):
        if len(parts) != 4:
            need = "Soprano, Alto, Tenor, Bass" if genre == "chorale" else "two violins, viola, cello"
            raise _Skip(f"{len(parts)} parts (needs exactly 4: {need})")
        chosen = parts
    else:
        voices = [p for p in parts if p]
        if len(voices) < 4:
            raise _Skip(f"{len(voices)} voices (needs at least 4)")
        chosen = reduce_voices(sorted(voices, key=lambda p: (-_mean_pitch(p), -len(p))), reduction)
    if not all(chosen):
        raise _Skip("a part has no notes")
    return _make_piece(pid, source, genre, _group(genre, pid, path, related), GENRE_TRACKS[genre], chosen, sigs, bars)


def folder_role(track: Track) -> str | None:
    """The accompaniment role of a MIDI track by its General MIDI program family (None: left out)."""
    if track.is_drum:
        return "Drums"
    program = track.program
    if 32 <= program <= 39:
        return "Bass"
    if 24 <= program <= 31:
        return "Guitar"
    if 0 <= program <= 23:
        return "Piano"
    if 40 <= program <= 55 or 88 <= program <= 95:
        return "Strings"
    return None


def _folder_piece(pid: str, source: str, path: Path) -> tuple[Piece, list[str]]:

    parsed = read_midi(path)  # InputError: the caller skips the file
    score = parsed.score
    if score.ticks_per_beat != TICKS_PER_BEAT:  # one resolution for every piece
        scale = TICKS_PER_BEAT / score.ticks_per_beat

        def rescale(tick: int) -> int:
            return round(tick * scale)

        score = Score(
            TICKS_PER_BEAT,
            [
                Track(
                    t.name,
                    t.program,
                    t.is_drum,
                    t.channel,
                    [Note(rescale(n.start), max(rescale(n.start) + 1, rescale(n.end)), n.pitch, n.velocity) for n in t.notes],
                )
                for t in score.tracks
            ],
            time_signatures=[TimeSignature(rescale(s.tick), s.numerator, s.denominator) for s in score.time_signatures],
        )
    choice = extract_melody(score)
    roles: dict[str, list[Note]] = {name: [] for name, _p, _d in FOLDER_ROLES}
    left_out = []
    for i, track in enumerate(score.tracks):
        if i == choice.source_index:
            continue
        role = folder_role(track)
        if role is None:
            left_out.append(f"{track.name!r} (program {track.program})")
        else:
            roles[role] += track.notes
    notes_melody = choice.track.notes
    spec = [("Melody", choice.track.program, False), *FOLDER_ROLES]
    parts = [notes_melody, *(roles[name] for name, _p, _d in FOLDER_ROLES)]
    pickup = estimate_pickup(notes_melody, score)
    sigs = list(score.time_signatures)
    piece = _make_piece(pid, source, "folder", pid, spec, parts, sigs, [], pickup)
    notes = [*parsed.warnings, *choice.warnings]
    if left_out:
        notes.append(f"left out tracks of no accompaniment role: {', '.join(left_out)}")
    return piece, notes


# --------------------------------------------------------------------------- building


def _build_one(task: tuple[str, str, str, str, bool, bool, str]) -> tuple[str, Piece | None, str]:
    """Worker: one source to (source, piece or None, note). Never raises for a bad file."""
    genre, pid, source, path_str, fast_kern, related, reduction = task
    path = Path(path_str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if genre.startswith("folder:"):
                piece, notes = _folder_piece(pid, source, path)
                return source, piece, "; ".join(notes)
            return source, _corpus_piece(genre, pid, source, path, fast_kern, related, reduction), ""
        except (_Skip, InputError) as exc:
            return source, None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a file the parser cannot read is skipped and reported
            return source, None, f"failed to parse: {type(exc).__name__}: {exc}"


def _fingerprint(genre: str, sources: Sequence[tuple[str, str, Path]]) -> str:
    """What a folder's files are (names, sizes, times); corpus files are fixed by the music21 version."""
    if not genre.startswith("folder:"):
        return ""
    h = hashlib.sha256()
    for _pid, source, path in sources:
        st = path.stat()
        h.update(f"{source}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_key(config: DatasetConfig, fingerprint: str) -> tuple[str, dict[str, Any]]:
    genre = config.genre
    if genre.startswith("folder:"):
        genre = "folder:" + str(Path(genre.removeprefix("folder:")).expanduser().resolve())
    identity = {
        "format": DATA_FORMAT_VERSION,
        "genre": genre,
        "held_out_fraction": config.held_out_fraction,
        "seed": config.seed,
        "max_pieces": config.max_pieces,
        "group_related": config.group_related,
        "music21": metadata.version("music21"),
        "files": fingerprint,
    }
    if config.voice_reduction != "highest":  # only then: the caches built before the reduction existed stay valid
        identity["reduction"] = config.voice_reduction
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", genre.split(":", 1)[0] if ":" in genre else genre).strip("-")
    if genre.startswith("folder:"):
        slug += "-" + re.sub(r"[^A-Za-z0-9]+", "-", Path(genre.removeprefix("folder:")).name).strip("-")
    return f"{slug}-{digest}", identity


def pinned_split_file(genre: str, split_file: str | None, max_pieces: int | None) -> Path | None:
    """The split file in use (see `DatasetConfig.split_file`): None for the seeded draw."""

    if split_file is not None:
        return Path(split_file).expanduser() if split_file else None
    if max_pieces is not None or genre.startswith("folder:"):
        return None
    path = split_path(genre)
    return path if path.is_file() else None


def apply_split(
    pieces: Sequence[Piece], computed: tuple[Sequence[str], Sequence[str]], split_file: Path | None, add_unlisted: bool, genre: str
) -> tuple[list[Piece], list[Piece], list[str] | None, dict[str, Any]]:
    """(train pieces, held-out pieces, validation ids or None, facts) of `pieces`: by the pinned
    `split_file` when there is one (see `studio.training.splits.assign`; a warning counts unlisted and
    missing pieces), else by the `computed` (train ids, held-out ids) of the seeded draw."""

    by_id = {p.id: p for p in pieces}
    if split_file is None:
        return (
            [by_id[i] for i in computed[0]],
            [by_id[i] for i in computed[1]],
            None,
            {"how": "seeded draw (studio.training.splits.split_pieces)"},
        )
    pinned = read_split(split_file)
    got = assign(pinned, list(by_id), add_unlisted)
    message = got.warning(genre, add_unlisted)
    if message:
        warnings.warn(message, stacklevel=3)
        log.warning(message)
    train = sorted(got.train + got.validation)
    facts = {"how": "pinned", "file": str(split_file), "unlisted": len(got.unlisted), "missing": len(got.missing)}
    return [by_id[i] for i in train], [by_id[i] for i in got.held_out], got.validation, facts


def _parse_all(
    config: DatasetConfig, sources: list[tuple[str, str, Path]], progress: bool
) -> tuple[list[Piece], list[tuple[str, str]], list[tuple[str, str]]]:
    """Parse the sources (in parallel when worth it): pieces, skipped (source, reason), notes (source, note)."""
    from tqdm import tqdm  # only while building a data set

    tasks = [
        (config.genre, pid, source, str(path), config.fast_kern, config.group_related, config.voice_reduction)
        for pid, source, path in sources
    ]
    limit = config.max_pieces
    pieces: list[Piece] = []
    skipped: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    workers = max(1, config.workers)
    parallel = workers > 1 and len(tasks) > 16 and (limit is None or limit > 16)
    if limit is None:  # the biggest files first keep both workers busy to the end
        tasks.sort(key=lambda t: -Path(t[3]).stat().st_size)
    bar = tqdm(total=len(tasks) if limit is None else limit, desc=f"parsing {config.genre}", unit="piece", disable=not progress)

    def consume(results: Iterator[tuple[str, Piece | None, str]]) -> None:
        for source, piece, note in results:
            if piece is None:
                skipped.append((source, note))
                if limit is None:
                    bar.update(1)
            else:
                pieces.append(piece)
                bar.update(1)
                if note:
                    notes.append((source, note))
            if limit is not None and len(pieces) >= limit:
                return

    try:
        if parallel:
            # fork: no re-import of the caller's script (spawn needs an `if __name__ == "__main__"` guard
            # there); the workers only parse files. Where fork does not exist (Windows), spawn.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ctx.Pool(workers) as pool:
                if limit is None:
                    consume(pool.imap_unordered(_build_one, tasks, chunksize=1))
                else:
                    consume(pool.imap(_build_one, tasks, chunksize=2))
        else:
            consume(_build_one(t) for t in tasks)
    finally:
        bar.close()
    if limit is not None:  # the first `limit` pieces in source order, the same however the work was shared
        order = {source: i for i, (_pid, source, _path) in enumerate(sources)}
        pieces = sorted(pieces, key=lambda p: order[p.source])[:limit]
        last = max((order[p.source] for p in pieces), default=-1)
        skipped = [s for s in skipped if order[s[0]] < last]
    return sorted(pieces, key=lambda p: p.id), sorted(skipped), sorted(notes)


def _config_json(config: DatasetConfig) -> dict[str, Any]:
    out = asdict(config)
    out["cache_dir"] = str(config.cache_path)
    out["transpose"] = list(config.transpose)
    return out


def _save_cache(stem: Path, pieces: list[Piece], sidecar: dict[str, Any]) -> None:
    """Arrays to ``stem.npz`` (compressed, no objects) and metadata to ``stem.json``, each written atomically."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    counts = [len(p.notes) for p in pieces]
    bar_counts = [len(p.grid.bars) for p in pieces]
    arrays = {
        "notes": np.concatenate([p.notes for p in pieces]) if pieces else np.zeros((0, 5), np.int32),
        "note_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "bars": np.array([(b.start, b.length, b.numerator, b.denominator) for p in pieces for b in p.grid.bars], np.int32).reshape(-1, 4),
        "bar_offsets": np.concatenate([[0], np.cumsum(bar_counts)]).astype(np.int64),
        "n_steps": np.array([p.grid.n_steps for p in pieces], np.int64),
    }
    tmp = stem.with_name(stem.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    npz = stem.with_suffix(".npz")
    os.replace(tmp, npz)
    sidecar = dict(sidecar)
    sidecar["npz_sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    sidecar["pieces"] = [
        {
            "id": p.id,
            "source": p.source,
            "genre": p.genre,
            "group": p.group,
            "key": p.key,
            "meter": p.meter,
            "n_bars": p.n_bars,
            "tracks": [[n, g, d] for n, g, d in zip(p.track_names, p.programs, p.drums, strict=True)],
        }
        for p in pieces
    ]
    tmp.write_text(json.dumps(sidecar, indent=1, ensure_ascii=False))
    os.replace(tmp, stem.with_suffix(".json"))


def _load_cache(stem: Path, identity: dict[str, Any]) -> tuple[list[Piece], dict[str, Any]] | None:
    """Pieces and the sidecar of a cached build, or None when there is none or it does not match."""
    npz, side = stem.with_suffix(".npz"), stem.with_suffix(".json")
    if not (npz.is_file() and side.is_file()):
        return None
    try:
        meta = json.loads(side.read_text())
        if meta.get("identity") != identity or meta.get("npz_sha256") != hashlib.sha256(npz.read_bytes()).hexdigest():
            return None
        with np.load(npz, allow_pickle=False) as z:
            notes, note_off = z["notes"], z["note_offsets"]
            bars, bar_off, n_steps = z["bars"], z["bar_offsets"], z["n_steps"]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring the unreadable dataset cache %s (%s)", stem, exc)
        return None
    pieces = []
    bar_list = bars.tolist()
    for i, entry in enumerate(meta["pieces"]):
        grid = Grid(TICKS_PER_BEAT, int(n_steps[i]), [Bar(*b) for b in bar_list[bar_off[i] : bar_off[i + 1]]])
        tracks = entry["tracks"]
        pieces.append(
            Piece(
                id=entry["id"],
                source=entry["source"],
                genre=entry["genre"],
                grid=grid,
                track_names=tuple(t[0] for t in tracks),
                programs=tuple(int(t[1]) for t in tracks),
                drums=tuple(bool(t[2]) for t in tracks),
                notes=notes[note_off[i] : note_off[i + 1]],
                key=entry["key"],
                meter=entry["meter"],
                n_bars=int(entry["n_bars"]),
                group=entry["group"],
            )
        )
    return pieces, meta


def build_dataset(config: DatasetConfig, progress: bool = True, rebuild: bool = False) -> Dataset:
    """Build (or load from the cache) a genre's dataset, split by piece into `train` and `held_out`.

    Parameters
    ----------
    config : DatasetConfig
        Genre, split, cache folder, workers.
    progress : bool
        Show a tqdm progress bar while parsing (stderr).
    rebuild : bool
        Parse again even when a matching cache exists.

    Returns
    -------
    Dataset
        Pieces sorted by id in each split; ``info`` says whether it came from the cache, the build and
        load times, the music21 version and the cache files.
    """
    t0 = time.perf_counter()
    sources = list_sources(config.genre)
    stem_name, identity = _cache_key(config, _fingerprint(config.genre, sources))
    stem = config.cache_path / stem_name
    cached = None if rebuild else _load_cache(stem, identity)
    if cached is not None:
        pieces, meta = cached
        from_cache = True
    else:
        pieces, skipped, notes = _parse_all(config, sources, progress)
        train_ids, held_ids = split_pieces([p.id for p in pieces], [p.group for p in pieces], config.held_out_fraction, config.seed)
        meta = {
            "identity": identity,
            "config": _config_json(config),
            "music21": identity["music21"],
            "format": DATA_FORMAT_VERSION,
            "split": {"train": train_ids, "held_out": held_ids},
            "skipped": [{"source": s, "reason": r} for s, r in skipped],
            "notes": [{"source": s, "note": n} for s, n in notes],
            "sources": len(sources),
            "build_seconds": round(time.perf_counter() - t0, 2),
        }
        _save_cache(stem, pieces, meta)
        from_cache = False
    computed = (meta["split"]["train"], meta["split"]["held_out"])
    train, held, validation, split_facts = apply_split(pieces, computed, config.pinned_split, config.add_unlisted, config.genre)
    info = {
        "split": split_facts,
        "from_cache": from_cache,
        "seconds": round(time.perf_counter() - t0, 3),
        "build_seconds": meta["build_seconds"],
        "music21": meta["music21"],
        "sources": meta["sources"],
        "cache": str(stem.with_suffix(".npz")),
        "notes": meta.get("notes", []),
    }
    skipped_list = [(s["source"], s["reason"]) for s in meta["skipped"]]
    if progress:
        how = "loaded from the cache" if from_cache else f"built in {meta['build_seconds']:.0f} s"
        print(
            f"{config.genre}: {len(train)} training and {len(held)} held-out pieces ({how}); "
            f"{len(skipped_list)} of {meta['sources']} files skipped (Dataset.skipped says why)",
            file=sys.stderr,
        )
    return Dataset(config, train, held, skipped_list, info, validation)


def read_pieces(
    genre: str, ids: Sequence[str], fast_kern: bool = True, group_related: bool = True, reduction: str | None = None
) -> list[Piece]:
    """The pieces `ids` of a genre, each parsed alone as a build parses it (no cache, no split): a few
    held-out pieces in a second where a whole build takes a minute (`studio.training.evaluate`'s
    ``pieces``). In the order of `ids`; an id the genre does not have, or whose file makes no piece,
    is an `InputError` that says why. `reduction`: as `DatasetConfig.reduction`."""
    sources = {pid: (source, path) for pid, source, path in list_sources(genre)}
    pieces = []
    for pid in ids:
        if pid not in sources:
            raise InputError(f"no piece '{pid}' in the {genre} data: piece ids are listed in models/checkpoints/splits/")
        source, path = sources[pid]
        _source, piece, note = _build_one((genre, pid, source, str(path), fast_kern, group_related, genre_reduction(genre, reduction)))
        if piece is None:
            raise InputError(f"the piece '{pid}' ({source}) makes no {genre} piece: {note}")
        pieces.append(piece)
    return pieces


def load_cached_dataset(npz: str | Path, progress: bool = False) -> Dataset:
    """A dataset straight from a cache file (``<genre>-<digest>.npz`` and its ``.json``) that
    `build_dataset` wrote, with the split recorded in it: for a training machine without music21
    (build on one machine, copy the two files, train on another). The file's checksum is checked."""
    npz = Path(npz).expanduser()
    stem = npz.with_suffix("")
    try:
        meta = json.loads(stem.with_suffix(".json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the dataset cache {npz}: {exc}") from None
    loaded = _load_cache(stem, meta.get("identity", {}))
    if loaded is None:
        raise InputError(f"the dataset cache {npz} is damaged or incomplete: build it again with `build_dataset`")
    pieces, meta = loaded
    by_id = {p.id: p for p in pieces}
    genre = meta["identity"]["genre"]
    config = DatasetConfig(
        genre if genre in CORPUS_GENRES or genre.startswith("folder:") else "chorale",
        **{k: v for k, v in meta["config"].items() if k in ("held_out_fraction", "seed", "max_pieces", "group_related")},
    )
    info = {
        "from_cache": True,
        "cache": str(npz),
        "sources": meta.get("sources"),
        "build_seconds": meta.get("build_seconds"),
        "music21": meta.get("music21"),
    }
    skipped = [(x["source"], x["reason"]) for x in meta.get("skipped", [])]
    dataset = Dataset(config, [by_id[i] for i in meta["split"]["train"]], [by_id[i] for i in meta["split"]["held_out"]], skipped, info)
    if progress:
        print(f"{genre}: {len(dataset.train)} training and {len(dataset.held_out)} held-out pieces from {npz}", file=sys.stderr)
    return dataset


# --------------------------------------------------------------------------- windows


def _units(grid: Grid, steps_per_bar: int) -> list[int]:
    """Start steps of the window bars of a grid: full bars of `steps_per_bar` steps, or of k times that
    when the bar's beats split evenly into k (a 4/2 bar is two 2/2 halves)."""
    starts = []
    for bar in grid.bars:
        if bar.length != bar.full_length or bar.length % steps_per_bar:
            continue
        k = bar.length // steps_per_bar
        if bar.numerator % k:
            continue
        starts += [bar.start + j * steps_per_bar for j in range(k)]
    return starts


def window_index(
    pieces: Sequence[Piece],
    bars: int = 4,
    steps_per_bar: int = 16,
    hop_bars: int = 1,
    require_melody: bool = True,
) -> np.ndarray:
    """Where the windows of `windows` are, shape=(N, 2) int64: piece index in `pieces`, start step.

    A window is `bars` consecutive window bars (see `windows`), starting every `hop_bars` bars of a
    run of consecutive ones; with `require_melody` only windows where the melody sounds.
    """
    if bars < 1 or steps_per_bar < 1 or hop_bars < 1:
        raise ValueError("bars, steps_per_bar and hop_bars must be positive")
    rows: list[tuple[int, int]] = []
    length = bars * steps_per_bar
    for i, piece in enumerate(pieces):
        units = _units(piece.grid, steps_per_bar)
        if len(units) < bars:
            continue
        melody = np.zeros(piece.n_steps + 1, np.int64)
        mel = piece.notes[piece.notes[:, 0] == 0]
        np.add.at(melody, mel[:, 1], 1)
        np.add.at(melody, mel[:, 2], -1)
        busy = np.concatenate([[0], np.cumsum(np.cumsum(melody)[:-1] > 0)])  # busy[s] = melody steps before s
        run_start = 0
        for j in range(1, len(units) + 1):
            if j == len(units) or units[j] != units[j - 1] + steps_per_bar:
                run = units[run_start:j]
                for k in range(0, len(run) - bars + 1, hop_bars):
                    start = run[k]
                    if not require_melody or busy[start + length] > busy[start]:
                        rows.append((i, start))
                run_start = j
    return np.array(rows, np.int64).reshape(-1, 2)


def _cells(piece: Piece) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sounding (step, track, pitch) of a piece, sorted by step."""
    notes = piece.notes.astype(np.int64)
    lengths = notes[:, 2] - notes[:, 1]
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    step = np.repeat(notes[:, 1], lengths) + np.arange(int(lengths.sum())) - first
    order = np.argsort(step, kind="stable")
    return step[order], np.repeat(notes[:, 0], lengths)[order], np.repeat(notes[:, 3], lengths)[order]


def _fold(pitches: np.ndarray) -> np.ndarray:
    """Move pitches by octaves into 24..107."""
    out = pitches.copy()
    low = out < MODEL_PITCH_LOW
    out[low] += 12 * ((MODEL_PITCH_LOW - out[low] + 11) // 12)
    high = out > MODEL_PITCH_HIGH
    out[high] -= 12 * ((out[high] - MODEL_PITCH_HIGH + 11) // 12)
    return out


def windows(
    pieces: Sequence[Piece],
    bars: int = 4,
    steps_per_bar: int = 16,
    hop_bars: int = 1,
    transpose: int | tuple[int, int] | None = None,
    rng: np.random.Generator | None = None,
    *,
    index: np.ndarray | None = None,
    return_index: bool = False,
    require_melody: bool = True,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fixed-size training windows, shape=(N, n_tracks, bars * steps_per_bar, 84) bool.

    Pitches 24..107 (index 0 = MIDI 24), track 0 the melody, a True where a track sounds. Windows
    take only full bars of exactly `steps_per_bar` steps (16: 4/4 and 2/2), or of a multiple whose
    beats split evenly (a 4/2 bar is two 2/2 window bars); pickups, short bars and bars of other
    lengths (3/4, 6/8, 3/2, 2/4 for 16 steps) are skipped, and so are pieces with none. Windows with
    a silent melody are left out (`require_melody`).

    Parameters
    ----------
    pieces : sequence of Piece
        All with the same number of tracks.
    transpose : int, (low, high) or None
        Semitones: one shift for every window, a random shift per window drawn from the inclusive
        range with `rng`, or none. All pitched tracks of a window move together (drums never);
        notes that leave 24..107 move by octaves. For training windows only.
    rng : numpy Generator, optional
        For the random shifts (default: a fresh unseeded one; pass a seeded one to repeat a run).
    index : array (N, 2), optional
        Rows of `window_index` to build (a batch); default: all of them.
    return_index : bool
        Also return which piece each window came from: int64 (N, 3) rows of piece index in
        `pieces`, start step, semitone shift (``pieces[i].id`` names it).

    Notes
    -----
    Every window of the 1,318 Palestrina movements at once is about 2.6 GB; a trainer can draw
    batches of `window_index` rows instead.
    """
    if index is None:
        index = window_index(pieces, bars, steps_per_bar, hop_bars, require_melody)
    index = np.asarray(index, np.int64).reshape(-1, 2)
    n = len(index)
    if transpose is None:
        shifts = np.zeros(n, np.int64)
    elif isinstance(transpose, (int, np.integer)):
        shifts = np.full(n, int(transpose), np.int64)
    else:
        low, high = transpose
        shifts = (rng or np.random.default_rng()).integers(low, high + 1, size=n).astype(np.int64)
    n_tracks = {pieces[i].n_tracks for i in np.unique(index[:, 0]).tolist()}
    if len(n_tracks) > 1:
        raise ValueError(f"pieces with different numbers of tracks ({sorted(n_tracks)}) cannot share windows")
    length = bars * steps_per_bar
    width = n_tracks.pop() if n_tracks else (pieces[0].n_tracks if pieces else 0)
    out = np.zeros((n, width, length, N_MODEL_PITCHES), bool)
    for piece_i in np.unique(index[:, 0]).tolist():
        piece = pieces[piece_i]
        step, track, pitch = _cells(piece)
        drum = np.array(piece.drums, bool)[track]
        for row in np.flatnonzero(index[:, 0] == piece_i).tolist():
            start = int(index[row, 1])
            lo, hi = np.searchsorted(step, [start, start + length]).tolist()
            p = _fold(np.where(drum[lo:hi], pitch[lo:hi], pitch[lo:hi] + shifts[row]))
            out[row, track[lo:hi], step[lo:hi] - start, p - MODEL_PITCH_LOW] = True
    if return_index:
        return out, np.column_stack([index, shifts])
    return out


# --------------------------------------------------------------------------- statistics


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


_TRACK_METRICS = TRACK_METRICS


def _piece_metrics(piece: Piece) -> dict[str, Any]:
    tracks = piece.tracks
    return piece_metrics(tracks[0], tracks[1:], piece.grid)


def _split_stats(pieces: Sequence[Piece], bars: int, steps_per_bar: int) -> dict[str, Any]:
    per_piece = [_piece_metrics(p) for p in pieces]
    names = list(dict.fromkeys(name for m in per_piece for name in m["tracks"]))
    return {
        "pieces": len(pieces),
        "bars": int(sum(p.n_bars for p in pieces)),
        "windows": len(window_index(pieces, bars, steps_per_bar)),
        **{name: _mean(m[name] for m in per_piece) for name in ("in_key_rate", "consonance", *_TRACK_METRICS, "accompaniment_polyphony")},
        "tracks": {
            name: {metric: _mean(m["tracks"][name][metric] for m in per_piece if name in m["tracks"]) for metric in _TRACK_METRICS}
            for name in names
        },
    }


def dataset_stats(dataset: Dataset, bars: int = 4, steps_per_bar: int = 16) -> dict[str, Any]:
    """Reference values of the real music, per split: the numbers models are compared with.

    For ``train`` and ``held_out``: pieces, bars, windows of `bars` bars of `steps_per_bar` steps, and
    `studio.core.metrics` of the real accompaniment averaged over pieces: ``in_key_rate`` (key from the
    melody), ``consonance`` (melody onsets against the accompaniment), and the per-track
    ``empty_bar_rate``, ``used_pitch_classes``, ``qualified_note_rate`` and ``polyphony`` averaged
    over a piece's accompaniment tracks that have notes (also per track name under ``tracks``), and
    ``accompaniment_polyphony``: the polyphony of all pitched accompaniment tracks heard together
    (per-voice polyphony is 0 for the corpora, whose voices are one note at a time).
    A metric with nothing to measure is nan.
    """
    return {
        "genre": dataset.config.genre,
        "train": _split_stats(dataset.train, bars, steps_per_bar),
        "held_out": _split_stats(dataset.held_out, bars, steps_per_bar),
    }

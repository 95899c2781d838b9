"""Pinned splits: which pieces of a genre train, choose the checkpoint (validation) or are held out.

Each genre's membership is a committed list of piece identifiers,
``models/checkpoints/splits/<genre>.json``::

    {"genre": "chorale", "how": "...", "train": [ids], "validation": [ids], "held_out": [ids]}

made once (``python -m studio.training.make_splits GENRE --write``) from the seeded split of `studio.training.splits.split_pieces`
(held out) and `validation_ids` (validation: training pieces that choose the checkpoint, never
trained on). Training and evaluation read the lists (`assign`), so adding or dropping one file, or
a music21 upgrade that parses one file differently, moves no piece between splits. A piece in no
list goes nowhere unless asked (``add_unlisted``: to training), never into held-out or validation;
a listed piece that no longer parses is left out; both are counted in a warning.

A folder of MIDI files (``train --data PATH``) gets its split computed on its first training run
and written beside the checkpoint (``splits/<checkpoint name>.json``); later runs read it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.config import REPO_ROOT
from studio.core.errors import InputError

__all__ = [
    "SPLITS_DIR",
    "VALIDATION_CAP",
    "VALIDATION_FRACTION",
    "VALIDATION_SEED",
    "Assignment",
    "Split",
    "assign",
    "make_split",
    "read_split",
    "split_path",
    "validation_ids",
    "write_split",
]

SPLITS_DIR = REPO_ROOT / "models" / "checkpoints" / "splits"
VALIDATION_FRACTION = 0.1  # share of the training pieces kept aside to choose the checkpoint
VALIDATION_CAP = 40  # at most this many validation pieces (whole groups)
VALIDATION_SEED = 1  # the validation draw's seed (the held-out draw uses the dataset's, 0)


@dataclass(frozen=True)
class Split:
    """A genre's pinned membership: piece ids (sorted) per side, and how the lists were made."""

    genre: str
    how: str
    train: tuple[str, ...]
    validation: tuple[str, ...]
    held_out: tuple[str, ...]

    def __post_init__(self) -> None:
        sides = (set(self.train), set(self.validation), set(self.held_out))
        if sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]:
            raise ValueError(f"split of {self.genre!r}: a piece is listed on two sides")

    def to_json(self) -> dict[str, Any]:
        return {
            "genre": self.genre,
            "how": self.how,
            "train": list(self.train),
            "validation": list(self.validation),
            "held_out": list(self.held_out),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Split:
        return cls(raw["genre"], raw.get("how", ""), tuple(raw["train"]), tuple(raw.get("validation", ())), tuple(raw["held_out"]))


@dataclass
class Assignment:
    """Ids of the pieces at hand per side of a `Split` (each sorted), the `unlisted` ones (in no list)
    and the `missing` ones (listed, not at hand)."""

    train: list[str]
    validation: list[str]
    held_out: list[str]
    unlisted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def warning(self, genre: str, added: bool) -> str | None:
        """What a user should know, or None when the pieces are exactly the listed ones."""
        parts = []
        if self.unlisted:
            where = "added to training (add_unlisted)" if added else "left out (ask for add_unlisted to train on them)"
            parts.append(f"{len(self.unlisted)} piece(s) are in no list of the pinned {genre} split: {where}; never held out")
        if self.missing:
            parts.append(f"{len(self.missing)} listed piece(s) of the pinned {genre} split are not in the data (skipped or gone)")
        return "; ".join(parts) or None


def validation_ids(
    ids: Sequence[str], groups: Sequence[str], fraction: float = VALIDATION_FRACTION, cap: int = VALIDATION_CAP, seed: int = VALIDATION_SEED
) -> list[str]:
    """Validation pieces among training `ids`: whole groups of a seeded `split_pieces` draw, in order,
    up to `cap` pieces (a group that would pass it is skipped); none for ``fraction <= 0`` or fewer than 4 pieces."""
    if fraction <= 0 or len(ids) < 4:
        return []
    group = dict(zip(ids, groups, strict=True))
    _fit, drawn = split_pieces(list(ids), [group[i] for i in ids], fraction, seed)
    kept: list[str] = []
    for g in dict.fromkeys(group[i] for i in drawn):
        members = [i for i in drawn if group[i] == g]
        if kept and len(kept) + len(members) > cap:
            continue
        kept += members
    return kept


def make_split(
    genre: str,
    ids: Sequence[str],
    groups: Sequence[str],
    how: str,
    held_out_fraction: float = 0.1,
    seed: int = 0,
    validation: float = VALIDATION_FRACTION,
    cap: int = VALIDATION_CAP,
    held_out: Sequence[str] | None = None,
) -> Split:
    """A `Split` of `ids` (groups kept together): held out by `split_pieces` at `seed` (or the given
    `held_out` ids), then validation among the rest by `validation_ids`."""
    group = {i: g or i for i, g in zip(ids, groups, strict=True)}
    if held_out is None:
        rest, held = split_pieces(list(ids), [group[i] for i in ids], held_out_fraction, seed)
    else:
        held_set = set(held_out)
        held = sorted(i for i in ids if i in held_set)
        rest = sorted(i for i in ids if i not in held_set)
    val = validation_ids(rest, [group[i] for i in rest], validation, cap)
    val_set = set(val)
    return Split(genre, how, tuple(i for i in rest if i not in val_set), tuple(sorted(val)), tuple(held))


def assign(split: Split, ids: Sequence[str], add_unlisted: bool = False) -> Assignment:
    """Where each of `ids` goes under `split` (see `Assignment`); unlisted ones train only when `add_unlisted`."""
    at_hand = set(ids)
    listed = set(split.train) | set(split.validation) | set(split.held_out)
    unlisted = sorted(at_hand - listed)
    train = sorted(at_hand & set(split.train)) + (unlisted if add_unlisted else [])
    return Assignment(
        sorted(train), sorted(at_hand & set(split.validation)), sorted(at_hand & set(split.held_out)), unlisted, sorted(listed - at_hand)
    )


def split_path(genre: str) -> Path:
    """The committed split file of a corpus or melody genre."""
    return SPLITS_DIR / f"{genre}.json"


def read_split(path: str | Path) -> Split:
    """A split file (see the module docstring)."""

    try:
        return Split.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read the split file {path}: {exc}") from None


def write_split(split: Split, path: str | Path) -> Path:
    """Write `split` as JSON (one id per line, so a diff shows each moved piece)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.to_json(), indent=1, ensure_ascii=False) + "\n")
    return path


def split_pieces(ids: Sequence[str], groups: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train ids, held-out ids): whole groups are held out, chosen by a seeded shuffle of the sorted groups.

    Groups are added until the held-out pieces reach ``round(fraction * len(ids))`` (at least one
    group when ``fraction > 0`` and there are two or more groups). Deterministic for a seed.
    """
    members: dict[str, list[str]] = {}
    for pid, group in sorted(zip(ids, groups, strict=True)):
        members.setdefault(group, []).append(pid)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    target = round(fraction * len(ids))
    if fraction > 0 and len(order) >= 2:
        target = max(target, 1)
    held: list[str] = []
    for group in order:
        if len(held) >= target or len(held) + len(members[group]) > len(ids) - 1:
            break
        held += members[group]
    held_set = set(held)
    return sorted(i for i in ids if i not in held_set), sorted(held)

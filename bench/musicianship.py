"""What a musician hears, every accompanist side by side with real music (issue 21).

On the first N held-out chorales of the pinned split (``models/checkpoints/splits/chorale.json``; soprano
in, Bach's alto/tenor/bass as the real column) and on the first K unseen folk tunes
(`studio.training.tunes`, no real accompaniment), seed 0, default parameters: the figures of
`studio.training.musicianship` (rows) for real music, `rules` and each accompanist (columns). Every
voice is judged against the SATB ranges (this is the chorale task), a quartet or renaissance model's
voices by their place (Violin II as the alto, ...).

Usage: python -m bench.musicianship [--n 10] [--tunes 5] [--models rules,gan-chorale,...] [--markdown] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from studio.serving.registry import ModelRegistry, family_writes
from studio.training.data import DatasetConfig, build_dataset
from studio.training.evaluate import _model_melody
from studio.training.musicianship import compare_sets, format_table, generated_rates, genre_ranges, record
from studio.training.tunes import corpus_tunes, tune_roll


def accompanists(registry: ModelRegistry) -> list[str]:
    """`rules` first, then every shipped model that writes an accompaniment, by name."""
    names = [c.name for c in registry.cards() if family_writes(c.family) == "accompaniment"]
    return sorted(names, key=lambda n: (n != "rules", n))


def measure(
    models: list[str], n: int, tunes: int, seed: int = 0, split: str = "held_out", params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """{"held_out": {column: figures}, "unseen": {column: figures}, ...} (see the module docstring);
    with `split` "validation" the pieces are the split's validation chorales (for choosing settings:
    the held-out ones are for reporting only); `params` go to every model that has them."""
    registry = ModelRegistry()
    dataset = build_dataset(DatasetConfig("chorale"), progress=False)
    if split == "validation":
        by_id = {p.id: p for p in dataset.train}
        held = [by_id[i] for i in dataset.validation or []][:n]
    else:
        held = dataset.held_out[:n]
    reference = genre_ranges("chorale", dataset.train)
    pieces = [(p.id, p.tracks, p.grid) for p in held]
    real = [record(tracks[0], tracks[1:], reference) for _id, tracks, _grid in pieces]
    melodies = [tune_roll(t.score) for t in corpus_tunes(tunes)] if tunes else []
    out: dict[str, Any] = {
        "split": split,
        "params": params or {},
        "pieces": [pid for pid, _t, _g in pieces],
        "tunes": [t.title for t in corpus_tunes(tunes)] if tunes else [],
        "seed": seed,
        "held_out": {},
        "unseen": {},
        "seconds": {},
    }
    for name in models:
        t0 = time.perf_counter()
        known = {p.name for p in registry.card(name).params}
        asked = {k: v for k, v in (params or {}).items() if k in known}
        generated = [
            record(tracks[0], registry.generate(name, _model_melody(tracks[0]), grid, asked, seed, limit_length=False), reference)
            for _id, tracks, grid in pieces
        ]
        compared = compare_sets(real, generated)
        out["held_out"].setdefault("real", compared["real"])
        out["held_out"][name] = dict(compared["generated"], classifier_accuracy=compared["classifier_accuracy"])
        heard = [
            record(melody, registry.generate(name, melody, grid, asked, seed, limit_length=False), reference) for melody, grid in melodies
        ]
        out["unseen"][name] = generated_rates(heard)
        out["seconds"][name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {out['seconds'][name]} s", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="held-out chorales (the first N of the pinned split)")
    parser.add_argument("--tunes", type=int, default=5, help="unseen folk tunes (the first K)")
    parser.add_argument("--models", default="", help="comma-separated; default: rules and every accompanist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("held_out", "validation"), default="held_out", help="which chorales of the pinned split")
    parser.add_argument("--params", default="{}", help="JSON parameters for every model that has them, e.g. '{\"guide\": 0}'")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m] or accompanists(ModelRegistry())
    result = measure(models, args.n, args.tunes, args.seed, args.split, json.loads(args.params))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    hist_keys = ("interval_histogram", "duration_histogram")
    held = {k: {f: v for f, v in col.items() if f not in hist_keys} for k, col in result["held_out"].items()}
    which = "held-out" if result["split"] == "held_out" else "validation"
    print(f"{len(result['pieces'])} {which} chorales of the pinned split, seed {result['seed']}, params {result['params']}:")
    print(", ".join(result["pieces"]))
    print(format_table(held, args.markdown))
    if result["tunes"]:
        print(f"\n{len(result['tunes'])} unseen folk tunes (no real accompaniment), seed {result['seed']}: {'; '.join(result['tunes'])}")
        print(format_table(result["unseen"], args.markdown))


if __name__ == "__main__":
    main()

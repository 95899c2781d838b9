"""How far the VAE's variations go, on its validation tunes only: the measurement behind `how_far`'s
default and maximum (docs/models/vae-folk.md).

Tunes: the ``validation`` list of ``models/checkpoints/splits/folk.json`` (kept out of training to
choose the checkpoint; never the held-out or the unseen tunes), read alone
(`studio.training.melodies.read_tunes`). Each is varied at every candidate `how_far` and seed
(`studio.training.variation_eval.vary_tune`, through the registry as the studio runs it). The rules,
written before the measurement:

- maximum: the largest candidate whose variations' mean in-key rate stays within 0.05 of the tunes'
  own (the margin `studio.training.evaluate` allows an accompaniment under the real music's);
- default: the smallest candidate, up to the maximum, that changes at least a fifth of the notes
  (a variation you hear as one, with most of the tune still there).

Usage: ``python -m bench.vae_how_far [--json] [--model vae-folk] [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from studio.serving.registry import default_registry
from studio.training.evaluate import TONAL_MARGIN
from studio.training.melodies import read_tunes
from studio.training.splits import read_split, split_path
from studio.training.variation_eval import variation_levels, vary_tune

CANDIDATES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
SEEDS = (0, 1, 2)
CHANGED_AT_LEAST = 0.2  # the default changes at least this share of the notes


def measure(model: str = "vae-folk", candidates: Sequence[float] = CANDIDATES, seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """Every candidate's figures over the validation tunes and seeds, and the two choices they make."""
    t0 = time.perf_counter()
    registry = default_registry()
    genre = registry.card(model).genre
    ids = read_split(split_path(genre)).validation
    tunes = read_tunes(ids)
    loaded = registry.get(model)  # the model itself: candidates past the card's maximum are measured too

    def generate(melody: Any, grid: Any, params: Any, seed: int) -> Any:
        with torch.inference_mode():
            return loaded.generate(melody, grid, params, seed)

    rows = [vary_tune(generate, p.tracks[0], p.grid, candidates, seed) for seed in seeds for p in tunes]
    levels = variation_levels(rows, candidates)
    own = round(statistics.fmean(r["input_in_key"] for r in rows if math.isfinite(r["input_in_key"])), 4)
    kept_in_key = [h for h in candidates if levels[f"{h:g}"]["in_key_rate"] >= own - TONAL_MARGIN]
    maximum = max(kept_in_key) if kept_in_key else None
    heard = [h for h in candidates if levels[f"{h:g}"]["notes_changed"] >= CHANGED_AT_LEAST and (maximum is None or h <= maximum)]
    return {
        "model": model,
        "tunes": len(tunes),
        "pieces": list(ids),
        "seeds": list(seeds),
        "input_in_key": own,
        "by_how_far": levels,
        "maximum": maximum,
        "default": min(heard) if heard else None,
        "rules": f"maximum: the largest candidate with in-key >= the tunes' own - {TONAL_MARGIN}; default: the smallest candidate "
        f"up to it with notes changed >= {CHANGED_AT_LEAST}",
        "seconds": round(time.perf_counter() - t0, 1),
        "how": f"python -m bench.vae_how_far --model {model}: the validation tunes of models/checkpoints/splits/{genre}.json, "
        f"each varied at how_far {', '.join(f'{h:g}' for h in candidates)} and seeds {', '.join(map(str, seeds))}; means over "
        "tunes and seeds (studio.training.variation_eval.vary_tune)",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vae-folk")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.model, seeds=args.seeds)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{report['model']}: {report['tunes']} validation tunes x seeds {report['seeds']} (the tunes in key {report['input_in_key']})")
    for level, row in report["by_how_far"].items():
        print(
            f"  how_far {level:>4s}: notes changed {row['notes_changed']:.3f}, distance {row['distance']:.4f}, in-key {row['in_key_rate']:.3f}"
        )
    print(f"maximum {report['maximum']}, default {report['default']} ({report['rules']}; {report['seconds']} s)", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

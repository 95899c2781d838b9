"""A shipped GAN's sampling defaults chosen again on its validation pieces only, as training chooses
them (`studio.training.train.tune_on_validation`): one parameter at a time in `models.gan.TUNABLE`'s
order (temperature, then steadiness, then variety), each value's validation score over the pieces accompanied at
seeds 0, 1, 2 (`studio.training.evaluate.validation_score`: the mean distance of the metrics from
the real accompaniments', in units of the acceptance bounds; lower is better), the lowest kept.

Pieces: the ``validation`` list of the genre's pinned split (``models/checkpoints/splits/<genre>.json``:
kept out of training to choose the checkpoint), read alone (`studio.training.data.read_pieces`);
never the held-out pieces. The card's other parameters keep their defaults. Nothing is written.

Usage: ``python -m bench.gan_defaults --model gan-renaissance [--json]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import torch

from models.base import family
from studio.serving.registry import default_registry
from studio.training.data import read_pieces
from studio.training.evaluate import real_summary, validation_score
from studio.training.splits import read_split, split_path
from studio.training.train import TUNING_SEEDS, tune_on_validation


def measure(model: str, progress: bool = True) -> dict[str, Any]:
    """The defaults chosen on the validation pieces, every value's score, and the shipped defaults' score."""
    t0 = time.perf_counter()
    registry = default_registry()
    card = registry.card(model)
    split = read_split(split_path(card.genre))
    pieces = read_pieces(card.genre, split.validation, reduction=card.training.get("reduction"))
    real = real_summary(pieces)
    loaded = registry.get(model)
    shipped = card.resolve_params({})
    with torch.inference_mode():
        params, tuned = tune_on_validation(loaded, family(card.family).TUNABLE, shipped, pieces, real, progress)
        shipped_score = round(validation_score(loaded, pieces, real, shipped, TUNING_SEEDS)[0], 4)
    return {
        "model": model,
        "pieces": len(pieces),
        "seeds": list(TUNING_SEEDS),
        "shipped": {"params": shipped, "score": shipped_score},
        "chosen": {k: params[k] for k in tuned},
        "tuned": tuned,
        "seconds": round(time.perf_counter() - t0, 1),
        "how": f"python -m bench.gan_defaults --model {model}: the {len(pieces)} validation pieces of "
        f"models/checkpoints/splits/{card.genre}.json, each accompanied at seeds {', '.join(map(str, TUNING_SEEDS))}; "
        "studio.training.train.tune_on_validation (temperature, then steadiness, then variety, each at the values chosen "
        "before it; lowest score kept)",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.model, progress=not args.json)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

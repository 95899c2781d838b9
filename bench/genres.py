"""Can a listener tell the GAN genres apart? The metrics of each shipped GAN's accompaniments beside
those of its genre's real music, (a) on its own held-out pieces (real vs generated, per genre) and
(b) on the same unseen folk tunes for every genre (so only the model differs).

Usage: python -m bench.genres [--json] [--unseen N] [--models gan-chorale,gan-renaissance,...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from studio.core.metrics import piece_metrics
from studio.serving.registry import ModelRegistry
from studio.training.evaluate import SUMMARY_METRICS, EvaluationConfig, evaluate
from studio.training.tunes import corpus_tunes, tune_roll

SHORT = {
    "in_key_rate": "in-key",
    "consonance": "consonance",
    "empty_bar_rate": "EB",
    "used_pitch_classes": "UPC",
    "qualified_note_rate": "QN",
    "polyphony": "polyphony/track",
    "accompaniment_polyphony": "polyphony (together)",
}


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def compare_genres(models: list[str], unseen: int = 100) -> dict[str, Any]:
    registry = ModelRegistry()
    out: dict[str, Any] = {"held_out": {}, "same_tunes": {}, "unseen_tunes": unseen}
    for name in models:
        report = evaluate(name, EvaluationConfig(unseen=0, copy_check=False), registry, progress=False)
        out["held_out"][name] = {
            "pieces": report["held_out"]["pieces"],
            "real": report["held_out"]["real"],
            "generated": report["held_out"]["generated"],
        }
    tunes = [tune_roll(t.score) for t in corpus_tunes(unseen)]
    for name in models:
        rows = [piece_metrics(melody, registry.generate(name, melody, grid, {}, 0, limit_length=False), grid) for melody, grid in tunes]
        out["same_tunes"][name] = {m: round(_mean(r[m] for r in rows), 4) for m in SUMMARY_METRICS}
    return out


def table(result: dict[str, Any]) -> str:
    """A Markdown table: per model, its genre's real held-out music, its accompaniment of the same
    melodies, and its accompaniment of the folk tunes every model got."""
    lines = ["| model | music | " + " | ".join(SHORT[m] for m in SUMMARY_METRICS) + " |", "|---|---|" + "---|" * len(SUMMARY_METRICS)]
    for name, held in result["held_out"].items():
        rows = [
            (f"real held-out ({held['pieces']} pieces)", held["real"]),
            ("generated for those melodies", held["generated"]),
            (f"generated for {result['unseen_tunes']} folk tunes", result["same_tunes"][name]),
        ]
        for label, values in rows:
            lines.append(f"| {name} | {label} | " + " | ".join(f"{values[m]:.2f}" for m in SUMMARY_METRICS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--unseen", type=int, default=100)
    parser.add_argument("--models", default="gan-chorale,gan-renaissance,gan-quartet")
    args = parser.parse_args(argv)
    result = compare_genres(args.models.split(","), args.unseen)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How often a voice model fills a third into a beat with a passing note, beside its genre's real voices
(issue 21: melodic intervals and note lengths), and the odds its card's passing notes are drawn with
(`studio.core.passing_notes`).

The first ``--pieces`` pieces of the genre's training list (never a validation or held-out piece) are
accompanied at the card's defaults, seed 0, with the card's passing notes switched off; in each
situation of a third place (the first note a beat long or longer, the melody starting a note under the
passing note or holding) the share filled is counted in the model's voices and in the real ones, and
the odds of filling one of the model's unfilled places are those that make its share the genre's:
``(genre - model) / (1 - model)``, 0 where the model fills more. ``--write`` stores them in the card
(``config.passing``); ``--compare`` then evaluates the card's validation pieces (`studio evaluate
--split validation`, no unseen tunes) without them and with them, at ``--seeds`` seeds, side by side;
``--after`` measures the filled shares again with the odds (fills that would cross a voice or move in
parallels are skipped, so the share comes out lower than the genre's where the model's places are
crowded).

    python -m bench.passing --model arcnn-chorale [--pieces 40] [--write] [--after] [--compare] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.restrikes import CHECKPOINTS, _card_with, training_takes, write_config

__all__ = ["compare", "compare_cards", "fill_odds", "measure"]


def _counts(melody: Any, voices: list[Any], grid: Any) -> np.ndarray:
    """Filled third places and all third places per situation, shape (2, 4), of `voices` under `melody`."""
    from studio.core.conditioning import meter_features, tokens_to_pitches, track_to_tokens
    from studio.core.passing_notes import passing_counts

    rows = [track_to_tokens(t) for t in (melody, *voices)]
    pitches = tokens_to_pitches(np.array([t for t, _ in rows]))
    onsets = np.array([o for _, o in rows])
    return passing_counts(pitches, onsets, onsets[0] & (pitches[0] >= 0), meter_features(grid)[:, 1] > 0)


def fill_odds(genre: tuple[float, ...], model: tuple[float, ...]) -> list[float]:
    """Per situation, the odds of filling one of the model's unfilled places so that its filled share
    becomes the genre's (0 where the model already fills as often or more)."""
    return [round(max(0.0, (g - m) / (1.0 - m)) if m < 1.0 else 0.0, 4) for g, m in zip(genre, model, strict=True)]


def measure(model: str, pieces: int = 40, odds: list[float] | None = None, source: Path = CHECKPOINTS) -> dict[str, Any]:
    """The genre's and the model's filled shares per situation on training pieces (the model with
    `odds`, or with none), and the odds that would bring the model's to the genre's."""
    from studio.core.passing_notes import SITUATIONS
    from studio.serving.batching import BatchConfig
    from studio.serving.registry import ModelRegistry

    real, generated, seen = np.zeros((2, 4)), np.zeros((2, 4)), 0
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(_card_with(model, Path(tmp), {"passing": odds or ()}, source), batching=BatchConfig(window_s=0))
        for piece, voices in training_takes(registry, model, pieces):
            tracks = piece.tracks
            real += _counts(tracks[0], tracks[1:], piece.grid)
            generated += _counts(tracks[0], voices, piece.grid)
            seen += 1
    genre_share = tuple(float(x) for x in real[0] / np.maximum(real[1], 1))
    model_share = tuple(float(x) for x in generated[0] / np.maximum(generated[1], 1))
    return {
        "model": model,
        "pieces": seen,
        "situations": list(SITUATIONS),
        "odds_used": list(odds or ()),
        "genre_share": [round(x, 4) for x in genre_share],
        "genre_places": [int(x) for x in real[1]],
        "model_share": [round(x, 4) for x in model_share],
        "model_places": [int(x) for x in generated[1]],
        "odds": fill_odds(genre_share, model_share),
    }


def compare(model: str, seeds: list[int], odds: list[float], source: Path = CHECKPOINTS) -> dict[str, dict[str, Any]]:
    """The shipped card's validation figures, and the `source` card's with passing-note `odds`, at each seed."""
    return compare_cards(model, seeds, {"passing": odds}, source)


def compare_cards(model: str, seeds: list[int], values: dict[str, Any], source: Path = CHECKPOINTS) -> dict[str, dict[str, Any]]:
    """The validation figures (no unseen tunes) of the shipped card (``without``) and of the `source`
    card with its config's keys set to `values` (``with``), at each seed, side by side."""
    from studio.serving.registry import ModelRegistry
    from studio.training.evaluate import EvaluationConfig, bound_gaps, evaluate

    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as without, tempfile.TemporaryDirectory() as with_odds:
        registries = (
            ("without", ModelRegistry(_card_with(model, Path(without), {}))),
            ("with", ModelRegistry(_card_with(model, Path(with_odds), values, source))),
        )
        for label, registry in registries:
            rows = []
            for seed in seeds:
                report = evaluate(
                    model, EvaluationConfig(split="validation", unseen=0, seed=seed, copy_check=False), registry, progress=False
                )
                table, heard = report["validation"], report["musicianship"]
                gaps = bound_gaps(table["generated"], table["real"])
                rows.append(
                    {
                        "seed": seed,
                        "validation_score": round(sum(gaps.values()) / len(gaps), 4),
                        "in_key_rate": table["generated"]["in_key_rate"],
                        "used_pitch_classes": table["generated"]["used_pitch_classes"],
                        **{
                            k: heard["generated"][k]
                            for k in ("repeated_notes", "interval_js", "duration_js", "parallel_fifths_octaves", "crossings_per_chord")
                        },
                        "classifier_accuracy": heard["classifier_accuracy"],
                        "bounds_missed": [k for k, row in heard.get("bounds", {}).items() if not row["ok"]],
                    }
                )
            out[label] = {"seeds": rows, "classifier_mean": round(float(np.mean([r["classifier_accuracy"] for r in rows])), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.passing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a voice model's card (arcnn-chorale)")
    parser.add_argument("--pieces", type=int, default=40, help="training pieces to measure on (default 40)")
    parser.add_argument("--write", action="store_true", help="store the odds in the card (config.passing)")
    parser.add_argument("--after", action="store_true", help="measure the filled shares again with the odds")
    parser.add_argument("--compare", action="store_true", help="then evaluate the validation pieces without and with them")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of --compare (default 0,1,2)")
    parser.add_argument(
        "--checkpoints", type=Path, default=CHECKPOINTS, help="the card to measure and give the odds to (default: the shipped one)"
    )
    args = parser.parse_args(argv)
    found = measure(args.model, args.pieces, source=args.checkpoints)
    print(json.dumps(found, indent=1))
    if args.write:
        write_config(args.model, "passing", found["odds"])
    if args.after:
        print(json.dumps(measure(args.model, args.pieces, found["odds"], args.checkpoints), indent=1))
    if args.compare:
        print(json.dumps(compare(args.model, [int(s) for s in args.seeds.split(",")], found["odds"], args.checkpoints), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

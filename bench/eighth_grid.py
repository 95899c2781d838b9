"""How often a voice model starts a note between the eighths where one of two notes could give the other
a sixteenth, beside its genre's real voices (issue 21: note lengths), and the share of those starts
its card moves onto the eighth (`studio.core.eighth_grid`).

The first ``--pieces`` pieces of the genre's training list (never a validation or held-out piece) are
accompanied at the card's defaults, seed 0, with the card's moves switched off; the share of the
accompanying voices' notes that are movable starts is counted in the model's voices and in the real
ones, and the share of the model's to move is the one that brings its share to the genre's:
``1 - genre / model``, 0 where the model has fewer. ``--write`` stores it in the card
(``config.snap``); ``--after`` measures the shares again with it; ``--compare`` evaluates the card's
validation pieces (`studio evaluate --split validation`, no unseen tunes) as shipped and with the
share (and the ``--checkpoints`` card's other settings), at ``--seeds`` seeds, side by side.

    python -m bench.eighth_grid --model arcnn-chorale [--pieces 40] [--checkpoints FOLDER] [--write] [--after] [--compare]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.passing import compare_cards
from bench.restrikes import CHECKPOINTS, _card_with, training_takes, write_config

__all__ = ["measure", "snap_share"]


def _counts(voices: list[Any]) -> np.ndarray:
    """Movable starts and notes of the accompanying `voices` (tracks)."""
    from studio.core.conditioning import tokens_to_pitches, track_to_tokens
    from studio.core.eighth_grid import movable_counts

    rows = [track_to_tokens(t) for t in voices]
    pitches = tokens_to_pitches(np.array([np.full(len(rows[0][0]), 0), *(t for t, _ in rows)]))
    onsets = np.array([np.zeros(len(rows[0][1]), bool), *(o for _, o in rows)])
    return movable_counts(pitches, onsets)


def snap_share(genre: float, model: float) -> float:
    """The share of the model's movable starts to move so that its share becomes the genre's."""
    return round(max(0.0, 1.0 - genre / model), 4) if model > 0 else 0.0


def measure(model: str, pieces: int = 40, share: float = 0.0, source: Path = CHECKPOINTS) -> dict[str, Any]:
    """The genre's and the model's (moving `share` of its starts) movable shares on training pieces."""
    from studio.serving.batching import BatchConfig
    from studio.serving.registry import ModelRegistry

    real, generated, seen = np.zeros(2), np.zeros(2), 0
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(_card_with(model, Path(tmp), {"snap": share}, source), batching=BatchConfig(window_s=0))
        for piece, voices in training_takes(registry, model, pieces):
            real += _counts(piece.tracks[1:])
            generated += _counts(voices)
            seen += 1
    genre_share, model_share = float(real[0] / real[1]), float(generated[0] / generated[1])
    return {
        "model": model,
        "pieces": seen,
        "share_used": share,
        "genre_share": round(genre_share, 4),
        "genre_notes": int(real[1]),
        "model_share": round(model_share, 4),
        "model_notes": int(generated[1]),
        "snap": snap_share(genre_share, model_share),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.eighth_grid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a voice model's card (arcnn-chorale)")
    parser.add_argument("--pieces", type=int, default=40, help="training pieces to measure on (default 40)")
    parser.add_argument("--write", action="store_true", help="store the share in the card (config.snap)")
    parser.add_argument("--after", action="store_true", help="measure the shares again with it")
    parser.add_argument("--compare", action="store_true", help="then evaluate the validation pieces as shipped and with it")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of --compare (default 0,1,2)")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS, help="the card to measure (default: the shipped one)")
    args = parser.parse_args(argv)
    found = measure(args.model, args.pieces, source=args.checkpoints)
    print(json.dumps(found, indent=1))
    if args.write:
        write_config(args.model, "snap", found["snap"])
    if args.after:
        print(json.dumps(measure(args.model, args.pieces, found["snap"], args.checkpoints), indent=1))
    if args.compare:
        seeds = [int(s) for s in args.seeds.split(",")]
        print(json.dumps(compare_cards(args.model, seeds, {"snap": found["snap"]}, args.checkpoints), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

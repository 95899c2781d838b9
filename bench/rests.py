"""How often a voice model's lower voices rest under the melody, beside its genre's real voices (issue 21:
note lengths and empty bars), and the costs against a rest that bring each voice's share to the genre's
(`config.rest_costs` of an AR-CNN or a diffusion model, read only by a card with `config.voices_rest`).

Palestrina's lower voices rest at 13-23% of the steps where the melody sounds and the quartets' at
16-23%, Bach's chorale voices at 0.1% (`studio.core.voices.rests_under_melody`). Left to its own odds,
an AR-CNN (or a diffusion model) trained on motets can leave a voice silent for a whole tune: once its cells are rests the
network keeps them so. The first ``--pieces`` pieces of the genre's training list (never a validation
or held-out piece) are accompanied at the card's defaults, seed 0; each voice's share of the melody's
sounding steps at which it rests is set beside the real voice's, and each voice's cost (nats against a
rest at those steps) is found by bisection on [-8, 16] over ``--rounds`` rounds (the voices side by
side; a higher cost, fewer rests). ``--write`` stores the costs in the card.

    python -m bench.rests --model arcnn-renaissance [--pieces 20] [--rounds 6] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.restrikes import CHECKPOINTS, _card_with, training_takes, write_config

__all__ = ["calibrate", "rest_shares"]

LOWEST, HIGHEST = -8.0, 16.0  # the bisection's bracket, nats against a rest


def rest_shares(takes: Sequence[tuple[Any, Sequence[Any]]]) -> np.ndarray:
    """Each lower voice's share of the melody's sounding steps at which it rests, over `takes`
    ((melody track, lower voices' tracks), voices high to low)."""
    resting = sounding = None
    for melody, voices in takes:
        sings = (melody.velocity > 0).any(axis=1)
        silent = np.array([~(v.velocity > 0).any(axis=1) for v in voices])
        counts = (silent & sings[None, :]).sum(axis=1)
        resting = counts if resting is None else resting + counts
        sounding = int(sings.sum()) + (sounding or 0)
    if resting is None:
        return np.zeros(0)
    return resting / max(sounding, 1)


def calibrate(model: str, pieces: int = 20, rounds: int = 6) -> dict[str, Any]:
    """The real and the model's rest shares on the first `pieces` training pieces, and each voice's
    cost after `rounds` rounds of bisection (with the shares it gave at every round)."""
    from studio.serving.batching import BatchConfig
    from studio.serving.registry import ModelRegistry

    def takes(costs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            registry = ModelRegistry(_card_with(model, Path(tmp), {"rest_costs": list(costs)}), batching=BatchConfig(window_s=0))
            found = list(training_takes(registry, model, pieces))
        real = rest_shares([(p.tracks[0], p.tracks[1:]) for p, _ in found])
        return real, rest_shares([(p.tracks[0], v) for p, v in found])

    voices = len(json.loads((CHECKPOINTS / f"{model}.json").read_text())["config"]["voice_names"])
    real, alone = takes([0.0] * voices)  # the real shares come with any pass: the network's own odds first
    low, high = np.full(len(real), LOWEST), np.full(len(real), HIGHEST)
    history = []
    for _ in range(rounds):
        costs = (low + high) / 2
        _, shares = takes(costs.round(3).tolist())
        history.append({"costs": costs.round(3).tolist(), "shares": shares.round(4).tolist()})
        low = np.where(shares > real, costs, low)  # resting more than the genre: a rest must cost more
        high = np.where(shares > real, high, costs)
    best = [min(history, key=lambda row, v=v: abs(row["shares"][v] - real[v]))["costs"][v] for v in range(len(real))]
    return {
        "model": model,
        "pieces": pieces,
        "real": real.round(4).tolist(),
        "network_alone": alone.round(4).tolist(),
        "rounds": history,
        "costs": [round(float(c), 3) for c in best],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an AR-CNN's or diffusion model's card with config.voices_rest")
    parser.add_argument("--pieces", type=int, default=20, help="training pieces to measure on (default 20)")
    parser.add_argument("--rounds", type=int, default=6, help="bisection rounds (default 6)")
    parser.add_argument("--write", action="store_true", help="store the costs in the card (config.rest_costs)")
    args = parser.parse_args(argv)
    found = calibrate(args.model, args.pieces, args.rounds)
    print(json.dumps(found, indent=1))
    if args.write:
        write_config(args.model, "rest_costs", found["costs"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

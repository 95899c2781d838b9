"""The musical floor of the `rules` baseline on hundreds of real folk tunes it was never tuned on
tune by tune: in-key rate and consonance (studio.core.metrics) per tune, their means, and the share of
tunes under the floor (in-key < 0.95, consonance < 0.80).

Tunes: music21's corpus (Essen folk songs and O'Neill's 1850), read as their MIDI export would be:
pickups unmarked, so the studio's own pickup detection is used. Usage:
    python -m bench.rules_floor [--json] [--limit N] [--seeds 0 1 2 3 4]

Every seed draws its own variation of the music (models/rules.py, `Variation`); each must meet the floor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from studio.core.meter import estimate_pickup
from studio.core.metrics import bar_coverage, consonance, in_key_rate, melody_key
from studio.core.roll import make_grid, notes_to_roll
from studio.training.tunes import UNSEEN_COLLECTIONS
from studio.training.tunes import corpus_tunes as unseen_tunes

CORPUS_FILES = UNSEEN_COLLECTIONS[:4]  # the 748 tunes the README's table was measured on


def corpus_tunes(limit: int | None = None):
    """(title, Score) of single-meter, single-line tunes of the four collections above."""
    for tune in unseen_tunes(limit, CORPUS_FILES):
        yield tune.title, tune.score


def evaluate(limit: int | None = None, params: dict | None = None, seed: int = 0) -> dict[str, Any]:
    from models.rules import RulesAccompanist

    model = RulesAccompanist()
    in_key, cons, coverage = [], [], []
    for _title, score in corpus_tunes(limit):
        notes = score.tracks[0].notes
        grid = make_grid(score, estimate_pickup(notes, score))
        melody = notes_to_roll(notes, grid, "Melody", 0)
        tracks = model.generate(melody, grid, params or {}, seed)
        in_key.append(in_key_rate(tracks, melody_key(melody)))
        cons.append(consonance(melody, tracks))
        coverage.append(min(bar_coverage(t, grid, melody) for t in tracks))
    n = len(in_key)
    return {
        "tunes": n,
        "params": params or "defaults",
        "seed": seed,
        "in_key_mean": round(statistics.mean(in_key), 4),
        "in_key_min": round(min(in_key), 4),
        "in_key_under_0.95": round(sum(v < 0.95 for v in in_key) / n, 4),
        "consonance_mean": round(statistics.mean(cons), 4),
        "consonance_p10": round(sorted(cons)[n // 10], 4),
        "consonance_under_0.80": round(sum(v < 0.80 for v in cons) / n, 4),
        "min_track_coverage_mean": round(statistics.mean(coverage), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="measure each of these seeds (default: 0)")
    args = parser.parse_args(argv)
    results = [evaluate(args.limit, seed=seed) for seed in args.seeds]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join("\n".join(f"{k}: {v}" for k, v in result.items()) for result in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

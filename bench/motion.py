"""The genre's own melodic motion in a model's part-writing guide (issue 21: melodic intervals), chosen on
validation by the rule docs/models/README.md settles ("Which figures decide a change").

The costs come from the genre's training voices (`studio.core.part_writing.motion_costs` of their
`interval_histogram`, never a validation or held-out piece); each weight in ``--weights`` is tried on
the card's validation list (`studio evaluate --split validation`, seed 0, no unseen tunes), the
weight 0 (no motion costs) beside them. A weight passes when no figure of the held-out table that is
within its bound (`bound_gaps` <= 1) at weight 0 leaves it and none outside it moves further out (by
over 0.05 of its bound), it meets at least one of issue 21's bounds the model missed without it or
lowers the classifier's accuracy by at least 0.05, misses none it met, and the classifier's accuracy
rises by at most 0.05; of those that pass, the one missing fewest bounds, then the lowest classifier
accuracy, then the lowest validation score, is chosen. With ``--against-card`` the card's own costs
stand for weight 0 (a variant, e.g. ``--per-voice``: each voice its own motion, is weighed against
them); with ``--relative`` only the move sizes the model overdoes are charged (its own moves on the
first 60 training melodies against the real voices', `excess_motion_costs`), and ``--recalibrate N``
moves those costs N times toward the genre's shares from the moves the model makes with them on the
same melodies (`recalibrated_motion_costs`: a size the guided model now overdoes, a repeat its
redrawn notes fall to, is charged too; ``--decay``: the step halved each round; with ``--per-voice``
each voice's moves against the same voice's). ``--harmony`` charges, the same way, the vertical interval
classes the model sounds more often than the genre's voices (`recalibrated_harmony_costs` of the
`vertical_histogram`s: ``config.harmony``), alone (the card's motion costs kept) or, with ``--relative``,
recalibrated together with the motion costs from the same takes. ``--gibbs`` (an AR-CNN, with
``--relative``) charges the motion costs inside its Gibbs sampling (``config.gibbs_motion``: the network
writes around an overdone move, its rhythm too) instead of redrawing notes after it. ``--write`` stores
the chosen weight's costs in the card (``config.motion``, ``config.harmony``, ``config.gibbs_motion``), or
those compared with when none passes.

    python -m bench.motion --model gan-chorale [--weights 0.25,0.5] [--seed 0] [--per-voice]
        [--relative [--recalibrate N [--decay]] [--gibbs]] [--harmony] [--against-card] [--classifier-seeds N] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.restrikes import _card_with
from studio.core.config import REPO_ROOT

__all__ = ["choose", "sweep", "training_costs"]

CHECKPOINTS = REPO_ROOT / "models" / "checkpoints"
CLASSIFIER_SLACK = 0.05
CLASSIFIER_GAIN = 0.05  # or, meeting no bound it missed, the classifier's accuracy falls by this much
TABLE_SLACK = 0.05  # a table figure already outside its bound may move out by this much of its bound
MOTION_KINDS = ("motion", "gibbs_motion")  # the guide's move-size costs, and the AR-CNN's inside its Gibbs sampling


def _training_pieces(model: str) -> list[Any]:
    """The training list of `model`'s genre, less its validation pieces."""
    from studio.training.data import DatasetConfig, build_dataset, genre_reduction
    from studio.training.train import _split_validation

    genre = json.loads((CHECKPOINTS / f"{model}.json").read_text())["genre"]
    dataset = build_dataset(DatasetConfig(genre, reduction=genre_reduction(genre)), progress=False)
    return _split_validation(dataset, 0.1, 40)[0].train


def training_costs(model: str, weight: float, per_voice: bool = False) -> tuple[float, ...]:
    """`motion_costs` of the training voices of `model`'s genre (the training list, less validation), at
    `weight`: of all voices together, or (`per_voice`) of each accompaniment voice on its own, one after
    the other (`PartWritingGuide.motion`)."""
    from studio.core.part_writing import motion_costs
    from studio.core.voice_leading import interval_histogram

    train = _training_pieces(model)
    if not per_voice:
        return motion_costs(sum(interval_histogram(p.tracks[1:]) for p in train), weight)
    voices = len(train[0].tracks) - 1
    return tuple(c for v in range(1, voices + 1) for c in motion_costs(sum(interval_histogram([p.tracks[v]]) for p in train), weight))


def _histograms(model: str, config: dict[str, tuple[float, ...]], pieces: list[Any], per_voice: bool = False) -> dict[str, Any]:
    """What `model` writes (its card with `config`'s costs, its defaults, seed 0) on the melodies of
    `pieces`: ``motion``, the `interval_histogram` of its voices (`per_voice`: one per voice, high to
    low) and ``harmony``, the `vertical_histogram` of the melody and its voices."""
    from studio.serving.registry import ModelRegistry
    from studio.training.evaluate import _model_melody

    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(_card_with(model, Path(tmp), config))
        takes = []
        for p in pieces:
            melody = _model_melody(p.tracks[0])
            takes.append([melody, *registry.generate(model, melody, p.grid, {}, 0, limit_length=False)])
    return _voice_histograms(takes, per_voice)


def _voice_histograms(pieces: list[list[Any]], per_voice: bool) -> dict[str, Any]:
    """``motion`` and ``harmony`` histograms of pieces given as voices (the melody first), as `_histograms`."""
    from studio.core.voice_leading import interval_histogram, vertical_histogram

    voices = min(len(p) for p in pieces) - 1
    motion = (
        [sum(interval_histogram([p[v]]) for p in pieces) for v in range(1, voices + 1)]
        if per_voice
        else sum(interval_histogram(p[1:]) for p in pieces)
    )
    return {"motion": motion, "harmony": sum(vertical_histogram(p) for p in pieces)}


def excess_costs(
    model: str,
    weight: float,
    pieces: int = 60,
    rounds: int = 0,
    decay: bool = False,
    kinds: tuple[str, ...] = ("motion",),
    per_voice: bool = False,
) -> dict[str, tuple[float, ...]]:
    """Costs that charge what `model` overdoes against its genre's real voices, both on the first
    `pieces` melodies of the training list (never validation): for each of `kinds`, ``motion``
    (`excess_motion_costs` of the move sizes; `per_voice`: each voice's own, one after the other) and
    ``harmony`` (the vertical interval classes), from the model without them (its card's other costs
    kept); then, `rounds` times, recalibrated together from the model's takes with the costs so far
    on the same melodies, with a step of `weight` (`decay`: halved each round, so that the costs settle
    where a step would swing past the genre's share)."""
    from studio.core.part_writing import MOTION_SIZES, recalibrated_harmony_costs, recalibrated_motion_costs

    chosen = _training_pieces(model)[:pieces]
    genre = _voice_histograms([list(p.tracks) for p in chosen], per_voice)
    costs: dict[str, tuple[float, ...]] = {kind: () for kind in kinds}

    def moved(step: float) -> dict[str, tuple[float, ...]]:
        seen = _histograms(model, costs, chosen, per_voice)
        out = dict(costs)
        if "harmony" in costs:
            out["harmony"] = recalibrated_harmony_costs(costs["harmony"], seen["harmony"], genre["harmony"], step)
        for kind in (k for k in costs if k in MOTION_KINDS):
            if per_voice:
                whole = costs[kind] or (0.0,) * (MOTION_SIZES * len(genre["motion"]))  # from none: zeros, one row per voice
                rows = [whole[MOTION_SIZES * v : MOTION_SIZES * (v + 1)] for v in range(len(genre["motion"]))]
                out[kind] = tuple(
                    c
                    for row, m, g in zip(rows, seen["motion"], genre["motion"], strict=True)
                    for c in recalibrated_motion_costs(row, m, g, step)
                )
            else:
                out[kind] = recalibrated_motion_costs(costs[kind], seen["motion"], genre["motion"], step)
        return out

    costs = moved(weight)
    for k in range(rounds):
        costs = moved(weight * 0.5 ** (k + 1) if decay else weight)
    return costs


def _figures(model: str, config: dict[str, tuple[float, ...]], seed: int = 0, classifier_seeds: int = 1) -> dict[str, Any]:
    """The validation figures of `model`'s card with its config's costs set as `config` says, at `seed`;
    the classifier's accuracy the mean of its readings at `classifier_seeds` seeds from `seed` on (on
    the 33 validation chorales one seed's reading varies by about +-0.03 from another's), its bound
    judged on that mean."""
    from studio.serving.registry import ModelRegistry
    from studio.training.evaluate import EvaluationConfig, bound_gaps, evaluate
    from studio.training.musicianship import check_bounds

    readings = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(_card_with(model, Path(tmp), config))
        for k in range(max(1, classifier_seeds)):
            evaluation = EvaluationConfig(split="validation", seed=seed + k, unseen=0, copy_check=False)
            readings.append(evaluate(model, evaluation, registry, progress=False))
    report = readings[0]
    table, heard = report["validation"], report["musicianship"]
    gaps = bound_gaps(table["generated"], table["real"])
    by_seed = [r["musicianship"]["classifier_accuracy"] for r in readings]
    classifier = round(sum(by_seed) / len(by_seed), 4)
    missed = {k for k, b in heard["bounds"].items() if not b["ok"] and k != "classifier_accuracy"}
    if not check_bounds({"classifier_accuracy": classifier}, {})["classifier_accuracy"]["ok"]:
        missed.add("classifier_accuracy")
    return {
        "validation_score": round(sum(gaps.values()) / len(gaps), 4),
        "worst_table_gap": max(gaps, key=gaps.get),
        "gaps": {k: round(v, 3) for k, v in gaps.items()},
        "missed": sorted(missed),
        "classifier_accuracy": classifier,
        **({"classifier_by_seed": by_seed} if len(by_seed) > 1 else {}),
        **{
            k: heard["generated"][k]
            for k in ("interval_js", "duration_js", "repeated_notes", "parallel_fifths_octaves", "leaps_over_octave")
        },
        "used_pitch_classes": table["generated"]["used_pitch_classes"],
        "in_key_rate": table["generated"]["in_key_rate"],
    }


def sweep(
    model: str,
    weights: list[float],
    seed: int = 0,
    per_voice: bool = False,
    base: tuple[float, ...] = (),
    relative: bool = False,
    rounds: int = 0,
    decay: bool = False,
    harmony: bool = False,
    gibbs: bool = False,
    classifier_seeds: int = 1,
) -> dict[float, dict[str, Any]]:
    """The validation figures of `base` (weight 0: no motion costs, or the card's own; no harmony costs)
    and of each of `weights`, each with its costs (`relative`: `excess_costs`, recalibrated `rounds`
    times, the step halved each round with `decay`; `harmony`: with harmony costs, the motion
    costs `base` unless `relative`; `gibbs`: the relative motion costs charged inside an AR-CNN's Gibbs
    sampling, ``config.gibbs_motion``, instead of in its guide)."""
    kinds = ("gibbs_motion" if gibbs else "motion",) * relative + ("harmony",) * harmony
    empty = {"motion": base, "harmony": (), **({"gibbs_motion": ()} if gibbs else {})}
    out = {}
    for weight in [0.0, *weights]:
        if weight <= 0:
            costs = dict(empty)
        elif kinds:
            costs = {**empty, **excess_costs(model, weight, rounds=rounds, decay=decay, kinds=kinds, per_voice=per_voice)}
        else:
            costs = {**empty, "motion": training_costs(model, weight, per_voice)}
        out[weight] = {**{k: list(v) for k, v in costs.items()}, **_figures(model, costs, seed, classifier_seeds)}
        print(json.dumps({"weight": weight, **out[weight]}), flush=True)
    return out


def _table_kept(base: dict[str, float], row: dict[str, float]) -> bool:
    """No table figure within its bound (gap <= 1) leaves it, and none outside it moves further out
    (its gap larger by over `TABLE_SLACK`)."""
    return all(row.get(k, 0.0) <= (1.0 if g <= 1.0 else g + TABLE_SLACK) for k, g in base.items())


def choose(rows: dict[float, dict[str, Any]]) -> float:
    """The weight the rule picks (0 when none passes)."""
    base = rows[0.0]
    passing = []
    for weight, row in rows.items():
        if weight == 0.0:
            continue
        newly_met = set(base["missed"]) - set(row["missed"])
        newly_missed = set(row["missed"]) - set(base["missed"])
        clf_ok = row["classifier_accuracy"] <= base["classifier_accuracy"] + CLASSIFIER_SLACK
        closer = row["classifier_accuracy"] <= base["classifier_accuracy"] - CLASSIFIER_GAIN  # harder to tell apart
        if _table_kept(base["gaps"], row["gaps"]) and (newly_met or closer) and not newly_missed and clf_ok:
            passing.append((len(row["missed"]), row["classifier_accuracy"], row["validation_score"], weight))
    return min(passing)[-1] if passing else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.motion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a card whose config takes motion costs (a GAN, arcnn-chorale, diffusion-chorale)")
    parser.add_argument("--weights", default="0.25,0.5", help="weights to try beside 0 (default 0.25,0.5)")
    parser.add_argument("--seed", type=int, default=0, help="the evaluation's seed (default 0; another for a run again)")
    parser.add_argument(
        "--classifier-seeds",
        type=int,
        default=1,
        metavar="N",
        help="the classifier's accuracy averaged over N seeds from --seed on (default 1)",
    )
    parser.add_argument("--per-voice", action="store_true", help="each voice its own motion (default: all voices together)")
    parser.add_argument("--relative", action="store_true", help="charge only the move sizes the model overdoes (excess_motion_costs)")
    parser.add_argument(
        "--recalibrate", type=int, default=0, metavar="N", help="with --relative: recalibrate the costs N times on the training melodies"
    )
    parser.add_argument("--decay", action="store_true", help="with --recalibrate: halve the step each round (weight/2, weight/4, ...)")
    parser.add_argument("--harmony", action="store_true", help="charge the vertical interval classes the model overdoes (config.harmony)")
    parser.add_argument(
        "--gibbs", action="store_true", help="with --relative: an AR-CNN's motion costs inside its Gibbs sampling (config.gibbs_motion)"
    )
    parser.add_argument("--against-card", action="store_true", help="compare with the card's own motion costs, not with none")
    parser.add_argument("--write", action="store_true", help="store the chosen weight's costs in the card (config.motion)")
    args = parser.parse_args(argv)
    base = tuple(json.loads((CHECKPOINTS / f"{args.model}.json").read_text())["config"].get("motion", ())) if args.against_card else ()
    weights = [float(w) for w in args.weights.split(",") if w.strip()]
    rows = sweep(
        args.model,
        weights,
        args.seed,
        args.per_voice,
        base,
        args.relative,
        args.recalibrate,
        args.decay,
        args.harmony,
        args.gibbs,
        args.classifier_seeds,
    )
    chosen = choose(rows)
    print(f"chosen weight: {chosen:g}" + ("" if chosen else " (none passes the rule: the costs compared with stay)"))
    if args.write:
        path = CHECKPOINTS / f"{args.model}.json"
        card = json.loads(path.read_text())
        written = {k: rows[chosen][k] for k in ("motion", "harmony", "gibbs_motion") if k in rows[chosen]}
        card["config"].update(written)
        path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote {', '.join(f'config.{k} = {v}' for k, v in written.items())} into {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

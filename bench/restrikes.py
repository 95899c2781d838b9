"""How often a voice model strikes a held pitch again, beside its genre's real voices (issue 21: repeated
notes), and the thinning of the re-strikes of a model that writes its own note starts (the GAN, the
diffusion model: `studio.core.restrikes`).

An AR-CNN draws its re-strikes from its genre's table (``config.restrikes``, read from the training
pieces when it trains); because it holds a pitch where the real voices move more often than they do,
the table as read overshoots the real repeated-note share. ``--scale`` (its family's mode) measures on
the same training pieces the share of repeated notes without re-strikes, with the table, and the real
one, and scales the table so that the share comes out as the real one (``--write`` stores it).

For a GAN's or a diffusion model's card: the first ``--pieces`` pieces of its genre's training list (never a validation or
held-out piece) are accompanied at the card's defaults, seed 0, with the card's thinning switched off;
in each situation of a held pitch (the melody starting a note or not, on a beat or not) the share
struck again is counted in the model's voices and in the real ones, and `keep_shares` gives the share
of the model's re-strikes to keep. ``--write`` stores it in the card (``config.restrike_keep``);
``--compare`` then evaluates the card's validation pieces (`studio evaluate --split validation`, seed
0, no unseen tunes) without the thinning and with it, side by side.

    python -m bench.restrikes --model gan-renaissance [--pieces 60] [--write] [--compare]
    python -m bench.restrikes --model diffusion-chorale [--pieces 60] [--write] [--compare]
    python -m bench.restrikes --model arcnn-chorale --scale --pieces 40 [--write]
    python -m bench.restrikes --model arcnn-chorale --scale --per-voice --pieces 40 [--write] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.config import REPO_ROOT

__all__ = ["compare", "measure", "scale_table", "scale_voice_table", "training_takes", "write_config"]

CHECKPOINTS = REPO_ROOT / "models" / "checkpoints"


def _counts(melody: Any, voices: list[Any], grid: Any) -> np.ndarray:
    """Re-strikes and held pitches per situation, shape (2, 4), of `voices` under `melody`."""
    from studio.core.conditioning import meter_features, track_to_tokens
    from studio.core.restrikes import situation_counts

    rows = [track_to_tokens(t) for t in (melody, *voices)]
    return situation_counts(np.array([t for t, _ in rows]), np.array([o for _, o in rows]), meter_features(grid)[:, 1] > 0)


def _card_without(model: str, folder: Path, key: str = "restrike_keep", value: Any = ()) -> Path:
    """A copy of `model`'s card and weights in `folder` with its config's `key` emptied (or set to `value`)."""
    return _card_with(model, folder, {key: value})


def _card_with(model: str, folder: Path, values: Mapping[str, Any], source: Path = CHECKPOINTS) -> Path:
    """A copy of `model`'s card and weights (from `source`) in `folder` with its config's keys set to
    `values` (sequences as lists, numbers as they are)."""
    card = json.loads((source / f"{model}.json").read_text())
    card["config"].update({key: value if isinstance(value, (int, float)) else list(value) for key, value in values.items()})
    (folder / f"{model}.json").write_text(json.dumps(card))
    shutil.copy(source / f"{model}.safetensors", folder / f"{model}.safetensors")
    return folder


def training_takes(registry: Any, model: str, pieces: int) -> Iterator[tuple[Any, list[Any]]]:
    """The first `pieces` pieces of `model`'s genre's training list (never a validation or held-out
    piece), each with `registry`'s take of its melody (the card's defaults, seed 0, whole length)."""
    from studio.training.data import DatasetConfig, build_dataset, genre_reduction
    from studio.training.evaluate import _model_melody
    from studio.training.train import _split_validation

    genre = registry.card(model).genre
    dataset = build_dataset(DatasetConfig(genre, reduction=genre_reduction(genre)), progress=False)
    fit, _ = _split_validation(dataset, 0.1, 40)
    for piece in fit.train[:pieces]:
        yield piece, registry.generate(model, _model_melody(piece.tracks[0]), piece.grid, {}, 0, limit_length=False)


def write_config(model: str, key: str, value: Any) -> None:
    """Store `value` as `model`'s shipped card's ``config[key]``."""
    path = CHECKPOINTS / f"{model}.json"
    card = json.loads(path.read_text())
    card["config"][key] = value
    path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote config.{key} = {value} into {path.name}")


def measure(model: str, pieces: int = 60) -> dict[str, Any]:
    """The genre's and the model's re-strike rates per situation on training pieces, and the shares to keep."""
    from studio.core.restrikes import SITUATIONS, keep_shares
    from studio.serving.batching import BatchConfig
    from studio.serving.registry import ModelRegistry

    real, generated, seen = np.zeros((2, 4)), np.zeros((2, 4)), 0
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(_card_without(model, Path(tmp)), batching=BatchConfig(window_s=0))
        for piece, voices in training_takes(registry, model, pieces):
            tracks = piece.tracks
            real += _counts(tracks[0], tracks[1:], piece.grid)
            generated += _counts(tracks[0], voices, piece.grid)
            seen += 1
    genre_odds = tuple(float(x) for x in real[0] / np.maximum(real[1], 1))
    model_odds = tuple(float(x) for x in generated[0] / np.maximum(generated[1], 1))
    return {
        "model": model,
        "pieces": seen,
        "situations": list(SITUATIONS),
        "genre": [round(x, 4) for x in genre_odds],
        "model_alone": [round(x, 4) for x in model_odds],
        "held_places": [int(x) for x in real[1]],
        "keep": list(keep_shares(genre_odds, model_odds)),
    }


def scale_table(model: str, pieces: int = 40) -> dict[str, Any]:
    """An AR-CNN's re-strike table scaled so that its repeated-note share on training pieces is the real one's."""
    from studio.serving.registry import ModelRegistry
    from studio.training.data import DatasetConfig, build_dataset, genre_reduction
    from studio.training.evaluate import _model_melody
    from studio.training.musicianship import generated_rates, genre_ranges, record
    from studio.training.train import _split_validation

    card = json.loads((CHECKPOINTS / f"{model}.json").read_text())
    table = [float(x) for x in card["config"]["restrikes"]]
    genre = card["genre"]
    dataset = build_dataset(DatasetConfig(genre, reduction=genre_reduction(genre)), progress=False)
    fit, _ = _split_validation(dataset, 0.1, 40)
    chosen = fit.train[:pieces]
    reference = genre_ranges(genre, fit.train)

    def repeated(registry: Any) -> float:
        voices = [registry.generate(model, _model_melody(p.tracks[0]), p.grid, {}, 0, limit_length=False) for p in chosen]
        heard = [record(p.tracks[0], v, reference) for p, v in zip(chosen, voices, strict=True)]
        return generated_rates(heard)["repeated_notes"]

    with tempfile.TemporaryDirectory() as tmp:
        without = repeated(ModelRegistry(_card_without(model, Path(tmp), "restrikes")))
    with_table = repeated(ModelRegistry())
    real = generated_rates([record(p.tracks[0], p.tracks[1:], reference) for p in chosen])["repeated_notes"]
    factor = (real - without) / (with_table - without) if with_table != without else 1.0
    return {
        "model": model,
        "pieces": len(chosen),
        "repeated_notes": {"without": without, "with_table": with_table, "real": real},
        "factor": round(factor, 3),
        "table": table,
        "scaled": [round(min(1.0, max(0.0, q * factor)), 4) for q in table],
    }


def _voice_repeats(takes: list[list[Any]]) -> np.ndarray:
    """Each accompanying voice's share of moves that repeat its pitch, over `takes` (voices high to low)."""
    from studio.core.voice_leading import voice_notes

    counts = np.zeros((len(takes[0]) if takes else 0, 2))
    for voices in takes:
        for v, track in enumerate(voices):
            steps = np.diff([p for _s, _e, p in voice_notes(track)])
            counts[v] += ((steps == 0).sum(), len(steps))
    return counts[:, 0] / np.maximum(counts[:, 1], 1)


def scale_voice_table(model: str, pieces: int = 40, out: Path | None = None) -> dict[str, Any]:
    """An AR-CNN's re-strike table read per voice from all its genre's training pieces, each voice's
    four odds scaled so that the voice's repeated-note share on the first `pieces` training pieces is
    the real voice's (`scale_table`, voice by voice); written with the card's weights into `out` when given."""
    from studio.core.conditioning import meter_features, track_to_tokens
    from studio.core.restrikes import voice_situation_counts
    from studio.serving.batching import BatchConfig
    from studio.serving.registry import ModelRegistry
    from studio.training.data import DatasetConfig, build_dataset, genre_reduction
    from studio.training.evaluate import _model_melody
    from studio.training.train import _split_validation

    card = json.loads((CHECKPOINTS / f"{model}.json").read_text())
    genre = card["genre"]
    dataset = build_dataset(DatasetConfig(genre, reduction=genre_reduction(genre)), progress=False)
    fit, _ = _split_validation(dataset, 0.1, 40)

    def counts(piece: Any) -> np.ndarray:
        rows = [track_to_tokens(t) for t in piece.tracks]
        tokens, onsets = np.array([t for t, _ in rows]), np.array([o for _, o in rows])
        return voice_situation_counts(tokens, onsets, meter_features(piece.grid)[:, 1] > 0)

    total = sum(counts(p) for p in fit.train)
    table = total[:, 0] / np.maximum(total[:, 1], 1)  # (voices, 4)
    chosen = fit.train[:pieces]

    def repeats(restrikes: list[float]) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            registry = ModelRegistry(_card_with(model, Path(tmp), {"restrikes": restrikes}), batching=BatchConfig(window_s=0))
            return _voice_repeats([registry.generate(model, _model_melody(p.tracks[0]), p.grid, {}, 0, limit_length=False) for p in chosen])

    real = _voice_repeats([p.tracks[1:] for p in chosen])
    without, with_table = repeats([]), repeats(table.ravel().tolist())
    factor = np.where(with_table != without, (real - without) / np.where(with_table != without, with_table - without, 1.0), 1.0)
    scaled = np.clip(table * factor[:, None], 0.0, 1.0).round(4).ravel().tolist()
    if out is not None:
        card["config"]["restrikes"] = scaled
        (out / f"{model}.json").write_text(json.dumps(card, indent=2) + "\n")
        shutil.copy(CHECKPOINTS / f"{model}.safetensors", out / f"{model}.safetensors")
    return {
        "model": model,
        "pieces": len(chosen),
        "per_voice_table": table.round(4).tolist(),
        "repeated_notes": {
            "without": without.round(4).tolist(),
            "with_table": with_table.round(4).tolist(),
            "real": real.round(4).tolist(),
        },
        "factor": factor.round(3).tolist(),
        "scaled": scaled,
    }


def compare(model: str) -> dict[str, dict[str, Any]]:
    """The card's validation figures without its thinning and with it (seed 0, no unseen tunes)."""
    from studio.serving.registry import ModelRegistry
    from studio.training.evaluate import EvaluationConfig, bound_gaps, evaluate

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, registry in (("without", ModelRegistry(_card_without(model, Path(tmp)))), ("with", ModelRegistry())):
            report = evaluate(model, EvaluationConfig(split="validation", unseen=0, copy_check=False), registry, progress=False)
            table, heard = report["validation"], report["musicianship"]
            gaps = bound_gaps(table["generated"], table["real"])
            out[label] = {
                "validation_score": round(sum(gaps.values()) / len(gaps), 4),
                "qualified_note_rate": table["generated"]["qualified_note_rate"],
                **{k: heard["generated"][k] for k in ("repeated_notes", "interval_js", "duration_js", "parallel_fifths_octaves")},
                "classifier_accuracy": heard["classifier_accuracy"],
                "real": {"qualified_note_rate": table["real"]["qualified_note_rate"], "repeated_notes": heard["real"]["repeated_notes"]},
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restrikes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a GAN's or diffusion model's card (gan-renaissance), or an AR-CNN's with --scale")
    parser.add_argument("--pieces", type=int, default=60, help="training pieces to measure on (default 60)")
    parser.add_argument("--write", action="store_true", help="store the shares to keep in the card (config.restrike_keep)")
    parser.add_argument("--compare", action="store_true", help="then evaluate the validation pieces without and with them")
    parser.add_argument("--scale", action="store_true", help="an AR-CNN: scale its table to the real repeated-note share")
    parser.add_argument("--per-voice", action="store_true", help="with --scale: a table per voice, each scaled to its voice's share")
    parser.add_argument("--out", type=Path, help="with --per-voice: write the card with the scaled table (and the weights) here")
    args = parser.parse_args(argv)
    if args.scale and args.per_voice:
        found = scale_voice_table(args.model, args.pieces, args.out)
    else:
        found = scale_table(args.model, args.pieces) if args.scale else measure(args.model, args.pieces)
    print(json.dumps(found, indent=1))
    if args.write:
        write_config(args.model, *(("restrikes", found["scaled"]) if args.scale else ("restrike_keep", found["keep"])))
    if args.compare and not args.scale:
        print(json.dumps(compare(args.model), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

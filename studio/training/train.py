"""`python -m studio train`: the one training loop that drives every model family's training step.

What it does, for any family whose module offers `training(dataset, overrides, device)`:
1. Build (or load from the cache) the genre's dataset, split by the pinned lists (`studio.training.splits`:
   the committed file of a corpus genre; a folder's first run draws its split and writes it beside the checkpoint).
2. Repeat the family's `step` until the time budget (`--minutes`) or `--steps` runs out, with a
   progress bar, every step's losses in a JSON history, and sample rolls of two held-out melodies
   at several points of training (the UI shows both, so a class can watch a model learn).
3. Save resumable state (weights, optimizer moments, random states) to a run folder outside git
   every few minutes and at the end; a second run with the same `--out` resumes from it.
4. Write the shipped checkpoint: `<out>.safetensors` (the weights generation needs, safetensors
   only), `<out>.json` (the model card: description, tracks, params, config, training facts), and
   `models/checkpoints/training/<name>.json` (the history); then `evaluate` fills the card's metrics.

Several GPUs or machines: the same command under `torchrun --nproc_per_node N -m studio train ...`
(PyTorch DDP's process group; gradients are averaged across ranks before every optimizer step;
rank 0 alone writes files). Each rank draws its own batches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.base import SelfScoring, TrainableFamily, TunableFamily, declarations
from models.base import family as family_module
from studio.core.config import REPO_ROOT, cache_dir
from studio.core.errors import InputError
from studio.core.roll import Grid, RollTrack, extend_grid, roll_to_notes
from studio.serving.registry import ModelRegistry
from studio.training.data import DatasetConfig, build_dataset, load_cached_dataset
from studio.training.evaluate import EvaluationConfig, evaluate, format_report, real_summary, validation_score
from studio.training.melodies import melody_dataset
from studio.training.splits import Split, split_path, validation_ids, write_split

__all__ = ["TrainConfig", "history_path", "run_training", "tune_on_validation"]

CHECKPOINTS = REPO_ROOT / "models" / "checkpoints"


def trainable_families() -> tuple[str, ...]:
    """Families whose module offers `training(dataset, overrides, device)` (`models.base.TrainableFamily`)."""
    found = []
    for name in declarations():
        try:
            module = family_module(name)
        except ImportError:
            continue
        if isinstance(module, TrainableFamily):
            found.append(name)
    return tuple(found)


def history_path(checkpoint_stem: Path) -> Path:
    """Where the training history of `models/checkpoints/<name>` lives (beside the cards, in training/)."""
    return checkpoint_stem.parent / "training" / f"{checkpoint_stem.name}.json"


def default_run_dir(stem: Path) -> Path:
    """Resumable state of the run that writes checkpoint `stem`: ``runs/<name>-<hash of the path>``
    under ``$STUDIO_CACHE`` or ``~/.cache/music-studio`` (two runs never share one)."""
    digest = hashlib.sha256(str(Path(stem).expanduser().resolve()).encode()).hexdigest()[:10]
    return cache_dir("runs") / f"{Path(stem).name}-{digest}"


@dataclass
class TrainConfig:
    """A training run. `data` is ``corpus:NAME`` (a music21 genre) or a folder of MIDI files;
    `overrides` change the family's config (e.g. ``{"hidden": 128}``)."""

    family: str
    genre: str
    data: str | None = None
    minutes: float = 30.0
    steps: int | None = None
    seed: int = 0
    out: Path | None = None
    run_dir: Path | None = None
    fresh: bool = False  # ignore saved state and start over
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    samples: int = 8  # snapshots of sample rolls over the run
    save_every_s: float = 120.0
    evaluate: bool = True
    evaluate_unseen: int = 100
    max_pieces: int | None = None  # for quick runs and tests
    threads: int | None = None
    validation: float = 0.1  # share of the training pieces kept aside to choose the checkpoint (0: keep the last)
    validate_every_s: float = 90.0
    max_validation_pieces: int = 40
    split_file: str | None = None  # set by `run_training`: the pinned split it used (repo-relative when inside the repo)
    reduction: str | None = None  # how a piece of 5+ voices becomes four (studio.training.data.DatasetConfig.reduction); None: the genre's

    @property
    def name(self) -> str:
        return self.stem.name

    @property
    def stem(self) -> Path:
        return Path(self.out) if self.out else CHECKPOINTS / f"{self.family}-{self.genre}"

    @property
    def dataset_genre(self) -> str:
        """The `studio.training.data` genre string: a corpus name, ``folder:PATH`` or ``cache:FILE.npz``."""
        source = self.data or f"corpus:{self.genre}"
        if source.startswith("corpus:"):
            return source.split(":", 1)[1]
        if source.startswith("cache:"):
            return source
        path = Path(source).expanduser()
        if not path.is_dir():
            raise InputError(f"--data {source}: not a folder of MIDI files and not corpus:NAME (chorale, renaissance, quartet)")
        return f"folder:{path}"


# --------------------------------------------------------------------------- distributed


class _Dist:
    """PyTorch's process group when started by torchrun (WORLD_SIZE > 1), else a no-op."""

    def __init__(self, device: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist  # torch loads on first use (start-up speed)

            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, module) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist  # torch loads on first use (start-up speed)

        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def broadcast_modules(self, modules: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist  # torch loads on first use (start-up speed)

        for module in modules.values():
            for t in module.state_dict().values():
                dist.broadcast(t, 0)

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision, for every rank (e.g. 'the time is up')."""
        if not self.enabled:
            return flag
        import torch  # torch loads on first use (start-up speed)
        import torch.distributed as dist  # torch loads on first use (start-up speed)

        t = torch.tensor([1.0 if flag else 0.0])
        dist.broadcast(t, 0)
        return bool(t.item())

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist  # torch loads on first use (start-up speed)

            dist.destroy_process_group()


# --------------------------------------------------------------------------- resumable state


def _save_state(run_dir: Path, recipe: Any, step: int, elapsed: float, rng: np.random.Generator, history: dict) -> None:
    """Weights, optimizer moments and random states as safetensors + JSON (never pickle)."""
    import torch  # torch loads on first use (start-up speed)
    from safetensors.torch import save_file  # with torch, on first use

    run_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, module in recipe.modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous()
    for name, opt in recipe.optimizers.items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for index, slots in state["state"].items():
            for key, value in slots.items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim.{name}.{index}.{key}"] = tensor.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = run_dir / f"state.safetensors.{os.getpid()}.tmp"
    save_file(tensors, str(tmp))
    meta = {"step": step, "elapsed_s": elapsed, "numpy_rng": rng.bit_generator.state, "param_groups": groups, "history": history}
    tmp_json = run_dir / f"state.json.{os.getpid()}.tmp"
    tmp_json.write_text(json.dumps(meta))
    os.replace(tmp, run_dir / "state.safetensors")
    os.replace(tmp_json, run_dir / "state.json")


def _load_state(run_dir: Path, recipe: Any, rng: np.random.Generator) -> tuple[int, float, dict] | None:
    import torch  # torch loads on first use (start-up speed)
    from safetensors.torch import load_file  # with torch, on first use

    if not (run_dir / "state.json").exists() or not (run_dir / "state.safetensors").exists():
        return None
    meta = json.loads((run_dir / "state.json").read_text())
    tensors = load_file(str(run_dir / "state.safetensors"))
    for name, module in recipe.modules.items():
        prefix = f"module.{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in recipe.optimizers.items():
        prefix = f"optim.{name}."
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, slot = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[slot] = value
        device = next(recipe.modules[next(iter(recipe.modules))].parameters()).device
        state = {i: {k: (v if k == "step" else v.to(device)) for k, v in slots.items()} for i, slots in state.items()}
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    torch.set_rng_state(tensors["rng.torch"])
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["step"]), float(meta["elapsed_s"]), meta["history"]


# --------------------------------------------------------------------------- samples along the way


def _first_bars(melody: RollTrack, grid: Grid, bars: int) -> tuple[RollTrack, Grid]:
    kept = grid.bars[:bars]
    n = kept[-1].end
    cut = RollTrack(melody.name, melody.program, melody.is_drum, melody.velocity[:n].copy(), melody.onset[:n].copy())
    return cut, Grid(grid.ticks_per_beat, n, list(kept), grid.steps_per_beat)


def _notes_json(track: RollTrack) -> dict:

    steps = Grid(4, track.n_steps, [])  # 4 ticks per quarter: ticks are steps
    return {"name": track.name, "program": track.program, "notes": [[n.start, n.end, n.pitch] for n in roll_to_notes(track, steps)]}


def _snapshot(recipe: Any, melodies: list[tuple[str, RollTrack, Grid]], step: int, seconds: float) -> dict:

    model = recipe.accompanist()
    pieces = []
    for pid, melody, grid in melodies:
        tracks = model.generate(melody, grid, {}, 0)
        for i, track in enumerate(tracks):
            if track.role == "continuation":  # only what was added after the melody (which is drawn already)
                grid = extend_grid(grid, track.n_steps)
                added = track.velocity.copy()
                added[: melody.n_steps] = 0
                tracks[i] = RollTrack("Continuation", track.program, track.is_drum, added, track.onset & (added > 0))
        pieces.append(
            {
                "piece": pid,
                "bars": [b.start for b in grid.bars],
                "n_steps": grid.n_steps,
                "tracks": [_notes_json(melody)] + [_notes_json(t) for t in tracks],
            }
        )
    return {"step": step, "seconds": round(seconds, 1), "pieces": pieces}


# --------------------------------------------------------------------------- choosing the checkpoint


class _Selector:
    """Model selection on validation pieces (training pieces the model never trains on, never the
    held-out ones): every `every_s` seconds, once the recipe says its model is selectable, the
    generator accompanies the validation melodies and `studio.training.evaluate.validation_score` measures
    how far its metrics are from the real accompaniments'; the best-scoring weights are what ships
    (adversarial training wanders, so the last step is not always the best)."""

    def __init__(self, pieces: list, params: dict, every_s: float, run_dir: Path, own_score: bool = False) -> None:

        self.pieces, self.params, self.every_s, self.run_dir = pieces, params, every_s, run_dir
        self.own_score = own_score  # the recipe scores itself (`recipe.validation_score(pieces)`: the melody models' NLL)
        self.real = real_summary(pieces) if pieces and not own_score else {}
        self.best: dict[str, Any] | None = None
        self.weights: dict | None = None
        self.last_check = time.perf_counter()

    def check(self, recipe: Any, step: int, history: dict, force: bool = False) -> None:
        if not self.pieces or not recipe.selectable(step):
            return
        if not force and time.perf_counter() - self.last_check < self.every_s:
            return
        from safetensors.torch import save_file  # with torch, on first use

        self.last_check = time.perf_counter()
        if self.own_score:
            score, generated = recipe.validation_score(self.pieces)
        else:
            score, generated = validation_score(recipe.accompanist(), self.pieces, self.real, self.params)
        history.setdefault("validation", []).append(
            {"step": step, "score": round(score, 4), **{k: round(v, 4) for k, v in generated.items()}}
        )
        if self.best is None or score < self.best["score"]:
            self.best = {"step": step, "score": round(score, 4)}
            self.weights = {k: v.clone() for k, v in recipe.export().items()}  # export() may share the live parameters
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_file(self.weights, str(self.run_dir / "best.safetensors"))
            (self.run_dir / "best.json").write_text(json.dumps(self.best))

    def restore(self) -> None:
        """The best so far of a resumed run."""
        from safetensors.torch import load_file  # with torch, on first use

        if (self.run_dir / "best.json").exists() and (self.run_dir / "best.safetensors").exists():
            self.best = json.loads((self.run_dir / "best.json").read_text())
            self.weights = load_file(str(self.run_dir / "best.safetensors"))


def _split_validation(dataset: Any, fraction: float, cap: int) -> tuple[Any, list]:
    """(the dataset with the validation pieces taken out of `train`, the validation pieces): the
    pinned split's validation list when the dataset has one (`Dataset.validation`), else whole
    groups drawn by `studio.training.splits.validation_ids` (seed 1, up to `cap` pieces)."""

    pinned = getattr(dataset, "validation", None)
    if pinned is not None:
        chosen = set(pinned)
    else:
        ids = [p.id for p in dataset.train]
        chosen = set(validation_ids(ids, [p.group or p.id for p in dataset.train], fraction, cap))
    if not chosen:
        return dataset, []
    fit = dataclasses.replace(dataset, train=[p for p in dataset.train if p.id not in chosen])
    return fit, sorted((p for p in dataset.train if p.id in chosen), key=lambda p: p.id)


def split_file_for(config: TrainConfig) -> Path | None:
    """The split file a run reads, or writes when it is not there yet: the committed
    ``models/checkpoints/splits/<genre>.json`` of a corpus or melody genre, ``splits/<name>.json``
    beside the checkpoint for a folder of MIDI files; None for a ``cache:`` dataset (its split is
    recorded in the cache) and for `max_pieces` quick runs (a seeded draw over their few pieces)."""

    genre = config.dataset_genre
    if genre.startswith("cache:") or config.max_pieces is not None:
        return None
    if genre.startswith("folder:"):
        return config.stem.parent / "splits" / f"{config.name}.json"
    return split_path(genre)


def _pin_new_split(path: Path, genre: str, dataset: Any, validation: list) -> Any:
    """Write the split a run drew (held out, validation, the rest) to `path`, for the next runs."""

    how = (
        "computed on the first training run (studio.training.splits.split_pieces, seed 0, related pieces together; validation by "
        "studio.training.splits.validation_ids, seed 1) and read by every later run and evaluation"
    )
    val = sorted(p.id for p in validation)
    return write_split(
        Split(genre, how, tuple(sorted(p.id for p in dataset.train)), tuple(val), tuple(sorted(p.id for p in dataset.held_out))), path
    )


def _repo_path(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


# --------------------------------------------------------------------------- the loop


def _hardware(device: str) -> str:
    import torch  # torch loads on first use (start-up speed)

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"CPU: {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"


def run_training(config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train, save the checkpoint, card and history; returns the card (see the module docstring)."""
    import torch  # torch loads on first use (start-up speed)
    from tqdm import tqdm  # only while building a data set

    trainable = trainable_families()
    if config.family not in trainable:
        raise InputError(f"family '{config.family}' has no trainer yet: choose one of {', '.join(trainable)}")
    if config.minutes <= 0 and not config.steps:
        raise InputError("give --minutes above 0 or --steps")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.backends.cuda.matmul.allow_tf32 = True  # on GPUs that have it; no effect on the CPU
    torch.backends.cudnn.allow_tf32 = True
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dist = _Dist(device)
    if dist.enabled and device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    family = family_module(config.family)
    genre = config.dataset_genre
    split_file = split_file_for(config)
    pinned = split_file is not None and split_file.is_file()
    if family.FAMILY.dataset == "melodies":  # the melody models learn from tunes (their split is the committed one)
        dataset = melody_dataset(genre, config.max_pieces, progress and dist.main)
    elif genre.startswith("cache:"):
        dataset = load_cached_dataset(genre.split(":", 1)[1], progress=progress and dist.main)
    else:
        split = str(split_file) if pinned else ("" if split_file is not None else None)
        dataset = build_dataset(
            DatasetConfig(genre, max_pieces=config.max_pieces, split_file=split, reduction=config.reduction),
            progress=progress and dist.main,
        )
    if not dataset.train:
        raise InputError(f"no training pieces in {config.dataset_genre}")
    torch.manual_seed(config.seed + dist.rank)
    rng = np.random.default_rng(config.seed + dist.rank)
    dataset, validation = _split_validation(dataset, config.validation, config.max_validation_pieces)
    if split_file is not None and not pinned and dist.main and getattr(dataset, "validation", None) is None:
        _pin_new_split(split_file, genre, dataset, validation)  # a folder's (or a new genre's) first run pins its draw
        pinned = True
    config = dataclasses.replace(config, split_file=_repo_path(split_file) if pinned and split_file is not None else None)
    recipe = family.training(dataset, dict(config.overrides), device)
    recipe.reduce_gradients = dist.average_gradients
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config.stem)
    selector = _Selector(
        validation if dist.main else [],
        {p["name"]: p["default"] for p in family.PARAMS},
        config.validate_every_s,
        run_dir,
        own_score=isinstance(recipe, SelfScoring),
    )

    step, elapsed = 0, 0.0
    history: dict[str, Any] = {"losses": [], "samples": [], "sessions": []}
    resumed = None if config.fresh else _load_state(run_dir, recipe, rng)
    if resumed is not None:
        step, elapsed, history = resumed
        history.setdefault("sessions", [])
        selector.restore()
        if dist.main and progress:
            print(f"resuming {config.name} from step {step} ({elapsed / 60:.1f} min done) in {run_dir}", file=sys.stderr)
    dist.broadcast_modules(recipe.modules)
    sample_melodies = [(p.id, *_first_bars(p.tracks[0], p.grid, 8)) for p in dataset.held_out[:2]]
    budget = config.minutes * 60
    sample_every = (config.steps / config.samples if config.steps else None, budget / config.samples)

    bar = tqdm(
        total=config.steps or None,
        initial=step,
        desc=f"train {config.name}",
        disable=not (progress and dist.main),
        unit="step",
        file=sys.stderr,
    )
    start = time.perf_counter() - elapsed
    last_save = time.perf_counter()
    if not history["samples"] and dist.main:
        history["samples"].append(_snapshot(recipe, sample_melodies, 0, 0.0))
    next_sample = len(history["samples"])  # the next snapshot is due after this share of the run
    while True:
        elapsed = time.perf_counter() - start
        done = (config.steps is not None and step >= config.steps) or (budget > 0 and not config.steps and elapsed >= budget)
        if dist.agree(done):
            break
        losses = recipe.step(step, rng)
        step += 1
        history["losses"].append(
            {"step": step, "seconds": round(time.perf_counter() - start, 2), **{k: round(v, 5) for k, v in losses.items()}}
        )
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        due = (step >= next_sample * sample_every[0]) if sample_every[0] else (elapsed >= next_sample * sample_every[1])
        if dist.main and due and next_sample <= config.samples:
            history["samples"].append(_snapshot(recipe, sample_melodies, step, elapsed))
            next_sample += 1
        if dist.main:
            selector.check(recipe, step, history)
        if dist.main and time.perf_counter() - last_save > config.save_every_s:
            _save_state(run_dir, recipe, step, time.perf_counter() - start, rng, history)
            last_save = time.perf_counter()
    bar.close()
    elapsed = time.perf_counter() - start
    first_step = history["sessions"][-1]["to_step"] if history["sessions"] else 0
    first_s = history["sessions"][-1]["to_s"] if history["sessions"] else 0.0
    if step > first_step or not history["sessions"]:  # a resumed run that was already done adds no session
        history["sessions"].append(
            {
                "hardware": _hardware(device) + (f" x {dist.world} processes" if dist.world > 1 else ""),
                "from_step": first_step,
                "to_step": step,
                "to_s": round(elapsed, 1),
                "minutes": round((elapsed - first_s) / 60, 1),
            }
        )
    card: dict[str, Any] = {}
    if dist.main:
        if not history["samples"] or history["samples"][-1]["step"] != step:
            history["samples"].append(_snapshot(recipe, sample_melodies, step, elapsed))
        selector.check(recipe, step, history, force=not history.get("validation") or history["validation"][-1]["step"] != step)
        _save_state(run_dir, recipe, step, elapsed, rng, history)
        card = _write_checkpoint(config, recipe, family, dataset, history, step, elapsed, device, dist.world, selector, len(validation))
        if validation and not selector.own_score and isinstance(family, TunableFamily) and family.TUNABLE:
            card = _tune_defaults(config, family, card, validation, selector.real, progress)
    dist.close()
    if dist.main and config.evaluate:
        card = _evaluate_into_card(config, card, progress)
    return card


TUNING_SEEDS = (0, 1, 2)  # a default is a style: judged on three accompaniments of each piece, not one draw


def tune_on_validation(
    model: Any,
    tunable: Mapping[str, Sequence[Any]],
    params: Mapping[str, Any],
    pieces: Sequence[Any],
    real: Mapping[str, float],
    progress: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The defaults `_tune_defaults` chooses (see there) for `model` (an accompanist with `generate`)
    on validation `pieces` whose real metrics are `real`: (the parameters with the chosen values,
    per tuned parameter the chosen value and every value's score)."""
    params = dict(params)
    tuned: dict[str, Any] = {}
    for name, values in tunable.items():
        scores = {}
        for value in values:
            scores[value] = round(validation_score(model, pieces, real, {**params, name: value}, TUNING_SEEDS)[0], 4)
            if progress:
                print(f"validation score with {name}={value}: {scores[value]}", file=sys.stderr)
        params[name] = min(scores, key=lambda v: (scores[v], list(scores).index(v)))
        tuned[name] = {"chosen": params[name], "scores": {str(v): sc for v, sc in scores.items()}}
    return params, tuned


def _tune_defaults(config: TrainConfig, family: Any, card: dict, pieces: list, real: Mapping[str, float], progress: bool) -> dict:
    """Choose the defaults of the family's `TUNABLE` parameters (the GAN's sampling temperature, then
    its steadiness, then its variety) for the selected weights, on the same validation pieces (never the held-out
    ones): one parameter at a time, in `TUNABLE`'s order and at the values already chosen, each
    listed value in turn, the one whose metrics over the pieces accompanied at `TUNING_SEEDS` are
    nearest the real accompaniments' (`validation_score`, ties to the earlier value). The card
    records every value's score."""

    model = family.load(card, config.stem.with_suffix(".safetensors"), "cpu")
    params, tuned = tune_on_validation(model, family.TUNABLE, {p["name"]: p["default"] for p in card["params"]}, pieces, real, progress)
    card["params"] = [{**p, "default": params[p["name"]]} for p in card["params"]]
    card["training"]["tuned_defaults"] = {
        **tuned,
        "how": f"one parameter at a time, in this order: each value's validation score on the {len(pieces)} validation "
        f"pieces (each accompanied at seeds {', '.join(map(str, TUNING_SEEDS))}) with the selected weights, the lowest kept "
        "(studio.training.train._tune_defaults; the held-out pieces are not used)",
    }
    config.stem.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _final_losses(history: Mapping[str, Any], last: int = 100) -> dict[str, float]:
    rows = history["losses"][-last:]
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("step", "seconds")))
    return {k: round(float(np.mean([r[k] for r in rows if k in r])), 4) for k in keys}


def _thin(rows: list[dict], limit: int = 2000) -> list[dict]:
    """At most `limit` rows: consecutive steps averaged in equal buckets (the shipped history stays small)."""
    if len(rows) <= limit:
        return rows
    bounds = np.linspace(0, len(rows), limit + 1).astype(int)
    out = []
    for a, b in itertools.pairwise(bounds.tolist()):
        bucket = rows[a:b]
        keys = [k for k in bucket[-1] if all(k in r for r in bucket)]
        out.append({k: (bucket[-1][k] if k in ("step", "seconds") else round(float(np.mean([r[k] for r in bucket])), 5)) for k in keys})
    return out


def _write_checkpoint(
    config: TrainConfig,
    recipe: Any,
    family: Any,
    dataset: Any,
    history: dict,
    step: int,
    elapsed: float,
    device: str,
    world: int,
    selector: _Selector,
    n_validation: int,
) -> dict:
    from safetensors.torch import save_file  # with torch, on first use

    stem = config.stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = selector.weights if selector.weights is not None else recipe.export()
    save_file(weights, str(stem.with_suffix(".safetensors")), metadata={"family": config.family, "name": config.name})
    hist = history_path(stem)
    hist.parent.mkdir(parents=True, exist_ok=True)
    shipped = {
        "name": config.name,
        "family": config.family,
        "sessions": history["sessions"],
        "validation": history.get("validation", []),
        "losses": _thin(history["losses"]),
        "samples": history["samples"],
    }
    hist.write_text(json.dumps(shipped, separators=(",", ":")))
    source = config.data or f"corpus:{config.genre}"
    card = {
        "name": config.name,
        "family": config.family,
        "genre": config.genre,
        "description": family.describe(config.genre, dataset),
        "tracks": recipe.tracks(),
        "params": family.PARAMS,
        "training": {
            "data": f"{source} ({dataset.info.get('sources', '?')} files, {len(dataset.skipped)} skipped)",
            "pieces": len(dataset.train) + n_validation + len(dataset.held_out),
            "train_pieces": len(dataset.train),  # without the validation pieces
            "held_out_pieces": len(dataset.held_out),
            "validation_pieces": n_validation,
            "selected": (
                {
                    **selector.best,
                    "how": (
                        recipe.selection_how + " (training pieces kept out of training)"
                        if selector.own_score
                        else "the generator that scored best on the validation pieces (training pieces kept out of training): "
                        "mean distance of its metrics from the real ones in units of the acceptance bounds "
                        "(studio.training.evaluate.validation_score)"
                    ),
                }
                if selector.best
                else {"step": step, "how": "the last step"}
            ),
            "split": "by piece, seed 0 (studio.training.data.split_pieces); related pieces kept together",
            **({"reduction": dataset.config.voice_reduction} if config.reduction else {}),
            **(
                {
                    "split_file": config.split_file,
                    "split_lists": {"train": len(dataset.train), "validation": n_validation, "held_out": len(dataset.held_out)},
                }
                if config.split_file
                else {}
            ),
            "windows": recipe.n_windows,
            "steps": step,
            "wall_time_minutes": round(elapsed / 60, 1),
            "hardware": "; ".join(
                f"{s['hardware']} (steps {s['from_step']}-{s['to_step']}, {s['minutes']} min)" for s in history["sessions"]
            ),
            "seed": config.seed,
            "final_losses": _final_losses(history),
            "history": str(history_path(stem).relative_to(REPO_ROOT))
            if history_path(stem).is_relative_to(REPO_ROOT)
            else str(history_path(stem)),
            "command": f"python -m studio train --family {config.family} --genre {config.genre}"
            + (f" --data {config.data}" if config.data else "")
            + (f" --reduction {config.reduction}" if config.reduction else "")
            + (f" --steps {config.steps}" if config.steps else f" --minutes {config.minutes:g}")
            + "".join(f" --set {k}={v}" for k, v in config.overrides.items()),
            "parameters": recipe.n_parameters(),
        },
        "metrics": {},
        "config": recipe.config.to_json(),
    }
    stem.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _evaluate_into_card(config: TrainConfig, card: dict, progress: bool) -> dict:

    registry = ModelRegistry(config.stem.parent, device="cpu")
    data = config.dataset_genre
    evaluation = EvaluationConfig(
        unseen=config.evaluate_unseen,
        data=None if data.startswith("cache:") else data,
        split_file=str(REPO_ROOT / config.split_file) if config.split_file else None,
    )
    report = evaluate(config.name, evaluation, registry, progress)
    if progress:
        print(format_report(report), file=sys.stderr)
    card["metrics"] = report
    config.stem.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card

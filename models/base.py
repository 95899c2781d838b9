"""The model-family contract: what every family in `models/` declares, offers and shares.

A family is one file, `models/<family>.py`, that imports only this module, `models.weights`,
`studio.core` and torch. The contract, in three parts:

1. **The declaration** (`FamilyInfo`): every family file assigns ``FAMILY = FamilyInfo(...)`` once,
   with its name, label, the page's heading and plain-words idea, what it writes (accompaniment,
   melody or a variation), whether it uses torch, its place in the studio's teaching order and the
   data it learns from, and whether it takes the user's chords (`follows_chords`). Chords may be a
   property of the card rather than of the family (the AR-CNN follows chords only when its network was
   trained with chord channels; an older card of the family was not): such a family also names the
   card's config setting that says so (`chords_setting`), and the studio asks the card
   (`card_follows_chords(card)`), never the family alone. Its arguments are literals, so the declaration is read from the file's text
   (`declarations`) without importing the family: listing models, or refusing a bad melody, never
   loads PyTorch. `families()` / `family(name)` import the modules when their code is wanted.
2. **The capabilities**: the door every family has (`load`, `PARAMS`, `describe`; the loaded model's
   `generate`: `Accompanist`), and the optional ones as `typing.Protocol`s checked with
   `isinstance` (`BatchGenerator`, `StepTracer`, `TracePlanner`, `Interpolator`, `Explainer`,
   `LatentMapper`, `LikelihoodScorer`, `Regenerator`; for a family module `TrainableFamily`, `TunableFamily`,
   `BaselineFamily`; for a training recipe `SelfScoring`). Why protocols and not a list of
   capability names in the declaration: a capability then cannot be declared and missing, or present
   and undeclared; the method is the declaration, and the protocol names it, types it and is the one
   place that says what the studio calls. `tests/models/test_family_contract.py` checks every shipped
   family against the protocols' signatures. One capability is also declared, `FamilyInfo.regenerates`
   (`Regenerator`), because the page must know before a model loads whether to offer it and whether
   voices can be chosen; the contract test checks that the declaration and the method agree.
3. **What is written once**: the config's JSON round trip (`ConfigMixin`), `--set` overrides
   (`configured`), the training recipe's skeleton (`TrainingRecipe`) and the voice families' training
   set-up (`voice_setup`); `models.weights.loaded` is the weights families' `load`.
4. **Cancellation**: the studio runs every model call under a `CancelToken` (`cancellable`), which it
   cancels when it stops waiting (the call's time-out). A family's sampling loops (Gibbs iterations,
   denoising steps, one event or one 16th at a time) call `check_cancelled()` between iterations,
   which raises `Cancelled` once the token is cancelled or past its deadline, so abandoned work ends
   within an iteration instead of running on. The token is the call's context (a `contextvars`
   variable that `cancellable` sets in the thread that runs the call), not a parameter of `generate`:
   the loops sit two or three calls deep in helper functions, and a parameter would have to be
   passed down through each of them and added to every capability's signature (a new family's
   too); outside a call (training, evaluation) the check does nothing. A loop with no check still
   works; it only runs to its end after a time-out.

Adding a family is one new file with a ``FAMILY`` declaration, plus its checkpoint and card.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import pkgutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from models.weights import exported, parameter_count
from studio.core.conditioning import REST, pitches_to_tokens, tokens_to_pitches
from studio.core.eighth_grid import snap_for_seed
from studio.core.metrics import melody_key
from studio.core.part_writing import training_ranges
from studio.core.passing_notes import fill_for_seed
from studio.core.restrikes import restrike_odds
from studio.core.roll import RollTrack
from studio.core.voice_leading import SATB_RANGES
from studio.core.voices import RESTING_SHARE, VoiceWindows, rests_under_melody, voice_piece

__all__ = [
    "CHORDS_PARAM",
    "GUIDE_PARAM",
    "MELODY_TRACKS",
    "Accompanist",
    "BaselineFamily",
    "BatchGenerator",
    "CancelToken",
    "Cancelled",
    "ConfigMixin",
    "Explainer",
    "FamilyInfo",
    "Interpolator",
    "LatentMapper",
    "LikelihoodScorer",
    "Regenerator",
    "SelfScoring",
    "StepTracer",
    "TracePlanner",
    "TrainableFamily",
    "TrainingRecipe",
    "TunableFamily",
    "cancellable",
    "card_follows_chords",
    "check_cancelled",
    "coerce_setting",
    "configured",
    "declarations",
    "families",
    "family",
    "figured_tokens",
    "trained_on",
    "voice_setup",
]

Writes = Literal["accompaniment", "melody", "variation"]

# The chords a person set, placed on the melody's grid (`studio.core.chords.progression_spans`): the
# service passes them to a family that `follows_chords` as this entry of `params` (absent: none set).
CHORDS_PARAM = "chords"


# --------------------------------------------------------------------------- 1. the declaration


@dataclass(frozen=True)
class FamilyInfo:
    """What a family says about itself, once, as ``FAMILY = FamilyInfo(...)`` (literal arguments only)."""

    name: str  # the module's name and the cards' ``family``, e.g. "arcnn"
    label: str  # how the page and the CLI name it, e.g. "AR-CNN"
    heading: str  # the card's heading for the idea, e.g. "How an AR-CNN works"
    idea: str  # the family's idea in plain words, one or two sentences
    writes: Writes  # accompaniment under a melody, a longer melody, or a variation of it
    uses_torch: bool  # False: the registry loads it on the CPU without importing torch
    order: int  # its place in the studio's teaching order (the page's picker)
    dataset: Literal["rolls", "melodies"] = "rolls"  # multi-track rolls, or tunes (`studio.training.melodies`)
    flat_dynamics: bool = False  # writes every note at one velocity: the service shapes them (`studio.core.dynamics`)
    follows_chords: bool = False  # takes the user's chords: `params[CHORDS_PARAM]`, a list of `studio.core.chords.ChordSpan`
    # Its loaded model writes again a selection of a take (`Regenerator`): "" not at all, "bars" some bars of all its
    # tracks together, "voices" some bars of any of its voices. Declared here so the page and the service know without
    # loading the model; tests/models/test_family_contract.py checks it against the protocol.
    regenerates: Literal["", "bars", "voices"] = ""
    chords_setting: str = ""  # a card's `config` entry that says whether that card follows chords (empty: all the family's cards do)
    # The longest melody, in quarter-note beats, its model writes on a CPU within the studio's answer time (a take in
    # under 5 s on 2 cores, issue 23); the registry refuses a longer one with a line that names the models that take it.
    # 0: no limit of its own (the studio's `Limits.max_beats` holds). On a GPU the family's limit is lifted.
    cpu_max_beats: int = 0
    # What its model takes per beat of melody on a CPU (the project's 2-core machine, one torch thread, the command's
    # first call), seconds: the synthesis budget is what the answer time leaves after it
    # (`studio.audio.synth.budget.after_model`). 0: about as fast as the GANs, which the budget was set with.
    cpu_seconds_per_beat: float = 0.0

    @property
    def writes_melody(self) -> bool:
        """A melody model: its result may be accompanied by another model ('then')."""
        return self.writes != "accompaniment"


def _declared(path: Path) -> FamilyInfo | None:
    """The ``FAMILY = FamilyInfo(...)`` of a family file, read from its text; None if it declares none."""
    text = path.read_text(encoding="utf-8")
    if "FAMILY = FamilyInfo(" not in text:  # most files are skipped without parsing
        return None
    for node in ast.parse(text, str(path)).body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["FAMILY"]
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "FamilyInfo"
        ):
            try:
                return FamilyInfo(
                    *map(ast.literal_eval, node.value.args), **{k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
                )
            except ValueError as exc:
                raise ValueError(f"{path.name}: FAMILY's arguments must be literals ({exc})") from None
    return None


def declarations() -> dict[str, FamilyInfo]:
    """Every family's declaration by name, in teaching order: the files of the `models` package (its
    `__path__`, so a folder added there adds its families) that declare ``FAMILY``. Nothing is imported."""
    import models  # the package itself, for its search path: this module is part of it

    return dict(_declarations(tuple(models.__path__)))


@functools.lru_cache(maxsize=8)
def _declarations(roots: tuple[str, ...]) -> tuple[tuple[str, FamilyInfo], ...]:
    found = {}
    for info in pkgutil.iter_modules(list(roots)):
        path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[attr-defined]
        if info.ispkg or info.name.startswith("_") or not path.is_file():
            continue
        declared = _declared(path)
        if declared is None:
            continue
        if declared.name != info.name:
            raise ValueError(f"models/{info.name}.py declares FAMILY name {declared.name!r}: it must be its file's name")
        found.setdefault(info.name, declared)
    return tuple(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def card_follows_chords(card: Mapping[str, Any]) -> bool:
    """Whether the model of `card` (a JSON card) takes the user's chords: its family declares
    `follows_chords`, and, where the family names a `chords_setting`, the card's config has it true
    (a card written before the setting existed does not follow chords). No weights are loaded."""
    info = declarations().get(str(card.get("family", "")))
    if info is None or not info.follows_chords:
        return False
    return not info.chords_setting or bool((card.get("config") or {}).get(info.chords_setting, False))


def family(name: str) -> ModuleType:
    """The family module `models.<name>` (imported on first use); `KeyError` for a name no file declares."""
    if name not in declarations():
        raise KeyError(f"unknown model family {name!r}: known are {', '.join(declarations())}")
    return importlib.import_module(f"models.{name}")


def families() -> dict[str, ModuleType]:
    """Every family module by name, in teaching order (imports them all: torch with most)."""
    return {name: family(name) for name in declarations()}


# --------------------------------------------------------------------------- 2. the capabilities


@runtime_checkable
class Accompanist(Protocol):
    """What every loaded model offers the service: `load(card, weights, device)` returns one."""

    def generate(self, melody: Any, grid: Any, params: Mapping[str, Any], seed: int) -> list[Any]:
        """Tracks (`RollTrack`s, each shape=(T, 128)) for a melody on `grid`."""
        ...


@runtime_checkable
class BatchGenerator(Protocol):
    """Simultaneous requests share one forward pass (`studio.serving.batching`)."""

    def generate_batch(self, requests: Sequence[tuple[Any, Any, Mapping[str, Any], int]]) -> list[list[Any]]: ...


@runtime_checkable
class StepTracer(Protocol):
    """Writes step by step: the music after some of the steps of the same run `generate` does."""

    def sampling_trace(
        self, melody: Any, grid: Any, params: Mapping[str, Any], seed: int, at: Sequence[int]
    ) -> list[tuple[int, list[Any]]]: ...


@runtime_checkable
class TracePlanner(Protocol):
    """A step tracer that chooses its own steps and captions (else: the `iterations` asked for)."""

    def trace_plan(self, params: Mapping[str, Any]) -> tuple[int, list[int]]: ...

    def trace_caption(self, step: int, total: int) -> str: ...


@runtime_checkable
class Interpolator(Protocol):
    """The way from one melody to another through a latent space."""

    def interpolate(self, first: Any, first_grid: Any, second: Any, second_grid: Any, steps: int) -> Any: ...


@runtime_checkable
class Explainer(Protocol):
    """What the model weighed at each step of a continuation."""

    def explain(self, melody: Any, grid: Any, params: Mapping[str, Any], seed: int) -> dict[str, Any]: ...


@runtime_checkable
class LatentMapper(Protocol):
    """A map of the melody's codes in the latent space."""

    def latent_map(self, melody: Any, grid: Any, params: Mapping[str, Any], seed: int) -> dict[str, Any]: ...


@runtime_checkable
class Regenerator(Protocol):
    """Writes again only a selection of a take: `bars` (first, last) as the page numbers them (1 the
    first full bar, a pickup 0) of the accompaniment tracks `voices` (indices; None: all), and keeps
    everything else note for note (the rule of `studio.core.selection`). `accompaniment` is the take's
    tracks in the order `generate` writes them; returns the same tracks, regenerated. The same seed
    and input give the same result; bad bars or voices raise `studio.core.selection.SelectionError`."""

    def regenerate(
        self,
        melody: Any,
        grid: Any,
        accompaniment: Sequence[Any],
        params: Mapping[str, Any],
        seed: int,
        bars: tuple[int, int],
        voices: Sequence[int] | None = None,
    ) -> list[Any]: ...


@runtime_checkable
class LikelihoodScorer(Protocol):
    """Held-out negative log-likelihood (`studio.training.evaluate`)."""

    def held_out_nll(self, pieces: Sequence[Any], seed: int = 0) -> dict[str, Any]: ...


@runtime_checkable
class TrainableFamily(Protocol):
    """A family module that `studio.training.train` can train: `training(data, overrides, device)`
    returns a `TrainingRecipe`; `PARAMS` are the card's generation parameters."""

    PARAMS: list[dict[str, Any]]

    def training(self, data: Any, overrides: Mapping[str, Any], device: str = "cpu") -> TrainingRecipe: ...

    def describe(self, genre: str, dataset: Any = None) -> str: ...


@runtime_checkable
class TunableFamily(Protocol):
    """A family whose parameter defaults are chosen on the validation pieces after training (in order)."""

    TUNABLE: Mapping[str, tuple[Any, ...]]


@runtime_checkable
class BaselineFamily(Protocol):
    """A likelihood family's baseline to score beside the model: `unigram_nll(train, held_out, n_voices)`."""

    def unigram_nll(self, train_pieces: Sequence[Any], held_out: Sequence[Any], n_voices: int) -> dict[str, Any]: ...


@runtime_checkable
class SelfScoring(Protocol):
    """A recipe that scores its own weights on the validation pieces (the melody models' likelihoods)."""

    def validation_score(self, pieces: Sequence[Any]) -> tuple[float, dict[str, float]]: ...


# --------------------------------------------------------------------------- 3. written once


class ConfigMixin:
    """A config dataclass's JSON round trip (the card's ``config``): tuples are written as lists and
    read back as tuples; names the dataclass does not know are ignored (older cards)."""

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Any:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known})


def coerce_setting(default: Any, value: Any) -> Any:
    """A `--set key=value` string as the type of the setting's default (any family's config)."""
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, tuple):
        kind = type(default[0]) if default else str
        return tuple(kind(v) for v in value.split(","))
    return value


def configured(base: Any, overrides: Mapping[str, Any], family: str) -> Any:
    """`base` (a family's config dataclass, with `to_json`/`from_json`) with `--set` overrides, each
    coerced to its setting's type; unknown names are refused with the known ones listed."""
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {family} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return type(base).from_json({**base.to_json(), **{k: coerce_setting(getattr(base, k), v) for k, v in overrides.items()}})


class TrainingRecipe:
    """The skeleton of a family's training recipe, as `studio.training.train` drives it: the family's
    subclass builds its networks and optimizers, names them here, and writes `step`.

    modules : dict of str to nn.Module
        Everything trained (saved, resumed, broadcast across DDP ranks).
    optimizers : dict of str to torch.optim.Optimizer
    served : str
        The module that serves (`accompanist`) and ships (`export`), e.g. the moving average.
    counted : tuple of str
        The modules whose parameters the card counts.
    serving : class
        The family's loaded-model class, built as ``serving(config, network, str(device))``.
    """

    served: ClassVar[str] = "network"
    counted: ClassVar[tuple[str, ...]] = ("network",)
    selection_how: ClassVar[str] = "the weights with the lowest negative log-likelihood per event on the validation pieces"

    def __init__(
        self, config: Any, device: Any, modules: Mapping[str, Any], optimizers: Mapping[str, Any], serving: Callable[[Any, Any, str], Any]
    ) -> None:
        self.config, self.device, self.serving = config, device, serving
        self.modules = dict(modules)
        self.optimizers = dict(optimizers)
        self.reduce_gradients: Callable[[Any], None] = lambda module: None  # studio.training.train: average across DDP ranks

    def selectable(self, step: int) -> bool:
        """Whether the weights of this step may be chosen to ship (checked on the validation pieces)."""
        return True

    @property
    def n_windows(self) -> int:
        return len(self.windows)  # type: ignore[attr-defined]

    def n_parameters(self) -> dict[str, int]:
        return {name: parameter_count(self.modules[name]) for name in self.counted}

    def tracks(self) -> list[dict]:
        """The card's tracks: name and GM program of each voice the family writes."""
        return [{"name": n, "program": p} for n, p in zip(self.config.voice_names, self.config.programs, strict=True)]

    def accompanist(self) -> Any:
        """The served network as it is now, as the registry would serve it (for samples along the way)."""
        return self.serving(self.config, self.modules[self.served], str(self.device))

    def step(self, step: int, rng: Any) -> dict[str, float]:
        raise NotImplementedError

    def update(self, loss: Any, name: str = "network", clip: float | None = 1.0) -> None:
        """One optimizer step of module `name` on `loss`: gradients computed, averaged across DDP
        ranks (`reduce_gradients`), their norm clipped to `clip` (None: not clipped), then applied."""
        from torch.nn.utils import clip_grad_norm_  # deferred: a family without torch (rules) never trains

        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.reduce_gradients(self.modules[name])
        if clip is not None:
            clip_grad_norm_(self.modules[name].parameters(), clip)
        optimizer.step()

    def export(self) -> dict[str, Any]:
        """The weights to ship: the served module's."""
        return exported(self.modules[self.served])


MELODY_TRACKS = ({"name": "Melody", "program": 0},)  # the card's tracks of a melody family


GUIDE_PARAM: dict[str, Any] = {
    "name": "guide",
    "type": "float",
    "default": 1.0,
    "min": 0.0,
    "max": 2.0,
    "help": "How strongly the rules of part writing steer the choice of each note's pitch (the rhythm stays the "
    "model's): the model's odds are multiplied by a penalty for leaving the voice's range, leaping over an octave, "
    "crossing another voice or moving in parallel fifths or octaves with it (0 = the model alone, 1 = the default, 2 = strict).",
}  # the voice families' part-writing guide (`studio.core.part_writing`)


# What a voice model of each corpus genre learned from, in plain words, for the cards' descriptions.
GENRE_WORDS = {
    "chorale": "Bach's four-part chorales: it writes alto, tenor and bass under your melody, as a choir would sing them",
    "renaissance": "Palestrina's masses and Josquin's chansons: it writes three lower voices in the flowing style of Renaissance church music",
    "quartet": "string quartets by Haydn, Mozart and Beethoven: it writes second violin, viola and cello parts",
}


def trained_on(genre: str) -> str:
    """The plain words for what a voice model of `genre` learned from and what it writes (`GENRE_WORDS`)."""
    return GENRE_WORDS.get(genre, f"the '{genre}' music it was given: it writes one part per instrument of that music")


def voice_setup(
    dataset: Any,
    base: Callable[..., Any],
    overrides: Mapping[str, Any],
    label: str,
    voices: int | None = None,
    too_few: str = "",
    check: Callable[[Any], None] = lambda config: None,
) -> tuple[Any, VoiceWindows]:
    """A voice family's config and training windows: the first `voices` pitched tracks of the dataset's
    first piece (drums left out), the melody first; the config (`base(voice_names=..., programs=...)`)
    names and voices the others as they are, with `--set` overrides, then `check(config)` may refuse
    it; the windows are `config.window` steps of every training piece, transposed as the dataset's
    config says. `too_few`: the error when fewer than `voices` tracks are pitched (empty: no check)."""
    first = dataset.train[0]
    pitched = [i for i, drum in enumerate(first.drums) if not drum][:voices]
    if too_few and voices is not None and len(pitched) < voices:
        raise ValueError(too_few)
    config = configured(
        base(voice_names=tuple(first.track_names[i] for i in pitched[1:]), programs=tuple(first.programs[i] for i in pitched[1:])),
        overrides,
        label,
    )
    if hasattr(config, "ranges") and not config.ranges and not all(name in SATB_RANGES for name in config.voice_names):
        # the part-writing guide's ranges: the genre's own, from its training pieces (SATB voices keep the textbook's)
        config = dataclasses.replace(config, ranges=tuple(x for pair in training_ranges(dataset.train, pitched[1:]) for x in pair))
    check(config)
    windows = VoiceWindows([voice_piece(p, pitched) for p in dataset.train], config.window, dataset.config.transpose)
    if not len(windows):
        raise ValueError(f"no training windows of {config.window} steps in the data")
    if hasattr(config, "restrikes") and not config.restrikes:  # where the genre's voices strike a held pitch again
        config = dataclasses.replace(config, restrikes=restrike_odds(windows.pieces))
    if hasattr(config, "voices_rest") and "voices_rest" not in overrides:  # whether they rest under the melody
        config = dataclasses.replace(config, voices_rest=rests_under_melody(windows.pieces) > RESTING_SHARE)
    return config, windows


# --------------------------------------------------------------------------- 4. cancellation


class Cancelled(Exception):
    """Raised by `check_cancelled` inside a model's loop: the studio no longer waits for this call."""


class CancelToken:
    """Whether a model call is still wanted: not once `cancel()` was called, nor after `deadline`
    (`time.monotonic()` seconds; None: no deadline)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop the call: its next `check_cancelled` raises `Cancelled`."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set() or (self.deadline is not None and time.monotonic() > self.deadline)


_CALL: ContextVar[CancelToken | None] = ContextVar("model_call", default=None)


@contextmanager
def cancellable(token: CancelToken) -> Iterator[CancelToken]:
    """Run a model call under `token` (the registry wraps every call): `check_cancelled` in the
    call's loops reads it. Set in the thread that runs the call, and reset after it."""
    reset = _CALL.set(token)
    try:
        yield token
    finally:
        _CALL.reset(reset)


def figured_tokens(
    tokens: np.ndarray,
    onsets: np.ndarray,
    melody: RollTrack,
    melody_tokens: np.ndarray,
    melody_onsets: np.ndarray,
    beats: np.ndarray,
    config: Any,
    seed: int,
    free: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A voice model's take (voice tokens and note starts (V, T), beside the melody's tokens and
    onsets (T,) over the same steps) with its card's rhythm of the genre: starts between the eighths
    moved onto them (``config.snap``, `studio.core.eighth_grid`), then thirds into a beat filled with
    passing notes in `melody`'s key (``config.passing``, `studio.core.passing_notes`), each drawn from
    the take's `seed`; only inside `free` (V, T) when given. A card without them: unchanged (and no key
    is looked for)."""
    snap, passing = float(getattr(config, "snap", 0.0)), tuple(getattr(config, "passing", ()))
    if not snap and not passing:
        return tokens, onsets
    n = len(melody_tokens)
    pitches = np.concatenate([tokens_to_pitches(melody_tokens)[None], tokens_to_pitches(tokens)])
    starts = np.concatenate([np.zeros((1, n), bool), onsets])
    where = None if free is None else np.concatenate([np.zeros((1, n), bool), free])
    sung = np.asarray(melody_onsets, bool) & (np.asarray(melody_tokens) != REST)
    pitches, starts = snap_for_seed(pitches, starts, snap, seed, where)
    pitches, starts = fill_for_seed(pitches, starts, sung, beats, passing, melody_key(melody).accepted, seed, where)
    return pitches_to_tokens(pitches[1:]), starts[1:]


def check_cancelled() -> None:
    """Called between iterations of a sampling loop: raises `Cancelled` when the call it runs for is
    cancelled or past its deadline; outside a `cancellable` call (training, evaluation) nothing."""
    token = _CALL.get()
    if token is not None and token.cancelled:
        raise Cancelled("the studio stopped waiting for this model call")

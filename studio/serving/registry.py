"""The model registry: every model the studio knows, loaded once per process and shared by all sessions.

Cards (`models/checkpoints/<name>.json`) are read at start-up, which is cheap. Weights
(`<name>.safetensors`, safetensors only, never pickle) are loaded on a model's first use, exactly
once even when many sessions ask at the same moment, onto CUDA when there is a GPU. A card or
checkpoint that is broken disables that model with a message; the other models keep working.

A model family is a module `models.<family>` that declares ``FAMILY`` and offers `load(card,
weights_path, device) -> model`, where `model.generate(melody, grid, params, seed) -> list[RollTrack]`
(the contract, `Accompanist` and the optional capabilities, is in `models.base`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.base import (
    CHORDS_PARAM,
    Accompanist,
    BatchGenerator,
    Cancelled,
    CancelToken,
    FamilyInfo,
    cancellable,
    card_follows_chords,
    check_cancelled,
    declarations,
    family,
)
from studio.core.config import REPO_ROOT, ServiceConfig
from studio.core.errors import InputError, ModelError
from studio.core.roll import Grid, RollTrack
from studio.serving.batching import BatchConfig, Batcher

__all__ = [
    "Accompanist",
    "ModelCard",
    "ModelRegistry",
    "Param",
    "default_registry",
    "family_info",
    "family_writes",
    "finite_number",
    "follows_chords",
    "parse_params_json",
    "quoted",
    "whole_number",
]

CHECKPOINTS = REPO_ROOT / "models" / "checkpoints"


# Parameter values come from a command line, a page or a JSON request: every one is read here.
MAX_VALUE_CHARS = 64  # a number or a choice written as text is never longer
MAX_PARAMS_JSON_CHARS = 10_000  # a JSON object of every parameter of any model is a few hundred
MAX_PARAMS_JSON_DEPTH = 4  # parameters are a flat object; nesting past this is refused before parsing
_QUOTE_CHARS = 40


def quoted(value: Any, limit: int = _QUOTE_CHARS) -> str:
    """`value` as a message shows it: its repr (control characters escaped), cut to about `limit`
    characters, so a 10 MB value is not echoed whole (and a 10,000-deep list does not recurse)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of {value.bit_length() * 0.30103:,.0f} digits"
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a list nested 10,000 deep
        return f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= limit else f"{text[:limit]}..."


def finite_number(value: Any) -> float | int | None:
    """`value` (a number, or a number written as text) as an int or a finite float; None when it is
    not one: a bool, NaN, infinity, 1e400, text longer than `MAX_VALUE_CHARS`, anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_VALUE_CHARS:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def whole_number(value: Any) -> int | None:
    """`value` as an int when it is a whole number (3, 3.0, '3'); None for 1.5, True, None, 'inf', ..."""
    number = finite_number(value)
    if number is None or number != int(number):
        return None
    return int(number)


def _nesting(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_params_json(text: str | None) -> dict[str, Any]:
    """A model's parameters given as a JSON object (the `/generate` API), e.g. '{"creative_risk": 0.5}'.

    Refused with one short line: text over `MAX_PARAMS_JSON_CHARS`, nesting deeper than
    `MAX_PARAMS_JSON_DEPTH` (checked before parsing: 10,000 levels made `json.loads` raise
    RecursionError), NaN, Infinity and numbers too large for a float (1e400), and anything but an
    object. Empty text is no parameters. The values are checked against the model later (`Param.coerce`).
    """
    example = 'e.g. {"creative_risk": 0.5}'
    if text is None or not text.strip():
        return {}
    if len(text) > MAX_PARAMS_JSON_CHARS:
        raise InputError(
            f"the parameters are {len(text):,} characters long, over the {MAX_PARAMS_JSON_CHARS:,} limit: send a JSON object, {example}"
        )
    if _nesting(text) > MAX_PARAMS_JSON_DEPTH:
        raise InputError(f"the parameters nest more than {MAX_PARAMS_JSON_DEPTH} levels deep: send a flat JSON object, {example}")

    def finite(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise ValueError(f"{literal} is too large")
        return value

    try:
        params = json.loads(text, parse_constant=_refuse_constant, parse_float=finite)
    except (ValueError, RecursionError) as exc:  # RecursionError: unreachable after the depth check
        detail = str(exc) if "too large" in str(exc) or "not a number" in str(exc) else "not valid JSON"
        raise InputError(f"the parameters must be a JSON object, {example} ({quoted(detail, 60)[1:-1]})") from None
    if not isinstance(params, dict):
        raise InputError(f"the parameters must be a JSON object, {example}")
    return params


@dataclass(frozen=True)
class Param:
    """A control a user sets: `type` is 'int', 'float' or 'choice' (with `choices`)."""

    name: str
    type: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()

    def to_json(self) -> dict:
        out = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def coerce(self, value: Any, model: str) -> Any:
        """`value` (e.g. the string '3' from the CLI) as this parameter's type, checked against its range."""
        if self.type == "choice":
            plain = isinstance(value, (str, int, float)) and len(str(value)) <= MAX_VALUE_CHARS
            matches = [c for c in self.choices if plain and str(c) == str(value)]
            if not matches:
                raise InputError(
                    f"parameter '{self.name}' of model {model} must be one of {', '.join(map(str, self.choices))}; got {quoted(value)}"
                )
            return matches[0]
        # NaN passes every range check, int(inf) raises OverflowError, True is not a number here.
        number = whole_number(value) if self.type == "int" else finite_number(value)
        if self.type == "float" and number is not None:
            try:
                number = float(number)
            except OverflowError:  # an int past 1.8e308
                number = None
        if number is None:
            kind = "an int (a whole number)" if self.type == "int" else "a float (a finite number)"
            raise InputError(f"parameter '{self.name}' of model {model} must be {kind}, got {quoted(value)}")
        value = number
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise InputError(f"parameter '{self.name}' of model {model} must be between {self.min} and {self.max}, got {quoted(value)}")
        return value


@dataclass
class ModelCard:
    """A model's card: what it is, in plain words, and what it was trained on and scores (see docs/models/README.md)."""

    name: str
    family: str
    genre: str
    description: str
    tracks: list[dict]
    params: list[Param]
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    path: Path | None = None
    disabled: str | None = None  # why this model cannot be used, if it cannot

    @classmethod
    def from_json(cls, path: Path) -> ModelCard:
        raw = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in ("name", "family", "genre", "description", "tracks", "params") if k not in raw]
        if missing:
            raise ValueError(f"card {path.name} lacks {', '.join(missing)}")
        params = [
            Param(p["name"], p["type"], p["default"], p.get("help", ""), p.get("min"), p.get("max"), tuple(p.get("choices", ())))
            for p in raw["params"]
        ]
        return cls(
            raw["name"],
            raw["family"],
            raw["genre"],
            raw["description"],
            raw["tracks"],
            params,
            raw.get("training", {}),
            raw.get("metrics", {}),
            raw.get("config", {}),
            path,
        )

    def to_json(self) -> dict:
        """The card as JSON-ready data (what `studio models --json` prints)."""
        return {
            "name": self.name,
            "family": self.family,
            "genre": self.genre,
            "description": self.description,
            "tracks": self.tracks,
            "params": [p.to_json() for p in self.params],
            "training": self.training,
            "metrics": self.metrics,
            "config": self.config,
            "available": self.disabled is None,
            **({"disabled": self.disabled} if self.disabled else {}),
        }

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with `given`, each checked; an unknown name is an `InputError`."""
        known = {p.name: p for p in self.params}
        unknown = [k for k in given if k not in known]
        if unknown:
            names = ", ".join(known) or "none"
            raise InputError(f"model {self.name} has no parameter {quoted(str(unknown[0]))} (its parameters: {names})")
        return {name: p.coerce(given[name], self.name) if name in given else p.default for name, p in known.items()}


def _default_device() -> str:
    """'cuda' when torch sees a GPU, else 'cpu' (torch is imported only if it is already loaded or installed)."""
    try:
        import torch  # torch loads on first use (start-up speed)
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _full_float32_on_cuda() -> None:
    """Serve in full float32 on a GPU: cuDNN convolves in TF32 by default, and TF32 rounds
    differently for different batch sizes, so a batched request's music was not the music the same
    request gets alone (on an H100, 18 of 8,400 voice-steps differed among 16 GAN requests batched
    together; with TF32 off, none). Process-wide (torch has no per-model switch); training sets
    its own (`studio.training.train`)."""
    import torch  # torch loads on first use (start-up speed)

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def _one_torch_thread_on_cpu() -> None:
    """Serve torch models on a CPU with one intra-op thread each, process-wide, unless the environment
    sets `OMP_NUM_THREADS`. The studio's networks are small: an operation takes 0.1-1 ms, and torch's
    OpenMP threads sleep between operations (`studio.serving.process`), so a second thread cost more
    in waking it than it saved. Requests use the other cores instead: the server runs one per core at
    once (`studio.serving.fairness`). Measured on the project's 2-core machine (`python -m bench.torch_threads`,
    two rounds, each a median of 3 warm calls through the registry), one thread against two: on 16 bars
    `diffusion-chorale` 0.70-0.75 s against 1.34-1.45 s, `arcnn-chorale` 0.50-0.69 against 0.81-0.90 s;
    on 64 bars of 2/4 1.77-1.92 against 2.67-2.73 s and 1.15-1.25 against 1.65-1.73 s; the GANs and the
    VAE the same within 0.01 s."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    import torch  # torch loads on first use (start-up speed)

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def family_info(name: str) -> FamilyInfo | None:
    """The declaration of model family `name` (`models.base.FamilyInfo`: label, idea, what it writes,
    teaching order, ...), read without importing the family; None for a family no file declares."""
    return declarations().get(name)


def follows_chords(card: ModelCard) -> bool:
    """Whether the model of `card` takes the user's chords: its family declares it
    (`models.base.FamilyInfo.follows_chords`) and, for a family that names a `chords_setting`, the
    card's config says so (`models.base.card_follows_chords`)."""
    return card_follows_chords({"family": card.family, "config": card.config})


def family_writes(family: str) -> str:
    """What models of `family` write, as its declaration says: "accompaniment", or "melody" or
    "variation" (melody models: 'then' names an accompanist for their result). An unknown family
    is taken as an accompanist."""
    info = family_info(family)
    return info.writes if info is not None else "accompaniment"


class ModelRegistry:
    """Cards discovered at start-up; weights loaded lazily, once, and shared by every session."""

    def __init__(
        self, checkpoints: Path | str = CHECKPOINTS, device: str | None = None, timeout_s: float = 60.0, batching: BatchConfig | None = None
    ) -> None:
        self.checkpoints = Path(checkpoints)
        # Simultaneous requests for a model that has `generate_batch` (the GAN) share one forward pass.
        self.batcher = Batcher(batching or BatchConfig())
        self._device = device
        self.timeout_s = timeout_s
        self._cards: dict[str, ModelCard] = {}
        self._models: dict[str, Accompanist] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self._abandoned: dict[str, int] = {}  # per model: calls past the time-out that have not finished yet
        # A command that answers one request and ends (`studio generate`): the answer's time also pays for starting
        # torch and loading the model, which a server has done before its requests (`check_length`, `cpu_seconds`).
        self.one_shot = False
        self.problems: list[str] = []
        self.discover()

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = _default_device()
        return self._device

    def discover(self) -> None:
        """Read every card in the checkpoints folder; a broken card is reported, not fatal."""
        cards: dict[str, ModelCard] = {}
        for path in sorted(self.checkpoints.glob("*.json")):
            try:
                card = ModelCard.from_json(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.problems.append(f"{path.name}: {exc}")
                continue
            if card.family not in declarations():
                card.disabled = f"unknown model family '{card.family}'"
            cards[card.name] = card
        self._cards = cards
        self._locks = {name: threading.Lock() for name in cards}

    def cards(self) -> list[ModelCard]:
        return list(self._cards.values())

    def names(self) -> list[str]:
        return list(self._cards)

    def chord_followers(self) -> list[str]:
        """The models that take the user's chords (their family declares `follows_chords`), available ones only."""
        return [c.name for c in self._cards.values() if not c.disabled and follows_chords(c)]

    def card(self, name: str) -> ModelCard:
        """The card of `name`; an unknown name is an `InputError` listing the known ones."""
        try:
            return self._cards[name]
        except KeyError:
            raise InputError(f"unknown model '{name}': choose one of {', '.join(self._cards) or 'none (no model cards found)'}") from None

    def get(self, name: str) -> Accompanist:
        """The loaded model (loads it on first use, once, even under concurrent first requests)."""
        card = self.card(name)
        if card.disabled:
            raise ModelError(f"model {name} is unavailable: {card.disabled}")
        model = self._models.get(name)
        if model is not None:
            return model
        with self._locks[name]:
            model = self._models.get(name)
            if model is None:
                model = self._load(card)
                self._models[name] = model
        return model

    def _load(self, card: ModelCard) -> Accompanist:
        weights = card.path.with_suffix(".safetensors") if card.path else None
        if weights is not None and not weights.exists():
            weights = None
        try:
            module = family(card.family)
            # Families without torch (the rules baseline) must not pay torch's import to learn the device.
            device = self.device if module.FAMILY.uses_torch else "cpu"
            if device.startswith("cuda"):
                _full_float32_on_cuda()
            elif module.FAMILY.uses_torch:
                _one_torch_thread_on_cpu()
            return module.load(card.to_json(), weights, device)
        except Exception as exc:  # noqa: BLE001 - any failure disables only this model
            card.disabled = f"its checkpoint could not be loaded ({_brief(exc)})"
            raise ModelError(f"model {card.name} is unavailable: {card.disabled}") from None

    def _on_cpu(self, name: str) -> FamilyInfo | None:
        """The declaration of model `name`'s family when the model runs on a CPU here (None for a torch
        model on a GPU, or a family nobody declares)."""
        info = family_info(self.card(name).family)
        return None if info is None or (info.uses_torch and self.device.startswith("cuda")) else info

    def cpu_seconds(self, name: str, grid: Grid) -> float:
        """The seconds of the answer model `name` is expected to take on a melody on `grid` beyond what
        the synthesis budget was set with (`studio.audio.synth.after_model`): its family's
        `cpu_seconds_per_beat` on a CPU, less `START_UP_S` in a server (the budget was set for the
        command, which spends them starting torch and the model); 0 for a torch model on a GPU."""
        info = self._on_cpu(name)
        if info is None or not info.cpu_seconds_per_beat:
            return 0.0
        seconds = info.cpu_seconds_per_beat * grid.n_steps / grid.steps_per_beat
        return seconds if self.one_shot else max(0.0, seconds - START_UP_S)

    def max_beats(self, name: str) -> int:
        """The longest melody (beats) model `name` writes on this registry's device within the answer
        time: its family's `cpu_max_beats` on a CPU (0: no limit of its own), less the beats it would
        write in `START_UP_S` in a one-shot command."""
        info = self._on_cpu(name)
        if info is None or not info.cpu_max_beats:
            return 0
        if self.one_shot and info.cpu_seconds_per_beat:
            return max(1, info.cpu_max_beats - int(START_UP_S / info.cpu_seconds_per_beat))
        return info.cpu_max_beats

    def _takes_beats(self, name: str, beats: float) -> bool:
        limit = self.max_beats(name)
        return not limit or limit >= beats

    def check_length(self, name: str, *grids: Grid) -> None:
        """Refuse (`InputError`) a melody on any of `grids` longer than model `name` writes in the studio's
        answer time: its family's `cpu_max_beats`, when the model runs on the CPU. The message names
        the available accompanists that take a melody that long."""
        limit = self.max_beats(name)
        if not limit:
            return
        beats = max((g.n_steps / g.steps_per_beat for g in grids), default=0.0)
        if beats <= limit:
            return
        others = [
            c.name
            for c in self._cards.values()
            if not c.disabled and c.name != name and family_writes(c.family) == "accompaniment" and self._takes_beats(c.name, beats)
        ]
        raise InputError(
            f"this melody is {beats:,.0f} beats long, and {name} writes up to {limit:,} beats ({limit // 4} bars of 4/4) "
            f"on a CPU within the studio's answer time{' in one command' if self.one_shot else ''}: choose a part of the melody"
            + (f", or a faster model ({', '.join(others[:4])})" if others else "")
        )

    def generate(
        self, name: str, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int, limit_length: bool = True
    ) -> list[RollTrack]:
        """Run `name` on a melody with checked `params`, within the time-out; errors become `ModelError`.
        A melody longer than the model takes is an `InputError` (`check_length`), unless `limit_length`
        is False: an evaluation or a benchmark waits for every piece however long (nobody is waiting
        for an answer), so that a model's figures cover its whole held-out list."""
        if limit_length:
            self.check_length(name, grid)
        model = self.get(name)
        card = self.card(name)
        resolved = card.resolve_params({k: v for k, v in params.items() if k != CHORDS_PARAM})
        if params.get(CHORDS_PARAM) and follows_chords(card):  # the placed chords, not a card parameter
            resolved[CHORDS_PARAM] = params[CHORDS_PARAM]
        if isinstance(model, BatchGenerator) and self.batcher.config.window_s > 0:
            result = self._call(name, _run_batched, self.batcher, name, model, melody, grid, resolved, seed)
        else:
            result = self._call(name, _run, model.generate, melody, grid, resolved, seed)
        if not result:
            raise ModelError(f"model {name} returned no tracks")
        return result

    def call_method(self, name: str, method: str, *args: Any) -> Any:
        """The loaded model's `method(*args)` (e.g. the AR-CNN's `sampling_trace`) as `generate` runs
        the model: under `torch.inference_mode()`, within the time-out, errors as one line; a melody on
        any grid among `args` longer than the model takes is refused as `generate` refuses it."""
        self.check_length(name, *(a for a in args if isinstance(a, Grid)))
        return self._call(name, _run, getattr(self.get(name), method), *args)

    def _call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)`, work of model `name`, within the time-out; its errors become one-line `ModelError`s.

        A thread of its own while it runs (`_Workers`: an idle one is reused, else a new one starts): a
        model that never returns keeps only its own thread, so it cannot starve the others, and, being
        a daemon, it cannot keep a finished CLI process from exiting. The call runs under a
        `models.base.CancelToken` with the time-out as its deadline, cancelled when the studio stops
        waiting: the families' sampling loops check it between iterations (`check_cancelled`), so an
        abandoned call ends within an iteration instead of taking the CPU from the requests after
        it. A model with `MAX_ABANDONED` calls still running past the time-out (a loop without a
        check, a call that hangs) takes no new ones."""
        with self._registry_lock:
            stuck = self._abandoned.get(name, 0)
        if stuck >= MAX_ABANDONED:
            raise ModelError(
                f"model {name} is busy: {stuck} earlier requests ran past the {self.timeout_s:g} s time-out "
                "and have not finished; try another model or try again later"
            )
        call = _Call(fn, *args, token=CancelToken(time.monotonic() + self.timeout_s))
        _WORKERS.run(call)
        too_long = ModelError(
            f"model {name} took longer than {self.timeout_s:g} s: the studio stopped waiting for it; try a shorter melody or another model"
        )
        if not call.done.wait(self.timeout_s):
            call.token.cancel()  # its loop ends at its next check
            self._count_abandoned(name, +1)  # before `abandon`, so that a late end never counts below zero
            if call.abandon(lambda: self._count_abandoned(name, -1)):
                raise too_long
            self._count_abandoned(name, -1)  # it ended just now: use its result
        if isinstance(call.error, Cancelled):  # its loop saw the deadline just before the wait above ended
            raise too_long
        if isinstance(call.error, (ModelError, InputError)):  # the model's own one-line message (e.g. a melody it cannot read)
            raise call.error
        if call.error is not None:  # a failing model must not take the server down
            raise ModelError(f"model {name} failed while generating ({_brief(call.error)}); other models still work")
        return call.result

    def _count_abandoned(self, name: str, change: int) -> None:
        with self._registry_lock:
            self._abandoned[name] = self._abandoned.get(name, 0) + change


def _brief(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (torch's state-dict errors list every key over many lines)."""
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


MAX_ABANDONED = 4  # a model with this many calls still running past the time-out takes no new ones
# What a one-shot command spends of its answer starting torch and loading a model, which a server has done before
# (the project's 2-core machine: 1.2-1.6 s; `ModelRegistry.one_shot`).
START_UP_S = 1.5


class _Call:
    """One model call run in its own thread under its cancel token: its result or error, and an event
    set when it ends."""

    def __init__(self, fn: Callable, *args: Any, token: CancelToken | None = None) -> None:
        self.fn, self.args = fn, args
        self.token = token or CancelToken()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._on_late_finish: Callable[[], None] | None = None

    def run(self) -> None:
        try:
            with cancellable(self.token):
                self.result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            self.error = exc
        finally:
            with self._lock:
                self.done.set()
                late = self._on_late_finish
            if late is not None:
                late()

    def abandon(self, on_late_finish: Callable[[], None]) -> bool:
        """Give up waiting: True, and `on_late_finish` runs when the call ends; False if it has just ended."""
        with self._lock:
            if self.done.is_set():
                return False
            self._on_late_finish = on_late_finish
            return True


class _Workers:
    """Daemon threads for model calls, reused when idle. Each call gets a thread of its own while it
    runs (an idle one, else a new one), so a call that hangs holds only its thread and the others go
    on. Reuse matters on a GPU: PyTorch keeps per-thread CUDA state (cuBLAS and cuDNN handles, the
    current stream), and a fresh thread per call set it up every time: on an H100 a 16-bar GAN request
    took 43.5 ms that way against 7.7 ms in a kept thread, and 28.0 against 5.3 ms on another
    (`python -m bench.model_threads`, medians of 20 side by side; the VAE and the Transformer x1.25-1.3
    on the first, the same on the second; on a CPU the same within 4%). At most `keep_idle` idle
    threads are kept."""

    def __init__(self, keep_idle: int = 8) -> None:
        self.keep_idle = keep_idle
        self._idle: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()
        self.started = 0  # threads started so far (tests read it)

    def run(self, call: _Call) -> None:
        """Start `call` in an idle thread or a new one."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            if inbox is None:
                self.started += 1
                number = self.started
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=f"model-call-{number}", daemon=True).start()
        inbox.put(call)

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            call = inbox.get()
            call.run()
            del call  # drop the finished call's arguments and result while idle
            with self._lock:
                if len(self._idle) >= self.keep_idle:
                    return
                self._idle.append(inbox)


_WORKERS = _Workers()


def _run(method: Callable[..., Any], *args: Any) -> Any:
    """Call a model's method (`generate`, `sampling_trace`), under `torch.inference_mode()` when torch
    is loaded (no autograd bookkeeping)."""

    torch = sys.modules.get("torch")
    if torch is not None:
        with torch.inference_mode():
            return method(*args)
    return method(*args)


def _run_batch(model: Accompanist, requests: list[tuple]) -> list[list[RollTrack]]:
    """Several requests (melody, grid, params, seed) in one batched forward pass (`generate_batch`)."""

    torch = sys.modules.get("torch")
    if torch is not None:
        with torch.inference_mode():
            return model.generate_batch(requests)
    return model.generate_batch(requests)


_BATCH_POLL_S = 0.05  # how often a call waiting for its batch looks at its cancel token


def _run_batched(
    batcher: Batcher, name: str, model: Accompanist, melody: RollTrack, grid: Grid, params: dict, seed: int
) -> list[RollTrack]:
    """Queue one request on the model's batcher and wait for its own result; a call the studio stops
    waiting for leaves the batcher's queue if its batch has not started."""
    future = batcher.submit(name, functools.partial(_run_batch_on_device, model), (melody, grid, params, seed), grid.n_steps)
    while True:
        try:
            return future.result(timeout=_BATCH_POLL_S)
        except FutureTimeout:
            try:
                check_cancelled()
            except Cancelled:
                future.cancel()
                raise


def _on_spaces_gpu(run: Callable) -> Callable:
    """`run` wrapped with `spaces.GPU` when the `spaces` package is importable (Hugging Face ZeroGPU
    attaches a GPU only inside such calls; elsewhere the decorator does nothing). Nothing requires it."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return run
    return spaces.GPU(duration=60)(run)


_run = _on_spaces_gpu(_run)
_run_batch_on_device = _on_spaces_gpu(_run_batch)

_default: ModelRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> ModelRegistry:
    """The process-wide registry (created on first call) that the CLI, UI and API share; its time-out is
    `ServiceConfig.from_env().generation_timeout_s` (60 s, or `STUDIO_TIMEOUT_S`)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelRegistry(timeout_s=ServiceConfig.from_env().generation_timeout_s)
        return _default

"""The generation service: `accompany()` is the one entry point that the CLI, the web UI and the API share.

    melody MIDI -> studio.midi (validate) -> studio.melody (pick the tune) -> studio.meter (pickup)
    -> studio.roll (grid) -> registry model -> multi-track Score -> MIDI + WAV + PNG + metrics
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio import midi
from studio.config import ServiceConfig
from studio.errors import InputError
from studio.melody import extract_melody
from studio.meter import estimate_pickup
from studio.metrics import summarize
from studio.registry import ModelRegistry, default_registry
from studio.roll import MODEL_PITCH_HIGH, MODEL_PITCH_LOW, make_grid, notes_to_roll, roll_to_notes, to_model_range
from studio.score import Note, Score, Track
from studio.theory import pitch_name

__all__ = ["AccompanyRequest", "AccompanyResult", "accompany", "render"]

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="plot")


@dataclass
class AccompanyRequest:
    """What a user asks for: a melody file, a model, a seed and the model's parameters."""

    midi: bytes | str | os.PathLike
    model: str = "rules"
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    out_dir: str | os.PathLike | None = None  # default: a fresh temp folder for this request
    name: str = "melody"  # base of the output file names
    melody_track: int | None = None  # which input track is the melody (default: found automatically)
    want_wav: bool = True
    want_png: bool = True


@dataclass
class AccompanyResult:
    """What comes back: file paths (WAV is None when synthesis is unavailable), warnings and numbers."""

    midi_path: Path
    wav_path: Path | None
    png_path: Path | None
    score: Score
    melody_index: int
    bar_ticks: list[int]
    warnings: list[str]
    metrics: dict
    timings: dict[str, float]
    model: str
    seed: int
    params: dict[str, Any]

    @property
    def duration_seconds(self) -> float:
        return self.score.duration_seconds


def _safe_stem(name: str) -> str:
    """A file-name stem made only of safe characters (user text never becomes a path unchecked)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(str(name)).stem).strip("-")[:40]
    return stem or "melody"


def _check_seed(seed: Any, config: ServiceConfig) -> int:
    try:
        value = int(seed)
    except (TypeError, ValueError):
        raise InputError(f"the seed must be a whole number, got {seed!r}") from None
    if not 0 <= value <= config.max_seed:
        raise InputError(f"the seed must be between 0 and {config.max_seed}, got {value}")
    return value


def _model_view(notes: list[Note], warnings: list[str]) -> list[Note]:
    """The melody as models see it: pitches outside 24..107 moved by octaves, with a warning."""
    outside = [n for n in notes if not MODEL_PITCH_LOW <= n.pitch <= MODEL_PITCH_HIGH]
    if outside:
        lo, hi = pitch_name(MODEL_PITCH_LOW), pitch_name(MODEL_PITCH_HIGH)
        warnings.append(
            f"{len(outside)} melody notes lie outside {lo}..{hi}: the model hears them moved by octaves "
            "(the output keeps them as played)"
        )
    return [Note(n.start, n.end, to_model_range(n.pitch), n.velocity) for n in notes]


def _draw(score: Score, out_png: Path, bar_ticks: list[int], title: str) -> Path:
    """The piano roll PNG (matplotlib is imported here, in the plotting thread, while audio renders)."""
    from studio import plot

    return plot.plot_score(score, out_png, bar_ticks, 0, title)


def accompany(
    request: AccompanyRequest,
    registry: ModelRegistry | None = None,
    config: ServiceConfig | None = None,
    progress: Any = None,
) -> AccompanyResult:
    """Accompany a melody: parse and validate it, run the model, and write MIDI, WAV and PNG.

    Parameters
    ----------
    request : AccompanyRequest
    registry : ModelRegistry, default: the process-wide one
    config : ServiceConfig, default: ServiceConfig()
    progress : callable(fraction, desc), optional
        Called as the work advances (the UI passes `gr.Progress`).

    Raises
    ------
    InputError
        The melody, model name, seed or a parameter cannot be used (message says what to do).
    ModelError
        The model is unavailable, failed or timed out; other models keep working.
    """
    config = config or ServiceConfig()
    registry = registry or default_registry()
    report = progress or (lambda *_a, **_k: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    seed = _check_seed(request.seed, config)
    card = registry.card(request.model)
    params = card.resolve_params(request.params)

    report(0.05, desc="reading the melody")
    parsed = midi.read_midi(request.midi, config.limits)
    score = parsed.score
    warnings = list(parsed.warnings)
    if request.melody_track is not None and not 0 <= request.melody_track < len(score.tracks):
        raise InputError(f"there is no track {request.melody_track} (the file has {len(score.tracks)}); leave it out to find the melody")
    if request.melody_track is not None and score.tracks[request.melody_track].is_drum:
        raise InputError(f"track {request.melody_track} is a drum track: choose a melodic track")
    choice = extract_melody(score, request.melody_track)
    warnings += choice.warnings
    melody = choice.track
    pickup = estimate_pickup(melody.notes, score)
    if pickup:
        warnings.append(f"the melody starts with a pickup of {pickup / score.ticks_per_beat:g} beats: bar lines moved to follow it")
    grid = make_grid(score, pickup)
    melody_roll = notes_to_roll(_model_view(melody.notes, warnings), grid, melody.name, melody.program)
    lap("parse")

    report(0.2, desc=f"generating with {card.name}")
    accompaniment = registry.generate(card.name, melody_roll, grid, params, seed)
    lap("model")

    out_tracks = [melody] + [Track(t.name, t.program, t.is_drum, 0, roll_to_notes(t, grid)) for t in accompaniment]
    result_score = Score(score.ticks_per_beat, out_tracks, score.tempos, score.time_signatures)
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]
    metrics = summarize(notes_to_roll(melody.notes, grid, "Melody", melody.program), accompaniment, grid)

    # Imported here, after the input is validated, so that bad input fails in a fraction of a second
    # (matplotlib and FluidSynth take longer to import than a bad file takes to refuse).
    from studio import synth

    out_dir = Path(request.out_dir) if request.out_dir else Path(tempfile.mkdtemp(prefix="studio-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe_stem(request.name)}-{card.name}-seed{seed}"
    midi_path = out_dir / f"{stem}.mid"
    midi_path.write_bytes(midi.write_midi(result_score, title=f"{request.name} + {card.name}"))
    lap("midi")

    # The piano roll is drawn in a thread while FluidSynth renders (its C calls release the GIL).
    plotting = None
    if request.want_png:
        report(0.5, desc="drawing the piano roll and synthesizing audio")
        plotting = _POOL.submit(_draw, result_score, out_dir / f"{stem}.png", bar_ticks, f"{card.name} (seed {seed})")
    wav_path = None
    if request.want_wav:
        try:
            wav_path = synth.render_to_wav(midi_path, out_dir / f"{stem}.wav")
        except synth.SynthUnavailable as exc:
            warnings.append(f"no audio: {exc}")
    png_path = plotting.result() if plotting is not None else None
    lap("plot+synth")
    report(1.0, desc="done")
    return AccompanyResult(
        midi_path, wav_path, png_path, result_score, 0, bar_ticks, warnings, metrics, timings,
        card.name, seed, params,
    )


def render(midi_source: bytes | str | os.PathLike, out_wav: str | os.PathLike, config: ServiceConfig | None = None) -> tuple[Path, list[str]]:
    """MIDI -> WAV with the studio's synthesizer, nothing generated (the file is validated first)."""
    from studio import synth  # after validation, as in `accompany`

    config = config or ServiceConfig()
    parsed = midi.read_midi(midi_source, config.limits)
    if parsed.cut:
        data = midi.write_midi(parsed.score)  # play only what the studio accepted
    elif isinstance(midi_source, (bytes, bytearray)):
        data = bytes(midi_source)
    else:
        data = Path(midi_source).read_bytes()
    return synth.render_to_wav(data, out_wav), parsed.warnings

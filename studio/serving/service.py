"""The generation service: `accompany()` is the one entry point that the CLI, the web UI and the API share.

melody MIDI -> studio.core.midi (validate) -> studio.core.melody (pick the tune) -> studio.core.meter (pickup)
-> studio.core.roll (grid) -> registry model -> multi-track Score -> MIDI + WAV (+ its MP3 for the page) + PNG + metrics
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from models.base import CHORDS_PARAM, Explainer, Interpolator, LatentMapper, StepTracer, TracePlanner, declarations
from studio.core import midi
from studio.core.chord_marks import ChordMark, chord_markers, chord_marks
from studio.core.chords import ChordSpan, ChordSymbol, analyse_chords, parse_progression, progression_spans
from studio.core.config import ServiceConfig
from studio.core.dynamics import shaped
from studio.core.errors import InputError
from studio.core.filenames import safe_stem
from studio.core.files import atomic_write_bytes, output_error, saving_results
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import melody_key, summarize
from studio.core.progressions import common_progressions, progression_in_key
from studio.core.roll import (
    MODEL_PITCH_HIGH,
    MODEL_PITCH_LOW,
    Grid,
    RollTrack,
    extend_grid,
    make_grid,
    notes_to_roll,
    roll_to_notes,
    to_model_range,
)
from studio.core.score import DEFAULT_MICROSECONDS_PER_BEAT, Note, Score, TempoChange, TimeSignature, Track
from studio.core.theory import Key, pitch_name
from studio.core.transform import check_change, scale_tempo, transpose
from studio.serving.registry import (
    ModelCard,
    ModelRegistry,
    default_registry,
    family_info,
    family_writes,
    follows_chords,
    quoted,
    whole_number,
)

__all__ = [
    "AccompanyRequest",
    "AccompanyResult",
    "ChangeRequest",
    "InterpolateRequest",
    "MelodyInput",
    "accompany",
    "change_take",
    "interpolate",
    "latent_views",
    "output_error",
    "progression_choices",
    "progression_for_melody",
    "read_melody",
    "render",
    "sampling_trace",
    "saving_results",
]


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
    want_listen: bool = True  # also an MP3 copy of the WAV for the page's player (`AccompanyResult.listen_path`)
    want_png: bool = True
    then: str | None = None  # after a model that writes melody (the Transformer): the model that accompanies the result
    then_params: Mapping[str, Any] = field(default_factory=dict)
    keep_tracks: bool = False  # add the accompaniment to the song: the input's other tracks (drums too) stay, note for note
    chords: str | None = None  # "C G/B Am F" (a chord a bar) or "C G | Am F" (several a bar): the accompanist keeps to them


@dataclass
class AccompanyResult:
    """What comes back: file paths (WAV is None when synthesis is unavailable), warnings and numbers.

    `wav_path` is the full-quality result (download, the API's output); a 10-minute take is a
    106 MB WAV. The page plays `listen_path` instead: its MP3 copy (`studio.audio.listen`, 9.6 MB for 10
    minutes), or the WAV itself when no encoder is installed or the request did not want the copy;
    None when there is no WAV."""

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
    then: str | None = None  # the model that accompanied a melody model's result
    listen_path: Path | None = None  # what the page's player plays: the MP3 copy of the WAV, or the WAV (see above)
    notes: list[str] = field(default_factory=list)  # what the model did that is worth saying, not a problem ('added 8 bars')
    given_until_tick: int | None = None  # where the student's bars end and a model's added bars begin (a continuation)
    chords: list[ChordMark] = field(default_factory=list)  # the take's chords: the ones analysed in it, and the ones given
    given_chords: str | None = None  # the chords the accompanist was given, as typed (one line)

    @property
    def duration_seconds(self) -> float:
        return self.score.duration_seconds


def _check_seed(seed: Any, config: ServiceConfig) -> int:
    """The seed as an int: 3, 3.0 and '3' are taken; 1.5, True, None, 'inf' and 5,000 digits are refused."""
    value = whole_number(seed)
    if value is None:
        raise InputError(f"the seed must be a whole number, got {quoted(seed)}")
    if not 0 <= value <= config.max_seed:
        raise InputError(f"the seed must be between 0 and {config.max_seed}, got {quoted(value)}")
    return value


def _model_view(notes: list[Note], warnings: list[str]) -> list[Note]:
    """The melody as models see it: pitches outside 24..107 moved by octaves, with a warning."""
    outside = [n for n in notes if not MODEL_PITCH_LOW <= n.pitch <= MODEL_PITCH_HIGH]
    if outside:
        lo, hi = pitch_name(MODEL_PITCH_LOW), pitch_name(MODEL_PITCH_HIGH)
        warnings.append(
            f"{len(outside)} melody notes lie outside {lo}..{hi}: the model hears them moved by octaves (the output keeps them as played)"
        )
    return [Note(n.start, n.end, to_model_range(n.pitch), n.velocity) for n in notes]


def _draw(score: Score, out_png: Path, bar_ticks: list[int], title: str, given_until_tick: int | None = None) -> Path:
    """The piano roll PNG (matplotlib is imported here, in the plotting thread, while audio renders);
    `given_until_tick`: where the student's bars end in a continuation (marked in the picture)."""
    from studio.audio import plot  # after validation: bad input is refused before matplotlib and FluidSynth load

    return plot.plot_score(score, out_png, bar_ticks, 0, title, given_until_tick=given_until_tick)


@dataclass
class MelodyInput:
    """A request's melody as the models see it: the parsed score, the melody track (as played),
    its roll on the grid (pitches folded into the models' range), the warnings so far, and which of
    the score's tracks the melody came from."""

    score: Score
    melody: Track
    roll: RollTrack
    grid: Grid
    warnings: list[str]
    melody_index: int = 0  # the index in `score.tracks` of the track the melody was taken from

    def __iter__(self):
        return iter((self.score, self.melody, self.roll, self.grid, self.warnings))


def read_melody(request: AccompanyRequest, config: ServiceConfig | None = None) -> MelodyInput:
    """Parse and validate the request's MIDI, pick its melody, find a pickup, and put it on the grid."""
    config = config or ServiceConfig()
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
    roll = notes_to_roll(_model_view(melody.notes, warnings), grid, melody.name, melody.program)
    return MelodyInput(score, melody, roll, grid, warnings, choice.source_index)


def _kept_tracks(melody_input: MelodyInput) -> list[Track]:
    """The song's tracks other than the melody's, as played (notes, program, drums): what a
    `keep_tracks` request adds the accompaniment to. Empty tracks are left out. Their MIDI channels
    are given out again when the result is written (`studio.core.midi.write_midi`: one channel per
    melodic track, drums on channel 10), so none shares a channel with a generated track."""
    return [
        Track(t.name, t.program, t.is_drum, t.channel, list(t.notes))
        for i, t in enumerate(melody_input.score.tracks)
        if i != melody_input.melody_index and t.notes
    ]


class _ViewInput(NamedTuple):
    """What a model's step-by-step view works from, checked as `accompany` checks it."""

    registry: ModelRegistry
    card: Any
    params: dict[str, Any]
    seed: int
    model: Any
    melody: MelodyInput


def _view_input(
    request: AccompanyRequest, registry: ModelRegistry | None, config: ServiceConfig | None, capability: type
) -> _ViewInput | None:
    """The request's registry, card, parameters, seed, model and melody for a view that needs the
    model's `capability` (a protocol of `models.base`); None (the view is empty) for a model without
    it, before the melody is read."""
    config = config or ServiceConfig()
    registry = registry or default_registry()
    seed = _check_seed(request.seed, config)
    card = registry.card(request.model)
    params = card.resolve_params(request.params)
    model = registry.get(card.name)
    if not isinstance(model, capability):
        return None
    return _ViewInput(registry, card, params, seed, model, read_melody(request, config))


def _out_dir(request: Any) -> Path:
    """The request's `out_dir` (made if missing), or a fresh temp folder when it names none."""
    out_dir = Path(request.out_dir) if request.out_dir else Path(tempfile.mkdtemp(prefix="studio-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def sampling_trace(
    request: AccompanyRequest,
    at: tuple[int, ...] = (1, 4, 16, 64),
    registry: ModelRegistry | None = None,
    config: ServiceConfig | None = None,
) -> list[tuple[Path, str]]:
    """For models that write step by step (the AR-CNN's Gibbs iterations, diffusion's denoising
    steps): piano-roll PNGs of the music at some of the steps, with captions; empty for other models.
    Same seed, same run as `accompany`, through the registry as `accompany` runs the model (its
    time-out, errors as `ModelError`). A model chooses its own steps and captions when it has
    `trace_plan(params) -> (total, steps)` and `trace_caption(step, total)`; otherwise the steps are
    `at` (below the run's `iterations`) and the last."""
    from studio.audio import plot  # after validation: bad input is refused before matplotlib and FluidSynth load

    view = _view_input(request, registry, config, StepTracer)
    if view is None:
        return []
    registry, card, params, seed, model = view.registry, view.card, view.params, view.seed, view.model
    score, melody, melody_roll, grid, _warnings = view.melody
    if isinstance(model, TracePlanner):
        total, steps = model.trace_plan(params)
    else:
        total = int(params.get("iterations", max(at)))
        steps = sorted({i for i in at if i < total} | {total})
    trace = registry.call_method(card.name, "sampling_trace", melody_roll, grid, params, seed, steps)
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]
    pngs = []
    with saving_results():
        out_dir = _out_dir(request)
        for iteration, voices in trace:
            tracks = [melody] + [Track(t.name, t.program, t.is_drum, 0, roll_to_notes(t, grid)) for t in voices]
            picture = Score(score.ticks_per_beat, tracks, score.tempos, score.time_signatures)
            caption = (
                model.trace_caption(iteration, total) if isinstance(model, TracePlanner) else f"after {iteration} of {total} iterations"
            )
            png = out_dir / f"{safe_stem(request.name)}-iteration{iteration}.png"
            pngs.append((plot.plot_score(picture, png, bar_ticks, 0, f"{card.name}: {caption}"), caption))
    return pngs


def _then_card(registry: ModelRegistry, card: Any, then: str | None) -> Any:
    """The card of the model that accompanies a melody model's output, checked; None when not asked."""
    if not then:
        return None
    if family_writes(card.family) == "accompaniment":
        melodic = [name for name, info in declarations().items() if info.writes_melody]  # in teaching order
        raise InputError(f"'then' follows a model that writes melody ({', '.join(melodic)}); {card.name} already accompanies")
    then_card = registry.card(then)
    if family_writes(then_card.family) != "accompaniment":
        raise InputError(f"{then_card.name} writes melody, it does not accompany: choose an accompanist after {card.name}")
    return then_card


def _continued_melody(melody: Track, continued: RollTrack, grid: Grid) -> tuple[Track, RollTrack, Grid]:
    """The input's melody (its own notes, unquantized) and the notes a model added after its end, on
    the grid extended by the new bars; the roll is what the next model reads."""
    longer = extend_grid(grid, continued.n_steps)
    end_tick = grid.step_to_tick(grid.n_steps)
    added = [n for n in roll_to_notes(continued, longer) if n.start >= end_tick]
    track = Track(melody.name, melody.program, melody.is_drum, melody.channel, [*melody.notes, *added])
    pad = ((0, longer.n_steps - continued.n_steps), (0, 0))
    roll = RollTrack(continued.name, continued.program, continued.is_drum, np.pad(continued.velocity, pad), np.pad(continued.onset, pad))
    return track, roll, longer


def _with_dynamics(card: ModelCard, tracks: list[RollTrack], melody: RollTrack, grid: Grid) -> list[RollTrack]:
    """A family that writes one flat velocity gets metric accents and the melody's phrase
    (`studio.core.dynamics`) on its accompaniment tracks; melody tracks and other families' are as written."""
    info = family_info(card.family)
    if info is None or not info.flat_dynamics:
        return tracks
    return [shaped(t, grid, melody) if t.role == "accompaniment" and not t.is_drum else t for t in tracks]


def _ending_with_the_melody(tracks: list[RollTrack], melody: RollTrack, grid: Grid) -> list[RollTrack]:
    """The accompaniment rings at most one beat after the melody's last note ends (the last bar's beat,
    at most a quarter note: the file's own beat): a final chord, not a tail of the song's empty last
    bar. A silent melody cuts nothing."""
    heard = np.flatnonzero((melody.velocity > 0).any(axis=1))
    if not len(heard) or not grid.bars:
        return tracks
    end = int(heard[-1]) + 1 + min(grid.bars[grid.bar_index(int(heard[-1]))].beat_steps, grid.steps_per_beat)
    return [t.silent_from(end) if end < t.n_steps else t for t in tracks]


def _given_progression(request: AccompanyRequest, registry: ModelRegistry, follower: ModelCard) -> list[list[ChordSymbol]] | None:
    """The request's chords read as bars (None when it sets none), refused before any model runs when
    they cannot be read or `follower` (the model that accompanies) does not take chords."""
    if request.chords is None or (isinstance(request.chords, str) and not request.chords.strip()):
        return None
    if not isinstance(request.chords, str):
        raise InputError(f"the chords must be text such as 'C G/B Am F', got {quoted(request.chords)}")
    bars = parse_progression(request.chords)
    if not follows_chords(follower):
        takers = ", ".join(registry.chord_followers()) or "none is available"
        raise InputError(f"{follower.name} does not take chords: the models that follow them are {takers}")
    return bars


def _placed_chords(bars: list[list[ChordSymbol]] | None, melody: RollTrack, grid: Grid) -> list[ChordSpan]:
    """The given bars of chords on `grid` from its first full bar, looped until the melody's last note ends."""
    heard = np.flatnonzero((melody.velocity > 0).any(axis=1))
    if bars is None or not len(heard):
        return []
    return progression_spans(bars, grid, until=int(heard[-1]) + 1)


def _with_chords(params: dict[str, Any], spans: list[ChordSpan]) -> dict[str, Any]:
    """The model's parameters with the placed chords (`models.base.CHORDS_PARAM`) when there are any."""
    return {**params, CHORDS_PARAM: spans} if spans else params


def _take_chords(melody: RollTrack, accompaniment: list[RollTrack], grid: Grid, given: list[ChordSpan]) -> list[ChordMark]:
    """The take's chords: those analysed in the melody and accompaniment together, and the given ones,
    names spelt for the melody's key."""
    key = melody_key(melody)
    analysed = analyse_chords([melody, *accompaniment], grid, key)
    return chord_marks(given, grid, key, given=True) + chord_marks(analysed, grid, key, given=False)


def progression_choices(midi: bytes | str | os.PathLike, config: ServiceConfig | None = None) -> tuple[str, list[tuple[str, str]]]:
    """The melody's key (e.g. 'G major') and the common progressions in it, as (label, chords) to type
    over (`studio.core.progressions`): the page's chord picker. A file that cannot be read is an `InputError`."""
    roll = read_melody(AccompanyRequest(midi=midi), config).roll
    key = melody_key(roll)
    return str(key), common_progressions(key)


def progression_for_melody(numerals: str, midi: bytes | str | os.PathLike | None, config: ServiceConfig | None = None) -> str:
    """The common progression `numerals` ('I V vi IV', `studio.core.progressions.NUMERALS`) spelt in the
    key of the melody in `midi` (C major without one): the page's chord picker fills its box with it.
    A file that cannot be read is an `InputError`."""
    key = melody_key(read_melody(AccompanyRequest(midi=midi), config).roll) if midi else Key(0, "major")
    return progression_in_key(numerals, key)


def accompany(
    request: AccompanyRequest,
    registry: ModelRegistry | None = None,
    config: ServiceConfig | None = None,
    progress: Any = None,
) -> AccompanyResult:
    """Accompany a melody: parse and validate it, run the model, and write MIDI, WAV and PNG, and
    the WAV's MP3 copy that the page plays (`AccompanyResult.listen_path`).

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
    lap = _Laps()
    timings = lap.timings

    seed = _check_seed(request.seed, config)
    card = registry.card(request.model)
    params = card.resolve_params(request.params)

    report(0.05, desc="reading the melody")
    melody_input = read_melody(request, config)
    score, melody, melody_roll, grid, warnings = melody_input
    lap("parse")

    read_bars = grid.bars
    notes: list[str] = []
    kept = _kept_tracks(melody_input) if request.keep_tracks else []
    if request.keep_tracks:
        names = ", ".join(("drums" if t.is_drum else t.name or "untitled") for t in kept)
        notes.append(f"kept the song's {len(kept)} other tracks ({names})" if kept else "the song has no other tracks to keep")
    then_card = _then_card(registry, card, request.then)  # a wrong chain is refused before any model runs
    chord_bars = _given_progression(request, registry, then_card or card)  # so are chords the accompanist cannot take
    given_chords = _placed_chords(chord_bars, melody_roll, grid) if then_card is None else []
    report(0.2, desc=f"generating with {card.name}")
    generated = registry.generate(card.name, melody_roll, grid, _with_chords(params, given_chords), seed)
    accompaniment = _with_dynamics(card, generated, melody_roll, grid)
    lap("model")

    continued = [t for t in accompaniment if t.role == "continuation"]  # the Transformer: the melody and new bars after it
    given_until = None  # where the student's bars end, marked in the piano roll when a model added bars after them
    if continued:
        given_until = grid.step_to_tick(grid.n_steps)
        melody, melody_roll, grid = _continued_melody(melody, continued[0], grid)
        notes.append(f"{card.name} added {len(grid.bars) - len(read_bars)} bars after the melody")
    accompaniment = [t for t in accompaniment if t.role != "continuation"]
    rewritten = [t for t in accompaniment if t.role == "melody"]  # the AR-CNN's enhance mode, the VAE's variations
    accompaniment = [t for t in accompaniment if t.role != "melody"]
    if rewritten:  # the model's version replaces the melody, and is what a 'then' model accompanies
        melody = Track(melody.name, melody.program, melody.is_drum, melody.channel, roll_to_notes(rewritten[0], grid))
        melody_roll = rewritten[0]
        notes.append(f"{card.name} rewrote the melody (as asked): the output's melody is its version")
    if then_card is not None:
        report(0.35, desc=f"accompanying with {then_card.name}")
        given_chords = _placed_chords(chord_bars, melody_roll, grid)  # on the grid of the melody it accompanies
        then_params = _with_chords(then_card.resolve_params(request.then_params), given_chords)
        then_tracks = registry.generate(then_card.name, melody_roll, grid, then_params, seed)
        accompaniment += _with_dynamics(then_card, then_tracks, melody_roll, grid)
        lap("then")

    accompaniment = _ending_with_the_melody(accompaniment, melody_roll, grid)
    out_tracks = [melody] + [Track(t.name, t.program, t.is_drum, 0, roll_to_notes(t, grid)) for t in accompaniment] + kept
    take_chords = _take_chords(melody_roll, accompaniment, grid, given_chords)
    result_score = Score(score.ticks_per_beat, out_tracks, score.tempos, score.time_signatures, chord_markers(take_chords))
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]
    metrics = summarize(notes_to_roll(melody.notes, grid, "Melody", melody.program), accompaniment, grid)

    stem = f"{safe_stem(request.name)}-{card.name}{'-' + then_card.name if then_card else ''}-seed{seed}"
    midi_path, wav_path, png_path, listen_path = _write_results(
        result_score,
        bar_ticks,
        stem,
        f"{request.name} + {card.name}",
        f"{card.name} (seed {seed})",
        request,
        warnings,
        report,
        lap,
        given_until,
        lead=True,
        model_seconds=registry.cpu_seconds(card.name, grid) + (registry.cpu_seconds(then_card.name, grid) if then_card else 0.0),
    )
    report(1.0, desc="done")
    return AccompanyResult(
        midi_path,
        wav_path,
        png_path,
        result_score,
        0,
        bar_ticks,
        warnings,
        metrics,
        timings,
        card.name,
        seed,
        params,
        then_card.name if then_card else None,
        listen_path,
        notes,
        given_until,
        take_chords,
        " ".join(request.chords.split()) if chord_bars else None,
    )


class _Laps:
    """Seconds per stage of one request (parse, model, midi, plot+synth): `lap(name)` ends a stage."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._clock
        self._clock = now


def _write_results(
    score: Score,
    bar_ticks: list[int],
    stem: str,
    title: str,
    caption: str,
    request: Any,
    warnings: list[str],
    report: Any,
    lap: Any,
    given_until_tick: int | None = None,
    lead: bool = False,
    model_seconds: float = 0.0,
) -> tuple[Path, Path | None, Path | None, Path | None]:
    """MIDI, then the piano roll (drawn in a thread) while FluidSynth renders the WAV and LAME
    encodes its MP3 copy, into the request's `out_dir` (default: a fresh temp folder), as
    `request.want_png` / `want_wav` / `want_listen` ask. Returns the MIDI, WAV, PNG and listen
    paths (the listen path is the MP3, or the WAV without an encoder or when not wanted).
    `given_until_tick` marks on the roll where the student's bars end (after a continuation).
    With `lead`, the first track is the melody, which the WAV's mix sets above the others.
    `model_seconds`: what the models were expected to take of the answer time, which the synthesis
    budget then lacks (`synth.after_model`). A full or read-only disk is `output_error`'s one line, and what was written is removed."""
    # Imported here, after the input is validated, so that bad input fails in a fraction of a second
    # (matplotlib and FluidSynth take longer to import than a bad file takes to refuse).
    from studio.audio import listen, synth

    written: list[Path] = []
    try:
        out_dir = _out_dir(request)
        midi_path = out_dir / f"{stem}.mid"
        written.append(midi_path)
        atomic_write_bytes(midi_path, midi.write_midi(score, title=title))
        lap("midi")

        # The piano roll is drawn in a thread while FluidSynth renders (its C calls release the GIL).
        plotting = None
        if request.want_png:
            report(0.5, desc="drawing the piano roll and synthesizing audio")
            written.append(out_dir / f"{stem}.png")
            plotting = _POOL.submit(_draw, score, written[-1], bar_ticks, caption, given_until_tick)
        wav_path = listen_path = None
        try:
            if request.want_wav:
                written.append(out_dir / f"{stem}.wav")
                config = synth.after_model(synth.SynthConfig(), model_seconds)
                melody = synth.Lead((midi.track_channels(score.tracks)[0],)) if lead and score.tracks else None
                audio = synth.render_midi(midi_path, config, melody, warnings)
                wav_path = listen_path = synth.write_wav(written[-1], audio, config.sample_rate)
                if getattr(request, "want_listen", True):
                    written.append(wav_path.with_suffix(".mp3"))
                    listen_path = listen.listen_copy(wav_path, audio, config.sample_rate)  # beside the drawing (LAME releases the GIL)
        except synth.SynthUnavailable as exc:
            warnings.append(f"no audio: {exc}")
        finally:  # the drawing is waited for even when the audio failed
            png_path = plotting.result() if plotting is not None else None
    except OSError as exc:  # a full or read-only disk: say so, and free what this request wrote
        for path in written:
            path.unlink(missing_ok=True)
        raise output_error(exc) from None
    lap("plot+synth")
    return midi_path, wav_path, png_path, listen_path


@dataclass
class InterpolateRequest:
    """Two melodies and a model that can interpolate (a VAE): the way from the first to the second
    in `steps` windows, played as one piece."""

    first: bytes | str | os.PathLike
    second: bytes | str | os.PathLike
    model: str = "vae-folk"
    steps: int = 5
    out_dir: str | os.PathLike | None = None  # default: a fresh temp folder for this request
    name: str = "interpolation"  # base of the output file names
    want_wav: bool = True
    want_listen: bool = True  # also an MP3 copy of the WAV for the page's player (`AccompanyResult.listen_path`)
    want_png: bool = True


MAX_INTERPOLATION_STEPS = 16


def _check_steps(steps: Any) -> int:
    try:
        value = float(steps)
        if value != int(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"the number of steps must be a whole number, got {steps!r}") from None
    if not 2 <= value <= MAX_INTERPOLATION_STEPS:
        raise InputError(f"the number of steps must be between 2 and {MAX_INTERPOLATION_STEPS}, got {int(value)}")
    return int(value)


def _interpolation_score(segments: list[Any], first: Score, program: int) -> tuple[Score, list[int]]:
    """The segments one after the other as a one-track score in the first melody's resolution and
    (first) tempo, with a time signature wherever the meter changes; and the bar lines in ticks."""
    tpb = first.ticks_per_beat
    grid = Grid(tpb, 0, [])
    notes: list[Note] = []
    signatures: list[TimeSignature] = []
    bar_ticks: list[int] = []
    at = 0  # steps
    for segment in segments:
        for bar in segment.bars:
            tick = grid.step_to_tick(at + bar.start)
            bar_ticks.append(tick)
            if not signatures or (signatures[-1].numerator, signatures[-1].denominator) != (bar.numerator, bar.denominator):
                signatures.append(TimeSignature(tick, bar.numerator, bar.denominator))
        notes += [Note(grid.step_to_tick(at + s), grid.step_to_tick(at + e), p, 90) for s, e, p in segment.notes]
        at += segment.n_steps
    tempo = first.tempos[:1] or [TempoChange(0, DEFAULT_MICROSECONDS_PER_BEAT)]
    return Score(
        tpb, [Track("Interpolation", program, False, 0, notes)], [TempoChange(0, tempo[0].microseconds_per_beat)], signatures
    ), bar_ticks


def interpolate(
    request: InterpolateRequest, registry: ModelRegistry | None = None, config: ServiceConfig | None = None, progress: Any = None
) -> AccompanyResult:
    """The way from one melody to another through a VAE's latent space, as MIDI, WAV and PNG: the
    first full bars of each melody are encoded, and `steps` points on the way between their codes
    are decoded and played one after the other (the first and last decode the two melodies).

    Raises `InputError` for a bad melody (saying which), model or number of steps, `ModelError`
    when the model fails or takes too long (through the registry's time-out)."""
    config = config or ServiceConfig()
    registry = registry or default_registry()
    report = progress or (lambda *_a, **_k: None)
    lap = _Laps()
    timings = lap.timings

    steps = _check_steps(request.steps)
    card = registry.card(request.model)
    if not isinstance(registry.get(card.name), Interpolator):
        able = [c.name for c in registry.cards() if family_writes(c.family) == "variation" and not c.disabled]
        raise InputError(f"{card.name} cannot interpolate between melodies: choose {' or '.join(able) or 'a VAE'}")
    report(0.05, desc="reading the two melodies")
    melodies = []
    for which, source in (("first", request.first), ("second", request.second)):
        try:
            melodies.append(read_melody(AccompanyRequest(midi=source, model=card.name), config))
        except InputError as exc:
            raise InputError(f"the {which} melody: {exc}") from None
    a, b = melodies
    lap("parse")
    report(0.2, desc=f"interpolating with {card.name}")
    found = registry.call_method(card.name, "interpolate", a.roll, a.grid, b.roll, b.grid, steps)
    lap("model")
    score, bar_ticks = _interpolation_score(found.segments, a.score, a.melody.program)
    warnings = [f"first melody: {w}" for w in a.warnings] + [f"second melody: {w}" for w in b.warnings]
    whole = make_grid(score)
    metrics = {
        **summarize(notes_to_roll(score.tracks[0].notes, whole, "Melody", 0), [], whole),
        "steps": steps,
        "start_kept": found.start_kept,
        "end_kept": found.end_kept,
    }  # shares of the two ends' steps decoded as played
    stem = f"{safe_stem(request.name)}-{card.name}-{steps}steps"
    midi_path, wav_path, png_path, listen_path = _write_results(
        score,
        bar_ticks,
        stem,
        f"{request.name} ({card.name})",
        f"{card.name}: from the first melody to the second in {steps} steps",
        request,
        warnings,
        report,
        lap,
    )
    report(1.0, desc="done")
    return AccompanyResult(
        midi_path,
        wav_path,
        png_path,
        score,
        0,
        bar_ticks,
        warnings,
        metrics,
        timings,
        card.name,
        0,
        {"steps": steps},
        listen_path=listen_path,
    )


def render(
    midi_source: bytes | str | os.PathLike, out_wav: str | os.PathLike, config: ServiceConfig | None = None
) -> tuple[Path, list[str]]:
    """MIDI -> WAV with the studio's synthesizer, nothing generated (the file is validated first)."""
    from studio.audio import synth  # after validation, as in `accompany`
    from studio.audio.synth.split import scan_midi

    config = config or ServiceConfig()
    parsed = midi.read_midi(midi_source, config.limits)
    if isinstance(midi_source, (bytes, bytearray)):
        data = bytes(midi_source)
    else:
        data = Path(midi_source).read_bytes()
    # Play only what the studio accepted (FluidSynth plays to the last event), and as the studio read
    # it where FluidSynth would read the file otherwise (the scan gives up on such a file, and with it
    # the synthesis budget: `studio.audio.synth.budget`).
    if parsed.cut or parsed.trimmed or parsed.repaired or scan_midi(data) is None:
        data = midi.write_midi(parsed.score)
    warnings = list(parsed.warnings)
    try:
        return synth.render_to_wav(data, out_wav, warnings=warnings), warnings
    except OSError as exc:
        raise output_error(exc) from None


@dataclass
class ChangeRequest:
    """A take's MIDI transposed by `semitones` and played `tempo` times as fast: a new take, nothing
    regenerated (written as `accompany` writes a take: MIDI, WAV with the melody leading, PNG)."""

    midi: str | os.PathLike
    semitones: int = 0
    tempo: float = 1.0
    out_dir: str | os.PathLike | None = None
    name: str = "take"
    bar_ticks: Sequence[int] = ()  # the take's bar lines (a pickup its meter map lacks); default: from the meter map
    want_wav: bool = True
    want_listen: bool = True
    want_png: bool = True


def change_take(request: ChangeRequest, config: ServiceConfig | None = None) -> tuple[Path, Path | None, Path | None, Path | None]:
    """Write the take of `request` transposed and at its tempo; returns its MIDI, WAV, PNG and listen
    paths (as `_write_results`). Its first track leads the mix when it has others, as in a take."""
    config = config or ServiceConfig()
    semitones, factor = check_change(request.semitones, request.tempo)
    parsed = midi.read_midi(request.midi, config.limits)
    score = scale_tempo(transpose(parsed.score, semitones), factor)
    grid = make_grid(score)
    bar_ticks = list(request.bar_ticks) or [grid.step_to_tick(b.start) for b in grid.bars]
    words = [f"{semitones:+d} semitones"] if semitones else []
    words += [f"tempo x{factor:g}"] if factor != 1 else []
    change = ", ".join(words) or "as it was"
    stem = f"{safe_stem(request.name, 'take', 60)}-{'up' if semitones >= 0 else 'down'}{abs(semitones)}-tempo{round(factor * 100)}"
    warnings: list[str] = []
    return _write_results(
        score,
        bar_ticks,
        stem,
        f"{request.name} ({change})",
        change,
        request,
        warnings,
        lambda *a, **k: None,
        _Laps(),
        lead=len(score.tracks) > 1,
    )


def choice_views(
    request: AccompanyRequest, registry: ModelRegistry | None = None, config: ServiceConfig | None = None
) -> list[tuple[Path, str]]:
    """For models that write one event at a time (the Transformer): what they weighed at each new
    note (the pitches they could draw, with probabilities) and where they looked (attention), as
    PNGs with captions; empty for other models. Same seed, same notes as `accompany`; through the
    registry's time-out."""
    from studio.audio.choices_plot import attention_png, choices_png  # after validation: matplotlib loads on first use

    view = _view_input(request, registry, config, Explainer)
    if view is None:
        return []
    card, seed = view.card, view.seed
    found = view.registry.call_method(card.name, "explain", view.melody.roll, view.melody.grid, view.params, seed)
    with saving_results():
        out_dir = _out_dir(request)
        stem = f"{safe_stem(request.name)}-{card.name}-seed{seed}"
        return [
            (choices_png(found["choices"], out_dir / f"{stem}-choices.png", card.name), "the pitches it could draw for each new note"),
            (attention_png(found["attention"], found["notes"], out_dir / f"{stem}-attention.png", card.name), "where each new note looked"),
        ]


def latent_views(
    request: AccompanyRequest, registry: ModelRegistry | None = None, config: ServiceConfig | None = None
) -> list[tuple[Path, str]]:
    """For models with a latent space (the VAE): the melody and its variation in one roll, and where
    each window's code sat and where the variation moved it (`studio.audio.latent_plot`), as PNGs with
    captions; empty for other models. Same seed, same variation as `accompany`; through the
    registry's time-out."""
    from studio.audio import plot  # after validation: bad input is refused before matplotlib and FluidSynth load
    from studio.audio.latent_plot import latent_png  # after validation: bad input is refused before matplotlib and FluidSynth load

    view = _view_input(request, registry, config, LatentMapper)
    if view is None:
        return []
    registry, card, params, seed = view.registry, view.card, view.params, view.seed
    score, melody, melody_roll, grid, _warnings = view.melody
    variation = registry.generate(card.name, melody_roll, grid, params, seed)[0]
    found = registry.call_method(card.name, "latent_map", melody_roll, grid, params, seed)
    first_full = 1 if grid.pickup_steps else 0  # bars are numbered from the first full bar, as the piano roll does
    labels = [("pickup" if i < first_full else f"bar {i - first_full + 1}") for i in (grid.bar_index(a) for a, _b in found["spans"])]
    with saving_results():
        out_dir = _out_dir(request)
        stem = f"{safe_stem(request.name)}-{card.name}-seed{seed}"
        both = Score(
            score.ticks_per_beat,
            [
                Track(f"{card.name}'s variation", variation.program, False, 0, roll_to_notes(variation, grid)),
                Track("your melody", melody.program, False, 1, melody.notes),
            ],
            score.tempos,
            score.time_signatures,
        )
        bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]
        compare = plot.plot_score(
            both,
            out_dir / f"{stem}-compare.png",
            bar_ticks,
            0,
            f"{card.name}: the variation (outlined), over your melody (seen where they differ)",
        )
        where = latent_png(
            found["mu"],
            found["z"],
            out_dir / f"{stem}-latent.png",
            f"{card.name}: your melody's windows in its latent space (how far {params.get('how_far', '?')})",
            labels,
        )
    return [
        (compare, "the variation over your melody"),
        (where, "where each two bars sit in the latent space, and where the variation moved them"),
    ]

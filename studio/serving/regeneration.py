"""Regenerating a selection of a take: some bars (and, for voice models, some voices) written again,
everything else kept note for note; the result is a new take.

    take .mid -> studio.core.midi (validate) -> melody (track 0) + the model's tracks, on the take's grid
    -> the model's `regenerate` (`models.base.Regenerator`) -> dynamics and ending as `accompany` gives them
    -> the selection spliced into the take's own notes, in ticks (`studio.core.selection.kept_and_new`)
    -> MIDI + WAV (+ its MP3 for the page) + PNG, as `accompany` writes them

Which notes are kept is `studio.core.selection`'s rule; the splice is made on the take's notes as the
file holds them, so what lies outside the selection comes back exactly (ticks and velocities), whatever
the model did. A model whose draw gives the selection back unchanged (no note starts anew: another start
or pitch) is asked again with a seed derived from the one given (`attempt_seed`), at most
`REGENERATION_TRIES` times: each regeneration is a new take.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.base import CHORDS_PARAM, Regenerator, declarations
from studio.core import midi
from studio.core.chord_marks import ChordMark, chord_markers, chord_marks, marks_from_markers, progression_text
from studio.core.chords import ChordSpan, analyse_chords, parse_chord
from studio.core.config import ServiceConfig
from studio.core.errors import InputError
from studio.core.filenames import safe_stem
from studio.core.meter import estimate_pickup
from studio.core.metrics import melody_key, summarize
from studio.core.roll import Grid, RollTrack, make_grid, notes_to_roll, roll_to_notes
from studio.core.score import Note, Score, Track
from studio.core.selection import Selection, SelectionError, kept_and_new, parse_bars, parse_voices
from studio.serving.registry import ModelRegistry, default_registry, family_info, follows_chords, quoted
from studio.serving.service import (
    AccompanyResult,
    _check_seed,
    _ending_with_the_melody,
    _Laps,
    _model_view,
    _with_dynamics,
    _write_results,
)

__all__ = ["REGENERATION_TRIES", "RegenerateRequest", "attempt_seed", "regenerate", "regenerators"]

REGENERATION_TRIES = 8  # draws asked of a model before a regeneration that changes nothing is given back as it is


@dataclass
class RegenerateRequest:
    """A take (a MIDI file the studio wrote: the melody first, then the model's tracks by name), the
    bars to write again ("3-4"; a pickup is bar 0), the voices (names of the model's tracks, e.g.
    "Alto,Bass", or None for all), the model, its seed and parameters."""

    midi: bytes | str | os.PathLike
    model: str
    bars: Any
    voices: Any = None
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    out_dir: str | os.PathLike | None = None  # default: a fresh temp folder for this request
    name: str = "take"  # base of the output file names
    want_wav: bool = True
    want_listen: bool = True  # also an MP3 copy of the WAV for the page's player
    want_png: bool = True


def regenerators(registry: ModelRegistry | None = None) -> list[str]:
    """The usable models that can regenerate a selection (their family declares `regenerates`)."""
    registry = registry or default_registry()
    able = {name for name, info in declarations().items() if info.regenerates}
    return [c.name for c in registry.cards() if not c.disabled and c.family in able]


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of a regeneration's `attempt` (0: `seed` itself; then a fixed draw from both)."""
    if attempt == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(attempt)]).generate_state(1)[0])


def given_spans(marks: Sequence[ChordMark], grid: Grid) -> list[ChordSpan]:
    """The chords a take was given (its marks, in ticks) placed back on `grid` (a name that no longer
    reads as a chord is left out)."""
    spans = []
    for mark in marks:
        try:
            chord = parse_chord(mark.name)
        except InputError:
            continue
        spans.append(ChordSpan(grid.tick_to_step(mark.start), grid.tick_to_step(mark.end), chord))
    return spans


def _take_tracks(score: Score, names: Sequence[str], model: str) -> tuple[Track, list[int]]:
    """The take's melody (its first track) and, for each of the model's track `names`, the index of
    the take's track of that name; `InputError` when the take is not one this model's tracks fit."""
    if not score.tracks or score.tracks[0].is_drum or not score.tracks[0].notes:
        raise InputError("this file is not a take: its first track must be the melody (regenerate a take the studio wrote)")
    found = []
    for name in names:
        index = next((i for i, t in enumerate(score.tracks) if i > 0 and t.name == name and i not in found), None)
        if index is None:
            have = ", ".join(quoted(t.name or "untitled", 30) for t in score.tracks[1:]) or "none"
            raise InputError(
                f"this take has no track {quoted(name, 30)}: {model} regenerates takes with its own tracks "
                f"({', '.join(names)}); this take's accompaniment tracks: {have}"
            )
        found.append(index)
    return score.tracks[0], found


def _new_notes(track: RollTrack, grid: Grid, start: int, end: int) -> list[Note]:
    """The notes of `track` that start in [start, end) (steps), in ticks: read from those steps alone
    (and the one before, to tell a note that starts at `start` from one held into it)."""
    first = max(0, start - 1)
    part = RollTrack(track.name, track.program, track.is_drum, track.velocity[first:end], track.onset[first:end])
    return [
        Note(grid.step_to_tick(n.start + first), grid.step_to_tick(n.end + first), n.pitch, n.velocity)
        for n in roll_to_notes(part, Grid(4, end - first, [], 4))
        if n.start + first >= start
    ]


def _spliced(
    take: Score, where: list[int], tracks: list[RollTrack], grid: Grid, start: int, end: int, voices: tuple[int, ...] | None
) -> list[Track]:
    """The take's tracks with the selection [start, end) (steps) of each selected model track taken
    from `tracks`, spliced in ticks (`kept_and_new`); every other track as the take has it."""
    first, stop = grid.step_to_tick(start), grid.step_to_tick(end)
    out = [Track(t.name, t.program, t.is_drum, t.channel, list(t.notes)) for t in take.tracks]
    for i, index in enumerate(where):
        if voices is None or i in voices:
            old = take.tracks[index]
            out[index] = Track(
                old.name,
                old.program,
                old.is_drum,
                old.channel,
                kept_and_new(old.notes, _new_notes(tracks[i], grid, start, end), first, stop),
            )
    return out


def _changed(tracks: Sequence[Track], take: Sequence[Track]) -> bool:
    """Whether a note starts anew in any track (another start or pitch than the take's): a note only
    cut shorter, or played louder, is not another version."""
    return any({(n.start, n.pitch) for n in a.notes} != {(n.start, n.pitch) for n in b.notes} for a, b in zip(tracks, take, strict=True))


def regenerate(
    request: RegenerateRequest, registry: ModelRegistry | None = None, config: ServiceConfig | None = None, progress: Any = None
) -> AccompanyResult:
    """Write bars `request.bars` (of `request.voices`) of a take again with `request.model`; a new take
    (MIDI, WAV, PNG, as `accompany` writes them) whose notes outside the selection are the take's own.

    Raises
    ------
    InputError
        The take, model, seed or a parameter cannot be used; `SelectionError` (an `InputError`) for
        bars out of range or reversed, a voice the model does not have, or voices of a model that
        regenerates all its tracks together; a model that cannot regenerate (a melody model) is named.
    ModelError
        The model is unavailable, failed or timed out.
    """
    config = config or ServiceConfig()
    registry = registry or default_registry()
    report = progress or (lambda *_a, **_k: None)
    lap = _Laps()

    seed = _check_seed(request.seed, config)
    card = registry.card(request.model)
    info = family_info(card.family)
    if info is None or not info.regenerates:
        able = regenerators(registry)
        raise InputError(f"{card.name} cannot regenerate bars of a take: choose one of {', '.join(able) or 'the accompanists'}")
    params = card.resolve_params(request.params)
    first, last = parse_bars(request.bars)
    names = [str(t["name"]) for t in card.tracks]
    voices = parse_voices(request.voices, names)
    if info.regenerates == "bars" and voices is not None and len(voices) < len(names):
        raise SelectionError(
            f"{card.name} plays its tracks ({', '.join(names)}) from one choice of chords: regenerate them together (leave the voices out)"
        )

    report(0.05, desc="reading the take")
    parsed = midi.read_midi(request.midi, config.limits)
    take = parsed.score
    warnings = list(parsed.warnings)
    melody, where = _take_tracks(take, names, card.name)
    grid = make_grid(take, estimate_pickup(melody.notes, take))
    start, end = Selection(first, last, voices).steps(grid)  # bad bars are refused before the model runs
    melody_roll = notes_to_roll(_model_view(melody.notes, warnings), grid, melody.name, melody.program)
    accompaniment = [
        notes_to_roll(take.tracks[i].notes, grid, take.tracks[i].name, take.tracks[i].program, take.tracks[i].is_drum) for i in where
    ]
    given = [m for m in marks_from_markers(take.markers, take.end_tick) if m.given]
    if given and follows_chords(card):  # the chords the user gave the take, for a model that keeps to them
        params = {**params, CHORDS_PARAM: given_spans(given, grid)}
    model = registry.get(card.name)
    if not isinstance(model, Regenerator):
        raise InputError(f"{card.name} cannot regenerate bars of a take: choose one of {', '.join(regenerators(registry))}")
    lap("parse")

    report(0.2, desc=f"regenerating bars {first}-{last} with {card.name}")
    notes: list[str] = []
    out_tracks = take.tracks
    for attempt in range(REGENERATION_TRIES):
        tracks = registry.call_method(
            card.name, "regenerate", melody_roll, grid, accompaniment, params, attempt_seed(seed, attempt), (first, last), voices
        )
        tracks = _ending_with_the_melody(_with_dynamics(card, tracks, melody_roll, grid), melody_roll, grid)
        out_tracks = _spliced(take, where, tracks, grid, start, end, voices)
        if _changed(out_tracks, take.tracks):
            break
    else:
        notes.append(f"{card.name} wrote bars {first}-{last} as they were, {REGENERATION_TRIES} times: try another seed or more bars")
    lap("model")

    which = "" if voices is None else f" ({', '.join(names[v] for v in voices)})"
    notes.insert(0, f"regenerated bars {first}-{last}{which} with {card.name}, seed {seed}; everything else is the take's, note for note")
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]
    rolls = [notes_to_roll(out_tracks[i].notes, grid, out_tracks[i].name, out_tracks[i].program) for i in where]
    # The chords the user gave stay the take's; the ones heard are heard again in the new take.
    key = melody_key(melody_roll)
    take_chords = given + chord_marks(analyse_chords([melody_roll, *rolls], grid, key), grid, key, given=False)
    result_score = Score(take.ticks_per_beat, out_tracks, take.tempos, take.time_signatures, chord_markers(take_chords))
    metrics = summarize(notes_to_roll(melody.notes, grid, "Melody", melody.program), rolls, grid)
    stem = f"{safe_stem(request.name)}-{card.name}-bars{first}-{last}-seed{seed}"
    midi_path, wav_path, png_path, listen_path = _write_results(
        result_score,
        bar_ticks,
        stem,
        f"{request.name} + {card.name}",
        f"{card.name} (seed {seed}): bars {first}-{last} regenerated",
        request,
        warnings,
        report,
        lap,
        lead=True,
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
        lap.timings,
        card.name,
        seed,
        params,
        None,
        listen_path,
        notes,
        chords=take_chords,
        given_chords=progression_text(given, bar_ticks, result_score.end_tick) or None,
    )

"""Mixing a take: re-render a generated take with each track's instrument, mute and volume, and
preview a melody alone. Nothing is generated again: only the notes already written are re-voiced.

    take .mid -> studio.midi.read_midi -> mix_score (programs, velocities, mutes) -> .mid -> studio.synth -> .wav

`mix_score` is pure; `take_tracks`, `remix_take` and `preview_melody` read and write files.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pretty_midi.constants import INSTRUMENT_MAP

from studio import midi
from studio.config import Limits
from studio.errors import InputError
from studio.filenames import safe_stem
from studio.melody import extract_melody
from studio.meter import estimate_pickup
from studio.roll import make_grid
from studio.score import Note, Score, TempoChange, Track

__all__ = ["GM_PROGRAMS", "TrackInfo", "TrackMix", "mix_score", "preview_melody", "remix_take", "take_tracks"]

GM_PROGRAMS: tuple[str, ...] = tuple(INSTRUMENT_MAP)
"""The 128 General MIDI instrument names; the index is the program number (0 = Acoustic Grand Piano)."""

MAX_VOLUME = 2.0
ALL_MUTED = "every track is muted: unmute at least one track to hear the take"


@dataclass(frozen=True)
class TrackMix:
    """How one track sounds in a re-render: its GM `program`, a `volume` gain on its velocities
    (0..2, 1 = as generated; 0 silences the track like `mute`), and whether it is muted."""

    program: int
    volume: float = 1.0
    mute: bool = False

    @property
    def silent(self) -> bool:
        """True when the track is not heard (muted, or at volume 0)."""
        return bool(self.mute) or self.volume == 0


@dataclass(frozen=True)
class TrackInfo:
    """One track of a take as the page lists it: position, name, GM program, drums, number of notes."""

    index: int
    name: str
    program: int
    is_drum: bool
    notes: int


def take_tracks(midi_path: str | os.PathLike | bytes) -> list[TrackInfo]:
    """The tracks of a take's MIDI file (melody first, then the accompaniment), as `read_midi` reads them.

    Raises `InputError` when the file cannot be read.
    """
    score = midi.read_midi(midi_path).score
    return [TrackInfo(i, t.name, t.program, t.is_drum, len(t.notes)) for i, t in enumerate(score.tracks)]


def _check_mix(i: int, mix: TrackMix) -> tuple[int, float]:
    """The mix's program and volume as numbers, or `InputError` naming the track."""
    try:
        program = operator.index(mix.program)
    except TypeError:
        raise InputError(f"track {i + 1}: the instrument must be a General MIDI program number 0-127, got {mix.program!r}") from None
    if not 0 <= program <= 127:
        raise InputError(f"track {i + 1}: the instrument must be a General MIDI program 0-127, got {program}")
    try:
        volume = float(mix.volume)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        raise InputError(f"track {i + 1}: the volume must be a number from 0 to {MAX_VOLUME:g}, got {mix.volume!r}") from None
    if not (math.isfinite(volume) and 0.0 <= volume <= MAX_VOLUME):
        raise InputError(f"track {i + 1}: the volume must be from 0 to {MAX_VOLUME:g}, got {volume:g}")
    return program, volume


def mix_score(score: Score, mixes: Sequence[TrackMix]) -> Score:
    """A new `Score` with `mixes[i]` applied to track i; `score` is left unchanged.

    Each track gets its mix's program (drum tracks stay drums and keep their program), velocities
    multiplied by the volume (rounded, clamped to 1..127), and no notes when muted or at volume 0
    (the track stays, so the track count and names do not change). Tempo and meter maps are kept.

    Raises
    ------
    InputError
        The number of mixes is not the number of tracks, or a program or volume is out of range.
    """
    if len(mixes) != len(score.tracks):
        raise InputError(f"got {len(mixes)} track settings for a take of {len(score.tracks)} tracks: give one per track")
    tracks = []
    for i, (track, mix) in enumerate(zip(score.tracks, mixes, strict=True)):
        program, volume = _check_mix(i, mix)
        if mix.silent:
            notes = []
        else:
            notes = [
                n if volume == 1.0 else Note(n.start, n.end, n.pitch, max(1, min(127, round(n.velocity * volume))))
                for n in track.notes
            ]
        tracks.append(Track(track.name, track.program if track.is_drum else program, track.is_drum, track.channel, notes))
    return Score(score.ticks_per_beat, tracks, list(score.tempos), list(score.time_signatures))


def _mix_key(mixes: Sequence[TrackMix]) -> str:
    """A short hash naming a mix: equal settings give the same file name."""
    text = json.dumps([[operator.index(m.program), round(float(m.volume), 4), m.silent] for m in mixes])
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _hold_length(score: Score, end_tick: int) -> Score:
    """`score` whose MIDI file lasts to `end_tick` even when its last tracks are muted.

    A MIDI file ends at its last event, so muting the track that plays last would shorten the
    audio. A repeat of the tempo in force at `end_tick` (inaudible) keeps the file's end.
    """
    if score.end_tick >= end_tick:
        return score
    now = [t for t in score.tempos if t.tick <= end_tick][-1]
    tempos = [*score.tempos, TempoChange(end_tick, now.microseconds_per_beat)]
    return Score(score.ticks_per_beat, score.tracks, sorted(tempos, key=lambda t: t.tick), score.time_signatures)


def remix_take(
    midi_path: str | os.PathLike,
    mixes: Sequence[TrackMix],
    out_dir: str | os.PathLike,
    reference_wav: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Re-render a take with `mixes` (one per track of `take_tracks(midi_path)`); nothing is generated.

    Writes ``<stem>-mix-<hash of the mixes>.mid`` and the matching ``.wav`` into `out_dir` and
    returns their paths. The music lasts as long as the take's, whatever is muted; a mix whose
    release dies away sooner (muted or quieter tracks) is padded with silence to the length of
    `reference_wav` (default: the take's own WAV next to its MIDI file, as `accompany` writes it,
    when there is one), so the player shows every mix of a take with the same length.

    Raises
    ------
    InputError
        The take cannot be read, the mixes do not fit it (see `mix_score`), or every track is silent.
    SynthUnavailable
        FluidSynth or a SoundFont is missing (the MIDI file is written all the same).
    """
    source = Path(midi_path)
    score = midi.read_midi(source).score
    mixed = mix_score(score, mixes)
    if all(m.silent for m in mixes):
        raise InputError(ALL_MUTED)
    from studio import synth  # after validation: bad input fails before FluidSynth loads
    from studio.service import saving_results

    with saving_results():  # a full disk is one clear line
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{safe_stem(source.name, 'take', 60)}-mix-{_mix_key(mixes)}"
        midi_out = out / f"{stem}.mid"
        midi_out.write_bytes(midi.write_midi(_hold_length(mixed, score.end_tick), title=f"{source.stem} (mix)"))
        config = synth.SynthConfig()
        audio = _pad_to(synth.render_midi(midi_out, config), _frames_of(reference_wav or source.with_suffix(".wav"), config.sample_rate))
        wav_out = synth.write_wav(out / f"{stem}.wav", audio, config.sample_rate)
    return midi_out, wav_out


def _frames_of(wav_path: str | os.PathLike, sample_rate: int) -> int:
    """Length of a WAV file in frames at `sample_rate` (0 when it is missing or unreadable)."""
    try:
        with wave.open(str(wav_path), "rb") as wav:
            return round(wav.getnframes() * sample_rate / wav.getframerate())
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return 0


def _pad_to(audio: np.ndarray, frames: int) -> np.ndarray:
    """`audio` (N, 2) followed by digital silence up to `frames` frames (unchanged when as long)."""
    if len(audio) >= frames:
        return audio
    return np.concatenate([audio, np.zeros((frames - len(audio), *audio.shape[1:]), audio.dtype)])


def preview_melody(
    midi_source: bytes | str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str = "melody",
    limits: Limits | None = None,
) -> tuple[Path | None, Path]:
    """The melody alone, as the studio hears it before accompanying it: the track `accompany` would
    pick (made monophonic), written as a one-track MIDI, rendered to WAV and drawn as a piano roll.

    Writes ``<name>-preview.{mid,wav,png}`` into `out_dir`; returns (WAV, or None when FluidSynth
    is unavailable, PNG).

    Raises
    ------
    InputError
        The file cannot be used as a melody (the same message `accompany` gives).
    """
    parsed = midi.read_midi(midi_source, limits or Limits())
    score = parsed.score
    melody = extract_melody(score).track
    alone = Score(score.ticks_per_beat, [melody], list(score.tempos), list(score.time_signatures))
    grid = make_grid(score, estimate_pickup(melody.notes, score))
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]

    from studio import plot, synth  # after validation, as in `accompany`
    from studio.service import saving_results

    with saving_results():  # a full disk is one clear line
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{safe_stem(name, 'take', 60)}-preview"
        midi_out = out / f"{stem}.mid"
        midi_out.write_bytes(midi.write_midi(alone, title=f"{name} (melody)"))
        try:
            wav: Path | None = synth.render_to_wav(midi_out, out / f"{stem}.wav")
        except synth.SynthUnavailable:
            wav = None
        png = plot.plot_score(alone, out / f"{stem}.png", bar_ticks, 0, f"{melody.name}: the melody alone")
    return wav, png

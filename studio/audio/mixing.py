"""Mixing a take: re-render a generated take with each track's instrument, mute and volume, and
preview a melody alone. Nothing is generated again, and no note changes: every note of every track
is kept as written (pitch, time, velocity); the mix is the tracks' programs and their MIDI channel
volumes (control change 7), which the MIDI download carries and FluidSynth plays.

    take .mid -> studio.core.midi.read_midi -> mix_score (programs) + channel_volume (CC7) -> .mid -> studio.audio.synth -> .wav (+ .mp3)

Every WAV comes out at the studio's loudness (`studio.audio.synth.SynthConfig.loudness_lufs`, -16
LUFS), so the volumes set the balance between the tracks, relative to the take's own mix (in which
the melody leads, see `take_lead`), not the level of the whole.

`mix_score` and `channel_volume` are pure; `take_tracks`, `remix_take` and `preview_melody` read
and write files. The page plays the MP3 copy of each WAV (`studio.audio.listen`); the WAV is the download.
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

from studio.core import midi
from studio.core.config import Limits
from studio.core.errors import InputError
from studio.core.filenames import safe_stem
from studio.core.files import atomic_write_bytes, saving_results
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.roll import make_grid
from studio.core.score import Score, Track

__all__ = [
    "GM_PROGRAMS",
    "MelodyPreview",
    "Remix",
    "TrackInfo",
    "TrackMix",
    "channel_volume",
    "mix_score",
    "preview_melody",
    "remix_take",
    "take_lead",
    "take_tracks",
]

GM_PROGRAMS: tuple[str, ...] = tuple(INSTRUMENT_MAP)
"""The 128 General MIDI instrument names; the index is the program number (0 = Acoustic Grand Piano)."""

MAX_VOLUME = 2.0
DEFAULT_CHANNEL_VOLUME = 100  # CC7 when a file sets none (FluidSynth, GM): what the take was rendered with
LOUDEST_VOLUME = (127 / DEFAULT_CHANNEL_VOLUME) ** 2  # 1.61 (+4.2 dB): CC7 127, the most MIDI channel volume gives
ALL_MUTED = "every track is muted: unmute at least one track to hear the take"


@dataclass(frozen=True)
class TrackMix:
    """How one track sounds in a re-render: its GM `program`, a `volume` (an amplitude gain, 0..2,
    1 = as generated; 0 silences the track like `mute`; above `LOUDEST_VOLUME`, 1.61, it plays as
    1.61, see `channel_volume`), and whether it is muted. Neither volume nor mute changes a note."""

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


def channel_volume(mix: TrackMix) -> int:
    """The MIDI channel volume (control change 7, 0-127) that plays a track at `mix.volume`.

    FluidSynth (as the SoundFont 2 default modulator says) turns CC7 into an attenuation of
    ``40 log10(CC7 / 127)`` dB, an amplitude proportional to ``(CC7 / 127) ** 2``, and a file
    without CC7 plays at 100; so a gain `volume` is ``CC7 = 100 * sqrt(volume)``, rounded: 1 -> 100
    (as generated), 0.5 -> 71 (-6 dB), 1.61 and above -> 127 (+4.2 dB, the most there is); muted or
    volume 0 -> 0, which FluidSynth renders as digital silence. Velocities, and so the timbre of
    the notes, are untouched.
    """
    if mix.silent:
        return 0
    return max(1, min(127, round(DEFAULT_CHANNEL_VOLUME * math.sqrt(float(mix.volume)))))


def mix_score(score: Score, mixes: Sequence[TrackMix]) -> Score:
    """A new `Score` with the programs of `mixes[i]` given to track i; `score` is left unchanged.

    Every note is kept as it is (pitch, time, velocity): volume and mute are the channel volumes of
    `channel_volume`, written beside the score by `remix_take`. Drum tracks stay drums and keep
    their program. Tempo and meter maps and the markers (the take's chords) are kept. The mixes are checked here.

    Raises
    ------
    InputError
        The number of mixes is not the number of tracks, or a program or volume is out of range.
    """
    if len(mixes) != len(score.tracks):
        raise InputError(f"got {len(mixes)} track settings for a take of {len(score.tracks)} tracks: give one per track")
    tracks = []
    for i, (track, mix) in enumerate(zip(score.tracks, mixes, strict=True)):
        program, _volume = _check_mix(i, mix)
        tracks.append(Track(track.name, track.program if track.is_drum else program, track.is_drum, track.channel, list(track.notes)))
    return Score(score.ticks_per_beat, tracks, list(score.tempos), list(score.time_signatures), list(score.markers))


def _mix_key(mixes: Sequence[TrackMix]) -> str:
    """A short hash naming a mix: equal settings give the same file name."""
    text = json.dumps([[operator.index(m.program), round(float(m.volume), 4), m.silent] for m in mixes])
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Remix:
    """A re-rendered take: `midi`, every note of the take with the mix's programs and channel
    volumes (the download); `wav`, its audio (the download); `listen`, what the page's player
    plays, the WAV's MP3 copy (or the WAV when no encoder is installed).

    Unpacks and indexes as the ``(midi, wav)`` pair that `remix_take` returned before."""

    midi: Path
    wav: Path
    listen: Path

    def __iter__(self):
        return iter((self.midi, self.wav))

    def __getitem__(self, i):
        return (self.midi, self.wav)[i]


def remix_take(
    midi_path: str | os.PathLike,
    mixes: Sequence[TrackMix],
    out_dir: str | os.PathLike,
    reference_wav: str | os.PathLike | None = None,
) -> Remix:
    """Re-render a take with `mixes` (one per track of `take_tracks(midi_path)`); nothing is generated
    and no note changes.

    Writes ``<stem>-mix-<hash of the mixes>.mid``, the matching ``.wav`` and its ``.mp3`` copy for
    the page into `out_dir`. The MIDI file holds every note of every track of the take (muted ones
    too): the mix is each track's program and channel volume (`channel_volume`: CC7 0 for a muted
    track), so it lasts as long as the take and plays as the WAV sounds. A mix whose release dies
    away sooner (muted or quieter tracks) is padded with silence to the length of `reference_wav`
    (default: the take's own WAV next to its MIDI file, as `accompany` writes it, when there is
    one), so the player shows every mix of a take with the same length.

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
    from studio.audio import listen, synth  # after validation: bad input fails before FluidSynth loads

    out = Path(out_dir)
    stem = f"{safe_stem(source.name, 'take', 60)}-mix-{_mix_key(mixes)}"
    midi_out = out / f"{stem}.mid"
    with saving_results([midi_out, *(out / f"{stem}{ext}" for ext in (".wav", ".mp3"))]):  # one clear line, nothing left
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(midi_out, midi.write_midi(mixed, title=f"{source.stem} (mix)", volumes=[channel_volume(m) for m in mixes]))
        config = synth.SynthConfig()
        audio = _pad_to(
            synth.render_midi(midi_out, config, take_lead(mixed, mixes)),
            _frames_of(reference_wav or source.with_suffix(".wav"), config.sample_rate),
        )
        wav_out = synth.write_wav(out / f"{stem}.wav", audio, config.sample_rate)
        listen_out = listen.listen_copy(wav_out, audio, config.sample_rate)
    return Remix(midi_out, wav_out, listen_out)


def take_lead(score: Score, mixes: Sequence[TrackMix]):
    """The `studio.audio.synth.Lead` of a take's remix: the melody (the first track) on its channel,
    with the gains the mix gives the melody and the accompaniment relative to the take as generated
    (`channel_volume` of each track over the default 100, squared: FluidSynth's amplitude), so the
    render keeps the take's balance and the volumes act relative to it. The accompaniment's gain is
    the power mean of its tracks' (exact when they share one volume, as they do unless the user moved
    one). None for a take of one track."""
    from studio.audio.synth import Lead

    if len(score.tracks) < 2:
        return None
    gains = [(channel_volume(m) / DEFAULT_CHANNEL_VOLUME) ** 2 for m in mixes]
    rest = sum(g * g for g in gains[1:]) / len(gains[1:])

    def db(power: float) -> float:
        return 10.0 * math.log10(power) if power > 0 else 0.0

    return Lead((midi.track_channels(score.tracks)[0],), db(gains[0] ** 2), db(rest))


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


@dataclass(frozen=True)
class MelodyPreview:
    """The melody alone, as `preview_melody` wrote it.

    Attributes
    ----------
    png : Path
        Its piano roll.
    wav : Path or None
        Its audio (None when FluidSynth is unavailable).
    listen : Path or None
        What the page's player plays: the WAV's MP3 copy, or the WAV when no encoder is installed.
    warnings : tuple of str
        What the studio did to the file, in the words `accompany` uses: cut to the length limit
        ("the music is 30.0 minutes (3,600 beats) long, over the studio's limit of 10 minutes or 4,000 beats:
        the studio uses its first 10.0 minutes (1,200 beats)"), which track is
        the melody, notes ignored, no time signature. The page can show them on upload.

    Unpacks and indexes as the ``(wav, png)`` pair that `preview_melody` returned before.
    """

    png: Path
    wav: Path | None
    listen: Path | None
    warnings: tuple[str, ...] = ()

    def __iter__(self):
        return iter((self.wav, self.png))

    def __getitem__(self, i):
        return (self.wav, self.png)[i]


def preview_melody(
    midi_source: bytes | str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str = "melody",
    limits: Limits | None = None,
) -> MelodyPreview:
    """The melody alone, as the studio hears it before accompanying it: the track `accompany` would
    pick (made monophonic), written as a one-track MIDI, rendered to WAV (and its MP3 copy for the
    page) and drawn as a piano roll, with the warnings `accompany` would give about the file.

    Writes ``<name>-preview.{mid,wav,mp3,png}`` into `out_dir`.

    Raises
    ------
    InputError
        The file cannot be used as a melody (the same message `accompany` gives).
    """
    parsed = midi.read_midi(midi_source, limits or Limits())
    score = parsed.score
    choice = extract_melody(score)
    melody = choice.track
    alone = Score(score.ticks_per_beat, [melody], list(score.tempos), list(score.time_signatures))
    grid = make_grid(score, estimate_pickup(melody.notes, score))
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]

    from studio.audio import listen, plot, synth  # after validation, as in `accompany`

    out = Path(out_dir)
    stem = f"{safe_stem(name, 'take', 60)}-preview"
    midi_out = out / f"{stem}.mid"
    with saving_results([out / f"{stem}{ext}" for ext in (".mid", ".wav", ".mp3", ".png")]):  # one clear line, nothing left
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(midi_out, midi.write_midi(alone, title=f"{name} (melody)"))
        wav: Path | None = None
        heard: Path | None = None
        cut: list[str] = []
        try:
            config = synth.SynthConfig()
            audio = synth.render_midi(midi_out, config, warnings=cut)
            wav = synth.write_wav(out / f"{stem}.wav", audio, config.sample_rate)
            heard = listen.listen_copy(wav, audio, config.sample_rate)
        except synth.SynthUnavailable:
            pass
        png = plot.plot_score(alone, out / f"{stem}.png", bar_ticks, 0, f"{melody.name}: the melody alone")
    return MelodyPreview(png, wav, heard, (*parsed.warnings, *choice.warnings, *cut))

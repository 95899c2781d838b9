"""How much of a file the studio synthesizes: a budget of work per engine, decided before rendering.

Rendering costs each engine about the voices it sounds times the length of the music, plus its
reverb for every file it plays. Real music keeps a few voices sounding (a take of four voices:
4-30, FluidSynth's voice count); a file of thousands of overlapping or rapid notes keeps an
engine at its voice limit for minutes (20,000 notes in ten minutes: 12 s of rendering, against
0.7-1.4 s for four minutes of a chorale take). The budget bounds that work: the audio is cut where
an engine's estimated work would pass `SynthConfig.render_budget`, every note released there
(`Split.cut`), and the caller says so. The MIDI and the roll keep the whole take.

What follows the render is paid for every second of audio, whatever sounds, on one core after the
engines end: their stems summed, the mix measured, limited and made int16, and the WAV written. It
is counted as `_AFTER_VOICES` more voices of every engine at every moment, so that the budget bounds
the answer's time, not only its synthesis (issue 23: a take answered within 5 s on the project's
2-core machine). The budget is set for the command, which first spends about 2 s starting Python,
torch and a model, and writes no MP3; the page's MP3 copy (about 4 ms a second of audio) is paid
for by the start the server does not have. A take is cut at the same place from either, so that it
sounds the same.

The take's notes are paid for too, whatever their audio: reading the melody, the model's part-writing
guide, writing the MIDI, scanning it for the render and drawing the roll cost about 40 us a note on
the same machine, as much as `_NOTE_VOICE_SECONDS` of an engine's voice-seconds. A file of 20,000
notes spends 2,400 of the budget that way before a voice sounds (a take of four minutes of a
chorale, about 2,000 notes, 240); without it 20,000 notes in 75 s were answered in 5.2-5.9 s.
The budget is not spent on less than `_MIN_CUT_SECONDS` of music: a take that would lose less is
played whole (that much more work is within the measurements' noise).

The estimate is made from the notes alone, before any audio, so the cut is the same on every run
and every machine: each note sounds from its start to its end plus its release allowance and
`_RELEASE_SECONDS` more (a SoundFont's release, which a short note's allowance misses), as
`_VOICES_PER_NOTE` voices, at most the engine's voice limit at once; each file an engine plays adds
`_REVERB_VOICES` for its reverb. An engine's channels are not known before the render splits
them, so at each moment an engine is charged the larger of the most voices one channel sounds and
an equal share of all channels' voices (the split balances the channels by weight, and a channel
is never split).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from studio.audio.synth.config import SynthConfig
from studio.audio.synth.split import Split

__all__ = ["after_model", "audio_cut"]

# Measured on the project's 2-core machine, FluidSynth 2.3 with FluidR3_GM (2026-12-07): a voice
# costs 0.12-0.35 ms per second of music (a choir's voices the least, a piano's the most), an
# engine's reverb 2-3 ms per second, whatever sounds.
_VOICES_PER_NOTE = 2  # a note of FluidR3_GM is mostly a stereo pair of samples
_RELEASE_SECONDS = 0.5
_REVERB_VOICES = 10
_STEP_SECONDS = 0.1  # the time grid the voices are counted on
# What follows the render, per second of audio (same machine and day): 1.6 ms, as much as 5 voices
# of an engine (a voice-second costs about 0.34 ms of a render that reaches the budget).
_AFTER_VOICES = 5
# What each note of the take costs outside the render, in an engine's voice-seconds (same machine and
# day; `python -m bench.answer_time`): the command's time without audio rose by 36 us a note from
# 2,400 to 24,000 notes with `gan-chorale` (25-50 us with `rules`), 0.12 voice-seconds at 0.34 ms each.
_NOTE_VOICE_SECONDS = 0.12
_MIN_CUT_SECONDS = 1.0
# A model slower than the GANs takes its time from the same answer (`after_model`): each second of it beyond
# `_MODEL_ALLOWANCE_S` (a GAN's first call in the command, which the budget was set with) is taken off the
# budget at a voice-second's cost in a render that reaches it (same machine and day).
_VOICE_SECOND_S = 0.34e-3
_MODEL_ALLOWANCE_S = 0.3
_MIN_BUDGET_SHARE = 0.2  # ... leaving at least this share of the budget (a slow model's longest melody plays on)


def after_model(config: SynthConfig, model_seconds: float) -> SynthConfig:
    """`config` with the render budget the answer has left after a model expected to take
    `model_seconds` (its family's `cpu_seconds_per_beat` on a CPU): the diffusion model on 110 beats
    (about 1.7 s) with 63 kept tracks of dense notes answered in 5.4-5.8 s through the command with
    the whole budget, the same file with a GAN in 3.6 s."""
    if config.render_budget is None or model_seconds <= _MODEL_ALLOWANCE_S:
        return config
    spent = (model_seconds - _MODEL_ALLOWANCE_S) / _VOICE_SECOND_S
    return replace(config, render_budget=max(_MIN_BUDGET_SHARE * config.render_budget, config.render_budget - spent))


def _voices(split: Split, seconds: float, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per step of `_STEP_SECONDS` up to `seconds`: the most voices one channel sounds then (each
    channel at most `limit`), and all channels' voices together (estimated, see the module's notes)."""
    steps = max(1, int(np.ceil(seconds / _STEP_SECONDS)))
    if not split.notes:
        return np.zeros(steps), np.zeros(steps)
    notes = np.array(split.notes, dtype=np.int64)
    starts = split.seconds_at(notes[:, 1])
    ends = split.seconds_at(notes[:, 2]) + _RELEASE_SECONDS
    first = np.clip((starts / _STEP_SECONDS).astype(np.int64), 0, steps)
    last = np.clip(np.ceil(ends / _STEP_SECONDS).astype(np.int64), 0, steps)
    per_channel = []
    for channel in np.unique(notes[:, 0]):
        mine = notes[:, 0] == channel
        change = np.zeros(steps + 1)
        np.add.at(change, first[mine], 1.0)
        np.add.at(change, last[mine], -1.0)
        per_channel.append(np.minimum(np.cumsum(change[:-1]) * _VOICES_PER_NOTE, limit))
    counts = np.array(per_channel)
    return counts.max(axis=0), counts.sum(axis=0)


def audio_cut(split: Split, engines: int, files_per_engine: int, config: SynthConfig) -> int | None:
    """The tick where the audio of `split` is cut to keep each engine's work, and what follows the
    render, within the budget (`SynthConfig.render_budget`, in voice-seconds), or None when the
    whole file fits.

    `engines` engines render it, each playing at most `files_per_engine` files one after another
    (each with its reverb); the take's notes are charged first (`_NOTE_VOICE_SECONDS` each). The cut
    falls on a step of `_STEP_SECONDS`, never before the first, and never within `_MIN_CUT_SECONDS`
    of the end.
    """
    if config.render_budget is None or split.seconds <= 0.0:
        return None
    limit = config.polyphony_for(split.seconds)
    busiest, together = _voices(split, split.seconds, limit)
    per_step = np.maximum(busiest, together / max(1, engines)) + _REVERB_VOICES * files_per_engine + _AFTER_VOICES
    work = len(split.notes) * _NOTE_VOICE_SECONDS + np.cumsum(per_step) * _STEP_SECONDS
    over = int(np.searchsorted(work, config.render_budget, side="right"))
    seconds = max(1, over) * _STEP_SECONDS
    if over >= len(work) or seconds > split.seconds - _MIN_CUT_SECONDS:
        return None
    return split.tick_at(seconds)

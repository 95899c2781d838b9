"""MIDI to audio: 44.1 kHz, 16-bit stereo WAV, rendered in process by FluidSynth (pyfluidsynth).

The public names are listed here; each module holds one part:

- `config`: `SynthConfig` (how MIDI becomes audio), `Lead` (the melody the mix sets above the rest)
  and `SynthUnavailable`.
- `soundfont`: finding and checking the SoundFont (``$STUDIO_SOUNDFONT``, ``soundfonts/``, system).
- `fluid`: pyfluidsynth, and the one wrapper around its private library handle (and why).
- `engine`: FluidSynth engines and their per-process pool; `synth_status`.
- `split`: a MIDI file's channels split into groups for the parallel render.
- `render`: `render_midi`, on one engine or on several at once, then at the studio's loudness
  (`studio.audio.loudness`).
- `wav`: `write_wav`, `render_to_wav` and `audio_stats`.
"""

from __future__ import annotations

from studio.audio.synth.budget import after_model
from studio.audio.synth.config import Lead, SynthConfig, SynthUnavailable
from studio.audio.synth.engine import synth_status
from studio.audio.synth.render import render_midi
from studio.audio.synth.soundfont import find_soundfont, soundfont_problem
from studio.audio.synth.wav import audio_stats, render_to_wav, write_wav

__all__ = [
    "Lead",
    "SynthConfig",
    "SynthUnavailable",
    "after_model",
    "audio_stats",
    "find_soundfont",
    "render_midi",
    "render_to_wav",
    "soundfont_problem",
    "synth_status",
    "write_wav",
]

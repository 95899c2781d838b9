"""The web page (Gradio): upload a melody, pick a model, hear and see the accompaniment.

Thin UI, fat library: callbacks check input, call `studio.service.accompany`, and turn studio
errors into `gr.Error`. The `/accompany` API endpoint (inputs: midi_file, model_name, seed;
outputs: audio WAV, piano-roll PNG, MIDI) is the same function.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from studio.config import REPO_ROOT
from studio.errors import InputError, StudioError
from studio.registry import default_registry
from studio.service import AccompanyRequest, accompany
from studio.synth import synth_status

__all__ = ["accompany_endpoint", "build_app"]

SAMPLES = REPO_ROOT / "assets" / "melodies"
RESULTS_ROOT_NAME = "studio-results"
KEEP_RESULTS_S = 3600  # a session's files are kept an hour, then cleaned


def _results_dir() -> Path:
    """A fresh folder for one request, under a root whose old folders are removed (bounded disk use)."""
    root = Path(tempfile.gettempdir()) / RESULTS_ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > KEEP_RESULTS_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(dir=root))


def accompany_endpoint(midi_file: str | None, model_name: str, seed: float | int, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
    """Accompany an uploaded melody: returns (WAV path, piano-roll PNG path, MIDI path)."""
    if not midi_file:
        raise gr.Error("Upload a MIDI file (.mid) with a melody first, or pick a sample melody.")
    path = Path(midi_file)
    try:
        result = accompany(
            AccompanyRequest(midi=path, model=model_name or "rules", seed=int(seed or 0), out_dir=_results_dir(), name=path.stem),
            progress=lambda fraction, desc="": progress(fraction, desc=desc),
        )
    except (StudioError, ValueError, TypeError) as exc:
        message = str(exc) if isinstance(exc, StudioError) else f"invalid request: {exc}"
        raise gr.Error(message[:1].upper() + message[1:], print_exception=False) from None
    for warning in result.warnings:
        gr.Warning(warning)
    return (str(result.wav_path) if result.wav_path else None, str(result.png_path), str(result.midi_path))


def _model_choices() -> list[tuple[str, str]]:
    return [(f"{c.name} ({c.family}, {c.genre})", c.name) for c in default_registry().cards() if not c.disabled]


def _model_card_markdown(name: str) -> str:
    try:
        card = default_registry().card(name)
    except InputError:
        return ""
    return f"**{card.name}**: {card.description}"


def _samples() -> list[str]:
    return [str(p) for p in sorted(SAMPLES.glob("*.mid"))]


def build_app() -> gr.Blocks:
    """The first studio page: upload or pick a melody, choose a model and a seed, generate."""
    ok, synth_message = synth_status()
    with gr.Blocks(title="Music Studio") as app:
        gr.Markdown("# Music Studio\nUpload a melody (a `.mid` file) or pick a sample, choose a generator, and hear its accompaniment.")
        if not ok:
            gr.Markdown(f"**Audio is unavailable:** {synth_message}. You still get the MIDI file and the piano roll.")
        with gr.Row():
            with gr.Column(scale=1):
                midi_in = gr.File(label="Melody (MIDI file)", file_types=[".mid", ".midi"], type="filepath", elem_id="midi-input")
                choices = _model_choices()
                model = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Generator", elem_id="model")
                card = gr.Markdown(_model_card_markdown(choices[0][1]) if choices else "No models found.")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
                go = gr.Button("Generate accompaniment", variant="primary", elem_id="generate")
                gr.Examples(examples=[[p] for p in _samples()], inputs=[midi_in], label="Sample melodies")
            with gr.Column(scale=2):
                roll = gr.Image(label="Piano roll", type="filepath", elem_id="piano-roll", interactive=False)
                audio = gr.Audio(label="Listen", type="filepath", elem_id="audio", interactive=False)
                midi_out = gr.File(label="Download MIDI", elem_id="midi-output", interactive=False)
        model.change(_model_card_markdown, inputs=model, outputs=card, api_name=False)
        go.click(accompany_endpoint, inputs=[midi_in, model, seed], outputs=[audio, roll, midi_out], api_name="accompany", concurrency_limit=max(1, (os.cpu_count() or 2)))
    return app

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
from studio.learning import loss_curves_png, snapshot_pngs
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
    return _accompany(midi_file, model_name, seed, {}, progress)


def _accompany_with_controls(midi_file: str | None, model_name: str, seed: float | int, *values, progress=gr.Progress()):  # noqa: B008
    """The page's generate button: the API's inputs plus the chosen model's controls, in card order."""
    try:
        names = [p.name for p in default_registry().card(model_name).params]
    except InputError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return _accompany(midi_file, model_name, seed, dict(zip(names, values, strict=False)), progress)


def _accompany(midi_file: str | None, model_name: str, seed: float | int, params: dict, progress) -> tuple:
    if not midi_file:
        raise gr.Error("Upload a MIDI file (.mid) with a melody first, or pick a sample melody.")
    path = Path(midi_file)
    try:
        result = accompany(
            AccompanyRequest(midi=path, model=model_name or "rules", seed=int(seed or 0), params=params, out_dir=_results_dir(), name=path.stem),
            progress=lambda fraction, desc="": progress(fraction, desc=desc),
        )
    except (StudioError, ValueError, TypeError) as exc:
        message = str(exc) if isinstance(exc, StudioError) else f"invalid request: {exc}"
        raise gr.Error(message[:1].upper() + message[1:], print_exception=False) from None
    for warning in result.warnings:
        gr.Warning(warning)
    return (str(result.wav_path) if result.wav_path else None, str(result.png_path), str(result.midi_path))


FAMILY_ORDER = ("rules", "gan", "arcnn", "transformer", "vae", "diffusion")
FAMILY_NAMES = {"rules": "Rules", "gan": "GAN", "arcnn": "AR-CNN", "transformer": "Transformer", "vae": "VAE", "diffusion": "Diffusion"}


def _model_choices() -> list[tuple[str, str]]:
    """Every usable model, grouped by family (in the order the studio teaches them), then genre."""
    cards = [c for c in default_registry().cards() if not c.disabled]
    cards.sort(key=lambda c: (FAMILY_ORDER.index(c.family) if c.family in FAMILY_ORDER else 99, c.genre, c.name))
    return [(f"{FAMILY_NAMES.get(c.family, c.family)} · {c.genre} · {c.name}", c.name) for c in cards]


def _param_control(param) -> gr.components.Component:
    """A control for one of a model's parameters (its card's type, range, default and help)."""
    label = param.name.replace("_", " ")
    if param.type == "choice":
        return gr.Dropdown(choices=list(param.choices), value=param.default, label=label, info=param.help, elem_id=f"param-{param.name}")
    step = 1 if param.type == "int" else 0.05
    return gr.Slider(minimum=param.min, maximum=param.max, value=param.default, step=step, label=label, info=param.help, elem_id=f"param-{param.name}")


_METRIC_WORDS = {
    "in_key_rate": "notes in the melody's key",
    "consonance": "consonant with the melody",
    "qualified_note_rate": "notes a dotted eighth or longer",
    "used_pitch_classes": "different notes per bar",
}


def _model_card_markdown(name: str) -> str:
    """The card in plain words: what the model does, what it learned from, how it scores."""
    try:
        card = default_registry().card(name)
    except InputError:
        return ""
    lines = [f"**{card.name}**: {card.description}"]
    training = card.training or {}
    if training.get("steps"):
        lines.append(
            f"Trained on {training.get('train_pieces', '?')} pieces of {training.get('data', '?')} for {training['steps']} steps, "
            f"{training.get('wall_time_minutes', '?')} minutes on {training.get('hardware', '?')}."
        )
    held = (card.metrics or {}).get("held_out")
    if held:
        rows = [
            f"| {_METRIC_WORDS[m]} | {held['generated'][m]:.2f} | {held['real'][m]:.2f} |"
            for m in _METRIC_WORDS
            if m in held.get("generated", {})
        ]
        lines.append(
            f"On {held['pieces']} {card.genre} pieces it never saw in training (seed {card.metrics.get('seed', 0)}):\n\n"
            "| | this model | the real music |\n|---|---|---|\n" + "\n".join(rows)
        )
    return "\n\n".join(lines)


def _learning_views(name: str):
    """Loss curves and sample rolls along training of `name` (empty for models that never trained)."""
    curves = loss_curves_png(name)
    snaps = [(str(p), caption) for p, caption in snapshot_pngs(name)]
    note = "" if curves else "This model was not trained (it follows rules), so there is nothing to watch here."
    return (str(curves) if curves else None), snaps, note


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
                controls_area = gr.Column()
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
                go = gr.Button("Generate accompaniment", variant="primary", elem_id="generate")
                gr.Examples(examples=[[p] for p in _samples()], inputs=[midi_in], label="Sample melodies")
            with gr.Column(scale=2):
                roll = gr.Image(label="Piano roll", type="filepath", elem_id="piano-roll", interactive=False)
                audio = gr.Audio(label="Listen", type="filepath", elem_id="audio", interactive=False)
                midi_out = gr.File(label="Download MIDI", elem_id="midi-output", interactive=False)
        with gr.Accordion("How this model learned", open=False, elem_id="learning"):
            first = choices[0][1] if choices else ""
            curves0, snaps0, note0 = _learning_views(first) if first else (None, [], "")
            learning_note = gr.Markdown(note0)
            with gr.Row():
                curves = gr.Image(value=curves0, label="Loss curves: generator against critic", type="filepath", interactive=False, elem_id="loss-curves", scale=1)
                snapshots = gr.Gallery(value=snaps0, label="Its accompaniment of a melody it never saw, as training went on", columns=2, height="auto", elem_id="snapshots", scale=1)
        model.change(_model_card_markdown, inputs=model, outputs=card, api_name=False)
        model.change(_learning_views, inputs=model, outputs=[curves, snapshots, learning_note], api_name=False)
        workers = max(1, os.cpu_count() or 2)
        with controls_area:

            @gr.render(inputs=model)
            def _controls(name: str) -> None:
                """The chosen model's own controls (from its card's params); generate uses them."""
                try:
                    params = default_registry().card(name).params if name else []
                except InputError:
                    params = []
                controls = [_param_control(p) for p in params]
                go.click(
                    _accompany_with_controls, inputs=[midi_in, model, seed, *controls], outputs=[audio, roll, midi_out],
                    api_name=False, concurrency_limit=workers, concurrency_id="generate",
                )

        # The API keeps its three inputs (DESIGN.md): defaults for every model parameter.
        api_button = gr.Button(visible=False)
        api_button.click(
            accompany_endpoint, inputs=[midi_in, model, seed], outputs=[audio, roll, midi_out],
            api_name="accompany", concurrency_limit=workers, concurrency_id="generate",
        )
    return app

"""The studio's web page (Gradio): play, record, upload or pick a melody; choose a generator; see,
hear, remix and compare what it made.

Thin UI, fat library: the layout lives here, the actions in `studio.ui.actions` (they call only
the service layer), the model texts in `studio.ui.cards`, the keyboard in `assets/ui/`. The
`/accompany` API endpoint (inputs: midi_file, model_name, seed; outputs: audio WAV, piano-roll
PNG, MIDI) is kept as the design defines it; `/generate` adds the parameters, `/regenerate` writes
bars of a take again.

Every model's controls are built once, when the page is built, each model's in its own group that
is shown while that model is chosen. Generate reads the chosen model's own group, so a model never
receives another model's values, however fast the choice changes (controls made by `gr.render`
after a change arrive later than the change, and are read-only unless told otherwise).
"""

from __future__ import annotations

import gradio as gr

from studio.audio.synth import synth_status
from studio.core.config import REPO_ROOT
from studio.serving.fairness import FairnessConfig, generation_slots
from studio.serving.registry import default_registry
from studio.ui import actions as act
from studio.ui.cards import learning_views, model_card_markdown, model_choices, param_control

__all__ = ["accompany_endpoint", "build_app", "launch_options"]

SAMPLES = REPO_ROOT / "assets" / "melodies"
UI_FILES = REPO_ROOT / "assets" / "ui"
accompany_endpoint = act.accompany_endpoint  # the API's function, importable from here as before

# Help and status text in Gradio's default theme is light grey on white (1.9:1), and white on its orange
# button 2.8:1; WCAG AA asks 4.5:1 (orange 700 gives 5.2:1).
PAGE_THEME = gr.themes.Default().set(
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
    block_info_text_color="*neutral_600",
    block_info_text_color_dark="*neutral_300",
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    color_accent="*primary_700",
)
PAGE_CSS = """
#result-row { align-items: flex-start; }
#takes .wrap { flex-direction: column; }
#status:empty { display: none; }
.dark { --color-accent: var(--primary-400); }  /* the selected tab's orange on a dark page (700 is 3.7:1 there) */
.waveform-container div::part(scroll) { overflow: hidden !important; }  /* the whole take fits: nothing to scroll */
[data-testid^="waveform"] time, [data-testid^="waveform"] .playback span { color: var(--body-text-color) !important; }
.dark a.download-link { color: #93c5fd !important; }  /* Gradio's blue 500 on its dark grey is 4.0:1 */
#status p { color: var(--error-text-color, #b91c1c); font-weight: 600; margin: 0; }
footer, footer a, footer button { color: var(--body-text-color) !important; opacity: 1 !important; }
@media (max-width: 700px) { .gradio-container { padding: 6px !important; } }
"""
# `/?view=api` opens the API documentation. Gradio 6 reads `view=api` but shows nothing until its "Use via
# API" link has loaded the documentation; the link toggles, so it is pressed until the documentation shows.
# Gradio's toast header is a role=button holding its own close button (nested controls a screen reader
# cannot tell apart): the header is made plain, the close button stays the way to dismiss it.
PAGE_HEAD = """<script>
(() => {
  const plainToasts = () => document.querySelectorAll(".toast-header[role=button]").forEach((h) => {
    h.removeAttribute("role");
    h.removeAttribute("tabindex");
  });
  new MutationObserver(plainToasts).observe(document.documentElement, { childList: true, subtree: true });
  if (new URLSearchParams(window.location.search).get("view") !== "api") return;
  let tries = 0;
  const open = () => {
    if (document.body && /API documentation/.test(document.body.innerText)) return;
    const link = [...document.querySelectorAll("footer button, footer a")].find((e) => /use via api/i.test(e.textContent));
    const ready = document.querySelector("#keyboard .kb-white");  // the page has started: the link works
    if (link && ready) link.click();
    if (tries++ < 60) setTimeout(open, 500);
  };
  open();
})();
</script>"""


def _samples() -> tuple[list[list[str]], list[str]]:
    """The sample melodies for `gr.Examples`: their paths and labels, as `actions.sample_choices` lists them."""
    choices = act.sample_choices()
    return [[str(SAMPLES / file)] for _label, file in choices], [label for label, _file in choices]


def _keyboard() -> gr.HTML:
    """The on-screen keyboard (mouse, touch, computer keys, Web MIDI) with its recorder."""
    return gr.HTML(
        value="",
        html_template=(UI_FILES / "keyboard.html").read_text(),
        css_template=(UI_FILES / "keyboard.css").read_text(),
        js_on_load=(UI_FILES / "keyboard.js").read_text(),
        elem_id="keyboard",
        apply_default_css=False,
    )


def _live_roll() -> gr.HTML:
    """The take's live piano roll (`assets/ui/roll.js`): a playhead that follows the audio, click to
    seek, loop bars, zoom and scroll, and the melody edited on the 16th grid. Its value is the data of
    `actions.live_roll`; the JavaScript draws it anew whenever it changes."""
    return gr.HTML(
        value=None,
        html_template=(UI_FILES / "roll.html").read_text(),
        css_template=(UI_FILES / "roll.css").read_text(),
        js_on_load=(UI_FILES / "roll.js").read_text(),
        elem_id="live-roll",
        apply_default_css=False,
        visible=False,
    )


# Gradio keeps every session's state (its copy of the page's configuration, about 110 KB for this page,
# and the takes) until 10,000 sessions by default: about 1.1 GB on a public server. The 500 sessions used
# last are kept (a classroom of 30 reloads far less); a session idle while 500 others came loses its takes list.
MAX_SESSIONS = 500


# Threads for the light events (a model's card, a take shown again, a melody's preview) besides the
# generating requests that wait for their turn (each holds one of Gradio's threads while it waits).
LIGHT_THREADS = 16


def launch_options() -> dict:
    """What `launch()` needs besides the Blocks: theme, page CSS and head, the upload cap (before
    parsing), how many sessions' state the server keeps (`MAX_SESSIONS`), and Gradio's threads: every
    generating request the fair scheduler admits may wait in one, and the light events need theirs."""
    return {
        "theme": PAGE_THEME,
        "css": PAGE_CSS,
        "head": PAGE_HEAD,
        "max_file_size": "2mb",
        "state_session_capacity": MAX_SESSIONS,
        "max_threads": FairnessConfig().max_admitted + LIGHT_THREADS,
    }


def generation_workers() -> int:
    """How many generations the server runs at once (`studio.serving.fairness.generation_slots`:
    `STUDIO_WORKERS`, else one per CPU core); who goes next is the fair scheduler's choice."""
    return generation_slots()


def _picture(label: str, elem_id: str, alt_text: str, **extra) -> gr.Image:
    """A picture the studio draws (a roll, loss curves): read-only, full screen and download buttons, and
    words for a screen reader."""
    return gr.Image(
        label=label, type="filepath", interactive=False, elem_id=elem_id, buttons=["fullscreen", "download"], alt_text=alt_text, **extra
    )


def _model_controls(names: list[str], first: str) -> tuple[dict[str, gr.Group], list[tuple[str, int]], list]:
    """Every model's own controls, each model's in a group shown while it is chosen: (groups by model,
    the layout (model, number of controls) in order, all controls in that order)."""
    groups, layout, controls = {}, [], []
    for name in names:
        card = default_registry().card(name)
        with gr.Group(visible=name == first, elem_id=f"controls-{name}") as group:
            made = [param_control(p, name) for p in card.params]
        groups[name] = group
        layout.append((name, len(made)))
        controls += made
    return groups, layout, controls


def _regenerate_controls() -> tuple[gr.Button, gr.Markdown, gr.CheckboxGroup]:
    """'Regenerate these bars' under the live roll: the button, what it does, and the voices to tick
    (shown for a take whose accompanist regenerates voices one by one); built once, shown with a take."""
    with gr.Row(equal_height=True):
        button = gr.Button("↻ Regenerate these bars (the roll's loop range)", elem_id="regenerate", visible=False, scale=1)
        voices = gr.CheckboxGroup(
            choices=[], label="Voices to regenerate", elem_id="regenerate-voices", interactive=True, visible=False, scale=2
        )
    words = gr.Markdown(
        "Choose bars in the roll (drag across the bar numbers, or type them in *bars ... to ...*): **Regenerate these bars** "
        "writes only those bars again with the take's own model and the seed above (another seed, another version), and "
        "keeps everything else note for note. It makes a new take: compare it with the others and go back at will.",
        elem_id="regenerate-help",
        visible=False,
    )
    return button, words, voices


CHORDS_PLACEHOLDER = "C G/B Am F: a chord a bar; C G | Am F: two a bar"


def _chord_controls(first: str) -> tuple[gr.Group, gr.Textbox, gr.Dropdown, gr.Button]:
    """The chords an accompanist keeps to (shown for models that follow chords): typed in a box, filled
    from a common progression in the melody's key, or copied from the take on show to edit."""
    with gr.Group(visible=act.chord_controls_visible(first)["visible"], elem_id="chord-controls") as group:
        chords = gr.Textbox(
            label="Chords (optional)",
            placeholder=CHORDS_PLACEHOLDER,
            info="The accompaniment keeps to them, looped to the end of the melody; leave empty to let the model choose.",
            max_lines=3,
            interactive=True,
            elem_id="chords",
        )
        label, choices = act.progression_picker()
        progressions = gr.Dropdown(choices=choices, value=None, label=label, interactive=True, elem_id="progressions")
        copy = gr.Button("Copy this take's chords into the box", elem_id="copy-chords", size="sm")
    return group, chords, progressions, copy


def build_app() -> gr.Blocks:
    """The studio page."""
    ok, synth_message = synth_status()
    generation_workers()  # a bad STUDIO_WORKERS is refused before the page is built
    choices = model_choices()
    first = choices[0][1] if choices else ""
    # Every generating event is one group in Gradio's queue. Gradio serves a group first come, first
    # served, so it lets in as many as the fair scheduler admits (`studio.serving.fairness`: per-session
    # limits, round robin, `STUDIO_WORKERS` at once), and the scheduler chooses who runs next; a request
    # over its session's limit is refused at once with one line instead of waiting behind a burst.
    shared = {"concurrency_limit": FairnessConfig().max_admitted, "concurrency_id": "generate"}
    # Gradio keeps its own copy of every file a callback returns: every 10 minutes, copies older than
    # an hour are removed (as `ui_actions.results_dir` does for the studio's folders), so disk stays bounded.
    with gr.Blocks(title="Music Studio", delete_cache=(600, 3600)) as app:
        gr.Markdown(
            "# Music Studio\n**1.** Play a melody on the keyboard, record it in time, upload a MIDI file or pick a sample. "
            "**2.** Choose a generator and press the orange button. **3.** Listen, change the instruments, compare your takes."
        )
        if not ok:
            gr.Markdown(f"**Audio is unavailable:** {synth_message}. You still get the MIDI file and the piano roll.")
        takes = gr.State([])
        current = gr.State(None)
        views_for = gr.State(None)  # the take whose step-by-step pictures are on show
        with gr.Row():
            with gr.Column(scale=3, min_width=340):
                with gr.Tabs(elem_id="melody-tabs"):
                    with gr.Tab("Play or record", elem_id="tab-play"):
                        _keyboard()
                        recording = gr.Textbox(visible="hidden", elem_id="recording")
                        with gr.Row():
                            use = gr.Button("Use this melody", variant="secondary", elem_id="use-melody")
                            clear = gr.Button("Clear", elem_id="clear-melody")
                    with gr.Tab("Upload", elem_id="tab-upload"):
                        melody_file = gr.File(
                            label="Melody (MIDI file, up to 2 MB)",
                            file_types=[".mid", ".midi", ".rmi"],
                            type="filepath",
                            elem_id="midi-input",
                        )
                    with gr.Tab("Samples", elem_id="tab-samples"):
                        examples, labels = _samples()
                        gr.Examples(
                            examples=examples,
                            inputs=[melody_file],
                            example_labels=labels,
                            label="Public-domain melodies",
                            examples_per_page=12,
                        )
                melody_note = gr.Markdown(elem_id="melody-note")
                melody_roll = _picture("Your melody", "melody-roll", "Piano roll of your melody", show_label=False, visible=False)
                melody_audio = gr.Audio(label="Hear your melody", type="filepath", interactive=False, elem_id="melody-audio", visible=False)
            with gr.Column(scale=2, min_width=300):
                with gr.Row(equal_height=True):
                    model = gr.Dropdown(choices=choices, value=first or None, label="Generator", elem_id="model", scale=3)
                    seed = gr.Number(value=0, minimum=0, label="Seed (same seed, same music)", elem_id="seed", scale=1, min_width=120)
                keep_tracks = gr.Checkbox(
                    value=False,
                    label="Keep the song's other tracks (drums, bass, pads: the accompaniment is added to an uploaded song)",
                    interactive=True,
                    elem_id="keep-tracks",
                    container=False,
                )
                chord_controls, chords, progressions, copy_chords = _chord_controls(first)
                then_visible, go_words = act.model_mode(first)
                go = gr.Button(go_words["value"], variant="primary", elem_id="generate")
                status = gr.Markdown(elem_id="status")
                then_model = gr.Dropdown(
                    choices=act.accompanist_choices(),
                    value="",
                    label=then_visible.get("label", "Then accompany with"),
                    elem_id="then-model",
                    visible=then_visible["visible"],
                    interactive=True,
                )
                groups, layout, controls = _model_controls([name for _label, name in choices], first)
                with gr.Accordion("About this generator", open=True, elem_id="about-model"):
                    card = gr.Markdown(model_card_markdown(first) if first else "No models found.", elem_id="model-card")
        with gr.Row(elem_id="result-row"):
            with gr.Column(scale=3):
                live_roll = _live_roll()
                use_edited = gr.Button("Use the edited melody", elem_id="use-edited-melody", visible=False)
                regenerate_button, regenerate_help, regenerate_voices = _regenerate_controls()
                note = gr.Markdown(elem_id="result-note")
                # The same roll as a picture, to download (the API's `/accompany` returns it).
                with gr.Accordion("The piano roll as a picture (PNG)", open=False, visible=False, elem_id="roll-picture") as roll_picture:
                    roll = _picture(
                        "Piano roll",
                        "piano-roll",
                        "Piano roll of the take on show: every track in its colour, the melody outlined",
                        show_label=False,
                        visible=False,
                    )
            with gr.Column(scale=2, min_width=300):
                # The browser's own player: a real <audio> element, which the live roll's playhead follows and seeks.
                audio = gr.Audio(
                    label="Listen",
                    type="filepath",
                    elem_id="audio",
                    interactive=False,
                    visible=False,
                    waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                )
                downloads = gr.File(
                    label="Download MIDI and WAV", file_count="multiple", interactive=False, elem_id="downloads", visible=False
                )
                takes_list = gr.Radio(label="This session's takes (newest first)", choices=[], elem_id="takes", visible=False)
                midi_out = gr.File(visible=False, elem_id="midi-output")  # the API's third output
        with gr.Accordion("Instruments and mix (changes the audio, not the notes)", open=False, elem_id="mixer"):
            mixer_area = gr.Column()
        with gr.Accordion("Transpose and tempo (a new take of the same notes, nothing regenerated)", open=False, elem_id="key-and-tempo"):
            with gr.Row(equal_height=True):
                semitones = gr.Slider(
                    -12, 12, value=0, step=1, label="Transpose (semitones)", interactive=True, elem_id="transpose", min_width=200
                )
                tempo = gr.Slider(
                    50, 200, value=100, step=5, label="Tempo (% of the take's)", interactive=True, elem_id="tempo", min_width=200
                )
            change = gr.Button("Make a take in this key and tempo", elem_id="change-key-and-tempo")
        with gr.Accordion("How it was written, step by step", open=False, elem_id="sampling"):
            sampling_note = gr.Markdown("Generate a take: this panel then shows how the model wrote it.", elem_id="sampling-note")
            sampling = gr.Gallery(
                label="The roll at some of the model's steps",
                columns=2,
                height="auto",
                elem_id="sampling-steps",
                interactive=False,
                visible=False,
            )
        vaes = act.interpolator_choices()
        with gr.Accordion(
            "From your melody to another: a walk through the VAE's latent space", open=False, elem_id="interpolation", visible=bool(vaes)
        ):
            gr.Markdown(
                "The VAE turns the first two full bars of each melody into a point of its latent space and plays the points on "
                "the straight way between them (a great circle), from your melody to the other, as one piece."
            )
            with gr.Row():
                second_sample = gr.Dropdown(
                    choices=act.sample_choices(), value=None, label="The other melody: a sample", elem_id="second-sample"
                )
                second_upload = gr.File(
                    label="... or upload one (.mid)", file_types=[".mid", ".midi", ".rmi"], type="filepath", elem_id="second-upload"
                )
            with gr.Row():
                vae_model = gr.Dropdown(choices=vaes, value=vaes[0][1] if vaes else None, label="Model", elem_id="interpolation-model")
                steps = gr.Slider(2, 16, value=5, step=1, label="steps (both melodies included)", elem_id="interpolation-steps")
            walk = gr.Button("Interpolate", elem_id="interpolate")
            walk_note = gr.Markdown(elem_id="interpolation-note")
            with gr.Row():
                walk_roll = _picture(
                    "The way, window by window", "interpolation-roll", "Piano roll of the way from one melody to the other", visible=False
                )
                with gr.Column():
                    walk_audio = gr.Audio(
                        label="Listen to the way", type="filepath", interactive=False, elem_id="interpolation-audio", visible=False
                    )
                    walk_midi = gr.File(label="Download the MIDI", interactive=False, elem_id="interpolation-midi", visible=False)
        with gr.Accordion("How this model learned", open=False, elem_id="learning"):
            curves0, snaps0, note0 = (
                {k: v for k, v in update.items() if k in ("value", "visible")} if isinstance(update, dict) else update
                for update in learning_views(first)
            )
            learning_note = gr.Markdown(note0, elem_id="learning-note")
            with gr.Row():
                curves = _picture(
                    "How its losses fell as it trained", "loss-curves", "The model's losses over its training steps", scale=1, **curves0
                )
                snapshots = gr.Gallery(
                    label="What it wrote for a held-out melody as training went on",
                    columns=2,
                    height="auto",
                    elem_id="snapshots",
                    scale=1,
                    interactive=False,
                    **snaps0,
                )

        # Melody in: keyboard -> MIDI (quantized in Python), uploads and samples; each previewed.
        use.click(
            act.use_recording,
            inputs=recording,
            outputs=melody_file,
            api_name=False,
            js="(_) => (window.studioKeyboard ? window.studioKeyboard.json() : '')",
        )
        clear.click(
            act.clear_melody,
            outputs=[melody_file, melody_roll, melody_audio, melody_note],
            api_name=False,
            js="() => { if (window.studioKeyboard) window.studioKeyboard.clear(); return []; }",
        )
        melody_file.change(act.preview_for_page, inputs=melody_file, outputs=[melody_roll, melody_audio, melody_note], api_name=False)

        # The chosen model: its card, its own controls, what the button says, and how it learned.
        model.change(act.on_model_change(list(groups)), inputs=model, outputs=[card, then_model, go, *groups.values()], api_name=False)
        model.change(learning_views, inputs=model, outputs=[curves, snapshots, learning_note], api_name=False)
        model.change(act.chord_controls_visible, inputs=model, outputs=chord_controls, api_name=False)

        # Chords: a common progression fills the box; the take on show's chords come into it to edit.
        progressions.input(act.chords_from_picker, inputs=[progressions, melody_file], outputs=chords, api_name=False)
        copy_chords.click(act.chords_of_take_for_page, inputs=current, outputs=[chords, status], api_name=False)

        shown = [audio, roll, downloads, note, takes_list, current]
        views = [sampling, sampling_note, views_for]
        go.click(
            act.generate_for_page(layout),
            inputs=[melody_file, model, seed, keep_tracks, chords, then_model, takes, *controls],
            outputs=[*shown, takes, status],
            api_name=False,
            **shared,
        ).then(act.sampling_views_for_page, inputs=[current, views_for], outputs=views, api_name=False, **shared)
        change.click(
            act.change_key_and_tempo_for_page,
            inputs=[current, semitones, tempo, takes],
            outputs=[*shown, takes, status],
            api_name=False,
            **shared,
        ).then(act.sampling_views_for_page, inputs=[current, views_for], outputs=views, api_name=False, **shared)
        takes_list.input(act.show_take_for_page, inputs=[takes_list, takes], outputs=[*shown, status], api_name=False).then(
            act.sampling_views_for_page, inputs=[current, views_for], outputs=views, api_name=False, **shared
        )

        # The live roll follows the take on show; its edited melody becomes the melody (as "Use this melody" does).
        current.change(act.live_roll_for_page, inputs=current, outputs=[live_roll, roll_picture, use_edited], api_name=False)
        use_edited.click(
            act.use_edited_melody_for_page,
            inputs=[recording, current],
            outputs=[melody_file, status],
            api_name=False,
            js="(_, take) => { const roll = window.studioRoll; if (roll) roll.used(); return [roll ? roll.json() : '', take]; }",
        )

        # Regenerate these bars: the roll's loop range (read by its JavaScript) and the ticked voices, a new take.
        current.change(
            act.regenerate_controls_for_page,
            inputs=current,
            outputs=[regenerate_button, regenerate_help, regenerate_voices],
            api_name=False,
        )
        regenerate_bars = gr.Textbox(visible="hidden", elem_id="regenerate-bars")
        regenerate_button.click(
            act.regenerate_for_page(layout),
            inputs=[regenerate_bars, current, seed, regenerate_voices, takes, *controls],
            outputs=[*shown, takes, status],
            api_name=False,
            js="(_, ...rest) => [window.studioRoll ? window.studioRoll.bars() : '', ...rest]",
            **shared,
        )

        with mixer_area:

            @gr.render(inputs=current)
            def _mixer(take: dict | None) -> None:
                """One row per track of the take on show: instrument, volume, mute; re-render the audio."""
                tracks = act.mixer_tracks(take)
                if not tracks:
                    gr.Markdown("Generate a take to change its instruments here.")
                    return
                mix_controls = []
                for i, track in enumerate(tracks):
                    with gr.Row(equal_height=True):
                        mix_controls.append(
                            gr.Dropdown(
                                choices=act.instrument_choices(),
                                value=track.program,
                                label=track.name,
                                interactive=not track.is_drum,
                                min_width=200,
                                scale=3,
                                elem_id=f"mix-program-{i}",
                            )
                        )
                        mix_controls.append(
                            gr.Slider(
                                0,
                                act.LOUDEST_VOLUME,
                                value=1,
                                step=0.1,
                                label=f"volume of {track.name}",
                                min_width=140,
                                scale=2,
                                interactive=True,
                                elem_id=f"mix-volume-{i}",
                            )
                        )
                        mix_controls.append(
                            gr.Checkbox(
                                value=False, label=f"mute {track.name}", min_width=80, scale=1, interactive=True, elem_id=f"mix-mute-{i}"
                            )
                        )
                again = gr.Button("Re-render the audio", elem_id="remix")
                again.click(
                    act.remix_for_page, inputs=[current, *mix_controls], outputs=[audio, downloads, status], api_name=False, **shared
                )

        walk.click(
            act.interpolate_for_page,
            inputs=[melody_file, second_sample, second_upload, vae_model, steps],
            outputs=[walk_roll, walk_audio, walk_midi, walk_note],
            api_name=False,
            **shared,
        )
        # `/interpolate`: (first MIDI, second MIDI, model, steps) -> (audio WAV, piano-roll PNG, MIDI).
        api_walk = gr.Button(visible=False)
        api_walk.click(
            act.interpolate_endpoint,
            inputs=[melody_file, second_upload, vae_model, steps],
            outputs=[walk_audio, walk_roll, walk_midi],
            api_name="interpolate",
            **shared,
        )

        # `/regenerate`: (take MIDI, model, seed, bars "3-4", voices "Alto,Bass", parameters JSON) -> (audio WAV, piano-roll PNG, MIDI).
        api_take = gr.File(visible=False)
        api_bars, api_voices, api_regen_params = gr.Textbox(visible=False), gr.Textbox(visible=False), gr.Textbox(visible=False)
        api_regenerate = gr.Button(visible=False)
        api_regenerate.click(
            act.regenerate_endpoint,
            inputs=[api_take, model, seed, api_bars, api_voices, api_regen_params],
            outputs=[audio, roll, midi_out],
            api_name="regenerate",
            **shared,
        )

        # The API keeps its three inputs (the design's contract), defaults for every model parameter, and
        # takes chords as an optional fourth (a call with three gets none).
        api_button = gr.Button(visible=False)
        api_button.click(
            act.accompany_endpoint,
            inputs=[melody_file, model, seed, chords],
            outputs=[audio, roll, midi_out],
            api_name="accompany",
            **shared,
        )
        # ... and `/generate` takes the model's parameters too, as a JSON object.
        params_json = gr.Textbox(visible=False)
        api_params = gr.Button(visible=False)
        api_params.click(
            act.generate_endpoint,
            inputs=[melody_file, model, seed, params_json],
            outputs=[audio, roll, midi_out],
            api_name="generate",
            **shared,
        )
    return app

"""What the page's buttons do. Each action calls the studio's service layer and turns a studio
error into `gr.Error` (one readable line; the server and the session's takes are untouched).

Every request writes into a fresh, randomly named folder under the temp dir's `studio-results`,
and folders older than an hour are removed, so disk use stays bounded and no session can guess
another's files (Gradio serves only files that a callback returned to that session).

Every action that generates or renders takes its turn (`fair_turn`): Gradio passes the request
(`gr.Request`: its session and address) and `studio.serving.fairness` decides when it runs, so one
client's burst cannot starve the others; a client over its limit gets one line ("busy: ...").
"""

from __future__ import annotations

import functools
import html
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr

from studio.audio.mixing import GM_PROGRAMS, LOUDEST_VOLUME, TrackMix, preview_melody, remix_take, take_tracks
from studio.core.config import REPO_ROOT
from studio.core.errors import InputError, StudioError
from studio.core.files import atomic_write_bytes
from studio.core.progressions import NUMERALS
from studio.core.recording import recording_to_midi
from studio.core.selection import parse_bars
from studio.serving.fairness import Client, default_scheduler
from studio.serving.live_roll import take_roll, write_edited_melody
from studio.serving.regeneration import RegenerateRequest, regenerate
from studio.serving.registry import default_registry, family_info, family_writes, follows_chords, parse_params_json
from studio.serving.service import (
    AccompanyRequest,
    ChangeRequest,
    InterpolateRequest,
    accompany,
    change_take,
    choice_views,
    interpolate,
    latent_views,
    output_error,
    progression_for_melody,
    sampling_trace,
    saving_results,
)
from studio.serving.takes import add_take, changed_take, find_take, take_chords_text, take_from_result, take_label
from studio.ui.cards import key_words, model_card_markdown, plain_text

__all__ = [
    "LOUDEST_VOLUME",
    "accompanist_choices",
    "accompany_endpoint",
    "change_key_and_tempo",
    "change_key_and_tempo_for_page",
    "chord_controls_visible",
    "chords_from_picker",
    "chords_of_take",
    "chords_of_take_for_page",
    "clear_melody",
    "client_of",
    "fair_turn",
    "generate",
    "generate_endpoint",
    "generate_for_page",
    "instrument_choices",
    "interpolate_endpoint",
    "interpolate_for_page",
    "interpolate_view",
    "interpolator_choices",
    "live_roll",
    "live_roll_for_page",
    "mixer_tracks",
    "model_mode",
    "on_model_change",
    "preview",
    "preview_for_page",
    "progression_picker",
    "regenerate_bars",
    "regenerate_controls_for_page",
    "regenerate_endpoint",
    "regenerate_for_page",
    "remix",
    "remix_for_page",
    "sample_choices",
    "sampling_views",
    "sampling_views_for_page",
    "show_take",
    "show_take_for_page",
    "use_edited_melody",
    "use_edited_melody_for_page",
    "use_recording",
]
log = logging.getLogger(__name__)

TRANSFORMER_NOTE = (
    "The Transformer writes one event at a time. Left: for each new note, the pitches it could draw and how likely each was "
    "(after your creative risk and sampling choice); the orange one was drawn. Right: where each new note looked among the "
    "earlier notes (its attention): often the same beat a bar or two back, or the start of the phrase."
)
SAMPLES = REPO_ROOT / "assets" / "melodies"
VAE_NOTE = (
    "The VAE wrote its variation two bars at a time. Left: the variation (outlined) over your melody. Right: each two bars of "
    "your melody is a point in the VAE's latent space (blue, numbered by bar); the variation decoded a point moved from it "
    "(orange) by 'how far' times the VAE's own uncertainty about those bars, in a random direction set by the seed."
)
RESULTS_ROOT_NAME = "studio-results"
KEEP_RESULTS_S = 3600  # a session's files are kept an hour, then cleaned


def results_dir() -> Path:
    """A fresh folder for one request, under a root whose old folders are removed (bounded disk use).
    A full or read-only disk is `service.output_error`'s one line."""
    root = Path(tempfile.gettempdir()) / RESULTS_ROOT_NAME
    with saving_results():
        root.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in root.iterdir():
            try:
                if now - old.stat().st_mtime > KEEP_RESULTS_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                continue
        return Path(tempfile.mkdtemp(dir=root))


def _sentence(exc: Exception) -> str:
    """What went wrong, as one line a person reads (a studio error says it itself)."""
    if isinstance(exc, gr.Error):
        message = str(exc.message)
    elif isinstance(exc, StudioError):
        message = str(exc)
    elif isinstance(exc, (ValueError, TypeError)):
        message = f"invalid request: {exc}"
    else:
        message = f"something went wrong on the server ({type(exc).__name__}); your takes are kept, try again"
    message = " ".join(message.split())
    first = message.split(" ", 1)[0]
    return message[:1].upper() + message[1:] if first.isalpha() else message  # 'gan-chorale took ...' keeps the model's name


def _readable(exc: Exception) -> gr.Error:
    return gr.Error(_sentence(exc), print_exception=False)


def user_errors(action: Callable) -> Callable:
    """Run `action`; studio errors (and bad values from the page) become one readable `gr.Error`."""

    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            return action(*args, **kwargs)
        except gr.Error:
            raise
        except (StudioError, ValueError, TypeError) as exc:
            raise _readable(exc) from None

    return run


def _failed(exc: Exception, where: str, title: str = "That did not work") -> str:
    """Say a page action's failure in a toast; return the line for the page (escaped). An error that
    is not the user's (a bug) also goes to the server's log with its trace."""
    if not isinstance(exc, (gr.Error, StudioError, ValueError, TypeError)):
        log.exception("page action %s failed", where)
    message = _sentence(exc)
    gr.Warning(html.escape(message), title=title, duration=12)
    return plain_text(message)


def kept_on_error(n_outputs: int) -> Callable[[Callable], Callable]:
    """The page's version of an action with `n_outputs` outputs and a status line after them: on any
    error the outputs keep what they show (the earlier takes, roll and audio stay playable; a raised
    `gr.Error` would turn every output into an error badge), the status line says what went wrong,
    and so does a toast. The text is escaped: it may quote a user's file."""

    def wrap(action: Callable) -> Callable:
        @functools.wraps(action)
        def run(*args, **kwargs):
            try:
                out = action(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the page must survive anything; the log keeps the trace
                return (*[gr.skip()] * n_outputs, _failed(exc, action.__name__))
            return (*(out if isinstance(out, tuple) else (out,)), "")

        return run

    return wrap


def client_of(request: gr.Request | None) -> Client | None:
    """Whose request it is: the address it came from and its session (a page, or one `gradio_client`
    client; Gradio's session hash). None when an action is called directly, not served by Gradio.
    Behind a proxy every address is the proxy's: the sessions are then told apart, not the machines."""
    if request is None:
        return None
    client = getattr(request, "client", None)
    host = str(getattr(client, "host", "") or "")
    session = str(getattr(request, "session_hash", "") or "")
    return Client(host, session or f"no session ({host})")


@contextmanager
def fair_turn(request: gr.Request | None, progress: Any = None) -> Iterator[None]:
    """The block runs in the request's turn (`studio.serving.fairness.default_scheduler`): at once
    when a slot is free and its client has no other request running, else after the other clients'
    turns; `Busy` (one line) when its session or address has too many requests waiting. Called
    directly (no request), the block just runs."""
    client = client_of(request)
    if client is None:
        yield
        return
    if progress is not None:
        progress(0.0, desc="waiting for your turn")
    with default_scheduler().turn(client):
        yield


def _melody_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or "melody"


def _run(
    midi_file: str | None,
    model_name: str,
    seed: Any,
    params: dict,
    progress: Any,
    then: str | None = None,
    listen: bool = True,
    keep_tracks: bool = False,
    request: gr.Request | None = None,
    chords: str | None = None,
):
    """Accompany for the page (`listen`: also the player's MP3 copy) or the API (the WAV alone),
    in the request's turn; `keep_tracks`: the song's other tracks stay beside the accompaniment;
    `chords`: the chords an accompanist that follows chords keeps to."""
    if not midi_file:
        raise gr.Error("Play a melody and press “Use this melody”, upload a MIDI file (.mid), or pick a sample melody first.")
    path = Path(midi_file)
    with fair_turn(request, progress):
        result = accompany(
            AccompanyRequest(
                midi=path,
                model=model_name or "rules",
                seed=0 if seed is None else seed,
                params=params,
                out_dir=results_dir(),
                name=path.stem,
                then=then or None,
                want_listen=listen,
                keep_tracks=bool(keep_tracks),
                chords=chords or None,
            ),
            progress=lambda fraction, desc="": progress(fraction, desc=desc),
        )
    for warning in result.warnings:
        gr.Warning(html.escape(warning))
    for info in result.notes:
        gr.Info(html.escape(info))
    return result


@user_errors
def accompany_endpoint(
    midi_file: str | None,
    model_name: str,
    seed: float | int,
    chords: str | None = None,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The `/accompany` API: (WAV path, piano-roll PNG path, MIDI path), every model parameter at its
    default; `chords` (optional, e.g. "C G/B Am F") for a model that follows chords."""
    if chords is not None and not isinstance(chords, str):
        raise InputError('the chords must be text, e.g. "C G/B Am F"')
    result = _run(midi_file, model_name, seed, {}, progress, listen=False, request=request, chords=chords)
    return (str(result.wav_path) if result.wav_path else None, str(result.png_path), str(result.midi_path))


@user_errors
def generate_endpoint(
    midi_file: str | None, model_name: str, seed: float | int, params_json: str | None, request: gr.Request = None, progress=gr.Progress()
):
    """The `/generate` API: as `/accompany`, plus the model's parameters as a JSON object (e.g.
    '{"mode": "enhance", "max_added": 4}'); unknown names and values out of range are refused. After a
    model that writes melody, "then" names the accompanist: '{"bars": 8, "then": "gan-chorale"}'.
    "keep_tracks": true keeps the song's other tracks (drums, bass...) beside the accompaniment.
    "chords": "C G/B Am F" gives a model that follows chords (rules) the chords to keep to."""
    params = parse_params_json(params_json)
    then = params.pop("then", None)
    if then is not None and not isinstance(then, str):
        raise InputError('"then" must be a model name, e.g. {"then": "gan-chorale"}')
    keep_tracks = params.pop("keep_tracks", False)
    if not isinstance(keep_tracks, bool):
        raise InputError('"keep_tracks" must be true or false, e.g. {"keep_tracks": true}')
    chords = params.pop("chords", None)
    if chords is not None and not isinstance(chords, str):
        raise InputError('"chords" must be text, e.g. {"chords": "C G/B Am F"}')
    result = _run(
        midi_file, model_name, seed, params, progress, then=then, listen=False, keep_tracks=keep_tracks, request=request, chords=chords
    )
    return (str(result.wav_path) if result.wav_path else None, str(result.png_path), str(result.midi_path))


def _writes(model: str) -> str:
    """What `model` writes (`studio.serving.service.family_writes`); an unknown model: accompaniment."""
    try:
        return family_writes(default_registry().card(model).family)
    except StudioError:
        return "accompaniment"


def _result_note(take: dict) -> str:
    m = take.get("metrics", {})
    facts = [f"**{plain_text(take_label(take))}**"]
    if heard := take_chords_text(take):
        bars = heard.split(" | ")
        facts.append(f"chords heard: {plain_text(' | '.join(bars[:4]))}{' | …' if len(bars) > 4 else ''}")
    if take.get("then"):
        made = "varied" if _writes(take["model"]) == "variation" else "continued"
        facts.append(f"{made} by {take['model']}, accompanied by {take['then']}")
    if isinstance(m.get("in_key"), float) and math.isfinite(m["in_key"]):
        facts.append(f"{m['in_key']:.0%} of the accompaniment's notes in the key of {key_words(take.get('key', '')) or 'the melody'}")
    if isinstance(m.get("consonance"), float) and math.isfinite(m["consonance"]):
        facts.append(f"{m['consonance']:.0%} consonant with the melody")
    if not take.get("wav"):
        facts.append("no audio on this server (the MIDI file plays in any music program)")
    return " · ".join(facts)


def _downloads(take: dict) -> list[str]:
    return [p for p in (take["midi"], take.get("wav")) if p]


def _show(take: dict, takes: list[dict]) -> tuple:
    """The outputs that show one take: audio (the page's compressed copy when there is one), roll,
    downloads, note, takes list, current take."""
    radio = gr.Radio(choices=[take_label(t) for t in reversed(takes)], value=take_label(take), visible=True)
    return (
        _shown(take.get("listen") or take.get("wav")),
        _shown(take.get("png")),
        _shown(_downloads(take)),
        _result_note(take),
        radio,
        take,
    )


def _shown(value: Any) -> dict:
    """An output with `value`, on show only when there is something (Gradio's empty placeholders carry
    ARIA attributes a screen reader cannot use)."""
    return gr.update(value=value, visible=bool(value))


@user_errors
def generate(
    midi_file: str | None,
    model_name: str,
    seed: Any,
    then: str | None,
    takes: list[dict] | None,
    *values: Any,
    keep_tracks: bool = False,
    chords: str | None = None,
    request: gr.Request | None = None,
    progress=gr.Progress(),
):
    """The page's generate button: the chosen model with its controls (in card order), and for a
    model that writes melody the accompanist chosen to follow it (`then`, '' for none); a new take,
    made in the `request`'s turn. `keep_tracks`: the song's other tracks stay beside the accompaniment;
    `chords` (the chords box) go to a model that follows chords, and are not read for the others (the box is hidden for them)."""
    card = default_registry().card(model_name)
    names = [p.name for p in card.params]
    result = _run(
        midi_file,
        model_name,
        seed,
        dict(zip(names, values, strict=False)),
        progress,
        then=then if family_writes(card.family) != "accompaniment" else None,
        keep_tracks=keep_tracks,
        request=request,
        chords=chords if follows_chords(card) else None,
    )
    take = take_from_result(
        result,
        number=max((t["number"] for t in takes or []), default=0) + 1,
        melody_name=_melody_name(Path(midi_file)),
        source=str(midi_file),
    )
    takes = add_take(takes, take)
    return (*_show(take, takes), takes)


def generate_for_page(layout: Sequence[tuple[str, int]]) -> Callable:
    """The page's generate button: every model's controls arrive (`layout` says how many each model
    has, in order); only the chosen model's own are read, so no model gets another's values. The
    'keep the song's other tracks' box and the chords box come after the seed. Outputs as `generate`, then the status
    line; on an error the takes on show stay (`kept_on_error`). Gradio passes the `request` first
    (its place must come before the controls' values for Gradio to fill it)."""
    layout = tuple(layout)

    @kept_on_error(7)  # the take on show (6 outputs) and the takes
    def generate_take(
        request: gr.Request,
        midi_file: str | None,
        model_name: str,
        seed: Any,
        keep_tracks: bool,
        chords: str | None,
        then: str | None,
        takes: list[dict] | None,
        *values: Any,
        progress=gr.Progress(),
    ):
        start = 0
        for name, count in layout:
            if name == model_name:
                values = values[start : start + count]
                return generate(
                    midi_file,
                    model_name,
                    seed,
                    then,
                    takes,
                    *values,
                    keep_tracks=bool(keep_tracks),
                    chords=chords,
                    request=request,
                    progress=progress,
                )
            start += count
        raise InputError("choose one of the listed generators")

    return generate_take


def model_mode(model_name: str | None) -> tuple:
    """The page's parts that depend on what the chosen model writes: the 'then accompany with'
    choice (shown for models that write melody, and back to 'nothing' at every change, so a choice
    made for one model never carries over silently) and the generate button's words."""
    writes = _writes(model_name) if model_name else "accompaniment"
    if writes == "variation":
        return gr.update(visible=True, value="", label="Then accompany the variation with"), gr.update(value="Vary the melody")
    if writes == "melody":
        return gr.update(visible=True, value="", label="Then accompany the longer melody with"), gr.update(value="Continue the melody")
    return gr.update(visible=False, value=""), gr.update(value="Generate accompaniment")


def on_model_change(models: Sequence[str]) -> Callable:
    """What changes with the chosen model: its card, the 'then' choice, the button's words, and which
    model's controls are shown (one group per model in `models`, in order)."""

    models = tuple(models)

    def change(model_name: str | None) -> tuple:
        then, go = model_mode(model_name)
        return (
            model_card_markdown(model_name) if model_name else "",
            then,
            go,
            *[gr.update(visible=name == model_name) for name in models],
        )

    return change


def accompanist_choices() -> list[tuple[str, str]]:
    """('(nothing: the melody alone)', '') and every usable model that accompanies."""
    cards = [c for c in default_registry().cards() if not c.disabled and family_writes(c.family) == "accompaniment"]
    return [("(nothing: the melody alone)", "")] + [(c.name, c.name) for c in cards]


@user_errors
def show_take(label: str, takes: list[dict] | None) -> tuple:
    """Play back one of this session's takes (no regeneration)."""
    take = find_take(takes, label)
    return _show(take, list(takes or []))


show_take_for_page = kept_on_error(6)(show_take)


@user_errors
def change_key_and_tempo(
    take: dict | None, semitones: Any, tempo_percent: Any, takes: list[dict] | None, request: gr.Request | None = None
) -> tuple:
    """The take on show transposed by `semitones` and at `tempo_percent` of its tempo: a new take with
    the same notes moved (nothing regenerated), in the `request`'s turn; the earlier takes stay."""
    if not take:
        raise InputError("generate a take first, then transpose it or change its tempo")
    if not Path(take["midi"]).exists():
        raise InputError("this take has expired (files are kept an hour): generate it again")
    try:
        factor = float(tempo_percent) / 100
    except (TypeError, ValueError):
        factor = float("nan")  # refused by the service's check, with its one line
    with fair_turn(request):
        files = change_take(
            ChangeRequest(
                midi=take["midi"],
                semitones=semitones,
                tempo=factor,
                out_dir=results_dir(),
                name=f"{take.get('melody') or 'take'} {take.get('model', '')}",
                bar_ticks=take.get("bar_ticks") or (),
            )
        )
    number = max((t["number"] for t in takes or []), default=0) + 1
    new = changed_take(take, number, files, int(float(semitones)), factor)
    takes = add_take(takes, new)
    return (*_show(new, takes), takes)


@kept_on_error(7)
def change_key_and_tempo_for_page(request: gr.Request, take: dict | None, semitones: Any, tempo_percent: Any, takes: list[dict] | None):
    """`change_key_and_tempo` for the page: on an error the takes on show stay and the status says why."""
    return change_key_and_tempo(take, semitones, tempo_percent, takes, request=request)


def instrument_choices() -> list[tuple[str, int]]:
    """The General MIDI instruments as (\"25 Acoustic Guitar (steel)\", 25)."""
    return [(f"{i} {name}", i) for i, name in enumerate(GM_PROGRAMS)]


def mixer_tracks(take: dict | None) -> list:
    """The tracks of the take on show (empty when there is none or its files are gone)."""
    if not take or not Path(take["midi"]).exists():
        return []
    try:
        return take_tracks(take["midi"])
    except StudioError:
        return []


@user_errors
def remix(take: dict | None, *values: Any, request: gr.Request | None = None) -> tuple:
    """Re-render the take's audio with each track's instrument, volume and mute (no regeneration),
    in the `request`'s turn.

    `values` are (program, volume, mute) for each track, in track order."""
    if not take:
        raise InputError("generate a take first, then change its instruments")
    midi = Path(take["midi"])
    if not midi.exists():
        raise InputError("this take has expired (files are kept an hour): generate it again")
    mixes = [TrackMix(program=int(values[i]), volume=float(values[i + 1]), mute=bool(values[i + 2])) for i in range(0, len(values) - 2, 3)]
    with fair_turn(request):
        made = remix_take(midi, mixes, midi.parent)
    return _shown(str(made.listen or made.wav)), _shown([str(made.midi), str(made.wav)])


@kept_on_error(2)
def remix_for_page(request: gr.Request, take: dict | None, *values: Any) -> tuple:
    """`remix` for the page: Gradio passes the `request` first (before the mixer's values); on an
    error the audio on show stays and the status line says why."""
    return remix(take, *values, request=request)


SAMPLING_NOTES = {
    "arcnn": "Gibbs sampling: at first every note of alto, tenor and bass is erased and guessed at once (noisy); then, "
    "iteration after iteration, fewer notes are erased and guessed again, each in the light of all the others.",
    "diffusion": "Diffusion: the voices start as pure noise (random notes everywhere under the melody). At each step the "
    "network guesses the clean music through the noise, and a little less noise is kept than before; the pictures show "
    "the noisy roll itself, from noise level t = 1 (all noise) down to t = 0 (the music you hear).",
}


@user_errors
def sampling_views(take: dict | None, request: gr.Request | None = None) -> tuple[list[tuple[str, str]], str]:
    """For a take of a model that writes step by step (the AR-CNN's Gibbs sampling, diffusion's
    denoising), the roll at some of its steps (the same run, same seed) and what they show;
    otherwise nothing, and a note saying why. Drawn in the `request`'s turn (the model runs again)."""
    if not take or not take.get("source") or not Path(take["source"]).exists():
        return [], ""
    with fair_turn(request):
        return _sampling_views(take)


def _sampling_views(take: dict) -> tuple[list[tuple[str, str]], str]:
    """The step-by-step pictures of a take whose melody file is still there, and what they show."""
    request = AccompanyRequest(
        midi=Path(take["source"]),
        model=take["model"],
        seed=take["seed"],
        params=take.get("params", {}),
        out_dir=Path(take["midi"]).parent,
        name=Path(take["source"]).stem,
    )
    pictures = sampling_trace(request)
    if not pictures and (pictures := choice_views(request)):
        return [(str(p), caption) for p, caption in pictures], TRANSFORMER_NOTE
    if not pictures and (pictures := latent_views(request)):
        return [(str(p), caption) for p, caption in pictures], VAE_NOTE
    if not pictures:
        return [], "This model writes its music in one pass; the AR-CNN and the diffusion models show here how they write step by step."
    family = default_registry().card(take["model"]).family
    return [(str(p), caption) for p, caption in pictures], SAMPLING_NOTES.get(family, "The music at some of the model's steps.")


def sampling_views_for_page(take: dict | None, shown_for: Any, request: gr.Request = None) -> tuple:
    """The step-by-step panel for the take on show: drawn again only when another take is shown
    (`shown_for` is the take number drawn last); a failure says so in the panel's note."""
    if not take:
        return gr.skip(), gr.skip(), shown_for
    if take.get("number") == shown_for:
        return gr.skip(), gr.skip(), shown_for
    try:
        pictures, words = sampling_views(take, request)
    except Exception as exc:  # noqa: BLE001 - a view that fails must not touch the take
        return gr.update(value=[], visible=False), plain_text(f"The steps could not be drawn: {_sentence(exc)}"), None
    return gr.update(value=pictures, visible=bool(pictures)), words, take.get("number")


@user_errors
def preview(midi_file: str | None) -> tuple:
    """The melody alone, as the studio reads it: (piano-roll PNG, WAV or None)."""
    png, listen, _warnings = _preview_with_warnings(midi_file)
    return png, listen


@user_errors
def use_recording(recording_json: str) -> str:
    """What was played on the keyboard, quantized, as a MIDI file that becomes the melody."""
    data = recording_to_midi(recording_json or "")
    folder = results_dir()
    try:
        atomic_write_bytes(folder / "my-melody.mid", data)  # a reader never sees half a file
    except OSError as exc:  # a full disk: one line, and no half-written file or empty folder left
        shutil.rmtree(folder, ignore_errors=True)
        raise output_error(exc) from None
    return str(folder / "my-melody.mid")


def preview_for_page(midi_file: str | None) -> tuple:
    """The page's preview of a new melody: (roll, audio, a note). A file that cannot be used clears
    the preview and says why in the note and a toast; what the melody reader warns about (a long
    piece cut, notes moved into range) is said at once, not only at Generate."""
    try:
        png, wav, warnings = _preview_with_warnings(midi_file)
    except Exception as exc:  # noqa: BLE001 - the page must survive anything
        return _shown(None), _shown(None), _failed(exc, "preview", title="This file cannot be used")
    for warning in warnings:
        gr.Warning(html.escape(warning))
    return _shown(png), _shown(wav), plain_text(" ".join(warnings))


def _preview_with_warnings(midi_file: str | None) -> tuple[str | None, str | None, list[str]]:
    """(roll PNG, the audio the player plays, the reader's warnings) of the melody alone."""
    if not midi_file:
        return None, None, []
    made = preview_melody(midi_file, results_dir(), name=Path(midi_file).stem)
    listen = made.listen or made.wav
    return str(made.png), (str(listen) if listen else None), list(made.warnings)


def clear_melody() -> tuple:
    """Forget the melody (the session's takes stay)."""
    return None, _shown(None), _shown(None), ""


# --------------------------------------------------------------------------- interpolation (VAE)


def sample_choices() -> list[tuple[str, str]]:
    """The sample melodies as (\"Title (meter, key)\", file name), from assets/melodies/index.json."""
    try:
        index = json.loads((SAMPLES / "index.json").read_text())
    except (OSError, ValueError):
        return []
    return [(f"{e['title']} ({e['meter']}, {key_words(e['key'])})", e["file"]) for e in index if (SAMPLES / e.get("file", "")).is_file()]


def interpolator_choices() -> list[tuple[str, str]]:
    """Every usable model that can walk between two melodies (the VAEs)."""
    return [(c.name, c.name) for c in default_registry().cards() if not c.disabled and family_writes(c.family) == "variation"]


def _interpolation(
    first: str | None,
    second: str | None,
    model_name: str,
    steps: Any,
    progress: Any,
    listen: bool = True,
    request: gr.Request | None = None,
):
    if not first:
        raise gr.Error("Choose your melody first (play, upload or pick a sample): the way starts from it.")
    if not second:
        raise gr.Error("Choose the second melody (a sample or an upload): the way ends at it.")
    if not model_name:  # none named (an API call without one): say which can, or that none is loaded here
        able = [name for _label, name in interpolator_choices()]
        if able:
            raise InputError(f"choose a model that interpolates: {' or '.join(able)}")
        raise InputError("no model that interpolates is available here (a VAE such as vae-folk needs its trained checkpoint)")
    a, b = Path(first), Path(second)
    with fair_turn(request, progress):
        result = interpolate(
            InterpolateRequest(
                first=a,
                second=b,
                model=model_name,
                steps=steps if steps is not None else 5,
                out_dir=results_dir(),
                name=f"{a.stem}-to-{b.stem}",
                want_listen=listen,
            ),
            progress=lambda fraction, desc="": progress(fraction, desc=desc),
        )
    for warning in result.warnings:
        gr.Warning(html.escape(warning))
    return result


@user_errors
def interpolate_endpoint(
    first_file: str | None, second_file: str | None, model_name: str, steps: float | int, request: gr.Request = None, progress=gr.Progress()
):
    """The `/interpolate` API: (WAV path, piano-roll PNG path, MIDI path) of the way from the first
    melody to the second in `steps` windows through a VAE's latent space."""
    result = _interpolation(first_file, second_file, model_name, steps, progress, listen=False, request=request)
    return (str(result.wav_path) if result.wav_path else None, str(result.png_path), str(result.midi_path))


@user_errors
def interpolate_view(
    first_file: str | None,
    sample: str | None,
    upload: str | None,
    model_name: str,
    steps: Any,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The page's interpolation: from the melody in use to a sample (or an uploaded file, which wins),
    as (piano roll, audio, MIDI download, a note)."""
    second = upload
    if not second and sample:
        known = {file for _label, file in sample_choices()}
        if sample not in known:
            raise InputError("choose one of the listed sample melodies")
        second = str(SAMPLES / sample)
    result = _interpolation(first_file, second, model_name, steps, progress, request=request)
    m = result.metrics
    note = (
        f"**{m['steps']} steps** from your melody's first full bars to the other's, each decoded from a point on the way "
        f"between their codes. The first step gives back {m['start_kept']:.0%} of your melody's 16ths there, the last "
        f"{m['end_kept']:.0%} of the other's."
    )
    listen = result.listen_path or result.wav_path
    return _shown(str(result.png_path)), _shown(str(listen) if listen else None), _shown(str(result.midi_path)), note


def interpolate_for_page(
    first_file: str | None,
    sample: str | None,
    upload: str | None,
    model_name: str,
    steps: Any,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """`interpolate_view` for the page: a failure is said in the panel's note (and a toast) and what
    the panel showed stays."""
    try:
        return interpolate_view(first_file, sample, upload, model_name, steps, request=request, progress=progress)
    except Exception as exc:  # noqa: BLE001 - the page must survive anything
        return gr.skip(), gr.skip(), gr.skip(), _failed(exc, "interpolate_for_page")


# --------------------------------------------------------------------------- the live piano roll


def live_roll(take: dict | None) -> dict | None:
    """The live roll's data for the take on show (`studio.serving.live_roll.take_roll`): None
    without a take, or when its files are gone."""
    if not take or not take.get("midi") or not Path(take["midi"]).exists():
        return None
    return take_roll(take["midi"], take.get("bar_ticks") or None, take.get("given_until_tick"), take_label(take))


def live_roll_for_page(take: dict | None) -> tuple:
    """The live roll, its 'Use the edited melody' button and the roll's picture (PNG) for the take
    on show: shown together, or hidden when there is no take (a roll that cannot be read says so in
    a toast and hides; the take's audio and downloads stay)."""
    try:
        view = live_roll(take)
    except Exception as exc:  # noqa: BLE001 - the page must survive anything
        _failed(exc, "live_roll_for_page", title="The piano roll cannot be shown")
        view = None
    shown = view is not None
    return gr.update(value=view, visible=shown), gr.update(visible=shown), gr.update(visible=shown)


@user_errors
def use_edited_melody(edited_json: str, take: dict | None) -> str:
    """The melody as edited in the live roll (the page's JSON), written as a MIDI file on the take's
    tempo and meter maps, which becomes the melody (previewed, then generated from)."""
    if not take or not take.get("midi"):
        raise InputError("generate a take first, then edit its melody in the piano roll")
    folder = results_dir()
    try:
        return str(write_edited_melody(take["midi"], edited_json or "", folder, name=f"{take.get('melody') or 'melody'} edited"))
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)  # no empty folder left behind
        raise


use_edited_melody_for_page = kept_on_error(1)(use_edited_melody)


# --------------------------------------------------------------------------- regenerating bars of a take


def _take_accompanist(take: dict | None) -> str | None:
    """The model whose tracks the take's accompaniment is (the 'then' model after a melody model), if any."""
    if not take:
        return None
    model = take.get("then") or take.get("model")
    return model if model and _writes(model) == "accompaniment" else None


def regenerate_controls_for_page(take: dict | None) -> tuple:
    """What 'Regenerate these bars' shows for the take on show: the button and its help when the
    take's accompanist can regenerate, and the voices to tick when it regenerates voices one by one."""
    model = _take_accompanist(take)
    info = None
    try:
        info = family_info(default_registry().card(model).family) if model else None
    except StudioError:
        info = None
    able = bool(info and info.regenerates) and bool(take and take.get("midi") and Path(take["midi"]).exists())
    voices = able and info.regenerates == "voices"
    names = [str(t["name"]) for t in default_registry().card(model).tracks] if voices else []
    return (
        gr.update(visible=able),
        gr.update(visible=able),
        gr.update(choices=names, value=[], visible=voices, label=f"Voices of {model} to regenerate (none ticked: all)" if voices else None),
    )


@user_errors
def regenerate_bars(
    bars: str | None,
    take: dict | None,
    seed: Any,
    voices: Sequence[str] | None,
    takes: list[dict] | None,
    params: dict,
    request: gr.Request | None = None,
    progress=gr.Progress(),
) -> tuple:
    """The page's 'Regenerate these bars': the take on show, its bars `bars` (the roll's loop, "3-4")
    and ticked `voices` written again by the take's own accompanist with `seed` and `params`; a new take
    (the earlier ones stay, to compare and go back), made in the `request`'s turn."""
    model = _take_accompanist(take)
    if not take or not model:
        raise InputError("generate an accompaniment first, then choose its bars in the piano roll to regenerate them")
    midi = Path(take["midi"])
    if not midi.exists():
        raise InputError("this take has expired (its files are kept an hour): generate it again")
    with fair_turn(request, progress):
        result = regenerate(
            RegenerateRequest(
                midi=midi,
                model=model,
                bars=bars or "",
                voices=list(voices or []) or None,
                seed=0 if seed is None else seed,
                params=params,
                out_dir=results_dir(),
                name=take.get("melody") or "take",
            ),
            progress=lambda fraction, desc="": progress(fraction, desc=desc),
        )
    for warning in result.warnings:
        gr.Warning(html.escape(warning))
    first, last = parse_bars(bars)
    which = f" ({', '.join(voices)})" if voices else ""
    new = take_from_result(
        result,
        number=max((t["number"] for t in takes or []), default=0) + 1,
        melody_name=take.get("melody") or "melody",
        regenerated=f"bars {first}-{last}{which} of take {take['number']}",
    )
    new["given_until_tick"] = take.get("given_until_tick")  # the same melody: a continuation's mark stays
    takes = add_take(takes, new)
    return (*_show(new, takes), takes)


def regenerate_for_page(layout: Sequence[tuple[str, int]]) -> Callable:
    """The page's 'Regenerate these bars' button: the roll's loop range (`bars`, sent by the roll's
    JavaScript), the take on show, the seed, the ticked voices and the takes, then every model's
    controls (`layout` as in `generate_for_page`): the controls of the take's own accompanist are its
    parameters. Outputs as `generate_for_page` (`kept_on_error`: an error keeps the takes on show)."""
    layout = tuple(layout)

    @kept_on_error(7)
    def regenerate_take(
        request: gr.Request,
        bars: str | None,
        take: dict | None,
        seed: Any,
        voices: list[str] | None,
        takes: list[dict] | None,
        *values: Any,
        progress=gr.Progress(),
    ):
        model = _take_accompanist(take)
        params: dict = {}
        start = 0
        for name, count in layout:
            if name == model:
                params = dict(zip([p.name for p in default_registry().card(name).params], values[start : start + count], strict=False))
            start += count
        return regenerate_bars(bars, take, seed, voices, takes, params, request=request, progress=progress)

    return regenerate_take


@user_errors
def regenerate_endpoint(
    midi_file: str | None,
    model_name: str,
    seed: float | int,
    bars: str | None,
    voices: str | None,
    params_json: str | None,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The `/regenerate` API: a take's MIDI (what `/accompany` or `/generate` returned), the model whose
    tracks it has, a seed, the bars ("3-4"; a pickup is bar 0), the voices ("Alto,Bass"; empty: all)
    and the model's parameters as a JSON object; returns (WAV path, piano-roll PNG path, MIDI path) of
    the new take, whose notes outside the selection are the take's own."""
    if not midi_file:
        raise gr.Error("Give the take's MIDI file (what /accompany or /generate returned).")
    path = Path(midi_file)
    with fair_turn(request, progress):
        result = regenerate(
            RegenerateRequest(
                midi=path,
                model=model_name or "rules",
                bars=bars or "",
                voices=voices or None,
                seed=0 if seed is None else seed,
                params=parse_params_json(params_json),
                out_dir=results_dir(),
                name=path.stem,
                want_listen=False,
            ),
            progress=lambda fraction, desc="": progress(fraction, desc=desc),
        )
    return (str(result.wav_path) if result.wav_path else None, str(result.png_path), str(result.midi_path))


# --------------------------------------------------------------------------- chords


def chord_controls_visible(model_name: str | None) -> dict:
    """The chords box, its picker and its copy button: shown for a model that follows chords."""
    try:
        shown = bool(model_name) and follows_chords(default_registry().card(model_name))
    except StudioError:
        shown = False
    return gr.update(visible=shown)


PROGRESSIONS_LABEL = "Common progressions (picked: spelt in the melody's key)"


def progression_picker() -> tuple[str, list[str]]:
    """The chord picker's label and choices: the common progressions by their numerals. The choices
    never change (a Gradio dropdown whose choices change while it has the focus breaks: a keyboard
    user tabbing past it as a new melody arrives got a page error); the melody's key spells the one
    picked (`chords_from_picker`)."""
    return PROGRESSIONS_LABEL, list(NUMERALS)


def chords_from_picker(choice: str | None, midi_file: str | None = None) -> Any:
    """The chords box filled with the progression picked, spelt in the key of the melody in use (C major
    before one is chosen, or when its file cannot be read: the preview says why); left as it is when
    the choice is cleared."""
    if not choice:
        return gr.skip()
    try:
        return progression_for_melody(choice, Path(midi_file) if midi_file else None) or gr.skip()
    except StudioError:
        return progression_for_melody(choice, None) or gr.skip()


@user_errors
def chords_of_take(take: dict | None) -> str:
    """The take on show's chords as heard in it, as a progression to edit in the chords box."""
    if not take:
        raise InputError("generate a take first: its chords then come into the box to edit")
    text = take_chords_text(take)
    if not text:
        raise InputError("no chords were heard in this take (it has no notes to hear them in)")
    return text


chords_of_take_for_page = kept_on_error(1)(chords_of_take)

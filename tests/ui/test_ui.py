"""The page's actions and words without a browser: errors keep what is on show, every model's
controls are read by model, the panels always say something, and the words read as English."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import gradio as gr
import pytest

from studio.core.errors import ModelError
from studio.serving import fairness
from studio.serving.fairness import Client, FairnessConfig, FairScheduler
from studio.serving.registry import default_registry
from studio.ui import actions as act
from studio.ui import cards as ui_cards

MODELS = [c.name for c in default_registry().cards() if not c.disabled]


def _layout() -> list[tuple[str, int]]:
    return [(name, len(default_registry().card(name).params)) for name in MODELS]


def _defaults() -> list:
    return [p.default for name in MODELS for p in default_registry().card(name).params]


def test_generate_reads_only_the_chosen_models_own_controls(tune_paths):
    """Every model's controls arrive; the take carries exactly the chosen model's values."""
    values = _defaults()
    start = sum(n for name, n in _layout()[: MODELS.index("rules")])
    values[start + 1] = "block"  # rules' pattern
    out = act.generate_for_page(_layout())(
        None, str(tune_paths["four_four.mid"]), "rules", 0, False, "", "", [], *values, progress=lambda *a, **k: None
    )
    *_shown, take, takes, status = out
    assert status == "" and take["params"] == {"chords_per_bar": 2, "pattern": "block"} and len(takes) == 1


@pytest.mark.parametrize("keep", [False, True])
def test_the_page_passes_keep_the_songs_other_tracks(tune_paths, monkeypatch, keep):
    """The 'Keep the song's other tracks' box (after the seed) reaches the service's request."""
    asked = []
    real = act.accompany
    monkeypatch.setattr(act, "accompany", lambda request, **k: asked.append(request) or real(request, **k))
    out = act.generate_for_page(_layout())(
        None, str(tune_paths["multitrack_drums.mid"]), "rules", 0, keep, "", "", [], *_defaults(), progress=lambda *a, **k: None
    )
    assert out[-1] == "" and len(asked) == 1 and asked[0].keep_tracks is keep


def test_the_keep_tracks_box_is_on_the_page_and_wired_to_generate():
    from studio.ui.page import build_app

    app = build_app()
    boxes = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "keep-tracks"]
    assert len(boxes) == 1 and isinstance(boxes[0], gr.Checkbox) and boxes[0].interactive and boxes[0].value is False
    go = [fn for fn in app.fns.values() if fn.name == "generate_take"]
    assert len(go) == 1
    ids = [getattr(b, "elem_id", None) for b in go[0].inputs]
    assert ids[2:4] == ["seed", "keep-tracks"]


def test_the_generate_api_takes_keep_tracks(tune_paths, monkeypatch):
    asked = []
    real = act.accompany
    monkeypatch.setattr(act, "accompany", lambda request, **k: asked.append(request) or real(request, **k))
    midi = str(tune_paths["multitrack_drums.mid"])
    act.generate_endpoint(midi, "rules", 0, '{"keep_tracks": true, "pattern": "block"}', progress=lambda *a, **k: None)
    assert asked[-1].keep_tracks is True and dict(asked[-1].params) == {"pattern": "block"}
    with pytest.raises(gr.Error, match="keep_tracks"):
        act.generate_endpoint(midi, "rules", 0, '{"keep_tracks": "yes"}', progress=lambda *a, **k: None)


@pytest.mark.parametrize("failure", ["no file", "time-out", "bug"])
def test_a_failed_generation_keeps_what_is_on_show(tune_paths, monkeypatch, failure):
    """On any failure the page's outputs are left as they are (gr.skip) and the status line says why in
    one escaped line; a raised gr.Error would turn every output into an error badge."""
    midi = None if failure == "no file" else str(tune_paths["four_four.mid"])
    if failure == "time-out":
        monkeypatch.setattr(
            act, "accompany", lambda *a, **k: (_ for _ in ()).throw(ModelError("gan-chorale took longer than 60 s: try again"))
        )
    if failure == "bug":
        monkeypatch.setattr(act, "accompany", lambda *a, **k: (_ for _ in ()).throw(KeyError("<b>x</b>")))
    out = act.generate_for_page(_layout())(
        None, midi, "gan-chorale", 0, False, "", "", [{"number": 1}], *_defaults(), progress=lambda *a, **k: None
    )
    *kept, status = out
    assert len(kept) == 7 and all(v == gr.skip() for v in kept)  # audio, roll, downloads, note, takes list, take, takes
    assert status and "\n" not in status
    assert {"no file": "MIDI file", "time-out": "longer than 60 s", "bug": "your takes are kept"}[failure] in status
    assert "<b>" not in status


def test_a_file_that_is_not_midi_clears_the_preview_and_says_why(tmp_path):
    bad = tmp_path / "photo.mid"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    roll, audio, note = act.preview_for_page(str(bad))
    assert roll["value"] is None and not roll["visible"] and audio["value"] is None and "PNG" in note


def test_the_then_choice_is_reset_at_every_model_change():
    for name in MODELS:
        then, _go = act.model_mode(name)
        assert then["value"] == ""
    card, then, go, *groups = act.on_model_change(MODELS)("vae-folk")
    assert then["visible"] and "Vary" in go["value"] and "vae-folk" in card
    assert [g["visible"] for g in groups] == [name == "vae-folk" for name in MODELS]


@pytest.mark.parametrize("name", MODELS)
def test_how_a_model_learned_always_shows_something(name):
    """Curves for every trained model (diffusion's losses drew an empty figure, and Pillow refused to
    save it), a sentence for the rules."""
    curves, snaps, note = ui_cards.learning_views(name)
    assert len(note) > 20
    if default_registry().card(name).family == "rules":
        assert not curves["visible"] and not snaps["visible"]
    else:
        assert curves["visible"] and curves["value"].endswith(".png") and len(snaps["value"]) >= 2


@pytest.mark.parametrize("name", MODELS)
def test_the_cards_read_as_english(name):
    text = ui_cards.model_card_markdown(name)
    for wrong in (r"\ba AR", r"How a Rules", r"\b1 threads", "x86_64", r"corpus:\w+ \(", r"ways unsure", r"\bB- ", r"skipped\)"):
        assert not re.search(wrong, text), (wrong, text)
    if (default_registry().card(name).metrics or {}).get("held_out"):
        assert ui_cards.HELD_OUT_WORDS in text


def test_keys_and_user_text_are_shown_as_written():
    assert ui_cards.key_words("B- major") == "B♭ major" and ui_cards.key_words("Bb minor") == "B♭ minor"
    assert ui_cards.key_words("F# minor") == "F♯ minor" and ui_cards.key_words("C major") == "C major"
    shown = ui_cards.plain_text("<img src=x onerror=alert(1)> *bold* [link](http://x)")
    assert "<img" not in shown and "\\*bold\\*" in shown and "\\[link\\]" in shown


def test_interpolate_without_a_model_names_the_models_that_can(monkeypatch):
    """Issue 23: `/interpolate` with no model said none was available, though vae-folk was."""
    monkeypatch.setattr(act, "interpolator_choices", lambda: [("vae-folk", "vae-folk")])
    with pytest.raises(gr.Error, match="Choose a model that interpolates: vae-folk"):
        act.interpolate_endpoint("a.mid", "b.mid", "", 5)
    monkeypatch.setattr(act, "interpolator_choices", lambda: [])
    with pytest.raises(gr.Error, match="No model that interpolates is available here"):
        act.interpolate_endpoint("a.mid", "b.mid", None, 5)


def test_the_pages_and_the_apis_requests_take_turns_and_get_a_busy_line(tune_paths, monkeypatch):
    """Through the actions Gradio calls: a session over its limit gets one readable line at once,
    another session is served; called directly (no request), an action takes no turn."""
    scheduler = FairScheduler(FairnessConfig(slots=2, per_session=1))
    monkeypatch.setattr(fairness, "_default", scheduler)
    tune = str(tune_paths["four_four.mid"])

    def served(session: str) -> SimpleNamespace:
        return SimpleNamespace(session_hash=session, client=SimpleNamespace(host="127.0.0.1"))

    with scheduler.turn(Client("127.0.0.1", "busy-one")):
        with pytest.raises(gr.Error) as info:
            act.accompany_endpoint(tune, "rules", 0, request=served("busy-one"), progress=lambda *a, **k: None)
        assert info.value.message.startswith("busy: you have 1 request waiting or running, the most one session may have")
        midi = act.accompany_endpoint(tune, "rules", 0, request=served("another"), progress=lambda *a, **k: None)[2]
        assert midi and scheduler.served[-1] == Client("127.0.0.1", "another")
        out = act.generate_for_page([("rules", 2)])(served("busy-one"), tune, "rules", 0, False, "", "", [], 2, "oompah")
        assert out[-1].startswith("busy: you have 1 request")  # the page's status line; the takes on show stay
    assert act.client_of(None) is None
    count = len(scheduler.served)
    assert act.accompany_endpoint(tune, "rules", 0, progress=lambda *a, **k: None)[2]
    assert len(scheduler.served) == count


def test_the_live_roll_shows_with_a_take_and_its_edited_melody_becomes_the_melody(tune_paths, tmp_path):
    """The live roll, its 'Use the edited melody' button and the PNG's panel show with a take and hide
    without one; the roll's JSON comes back as a MIDI melody; what cannot be used is one line."""
    from studio.core.midi import read_midi

    out = act.generate_for_page(_layout())(
        None, str(tune_paths["four_four.mid"]), "rules", 0, False, "", "", [], *_defaults(), progress=lambda *a, **k: None
    )
    *_shown, take, _takes, _status = out
    roll, picture, button = act.live_roll_for_page(take)
    assert roll["visible"] and picture["visible"] and button["visible"]
    assert [t["name"] for t in roll["value"]["tracks"]] == take["tracks"]
    assert not any(u["visible"] for u in act.live_roll_for_page(None))
    assert not any(u["visible"] for u in act.live_roll_for_page({**take, "midi": str(tmp_path / "gone.mid")}))

    melody = roll["value"]["tracks"][0]["notes"]
    path = act.use_edited_melody(json.dumps({"notes": [*melody, [0.0, 0.25, 96, 90]]}), take)
    assert any(n.pitch == 96 and n.start == 0 for n in read_midi(path).score.tracks[0].notes)
    with pytest.raises(gr.Error, match="Generate a take first"):
        act.use_edited_melody('{"notes": []}', None)
    kept, status = act.use_edited_melody_for_page("<b>not json</b>", take)
    assert kept == gr.skip() and "not valid JSON" in status and "<b>" not in status


def test_the_live_roll_follows_the_take_on_show_and_the_player_is_a_real_audio_element():
    from studio.ui.page import build_app

    app = build_app()
    ids = {fn.name: [getattr(b, "elem_id", None) for b in fn.outputs] for fn in app.fns.values()}
    assert ids["live_roll_for_page"] == ["live-roll", "roll-picture", "use-edited-melody"]
    assert ids["use_edited_melody"] == ["midi-input", "status"]
    audio = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "audio")
    assert audio.waveform_options.show_recording_waveform is False  # the roll's playhead follows the <audio> element

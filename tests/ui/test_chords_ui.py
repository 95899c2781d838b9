"""The page's chords without a browser: the box, its picker and its copy button are built once and
shown for models that follow chords; typed chords reach the model from the page and the API; chords
that cannot be used are one readable line and the takes on show stay."""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

from studio.core.errors import ModelError
from studio.serving.registry import default_registry
from studio.serving.takes import take_label
from studio.ui import actions as act
from studio.ui.page import CHORDS_PLACEHOLDER

MODELS = [c.name for c in default_registry().cards() if not c.disabled]
QUIET = {"progress": lambda *a, **k: None}


def _page_generate(midi: str, model: str, chords: str, takes=None):
    layout = [(name, len(default_registry().card(name).params)) for name in MODELS]
    values = [p.default for name in MODELS for p in default_registry().card(name).params]
    return act.generate_for_page(layout)(None, midi, model, 0, False, chords, "", takes or [], *values, **QUIET)


def test_the_chord_controls_are_built_once_and_wired():
    from studio.ui.page import build_app

    app = build_app()
    by_id = {getattr(b, "elem_id", None): b for b in app.blocks.values()}
    box, picker, copy = by_id["chords"], by_id["progressions"], by_id["copy-chords"]
    assert isinstance(box, gr.Textbox) and box.interactive and box.placeholder == CHORDS_PLACEHOLDER
    assert "C G/B Am F: a chord a bar" in CHORDS_PLACEHOLDER and "C G | Am F: two a bar" in CHORDS_PLACEHOLDER
    assert isinstance(picker, gr.Dropdown) and picker.interactive and isinstance(copy, gr.Button)
    fns = {fn.name: fn for fn in app.fns.values()}
    ids = lambda blocks: [getattr(b, "elem_id", None) for b in blocks]  # noqa: E731
    assert ids(fns["generate_take"].inputs)[2:5] == ["seed", "keep-tracks", "chords"]
    assert ids(fns["chord_controls_visible"].outputs) == ["chord-controls"]
    assert ids(fns["chords_from_picker"].outputs) == ["chords"] and ids(fns["chords_of_take"].outputs) == ["chords", "status"]
    assert ids(fns["chords_from_picker"].inputs) == ["progressions", "midi-input"]
    assert "progressions_for_page" not in fns  # the picker's choices never change (see progression_picker)
    assert ids(fns["accompany_endpoint"].inputs) == ["midi-input", "model", "seed", "chords"]
    assert act.chord_controls_visible("rules")["visible"] and not act.chord_controls_visible("gan-chorale")["visible"]


def test_the_picker_fills_the_box_with_a_progression_in_the_melodys_key(tune_paths, tmp_path):
    label, choices = act.progression_picker()
    assert "I V vi IV" in choices and "i iv V i" in choices and "key" in label
    g_major = str(tune_paths["four_four.mid"])
    assert act.chords_from_picker("I V vi IV", g_major) == "G D Em C"
    assert act.chords_from_picker("i VI III VII", g_major) == "Em C G D"  # a minor progression: the relative minor's
    assert act.chords_from_picker("I V vi IV", None) == "C G Am F"  # no melody yet: C major
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    assert act.chords_from_picker("I V vi IV", str(bad)) == "C G Am F"  # the preview says why the file is bad
    assert act.chords_from_picker(None, g_major) == gr.skip()


@pytest.fixture
def silent(monkeypatch):
    """Takes made without audio or pictures (the chords are in the MIDI): the requests the page made."""
    asked = []
    real = act.accompany

    def quick(request, **kwargs):
        asked.append(request)
        return real(dataclasses.replace(request, want_wav=False, want_png=False, want_listen=False), **kwargs)

    monkeypatch.setattr(act, "accompany", quick)
    return asked


def test_typed_chords_make_the_take_and_its_chords_come_back_to_edit(tune_paths, silent):
    *_shown, take, _takes, status = _page_generate(str(tune_paths["four_four.mid"]), "rules", "G | C D")
    assert status == "" and take["given_chords"] == "G | C D" and "chords G | C D" in take_label(take)
    assert [c[2] for c in take["chords"] if c[3]][:3] == ["G", "C", "D"]
    text, status = act.chords_of_take_for_page(take)
    assert status == "" and text.startswith("G") and text.count("|") == 15
    kept, status = act.chords_of_take_for_page(None)
    assert kept == gr.skip() and status == "Generate a take first: its chords then come into the box to edit"


def test_bad_chords_are_one_readable_line_and_the_takes_on_show_stay(tune_paths):
    out = _page_generate(str(tune_paths["four_four.mid"]), "rules", "G <b>H7</b>", takes=[{"number": 1}])
    assert all(o == gr.skip() for o in out[:-1])
    assert "is not a chord symbol" in out[-1] and "<b>" not in out[-1]  # the user's text, escaped


def test_the_box_is_not_read_for_a_model_that_does_not_follow_chords(tune_paths, monkeypatch):
    """Chords typed for the rules, then another model chosen (the box hides): it is asked without them."""
    asked = []

    def refuse(request, **kwargs):
        asked.append(request)
        raise ModelError("stopped here: the request is what the test looks at")

    monkeypatch.setattr(act, "accompany", refuse)
    for model, chords in (("gan-chorale", None), ("rules", "G C")):
        _page_generate(str(tune_paths["four_four.mid"]), model, "G C")
        assert asked[-1].model == model and asked[-1].chords == chords


def test_the_api_takes_chords_and_refuses_what_it_cannot_use(tune_paths, silent):
    asked = silent

    midi = str(tune_paths["four_four.mid"])
    act.generate_endpoint(midi, "rules", 0, '{"chords": "G D | Em C", "pattern": "block"}', **QUIET)
    assert asked[-1].chords == "G D | Em C" and dict(asked[-1].params) == {"pattern": "block"}
    act.accompany_endpoint(midi, "rules", 0, "G C", **QUIET)
    assert asked[-1].chords == "G C"
    act.accompany_endpoint(midi, "rules", 0, **QUIET)  # the call of three inputs still works, without chords
    assert asked[-1].chords is None
    with pytest.raises(gr.Error, match='"chords" must be text'):
        act.generate_endpoint(midi, "rules", 0, '{"chords": 7}', **QUIET)
    followers = ", ".join(default_registry().chord_followers())
    assert "rules" in followers and "gan-chorale" not in followers
    with pytest.raises(gr.Error, match=f"gan-chorale does not take chords: the models that follow them are {followers}"):
        act.generate_endpoint(midi, "gan-chorale", 0, '{"chords": "G C"}', **QUIET)

"""Regenerating bars of a take (`studio.serving.regeneration`): for every accompanist, bars 3-4 of a
16-bar take change and nothing else does, note for note, checked on the MIDI files written; a subset
of voices is respected; the same seed gives the same take; bad bars and voices are one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.chords import chord_tone_share, parse_progression, progression_spans
from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.core.roll import notes_to_roll
from studio.core.selection import SelectionError
from studio.serving.regeneration import RegenerateRequest, regenerate
from studio.serving.registry import default_registry, family_info
from studio.serving.service import AccompanyRequest, accompany, read_melody

REPO = Path(__file__).resolve().parents[2]
TUNE = REPO / "assets" / "melodies" / "bobby_shaftoe.mid"  # 16 bars of 2/4, no pickup
ACCOMPANISTS = ["rules", "gan-chorale", "gan-quartet", "gan-renaissance", "arcnn-chorale", "diffusion-chorale"]
VOICE_MODELS = [m for m in ACCOMPANISTS if m != "rules"]
QUIET = {"want_wav": False, "want_png": False, "want_listen": False}


@pytest.fixture(scope="module")
def takes(tmp_path_factory):
    """A 16-bar take of each accompanist (seed 0), made once: its MIDI file and its bar lines in ticks."""
    made = {}

    def take(model: str) -> tuple[Path, list[int]]:
        if model not in made:
            result = accompany(AccompanyRequest(midi=TUNE, model=model, out_dir=tmp_path_factory.mktemp(model), **QUIET))
            assert len(result.bar_ticks) == 16
            made[model] = result.midi_path, result.bar_ticks
        return made[model]

    return take


def _notes(path: Path) -> dict[str, set[tuple[int, int, int, int]]]:
    return {t.name: {(n.start, n.end, n.pitch, n.velocity) for n in t.notes} for t in read_midi(path).score.tracks}


def _split(notes: set, start: int, end: int) -> tuple[set, set]:
    """(the notes that start inside [start, end), the others)."""
    inside = {n for n in notes if start <= n[0] < end}
    return inside, notes - inside


@pytest.mark.parametrize("model", ACCOMPANISTS)
def test_bars_3_4_change_and_nothing_else_does(model, takes, tmp_path):
    take, bars = takes(model)
    start, end = bars[2], bars[4]  # bar 3 starts at the third bar line; bar 5 at the fifth
    request = RegenerateRequest(midi=take, model=model, bars="3-4", seed=0, out_dir=tmp_path / "new", **QUIET)
    result = regenerate(request)
    old, new = _notes(take), _notes(result.midi_path)
    assert list(old) == list(new)  # the same tracks, in the same order
    changed = False
    for name in old:
        old_in, old_out = _split(old[name], start, end)
        new_in, new_out = _split(new[name], start, end)
        assert new_out == old_out, (model, name)  # outside bars 3-4: note for note (pitch, start, end, velocity)
        assert all(n[1] <= end for n in new_in - old_in), (model, name)  # new notes are cut at the selection's end
        changed |= {(n[0], n[2]) for n in new_in} != {(n[0], n[2]) for n in old_in}  # a note starts anew (a cut alone is not a change)
    assert changed, model
    assert result.bar_ticks == bars and any("bars 3-4" in n for n in result.notes)
    again = regenerate(RegenerateRequest(midi=take, model=model, bars="3-4", seed=0, out_dir=tmp_path / "again", **QUIET))
    assert _notes(again.midi_path) == new  # same seed, same take: same result


@pytest.mark.parametrize("model", VOICE_MODELS)
def test_only_the_voices_asked_for_change(model, takes, tmp_path):
    take, bars = takes(model)
    names = [t["name"] for t in default_registry().card(model).tracks]
    result = regenerate(RegenerateRequest(midi=take, model=model, bars=[3, 4], voices=names[-1], seed=1, out_dir=tmp_path / "new", **QUIET))
    old, new = _notes(take), _notes(result.midi_path)
    assert all(new[name] == old[name] for name in old if name != names[-1])
    inside, outside = _split(new[names[-1]], bars[2], bars[4])
    old_inside, old_outside = _split(old[names[-1]], bars[2], bars[4])
    assert outside == old_outside and {(n[0], n[2]) for n in inside} != {(n[0], n[2]) for n in old_inside}


def test_another_seed_another_take(takes, tmp_path):
    take, _bars = takes("gan-chorale")
    made = [
        _notes(regenerate(RegenerateRequest(take, "gan-chorale", "3-4", seed=s, out_dir=tmp_path / str(s), **QUIET)).midi_path)
        for s in (1, 2)
    ]
    assert made[0] != made[1]


def test_a_pickup_is_bar_0(tmp_path):
    tune = REPO / "assets" / "melodies" / "lay_the_bent_to_the_bonny_broom.mid"  # 3/4 with a pickup the studio finds
    taken = accompany(AccompanyRequest(midi=tune, model="rules", out_dir=tmp_path, **QUIET))
    result = regenerate(RegenerateRequest(taken.midi_path, "rules", "0-1", seed=3, out_dir=tmp_path / "new", **QUIET))
    assert result.bar_ticks == taken.bar_ticks
    old, new = _notes(taken.midi_path), _notes(result.midi_path)
    for name in old:
        assert _split(new[name], 0, taken.bar_ticks[2])[1] == _split(old[name], 0, taken.bar_ticks[2])[1]


@pytest.mark.parametrize(
    ("model", "bars", "voices", "words"),
    [
        ("gan-chorale", "5-3", None, "bars 5-3 run backwards"),
        ("gan-chorale", "3-17", None, "the take has bars 1 to 16: bars 3-17 are not all in it"),
        ("gan-chorale", "0-1", None, "the take has bars 1 to 16"),
        ("gan-chorale", "three", None, "bars must be a range such as 3-4"),
        ("gan-chorale", "3-4", "Soprano", "the model has no voice 'Soprano': its voices are Alto, Tenor, Bass"),
        ("rules", "3-4", "Bass", "regenerate them together"),
        ("transformer-folk", "3-4", None, "transformer-folk cannot regenerate bars of a take: choose one of arcnn-chorale,"),
    ],
)
def test_bad_bars_and_voices_are_one_line(model, bars, voices, words, takes, tmp_path):
    take, _bars = takes("gan-chorale" if model != "rules" else "rules")
    with pytest.raises(InputError) as caught:
        regenerate(RegenerateRequest(take, model, bars, voices, out_dir=tmp_path / "new", **QUIET))
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())  # nothing written


def test_a_take_of_another_model_is_refused(takes, tmp_path):
    take, _bars = takes("rules")
    with pytest.raises(InputError, match="this take has no track 'Alto': gan-chorale regenerates takes with its own tracks"):
        regenerate(RegenerateRequest(take, "gan-chorale", "3-4", out_dir=tmp_path / "new", **QUIET))


def test_every_accompanist_declares_what_it_regenerates():
    for card in default_registry().cards():
        info = family_info(card.family)
        assert bool(info.regenerates) == (info.writes == "accompaniment"), card.name
    assert issubclass(SelectionError, InputError)


def test_a_regenerated_take_keeps_the_chords_given_and_hears_its_own(tmp_path):
    """A take made with chords, regenerated: its MIDI still names the chords the user gave (the same
    ticks), and the chords heard are heard again in the new take."""
    from studio.core.chord_marks import marks_from_markers

    take = accompany(
        AccompanyRequest(
            midi=REPO / "assets" / "melodies" / "chester.mid", model="rules", chords="G D | Em C", out_dir=tmp_path, want_wav=False
        )
    )
    new = regenerate(RegenerateRequest(midi=take.midi_path, model="rules", bars="3-4", seed=2, out_dir=tmp_path / "new", want_wav=False))
    before, after = (read_midi(p).score for p in (take.midi_path, new.midi_path))
    marks = [marks_from_markers(s.markers, s.end_tick) for s in (before, after)]
    assert [m for m in marks[1] if m.given] == [m for m in marks[0] if m.given] != []
    assert any(not m.given for m in marks[1])
    assert new.given_chords and new.given_chords.startswith("G D | Em C")
    # ... and the rules keep to them in the bars they wrote again: every strong-beat note in the chord.
    mi = read_melody(AccompanyRequest(midi=new.midi_path, melody_track=0))
    tracks = [notes_to_roll(t.notes, mi.grid, t.name, t.program) for t in after.tracks[1:]]
    spans = progression_spans(parse_progression("G D | Em C"), mi.grid)
    assert chord_tone_share(tracks, mi.grid, spans)[0] == 1.0
    changed = [t for t in range(len(after.tracks)) if after.tracks[t].notes != before.tracks[t].notes]
    assert changed  # it did write them again

"""The shipped GAN checkpoints (gan-chorale, gan-renaissance, gan-quartet), through the service as a
user reaches them: they load, keep the melody note for note, cover its bars with at least two
voices, stay in its key and consonant with it on tunes of every meter they never saw, depend on the
seed, and follow the melody (a transposed melody gets a transposed accompaniment)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from roll_checks import melody_end_step, starts_a_note_after

from models.gan import TUNABLE
from studio.core.config import REPO_ROOT
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import bar_coverage, consonance, in_key_rate, melody_key, used_pitch_classes
from studio.core.midi import read_midi
from studio.core.roll import make_grid, notes_to_roll
from studio.core.score import Note, Score, Track
from studio.serving.registry import CHECKPOINTS, default_registry
from studio.serving.service import AccompanyRequest, accompany
from studio.training.tunes import tune_roll

GANS = ["gan-chorale", "gan-renaissance", "gan-quartet"]
# The renaissance voices rest for whole bars, as their genre does (and more): on folk tunes
# they do not yet keep two voices in 95% of the bars, and on some a voice rests throughout (the
# 2/4 tune below, seed 0: the bass). Measured in the issue notes; open work.
KEEP_PLAYING = {"gan-chorale", "gan-quartet"}
UNSEEN = ["four_four.mid", "three_four_pickup.mid", "six_eight_minor.mid", "two_four.mid", "cut_time.mid"]


@pytest.mark.parametrize("name", GANS)
def test_checkpoint_and_card(name):
    weights, card_path = CHECKPOINTS / f"{name}.safetensors", CHECKPOINTS / f"{name}.json"
    assert weights.is_file() and weights.stat().st_size <= 20 * 2**20
    card = json.loads(card_path.read_text())
    assert card["family"] == "gan" and len(card["tracks"]) == 3
    training = card["training"]
    assert training["steps"] > 0 and training["held_out_pieces"] > 0 and training["hardware"]
    held = card["metrics"]["held_out"]
    assert held["pieces"] == training["held_out_pieces"]
    assert set(held["comparison"]) >= {
        "in_key_rate",
        "consonance",
        "empty_bar_rate",
        "used_pitch_classes",
        "qualified_note_rate",
        "polyphony",
    }
    assert (CHECKPOINTS / "training" / f"{name}.json").is_file()


@pytest.mark.parametrize("name", GANS)
def test_trained_on_its_train_list_and_chosen_on_its_validation_list(name):
    """Held out means held out (issue 26): a shipped GAN trained on its pinned split's train list
    alone, and the validation list (never trained on) chose both its checkpoint and its sampling
    defaults, so no decision rests on the held-out pieces its card reports."""
    card = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    training = card["training"]
    split = json.loads((REPO_ROOT / training["split_file"]).read_text())
    assert training["split_lists"] == {
        "train": len(split["train"]),
        "validation": len(split["validation"]),
        "held_out": len(split["held_out"]),
    }
    assert training["train_pieces"] == len(split["train"]) and training["validation_pieces"] == len(split["validation"])
    assert "validation pieces" in training["selected"]["how"]
    tuned = training["tuned_defaults"]
    defaults = {p["name"]: p["default"] for p in card["params"]}
    assert {k: tuned[k]["chosen"] for k in TUNABLE} == {k: defaults[k] for k in TUNABLE}
    for k in TUNABLE:  # the chosen value is the lowest validation score, among every value training tries
        assert set(tuned[k]["scores"]) == {str(v) for v in TUNABLE[k]}
        assert tuned[k]["scores"][str(tuned[k]["chosen"])] == min(tuned[k]["scores"].values())


@pytest.mark.parametrize("name", GANS)
def test_unseen_tunes_through_the_service(name, tune_paths, tmp_path):
    in_key, cons = [], []
    for tune in UNSEEN:
        source = tune_paths[tune]
        result = accompany(AccompanyRequest(midi=source, model=name, seed=0, out_dir=tmp_path / tune, want_wav=False, want_png=False))
        original = read_midi(source).score
        melody = extract_melody(original).track
        out = read_midi(result.midi_path).score
        assert [(n.start, n.end, n.pitch) for n in out.tracks[0].notes] == [(n.start, n.end, n.pitch) for n in melody.notes]
        voices = len(out.tracks) - 1  # reading a MIDI file leaves out a track with no notes
        last = max(n.end for n in melody.notes)  # nothing starts after the tune's last note ends
        assert not [n for t in out.tracks[1:] for n in t.notes if n.start >= last], f"{name} on {tune}: notes after the melody"
        assert voices == 3 if name in KEEP_PLAYING else voices >= 2, f"{name} on {tune}: {voices} voices play"
        grid = make_grid(original, estimate_pickup(melody.notes, original))
        mel = notes_to_roll(melody.notes, grid, "Melody", 0)
        acc = [notes_to_roll(t.notes, grid, t.name, t.program) for t in out.tracks[1:]]
        covering = sum(bar_coverage(t, grid, mel) >= 0.95 for t in acc)
        if name in KEEP_PLAYING:
            assert covering >= 2, f"{name} on {tune}: only {covering} voices cover 95% of the bars"
        in_key.append(in_key_rate(acc, melody_key(mel)))
        cons.append(consonance(mel, acc))
    assert np.mean(in_key) >= 0.85, (name, in_key)
    assert np.mean(cons) >= 0.70, (name, cons)


def test_no_stray_note_after_the_tune():
    """The Water of Tyne ends two beats before its last bar does; the quartet GAN, seed 3, once
    started a violin note in that silence, after the tune had ended."""
    source = Path(__file__).resolve().parents[2] / "assets" / "melodies" / "the_water_of_tyne.mid"
    score = read_midi(source).score
    melody = extract_melody(score).track
    grid = make_grid(score, estimate_pickup(melody.notes, score))
    mel = notes_to_roll(melody.notes, grid, "Melody", 0)
    end = melody_end_step(mel)
    assert end < grid.n_steps  # the silence is there
    for seed in range(4):
        for track in default_registry().generate("gan-quartet", mel, grid, {}, seed):
            assert not starts_a_note_after(track, end), f"seed {seed}: {track.name} starts a note after the tune"


def test_the_quartet_s_steadiness_uses_fewer_pitch_classes_in_the_same_rhythm(tune_paths):
    """gan-quartet's default steadiness (tuned on its validation pieces) lowers the pitch classes a
    voice uses per bar (it used more than the real voices when every note was drawn afresh) and
    leaves the rhythm as it was: the same onsets and rests, seed for seed."""
    registry = default_registry()
    assert registry.card("gan-quartet").resolve_params({})["steadiness"] > 0
    plain, steady = [], []
    for tune in UNSEEN:
        score = read_midi(tune_paths[tune]).score
        melody, grid = tune_roll(Score(score.ticks_per_beat, [extract_melody(score).track], score.tempos, score.time_signatures))
        for seed in range(3):
            a = registry.generate("gan-quartet", melody, grid, {"steadiness": 0.0}, seed)
            b = registry.generate("gan-quartet", melody, grid, {}, seed)
            for x, y in zip(a, b, strict=True):
                assert np.array_equal(x.onset.any(1), y.onset.any(1)) and np.array_equal(x.velocity.any(1), y.velocity.any(1))
            plain.append(np.mean([used_pitch_classes(t, grid) for t in a]))
            steady.append(np.mean([used_pitch_classes(t, grid) for t in b]))
    assert np.mean(steady) < np.mean(plain) - 0.05, (np.mean(steady), np.mean(plain))


@pytest.mark.parametrize("name", GANS)
def test_seed_and_melody_decide_the_music(name, tune_paths):
    registry = default_registry()
    score = read_midi(tune_paths["four_four.mid"]).score
    melody, grid = tune_roll(Score(score.ticks_per_beat, [extract_melody(score).track], score.tempos, score.time_signatures))
    first = registry.generate(name, melody, grid, {}, 7)
    again = registry.generate(name, melody, grid, {}, 7)
    other = registry.generate(name, melody, grid, {}, 8)
    assert all(np.array_equal(a.velocity, b.velocity) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a.velocity, b.velocity) for a, b in zip(first, other, strict=True))

    # The model listens: a melody a tritone higher (the farthest key) gets an accompaniment in the
    # new key, where the old accompaniment would be out of it.
    notes = extract_melody(score).track.notes
    up = Score(
        score.ticks_per_beat,
        [Track("Melody", 0, notes=[Note(n.start, n.end, n.pitch + 6, n.velocity) for n in notes])],
        score.tempos,
        score.time_signatures,
    )
    melody_up, grid_up = tune_roll(up)
    shifted = registry.generate(name, melody_up, grid_up, {}, 7)
    key_up = melody_key(melody_up)
    assert in_key_rate(shifted, key_up) >= 0.7
    assert in_key_rate(shifted, key_up) > in_key_rate(first, key_up) + 0.3


def test_history_has_losses_and_samples():
    for name in GANS:
        history = json.loads((Path(CHECKPOINTS) / "training" / f"{name}.json").read_text())
        assert len(history["losses"]) > 100 and {"generator", "critic", "wasserstein"} <= set(history["losses"][-1])
        steps = [s["step"] for s in history["samples"]]
        assert steps[0] == 0 and len(steps) >= 4 and steps == sorted(steps)


def test_gan_renaissance_strikes_held_pitches_again_as_seldom_as_palestrina(tmp_path):
    """Its card's `restrike_keep` (bench/restrikes.py: it struck held pitches again about twice as often as
    the real voices): the same pitch at every step as the card without it, fewer note starts, none new;
    batched or alone, the same music."""
    from roll_checks import registry_without, starts_dropped, wandering_melody

    card = json.loads((CHECKPOINTS / "gan-renaissance.json").read_text())
    assert len(card["config"]["restrike_keep"]) == 4 and max(card["config"]["restrike_keep"]) < 1
    melody, grid = wandering_melody(32, 480)
    thinned = default_registry().generate("gan-renaissance", melody, grid, {}, 3)
    alone = registry_without("gan-renaissance", "restrike_keep", tmp_path).generate("gan-renaissance", melody, grid, {}, 3)
    assert starts_dropped(thinned, alone) > 0
    params = default_registry().card("gan-renaissance").resolve_params({})
    batched = default_registry().get("gan-renaissance").generate_batch([(melody, grid, params, 3), (melody, grid, params, 4)])[0]
    assert all(np.array_equal(x.onset, y.onset) and np.array_equal(x.velocity, y.velocity) for x, y in zip(batched, thinned, strict=True))


def test_gan_chorale_s_guide_moves_its_voices_as_bachs_move(tmp_path, tune_paths):
    """Its card's `motion` (bench/motion.py: the chorale voices' own move sizes, weighed on validation):
    on unseen tunes its voices move by step (at most a whole tone) more often than the card without it,
    with the same note starts (the guide changes pitches, not the rhythm)."""
    from roll_checks import registry_without

    from studio.core.conditioning import track_to_tokens

    card = json.loads((CHECKPOINTS / "gan-chorale.json").read_text())
    assert len(card["config"]["motion"]) == 14 and min(card["config"]["motion"]) == 0.0
    without = registry_without("gan-chorale", "motion", tmp_path)
    steps = {"card": [0, 0], "without": [0, 0]}  # moves by step, all moves
    for name in ("four_four.mid", "three_four_pickup.mid", "six_eight_minor.mid"):
        melody, grid = tune_roll(read_midi(tune_paths[name]).score)
        for label, registry in (("card", default_registry()), ("without", without)):
            voices = [track_to_tokens(t) for t in registry.generate("gan-chorale", melody, grid, {}, 0)]
            if label == "card":
                starts = [onsets for _, onsets in voices]
            else:
                assert all(np.array_equal(a, b) for a, b in zip(starts, (onsets for _, onsets in voices), strict=True)), name
            for tokens, onsets in voices:
                pitches = tokens[onsets & (tokens > 0)]
                moves = np.abs(np.diff(pitches))
                steps[label][0] += int(((moves > 0) & (moves <= 2)).sum())
                steps[label][1] += len(moves)
    assert steps["card"][0] / steps["card"][1] > steps["without"][0] / steps["without"][1] + 0.05, steps


def test_a_gan_card_with_passing_notes_moves_its_voices_by_step(tmp_path):
    """The GAN family reads `config.passing` and `config.snap` (the layers of `models.base.figured_tokens`):
    with them the voices move by step more often than the same card without them, and no crossing or
    parallel fifth or octave is added."""
    import shutil

    from roll_checks import wandering_melody

    from studio.core.voice_leading import order_voices, piece_counts, voice_notes
    from studio.serving.registry import ModelRegistry

    card = json.loads((CHECKPOINTS / "gan-chorale.json").read_text())
    registries = {}
    for name, values in (("with", {"passing": [1.0, 1.0, 1.0, 1.0], "snap": 1.0}), ("without", {"passing": [], "snap": 0.0})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "gan-chorale.json").write_text(json.dumps({**card, "config": {**card["config"], **values}}))
        shutil.copy(CHECKPOINTS / "gan-chorale.safetensors", tmp_path / name)
        registries[name] = ModelRegistry(tmp_path / name)
    melody, grid = wandering_melody(32, 480)
    steps, faults = {}, {}
    for name, registry in registries.items():
        voices = registry.generate("gan-chorale", melody, grid, {}, 0)
        moves = np.concatenate([np.abs(np.diff([p for _s, _e, p in voice_notes(t)])) for t in voices])
        steps[name] = float(((moves >= 1) & (moves <= 2)).mean())
        counts = piece_counts(order_voices(melody, voices))
        faults[name] = counts["crossed_chords"] + counts["parallel_fifths"] + counts["parallel_octaves"]
    assert steps["with"] > steps["without"]
    assert faults["with"] <= faults["without"]

"""The AR-CNN with chords (models/arcnn.py, `ARCNNConfig.chords`): the chord channels in its input, a
small untrained network with and without chords, an older card without chord channels loading and
running as before, the chord dropout of training, and the shipped card following given chords."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.arcnn import ARCNN, ARCNNAccompanist, ARCNNConfig, ARCNNTraining, chord_dropout, load
from models.base import CHORDS_PARAM, card_follows_chords
from models.weights import exported
from studio.core.chord_channels import N_CHORD_FEATURES, chord_channels
from studio.core.chords import ChordSpan, ChordSymbol, analyse_chords, chord_tone_share, progression_spans
from studio.core.conditioning import N_CONTEXT_FEATURES, meter_features, track_to_tokens
from studio.core.metrics import melody_key
from studio.core.voices import VoicePiece, VoiceWindows

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
SMALL = {"hidden": 16, "dilations": (1, 2)}


@pytest.fixture(scope="module")
def tune(tune_paths):
    from studio.core.melody import extract_melody
    from studio.core.midi import read_midi
    from studio.core.score import Score
    from studio.training.tunes import tune_roll

    score = read_midi(tune_paths["four_four.mid"]).score
    return tune_roll(Score(score.ticks_per_beat, [extract_melody(score).track], score.tempos, score.time_signatures))


def _small(chords: bool) -> ARCNNAccompanist:
    torch.manual_seed(0)
    config = ARCNNConfig(chords=chords, **SMALL)
    return ARCNNAccompanist(config, ARCNN(config))


def _spans(grid, symbols: list[ChordSymbol]) -> list[ChordSpan]:
    return progression_spans([[s] for s in symbols], grid)


def test_the_chords_reach_the_network_input(tune):
    melody, grid = tune
    model = _small(chords=True)
    tokens, _ = track_to_tokens(melody)
    spans = _spans(grid, [ChordSymbol(0), ChordSymbol(7, "", 11), ChordSymbol(9, "m")])
    context = model.context(grid, tokens, spans)
    assert context.shape == (grid.n_steps, N_CONTEXT_FEATURES + N_CHORD_FEATURES)
    np.testing.assert_array_equal(context[:, N_CONTEXT_FEATURES:], chord_channels(spans, grid.n_steps))
    assert not model.context(grid, tokens, None)[:, N_CONTEXT_FEATURES:].any()  # none given: the flag is off everywhere
    voices = torch.zeros((1, 4, grid.n_steps), dtype=torch.long)
    features = model.network.features(voices, torch.ones_like(voices, dtype=torch.bool), torch.from_numpy(context[None]))
    assert features.shape == (1, 4 * 98 + N_CONTEXT_FEATURES + N_CHORD_FEATURES, grid.n_steps)
    np.testing.assert_array_equal(features[0, -N_CHORD_FEATURES:].T.numpy(), context[:, N_CONTEXT_FEATURES:])


def test_a_small_chord_network_writes_with_and_without_chords(tune):
    melody, grid = tune
    model = _small(chords=True)
    spans = _spans(grid, [ChordSymbol(2, "m"), ChordSymbol(7)])
    for guide in (0.0, 1.0):
        params = {"iterations": 6, "guide": guide}
        without = model.generate(melody, grid, params, 0)
        with_chords = model.generate(melody, grid, {**params, CHORDS_PARAM: spans}, 0)
        assert [t.name for t in without] == [t.name for t in with_chords] == ["Alto", "Tenor", "Bass"]
        assert all(t.n_steps == grid.n_steps for t in with_chords)
        assert model.generate(melody, grid, {**params, CHORDS_PARAM: []}, 0)[0].velocity.tolist() == without[0].velocity.tolist()
        assert any(not np.array_equal(a.velocity, b.velocity) for a, b in zip(without, with_chords, strict=True))  # the chords count


def test_an_older_card_without_chord_channels_loads_and_runs_as_before(tune, tmp_path):
    """A card written before chords (its config has no `chords`) rebuilds the same 24-channel context,
    and ignores chords given to it; the studio does not offer it chords."""
    melody, grid = tune
    config = ARCNNConfig(**SMALL)
    torch.manual_seed(0)
    network = ARCNN(config)
    save_file(exported(network), str(tmp_path / "old.safetensors"))
    old_config = {k: v for k, v in config.to_json().items() if k not in ("chords", "chord_dropout", "chord_partial")}
    card = {"name": "arcnn-old", "family": "arcnn", "config": old_config}
    model = load(json.loads(json.dumps(card)), tmp_path / "old.safetensors")
    assert model.config.chords is False and model.network.inp.in_channels == 4 * 98 + N_CONTEXT_FEATURES
    plain = model.generate(melody, grid, {"iterations": 6}, 0)
    given = model.generate(melody, grid, {"iterations": 6, CHORDS_PARAM: _spans(grid, [ChordSymbol(2, "m")])}, 0)
    assert all(np.array_equal(a.velocity, b.velocity) for a, b in zip(plain, given, strict=True))
    assert not card_follows_chords(card)
    assert card_follows_chords({**card, "config": {**old_config, "chords": True}})
    assert not card_follows_chords({"family": "gan", "config": {"chords": True}})  # a family that does not declare chords


def test_chord_dropout_leaves_some_windows_without_chords_and_some_in_part():
    rng = np.random.default_rng(0)
    chords = np.ones((2000, 64, N_CHORD_FEATURES), np.float32)
    out = chord_dropout(chords, 0.4, 0.2, rng)
    given = out[:, :, -1].mean(1)  # share of each window's steps with a chord
    assert 0.35 < (given == 0).mean() < 0.5  # none: the dropped windows, and a few partial ones of nothing
    assert 0.12 < ((given > 0) & (given < 1)).mean() < 0.22  # in part
    assert 0.35 < (given == 1).mean() < 0.45  # all
    assert chords.all()  # the windows' own channels are untouched


def test_a_training_step_with_chords():
    from studio.core.roll import Bar, Grid

    grid = Grid(480, 64, [Bar(16 * i, 16, 4, 4) for i in range(4)])
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 85, (4, 64))
    piece = VoicePiece("p", tokens, np.ones((4, 64), bool), meter_features(grid), np.array([0, 16, 32, 48]))
    piece.chords = chord_channels(_spans(grid, [ChordSymbol(0)]), 64)
    config = ARCNNConfig(chords=True, window=32, batch_size=4, **SMALL)
    recipe = ARCNNTraining(config, VoiceWindows([piece], 32, (-2, 2)))
    assert np.isfinite(recipe.step(0, rng)["nll"])


@pytest.fixture(scope="module")
def shipped_card() -> dict:
    return json.loads((CHECKPOINTS / "arcnn-chorale.json").read_text())


def test_the_shipped_card_follows_chords(shipped_card):
    assert shipped_card["config"].get("chords") is True and card_follows_chords(shipped_card)


def _sample_melody(name: str):
    from studio.core.melody import extract_melody
    from studio.core.midi import read_midi
    from studio.core.score import Score
    from studio.training.tunes import tune_roll

    score = read_midi(CHECKPOINTS.parents[1] / "assets" / "melodies" / name).score
    return tune_roll(Score(score.ticks_per_beat, [extract_melody(score).track], score.tempos, score.time_signatures))


@pytest.mark.parametrize("sample", ["yankee_doodle.mid", "god_save_the_king.mid"])
def test_given_chords_the_shipped_model_sounds_them_on_strong_beats(sample, shipped_card):
    """The model alone (guide 0), seed 0: given the chords of the rules harmonization, more of its
    strong-beat notes are in those chords than when it is given none."""
    from studio.serving.registry import default_registry

    melody, grid = _sample_melody(sample)
    registry = default_registry()
    rules = registry.generate("rules", melody, grid, {}, 0)
    spans = analyse_chords(rules, grid, melody_key(melody))
    alone = registry.card("arcnn-chorale").resolve_params({"guide": 0.0})
    model = registry.get("arcnn-chorale")  # called directly: the chords are not a card parameter
    without = model.generate(melody, grid, alone, 0)
    given = model.generate(melody, grid, {**alone, CHORDS_PARAM: spans}, 0)
    share_without, _ = chord_tone_share(without, grid, spans)
    share_given, count = chord_tone_share(given, grid, spans)
    assert count > 20 and share_given > share_without + 0.03, (share_without, share_given)

"""The AR-CNN (models/arcnn.py): its mechanics on a small untrained network (limits that must hold
whatever the weights), and the shipped `arcnn-chorale` through the service on tunes it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.arcnn import (
    ARCNN,
    ARCNNAccompanist,
    ARCNNConfig,
    annealed_share,
    gibbs_motion_penalties,
    masked_cross_entropy,
    melody_notes,
    random_erasure,
)
from studio.core.conditioning import track_to_tokens
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import consonance, in_key_rate, melody_key, parallel_perfect_counts, parallel_perfect_rate
from studio.core.midi import read_midi
from studio.core.roll import make_grid, notes_to_roll
from studio.core.score import Score
from studio.serving.registry import default_registry
from studio.serving.service import AccompanyRequest, accompany
from studio.training.tunes import tune_roll

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
UNSEEN = ["four_four.mid", "three_four_pickup.mid", "six_eight_minor.mid", "two_four.mid", "cut_time.mid"]
# Where each voice of a four-part chorale lives (MIDI pitches; SATB ranges with a tone to spare).
RANGES = {"Alto": (52, 76), "Tenor": (45, 71), "Bass": (36, 64)}


@pytest.fixture(scope="module")
def small() -> ARCNNAccompanist:
    torch.manual_seed(0)
    return ARCNNAccompanist(ARCNNConfig(hidden=16, dilations=(1, 2)), ARCNN(ARCNNConfig(hidden=16, dilations=(1, 2))))


@pytest.fixture(scope="module")
def tune(tune_paths):
    score = read_midi(tune_paths["four_four.mid"]).score
    return tune_roll(Score(score.ticks_per_beat, [extract_melody(score).track], score.tempos, score.time_signatures))


def _notes(track) -> set:
    return melody_notes(*track_to_tokens(track))


def test_training_masks_and_loss():
    rng = np.random.default_rng(0)
    erased = random_erasure((64, 4, 32), 0.25, rng)
    assert erased.reshape(64, -1).any(1).all()  # every example has something to learn
    harmonize = ~erased[:, 0].any(1) & erased[:, 1:].reshape(64, -1).all(1)  # melody kept, the rest erased
    assert 8 <= harmonize.sum() <= 28  # a quarter of the batch, give or take
    tokens = torch.randint(0, 85, (2, 4, 8))
    logits = torch.full((2, 4, 85, 8), -20.0)
    logits.scatter_(2, tokens.unsqueeze(2), 20.0)  # certain of the truth
    assert float(masked_cross_entropy(logits, tokens, torch.ones(2, 4, 8, dtype=torch.bool))) < 1e-3
    assert annealed_share(0, 100) == pytest.approx(0.9) and annealed_share(99, 100) == pytest.approx(0.05)


def test_the_learning_rate_falls_along_a_half_cosine_when_asked():
    from types import SimpleNamespace

    from models.arcnn import ARCNNTraining

    def rate(step: int, **config) -> float:
        return ARCNNTraining.learning_rate(SimpleNamespace(config=ARCNNConfig(**config)), step)

    assert rate(0) == rate(10_000) == 1e-3  # constant by default (the shipped card's training)
    assert rate(0, decay_steps=100) == pytest.approx(1e-3)
    assert rate(50, decay_steps=100) == pytest.approx(1e-3 * (0.05 + 0.95 / 2))
    assert rate(100, decay_steps=100) == rate(500, decay_steps=100) == pytest.approx(5e-5)


def test_the_network_input_is_what_its_docstring_says():
    """`ARCNN.features` writes its input in place; it must equal the definition built the plain way:
    per voice the token's one-hot and its pitch class (zero where erased) and the erased flag, then the context."""
    network = ARCNN(ARCNNConfig(hidden=16, dilations=(1,)))
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 85, (3, 4, 50), generator=gen)
    tokens[torch.rand(3, 4, 50, generator=gen) < 0.3] = 0  # rests
    erased = torch.rand(3, 4, 50, generator=gen) < 0.4
    context = torch.randn(3, 50, 24, generator=gen)
    keep = (~erased).unsqueeze(-1).float()
    pitch_class = torch.zeros(85, 12)
    for token in range(1, 85):
        pitch_class[token, (token + 23) % 12] = 1.0  # token 1 is MIDI pitch 24, a C
    per_voice = torch.cat(
        [torch.nn.functional.one_hot(tokens, 85).float() * keep, pitch_class[tokens] * keep, erased.unsqueeze(-1).float()], -1
    )
    expected = torch.cat([per_voice.permute(0, 1, 3, 2).reshape(3, 4 * 98, 50), context.transpose(1, 2)], 1)
    got = network.features(tokens, erased, context)
    assert got.shape == (3, 4 * 98 + 24, 50) and got.is_contiguous() and torch.equal(got, expected)


def test_harmonize_keeps_the_melody_and_the_seed_decides(small, tune):
    melody, grid = tune
    params = {"iterations": 8}
    first = small.generate(melody, grid, params, 3)
    assert [t.name for t in first] == ["Alto", "Tenor", "Bass"]
    assert all(t.role == "accompaniment" and t.n_steps == grid.n_steps for t in first)
    again = small.generate(melody, grid, params, 3)
    other = small.generate(melody, grid, params, 4)
    assert all(np.array_equal(a.velocity, b.velocity) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a.velocity, b.velocity) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(("removed", "added"), [(0.0, 0), (0.0, 3), (0.25, 0), (0.5, 5), (1.0, 64)])
def test_enhance_respects_its_limits_exactly(small, tune, removed, added):
    melody, grid = tune
    before = _notes(melody)
    for seed in range(3):
        out = small.generate(
            melody, grid, {"mode": "enhance", "iterations": 60, "creative_risk": 1.5, "max_removed": removed, "max_added": added}, seed
        )
        assert out[0].role == "melody" and [t.name for t in out[1:]] == ["Alto", "Tenor", "Bass"]
        after = _notes(out[0])
        assert len(before - after) <= int(np.floor(removed * len(before) + 1e-9))
        assert len(after - before) <= added
    if removed == 0.0 and added == 0:
        assert after == before  # no room to change anything: the melody stays note for note


def test_creative_risk_changes_the_outcome(small, tune):
    melody, grid = tune
    calm = small.generate(melody, grid, {"iterations": 8, "creative_risk": 0.0}, 0)
    calm_again = small.generate(melody, grid, {"iterations": 8, "creative_risk": 0.0}, 1)
    risky = small.generate(melody, grid, {"iterations": 8, "creative_risk": 1.5}, 0)
    assert any(not np.array_equal(a.velocity, b.velocity) for a, b in zip(calm, risky, strict=True))
    # at 0 the network's favourite note is taken, so only the order of erasures depends on the seed
    assert sum(np.array_equal(a.velocity, b.velocity) for a, b in zip(calm, calm_again, strict=True)) >= sum(
        np.array_equal(a.velocity, b.velocity) for a, b in zip(calm, risky, strict=True)
    )


def test_parallel_fifths_metric_counts_only_parallel_perfect_motion():
    from studio.core.roll import RollTrack

    def line(pitches):
        t = RollTrack.empty("x", 0, len(pitches))
        for i, p in enumerate(pitches):
            t.add_note(i, i + 1, p)
        return t

    assert parallel_perfect_rate([line([67, 69]), line([60, 62])]) == 1.0  # C-G to D-A: parallel fifths
    assert parallel_perfect_rate([line([72, 74]), line([60, 62])]) == 1.0  # parallel octaves
    assert parallel_perfect_rate([line([67, 65]), line([60, 62])]) == 0.0  # contrary motion
    assert parallel_perfect_rate([line([64, 65]), line([60, 62])]) == 0.0  # third to third
    assert np.isnan(parallel_perfect_rate([line([67, 67]), line([60, 62])]))  # only one voice moves


shipped = pytest.mark.skipif(not (CHECKPOINTS / "arcnn-chorale.safetensors").exists(), reason="arcnn-chorale is not trained yet")


@shipped
def test_the_card_reports_likelihood_beating_the_baseline():
    card = json.loads((CHECKPOINTS / "arcnn-chorale.json").read_text())
    nll = card["metrics"]["nll"]
    model, baseline = nll["model"]["voice_given_others_mean"], nll["baseline_independent_voices"]["mean"]
    assert model < 0.6 * baseline, (model, baseline)
    assert card["training"]["held_out_pieces"] > 0 and card["metrics"]["unseen"]["tunes"] >= 50


@shipped
def test_harmonizing_unseen_tunes(tune_paths, tmp_path):
    in_key, cons, ours, rules = [], [], [], []
    for tune in UNSEEN:
        source = tune_paths[tune]
        original = read_midi(source).score
        melody = extract_melody(original).track
        grid = make_grid(original, estimate_pickup(melody.notes, original))
        mel = notes_to_roll(melody.notes, grid, "Melody", 0)
        parts = {}
        for model in ("arcnn-chorale", "rules"):
            result = accompany(
                AccompanyRequest(midi=source, model=model, seed=0, out_dir=tmp_path / model / tune, want_wav=False, want_png=False)
            )
            out = read_midi(result.midi_path).score
            assert [(n.start, n.end, n.pitch) for n in out.tracks[0].notes] == [(n.start, n.end, n.pitch) for n in melody.notes]
            parts[model] = [notes_to_roll(t.notes, grid, t.name, t.program) for t in out.tracks[1:]]
        voices = parts["arcnn-chorale"]
        assert [t.name for t in voices] == ["Alto", "Tenor", "Bass"]
        for track in voices:
            low, high = RANGES[track.name]
            pitches = np.flatnonzero((track.velocity > 0).any(0))
            assert len(pitches) and low <= pitches.min() and pitches.max() <= high, (tune, track.name, pitches.min(), pitches.max())
        in_key.append(in_key_rate(voices, melody_key(mel)))
        cons.append(consonance(mel, voices))
        ours.append(parallel_perfect_counts([mel, *voices]))
        rules.append(parallel_perfect_counts([mel, *parts["rules"]]))
    assert np.mean(in_key) >= 0.90, in_key
    assert np.mean(cons) >= 0.75, cons
    pooled = [sum(p for p, _ in counts) / sum(m for _, m in counts) for counts in (ours, rules)]  # over all moves together
    assert pooled[0] < pooled[1], (ours, rules)


@shipped
def test_enhance_through_the_service_rewrites_the_melody_within_limits(tune_paths, tmp_path):
    source = tune_paths["two_four.mid"]
    melody = extract_melody(read_midi(source).score).track
    result = accompany(
        AccompanyRequest(
            midi=source,
            model="arcnn-chorale",
            seed=1,
            out_dir=tmp_path,
            params={"mode": "enhance", "max_removed": 0.2, "max_added": 4, "creative_risk": 1.0},
            want_wav=False,
            want_png=False,
        )
    )
    out = read_midi(result.midi_path).score
    before = {(n.start, n.pitch) for n in melody.notes}
    after = {(n.start, n.pitch) for n in out.tracks[0].notes}
    assert len(before - after) <= int(0.2 * len(before)) and len(after - before) <= 4
    assert any("rewrote the melody" in w for w in result.notes)
    assert len(out.tracks) == 4


@shipped
def test_creative_risk_moves_the_music_away_from_the_safe_choice(tune):
    melody, grid = tune
    registry = default_registry()
    key = melody_key(melody)
    safe = [in_key_rate(registry.generate("arcnn-chorale", melody, grid, {"creative_risk": 0.2}, s), key) for s in range(3)]
    wild = [in_key_rate(registry.generate("arcnn-chorale", melody, grid, {"creative_risk": 1.8}, s), key) for s in range(3)]
    assert np.mean(wild) < np.mean(safe) - 0.02, (safe, wild)


def test_no_note_starts_after_the_tune():
    """Das Hildebrandslied (the first unseen folk tune) ends half a bar before its last bar does;
    the shipped AR-CNN, seed 0, once started an alto note there, after the tune had ended."""
    from roll_checks import melody_end_step, starts_a_note_after

    from studio.training.evaluate import _model_melody
    from studio.training.tunes import corpus_tunes

    [first] = list(corpus_tunes(1))
    melody, grid = tune_roll(first.score)
    melody = _model_melody(melody)
    end = melody_end_step(melody)
    assert end < grid.n_steps
    for mode in ("harmonize", "enhance"):
        tracks = default_registry().generate("arcnn-chorale", melody, grid, {"mode": mode}, 0)
        for track in tracks[1:] if mode == "enhance" else tracks:
            assert not starts_a_note_after(track, end), f"{mode}: {track.name} starts a note after the tune"


def test_held_pitches_are_struck_again_where_bachs_voices_strike_them(tune, tmp_path):
    """The card's re-strike odds (read per voice from the training chorales, each scaled to its voice's
    repeated-note share in Bach: bench/restrikes.py): the same pitches, step by step, as the card without
    them, but a held pitch struck again at many beats where the melody starts a note, and almost nowhere
    else (the passing notes and the moves onto the eighths, which change pitches, off in both)."""
    import shutil

    from studio.core.conditioning import meter_features
    from studio.serving.registry import ModelRegistry

    melody, grid = tune
    card = json.loads((CHECKPOINTS / "arcnn-chorale.json").read_text())
    assert len(card["config"]["restrikes"]) == 12 and card["config"]["restrikes"][0] > 0.2
    card["config"].update(passing=[], snap=0.0)
    registries = []
    for name, restrikes in (("with", card["config"]["restrikes"]), ("without", [])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "arcnn-chorale.json").write_text(json.dumps({**card, "config": {**card["config"], "restrikes": restrikes}}))
        shutil.copy(CHECKPOINTS / "arcnn-chorale.safetensors", tmp_path / name)
        registries.append(ModelRegistry(tmp_path / name))
    with_odds, without = (r.generate("arcnn-chorale", melody, grid, {}, 0) for r in registries)
    melody_tokens, melody_starts = track_to_tokens(melody)
    beats = meter_features(grid)[:, 1] > 0
    struck_on_beats = held_on_beats = struck_elsewhere = held_elsewhere = 0
    for a, b in zip(with_odds, without, strict=True):
        (ta, sa), (tb, sb) = track_to_tokens(a), track_to_tokens(b)
        assert np.array_equal(ta, tb)  # the pitches are the model's: only re-strikes are added
        assert not (sb & ~sa).any()
        held = np.zeros_like(ta, bool)
        held[1:] = (ta[1:] == ta[:-1]) & (ta[1:] != 0)
        there = held & beats & melody_starts & (melody_tokens != 0)
        struck_on_beats, held_on_beats = struck_on_beats + (sa & there).sum(), held_on_beats + there.sum()
        struck_elsewhere, held_elsewhere = struck_elsewhere + (sa & held & ~there).sum(), held_elsewhere + (held & ~there).sum()
    assert held_on_beats >= 10 and 0.15 < struck_on_beats / held_on_beats < 0.7
    assert struck_elsewhere <= 0.05 * max(1, held_elsewhere)


def test_training_reads_the_restrike_odds_from_its_own_pieces():
    """A new AR-CNN's card carries where its genre's voices strike a held pitch again, read from the
    pieces it trains on (as its voice ranges are); a `--set restrikes=...` given is kept."""
    from models.arcnn import training
    from studio.core.restrikes import restrike_odds
    from studio.training.data import DatasetConfig, build_dataset

    dataset = build_dataset(DatasetConfig("chorale", max_pieces=8), progress=False)
    recipe = training(dataset, {"hidden": 8, "dilations": (1,)})
    odds = recipe.config.restrikes
    assert odds == restrike_odds(recipe.windows.pieces)
    assert odds[0] > 0.3 and odds[3] < 0.05  # struck again where the melody starts a note on a beat, seldom elsewhere
    assert training(dataset, {"hidden": 8, "dilations": (1,), "restrikes": (0.1, 0.0, 0.0, 0.0)}).config.restrikes == (0.1, 0.0, 0.0, 0.0)


def test_gibbs_motion_costs_charge_a_cell_that_starts_a_note_by_an_overdone_move():
    """Each side's move from the neighbouring cell's pitch costs what its size costs; holding the
    neighbour's pitch (one note) and a rest on either side cost nothing; a row per voice."""
    from studio.core.conditioning import REST
    from studio.core.part_writing import MOTION_SIZES

    thirds = (0.0, 0.0, 0.0, 1.0, 2.0, *[5.0] * (MOTION_SIZES - 5))
    tokens = np.array([[50, 50, 50, 50], [40, 40, 42, 42], [30, REST, 33, 33]])
    cells = np.zeros(tokens.shape, bool)
    cells[1, 1] = cells[2, 2] = True  # an alto cell between 40 and 42; a tenor cell after a rest, before 33
    costs = gibbs_motion_penalties(tokens, cells, thirds)
    assert costs.shape == (2, 85)
    assert costs[0, [40, 41, 42, 43, 44, REST]].tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 0.0]
    assert costs[1, [33, 30, 36, 45, REST]].tolist() == [0.0, 1.0, 1.0, 5.0, 0.0]
    per_voice = (0.0,) * MOTION_SIZES + thirds  # the alto free, the tenor charged
    both = gibbs_motion_penalties(tokens, cells, per_voice)
    assert both[0].sum() == 0.0 and both[1].tolist() == costs[1].tolist()
    assert not gibbs_motion_penalties(tokens, cells, ()).any()


def test_gibbs_motion_costs_move_the_draws_and_guide_0_is_the_model_alone(tune):
    """With heavy costs on every leap the small network's Gibbs draws leap far less than without; at
    guide 0 the costs are off and the take is the model's own, note for note."""
    from dataclasses import replace

    from studio.core.conditioning import REST

    melody, grid = tune
    torch.manual_seed(0)
    config = ARCNNConfig(hidden=16, dilations=(1, 2))
    network = ARCNN(config)
    plain = ARCNNAccompanist(config, network)
    stepwise = (0.0, 0.0, 0.0, *[4.0] * 11)  # every move of a third or more
    steps = ARCNNAccompanist(replace(config, gibbs_motion=stepwise), network)
    params = {"iterations": 16, "guide": 0.0}
    pairs = zip(plain.generate(melody, grid, params, 0), steps.generate(melody, grid, params, 0), strict=True)
    assert all(_notes(a) == _notes(b) for a, b in pairs)

    mel_tokens, _ = track_to_tokens(melody)
    tokens = np.zeros((4, len(mel_tokens)), np.int64)
    tokens[0] = mel_tokens
    free = np.zeros(tokens.shape, bool)
    free[1:] = True
    context = plain.context(grid, mel_tokens)

    def leaps(motion) -> float:
        drawn = plain.gibbs(tokens, free, context, 32, 0.7, torch.Generator().manual_seed(0), np.random.default_rng(0), None, motion)
        a, b = drawn[1:, :-1], drawn[1:, 1:]
        moves = (a != b) & (a != REST) & (b != REST)
        return float((np.abs(a - b)[moves] >= 3).mean())

    free_leaps, charged = leaps(()), leaps(stepwise)
    assert charged < free_leaps / 2, (free_leaps, charged)


def test_passing_notes_fill_thirds_into_beats_and_change_nothing_else(tune, tmp_path):
    """A card with passing-note odds (`config.passing`, bench/passing.py) writes the same voices as the
    card without them but for the last eighth before some beats: each changed stretch is two sixteenths
    ending on a beat, a pitch in the melody's key strictly between the notes either side, a step from
    both; the melody is untouched."""
    import shutil

    from studio.core.conditioning import meter_features, tokens_to_pitches
    from studio.serving.registry import ModelRegistry

    melody, grid = tune
    beats = meter_features(grid)[:, 1] > 0
    key = melody_key(melody).accepted
    takes = {}
    for odds in ((), (1.0, 1.0, 1.0, 1.0)):
        folder = tmp_path / f"odds{len(odds)}"
        folder.mkdir()
        card = json.loads((CHECKPOINTS / "arcnn-chorale.json").read_text())
        card["config"]["passing"] = list(odds)
        (folder / "arcnn-chorale.json").write_text(json.dumps(card))
        shutil.copy(CHECKPOINTS / "arcnn-chorale.safetensors", folder)
        takes[len(odds)] = ModelRegistry(folder).generate("arcnn-chorale", melody, grid, {}, 0)
    fills = 0
    for filled, plain in zip(takes[4], takes[0], strict=True):
        a, b = tokens_to_pitches(track_to_tokens(filled)[0]), tokens_to_pitches(track_to_tokens(plain)[0])
        changed = np.flatnonzero(a != b)
        for start in changed[np.r_[True, np.diff(changed) > 1]]:
            end = start + 2
            assert changed[changed >= start][:2].tolist() == [start, start + 1] and end not in changed
            assert beats[end] and a[start] == a[start + 1] and a[start] % 12 in key
            before, after = b[start - 1], b[end]
            assert min(before, after) < a[start] < max(before, after) and abs(int(after) - int(before)) in (3, 4)
            fills += 1
    assert fills >= 3


def test_voices_rest_under_the_melody_only_where_the_genre_s_do(tune):
    """A network that would rather rest everywhere: a chorale card's voices still sound wherever the
    melody does; a card with `voices_rest` (a motet's, a quartet's) keeps its rests there once its
    rest costs are measured (0 here: the network's own odds), and not before."""
    from studio.core.conditioning import REST

    melody, grid = tune
    config = ARCNNConfig(hidden=16, dilations=(1, 2))
    torch.manual_seed(0)
    network = ARCNN(config)
    with torch.no_grad():
        bias = network.out.bias.view(config.n_voices, -1)
        bias[1:, REST] += 20.0  # every lower voice's cells favour a rest
    sings = (melody.velocity > 0).any(axis=1)
    for voices_rest, costs, resting in ((False, (0.0,) * 3, False), (True, (), False), (True, (0.0,) * 3, True)):
        config = ARCNNConfig(hidden=16, dilations=(1, 2), voices_rest=voices_rest, rest_costs=costs)
        tracks = ARCNNAccompanist(config, network).generate(melody, grid, {"iterations": 4, "guide": 0.0}, 0)
        silent = np.array([~(t.velocity > 0).any(axis=1) for t in tracks])[:, sings]
        assert silent.mean() > 0.9 if resting else not silent.any(), (voices_rest, costs)


def test_training_reads_whether_the_genre_s_voices_rest_under_the_melody():
    """Bach's chorale voices sing wherever the tune does (0.1% of its steps): a chorale AR-CNN keeps
    them sounding; a `--set voices_rest=true` given is kept."""
    from models.arcnn import training
    from studio.core.voices import RESTING_SHARE, rests_under_melody
    from studio.training.data import DatasetConfig, build_dataset

    dataset = build_dataset(DatasetConfig("chorale", max_pieces=8), progress=False)
    recipe = training(dataset, {"hidden": 8, "dilations": (1,)})
    assert rests_under_melody(recipe.windows.pieces) < RESTING_SHARE and recipe.config.voices_rest is False
    assert training(dataset, {"hidden": 8, "dilations": (1,), "voices_rest": True}).config.voices_rest is True


def test_rest_costs_bring_a_resting_network_s_voices_back_under_the_melody(tune):
    """The same rest-loving network with `voices_rest`: a high cost against a rest keeps each voice
    sounding under the melody, a cost for one voice alone changes that voice alone."""
    from studio.core.conditioning import REST

    melody, grid = tune
    config = ARCNNConfig(hidden=16, dilations=(1, 2))
    torch.manual_seed(0)
    network = ARCNN(config)
    with torch.no_grad():
        network.out.bias.view(config.n_voices, -1)[1:, REST] += 20.0
    sings = (melody.velocity > 0).any(axis=1)

    def silent(costs: tuple[float, ...]) -> np.ndarray:
        accompanist = ARCNNAccompanist(ARCNNConfig(hidden=16, dilations=(1, 2), voices_rest=True, rest_costs=costs), network)
        tracks = accompanist.generate(melody, grid, {"iterations": 4, "guide": 0.0}, 0)
        return np.array([~(t.velocity > 0).any(axis=1) for t in tracks])[:, sings].mean(axis=1)

    assert (silent((40.0, 40.0, 40.0)) < 0.05).all()
    one = silent((40.0, 0.0, 0.0))
    assert one[0] < 0.05 and (one[1:] > 0.9).all()

"""The Transformer (models/transformer.py): the event vocabulary, the KV cache, the sampling grammar and
the service's continue-then-accompany chain on a small untrained network (what must hold whatever the
weights), and the shipped `transformer-folk` on tunes it never saw."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models import transformer as T
from models.transformer import (
    BAR,
    GPT,
    POS0,
    Continuer,
    Grammar,
    TransformerConfig,
    decode,
    encode,
    filter_logits,
    track_notes,
)
from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.core.roll import Bar, Grid, RollTrack
from studio.serving.registry import ModelRegistry
from studio.serving.service import AccompanyRequest, accompany
from studio.training.continuation import RunIndex

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
SMALL = TransformerConfig(n_layer=2, n_head=2, n_embd=32, block_size=128, dropout=0.0)

# A 3/4 tune with a one-beat pickup: (start, end, pitch) in 16ths.
PICKUP_BARS = [Bar(0, 4, 3, 4)] + [Bar(4 + 12 * i, 12, 3, 4) for i in range(4)]
PICKUP_NOTES = [(0, 2, 67), (2, 4, 69), (4, 8, 71), (8, 12, 72), (12, 16, 74), (16, 28, 76), (28, 31, 74), (31, 32, 72), (40, 52, 71)]


@pytest.fixture(scope="module")
def small() -> Continuer:
    torch.manual_seed(0)
    return Continuer(SMALL, GPT(SMALL))


def _melody(notes, n_steps) -> RollTrack:
    track = RollTrack.empty("Melody", 0, n_steps)
    for s, e, p in notes:
        track.add_note(s, e, p, 80)
    return track


def test_events_round_trip_with_pickup_and_meter_change():
    encoded = encode(PICKUP_NOTES, PICKUP_BARS)
    names = [T.token_name(t) for t in encoded.tokens]
    assert names[:7] == ["BOS", "NUM_3", "DEN_4", "BAR", "POS_8", "PITCH_67", "DUR_2"]  # the pickup sits on beat 3
    assert decode(encoded.tokens, PICKUP_BARS) == PICKUP_NOTES
    # 2/4 then 6/8: the meter is written again where it changes, and bars keep their own lengths
    bars = [Bar(0, 8, 2, 4), Bar(8, 8, 2, 4), Bar(16, 12, 6, 8), Bar(28, 12, 6, 8)]
    notes = [(0, 4, 60), (4, 8, 62), (8, 16, 64), (16, 22, 65), (22, 28, 67), (28, 40, 72)]
    encoded = encode(notes, bars)
    assert [T.token_name(t) for t in encoded.tokens].count("NUM_6") == 1
    assert decode(encoded.tokens, bars) == notes
    assert encoded.meters[2] != encoded.meters[0]
    # a meter the vocabulary cannot write is refused, not garbled
    assert encode(notes, [Bar(0, 68, 17, 4)]) is None


def test_evaluation_windows_score_every_event_once():
    notes = [(s, s + 2, 60 + (s // 2) % 12) for s in range(0, 12 * 40, 2)]
    bars = [Bar(12 * i, 12, 3, 4) for i in range(40)]
    tune = encode(notes, bars)
    windows = T._eval_windows(tune, 64)
    scored = [t for seq, first in windows for t in seq[first:]]
    assert scored == tune.tokens[1:]
    assert all(len(seq) <= 65 for seq, _ in windows)
    assert all(seq[first] == BAR for seq, first in windows[1:])  # later windows start at bar lines


def test_kv_cache_gives_the_same_logits_as_a_full_pass(small):
    tokens = torch.tensor([encode(PICKUP_NOTES, PICKUP_BARS).tokens])
    full, _ = small.network(tokens)
    first, cache = small.network(tokens[:, :10])
    rest = []
    for i in range(10, tokens.shape[1]):
        logits, cache = small.network(tokens[:, i : i + 1], cache)
        rest.append(logits)
    stepped = torch.cat([first, *rest], dim=1)
    assert torch.allclose(full, stepped, atol=1e-5)


def test_sampling_filters():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])
    assert torch.isfinite(filter_logits(logits, "top-k", 2, 1.0)).sum() == 2
    probs = torch.softmax(logits, 0)  # 0.64, 0.24, 0.09, ...
    kept = torch.isfinite(filter_logits(logits, "nucleus", 99, 0.8))
    assert kept.tolist() == [True, True, False, False, False] and probs[:2].sum() >= 0.8


def test_grammar_never_goes_back_in_time():
    grammar = Grammar(12, 0)
    grammar.advance(BAR)
    grammar.advance(POS0 + 4)
    grammar.advance(T.PITCH0 + 40)
    grammar.advance(T.DUR0 + 9)  # a note of 10 16ths from position 4: runs 2 into the next bar
    allowed = grammar.allowed()
    assert not allowed[POS0 : POS0 + 12].any() and allowed[BAR]
    grammar.advance(BAR)
    allowed = grammar.allowed()
    assert not allowed[POS0 : POS0 + 2].any() and allowed[POS0 + 2 : POS0 + 12].all()


@pytest.mark.parametrize("bars", [1, 4])
def test_continuation_keeps_the_prompt_and_adds_whole_bars(small, bars):
    melody = _melody(PICKUP_NOTES, 52)
    grid = Grid(4, 52, PICKUP_BARS)
    out = small.generate(melody, grid, {"bars": bars}, seed=3)[0]
    assert out.role == "continuation" and out.n_steps == 52 + 12 * bars
    assert np.array_equal(out.velocity[:52], melody.velocity) and np.array_equal(out.onset[:52], melody.onset)
    added = [n for n in track_notes(out) if n[0] >= 52]
    assert added, "an untrained network still writes notes: the grammar gives it nothing else to write"
    ends = [e for _s, e, _p in added]
    assert max(ends) <= out.n_steps
    starts = [s for s, _e, _p in added]
    assert starts == sorted(set(starts))  # one line: no two notes start together


def test_same_seed_same_tune_other_seed_other_tune(small):
    melody, grid = _melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS)
    a = small.generate(melody, grid, {"bars": 4}, seed=1)[0]
    b = small.generate(melody, grid, {"bars": 4}, seed=1)[0]
    c = small.generate(melody, grid, {"bars": 4}, seed=2)[0]
    assert np.array_equal(a.velocity, b.velocity)
    assert not np.array_equal(a.velocity, c.velocity)


def test_cache_and_no_cache_sample_the_same_events(small):
    prompt = small._prompt(_melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS), 0, 64, SMALL.block_size)
    with_cache = small.continue_tokens(prompt, [12] * 6, {}, seed=5)
    without = small.continue_tokens(prompt, [12] * 6, {}, seed=5, use_cache=False)
    assert with_cache == without


def test_long_continuations_slide_past_the_context(small):
    """More bars than the 128-event context holds: the window slides and every bar still comes."""
    melody, grid = _melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS)
    out = small.generate(melody, grid, {"bars": 32, "creative_risk": 2.0}, seed=0)[0]
    assert out.n_steps == 52 + 32 * 12


def test_prompt_bars_limits_what_is_read(small):
    melody, grid = _melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS)
    one = small._prompt(melody, grid, 1, 16, SMALL.block_size)
    every = small._prompt(melody, grid, 0, 16, SMALL.block_size)
    assert one.count(BAR) == 1 and every.count(BAR) == len(PICKUP_BARS)


def test_copy_index_finds_transposed_copies():
    tune = [(i * 2, i * 2 + 2, 60 + (i * 5) % 12) for i in range(40)]
    index = RunIndex([tune])
    moved = [(s + 7, e + 7, p + 3) for s, e, p in tune[10:30]]  # 20 notes, shifted in time and transposed
    assert index.copied(moved) == 20 - 16 + 1
    other = [(s, e, p + (i % 2)) for i, (s, e, p) in enumerate(moved)]
    assert index.copied(other) == 0


# --------------------------------------------------------------------------- the service chain


@pytest.fixture(scope="module")
def tiny_registry(tmp_path_factory) -> ModelRegistry:
    """A registry with the rules baseline and an untrained small Transformer checkpoint."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("checkpoints")
    shutil.copy(CHECKPOINTS / "rules.json", folder / "rules.json")
    torch.manual_seed(0)
    save_file(GPT(SMALL).state_dict(), str(folder / "transformer-tiny.safetensors"))
    card = {
        "name": "transformer-tiny",
        "family": "transformer",
        "genre": "folk",
        "description": "untrained, for tests",
        "tracks": [{"name": "Melody", "program": 0}],
        "params": T.PARAMS,
        "config": SMALL.to_json(),
    }
    (folder / "transformer-tiny.json").write_text(json.dumps(card))
    return ModelRegistry(folder, device="cpu")


def test_continue_then_accompany_is_one_song(tiny_registry, tune_paths, tmp_path):
    source = tune_paths["three_four_pickup.mid"]
    original = read_midi(source).score
    result = accompany(
        AccompanyRequest(midi=source, model="transformer-tiny", seed=0, params={"bars": 4}, then="rules", out_dir=tmp_path, want_wav=False),
        registry=tiny_registry,
    )
    melody = result.score.tracks[0]
    before = [n for n in melody.notes if n.start < original.end_tick]
    source_melody = max(original.tracks, key=lambda t: len(t.notes))
    assert [(n.start, n.end, n.pitch) for n in before] == [
        (n.start, n.end, n.pitch) for n in sorted(source_melody.notes, key=lambda n: (n.start, n.pitch))
    ]
    assert len(melody.notes) > len(before)  # new bars
    assert len(result.score.tracks) > 1  # accompanied
    last_accompaniment = max(n.end for t in result.score.tracks[1:] for n in t.notes)
    assert last_accompaniment > original.end_tick  # the accompaniment covers the added bars too
    assert any("added 4 bars" in w for w in result.notes)
    assert read_midi(result.midi_path.read_bytes()).score.time_signatures[0].numerator == 3


def test_then_is_refused_where_it_makes_no_sense(tiny_registry, tune_paths, tmp_path):
    source = tune_paths["three_four_pickup.mid"]
    with pytest.raises(InputError, match="writes melody"):
        accompany(
            AccompanyRequest(midi=source, model="transformer-tiny", then="transformer-tiny", out_dir=tmp_path), registry=tiny_registry
        )
    with pytest.raises(InputError, match="already accompanies"):
        accompany(AccompanyRequest(midi=source, model="rules", then="rules", out_dir=tmp_path), registry=tiny_registry)


# --------------------------------------------------------------------------- training through the one loop


def _synthetic_tunes(n: int):
    """`n` one-track pieces (scales and arpeggios in 3/4 and 6/8) shaped like studio.training.melodies' tunes."""
    from studio.training.data import Dataset, Piece
    from studio.training.melodies import MelodyDatasetConfig

    pieces = []
    rng = np.random.default_rng(0)
    for i in range(n):
        num, den, length = ((3, 4, 12), (6, 8, 12))[i % 2]
        bars = [Bar(length * b, length, num, den) for b in range(8)]
        tonic = 60 + int(rng.integers(-5, 6))
        rows = [(0, s, s + 2, tonic + (0, 2, 4, 5, 7, 9, 11, 12)[(s // 2) % 8], 80) for s in range(0, 8 * length, 2)]
        pieces.append(
            Piece(
                f"tune{i}",
                "synthetic",
                "folk",
                Grid(4, 8 * length, bars),
                ("Melody",),
                (0,),
                (False,),
                np.array(rows, np.int32),
                "C major",
                f"{num}/{den}",
                8,
                f"group{i}",
            )
        )
    return Dataset(MelodyDatasetConfig(), pieces[2:], pieces[:2], [], {"sources": n})


def test_the_training_loop_trains_and_ships_a_checkpoint(monkeypatch, tmp_path):
    from studio.training.train import TrainConfig, run_training

    monkeypatch.setattr("studio.training.train.melody_dataset", lambda genre, max_pieces=None, progress=True: _synthetic_tunes(12))
    overrides = {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 128, "seq_len": 64, "batch_size": 8, "warmup_steps": 2}
    card = run_training(
        TrainConfig(
            "transformer",
            "folk",
            steps=30,
            out=tmp_path / "transformer-test",
            overrides=overrides,
            evaluate=False,
            run_dir=tmp_path / "run",
            validation=0.2,
            validate_every_s=0.0,
            samples=2,
        ),
        progress=False,
    )
    history = json.loads((tmp_path / "training" / "transformer-test.json").read_text())
    losses = [r["nll"] for r in history["losses"]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])  # it learned something about scales
    assert history["validation"] and "perplexity" in history["validation"][0]
    assert "log-likelihood" in card["training"]["selected"]["how"]
    assert any(t["name"] == "Continuation" for t in history["samples"][-1]["pieces"][0]["tracks"])
    loaded = ModelRegistry(tmp_path, device="cpu").get("transformer-test")
    melody, grid = _melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS)
    assert loaded.generate(melody, grid, {"bars": 2}, 0)[0].n_steps == 52 + 24


def test_choice_views_show_what_it_weighed_and_where_it_looked(tiny_registry, tune_paths, tmp_path, small):
    from studio.serving.service import choice_views

    request = AccompanyRequest(
        midi=tune_paths["three_four_pickup.mid"], model="transformer-tiny", seed=4, params={"bars": 2}, out_dir=tmp_path
    )
    views = choice_views(request, registry=tiny_registry)
    assert [caption for _p, caption in views] == ["the pitches it could draw for each new note", "where each new note looked"]
    assert all(p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG" for p, _c in views)
    assert (
        choice_views(AccompanyRequest(midi=tune_paths["three_four_pickup.mid"], model="rules", out_dir=tmp_path), registry=tiny_registry)
        == []
    )
    # the choices are those of the take itself: same seed, same drawn pitches
    model = tiny_registry.get("transformer-tiny")
    melody, grid = _melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS)
    explained = model.explain(melody, grid, {"bars": 2}, 4)
    written = [p for s, _e, p in track_notes(model.generate(melody, grid, {"bars": 2}, 4)[0]) if s >= 52]
    assert [chosen for _probs, chosen in explained["choices"]] == written
    assert explained["attention"].shape == (len(written), len(explained["notes"]))


# --------------------------------------------------------------------------- the shipped transformer-folk

# Test tunes from collections the melody dataset leaves out (studio.training.tunes.UNSEEN_COLLECTIONS) and a lead sheet.
UNSEEN_FOR_TRANSFORMER = ["six_eight_minor.mid", "two_four.mid", "cut_time.mid", "lead_sheet_chords.mid"]


@pytest.fixture(scope="module")
def shipped():
    from studio.serving.registry import default_registry

    registry = default_registry()
    assert "transformer-folk" in [c.name for c in registry.cards() if not c.disabled]
    return registry


def test_shipped_card_reports_perplexity_beside_its_baselines(shipped):
    card = shipped.card("transformer-folk")
    held = card.metrics["held_out"]
    assert held["perplexity"] < held["baselines"]["bigram"] < held["baselines"]["unigram"]
    assert card.metrics["unseen"]["tunes"] >= 100 and card.metrics["unseen"]["copied_runs"] == 0


def test_shipped_continuations_of_unseen_tunes(shipped, tune_paths, tmp_path):
    from studio.core.metrics import in_key_rate, melody_key
    from studio.serving.service import read_melody

    rates = []
    for name in UNSEEN_FOR_TRANSFORMER:
        request = AccompanyRequest(
            midi=tune_paths[name], model="transformer-folk", seed=1, params={"bars": 8}, out_dir=tmp_path, want_wav=False
        )
        _score, _melody, roll, grid, _w = read_melody(request)
        out = shipped.generate("transformer-folk", roll, grid, shipped.card("transformer-folk").resolve_params({"bars": 8}), 1)[0]
        assert np.array_equal(out.velocity[: grid.n_steps], roll.velocity) and np.array_equal(out.onset[: grid.n_steps], roll.onset)
        bar = grid.bars[-1].full_length
        assert out.n_steps == grid.n_steps + 8 * bar
        added = RollTrack.empty("added", 0, out.n_steps)
        notes = [n for n in track_notes(out) if n[0] >= grid.n_steps]
        for s, e, p in notes:
            added.add_note(s, e, p)
        filled = {(s - grid.n_steps) // bar for s, _e, _p in notes}
        assert len(filled) >= 7, f"{name}: only {len(filled)} of 8 added bars have notes"
        rates.append(in_key_rate([added], melody_key(roll)))
    assert np.mean(rates) >= 0.9, rates


def test_shipped_continue_then_accompany_on_the_page(shipped, tune_paths):
    from studio.ui.actions import generate

    names = [p.name for p in shipped.card("transformer-folk").params]
    values = [shipped.card("transformer-folk").resolve_params({})[n] for n in names]
    *_shown, take, takes = generate(
        str(tune_paths["two_four.mid"]), "transformer-folk", 2, "gan-chorale", [], *values, progress=lambda *a, **k: None
    )
    from studio.serving.takes import take_label

    assert take["then"] == "gan-chorale" and "transformer-folk → gan-chorale" in take_label(takes[-1])
    song = read_midi(take["midi"]).score
    assert [t.name for t in song.tracks][1:] == ["Alto", "Tenor", "Bass"]
    source = read_midi(tune_paths["two_four.mid"]).score
    assert song.end_tick > source.end_tick

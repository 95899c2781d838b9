"""The diffusion model (models/diffusion.py): its mechanics on a small untrained network (what must
hold whatever the weights: shapes, any meter, seeds, DDIM steps, the trace, the sampler's algebra),
a tiny training run through the loop, and the shipped `diffusion-chorale` on tunes it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.diffusion import (
    ROWS,
    DiffusionAccompanist,
    DiffusionConfig,
    RollDenoiser,
    alpha_bar,
    clean_roll,
    ddim_times,
    roll_loss,
)
from studio.core.conditioning import REST, track_to_tokens
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import consonance, in_key_rate, melody_key
from studio.core.midi import read_midi
from studio.core.roll import MODEL_PITCH_LOW, make_grid, notes_to_roll
from studio.core.score import Score
from studio.serving.service import AccompanyRequest, accompany
from studio.training.tunes import tune_roll

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
TINY = DiffusionConfig(hidden=16, dilations=(1, 2), time_dim=8)
RANGES = {"Alto": (52, 77), "Tenor": (45, 72), "Bass": (34, 65)}  # TINY's (the default) choir ranges


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors gain nothing from two threads, and lose much when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One dataset cache for this module's training tests (eight chorales are parsed once)."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("diffusion-cache")
        patch.setenv("STUDIO_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def small() -> DiffusionAccompanist:
    torch.manual_seed(0)
    return DiffusionAccompanist(TINY, RollDenoiser(TINY))


def _tune(path: Path):
    score = read_midi(path).score
    return tune_roll(Score(score.ticks_per_beat, [extract_melody(score).track], score.tempos, score.time_signatures))


@pytest.fixture(scope="module")
def tunes(tune_paths) -> dict:
    return {name: _tune(tune_paths[name]) for name in ("four_four.mid", "three_four_pickup.mid", "six_eight_minor.mid")}


def _certain(tokens: np.ndarray, onsets: np.ndarray, scale: float) -> torch.Tensor:
    """Logits (B, V, 86, T) that name these voices (tokens and onsets (B, V, T)) with certainty."""
    b, v, n = tokens.shape
    rows = torch.from_numpy(clean_roll(tokens)).view(b, v, ROWS, n)
    onset = torch.from_numpy(np.where(onsets & (tokens != REST), 1.0, -1.0).astype(np.float32))
    return torch.cat([rows, onset[:, :, None]], 2) * scale


def _same(a, b) -> bool:
    return all(np.array_equal(x.velocity, y.velocity) and np.array_equal(x.onset, y.onset) for x, y in zip(a, b, strict=True))


def test_voices_for_any_meter_and_pickup(small, tunes):
    for name, (melody, grid) in tunes.items():
        voices = small.generate(melody, grid, {"steps": 4}, 0)
        assert [t.name for t in voices] == ["Alto", "Tenor", "Bass"], name
        for track in voices:
            assert track.n_steps == grid.n_steps and track.role == "accompaniment"
            sounding = track.velocity > 0
            assert (sounding.sum(1) <= 1).all()  # one voice, one note at a time
            low, high = RANGES[track.name]
            pitches = np.flatnonzero(sounding.any(0))
            assert len(pitches) and low <= pitches.min() and pitches.max() <= high, (name, track.name)
            # a chorale's texture: a voice rests only where the melody rests
            assert not (~sounding.any(1) & (melody.velocity > 0).any(1)).any(), (name, track.name)


def test_the_seed_decides(small, tunes):
    melody, grid = tunes["three_four_pickup.mid"]
    first = small.generate(melody, grid, {"steps": 5}, 3)
    assert _same(first, small.generate(melody, grid, {"steps": 5}, 3))
    assert not _same(first, small.generate(melody, grid, {"steps": 5}, 4))


@pytest.mark.parametrize(("steps", "guidance", "calls", "batch"), [(1, 0.0, 1, 1), (7, 0.0, 7, 1), (7, 2.0, 7, 2)])
def test_ddim_runs_the_steps_asked(small, tunes, monkeypatch, steps, guidance, calls, batch):
    melody, grid = tunes["four_four.mid"]
    seen: list[tuple[int, float]] = []
    forward = small.network.forward

    def counting(x_t, t, cond, previous):
        seen.append((x_t.shape[0], float(t[0])))
        return forward(x_t, t, cond, previous)

    monkeypatch.setattr(small.network, "forward", counting)
    small.generate(melody, grid, {"steps": steps, "guidance": guidance}, 0)
    assert len(seen) == calls and all(b == batch for b, _ in seen)
    assert [t for _, t in seen] == pytest.approx(ddim_times(steps)[:-1])  # from pure noise (t = 1) down


def test_the_trace_shows_the_asked_steps_of_the_same_run(small, tunes):
    melody, grid = tunes["six_eight_minor.mid"]
    params = {"steps": 10}
    total, shown = small.trace_plan(params)
    assert total == 10 and shown[0] == 1 and shown[-1] == 10 and len(shown) == 6
    trace = small.sampling_trace(melody, grid, params, 5, [1, 4, 10])
    assert [step for step, _ in trace] == [1, 4, 10]
    assert all([t.name for t in voices] == ["Alto", "Tenor", "Bass"] for _, voices in trace)
    assert _same(trace[-1][1], small.generate(melody, grid, params, 5))  # the last picture is the take itself
    assert small.trace_caption(1, 10) == "step 1 of 10: noise level t = 0.90"


def test_the_cards_share_of_restrikes_is_kept_in_the_take_the_trace_and_regenerations(small, tunes):
    """With `restrike_keep` none of the held pitches struck again are kept (0 in every situation): the
    same pitch at every step as without it, no note start added, none left on a held pitch; the
    trace's last picture is that take; a regeneration thins only the bars it writes again."""
    from dataclasses import replace

    from studio.core.conditioning import meter_features
    from studio.core.restrikes import held_situations
    from studio.core.selection import Selection

    melody, grid = tunes["four_four.mid"]
    params = {"steps": 4, "guide": 0.0}
    plain = small.generate(melody, grid, params, 2)
    none_kept = DiffusionAccompanist(replace(TINY, restrike_keep=(0.0, 0.0, 0.0, 0.0)), small.network)
    thinned = none_kept.generate(melody, grid, params, 2)
    mel_tokens, mel_onsets = track_to_tokens(melody)
    beats = meter_features(grid)[:, 1] > 0
    voices = [track_to_tokens(t) for t in thinned]
    situation = held_situations(np.stack([mel_tokens] + [tok for tok, _ in voices]), mel_onsets & (mel_tokens != REST), beats)[1:]
    assert not (np.stack([on for _, on in voices]) & (situation >= 0)).any()  # no held pitch struck again
    dropped = 0
    for (tokens, onsets), (plain_tokens, plain_onsets) in zip(voices, (track_to_tokens(t) for t in plain), strict=True):
        assert np.array_equal(tokens, plain_tokens) and not (onsets & ~plain_onsets).any()
        dropped += int(plain_onsets.sum() - onsets.sum())
    assert dropped > 0  # the untrained network strikes some held pitches again, which are now held on
    assert _same(none_kept.sampling_trace(melody, grid, params, 2, [4])[-1][1], thinned)
    # regenerating bars 1-2 (the page's numbers) of the plain take (its re-strikes kept around them): as without the shares
    # but for re-strikes dropped inside the bars; the plain take's re-strikes elsewhere stay
    again = none_kept.regenerate(melody, grid, plain, params, 5, (1, 2))
    plain_again = small.regenerate(melody, grid, plain, params, 5, (1, 2))
    inside = np.zeros(grid.n_steps, bool)
    inside[slice(*Selection(1, 2).steps(grid))] = True
    dropped = 0
    for new, old in zip(again, plain_again, strict=True):
        (tokens, onsets), (old_tokens, old_onsets) = track_to_tokens(new), track_to_tokens(old)
        assert np.array_equal(tokens, old_tokens) and not (onsets & ~old_onsets).any()
        assert np.array_equal(onsets[~inside], old_onsets[~inside])
        dropped += int(old_onsets.sum() - onsets.sum())
    assert dropped > 0


def test_one_pass_over_any_length_has_no_seams(small):
    """No windows, no statistics over the whole piece: what the network says at a step depends only
    on the steps within its receptive field, however long the piece (so a 64-bar melody is treated
    everywhere as a 4-bar one is, and nothing changes at window edges)."""
    torch.manual_seed(1)
    n, reach = 400, 1 + 2 * sum(TINY.dilations)  # 3 per block's kernel, dilated
    x, previous, cond = torch.randn(1, 3 * ROWS, n), torch.zeros(1, 3 * ROWS, n), torch.randn(1, 123, n)
    changed = cond.clone()
    changed[:, :, 300:] = torch.randn(1, 123, n - 300)
    with torch.inference_mode():
        a = small.network(x, torch.tensor([0.5]), cond, previous)
        b = small.network(x, torch.tensor([0.5]), changed, previous)
        short = small.network(x[:, :, :200], torch.tensor([0.5]), cond[:, :, :200], previous[:, :, :200])
    assert torch.equal(a[..., : 300 - reach], b[..., : 300 - reach]) and not torch.equal(a[..., 300:], b[..., 300:])
    assert torch.allclose(a[..., : 200 - reach], short[..., : 200 - reach], atol=1e-5)


def test_a_perfect_denoiser_brings_ddim_to_the_truth(tunes):
    """The sampler's algebra: when the network always names the true roll, every DDIM run, however
    few its steps, ends on that roll (and the noisy roll of the trace gets there)."""
    melody, grid = tunes["four_four.mid"]
    n = grid.n_steps
    rng = np.random.default_rng(0)
    truth = np.zeros((3, n), np.int64)
    for v, (low, high) in enumerate(RANGES.values()):
        truth[v] = np.repeat(rng.integers(low, high + 1, size=-(-n // 4)), 4)[:n] - MODEL_PITCH_LOW + 1
    onsets = np.zeros((3, n), bool)
    onsets[:, ::4] = True
    target = _certain(truth[None], onsets[None], 50.0)

    class Oracle(torch.nn.Module):
        def forward(self, x_t, t, cond, previous):
            return target.expand(x_t.shape[0], -1, -1, -1).clone()

    model = DiffusionAccompanist(TINY, Oracle())
    for steps in (1, 3, 20):
        voices = model.generate(melody, grid, {"steps": steps, "guidance": 0.0}, steps)
        for v, track in enumerate(voices):
            tokens, starts = track_to_tokens(track)
            assert np.array_equal(tokens, truth[v]) and np.array_equal(starts, onsets[v])
    trace = model.sampling_trace(melody, grid, {"steps": 20, "guidance": 0.0}, 0, [1, 19])
    early, late = ([track_to_tokens(t)[0] for t in voices] for _, voices in trace)
    assert np.mean([np.mean(a == b) for a, b in zip(early, truth, strict=True)]) < 0.5  # step 1 of 20: mostly noise
    assert all(np.array_equal(a, b) for a, b in zip(late, truth, strict=True))  # step 19: the music shows through


def test_schedule_and_loss():
    t = torch.linspace(0, 1, 11)
    a = alpha_bar(t)
    assert float(a[0]) == pytest.approx(1.0) and float(a[-1]) == pytest.approx(0.0, abs=1e-6)
    assert (a[1:] < a[:-1]).all()
    tokens = torch.randint(0, 85, (2, 3, 8))
    tokens[0, 0, :2] = REST
    onsets = torch.rand(2, 3, 8) < 0.5
    certain = _certain(tokens.numpy(), onsets.numpy(), 30.0)
    ce, bce = roll_loss(certain, tokens, onsets)
    assert float(ce) < 1e-3 and float(bce) < 1e-3


def test_training_through_the_loop_writes_a_model_that_loads(cache, tmp_path, tunes, tune_paths):
    from studio.serving.registry import ModelRegistry
    from studio.training.train import TrainConfig, history_path, run_training

    out = tmp_path / "ckpt" / "diffusion-chorale"
    overrides = {"hidden": 16, "dilations": "1,2", "time_dim": 8, "batch_size": 4, "window": 32}
    card = run_training(
        TrainConfig("diffusion", "chorale", steps=4, out=out, overrides=overrides, evaluate=False, max_pieces=8, samples=1), progress=False
    )
    assert card["family"] == "diffusion" and [t["name"] for t in card["tracks"]] == ["Alto", "Tenor", "Bass"]
    assert card["training"]["steps"] == 4 and set(card["training"]["final_losses"]) == {"ce", "onset"}
    assert [p["name"] for p in card["params"]] == ["steps", "guidance", "temperature", "guide"]
    assert card["config"]["hidden"] == 16 and card["config"]["window"] == 32
    history = json.loads(history_path(out).read_text())
    assert [row["step"] for row in history["losses"]] == [1, 2, 3, 4] and history["samples"][-1]["step"] == 4
    registry = ModelRegistry(out.parent)
    melody, grid = tunes["four_four.mid"]
    assert len(registry.get("diffusion-chorale").generate(melody, grid, {"steps": 2}, 0)) == 3

    # The page's "step by step" pictures: the roll at noise levels 1 - k/5 of the way down, captioned.
    from studio.serving.service import sampling_trace

    request = AccompanyRequest(
        midi=tune_paths["two_four.mid"], model="diffusion-chorale", seed=1, params={"steps": 10}, out_dir=tmp_path / "trace"
    )
    pictures = sampling_trace(request, registry=registry)
    assert [caption for _, caption in pictures] == [f"step {s} of 10: noise level t = {1 - s / 10:.2f}" for s in (1, 2, 4, 6, 8, 10)]
    assert all(png.read_bytes()[:4] == b"\x89PNG" for png, _ in pictures)


def test_a_few_steps_of_training_lower_the_loss(cache):
    """The training signal: the loss on a fixed batch of chorale windows falls within 40 steps."""
    from models.diffusion import DiffusionTraining
    from studio.core.voices import VoiceWindows, voice_piece
    from studio.training.data import DatasetConfig, build_dataset

    dataset = build_dataset(DatasetConfig("chorale", max_pieces=8), progress=False)
    windows = VoiceWindows([voice_piece(p, [0, 1, 2, 3]) for p in dataset.train], 32)
    torch.manual_seed(0)
    recipe = DiffusionTraining(DiffusionConfig(hidden=32, dilations=(1, 2), time_dim=8, batch_size=8, window=32, lr=3e-3), windows)
    losses = [recipe.step(i, np.random.default_rng(0))["ce"] for i in range(40)]  # the same batch and noise every step
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


shipped = pytest.mark.skipif(not (CHECKPOINTS / "diffusion-chorale.safetensors").exists(), reason="diffusion-chorale is not trained yet")


@shipped
def test_the_shipped_card():
    card = json.loads((CHECKPOINTS / "diffusion-chorale.json").read_text())
    assert (CHECKPOINTS / "diffusion-chorale.safetensors").stat().st_size <= 20 * 2**20
    assert card["family"] == "diffusion" and card["training"]["wall_time_minutes"] <= 30.5
    assert card["training"]["held_out_pieces"] > 0 and card["metrics"]["unseen"]["tunes"] >= 50
    assert card["metrics"]["held_out"]["pieces"] == card["training"]["held_out_pieces"]


@shipped
def test_the_shipped_model_accompanies_unseen_tunes(tune_paths, tmp_path):
    in_key, cons = [], []
    for name in ("four_four.mid", "three_four_pickup.mid", "six_eight_minor.mid"):
        source = tune_paths[name]
        original = read_midi(source).score
        melody = extract_melody(original).track
        grid = make_grid(original, estimate_pickup(melody.notes, original))
        mel = notes_to_roll(melody.notes, grid, "Melody", 0)
        result = accompany(
            AccompanyRequest(midi=source, model="diffusion-chorale", seed=0, out_dir=tmp_path / name, want_wav=False, want_png=False)
        )
        out = read_midi(result.midi_path).score
        assert [(n.start, n.end, n.pitch) for n in out.tracks[0].notes] == [(n.start, n.end, n.pitch) for n in melody.notes]
        voices = [notes_to_roll(t.notes, grid, t.name, t.program) for t in out.tracks[1:]]
        assert [t.name for t in voices] == ["Alto", "Tenor", "Bass"]
        in_key.append(in_key_rate(voices, melody_key(mel)))
        cons.append(consonance(mel, voices))
    assert np.mean(in_key) >= 0.85 and np.mean(cons) >= 0.70, (in_key, cons)


@shipped
def test_the_page_shows_the_denoising_steps(tune_paths, tmp_path):
    from studio.ui import actions as ui_actions

    take = {
        "source": str(tune_paths["two_four.mid"]),
        "model": "diffusion-chorale",
        "seed": 2,
        "params": {"steps": 20},
        "midi": str(tmp_path / "take.mid"),
    }
    pictures, note = ui_actions.sampling_views(take)  # what the page keeps of a take is all it reads
    assert [caption.split(":")[0] for _, caption in pictures] == [f"step {s} of 20" for s in (1, 4, 8, 12, 16, 20)]
    assert "noise" in note and "Gibbs" not in note


@shipped
def test_guidance_pulls_the_voices_toward_the_melody(tunes):
    """Classifier-free guidance does what its help says: stronger guidance, more consonance with the
    melody (measured: +0.05 to +0.11 on each of four unseen tunes, 3 seeds)."""
    from studio.serving.registry import default_registry

    registry = default_registry()
    for name in ("four_four.mid", "six_eight_minor.mid"):
        melody, grid = tunes[name]
        plain, guided = (
            [consonance(melody, registry.generate("diffusion-chorale", melody, grid, {"guidance": g, "steps": 20}, s)) for s in range(2)]
            for g in (0.0, 3.0)
        )
        assert np.mean(guided) > np.mean(plain) + 0.03, (name, plain, guided)


def test_diffusion_chorale_strikes_held_pitches_again_as_seldom_as_bach(tmp_path):
    """Its card's `restrike_keep` (bench/restrikes.py: off the beat it struck held pitches again 20 times
    as often as Bach's voices): the same pitch at every step as the card without it, fewer note
    starts, none new (the passing notes and starts on the eighths, which change pitches, off in both)."""
    from roll_checks import registry_without, starts_dropped, wandering_melody

    card = json.loads((CHECKPOINTS / "diffusion-chorale.json").read_text())
    assert len(card["config"]["restrike_keep"]) == 4 and min(card["config"]["restrike_keep"]) < 0.1
    melody, grid = wandering_melody(48, 240)
    (tmp_path / "thinned").mkdir()
    (tmp_path / "alone").mkdir()
    thinned = registry_without("diffusion-chorale", "passing", tmp_path / "thinned", {"snap": 0.0})
    thinned = thinned.generate("diffusion-chorale", melody, grid, {}, 3)
    alone = registry_without("diffusion-chorale", "restrike_keep", tmp_path / "alone", {"passing": [], "snap": 0.0})
    alone = alone.generate("diffusion-chorale", melody, grid, {}, 3)
    assert starts_dropped(thinned, alone) > 0


@pytest.mark.skipif(not (CHECKPOINTS / "diffusion-chorale.safetensors").exists(), reason="diffusion-chorale is not trained yet")
def test_the_cards_passing_notes_and_eighths_move_its_voices_by_step(tunes, tmp_path):
    """The card's passing notes and starts on the eighths (`config.passing`, `config.snap`): against the
    same card without them, the melody is untouched, the voices move by step more often, and no voice
    crossing or parallel fifth or octave is added."""
    import shutil

    from studio.core.voice_leading import order_voices, piece_counts, voice_notes
    from studio.serving.registry import ModelRegistry

    card = json.loads((CHECKPOINTS / "diffusion-chorale.json").read_text())
    assert len(card["config"]["passing"]) == 4 and card["config"]["snap"] > 0.5
    registries = {}
    for name, values in (("with", {}), ("without", {"passing": [], "snap": 0.0})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "diffusion-chorale.json").write_text(json.dumps({**card, "config": {**card["config"], **values}}))
        shutil.copy(CHECKPOINTS / "diffusion-chorale.safetensors", tmp_path / name)
        registries[name] = ModelRegistry(tmp_path / name)
    steps = {"with": [0, 0], "without": [0, 0]}
    faults = {"with": 0, "without": 0}
    for melody, grid in tunes.values():
        for name, registry in registries.items():
            voices = registry.generate("diffusion-chorale", melody, grid, {}, 0)
            for track in voices:
                moves = np.abs(np.diff([p for _s, _e, p in voice_notes(track)]))
                steps[name][0] += int(((moves >= 1) & (moves <= 2)).sum())
                steps[name][1] += len(moves)
            counts = piece_counts(order_voices(melody, voices))
            faults[name] += counts["crossed_chords"] + counts["parallel_fifths"] + counts["parallel_octaves"]
    assert steps["with"][0] / steps["with"][1] > steps["without"][0] / steps["without"][1]
    assert faults["with"] <= faults["without"]


def test_voices_rest_under_the_melody_only_where_the_genre_s_do_at_their_costs(tunes):
    """A denoiser that would rather rest everywhere: a chorale card's voices sound wherever the melody
    does (and a card that may rest but has no measured costs yet); with `voices_rest` and costs of 0
    they rest there; a high cost for one voice brings that voice alone back."""
    from dataclasses import replace

    melody, grid = tunes["four_four.mid"]
    rows = torch.full((1, 3, 86, grid.n_steps), -10.0)
    rows[:, :, REST] = 2.0  # a rest, by 2 nats over middle C
    rows[:, :, 60 - MODEL_PITCH_LOW + 1] = 0.0
    rows[:, :, 85] = 0.0  # the onset row

    class RestLover(torch.nn.Module):
        def forward(self, x_t, t, cond, previous):
            return rows.expand(x_t.shape[0], -1, -1, -1).clone()

    sings = (melody.velocity > 0).any(axis=1)

    def silent(**settings) -> np.ndarray:
        voices = DiffusionAccompanist(replace(TINY, **settings), RestLover()).generate(
            melody, grid, {"steps": 4, "guidance": 0.0, "guide": 0.0}, 0
        )
        return np.array([~(t.velocity > 0).any(axis=1) for t in voices])[:, sings].mean(axis=1)

    assert (silent() == 0).all() and (silent(voices_rest=True) == 0).all()
    assert (silent(voices_rest=True, rest_costs=(0.0, 0.0, 0.0)) > 0.9).all()
    one = silent(voices_rest=True, rest_costs=(0.0, 10.0, 0.0))
    assert one[1] == 0 and one[0] > 0.9 and one[2] > 0.9

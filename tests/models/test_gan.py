"""models/gan.py with a tiny random network: shapes, any meter and length, seeds, batching, training
steps, and loading through the registry (safetensors + card)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models import gan
from models.gan import GANAccompanist, GANConfig, GANTraining, Generator, Noise, bar_ids
from studio.core.conditioning import melody_end, meter_features
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.voices import VoicePiece, VoiceWindows
from studio.serving.registry import ModelRegistry

TINY = GANConfig(
    hidden=24, dilations=(1, 2), head_hidden=8, head_dilations=(1,), critic_hidden=16, batch_size=4, critic_steps=1, pretrain_steps=1
)


def _grid(num: int, den: int, bars: int, pickup: int = 0) -> Grid:
    full = round(num * 16 / den)
    out, start = [], 0
    if pickup:
        out.append(Bar(0, pickup, num, den))
        start = pickup
    for _ in range(bars):
        out.append(Bar(start, full, num, den))
        start += full
    return Grid(480, start, out)


def _melody(grid: Grid, seed: int = 0) -> RollTrack:
    rng = np.random.default_rng(seed)
    track = RollTrack.empty("Melody", 0, grid.n_steps)
    step = 0
    while step < grid.n_steps:
        length = int(rng.choice([2, 4, 8]))
        track.add_note(step, step + length, int(rng.choice([60, 62, 64, 65, 67, 69, 71, 72])))
        step += length
    return track


@pytest.fixture(scope="module")
def model() -> GANAccompanist:
    torch.manual_seed(0)
    return GANAccompanist(TINY, Generator(TINY))


@pytest.mark.parametrize(("meter", "bars", "pickup"), [((4, 4), 4, 0), ((3, 4), 7, 4), ((6, 8), 5, 6), ((5, 4), 3, 0), ((2, 2), 64, 0)])
def test_generate_any_meter_and_length(model, meter, bars, pickup):
    grid = _grid(*meter, bars, pickup)
    tracks = model.generate(_melody(grid), grid, {"temperature": 0.5, "variety": 1.0}, 3)
    assert [t.name for t in tracks] == list(TINY.voice_names)
    for track in tracks:
        assert track.velocity.shape == (grid.n_steps, 128)
        assert ((track.velocity > 0).sum(1) <= 1).all()  # one note at a time: a voice
        pitches = np.flatnonzero(track.velocity.any(0))
        assert pitches.min(initial=24) >= 24 and pitches.max(initial=107) <= 107
        assert (track.onset <= (track.velocity > 0)).all()


def test_seed_decides_the_music(model):
    grid = _grid(4, 4, 8)
    melody = _melody(grid)
    first = model.generate(melody, grid, {"temperature": 0.7}, 11)
    again = model.generate(melody, grid, {"temperature": 0.7}, 11)
    other = model.generate(melody, grid, {"temperature": 0.7}, 12)
    assert all(np.array_equal(a.velocity, b.velocity) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a.velocity, b.velocity) for a, b in zip(first, other, strict=True))


def test_variety_zero_removes_the_noise_and_argmax_removes_sampling(model):
    grid = _grid(4, 4, 4)
    melody = _melody(grid)
    a = model.generate(melody, grid, {"temperature": 0.0, "variety": 0.0}, 1)
    b = model.generate(melody, grid, {"temperature": 0.0, "variety": 0.0}, 2)
    assert all(np.array_equal(x.velocity, y.velocity) for x, y in zip(a, b, strict=True))


def test_a_batch_gives_each_request_what_it_gets_alone(model):
    requests = []
    for i, (num, den, bars) in enumerate([(4, 4, 4), (3, 4, 9), (6, 8, 2)]):
        grid = _grid(num, den, bars)
        requests.append((_melody(grid, i), grid, {"temperature": 0.8, "variety": 1.0}, 100 + i))
    together = model.generate_batch(requests)
    for request, batched in zip(requests, together, strict=True):
        alone = model.generate(*request)
        for a, b in zip(alone, batched, strict=True):
            assert np.array_equal(a.velocity, b.velocity)


def test_batched_sampling_draws_what_each_request_draws_alone():
    # decode_batch samples a whole batch at once (padded to its longest request) with each
    # request's own generator: per (voice, step), the first event whose cumulative probability
    # passes the request's next uniform number, and the generator left in the same state,
    # whatever the batch; temperature 0 takes the argmax.
    torch.manual_seed(0)
    lengths, temperatures = [40, 17, 33, 40], [0.8, 1.3, 0.0, 0.05]
    logits = torch.randn(4, 3, gan.N_EVENTS, 40) * 3
    ours = [torch.Generator().manual_seed(50 + i) for i in range(4)]
    got = gan.decode_batch(logits, temperatures, lengths, ours)
    for i, (n, temperature) in enumerate(zip(lengths, temperatures, strict=True)):
        reference = torch.Generator().manual_seed(50 + i)
        if temperature > 1e-3:
            probs = torch.softmax(logits[i, :, :, :n].double() / temperature, 1).numpy()  # (3, 86, n)
            uniforms = torch.rand(3, n, generator=reference).numpy()
            events = np.array(
                [[np.searchsorted(np.cumsum(probs[v, :, s]), uniforms[v, s], side="right") for s in range(n)] for v in range(3)]
            )
        else:
            events = logits[i, :, :, :n].argmax(1).numpy()
        voices = [gan.events_to_tokens(row) for row in events]
        assert np.array_equal(got[i][0], np.stack([t for t, _ in voices]))
        assert np.array_equal(got[i][1], np.stack([o for _, o in voices]))
        assert torch.equal(ours[i].get_state(), reference.get_state())


def test_nothing_starts_after_the_melody_ends():
    """From the step where the melody has ended every event is a hold: no note starts, what
    sounds rings on; the steps before, and the random streams, are those of the plain draw."""
    torch.manual_seed(1)
    logits = torch.randn(2, 3, gan.N_EVENTS, 48) * 3
    plain = gan.decode_batch(logits, [0.9, 0.0], [48, 48], [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)])
    streams = [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]
    ended = gan.decode_batch(logits, [0.9, 0.0], [48, 48], streams, ends=[30, 41])
    for (tokens, onsets), (tokens0, onsets0), end in zip(ended, plain, [30, 41], strict=True):
        assert onsets0[:, end:].any()  # the plain draw does start notes there
        assert not onsets[:, end:].any()
        assert np.array_equal(tokens[:, :end], tokens0[:, :end]) and np.array_equal(onsets[:, :end], onsets0[:, :end])
        assert (tokens[:, end:] == tokens[:, end - 1 : end]).all()  # held (a note rings on, a rest stays silent)
    assert torch.equal(streams[0].get_state(), plain_state(7, 3 * 48))
    assert melody_end(np.array([0, 5, 5, 0, 9, 0, 0])) == 5 and melody_end(np.zeros(4, np.int64)) == 4


def _steady_case(steadiness: float, seed: int, logits: torch.Tensor, bars: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return gan.decode_batch(logits[None], [0.9], [logits.shape[-1]], [torch.Generator().manual_seed(seed)], None, [steadiness], bars[None])[
        0
    ]


def test_steadiness_repeats_a_voice_s_pitch_within_a_bar_and_keeps_the_rhythm():
    """At steadiness 1 a voice takes its pitch at one quantile per bar: where the odds are the same
    at every step (a harmony that stands still) each note of the bar has the same pitch, a new bar
    may bring another; the rhythm (which steps start, hold or rest) is the draw made without it."""
    torch.manual_seed(2)
    step_odds = torch.randn(3, gan.N_EVENTS, 1) * 2
    logits = step_odds.expand(-1, -1, 64).clone()
    logits[:, gan.HOLD] = 0.5  # plenty of note starts to compare
    bars = torch.arange(64) // 16
    plain_tokens, plain_onsets = _steady_case(0.0, 3, logits, bars)
    tokens, onsets = _steady_case(1.0, 3, logits, bars)
    assert np.array_equal(onsets, plain_onsets) and np.array_equal(tokens == gan.REST, plain_tokens == gan.REST)
    per_bar = [{int(p) for p in tokens[v, b * 16 : (b + 1) * 16][onsets[v, b * 16 : (b + 1) * 16]]} for v in range(3) for b in range(4)]
    assert all(len(pitches) <= 1 for pitches in per_bar) and sum(bool(p) for p in per_bar) >= 8
    plain = [
        {int(p) for p in plain_tokens[v, b * 16 : (b + 1) * 16][plain_onsets[v, b * 16 : (b + 1) * 16]]} for v in range(3) for b in range(4)
    ]
    assert max(len(p) for p in plain) >= 3  # drawn afresh, a bar wanders among the likely pitches
    assert len(set().union(*per_bar)) >= 2  # and the bars are not all alike


def test_steadiness_keeps_each_note_s_odds():
    """The pitch of a note is drawn at its own odds whatever the steadiness (the copula's numbers are
    each uniform), and whether a note starts at all is the plain draw: over many seeds the notes
    starting at a step follow the same distribution."""
    logits = torch.full((1, gan.N_EVENTS, 8), -30.0)
    odds = {gan.REST: 0.2, gan.HOLD: 0.2, gan.FIRST_PITCH: 0.3, gan.FIRST_PITCH + 12: 0.18, gan.FIRST_PITCH + 17: 0.12}
    for event, p in odds.items():
        logits[0, event] = float(np.log(p))
    bars = torch.zeros(8, dtype=torch.long)
    for steadiness in (0.0, 0.6, 1.0):
        pitches = []
        for seed in range(800):
            tokens, onsets = gan.decode_batch(
                logits[None], [1.0], [8], [torch.Generator().manual_seed(seed)], None, [steadiness], bars[None]
            )[0]
            if onsets[0, 5]:
                pitches.append(int(tokens[0, 5]) - 1)  # token = pitch index + 1
        share = np.array([pitches.count(k) for k in (0, 12, 17)]) / len(pitches)
        assert abs(len(pitches) / 800 - 0.6) < 0.06 and np.allclose(share, [0.5, 0.3, 0.2], atol=0.07), (steadiness, len(pitches), share)


def test_a_batch_with_mixed_steadiness_gives_each_request_what_it_gets_alone(model):
    requests = []
    for i, (num, den, bars, steadiness) in enumerate([(4, 4, 4, 0.0), (3, 4, 9, 0.75), (6, 8, 2, 1.0), (5, 4, 3, 0.3)]):
        grid = _grid(num, den, bars)
        requests.append((_melody(grid, i), grid, {"temperature": 0.8, "steadiness": steadiness}, 200 + i))
    together = model.generate_batch(requests)
    for request, batched in zip(requests, together, strict=True):
        alone = model.generate(*request)
        assert all(np.array_equal(a.velocity, b.velocity) and np.array_equal(a.onset, b.onset) for a, b in zip(alone, batched, strict=True))
    unsteady = model.generate(requests[2][0], requests[2][1], {"temperature": 0.8, "steadiness": 0.0}, 202)
    assert any(not np.array_equal(a.velocity, b.velocity) for a, b in zip(unsteady, together[2], strict=True))


def plain_state(seed: int, draws: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    torch.rand(draws, generator=generator)
    return generator.get_state()


def test_sampling_follows_the_tempered_probabilities():
    """Over many draws each event comes up as often as softmax(logits / temperature) says (here
    three note starts, so every step starts a note whose token tells which event was drawn)."""
    steps = 20000
    logits = torch.full((1, 1, gan.N_EVENTS, steps), -40.0)
    logits[0, 0, 2:5] = torch.tensor([3.0, 0.0, 1.0])[:, None]
    for temperature in (0.7, 1.0):
        want = torch.softmax(torch.tensor([3.0, 0.0, 1.0]) / temperature, 0).numpy()
        tokens, onsets = gan.decode_batch(logits, [temperature], [steps], [torch.Generator().manual_seed(1)])[0]
        assert onsets.all()
        counts = np.bincount(tokens[0], minlength=gan.N_TOKENS)
        assert counts.sum() == steps and counts[1:4].sum() == steps  # event 2 + k starts token 1 + k
        np.testing.assert_allclose(counts[1:4] / steps, want, atol=4 * np.sqrt(0.25 / steps))  # 4 standard errors at most


def test_a_batch_of_one_length_runs_without_a_mask(model, monkeypatch):
    # nothing is padded, so no mask is multiplied in: the plain pass, exactly as a request alone
    masks = []
    forward = model.generator.forward
    monkeypatch.setattr(model.generator, "forward", lambda *args: masks.append(args[3]) or forward(*args))
    grid = _grid(4, 4, 4)
    requests = [(_melody(grid, i), grid, {"temperature": 0.8}, i) for i in range(3)]
    model.generate_batch(requests)
    longer = _grid(4, 4, 5)
    model.generate_batch([*requests, (_melody(longer), longer, {"temperature": 0.8}, 9)])
    assert masks[0] is None and masks[1] is not None and masks[1].shape == (4, 1, longer.n_steps)


def test_bar_ids_and_noise_shapes():
    grid = _grid(3, 4, 3, pickup=4)
    meter = torch.from_numpy(meter_features(grid))[None]
    ids = bar_ids(meter)[0].tolist()
    assert ids[:4] == [0] * 4 and ids[4] == 1 and ids[-1] == 3
    noise = Noise.sample(TINY, 2, 4, torch.Generator().manual_seed(0))
    assert noise.bar.shape == (2, 4, TINY.z_bar) and noise.voice_bar.shape == (2, 3, 4, TINY.z_voice_bar)


def _toy_windows() -> VoiceWindows:
    grid = _grid(4, 4, 8)
    rng = np.random.default_rng(0)
    pieces = []
    for i in range(3):
        tokens = np.zeros((4, grid.n_steps), np.int64)
        for v, base in enumerate((50, 45, 40, 30)):
            tokens[v] = base + rng.integers(0, 7, grid.n_steps // 4).repeat(4)
        onsets = np.zeros_like(tokens, bool)
        onsets[:, ::4] = True
        pieces.append(VoicePiece(f"p{i}", tokens, onsets, meter_features(grid), np.array([b.start for b in grid.bars])))
    return VoiceWindows(pieces, 64, (-3, 3))


def test_training_steps_update_both_networks():
    torch.manual_seed(0)
    training = GANTraining(TINY, _toy_windows())
    before = {k: v.clone() for k, v in training.generator.state_dict().items()}
    critic_before = {k: v.clone() for k, v in training.critic.state_dict().items()}
    rng = np.random.default_rng(0)
    for step in range(3):
        losses = training.step(step, rng)
    assert set(losses) == {"critic", "generator", "wasserstein", "penalty", "reconstruction", "dissonance_gap"}
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(before[k], v) for k, v in training.generator.state_dict().items())
    assert any(not torch.equal(critic_before[k], v) for k, v in training.critic.state_dict().items())
    assert set(training.export()) == set(before)


def test_registry_loads_safetensors_and_card(tmp_path):
    torch.manual_seed(0)
    generator = Generator(TINY)
    save_file({k: v.contiguous() for k, v in generator.state_dict().items()}, str(tmp_path / "gan-toy.safetensors"))
    card = {
        "name": "gan-toy",
        "family": "gan",
        "genre": "toy",
        "description": "test",
        "tracks": [],
        "params": gan.PARAMS,
        "config": TINY.to_json(),
    }
    (tmp_path / "gan-toy.json").write_text(json.dumps(card))
    registry = ModelRegistry(tmp_path, device="cpu")
    grid = _grid(4, 4, 4)
    tracks = registry.generate("gan-toy", _melody(grid), grid, {}, 0)
    assert len(tracks) == 3
    direct = GANAccompanist(TINY, generator).generate(_melody(grid), grid, {"temperature": 0.8, "variety": 1.0}, 0)
    assert all(np.array_equal(a.velocity, b.velocity) for a, b in zip(tracks, direct, strict=True))


def test_a_corrupt_checkpoint_disables_only_that_model(tmp_path):
    card = {
        "name": "gan-bad",
        "family": "gan",
        "genre": "toy",
        "description": "test",
        "tracks": [],
        "params": gan.PARAMS,
        "config": TINY.to_json(),
    }
    (tmp_path / "gan-bad.json").write_text(json.dumps(card))
    (tmp_path / "gan-bad.safetensors").write_bytes(b"not a safetensors file")
    registry = ModelRegistry(tmp_path, device="cpu")
    grid = _grid(4, 4, 2)
    from studio.core.errors import ModelError

    with pytest.raises(ModelError, match="gan-bad is unavailable"):
        registry.generate("gan-bad", _melody(grid), grid, {}, 0)


def test_dissonance_share_counts_what_the_consonance_metric_counts():
    """The training's consonance feature match measures exactly 1 - `studio.core.metrics.consonance`."""
    from models.gan import dissonance_share, one_hot_voices
    from studio.core.conditioning import track_to_tokens
    from studio.core.metrics import consonance

    rng = np.random.default_rng(3)
    n = 64
    melody = RollTrack.empty("Melody", 0, n)
    step = 0
    while step < n - 2:  # notes and rests of random lengths
        length = int(rng.integers(1, 5))
        if rng.random() < 0.8:
            melody.add_note(step, min(n, step + length), int(rng.integers(55, 80)))
        step += length
    voices = []
    for v in range(3):
        track = RollTrack.empty(f"v{v}", 0, n)
        for start in range(0, n, 4):
            if rng.random() < 0.85:
                track.add_note(start, start + int(rng.integers(1, 5)), int(rng.integers(36, 72)))
        voices.append(track)
    tokens, onsets = zip(*(track_to_tokens(t) for t in [melody, *voices]), strict=True)
    tokens_t = torch.from_numpy(np.stack(tokens))[None]  # (1, 4, T)
    onehot = one_hot_voices(tokens_t)
    starts = torch.from_numpy(np.asarray(onsets[0], np.float32))[None] * (tokens_t[:, 0] != 0).float()
    share = float(dissonance_share(onehot[:, 1:], onehot[:, 0], starts))
    assert 0.05 < share < 0.95
    assert share == pytest.approx(1.0 - consonance(melody, voices), abs=1e-6)


@pytest.mark.parametrize("meter", [(4, 4, 1), (3, 4, 2), (6, 8, 0)])
def test_bar_texture_counts_what_the_musegan_metrics_count(meter):
    """The training's texture match measures `empty_bar_rate` and `used_pitch_classes` (any meter,
    a partial first bar too), pooled over voices: the same bars and pitch classes."""
    from models.gan import bar_texture, one_hot_voices
    from studio.core.conditioning import context_features, meter_features, track_to_tokens
    from studio.core.metrics import empty_bar_rate, used_pitch_classes

    num, den, pickup = meter
    grid = _grid(num, den, 6, pickup)
    rng = np.random.default_rng(num * 10 + pickup)
    voices = []
    for v in range(3):
        track = RollTrack.empty(f"v{v}", 0, grid.n_steps)
        for bar in grid.bars:
            if rng.random() < 0.35:  # a silent bar
                continue
            for start in range(bar.start, bar.end, 4):
                if rng.random() < 0.7:
                    track.add_note(start, min(bar.end, start + int(rng.integers(1, 5))), int(rng.integers(36, 72)))
        voices.append(track)
    tokens = torch.from_numpy(np.stack([track_to_tokens(t)[0] for t in voices]))[None]
    context = torch.from_numpy(context_features(meter_features(grid), np.zeros(12, np.float32)))[None]
    empty, upc = bar_texture(one_hot_voices(tokens), bar_ids(context))
    rates = [empty_bar_rate(t, grid) for t in voices]
    assert 0.1 < np.mean(rates) < 0.7
    assert float(empty) == pytest.approx(np.mean(rates), abs=1e-6)
    counts = [used_pitch_classes(t, grid) * round(len(grid.bars) * (1 - r)) for t, r in zip(voices, rates, strict=True)]
    sounding = sum(round(len(grid.bars) * (1 - r)) for r in rates)
    assert float(upc) == pytest.approx(sum(counts) / sounding, abs=1e-5)


@pytest.mark.parametrize(("dilation", "groups"), [(1, 1), (4, 1), (2, 3)])
def test_conv_steps_is_the_conv1d_it_borrows_its_weights_from(dilation, groups):
    """The generator runs its Conv1d layers as 2-D convolutions over channels-last (B, C, 1, T)
    activations: the same function of the same weights (the checkpoints' format)."""
    from models.gan import StepNorm, conv_steps, steps_last

    torch.manual_seed(dilation * 10 + groups)
    conv = torch.nn.Conv1d(12, 24, 3, padding=dilation, dilation=dilation, groups=groups)
    x = torch.randn(2, 12, 40)
    got = conv_steps(steps_last(x), conv)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.squeeze(2), conv(x), atol=1e-5, rtol=1e-5)
    norm = StepNorm(12)
    torch.nn.init.normal_(norm.norm.weight)
    want = torch.nn.functional.layer_norm(x.transpose(1, 2), (12,), norm.norm.weight, norm.norm.bias).transpose(1, 2)
    torch.testing.assert_close(norm(steps_last(x)).squeeze(2), want, atol=1e-5, rtol=1e-5)


def test_a_voice_heads_norm_is_per_step_and_per_voice():
    """The private heads normalize each voice's channels at each step (not over time, as GroupNorm would)."""
    from models.gan import ResBlock, steps_last

    torch.manual_seed(0)
    block = ResBlock(24, 6, 1, groups=3)
    torch.nn.init.normal_(block.norm.weight)
    torch.nn.init.normal_(block.norm.bias)
    x = torch.randn(2, 24, 30) * 3 + 1
    g = x.view(2, 3, 8, 30)
    want = ((g - g.mean(2, keepdim=True)) / torch.sqrt(g.var(2, keepdim=True, unbiased=False) + 1e-5)).view(2, 24, 30)
    want = want * block.norm.weight[None, :, None] + block.norm.bias[None, :, None]
    torch.testing.assert_close(block._norm(steps_last(x)).squeeze(2), want, atol=1e-5, rtol=1e-5)

"""The VAE (models/vae.py): the step tokens and windows of any meter and pickup, the network's
mechanics on small networks (one untrained, one trained for a few seconds on synthetic tunes), the
service's variations (then accompanied: the REWRITTEN melody), interpolation through the service,
the CLI and the API, and the shipped `vae-folk` on sample melodies."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models import vae as V
from models.vae import (
    HOLD,
    PITCH0,
    REST,
    MelodyVAE,
    VAEConfig,
    VAETraining,
    Varier,
    Windows,
    melody_tokens,
    slerp,
    step_features,
    tokens_to_notes,
    track_notes,
    window_spans,
)
from studio.core.errors import InputError
from studio.core.metrics import in_key_rate, melody_key
from studio.core.midi import read_midi, write_midi
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.score import Note, Score, TimeSignature, Track
from studio.serving.registry import ModelRegistry
from studio.serving.service import AccompanyRequest, InterpolateRequest, accompany, interpolate, read_melody

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "models" / "checkpoints"
SAMPLES = REPO / "assets" / "melodies"
TINY = VAEConfig(
    z_dim=16,
    embed=32,
    enc_hidden=48,
    dec_hidden=96,
    batch_size=32,
    lr=8e-3,
    lr_decay=1.0,
    beta=0.05,
    beta_steps=100,
    free_bits=8.0,
    token_dropout=0.0,
)

# A 3/4 tune with a one-beat pickup: (start, end, pitch) in 16ths.
PICKUP_BARS = [Bar(0, 4, 3, 4)] + [Bar(4 + 12 * i, 12, 3, 4) for i in range(4)]
PICKUP_NOTES = [(0, 2, 67), (2, 4, 69), (4, 8, 71), (8, 12, 72), (12, 16, 74), (16, 28, 76), (28, 31, 74), (31, 32, 72), (40, 52, 71)]


def _melody(notes, n_steps) -> RollTrack:
    track = RollTrack.empty("Melody", 0, n_steps)
    for s, e, p in notes:
        track.add_note(s, e, p, 80)
    return track


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small networks on a shared 2-core machine: one thread is several times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- tokens and windows


def test_tokens_round_trip_one_line():
    tokens = melody_tokens(PICKUP_NOTES, 52)
    assert tokens[0] == PITCH0 + 67 - 24 and tokens[1] == HOLD and tokens[32] == REST
    assert tokens_to_notes(tokens) == PICKUP_NOTES
    # overlapping notes become one line (a note ends where the next starts); outside pitches move by octaves
    assert tokens_to_notes(melody_tokens([(0, 8, 60), (4, 6, 62), (6, 9, 120)], 10)) == [(0, 4, 60), (4, 6, 62), (6, 9, 108 - 12)]
    # a HOLD after a rest is silence; a HOLD first continues what was sounding before the window
    assert tokens_to_notes([REST, HOLD, PITCH0, HOLD]) == [(2, 4, 24)]
    assert tokens_to_notes([HOLD, HOLD, REST], offset=8, sounding=(6, 70)) == [(6, 10, 70)]


def test_windows_of_any_meter_cover_every_bar_once():
    assert window_spans(PICKUP_BARS) == [(0, 16), (16, 40), (40, 52)]  # the pickup with its first bar
    six_four = [Bar(24 * i, 24, 6, 4) for i in range(3)]  # two bars would be 48 16ths: one bar a window
    assert window_spans(six_four) == [(0, 24), (24, 48), (48, 72)]
    long_bar = [Bar(0, 48, 12, 4), Bar(48, 48, 12, 4)]  # longer than a window: cut in equal pieces
    assert window_spans(long_bar) == [(0, 24), (24, 48), (48, 72), (72, 96)]
    assert window_spans(PICKUP_BARS, every_bar=True) == [(0, 16), (4, 28), (16, 40), (28, 52), (40, 52)]
    features = step_features(Grid(4, 52, PICKUP_BARS))
    assert features[0, 0] == 8 and features[2, 0] == 1  # the pickup sits on beat 3 of its bar
    assert features[0, 4] == 0 and features[2, 4] == 2 and features[1, 4] == 12


def test_slerp_ends_are_exact():
    a, b = torch.randn(16), torch.randn(16)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert abs(float(mid.norm()) - float((a.norm() + b.norm()) / 2)) < 1e-4


# --------------------------------------------------------------------------- mechanics (untrained)


@pytest.fixture(scope="module")
def untrained() -> Varier:
    torch.manual_seed(0)
    return Varier(TINY, MelodyVAE(TINY))


@pytest.mark.parametrize("meter", [(4, 4, 16, 0), (3, 4, 12, 4), (6, 8, 12, 6), (5, 4, 20, 0), (12, 4, 48, 0)])
def test_variations_have_the_melodys_grid_in_any_meter(untrained, meter):
    num, den, length, pickup = meter
    bars = ([Bar(0, pickup, num, den)] if pickup else []) + [Bar(pickup + length * i, length, num, den) for i in range(5)]
    n = bars[-1].end
    notes = [(s, s + 2, 60 + (s // 2) % 7) for s in range(0, n, 2)]
    out = untrained.generate(_melody(notes, n), Grid(4, n, bars), {"how_far": 1.0}, seed=1)
    assert len(out) == 1 and out[0].role == "melody" and out[0].n_steps == n
    sounding = out[0].velocity > 0
    assert sounding.sum(1).max() <= 1  # one line
    assert out[0].velocity[sounding].min() == 80  # the input's loudness


def test_the_loss_trains_and_the_greedy_decoder_respects_lengths(untrained):
    windows = Windows.cut(
        melody_tokens(PICKUP_NOTES, 52),
        step_features(Grid(4, 52, PICKUP_BARS)),
        V.key_profile(melody_tokens(PICKUP_NOTES, 52)),
        window_spans(PICKUP_BARS),
        TINY.max_steps,
    )
    decoded = untrained.reconstruct(windows)
    assert decoded.shape == (3, 32)
    for row, k in zip(decoded, windows.length, strict=True):
        assert (row[k:] == V.PAD).all() and (row[:k] != V.PAD).all()
        assert not any(a == REST and b == HOLD for a, b in itertools.pairwise(row[:k]))  # no HOLD after a rest
    recipe = VAETraining(TINY, windows, (0, 0))
    loss, report = recipe.loss(windows.tensors("cpu"), step=0)
    assert loss.requires_grad and {"recon", "kl", "accuracy"} <= set(report)


def test_the_greedy_decoder_steps_only_as_far_as_the_longest_window(untrained):
    """A meter of very short bars (1/128: a step each) makes windows of two steps: decoding them
    takes two decoder steps, not the window width's 32 (the fuzzer's 80,000-bar file took seconds)."""
    bars = [Bar(i, 1, 1, 128) for i in range(40)]
    notes = [(i, i + 1, 60 + i % 5) for i in range(40)]
    tokens = melody_tokens(notes, 40)
    windows = Windows.cut(tokens, step_features(Grid(4, 40, bars)), V.key_profile(tokens), window_spans(bars), TINY.max_steps)
    assert len(windows) == 20 and set(windows.length) == {2}
    steps = []
    hook = untrained.network.decoder.register_forward_hook(lambda *_: steps.append(1))
    try:
        decoded = untrained.reconstruct(windows)
    finally:
        hook.remove()
    assert len(steps) == 2 and decoded.shape == (20, 32)
    assert (decoded[:, 2:] == V.PAD).all() and (decoded[:, :2] != V.PAD).all()
    # the same windows beside one full window decode alike: stopping early changes no token
    full = Windows.join(
        [
            windows,
            Windows.cut(
                melody_tokens(PICKUP_NOTES, 52),
                step_features(Grid(4, 52, PICKUP_BARS)),
                V.key_profile(melody_tokens(PICKUP_NOTES, 52)),
                window_spans(PICKUP_BARS),
                TINY.max_steps,
            ),
        ]
    )
    assert (untrained.reconstruct(full)[:20] == decoded).all()


# --------------------------------------------------------------------------- a tiny VAE that learned a few tunes


def _tunes(n: int = 8):
    """`n` one-track pieces (phrases in 3/4 and 6/8 and 4/4 with a pickup) shaped like studio.training.melodies' tunes."""
    from studio.training.data import Dataset, Piece
    from studio.training.melodies import MelodyDatasetConfig

    rng = np.random.default_rng(0)
    pieces = []
    for i in range(n):
        num, den, length, pickup = ((3, 4, 12, 0), (6, 8, 12, 0), (4, 4, 16, 4))[i % 3]
        bars = ([Bar(0, pickup, num, den)] if pickup else []) + [Bar(pickup + length * b, length, num, den) for b in range(4)]
        tonic = 60 + int(rng.integers(-3, 4))
        scale = (0, 2, 4, 5, 7, 9, 11, 12)
        rows, s = [], 0
        while s < bars[-1].end:
            d = int(rng.choice([2, 2, 4, 6]))
            rows.append((0, s, min(s + d, bars[-1].end), tonic + scale[int(rng.integers(0, 8))], 80))
            s += d
        pieces.append(
            Piece(
                f"tune{i}",
                "synthetic",
                "folk",
                Grid(4, bars[-1].end, bars),
                ("Melody",),
                (0,),
                (False,),
                np.array(rows, np.int32),
                "C major",
                f"{num}/{den}",
                len(bars),
                f"group{i}",
            )
        )
    return Dataset(MelodyDatasetConfig(), pieces, pieces[:2], [], {"sources": n})


@pytest.fixture(scope="module")
def trained() -> tuple[Varier, list]:
    """A tiny VAE trained for a few seconds on 8 synthetic tunes (no transposition): it remembers them."""
    torch.manual_seed(0)
    data = _tunes()
    recipe = VAETraining(TINY, V.tune_windows(data.train, TINY, every_bar=True), (0, 0))
    rng = np.random.default_rng(0)
    for step in range(200):
        recipe.step(step, rng)
    return recipe.accompanist(), data.train


def _roll(piece) -> tuple[RollTrack, Grid]:
    return piece.tracks[0], piece.grid


def test_how_far_zero_gives_the_tunes_back(trained):
    model, tunes = trained
    for piece in tunes:
        melody, grid = _roll(piece)
        out = model.generate(melody, grid, {"how_far": 0.0}, seed=5)[0]
        assert track_notes(out) == track_notes(melody)


def test_distance_grows_with_how_far_and_seeds_decide(trained):
    model, tunes = trained
    levels = (0.0, 0.5, 1.0, 2.0, 4.0)
    distance = {h: [] for h in levels}
    for piece in tunes:
        melody, grid = _roll(piece)
        before = melody_tokens(track_notes(melody), grid.n_steps)
        for seed in range(4):
            for h in levels:
                after = melody_tokens(track_notes(model.generate(melody, grid, {"how_far": h}, seed)[0]), grid.n_steps)
                distance[h].append(float((before != after).mean()))
    means = [np.mean(distance[h]) for h in levels]
    # Never shrinks, and grows over the range; a small step (0 -> 0.5) may still decode to the input
    # itself on this tiny model (it does on CUDA), so strict growth is asked of the wider steps.
    assert means[0] == 0.0 and all(a <= b for a, b in itertools.pairwise(means)), means
    assert means[1] < means[2] < means[3] < means[4], means
    melody, grid = _roll(tunes[0])
    a, b, c = (model.generate(melody, grid, {"how_far": 3.0}, s)[0] for s in (1, 1, 2))
    assert np.array_equal(a.velocity, b.velocity) and not np.array_equal(a.velocity, c.velocity)


def test_interpolation_starts_and_ends_at_the_two_melodies(trained):
    model, tunes = trained
    (ma, ga), (mb, gb) = _roll(tunes[2]), _roll(tunes[4])  # 4/4 with a pickup, then 3/4
    found = model.interpolate(ma, ga, mb, gb, 5)
    assert found.start_kept == 1.0 and found.end_kept == 1.0
    first, last = found.segments[0], found.segments[-1]
    # the pickup is left out: the way starts at the first full bars
    assert first.notes == tokens_to_notes(melody_tokens(track_notes(ma), ga.n_steps)[4:36])
    assert last.notes == tokens_to_notes(melody_tokens(track_notes(mb), gb.n_steps)[:24])
    assert [s.n_steps for s in found.segments] == [32, 32, 24, 24, 24]  # the first melody's frame, then the second's
    assert [(b.numerator, b.denominator) for b in found.segments[1].bars] == [(4, 4)] * 2
    with pytest.raises(InputError, match="2 to 64 steps"):
        model.interpolate(ma, ga, mb, gb, 1)


# --------------------------------------------------------------------------- the service, the CLI and the API


def _midi_of(piece, path: Path) -> Path:
    """A piece as a MIDI file (its meter written out; a pickup as a first bar of its own meter)."""
    grid = piece.grid
    tpb = 480
    notes = [Note(s * 120, e * 120, p, 80) for _t, s, e, p, _v in piece.notes.tolist()]
    first = grid.bars[0]
    signatures = [TimeSignature(0, first.numerator, first.denominator)]
    if first.length < first.full_length:  # the pickup as a bar of its own length, then the meter
        signatures = [
            TimeSignature(0, first.length // 4 if first.length % 4 == 0 else first.length, 4 if first.length % 4 == 0 else 16),
            TimeSignature(first.length * 120, grid.bars[1].numerator, grid.bars[1].denominator),
        ]
    path.write_bytes(write_midi(Score(tpb, [Track("Melody", notes=notes)], time_signatures=signatures)))
    return path


@pytest.fixture(scope="module")
def tiny_registry(trained, tmp_path_factory) -> ModelRegistry:
    """The rules baseline and the tiny trained VAE as `vae-tiny`."""
    from safetensors.torch import save_file

    model = trained[0]
    folder = tmp_path_factory.mktemp("checkpoints")
    shutil.copy(CHECKPOINTS / "rules.json", folder / "rules.json")
    save_file({k: v.contiguous() for k, v in model.network.state_dict().items()}, str(folder / "vae-tiny.safetensors"))
    card = {
        "name": "vae-tiny",
        "family": "vae",
        "genre": "folk",
        "description": "tiny, for tests",
        "tracks": [{"name": "Melody", "program": 0}],
        "params": V.PARAMS,
        "config": TINY.to_json(),
    }
    (folder / "vae-tiny.json").write_text(json.dumps(card))
    return ModelRegistry(folder, device="cpu")


def test_variations_through_the_service_then_accompany_the_rewritten_melody(tiny_registry, trained, tmp_path):
    _model, tunes = trained
    source = _midi_of(tunes[0], tmp_path / "tune.mid")
    read = read_melody(AccompanyRequest(midi=source))
    result = accompany(
        AccompanyRequest(midi=source, model="vae-tiny", seed=3, params={"how_far": 2.5}, then="rules", out_dir=tmp_path, want_wav=False),
        registry=tiny_registry,
    )
    melody = result.score.tracks[0]
    assert [(n.start, n.pitch) for n in melody.notes] != [(n.start, n.pitch) for n in read.melody.notes]  # a variation
    assert any("rewrote the melody" in w for w in result.notes) and result.then == "rules"
    # the accompaniment is the rules' accompaniment of the variation, not of the input
    variation = tiny_registry.generate("vae-tiny", read.roll, read.grid, {"how_far": 2.5}, 3)[0]
    expected = tiny_registry.generate("rules", variation, read.grid, {}, 3)
    of_input = tiny_registry.generate("rules", read.roll, read.grid, {}, 3)
    got = [[(n.start, n.end, n.pitch) for n in t.notes] for t in result.score.tracks[1:]]
    from studio.core.roll import roll_to_notes

    assert got == [[(n.start, n.end, n.pitch) for n in roll_to_notes(t, read.grid)] for t in expected]
    assert got != [[(n.start, n.end, n.pitch) for n in roll_to_notes(t, read.grid)] for t in of_input]


def test_interpolation_through_the_service(tiny_registry, trained, tmp_path):
    _model, tunes = trained
    a, b = _midi_of(tunes[1], tmp_path / "a.mid"), _midi_of(tunes[6], tmp_path / "b.mid")  # 6/8 and 3/4
    assert [read_melody(AccompanyRequest(midi=f)).grid.bars[:2] for f in (a, b)] == [
        tunes[1].grid.bars[:2],
        tunes[6].grid.bars[:2],
    ]  # no pickup seen
    result = interpolate(
        InterpolateRequest(first=a, second=b, model="vae-tiny", steps=4, out_dir=tmp_path, want_wav=False), registry=tiny_registry
    )
    assert result.metrics["start_kept"] == 1.0 and result.metrics["end_kept"] == 1.0
    back = read_midi(result.midi_path).score
    assert [(s.numerator, s.denominator) for s in back.time_signatures] == [(6, 8), (3, 4)]
    assert len(result.bar_ticks) == 2 * 4 and result.png_path.read_bytes()[:4] == b"\x89PNG"
    ticks = 480 // 4
    first = sorted((n.start // ticks, n.end // ticks, n.pitch) for n in back.tracks[0].notes if n.start < 24 * ticks)
    assert first == [(s, min(e, 24), p) for s, e, p in track_notes(tunes[1].tracks[0]) if s < 24]
    with pytest.raises(InputError, match="steps must be between 2 and 16"):
        interpolate(InterpolateRequest(first=a, second=b, model="vae-tiny", steps=40, out_dir=tmp_path), registry=tiny_registry)
    with pytest.raises(InputError, match="rules cannot interpolate"):
        interpolate(InterpolateRequest(first=a, second=b, model="rules", out_dir=tmp_path), registry=tiny_registry)
    with pytest.raises(InputError, match=r"^the second melody: "):
        interpolate(InterpolateRequest(first=a, second=b"not a midi file", model="vae-tiny", out_dir=tmp_path), registry=tiny_registry)


def test_latent_views_show_the_variation_and_where_its_codes_went(tiny_registry, trained, tmp_path):
    from studio.serving.service import latent_views

    source = _midi_of(trained[1][6], tmp_path / "tune.mid")
    request = AccompanyRequest(midi=source, model="vae-tiny", seed=2, params={"how_far": 2.0}, out_dir=tmp_path)
    views = latent_views(request, registry=tiny_registry)
    assert [caption for _p, caption in views] == [
        "the variation over your melody",
        "where each two bars sit in the latent space, and where the variation moved them",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p, _c in views)
    assert latent_views(AccompanyRequest(midi=source, model="rules", out_dir=tmp_path), registry=tiny_registry) == []
    # the map is the take's own variation: same seed, same codes decoded
    melody, grid = _roll(trained[1][6])
    found = trained[0].latent_map(melody, grid, {"how_far": 2.0}, 2)
    assert found["mu"].shape == found["z"].shape == (len(found["spans"]), TINY.z_dim)
    assert np.allclose(
        found["z"],
        found["mu"] + 2.0 * found["sigma"] * torch.randn(found["mu"].shape, generator=torch.Generator().manual_seed(2)).numpy(),
        atol=1e-5,
    )


def test_the_training_loop_trains_and_ships_a_checkpoint(monkeypatch, tmp_path):
    from studio.training.train import TrainConfig, run_training

    monkeypatch.setattr("studio.training.train.melody_dataset", lambda genre, max_pieces=None, progress=True: _tunes(10))
    overrides = {k: v for k, v in TINY.to_json().items() if k in ("z_dim", "embed", "enc_hidden", "dec_hidden", "batch_size", "free_bits")}
    card = run_training(
        TrainConfig(
            "vae",
            "folk",
            steps=40,
            out=tmp_path / "vae-test",
            overrides=overrides,
            evaluate=False,
            run_dir=tmp_path / "run",
            validation=0.2,
            validate_every_s=0.0,
            samples=2,
        ),
        progress=False,
    )
    history = json.loads((tmp_path / "training" / "vae-test.json").read_text())
    assert {"recon", "kl"} <= set(history["losses"][-1]) and "error_rate" in history["validation"][0]
    assert card["config"]["z_dim"] == TINY.z_dim and card["params"] == V.PARAMS
    loaded = ModelRegistry(tmp_path, device="cpu").get("vae-test")
    melody, grid = _melody(PICKUP_NOTES, 52), Grid(4, 52, PICKUP_BARS)
    assert loaded.generate(melody, grid, {}, 0)[0].n_steps == 52


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_cli_interpolates_and_refuses_bad_input_in_one_line(tmp_path):
    a, b = SAMPLES / "alle_meine_entchen.mid", SAMPLES / "yankee_doodle.mid"
    done = _cli("interpolate", str(a), str(b), "--model", "vae-folk", "--steps", "3", "--out-midi", str(tmp_path / "way.mid"))
    assert done.returncode == 0, done.stderr
    assert "in 3 steps" in done.stdout and read_midi(tmp_path / "way.mid").score.tracks[0].notes
    for bad in (
        ["interpolate", str(a), str(tmp_path / "missing.mid")],
        ["interpolate", str(a), str(b), "--steps", "99"],
        ["interpolate", str(a), str(b), "--model", "rules"],
        ["interpolate", str(a)],
    ):
        done = _cli(*bad)
        assert done.returncode == 2, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_interpolate_api(server, tmp_path):
    from gradio_client import Client, handle_file

    a, b = SAMPLES / "bobby_shaftoe.mid", SAMPLES / "god_save_the_king.mid"
    client = Client(server, verbose=False)
    _wav, png, midi = client.predict(handle_file(str(a)), handle_file(str(b)), "vae-folk", 4, api_name="/interpolate")
    assert Path(png).read_bytes()[:4] == b"\x89PNG" and read_midi(Path(midi)).score.tracks[0].notes
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a MIDI file at all")
    with pytest.raises(Exception, match="second melody"):  # one readable line, and the server goes on
        client.predict(handle_file(str(a)), handle_file(str(bad)), "vae-folk", 4, api_name="/interpolate")
    assert client.predict(handle_file(str(b)), handle_file(str(a)), "vae-folk", 2, api_name="/interpolate")[2]


def test_the_pages_interpolation_takes_a_sample_or_refuses(tmp_path):
    import gradio as gr

    from studio.ui import actions as act

    assert ("vae-folk", "vae-folk") in act.interpolator_choices()
    png, _wav, midi, note = act.interpolate_view(
        str(SAMPLES / "chester.mid"), "binnorie.mid", None, "vae-folk", 3, progress=lambda *a, **k: None
    )
    assert Path(png["value"]).exists() and Path(midi["value"]).exists() and "3 steps" in note
    with pytest.raises(gr.Error, match="listed sample"):
        act.interpolate_view(str(SAMPLES / "chester.mid"), "../../app.py", None, "vae-folk", 3, progress=lambda *a, **k: None)


# --------------------------------------------------------------------------- the shipped vae-folk


@pytest.fixture(scope="module")
def shipped() -> ModelRegistry:
    registry = ModelRegistry(device="cpu")
    assert "vae-folk" in [c.name for c in registry.cards() if not c.disabled]
    return registry


@pytest.mark.parametrize("name", ["alle_meine_entchen.mid", "tim_hogans_jig.mid", "god_save_the_king.mid", "herzliebster_jesu.mid"])
def test_shipped_variations_stay_in_key_and_move_with_how_far(shipped, name):
    read = read_melody(AccompanyRequest(midi=SAMPLES / name))
    key = melody_key(read.roll)
    before = melody_tokens(track_notes(read.roll), read.grid.n_steps)
    distance = {}
    for how_far in (0.0, 1.0, 2.5):  # 2.5: the maximum
        out = shipped.generate("vae-folk", read.roll, read.grid, {"how_far": how_far}, 0)[0]
        distance[how_far] = float((before != melody_tokens(track_notes(out), read.grid.n_steps)).mean())
        if how_far <= 1.0:
            assert in_key_rate([out], key) >= 0.9
    assert distance[0.0] <= 0.1 and distance[0.0] < distance[2.5]


def test_shipped_card_reports_the_acceptance_numbers():
    card = json.loads((CHECKPOINTS / "vae-folk.json").read_text())
    held, unseen, walk = card["metrics"]["held_out"], card["metrics"]["unseen"], card["metrics"]["interpolation"]
    assert held["note_accuracy"] >= 0.9 and held["step_accuracy"] >= 0.9 and held["tunes"] > 1000
    assert unseen["distance_grows"] and unseen["by_how_far"]["1"]["in_key_rate"] >= 0.9
    assert walk["pairs"] >= 10
    from studio.ui.cards import model_card_markdown

    assert f"{held['note_accuracy']:.1%} of the notes exactly" in model_card_markdown("vae-folk")  # the page's card says it
    assert (CHECKPOINTS / "vae-folk.safetensors").stat().st_size < 20_000_000

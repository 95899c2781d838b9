"""studio.training.train with a tiny GAN on a few real chorales: files written, history, samples, resume."""

from __future__ import annotations

import json

import pytest

from studio.core.errors import InputError
from studio.training.train import TrainConfig, history_path, run_training

TINY = {
    "hidden": 16,
    "dilations": "1,2",
    "head_hidden": 8,
    "head_dilations": "1",
    "critic_hidden": 16,
    "batch_size": 4,
    "critic_steps": 1,
    "pretrain_steps": 1,
}


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.timeout(300)
def test_train_writes_checkpoint_card_history_and_resumes(cache):
    out = cache / "ckpt" / "gan-chorale"
    config = TrainConfig("gan", "chorale", steps=3, out=out, overrides=TINY, evaluate=False, max_pieces=8, samples=2)
    card = run_training(config, progress=False)
    assert out.with_suffix(".safetensors").stat().st_size > 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == card
    assert card["name"] == "gan-chorale" and card["family"] == "gan" and card["genre"] == "chorale"
    assert [t["name"] for t in card["tracks"]] == ["Alto", "Tenor", "Bass"]
    training = card["training"]
    assert (
        training["steps"] == 3
        and training["train_pieces"] + training["validation_pieces"] + training["held_out_pieces"] == training["pieces"] == 8
    )
    assert training["validation_pieces"] >= 1 and training["selected"]["step"] == 3  # checked once, at the end
    assert set(training["final_losses"]) == {"critic", "generator", "wasserstein", "penalty", "reconstruction", "dissonance_gap"}
    assert card["config"]["hidden"] == 16 and card["config"]["dilations"] == [1, 2]
    # The sampling temperature's default is chosen on the validation pieces: the best-scoring value.
    tuned = training["tuned_defaults"]["temperature"]
    assert set(tuned["scores"]) == {"0.5", "0.6", "0.7", "0.8", "0.9", "1.0"}
    best = min(tuned["scores"].values())
    assert tuned["scores"][str(tuned["chosen"])] == best
    assert {p["name"]: p["default"] for p in card["params"]}["temperature"] == tuned["chosen"]
    steady = training["tuned_defaults"]["steadiness"]  # then the steadiness, at the chosen temperature
    assert set(steady["scores"]) == {"0.0", "0.25", "0.5", "0.75", "0.9", "1.0"} and steady["scores"]["0.0"] == best
    assert steady["scores"][str(steady["chosen"])] == min(steady["scores"].values())
    assert {p["name"]: p["default"] for p in card["params"]}["steadiness"] == steady["chosen"]
    history = json.loads(history_path(out).read_text())
    assert [row["step"] for row in history["losses"]] == [1, 2, 3]
    assert [row["step"] for row in history["validation"]] == [3] and history["validation"][0]["score"] == training["selected"]["score"]
    assert history["samples"][0]["step"] == 0 and history["samples"][-1]["step"] == 3
    sample = history["samples"][-1]["pieces"][0]
    assert [t["name"] for t in sample["tracks"]][1:] == ["Alto", "Tenor", "Bass"] and sample["tracks"][0]["notes"]

    # The pictures the UI shows of how it learned.
    from studio.audio.learning_plot import loss_curves_png, snapshot_pngs

    curves = loss_curves_png("gan-chorale", history_path(out).parent)
    assert curves is not None and curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    snaps = snapshot_pngs("gan-chorale", 0, history_path(out).parent)
    assert [caption.split(",")[0] for _, caption in snaps] == [f"step {s['step']}" for s in history["samples"]]
    assert loss_curves_png("rules", history_path(out).parent) is None and snapshot_pngs("rules", 0, history_path(out).parent) == []

    # A second run with a larger budget resumes from the saved state instead of starting over.
    resumed = run_training(
        TrainConfig("gan", "chorale", steps=5, out=out, overrides=TINY, evaluate=False, max_pieces=8, samples=2), progress=False
    )
    assert resumed["training"]["steps"] == 5
    history = json.loads(history_path(out).read_text())
    assert [row["step"] for row in history["losses"]] == [1, 2, 3, 4, 5]
    # Resumed once more with nothing left to do: the checkpoint is written again, no empty session is added.
    again = run_training(
        TrainConfig("gan", "chorale", steps=5, out=out, overrides=TINY, evaluate=False, max_pieces=8, samples=2), progress=False
    )
    assert again["training"]["steps"] == 5 and len(json.loads(history_path(out).read_text())["sessions"]) == 2


def test_train_refuses_what_it_cannot_do(cache):
    with pytest.raises(InputError, match="has no trainer"):
        run_training(TrainConfig("rules", "any", steps=1, out=cache / "x"), progress=False)  # rules are written, not learned
    with pytest.raises(InputError, match="not a folder"):
        run_training(TrainConfig("gan", "rock", data=str(cache / "missing"), steps=1, out=cache / "x"), progress=False)


@pytest.mark.timeout(300)
def test_two_processes_with_torchrun_train_one_model(cache):
    """The documented multi-GPU command, on two CPU processes (gloo): both ranks step together and
    rank 0 alone writes the checkpoint."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = cache / "ddp" / "gan-chorale"
    torchrun = Path(sys.executable).with_name("torchrun")
    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "studio",
        "train",
        "--family",
        "gan",
        "--genre",
        "chorale",
        "--steps",
        "3",
        "--max-pieces",
        "8",
        "--no-evaluate",
        "--device",
        "cpu",
        "--out",
        str(out),
        *sets,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=env, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["steps"] == 3 and "x 2 processes" in card["training"]["hardware"]
    assert done.stdout.count("wrote") == 1


@pytest.mark.timeout(300)
def test_train_on_a_folder_of_midi_songs(cache):
    """A user's own songs (LPD-5 roles): the pitched instruments become the GAN's voices, drums are
    left out, and the trained model accompanies a melody through the registry."""
    import numpy as np

    from studio.core.midi import write_midi
    from studio.core.roll import Bar, Grid, RollTrack
    from studio.core.score import Note, Score, Track
    from studio.serving.registry import ModelRegistry

    songs = cache / "songs"
    songs.mkdir()
    for k in range(4):
        melody = [Note(480 * i, 480 * (i + 1), 67 + k + (i % 5) * 2) for i in range(32)]
        bass = [Note(1920 * i, 1920 * (i + 1), 36 + k + (i % 2) * 7) for i in range(8)]
        keys = [Note(960 * i, 960 * (i + 1), p + k) for i in range(16) for p in (60, 64)]
        drums = [Note(480 * i, 480 * i + 120, 36) for i in range(32)]
        tracks = [
            Track("Lead", 73, notes=melody),
            Track("Bass", 33, notes=bass),
            Track("Keys", 4, notes=keys),
            Track("Drums", 0, True, 9, drums),
        ]
        (songs / f"song{k}.mid").write_bytes(write_midi(Score(480, tracks)))
    out = cache / "ckpt" / "gan-mine"
    card = run_training(TrainConfig("gan", "mine", data=str(songs), steps=2, out=out, overrides=TINY, evaluate=False), progress=False)
    assert [t["name"] for t in card["tracks"]] == ["Piano", "Guitar", "Bass", "Strings"]
    grid = Grid(480, 64, [Bar(16 * i, 16, 4, 4) for i in range(4)])
    melody = RollTrack.empty("Melody", 0, 64)
    melody.add_note(0, 64, 72)
    tracks = ModelRegistry(out.parent, device="cpu").generate("gan-mine", melody, grid, {}, 0)
    assert [t.name for t in tracks] == ["Piano", "Guitar", "Bass", "Strings"] and not any(t.is_drum for t in tracks)
    assert all(t.velocity.shape == (64, 128) for t in tracks) and np.isfinite(tracks[0].velocity).all()


@pytest.mark.timeout(300)
def test_the_best_validated_generator_is_what_ships(cache):
    from safetensors.torch import load_file

    out = cache / "sel" / "gan-chorale"
    config = TrainConfig("gan", "chorale", steps=4, out=out, overrides=TINY, evaluate=False, max_pieces=8, samples=1, validate_every_s=0.0)
    card = run_training(config, progress=False)
    history = json.loads(history_path(out).read_text())
    scores = {row["step"]: row["score"] for row in history["validation"]}
    assert sorted(scores) == [1, 2, 3, 4]  # every step once the critic has joined (pretraining: step 0)
    best = min(scores, key=scores.get)
    assert card["training"]["selected"]["step"] == best and card["training"]["selected"]["score"] == scores[best]
    from studio.training.train import default_run_dir

    shipped = load_file(str(out.with_suffix(".safetensors")))
    kept = load_file(str(default_run_dir(out) / "best.safetensors"))
    assert all((shipped[k] == kept[k]).all() for k in shipped)


def test_validation_pieces_are_whole_groups_up_to_the_cap_and_the_rest_train():
    from dataclasses import dataclass, field

    from studio.training.train import _split_validation

    @dataclass
    class Piece:
        id: str
        group: str

    @dataclass
    class Data:
        train: list = field(default_factory=list)

    pieces = [Piece(f"p{i}", f"g{i // 3}") for i in range(300)]  # 100 groups of 3
    fit, validation = _split_validation(Data(pieces), 0.1, 10)
    assert 1 <= len(validation) <= 10
    groups = {p.group for p in validation}
    assert all(sum(p.group == g for p in validation) == 3 for g in groups), "a group was cut in two"
    assert not groups & {p.group for p in fit.train}, "a validation group also trains"
    assert len(fit.train) + len(validation) == 300, "pieces past the cap were lost to training"

"""studio.serving.registry: cards at start-up, one load per process, broken models disabled, params checked."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import models.rules
from studio.core.errors import InputError, ModelError
from studio.core.roll import RollTrack, make_grid, notes_to_roll
from studio.core.score import Note, Score, Track
from studio.serving.registry import ModelRegistry, default_registry, parse_params_json, quoted

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"


@pytest.fixture
def cards_dir(tmp_path):
    shutil.copy(CHECKPOINTS / "rules.json", tmp_path / "rules.json")
    return tmp_path


def _melody():
    grid = make_grid(Score(480, [Track("m", notes=[Note(0, 480 * 8, 60)])]))
    melody = RollTrack.empty("Melody", 0, grid.n_steps)
    for i, p in enumerate([60, 64, 67, 72, 67, 64, 62, 60]):
        melody.add_note(i * 4, i * 4 + 4, p)
    return melody, grid


def test_shipped_cards_are_complete():
    registry = ModelRegistry()
    assert "rules" in registry.names()
    for card in registry.cards():
        data = card.to_json()
        for field in ("name", "family", "genre", "description", "tracks", "params", "training", "metrics", "config"):
            assert field in data
        for param in data["params"]:
            assert {"name", "type", "default", "help"} <= set(param)


def test_loaded_once_under_concurrent_first_requests(cards_dir, monkeypatch):
    calls = []
    real_load = models.rules.load

    def slow_load(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(models.rules, "load", slow_load)
    registry = ModelRegistry(cards_dir)
    got = []
    threads = [threading.Thread(target=lambda: got.append(registry.get("rules"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(m is got[0] for m in got)


def test_unknown_model_lists_the_known_ones(cards_dir):
    with pytest.raises(InputError, match="choose one of rules"):
        ModelRegistry(cards_dir).card("nope")


def test_broken_card_is_reported_not_fatal(cards_dir):
    (cards_dir / "broken.json").write_text("{not json")
    registry = ModelRegistry(cards_dir)
    assert registry.names() == ["rules"]
    assert any("broken.json" in p for p in registry.problems)


def test_broken_checkpoint_disables_only_that_model(cards_dir, monkeypatch):
    card = json.loads((cards_dir / "rules.json").read_text())
    card["name"] = "rules-broken"
    (cards_dir / "rules-broken.json").write_text(json.dumps(card))
    real_load = models.rules.load

    def load(card, weights=None, device="cpu"):
        if card["name"] == "rules-broken":
            raise ValueError("header too large")
        return real_load(card, weights, device)

    monkeypatch.setattr(models.rules, "load", load)
    registry = ModelRegistry(cards_dir)
    with pytest.raises(ModelError, match="rules-broken is unavailable"):
        registry.get("rules-broken")
    melody, grid = _melody()
    assert registry.generate("rules", melody, grid, {}, 0)
    assert registry.card("rules-broken").disabled


def test_failing_and_slow_models_give_model_errors(cards_dir, monkeypatch):
    registry = ModelRegistry(cards_dir, timeout_s=0.3)
    melody, grid = _melody()

    class Failing:
        def generate(self, *a):
            raise RuntimeError("boom")

    class Slow:
        def generate(self, *a):
            time.sleep(2)
            return []

    registry._models["rules"] = Failing()
    with pytest.raises(ModelError, match="failed while generating"):
        registry.generate("rules", melody, grid, {}, 0)
    registry._models["rules"] = Slow()
    with pytest.raises(ModelError, match="longer than"):
        registry.generate("rules", melody, grid, {}, 0)


def test_a_call_past_its_time_out_is_cancelled_and_its_thread_ends(cards_dir):
    """A slow model whose loop checks `check_cancelled` (as every shipped sampler's does): after the
    time-out it stops within an iteration, its thread ends, and it no longer counts as stuck."""
    from models.base import check_cancelled

    registry = ModelRegistry(cards_dir, timeout_s=0.2)
    melody, grid = _melody()

    class SlowLoop:
        def __init__(self) -> None:
            self.iterations = 0
            self.ended = threading.Event()
            self.seen: list[BaseException] = []

        def generate(self, *a):
            try:
                for _ in range(10_000):  # 100 s of work if nobody stops it
                    check_cancelled()
                    time.sleep(0.01)
                    self.iterations += 1
                return []
            except BaseException as exc:
                self.seen.append(exc)
                raise
            finally:
                self.ended.set()

    slow = SlowLoop()
    registry._models["rules"] = slow
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"took longer than 0\.2 s"):
        registry.generate("rules", melody, grid, {}, 0)
    assert slow.ended.wait(5), "the abandoned call kept running"
    assert time.monotonic() - started < 5 and slow.iterations < 500
    assert type(slow.seen[0]).__name__ == "Cancelled"
    deadline = time.monotonic() + 5
    while registry._abandoned.get("rules") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert registry._abandoned.get("rules", 0) == 0


def test_params_are_checked_and_coerced(cards_dir):
    card = ModelRegistry(cards_dir).card("rules")
    assert card.resolve_params({"chords_per_bar": "4"}) == {"chords_per_bar": 4, "pattern": "oompah"}
    with pytest.raises(InputError, match="one of 1, 2, 4"):
        card.resolve_params({"chords_per_bar": "3"})
    with pytest.raises(InputError, match="no parameter 'tempo'"):
        card.resolve_params({"tempo": "3"})


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan")])
def test_a_float_parameter_must_be_a_finite_number(value):
    """NaN compares false with every bound, so a range check alone lets it through."""
    card = default_registry().card("gan-quartet")
    with pytest.raises(InputError, match="'temperature' of model gan-quartet must be a float"):
        card.resolve_params({"temperature": value})
    assert card.resolve_params({"temperature": "0.7"})["temperature"] == 0.7


@pytest.mark.parametrize("value", ["inf", "1e400", "1" * 5000, pytest.param(10**5000, id="10**5000"), True, 1.5, "2.5", [[1]], "nan"])
def test_an_int_parameter_refuses_what_is_not_a_whole_number_in_one_short_line(value):
    """Issue 23: 'inf', '1e400' and 5,000 digits raised OverflowError (an internal error)."""
    card = default_registry().card("arcnn-chorale")
    with pytest.raises(InputError, match=r"'iterations' of model arcnn-chorale must be (an int \(a whole number\)|between)") as caught:
        card.resolve_params({"iterations": value})
    assert len(str(caught.value)) < 200
    assert card.resolve_params({"iterations": "3"})["iterations"] == card.resolve_params({"iterations": 3.0})["iterations"] == 3


def test_a_long_value_or_name_is_quoted_cut_short():
    card = default_registry().card("gan-quartet")
    for given in ({"temperature": "x" * 10_000_000}, {"x" * 10_000_000: 1}, {"temperature": 1e300 * 10**10}):
        with pytest.raises(InputError) as caught:
            card.resolve_params(given)
        assert len(str(caught.value)) < 200, str(caught.value)[:300]
    assert quoted("\x1b[31m\nerror: forged") == "'\\x1b[31m\\nerror: forged'"  # control characters escaped


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("[" * 10_000 + "]" * 10_000, "characters long"),
        ("[" * 2_000 + "]" * 2_000, "nest more than"),
        ('{"a": [[[[[1]]]]]}', "nest more than"),
        ('{"a": "' + "x" * 10_000_000 + '"}', "over the 10,000 limit"),
        ('{"iterations": 1e400}', "1e400 is too large"),
        ('{"iterations": NaN}', "NaN is not a number"),
        ('{"iterations": -Infinity}', "Infinity is not a number"),
        ("[1]", "must be a JSON object"),
        ("{bad", "must be a JSON object"),
    ],
)
def test_params_json_refuses_deep_long_and_non_finite_text_in_one_short_line(text, phrase):
    """Issue 23: JSON nested 10,000 deep raised RecursionError; a 10 MB value was echoed whole."""
    with pytest.raises(InputError, match=phrase) as caught:
        parse_params_json(text)
    assert len(str(caught.value)) < 200 and "\n" not in str(caught.value)


def test_params_json_takes_a_flat_object_and_empty_text():
    assert parse_params_json('{"iterations": 3, "mode": "[[[[[[", "then": "rules"}') == {"iterations": 3, "mode": "[[[[[[", "then": "rules"}
    assert parse_params_json("") == parse_params_json(None) == parse_params_json("  ") == {}


def test_model_calls_reuse_idle_threads_and_a_stuck_call_keeps_only_its_own(cards_dir):
    from studio.serving import registry as registry_module

    registry = ModelRegistry(cards_dir, timeout_s=0.3)
    melody, grid = _melody()
    workers = registry_module._WORKERS

    def until_idle() -> None:  # a finished call's thread goes back to the idle list just after answering
        deadline = time.monotonic() + 5
        while not workers._idle and time.monotonic() < deadline:
            time.sleep(0.005)

    registry.generate("rules", melody, grid, {}, 0)
    until_idle()
    started = workers.started
    for seed in range(10):  # one after another: an idle thread takes each
        assert registry.generate("rules", melody, grid, {}, seed)
        until_idle()
    assert workers.started == started, "sequential calls started new threads"

    release = threading.Event()
    ran_in: list[str] = []

    class Stuck:
        def generate(self, *a):
            ran_in.append(threading.current_thread().name)
            release.wait(10)
            return []

    real = registry._models["rules"]
    registry._models["rules"] = Stuck()
    with pytest.raises(ModelError, match="longer than"):
        registry.generate("rules", melody, grid, {}, 0)
    registry._models["rules"] = real
    assert registry.generate("rules", melody, grid, {}, 0), "a stuck call blocked the next one"
    assert ran_in and ran_in[0].startswith("model-call-")
    release.set()


def test_torch_models_on_a_cpu_are_served_with_one_thread_unless_the_environment_says(tmp_path, monkeypatch):
    """The studio's small networks ran 1.3-1.9x slower with two sleeping OpenMP threads than with one
    (`bench.torch_threads`): loading a torch model onto the CPU sets one thread for the process;
    OMP_NUM_THREADS, when set, is kept."""
    import torch

    shutil.copy(CHECKPOINTS / "vae-folk.json", tmp_path / "vae-folk.json")
    shutil.copy(CHECKPOINTS / "vae-folk.safetensors", tmp_path / "vae-folk.safetensors")
    melody, grid = _melody()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert ModelRegistry(tmp_path, device="cpu").generate("vae-folk", melody, grid, {}, 0)
        assert torch.get_num_threads() == 2, "the environment's OMP_NUM_THREADS was overridden"
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert ModelRegistry(tmp_path, device="cpu").generate("vae-folk", melody, grid, {}, 0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_one_shot_command_leaves_a_slow_model_less_of_the_answer_than_a_server(tmp_path):
    """A command pays for starting torch and the model within its answer (`START_UP_S`), a server
    has paid before: the command's length limit is lower by the beats the model writes in that time,
    and the seconds it charges to the synthesis budget (`cpu_seconds`) higher by that time. A family
    that declares no cost (the GANs, rules) is charged nothing; on a GPU nothing is limited or charged."""
    from models.base import declarations
    from studio.serving.registry import START_UP_S

    for name in ("diffusion-chorale", "gan-chorale", "rules"):
        shutil.copy(CHECKPOINTS / f"{name}.json", tmp_path / f"{name}.json")
    info = declarations()["diffusion"]
    assert info.cpu_seconds_per_beat > 0 and info.cpu_max_beats > 0
    _, grid = _long_melody(160)
    server = ModelRegistry(tmp_path, device="cpu")
    command = ModelRegistry(tmp_path, device="cpu")
    command.one_shot = True
    assert server.max_beats("diffusion-chorale") == info.cpu_max_beats
    assert command.max_beats("diffusion-chorale") == info.cpu_max_beats - int(START_UP_S / info.cpu_seconds_per_beat) >= 64
    assert command.cpu_seconds("diffusion-chorale", grid) == pytest.approx(160 * info.cpu_seconds_per_beat)
    assert server.cpu_seconds("diffusion-chorale", grid) == pytest.approx(160 * info.cpu_seconds_per_beat - START_UP_S)
    for registry in (server, command):
        assert registry.cpu_seconds("gan-chorale", grid) == registry.cpu_seconds("rules", grid) == 0.0
        assert registry.max_beats("gan-chorale") == registry.max_beats("rules") == 0
    # a melody between the two limits: the server writes it, the command refuses it in one line
    _, between_grid = _long_melody(command.max_beats("diffusion-chorale") + 4)
    server.check_length("diffusion-chorale", between_grid)
    with pytest.raises(InputError, match="in one command: choose a part of the melody"):
        command.check_length("diffusion-chorale", between_grid)
    gpu = ModelRegistry(tmp_path, device="cuda")
    gpu.one_shot = True
    assert gpu.cpu_seconds("diffusion-chorale", grid) == 0.0 and gpu.max_beats("diffusion-chorale") == 0


def test_models_on_cuda_are_served_in_full_float32(tmp_path, monkeypatch):
    """TF32 rounds differently for different batch sizes (a batched request's music differed from
    the same request alone on an H100), so a model loaded on CUDA finds TF32 off."""
    import torch

    import models.gan

    shutil.copy(CHECKPOINTS / "gan-chorale.json", tmp_path / "gan-chorale.json")
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    seen = {}

    def load(card, weights, device):
        seen.update(device=device, cudnn=torch.backends.cudnn.allow_tf32, matmul=torch.backends.cuda.matmul.allow_tf32)
        return object()

    monkeypatch.setattr(models.gan, "load", load)
    try:
        ModelRegistry(tmp_path, device="cuda").get("gan-chorale")
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    assert seen == {"device": "cuda", "cudnn": False, "matmul": False}


def _long_melody(beats: int):
    grid = make_grid(Score(480, [Track("m", notes=[Note(480 * b, 480 * (b + 1), 60 + b % 12) for b in range(beats)])]))
    return notes_to_roll([Note(480 * b, 480 * (b + 1), 60 + b % 12) for b in range(beats)], grid, "Melody", 0), grid


def test_a_melody_longer_than_a_family_writes_in_time_is_refused_before_the_model_runs(tmp_path, monkeypatch):
    """A family's `cpu_max_beats` (issue 23: diffusion took 44 s on a 2,500-beat melody): a longer melody
    is refused in one line that says the limit and names the accompanists that take it, before the
    model loads, through `generate` and `call_method` alike; one at the limit is written; on a GPU
    the limit is lifted."""
    import models.diffusion
    from models.base import declarations

    for name in ("diffusion-chorale", "gan-chorale", "rules", "transformer-folk"):
        shutil.copy(CHECKPOINTS / f"{name}.json", tmp_path / f"{name}.json")
    limit = declarations()["diffusion"].cpu_max_beats
    assert limit >= 64  # a chorale, and more
    loads = []
    long_roll, long_grid = _long_melody(limit + 1)  # whole bars of 4/4: 116 beats for a limit of 112
    model = SimpleNamespace(generate=lambda melody, *_: [melody])  # writes the melody back
    monkeypatch.setattr(models.diffusion, "load", lambda *a: loads.append(a) or model)
    registry = ModelRegistry(tmp_path, device="cpu")
    for call in (
        lambda: registry.generate("diffusion-chorale", long_roll, long_grid, {}, 0),
        lambda: registry.call_method("diffusion-chorale", "sampling_trace", long_roll, long_grid, {}, 0, [1]),
    ):
        with pytest.raises(InputError) as refused:
            call()
        message = str(refused.value)
        assert f"{long_grid.n_steps // long_grid.steps_per_beat:,} beats long" in message and "\n" not in message
        assert f"up to {limit:,} beats" in message
        assert "faster model (gan-chorale, rules)" in message  # the accompanists without a lower limit; not the Transformer
    assert loads == []
    assert registry.generate("diffusion-chorale", long_roll, long_grid, {}, 0, limit_length=False) == [long_roll]  # an evaluation
    assert len(loads) == 1
    registry.check_length("diffusion-chorale", _long_melody(limit)[1])  # at the limit: taken
    ModelRegistry(tmp_path, device="cuda").check_length("diffusion-chorale", long_grid)  # on a GPU: taken
    registry.check_length("gan-chorale", _long_melody(4 * limit)[1])  # a family without a limit of its own

"""Faults (issue 10): each gives one clear line in the service, the CLI and the page's actions, and
the other models and later requests keep working.

Missing FluidSynth, a missing or damaged SoundFont, a damaged or missing checkpoint, a model that
raises or runs past the time-out mid-generation, and a full disk.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest
from synth_checks import needs_fluidsynth

from studio.audio import synth
from studio.audio.synth import fluid, soundfont
from studio.core.errors import InputError, ModelError, StudioError
from studio.core.midi import read_midi
from studio.serving.registry import ModelRegistry
from studio.serving.service import AccompanyRequest, accompany
from studio.ui import actions as ui_actions

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "models" / "checkpoints"
HAVE_SYNTH = synth.synth_status()[0]
needs_synth = pytest.mark.skipif(not HAVE_SYNTH, reason="FluidSynth and a SoundFont are needed to see audio come back")


@pytest.fixture
def tune(tune_paths) -> Path:
    return tune_paths["three_four_pickup.mid"]


def _no_progress(*_args, **_kwargs) -> None:
    return None


def _cli(*args: str, prelude: str = "", timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m studio ARGS`, after `prelude` (Python run first in the same process: the simulated fault)."""
    code = f"import sys\n{prelude}\nfrom studio.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})}
    )


def _one_error_line(done: subprocess.CompletedProcess, words: str) -> None:
    """Exit 2, no traceback, and an `error:` line saying `words`."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], done.stderr


def _request(tune: Path, model: str = "rules", **kwargs) -> AccompanyRequest:
    return AccompanyRequest(midi=tune, model=model, **kwargs)


# --------------------------------------------------------------------------- FluidSynth missing


@pytest.fixture
def no_fluidsynth(monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # `import fluidsynth` raises ImportError
    monkeypatch.setattr(fluid, "_FLUID", None)


def test_without_fluidsynth_the_service_returns_midi_and_roll_with_a_warning(no_fluidsynth, tune, tmp_path):
    result = accompany(_request(tune, out_dir=tmp_path))
    assert result.wav_path is None
    assert any(w.startswith("no audio: FluidSynth is not installed") for w in result.warnings)
    assert read_midi(result.midi_path).score.tracks and result.png_path.read_bytes()[:4] == b"\x89PNG"


def test_without_fluidsynth_the_pages_action_answers_without_audio(no_fluidsynth, tune):
    wav, png, midi = ui_actions.accompany_endpoint(str(tune), "rules", 0, progress=_no_progress)
    assert wav is None and Path(png).exists() and len(read_midi(midi).score.tracks) == 3


@needs_synth
def test_audio_comes_back_once_fluidsynth_is_there_again(tune, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "fluidsynth", None)
        patch.setattr(fluid, "_FLUID", None)
        assert accompany(_request(tune, out_dir=tmp_path / "a")).wav_path is None
    assert accompany(_request(tune, out_dir=tmp_path / "b")).wav_path.read_bytes()[:4] == b"RIFF"


FAKE_FLUIDSYNTH = "import types\nsys.modules['fluidsynth'] = None\n"


def test_without_fluidsynth_the_cli(tune, tmp_path):
    done = _cli("generate", str(tune), "--out-dir", str(tmp_path), prelude=FAKE_FLUIDSYNTH)
    assert done.returncode == 0, done.stderr
    assert "warning: no audio: FluidSynth is not installed" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".mid", ".png"]
    _one_error_line(_cli("render", str(tune), "--out-wav", str(tmp_path / "x.wav"), prelude=FAKE_FLUIDSYNTH), "FluidSynth is not installed")


# --------------------------------------------------------------------------- SoundFonts


DAMAGED_FONTS = {
    "random bytes": lambda real: bytes(range(256)) * 40,
    "empty": lambda real: b"",
    "truncated": lambda real: real,  # the first 64 KB of the real font (below)
    "header only": lambda real: b"RIFF\x10\x00\x00\x00sfbkLIST",
}


def _damaged_font(kind: str, folder: Path) -> Path:
    real = synth.find_soundfont()
    start = real.open("rb").read(65536) if real else b"RIFF\xff\xff\xff\x00sfbk" + bytes(100)
    path = folder / f"{kind.replace(' ', '-')}.sf2"
    path.write_bytes(DAMAGED_FONTS[kind](start))
    return path


@pytest.mark.parametrize("kind", sorted(DAMAGED_FONTS))
@needs_fluidsynth
def test_a_damaged_soundfont_is_named_in_one_line(kind, tune, tmp_path, monkeypatch):
    font = _damaged_font(kind, tmp_path)
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(font))
    ok, message = synth.synth_status()
    assert not ok and str(font) in message and "\n" not in message
    result = accompany(_request(tune, out_dir=tmp_path / "out"))
    assert result.wav_path is None and any(w.startswith("no audio: the SoundFont") and str(font) in w for w in result.warnings)
    assert read_midi(result.midi_path).score.tracks


@needs_fluidsynth
def test_a_damaged_soundfont_in_the_cli(tune, tmp_path):
    font = _damaged_font("truncated", tmp_path)
    env = f"import os\nos.environ['STUDIO_SOUNDFONT'] = {str(font)!r}\n"
    done = _cli("render", str(tune), "--out-wav", str(tmp_path / "x.wav"), prelude=env)
    _one_error_line(done, "is truncated")
    assert done.stderr.count("\n") == 1  # FluidSynth was never asked to load it: none of its log lines
    done = _cli("generate", str(tune), "--out-dir", str(tmp_path / "out"), prelude=env)
    assert done.returncode == 0 and "warning: no audio: the SoundFont" in done.stderr


@needs_synth
def test_a_missing_soundfont_file_falls_back_to_the_system_font(tune, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    ok, message = synth.synth_status()
    assert ok and "gone.sf2 does not exist, ignored" in message
    assert accompany(_request(tune, out_dir=tmp_path)).wav_path.read_bytes()[:4] == b"RIFF"


@needs_fluidsynth
def test_no_soundfont_anywhere(tune, tmp_path, monkeypatch):
    monkeypatch.setattr(soundfont, "_soundfont_candidates", lambda config: [])
    result = accompany(_request(tune, out_dir=tmp_path))
    assert result.wav_path is None and any("no SoundFont found" in w for w in result.warnings)
    wav, png, _midi = ui_actions.accompany_endpoint(str(tune), "rules", 0, progress=_no_progress)
    assert wav is None and Path(png).exists()
    prelude = "import studio.audio.synth.soundfont\nstudio.audio.synth.soundfont._soundfont_candidates = lambda config: []\n"
    _one_error_line(_cli("render", str(tune), "--out-wav", str(tmp_path / "x.wav"), prelude=prelude), "no SoundFont found")


# --------------------------------------------------------------------------- checkpoints


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random bytes":
        path.write_bytes(bytes(range(256)) * 64)
    elif how == "huge header":
        path.write_bytes((2**40).to_bytes(8, "little") + data[8:])
    elif how == "missing tensors":
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(path))
        save_file({k: v for i, (k, v) in enumerate(sorted(tensors.items())) if i % 2}, str(path))
    elif how == "empty":
        path.write_bytes(b"")


@pytest.fixture
def checkpoints(tmp_path) -> Path:
    """A copy of the shipped cards and weights (not the training histories)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for path in CHECKPOINTS.iterdir():
        if path.suffix in (".json", ".safetensors"):
            shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("how", ["missing", "truncated", "random bytes", "huge header", "missing tensors", "empty"])
def test_a_damaged_checkpoint_disables_only_its_model(how, checkpoints, tune, tmp_path):
    _damage(checkpoints / "gan-chorale.safetensors", how)
    registry = ModelRegistry(checkpoints)
    for _ in range(2):  # the second request gets the same answer, without trying to load again
        with pytest.raises(ModelError, match=r"^model gan-chorale is unavailable: its checkpoint could not be loaded") as info:
            accompany(_request(tune, "gan-chorale", out_dir=tmp_path / "x", want_wav=False), registry)
        assert "\n" not in str(info.value)
    for other in ("rules", "gan-renaissance"):
        result = accompany(_request(tune, other, out_dir=tmp_path / other, want_wav=False), registry)
        assert len(result.score.tracks) == {"rules": 3, "gan-renaissance": 4}[other]
    card = {c.name: c.to_json() for c in registry.cards()}["gan-chorale"]
    assert card["available"] is False and "could not be loaded" in card["disabled"]


def test_a_damaged_checkpoint_in_the_cli_and_the_page(checkpoints, tune, tmp_path, monkeypatch):
    _damage(checkpoints / "gan-chorale.safetensors", "truncated")
    prelude = f"import studio.serving.registry as r\nr._default = r.ModelRegistry({str(checkpoints)!r})\n"
    done = _cli("generate", str(tune), "--model", "gan-chorale", "--out-dir", str(tmp_path), prelude=prelude)
    _one_error_line(done, "model gan-chorale is unavailable: its checkpoint could not be loaded")
    assert _cli("generate", str(tune), "--model", "gan-quartet", "--out-dir", str(tmp_path), prelude=prelude).returncode == 0

    import studio.serving.registry

    monkeypatch.setattr(studio.serving.registry, "_default", ModelRegistry(checkpoints))
    with pytest.raises(gr.Error, match="unavailable: its checkpoint could not be loaded"):
        ui_actions.accompany_endpoint(str(tune), "gan-chorale", 0, progress=_no_progress)
    _wav, _png, midi = ui_actions.accompany_endpoint(str(tune), "gan-renaissance", 0, progress=_no_progress)
    assert [t.name for t in read_midi(midi).score.tracks][1:] == ["Altus", "Tenor", "Bassus"]


def test_a_damaged_card_is_reported_and_the_rest_load(checkpoints):
    (checkpoints / "gan-quartet.json").write_text('{"name": "gan-quartet", "family": ')
    (checkpoints / "gan-renaissance.json").write_text(json.dumps({"name": "gan-renaissance"}))
    registry = ModelRegistry(checkpoints)
    assert {"gan-chorale", "rules"} <= set(registry.names()) and not {"gan-quartet", "gan-renaissance"} & set(registry.names())
    assert len(registry.problems) == 2 and all("\n" not in p for p in registry.problems)


# --------------------------------------------------------------------------- models that fail or hang


class _Raises:
    """A model that does part of its work (the real model's) and then fails."""

    def __init__(self, real) -> None:
        self.real = real

    def generate(self, melody, grid, params, seed):
        self.real.generate(melody, grid, params, seed)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class _Hangs:
    """A model that starts and does not come back until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    def generate(self, melody, grid, params, seed):
        self.started += 1
        self.release.wait(60)
        return []


@pytest.fixture
def registry(checkpoints):
    return ModelRegistry(checkpoints, timeout_s=0.5)


@contextmanager
def _patient(registry: ModelRegistry) -> Iterator[ModelRegistry]:
    """A real model's call on a machine that may be busy: not a time-out test (the 0.5 s time-out is for
    the fakes that hang), so it gets the studio's own 60 s while it runs."""
    saved, registry.timeout_s = registry.timeout_s, 60.0
    try:
        yield registry
    finally:
        registry.timeout_s = saved


def test_a_model_that_raises_mid_generation(registry, tune, tmp_path):
    registry._models["gan-chorale"] = _Raises(registry.get("gan-chorale"))
    with pytest.raises(ModelError, match=r"^model gan-chorale failed while generating \(RuntimeError: CUDA error") as info:
        accompany(_request(tune, "gan-chorale", out_dir=tmp_path, want_wav=False), registry)
    assert "\n" not in str(info.value)
    for other in ("rules", "gan-quartet"):
        with _patient(registry):
            assert accompany(_request(tune, other, out_dir=tmp_path, want_wav=False), registry).score.tracks


def test_a_model_past_the_time_out_does_not_hold_up_the_others(registry, tune, tmp_path):
    hangs = _Hangs()
    registry._models["gan-chorale"] = hangs
    try:
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(ModelError, match=r"took longer than 0.5 s: the studio stopped waiting"):
                accompany(_request(tune, "gan-chorale", out_dir=tmp_path, want_wav=False), registry)
            assert time.perf_counter() - started < 10
        with _patient(registry):
            assert accompany(_request(tune, "rules", out_dir=tmp_path, want_wav=False), registry).score.tracks
    finally:
        hangs.release.set()


def test_many_hung_calls_neither_starve_the_others_nor_pile_up(registry, tune, tmp_path):
    """Nine calls that never return (more than the eight workers the registry once had): the others
    still answer, and a model with four calls stuck takes no more until they end."""
    from studio.serving.registry import MAX_ABANDONED

    hangs = _Hangs()
    registry._models["gan-chorale"] = hangs
    melody_request = _request(tune, "gan-chorale", out_dir=tmp_path, want_wav=False)
    try:
        messages = []
        for _ in range(9):
            with pytest.raises(ModelError) as info:
                accompany(melody_request, registry)
            messages.append(str(info.value))
        assert hangs.started == MAX_ABANDONED  # later calls were refused at once, not started
        assert "is busy: 4 earlier requests ran past the 0.5 s time-out" in messages[-1]
        for other in ("rules", "gan-renaissance"):
            with _patient(registry):
                assert accompany(_request(tune, other, out_dir=tmp_path, want_wav=False), registry).score.tracks
    finally:
        hangs.release.set()
    deadline = time.time() + 10
    while registry._abandoned.get("gan-chorale") and time.time() < deadline:
        time.sleep(0.05)
    assert registry._abandoned.get("gan-chorale") == 0
    registry._models["gan-chorale"] = _Raises(registry.get("gan-renaissance"))  # it is called again
    with pytest.raises(ModelError, match="failed while generating"):
        accompany(melody_request, registry)


def test_a_hung_model_in_the_cli_exits_with_one_line(tune, tmp_path, checkpoints):
    prelude = (
        "import threading, studio.serving.registry as r\n"
        f"reg = r.ModelRegistry({str(checkpoints)!r}, timeout_s=0.5)\n"
        "class Hangs:\n    def generate(self, *a):\n        threading.Event().wait()\n"
        "reg._models['gan-chorale'] = Hangs()\nr._default = reg\n"
    )
    started = time.perf_counter()
    done = _cli("generate", str(tune), "--model", "gan-chorale", "--out-dir", str(tmp_path), prelude=prelude, timeout=60)
    _one_error_line(done, "model gan-chorale took longer than 0.5 s")
    assert time.perf_counter() - started < 45  # the stuck thread does not keep the process alive


def test_the_pages_action_on_a_failing_model_then_a_working_one(registry, tune, monkeypatch):
    import studio.serving.registry

    registry._models["gan-chorale"] = _Raises(registry.get("gan-chorale"))
    monkeypatch.setattr(studio.serving.registry, "_default", registry)
    with pytest.raises(gr.Error, match="failed while generating"):
        ui_actions.accompany_endpoint(str(tune), "gan-chorale", 0, progress=_no_progress)
    _wav, _png, midi = ui_actions.accompany_endpoint(str(tune), "gan-quartet", 0, progress=_no_progress)
    assert [t.name for t in read_midi(midi).score.tracks][1:] == ["Violin II", "Viola", "Cello"]


@pytest.mark.parametrize("value", ["abc", "0", "nan"])
def test_a_bad_time_out_setting_is_one_line(value):
    prelude = f"import os\nos.environ['STUDIO_TIMEOUT_S'] = {value!r}\n"
    _one_error_line(_cli("generate", str(REPO / "tests/data/tunes/four_four.mid"), prelude=prelude), "STUDIO_TIMEOUT_S must be a number")


def test_the_time_out_setting_reaches_the_registry(monkeypatch):
    import studio.serving.registry

    monkeypatch.setattr(studio.serving.registry, "_default", None)
    monkeypatch.setenv("STUDIO_TIMEOUT_S", "7.5")
    assert studio.serving.registry.default_registry().timeout_s == 7.5


# --------------------------------------------------------------------------- a full disk


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


FULL_AT = {
    "MIDI": ("pathlib.Path.write_bytes", None),
    "WAV": ("studio.audio.synth.write_wav", None),
    "PNG": ("studio.audio.plot.plot_score", None),
    "folder": ("tempfile.mkdtemp", None),
}


@pytest.mark.parametrize("where", sorted(FULL_AT))
def test_a_full_disk_is_one_clear_error_and_leaves_nothing_behind(where, tune, tmp_path, monkeypatch):
    if where == "WAV" and not HAVE_SYNTH:
        pytest.skip("no audio is written without FluidSynth")
    import studio.audio.plot  # noqa: F401 - loaded before it is patched

    out = tmp_path / "out"
    out.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(FULL_AT[where][0], _disk_full)
        with pytest.raises(StudioError, match=r"^the disk is full, so the result could not be saved") as info:
            accompany(_request(tune, out_dir=None if where == "folder" else out))
        assert not isinstance(info.value, InputError)
    assert list(out.iterdir()) == []  # what was written before the failure was removed
    result = accompany(_request(tune, out_dir=out))  # and the next request works
    assert read_midi(result.midi_path).score.tracks


def test_a_full_disk_on_the_page_and_in_the_cli(tune, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr("pathlib.Path.write_bytes", _disk_full)
        with pytest.raises(gr.Error, match="The disk is full"):
            ui_actions.accompany_endpoint(str(tune), "rules", 0, progress=_no_progress)
    assert ui_actions.accompany_endpoint(str(tune), "rules", 0, progress=_no_progress)[2]

    prelude = (
        "import errno, pathlib\ndef full(*a, **k):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "pathlib.Path.write_bytes = full\n"
    )
    _one_error_line(_cli("generate", str(tune), "--out-dir", str(tmp_path / "a"), prelude=prelude), "the disk is full")
    _one_error_line(_cli("generate", str(tune), "--out-dir", "/proc/no-such-folder"), "the result could not be saved")
    prelude = (
        "import errno, studio.audio.synth.wav\ndef full(*a, **k):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "studio.audio.synth.wav.write_wav = full\n"
    )
    if HAVE_SYNTH:
        _one_error_line(_cli("render", str(tune), "--out-wav", str(tmp_path / "x.wav"), prelude=prelude), "the disk is full")


# Writes that fail halfway (issue 23): a file size limit lets the first bytes of each file land and
# fails the rest with EFBIG, as a disk that fills during the request; or the output folder becomes
# unwritable once the model has run (every open for writing there is refused from then on).
FILES_UP_TO_60_KB = (
    "import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
)
UNWRITABLE_AFTER_THE_MODEL = """
import builtins, errno, os, studio.audio.synth as synth, studio.audio.synth.wav as wav
real_open, real_render, locked = builtins.open, synth.render_midi, []
def render(*args, **kwargs):
    locked.append(True)  # the MIDI is written; from now on the output folder is read-only
    return real_render(*args, **kwargs)
def guarded(file, mode="r", *args, **kwargs):
    if locked and set(mode) & set("wxa+") and str(file).startswith(os.environ["READ_ONLY_FROM_NOW"]):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))
    return real_open(file, mode, *args, **kwargs)
synth.render_midi = wav.render_midi = render
builtins.open = guarded
"""


@needs_synth
@pytest.mark.parametrize("how", ["files up to 60 KB", "unwritable after the model"])
@pytest.mark.parametrize("outs", ["--out-dir", "--out-wav", "render"])
def test_a_write_that_fails_halfway_leaves_nothing_behind(how, outs, tune, tmp_path):
    """One `error:` line, exit 2, no traceback (no `wave.__del__` one), no partial file in the output
    folder and no scratch folder left in the temp folder."""
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    scratch.mkdir()
    args = {
        "--out-dir": ["generate", str(tune), "--out-dir"],
        "--out-wav": ["generate", str(tune), "--out-midi", str(out / "x.mid"), "--out-png", str(out / "x.png"), "--out-wav"],
        "render": ["render", str(tune), "--out-wav"],
    }[outs]
    where = str(out / "x.wav") if outs != "--out-dir" else str(out)
    prelude = FILES_UP_TO_60_KB if how == "files up to 60 KB" else UNWRITABLE_AFTER_THE_MODEL
    done = _cli(*args, where, prelude=prelude, env={"TMPDIR": str(scratch), "READ_ONLY_FROM_NOW": str(out)})
    _one_error_line(done, "the result could not be saved")
    assert list(out.iterdir()) == []
    assert list(scratch.glob("studio-*")) == []


def test_a_full_disk_while_previewing_or_remixing(tune, tmp_path, monkeypatch):
    from studio.audio.mixing import TrackMix, preview_melody, remix_take

    take = accompany(_request(tune, out_dir=tmp_path / "take", want_wav=False))
    with monkeypatch.context() as patch:
        patch.setattr("pathlib.Path.write_bytes", _disk_full)
        with pytest.raises(StudioError, match=r"^the disk is full"):
            preview_melody(tune, tmp_path / "preview")
        with pytest.raises(StudioError, match=r"^the disk is full"):
            remix_take(take.midi_path, [TrackMix(0), TrackMix(32), TrackMix(24, 0.5)], tmp_path / "mix")
        with pytest.raises(gr.Error, match="The disk is full"):
            ui_actions.preview(str(tune))
    png, _wav = ui_actions.preview(str(tune))
    assert Path(png).exists()


RECORDING = json.dumps(
    {
        "notes": [{"pitch": 60, "start": 0.0, "end": 0.4}, {"pitch": 64, "start": 0.5, "end": 0.9}],
        "tempo": 100,
        "meter": "4/4",
        "aligned": False,
    }
)


def _result_folders() -> set[Path]:
    root = Path(ui_actions.tempfile.gettempdir()) / ui_actions.RESULTS_ROOT_NAME
    return set(root.iterdir()) if root.is_dir() else set()


@pytest.mark.parametrize("where", ["tempfile.mkdtemp", "pathlib.Path.mkdir"])
def test_a_full_disk_when_the_page_makes_a_request_folder(where, tune, monkeypatch):
    """`ui_actions.results_dir` (every page action's folder) says the disk is full in one line."""
    actions = {
        "accompany": lambda: ui_actions.accompany_endpoint(str(tune), "rules", 0, progress=_no_progress),
        "preview": lambda: ui_actions.preview(str(tune)),
        "recording": lambda: ui_actions.use_recording(RECORDING),
    }
    with monkeypatch.context() as patch:
        patch.setattr(where, _disk_full)
        with pytest.raises(StudioError, match=r"^the disk is full"):
            ui_actions.results_dir()
        for action in actions.values():
            with pytest.raises(gr.Error, match=r"The disk is full, so the result could not be saved"):
                action()
    assert ui_actions.accompany_endpoint(str(tune), "rules", 0, progress=_no_progress)[2]  # and the next request works


def test_a_full_disk_when_keeping_a_recording_leaves_nothing_behind(monkeypatch):
    before = _result_folders()
    with monkeypatch.context() as patch:
        patch.setattr("pathlib.Path.write_bytes", _disk_full)
        with pytest.raises(gr.Error, match=r"The disk is full"):
            ui_actions.use_recording(RECORDING)
    assert _result_folders() <= before  # neither the file nor its folder was left
    path = Path(ui_actions.use_recording(RECORDING))
    assert [n.pitch for n in read_midi(path).score.tracks[0].notes] == [60, 64]


# --------------------------------------------------------------------------- the sampling view (AR-CNN)


class _HangsWhileTracing:
    """An AR-CNN whose `sampling_trace` starts and does not come back until `release` is set."""

    def __init__(self, real) -> None:
        self.real = real
        self.release = threading.Event()

    def generate(self, *args):
        return self.real.generate(*args)

    def sampling_trace(self, *args):
        self.release.wait(60)
        return self.real.sampling_trace(*args)


class _RaisesWhileTracing(_HangsWhileTracing):
    def sampling_trace(self, *args):
        raise RuntimeError("out of memory")


def _arcnn_take(tune: Path, folder: Path) -> dict:
    """What the page keeps of an AR-CNN take (only what `sampling_views` reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"source": str(tune), "model": "arcnn-chorale", "seed": 3, "params": {"iterations": 4}, "midi": str(folder / "take.mid")}


def test_a_hung_sampling_view_times_out_and_the_page_goes_on(registry, tune, tmp_path, monkeypatch):
    """The AR-CNN's step-by-step view runs through the registry's time-out like a generation."""
    import studio.serving.registry
    from studio.serving.service import sampling_trace

    hangs = _HangsWhileTracing(registry.get("arcnn-chorale"))
    registry._models["arcnn-chorale"] = hangs
    monkeypatch.setattr(studio.serving.registry, "_default", registry)
    request = _request(tune, "arcnn-chorale", params={"iterations": 4}, out_dir=tmp_path / "trace")
    try:
        started = time.perf_counter()
        with pytest.raises(ModelError, match=r"^model arcnn-chorale took longer than 0.5 s: the studio stopped waiting"):
            sampling_trace(request, registry=registry)
        with pytest.raises(gr.Error, match=r"took longer than 0\.5 s"):
            ui_actions.sampling_views(_arcnn_take(tune, tmp_path / "page"))
        assert time.perf_counter() - started < 10
        with _patient(registry):
            assert accompany(_request(tune, "gan-quartet", out_dir=tmp_path, want_wav=False), registry).score.tracks
    finally:
        hangs.release.set()
    registry._models["arcnn-chorale"] = hangs.real
    registry.timeout_s = 60.0  # the real view, on a machine that may be busy: not a time-out test any more
    pictures, _note = ui_actions.sampling_views(_arcnn_take(tune, tmp_path / "again"))
    assert [caption for _png, caption in pictures] == ["after 1 of 4 iterations", "after 4 of 4 iterations"]
    assert all(Path(png).read_bytes()[:4] == b"\x89PNG" for png, _caption in pictures)


def test_a_failing_sampling_view_is_one_line(registry, tune, tmp_path, monkeypatch):
    import studio.serving.registry

    registry._models["arcnn-chorale"] = _RaisesWhileTracing(registry.get("arcnn-chorale"))
    monkeypatch.setattr(studio.serving.registry, "_default", registry)
    with pytest.raises(gr.Error, match=r"Model arcnn-chorale failed while generating \(RuntimeError: out of memory\)"):
        ui_actions.sampling_views(_arcnn_take(tune, tmp_path))

"""The benchmark suite's own plumbing (its figures are measured by `python -m studio bench`, not here):
choosing benchmarks and the device, and the parts that also run on a GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synth_checks import needs_audio

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "models,nope"], "error: unknown benchmark nope: choose from synthesis, models"),
        (["--only", "models", "--device", "tpu"], "error: unknown device 'tpu': use cpu or cuda"),
    ],
)
def test_bench_refuses_unknown_benchmarks_and_devices(args, message):
    done = subprocess.run([sys.executable, "-m", "studio", "bench", *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == message or done.stderr.strip().startswith(message), done.stderr
    assert "Traceback" not in done.stderr and done.stdout.strip() == ""


@needs_audio
def test_bench_json_prints_only_json_on_stdout():
    """`--json` is for programs: the whole standard output is one JSON document; the tables go to stderr.
    CI=1 as on a CI machine, where pyfluidsynth prints where it found libfluidsynth when imported."""
    done = subprocess.run(
        [sys.executable, "-m", "studio", "bench", "--json", "--quick", "--only", "overhead"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "CI": "1"},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert set(results) == {"machine", "overhead"} and results["overhead"]["request_s"] > 0
    assert "request overhead (16 bars)" in done.stderr and "machine:" in done.stderr


def test_loading_reports_every_shipped_model_from_a_fresh_process():
    from bench.loading import bench_loading, format_loading
    from studio.serving.registry import ModelRegistry

    report = bench_loading("cpu")
    shipped = [c.name for c in ModelRegistry().cards() if not c.disabled]
    assert report["device"] == "cpu" and report["models"] == shipped
    assert set(report["answered_at_s"]) == set(shipped)
    assert 0 < report["first_answer_s"] <= report["all_models_answered_s"] <= report["process_s"]
    assert report["rss_all_models_mb"] > 50 and "gpu_allocated_mb" not in report
    assert "loading on cpu" in format_loading(report)


def test_transformer_bench_runs_on_the_device_it_is_given():
    from bench.transformer import bench_transformer

    rows = bench_transformer(repeats=1, events=24, device="cpu")
    assert rows, "no Transformer is shipped"
    for row in rows.values():
        assert row["events"] == 24 and row["with_cache_s"] > 0 and row["without_cache_s"] > 0 and row["add_8_bars_s"] > 0


@needs_audio
def test_classroom_sessions_take_every_result_file_from_the_server():
    """A small classroom against a served studio: no failures, and each request's three files come back."""
    from bench.classroom import classroom, format_classroom

    result = classroom(sessions=2, requests_each=1, alone=1)
    assert result["failures"] == 0, result["failure_samples"]
    assert result["requests"] == 2 and result["fetch"] == "stream"
    assert result["fetched_mb"] > 0.1  # two WAVs, rolls and MIDI files, fetched and counted
    assert "results taken by stream" in format_classroom(result)


def test_real_coverage_counts_windows_as_the_coverage_line_does():
    """bench.real_coverage: 16-bar windows where the melody sounds in every bar; a window counts as
    covered when two voices sound in >= 95% of its bars (one silent bar in 16 is already 94%)."""
    import numpy as np

    from bench.real_coverage import window_coverage

    bar, bars = 8, 48
    melody = np.ones(bar * bars, bool)
    melody[40 * bar : 41 * bar] = False  # the third window has a bar without melody
    voices = np.ones((3, bar * bars), bool)
    voices[0, 3 * bar : 4 * bar] = False  # window 1: one voice misses a bar, two still cover it all
    voices[0, 17 * bar : 18 * bar] = False  # window 2: two voices miss a bar each
    voices[1, 20 * bar + 2 : 21 * bar] = False  # (a bar with a note in it still sounds: not this one's first steps)
    voices[1, 25 * bar : 26 * bar] = False
    rows = window_coverage(melody, voices, bar)
    assert [(whole, ok) for whole, ok, _ in rows] == [(True, True), (True, False), (False, True)]
    assert np.isclose(rows[0][2], 1 / 48) and np.isclose(rows[1][2], 2 / 48) and rows[2][2] == 0
    assert window_coverage(melody[: 15 * bar], voices[:, : 15 * bar], bar) == []  # shorter than a window


def test_the_answer_time_bench_makes_its_files_and_reads_each_answer(tmp_path):
    """`bench.answer_time`: every file it sends is one the studio lets in (within the upload limit),
    it reads a cut from a take's warnings, and a run times the command and the server alike."""
    from bench.answer_time import _outcome, bench_answer_time, heavy_files
    from studio.core.config import Limits

    files = heavy_files()
    assert {"tune-9min", "dense-10min", "wide-meter", "wide-meter-75s", "event-1h-after", "far-meter", "stacked-2MB"} < set(files)
    assert all(0 < len(data) <= Limits().max_upload_bytes for data in files.values())
    # the slow models' files sit at their limits through the command (a melody one beat longer is refused)
    from studio.serving.registry import ModelRegistry
    from studio.serving.service import AccompanyRequest, read_melody

    command = ModelRegistry(device="cpu")
    command.one_shot = True
    for name, model in (
        ("melody-76-beats", "diffusion-chorale"),
        ("melody-140-beats", "arcnn-chorale"),
        ("stacked-140-beats", "arcnn-chorale"),
    ):
        grid = read_melody(AccompanyRequest(files[name], model=model)).grid
        assert grid.n_steps / grid.steps_per_beat <= command.max_beats(model) < grid.n_steps / grid.steps_per_beat + 16, name
    said = "the audio stops at 4:04 of 8:58: the music is too long or dense to synthesize in the studio's answer time"
    assert _outcome(["melody taken from track 'Lead'", said]) == "cut at 4:04 of 8:58"
    assert _outcome(["melody taken from track 'Lead'"]) == "whole"
    result = bench_answer_time(("rules",), 1, ("event-1h-after",))
    row = result["files"]["event-1h-after"]
    assert row["answers"] == {"rules": "whole"}
    assert all(0.0 < row[way]["median_s"] <= row[way]["max_s"] for way in ("command", "server"))


def test_the_long_take_bench_repeats_its_tune_to_the_minutes_asked():
    """`bench.long_take.repeated_tune`: whole repeats of the sample tune, as near the minutes asked as
    whole repeats go, its length said right (the bench's per-minute figures rest on it), readable by
    the studio within its limits."""
    from bench.long_take import repeated_tune
    from studio.core.midi import read_midi

    (short, short_s), (long, long_s) = (repeated_tune(m) for m in (1.0, 9.0))
    one, nine = read_midi(short).score, read_midi(long).score
    assert len(nine.tracks[0].notes) % len(one.tracks[0].notes) == 0  # whole repeats of the same notes
    repeats = len(nine.tracks[0].notes) // len(one.tracks[0].notes)
    assert long_s == pytest.approx(nine.tick_to_seconds(nine.end_tick), abs=0.01)
    assert abs(long_s - 9 * 60) <= short_s / 2 and repeats > 1  # the nearest whole repeat of nine minutes

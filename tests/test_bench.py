"""The benchmark suite's own plumbing (its figures are measured by `python -m studio bench`, not here):
choosing benchmarks and the device, and the parts that also run on a GPU machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "models,nope"], "error: unknown benchmark nope: choose from synthesis, models"),
    (["--only", "models", "--device", "tpu"], "error: unknown device 'tpu': use cpu or cuda"),
])
def test_bench_refuses_unknown_benchmarks_and_devices(args, message):
    done = subprocess.run([sys.executable, "-m", "studio", "bench", *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == message or done.stderr.strip().startswith(message), done.stderr
    assert "Traceback" not in done.stderr and done.stdout.strip() == ""


def test_loading_reports_every_shipped_model_from_a_fresh_process():
    from bench.loading import bench_loading, format_loading
    from studio.registry import ModelRegistry

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


def test_classroom_sessions_take_every_result_file_from_the_server():
    """A small classroom against a served studio: no failures, and each request's three files come back."""
    from bench.classroom import classroom, format_classroom

    result = classroom(sessions=2, requests_each=1, alone=1)
    assert result["failures"] == 0, result["failure_samples"]
    assert result["requests"] == 2 and result["fetch"] == "stream"
    assert result["fetched_mb"] > 0.1  # two WAVs, rolls and MIDI files, fetched and counted
    assert "results taken by stream" in format_classroom(result)

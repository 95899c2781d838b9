"""A short soak (issue 10): 30 sequential `/accompany` calls against the served studio (the session's
`server` fixture), through `bench.soak`, whose long run is `python -m bench.soak --requests 1000`.

No call fails; the server's resident memory grows at most 10% after a warm-up of 10 calls; the
calls leave behind only what they returned (the studio's results folder and Gradio's copy of the
same files); and the running server removes result folders once they are an hour old.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.soak import ServerUnderTest, _age_results, dir_bytes, soak

CALLS, WARMUP = 35, 15
MELODIES = ["four_four.mid", "three_four_pickup.mid", "six_eight_minor.mid", "type0.mid", "multitrack_drums.mid"]


@pytest.fixture(scope="module")
def served(studio_server) -> ServerUnderTest:
    return ServerUnderTest(studio_server.url, studio_server.pid, Path(os.environ["GRADIO_TEMP_DIR"]), Path(os.environ["TMPDIR"]))


def test_short_soak(served, tune_paths):
    """5 melodies x 2 models: the warm-up plays each pair at least once, the 20 calls after it repeat them."""
    before = dir_bytes(served.gradio_temp) + dir_bytes(served.results)
    melodies = [tune_paths[name] for name in MELODIES]
    report = soak(served, CALLS, ["rules", "gan-chorale"], melodies, warmup=WARMUP, sample_every=5, new_session_every=10, progress=False)
    summary = report.summary()
    assert summary["failures"] == 0, summary["failure_examples"]
    assert summary["rss_growth"] <= 0.10, summary
    left = dir_bytes(served.gradio_temp) + dir_bytes(served.results) - before
    assert report.output_bytes > CALLS * 1000
    assert left <= 2 * report.output_bytes + 2**20, f"{left:,} bytes left for {report.output_bytes:,} bytes of outputs"


def test_the_running_server_cleans_results_an_hour_old(served, tune_paths):
    from gradio_client import Client, handle_file

    client = Client(served.url, verbose=False, download_files=False)
    client.predict(handle_file(str(tune_paths["four_four.mid"])), "rules", 0, api_name="/accompany")
    assert _age_results(served.results) >= 1
    client.predict(handle_file(str(tune_paths["two_four.mid"])), "rules", 0, api_name="/accompany")
    assert len(list(served.results.iterdir())) == 1  # only the folder of the call just made

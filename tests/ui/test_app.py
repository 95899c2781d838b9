"""The first page (`app.py`) served for real, and its `/accompany` API called with gradio_client."""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from studio.audio.synth import synth_status
from studio.core.midi import read_midi


def test_page_is_served(server):
    with urllib.request.urlopen(server, timeout=10) as response:
        html = response.read().decode()
    assert "Music Studio" in html or "gradio" in html.lower()


def _check_outputs(outputs) -> None:
    wav, png, midi = outputs
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    assert len(read_midi(midi).score.tracks) >= 3
    if not synth_status()[0]:
        pytest.skip(f"FluidSynth is not installed ({synth_status()[1]}): the audio output was not checked")
    assert Path(wav).read_bytes()[:4] == b"RIFF"


def test_accompany_api_returns_audio_roll_and_midi(server, tune_paths):
    client = Client(server, verbose=False)
    outputs = client.predict(handle_file(str(tune_paths["three_four_pickup.mid"])), "rules", 0, api_name="/accompany")
    _check_outputs(outputs)


def test_accompany_api_takes_chords_as_an_optional_fourth_input(server, tune_paths):
    client = Client(server, verbose=False)
    _wav, _png, midi = client.predict(handle_file(str(tune_paths["four_four.mid"])), "rules", 0, "G C | D G", api_name="/accompany")
    given = [m.text for m in read_midi(midi).score.markers if m.text.startswith("chord: ")]
    assert given[:4] == ["chord: G", "chord: C", "chord: D", "chord: G"]


def test_bad_file_gives_a_readable_error_and_the_server_keeps_serving(server, tmp_path, tune_paths):
    client = Client(server, verbose=False)
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x04\x01\xe0MTrk\x00\x00\x10\x00")
    with pytest.raises(Exception, match=r"truncated|damaged"):
        client.predict(handle_file(str(bad)), "rules", 0, api_name="/accompany")
    _check_outputs(client.predict(handle_file(str(tune_paths["six_eight_minor.mid"])), "rules", 1, api_name="/accompany"))


def test_two_sessions_at_once_get_their_own_results(server, tune_paths):
    tunes = [tune_paths["four_four.mid"], tune_paths["two_four.mid"]]

    def call(path):
        return Client(server, verbose=False).predict(handle_file(str(path)), "rules", 0, api_name="/accompany")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(call, tunes))
    for path, outputs in zip(tunes, results, strict=True):
        _check_outputs(outputs)
        melody_in = read_midi(path).score.tracks[0].notes
        melody_out = read_midi(outputs[2]).score.tracks[0].notes
        assert [n.pitch for n in melody_out] == [n.pitch for n in melody_in]
    assert results[0][2] != results[1][2]


def test_accompany_api_serves_the_gan(server, tune_paths):
    client = Client(server, verbose=False)
    outputs = client.predict(handle_file(str(tune_paths["six_eight_minor.mid"])), "gan-chorale", 3, api_name="/accompany")
    _check_outputs(outputs)
    names = [t.name for t in read_midi(outputs[2]).score.tracks]
    assert names[1:] == ["Alto", "Tenor", "Bass"]


def test_the_pages_controls_reach_the_model(tune_paths):
    """The generate button passes the chosen model's controls (built from its card) to the model:
    with no randomness left (temperature 0, steadiness 0, variety 0: the card's order) two seeds
    give the same music; with the defaults they do not."""
    from studio.ui.actions import generate

    def run(seed, *values):
        *_shown, take, _takes = generate(
            str(tune_paths["four_four.mid"]), "gan-chorale", seed, "", [], *values, progress=lambda *a, **k: None
        )
        return [(n.start, n.pitch) for t in read_midi(take["midi"]).score.tracks[1:] for n in t.notes]

    assert run(1, 0.0, 0.0, 0.0) == run(2, 0.0, 0.0, 0.0)
    assert run(1, 0.8, 0.0, 1.0) != run(2, 0.8, 0.0, 1.0)


def test_generate_api_takes_the_models_parameters(server, tune_paths):
    """`/generate`: the AR-CNN's enhance mode through the API rewrites the melody within its limits;
    bad parameters come back as a readable error."""
    client = Client(server, verbose=False)
    source = tune_paths["two_four.mid"]
    wav, png, midi = client.predict(
        handle_file(str(source)), "arcnn-chorale", 2, '{"mode": "enhance", "max_removed": 0.25, "max_added": 3}', api_name="/generate"
    )
    _check_outputs((wav, png, midi))
    before = {(n.start, n.pitch) for n in read_midi(source).score.tracks[0].notes}
    after = {(n.start, n.pitch) for n in read_midi(midi).score.tracks[0].notes}
    assert len(after - before) <= 3 and len(before - after) <= int(0.25 * len(before))
    with pytest.raises(Exception, match="JSON object"):
        client.predict(handle_file(str(source)), "arcnn-chorale", 2, "mode=enhance", api_name="/generate")
    with pytest.raises(Exception, match="max_added"):
        client.predict(handle_file(str(source)), "arcnn-chorale", 2, '{"max_added": 1000}', api_name="/generate")


def test_a_studio_that_cannot_start_is_reported_with_its_last_output(tmp_path):
    """`bench.launch` (the `server` fixture, bench.startup, bench.soak) says why the server never answered."""
    from bench.launch import launch_studio

    with pytest.raises(RuntimeError, match=r"(?s)app\.py exited with status 1 before serving its page.*STUDIO_TIMEOUT_S must be a number"):
        launch_studio({"STUDIO_TIMEOUT_S": "abc"}, log=tmp_path / "server.log", timeout_s=60)


def test_the_server_keeps_a_bounded_number_of_sessions(monkeypatch, tmp_path):
    """Gradio keeps each session's state (about 110 KB for this page) up to `MAX_SESSIONS`, not its 10,000."""
    from gradio.state_holder import StateHolder

    from studio.ui.page import MAX_SESSIONS, build_app, launch_options

    # A cache folder of its own: closing this app empties its cache (delete_cache), which must not take
    # the sample melodies from under the session's test server (their copies share names by content).
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    app = build_app()
    app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, **launch_options())
    try:
        holder = StateHolder()
        holder.set_blocks(app)
        assert holder.capacity == MAX_SESSIONS <= 1000  # beyond it, Gradio forgets the session used longest ago
    finally:
        app.close()


def test_generations_at_once_follow_studio_workers(monkeypatch):
    """Every generating route is one Gradio group that lets in what the fair scheduler admits; the
    scheduler runs `generation_workers()` at once: one per core, or STUDIO_WORKERS."""
    import os

    from studio.core.errors import InputError
    from studio.serving.fairness import FairnessConfig
    from studio.ui.page import build_app, generation_workers, launch_options

    monkeypatch.delenv("STUDIO_WORKERS", raising=False)
    assert generation_workers() == max(1, os.cpu_count() or 2)
    monkeypatch.setenv("STUDIO_WORKERS", "3")
    assert generation_workers() == 3 == FairnessConfig.from_env().slots
    app = build_app()
    limits = {fn.name: fn.concurrency_limit for fn in app.fns.values() if fn.concurrency_id == "generate"}
    admitted = FairnessConfig().max_admitted
    assert limits.get("accompany_endpoint") == admitted and set(limits.values()) == {admitted}
    assert {"generate_take", "sampling_views_for_page", "interpolate_endpoint", "interpolate_for_page"} <= set(limits)
    assert launch_options()["max_threads"] > admitted  # a thread for each admitted request, and the light events' own
    for bad in ("0", "two", "65"):
        monkeypatch.setenv("STUDIO_WORKERS", bad)
        with pytest.raises(InputError, match="STUDIO_WORKERS must be a whole number from 1 to 64"):
            generation_workers()


def test_regenerate_api_writes_bars_of_a_take_again(server, tune_paths):
    """`/regenerate`: a take from `/generate`, then its bars 2-3 of the alto and bass written again
    (model, seed, bars, voices, parameters): notes starting outside them are the take's own; a voice
    the model does not have comes back as a readable error."""
    client = Client(server, verbose=False)
    _wav, _png, take = client.predict(handle_file(str(tune_paths["four_four.mid"])), "gan-chorale", 0, "{}", api_name="/generate")
    outputs = client.predict(handle_file(take), "gan-chorale", 4, "2-3", "Alto,Bass", '{"temperature": 0.9}', api_name="/regenerate")
    _check_outputs(outputs)
    before, after = read_midi(take).score, read_midi(outputs[2]).score
    bar = 4 * before.ticks_per_beat
    for old, new in zip(before.tracks, after.tracks, strict=True):
        kept = [
            {(n.start, n.end, n.pitch, n.velocity) for n in t.notes if old.name == "Tenor" or not bar <= n.start < 3 * bar}
            for t in (old, new)
        ]
        assert kept[0] == kept[1], old.name
    with pytest.raises(Exception, match="no voice 'Soprano'"):
        client.predict(handle_file(take), "gan-chorale", 4, "2-3", "Soprano", "{}", api_name="/regenerate")

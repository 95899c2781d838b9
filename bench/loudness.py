"""Loudness of the studio's WAVs (issue 21, "the mix"), and what the loudness step costs.

For every shipped model on every sample melody (``assets/melodies``, seed 0) a take is made with
`accompany` and its WAV is measured with independent code: integrated loudness by ITU-R BS.1770 with
`pyloudnorm`'s own meter, true peak as the peak of the WAV oversampled 4x by
`scipy.signal.resample_poly` (the whole file), int16 samples at full scale. The melody's lead is
measured on the WAV itself: the take's MIDI is rendered twice through the mixer's own path
(`studio.audio.mixing`: every track kept, the accompaniment muted, then the melody muted) with no
loudness step, and the WAV is split by least squares into ``g_m * melody + g_a * accompaniment``
(exact when the mix is such a sum, as it is unless the limiter acted); the two parts are measured
with `pyloudnorm` and "lead" is melody minus accompaniment in LU. The studio's own true peak
(`studio.audio.loudness.true_peak`, which oversamples only near the loudest samples) is checked
against the whole file's: "search miss" is how far under it it came (0 when it found the peak).

The cost: a 16-bar request (`accompany`, the default model, the bench's 16 bars of Yankee Doodle)
with the loudness step and with it switched off (``SynthConfig(loudness_lufs=None)``: one render,
scaled down only to its peak limit, as before issue 21), interleaved, medians of the wall time and
of the process's CPU time compared; and what the step's CPU time is made of (`bench_cost_parts`).

Run ``python -m bench.loudness`` (``--quick``: 3 tunes; ``--cost-only N``: only the cost, N pairs;
``--json`` for the raw result), or ``python -m studio bench --only loudness``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

__all__ = ["bench_cost", "bench_cost_parts", "bench_loudness", "format_cost", "format_loudness", "measure_take"]

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assets" / "melodies"


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, wav.getnchannels())
    return data, rate


def _raw_config():
    """The synthesizer's settings without the loudness step (the old behaviour), on code with or without it."""
    from studio.audio.synth import SynthConfig

    fields = {f.name for f in dataclasses.fields(SynthConfig)}
    return SynthConfig(loudness_lufs=None) if "loudness_lufs" in fields else SynthConfig()


def _stems(midi_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The take's melody alone and accompaniment alone as float arrays (N, 2), through the mixer's path
    (every track kept, the others muted by channel volume), rendered with no loudness step."""
    from studio.audio.mixing import TrackMix, channel_volume, mix_score, take_tracks
    from studio.audio.synth import render_midi
    from studio.core import midi

    score = midi.read_midi(midi_path).score
    tracks = take_tracks(midi_path)
    out = []
    for melody_on in (True, False):
        mixes = [TrackMix(t.program, mute=(t.index == 0) != melody_on) for t in tracks]
        data = midi.write_midi(mix_score(score, mixes), volumes=[channel_volume(m) for m in mixes])
        out.append(render_midi(data, _raw_config()).astype(np.float64) / 32767.0)
    return out[0], out[1]


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.concatenate([x, np.zeros((n - len(x), x.shape[1]))])


def _studio_true_peak(x: np.ndarray) -> float:
    """The studio's own true peak (oversampled only near the loudest samples), when it has one, to
    check it against the whole file's: 0 on code without it."""
    try:
        from studio.audio.loudness import true_peak
    except ImportError:
        return 0.0
    return true_peak(x)


def measure_take(midi_path: str | Path, wav_path: str | Path) -> dict[str, float]:
    """Integrated loudness (LUFS), true peak (dBTP), samples at int16 full scale, and the melody's lead
    (melody minus accompaniment, LU) of a take's WAV, measured as the module's notes say."""
    import pyloudnorm
    from scipy.signal import resample_poly

    audio, rate = _read_wav(Path(wav_path))
    x = audio.astype(np.float64) / 32767.0
    meter = pyloudnorm.Meter(rate)
    lufs = float(meter.integrated_loudness(x))
    tp = float(np.max(np.abs(resample_poly(x, 4, 1, axis=0))))
    fast = _studio_true_peak(x)
    melody, accompaniment = (_fit(s, len(x)) for s in _stems(Path(midi_path)))
    basis = np.stack([melody.reshape(-1), accompaniment.reshape(-1)], axis=1)
    (g_m, g_a), *_ = np.linalg.lstsq(basis, x.reshape(-1), rcond=None)
    lead = float(meter.integrated_loudness(g_m * melody) - meter.integrated_loudness(g_a * accompaniment))
    return {
        "lufs": round(lufs, 3),
        "true_peak_dbtp": round(float(20 * np.log10(tp)), 2) if tp > 0 else -120.0,
        "full_scale_samples": int(np.count_nonzero(np.abs(audio.astype(np.int32)) >= 32767)),
        "true_peak_search_miss_db": round(max(0.0, float(20 * np.log10(tp / fast))), 6) if fast > 0 else 0.0,
        "lead_lu": round(lead, 2),
    }


def _summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    lufs = [r["lufs"] for r in rows]
    lead = [r["lead_lu"] for r in rows if np.isfinite(r["lead_lu"])] or [float("nan")]  # melody-only models: none
    return {
        "takes": len(rows),
        "lufs_mean": round(statistics.fmean(lufs), 2),
        "lufs_min": min(lufs),
        "lufs_max": max(lufs),
        "true_peak_max_dbtp": max(r["true_peak_dbtp"] for r in rows),
        "full_scale_samples": sum(r["full_scale_samples"] for r in rows),
        "true_peak_search_miss_db": max(r.get("true_peak_search_miss_db", 0.0) for r in rows),
        "lead_mean_lu": round(statistics.fmean(lead), 2),
        "lead_min_lu": min(lead),
    }


def bench_cost(repeats: int = 7) -> dict[str, Any]:
    """A 16-bar request with and without the loudness step, interleaved (with, without, with, ...):
    medians of the wall time and of the process's CPU time (every thread: the render threads, the
    piano roll's, LAME's), their ratios, and the load average over the run."""
    import os

    from bench.models import melody_of_bars
    from studio.audio import synth
    from studio.core.midi import write_midi
    from studio.serving.service import AccompanyRequest, accompany

    data = write_midi(melody_of_bars(16))
    without = _raw_config()
    with tempfile.TemporaryDirectory() as tmp:

        def request() -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            accompany(AccompanyRequest(data, out_dir=tmp))
            return time.perf_counter() - start, time.process_time() - cpu

        request()  # warm: SoundFont, imports, model, both engines
        with mock.patch.object(synth, "SynthConfig", lambda: without):
            request()
        with_step, without_step = [], []
        for _ in range(repeats):
            with_step.append(request())
            with mock.patch.object(synth, "SynthConfig", lambda: without):
                without_step.append(request())
    w, wo = (statistics.median(t for t, _ in runs) for runs in (with_step, without_step))
    cw, cwo = (statistics.median(c for _, c in runs) for runs in (with_step, without_step))
    return {
        "bars": 16,
        "repeats": repeats,
        "with_s": round(w, 4),
        "without_s": round(wo, 4),
        "ratio": round(w / wo, 3),
        "cpu_with_s": round(cw, 4),
        "cpu_without_s": round(cwo, 4),
        "cpu_ratio": round(cw / cwo, 3),
        "load_average": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }


def bench_cost_parts(repeats: int = 15) -> dict[str, Any]:
    """What the loudness step's CPU time is made of, on the 16-bar request's take (default model):
    medians of each part's CPU time (one thread each, so none overlaps another), in seconds.

    ``whole``: the take rendered on one engine without the step (what a request without it
    renders); ``predict``: the melody's and the accompaniment's loudness predicted from the notes
    and the accompaniment's gain (`studio.audio.synth.balance.rest_gain`, the notes' envelopes
    known); ``measure_mix``: `loudness.hop_loudness` of the take; ``true_peak``: `loudness.true_peak`
    of it; ``render_with`` / ``render_without``: the CPU time of the process for `render_midi` with
    the step (every thread) and without.
    """
    from bench.models import melody_of_bars
    from studio.audio import loudness, synth
    from studio.audio.synth import engine
    from studio.audio.synth.balance import rest_gain
    from studio.audio.synth.split import scan_midi
    from studio.core import midi
    from studio.serving.service import AccompanyRequest, accompany

    with tempfile.TemporaryDirectory() as tmp:
        take = accompany(AccompanyRequest(midi.write_midi(melody_of_bars(16)), out_dir=tmp, want_png=False, want_listen=False))
        data = Path(take.midi_path).read_bytes()
    score = midi.read_midi(data).score
    lead = synth.Lead((midi.track_channels(score.tracks)[0],))
    split = scan_midi(data)
    assert split is not None
    raw = _raw_config()
    config = synth.SynthConfig()
    mix = synth.render_midi(data, raw).astype(np.float32) / 32767.0
    rate = config.sample_rate

    def cpu(work: Any, clock: Any = time.thread_time) -> float:
        start = clock()
        work()
        return clock() - start

    def predict() -> float:
        engines = engine.POOL.acquire(config)
        try:
            return rest_gain(split, lead, engines[0], config)
        finally:
            engine.POOL.release(engines)

    parts: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, work, clock in (
            ("whole", lambda: synth.render_midi(data, raw), time.thread_time),
            ("predict", predict, time.thread_time),
            ("measure_mix", lambda: loudness.hop_loudness(mix, rate), time.thread_time),
            ("true_peak", lambda: loudness.true_peak(mix), time.thread_time),
            ("render_with", lambda: synth.render_midi(data, config, lead), time.process_time),
            ("render_without", lambda: synth.render_midi(data, raw), time.process_time),
        ):
            parts.setdefault(name, []).append(cpu(work, clock))
    out = {name: round(statistics.median(times), 4) for name, times in parts.items()}
    out["repeats"] = repeats
    return out


def bench_loudness(tunes: int | None = None, repeats: int = 7, models: list[str] | None = None) -> dict[str, Any]:
    """Every shipped model (or `models`) on the first `tunes` sample melodies (default: all), seed 0:
    per-model loudness figures, every take's figures, and the 16-bar request's cost."""
    from studio.serving.registry import default_registry
    from studio.serving.service import AccompanyRequest, accompany

    names = models or sorted(c.name for c in default_registry().cards() if not c.disabled)
    files = [e["file"] for e in json.loads((SAMPLES / "index.json").read_text())][:tunes]
    takes: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            takes[name] = {}
            for tune in files:
                result = accompany(
                    AccompanyRequest(
                        SAMPLES / tune, model=name, seed=0, out_dir=tmp, name=Path(tune).stem, want_png=False, want_listen=False
                    )
                )
                takes[name][tune] = measure_take(result.midi_path, result.wav_path)
    per_model = {name: _summary(list(rows.values())) for name, rows in takes.items()}
    means = [m["lufs_mean"] for m in per_model.values()]
    return {
        "models": per_model,
        "spread_of_model_means_lu": round(max(means) - min(means), 2),
        "takes": takes,
        "cost": bench_cost(repeats) if repeats else None,
    }


def format_loudness(result: dict[str, Any]) -> str:
    lines = [
        "loudness (seed 0, sample melodies): model, takes, LUFS mean [min, max], true peak max, full-scale samples, lead mean/min (LU)"
    ]
    for name, m in result["models"].items():
        lines.append(
            f"  {name:<18} {m['takes']:>3}  {m['lufs_mean']:7.2f} [{m['lufs_min']:7.2f}, {m['lufs_max']:7.2f}]  "
            f"{m['true_peak_max_dbtp']:6.2f} dBTP  {m['full_scale_samples']:>3}  {m['lead_mean_lu']:+6.2f} / {m['lead_min_lu']:+6.2f}"
        )
    lines.append(f"  spread of the models' mean loudness: {result['spread_of_model_means_lu']} LU")
    miss = max((m.get("true_peak_search_miss_db", 0.0) for m in result["models"].values()), default=0.0)
    lines.append(f"  the studio's true peak under the whole file's by at most {miss} dB")
    if result.get("cost"):
        lines.append(format_cost(result["cost"]))
    return "\n".join(lines)


def format_cost(cost: dict[str, Any]) -> str:
    line = (
        f"  16-bar request: with the loudness step {cost['with_s']:.3f} s, without {cost['without_s']:.3f} s "
        f"(median of {cost['repeats']}, interleaved): x{cost['ratio']} (bound x1.05); CPU time of the process "
        f"{cost['cpu_with_s']:.3f} s / {cost['cpu_without_s']:.3f} s: x{cost['cpu_ratio']} "
        f"(load average {cost['load_average']} on {cost['cores']} cores)"
    )
    parts = cost.get("parts")
    if parts:
        line += (
            f"\n  its CPU time (s, median of {parts['repeats']}): render_midi {parts['render_with']:.4f} with the step, "
            f"{parts['render_without']:.4f} without; the take rendered {parts['whole']:.4f}; the balance predicted "
            f"{parts['predict']:.4f}; measuring the mix {parts['measure_mix']:.4f}; true peak {parts['true_peak']:.4f}"
        )
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 tunes, 3 repeats")
    parser.add_argument("--models", help="comma-separated models (default: every shipped one)")
    parser.add_argument("--no-cost", action="store_true", help="skip the 16-bar request timing")
    parser.add_argument("--cost-only", type=int, metavar="N", help="only the 16-bar request timing, N interleaved pairs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from studio.serving.process import apply_process_settings

    apply_process_settings()  # as the server and `python -m studio bench` run: a 1 ms GIL switch interval
    if args.cost_only:
        cost = bench_cost(args.cost_only)
        cost["parts"] = bench_cost_parts()
        print(json.dumps(cost, indent=1) if args.json else format_cost(cost))
        return 0
    result = bench_loudness(
        tunes=3 if args.quick else None,
        repeats=0 if args.no_cost else (3 if args.quick else 7),
        models=args.models.split(",") if args.models else None,
    )
    print(json.dumps(result, indent=1) if args.json else format_loudness(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

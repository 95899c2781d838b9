"""How long the studio takes to answer the heaviest files it admits, and the hostile ones it cuts or
refuses (issue 23: every such file answered within 5 s on the project's 2-core machine).

Each file is accompanied by every model asked for, two ways, as a person meets them:
- the command: ``python -m studio generate FILE --model M`` in a fresh process (MIDI, WAV and
  piano roll; starting Python, torch and the model included), wall time to its exit;
- the server: `studio.serving.service.accompany` with the models already loaded, writing what the
  page shows (MIDI, WAV, its MP3 copy and the roll).
A refusal (exit 2, a clear line) is an answer too. Reported: each file's slowest model, each way,
and what it answered (whole, the audio cut, or refused), against `BOUND_S`.

The files are made here: a sample tune repeated to nine minutes (real music at the length limit),
four tracks of 5,000 notes each in ten minutes (as many notes as the limit allows, as long as it
allows), 19,999 notes under a 255/1 meter in 50 s and in 75 s (the most notes the synthesis budget
played whole before it charged each note, 2026-12-07), a tune followed by a meter change an hour later,
a meter change 10^9 bars away, and 2 MB of one note struck over and over (`tests/midi_factory.py`);
and for the models that take time in proportion to the melody (``--models all``): a real melody as long
as the diffusion model (76 beats) and the AR-CNN (140) take through the command, and 19,840 notes
stacked in 140 beats.

Run ``python -m bench.answer_time [--models all] [--repeats 2] [--json]``, or
``python -m studio bench --only answer``. The machine's load moves single readings by +-0.5 s:
run it on a quiet machine, and read the medians as well as the slowest.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fuzz import _factory
from bench.long_take import repeated_tune
from studio.core.config import REPO_ROOT

__all__ = ["BOUND_S", "bench_answer_time", "format_answer_time", "heavy_files"]

BOUND_S = 5.0
LIGHT_MODELS = ("rules", "gan-chorale", "gan-quartet", "gan-renaissance", "transformer-folk", "vae-folk")
"""The models that accept music of any length; the AR-CNN and the diffusion model refuse a melody
longer than they can write in the studio's answer time (a clear line, at once)."""


def _dense(minutes: float = 9.8, tracks: int = 4, per_track: int = 5_000) -> bytes:
    """`tracks` piano tracks of `per_track` short notes each, spread evenly over `minutes` at 120 qpm."""
    mf = _factory()
    beats = minutes * 120.0
    step = beats / per_track
    parts = [
        mf._note_events([(i * step, step * 0.9, 48 + (7 * i + 5 * t) % 36) for i in range(per_track)], 480, channel=t)
        for t in range(tracks)
    ]
    return mf.midi_from_tracks([mf._conductor(), *parts], 480)


def _melody_of_beats(beats: int) -> bytes:
    """Yankee Doodle (2/4, 110 qpm) repeated to `beats` beats: a real melody at a slow model's limit."""
    from bench.models import melody_of_bars
    from studio.core.midi import write_midi

    return write_midi(melody_of_bars(beats // 2))


def _stacked(beats: int = 140, notes: int = 19_840) -> bytes:
    """`notes` sixteenths stacked in chords of equal size over `beats` beats of 4/4 in 75 s: the most notes
    the studio takes, in a melody as long as the AR-CNN takes through the command."""
    mf = _factory()
    per = -(-notes // (beats * 4))
    events = mf._note_events([((i // per) / 4, 0.25, 30 + (i % per) * 2 % 80) for i in range(notes)], 960)
    conductor = [(0, mf._time_signature(4, 4)), (0, mf._tempo(round(75e6 / beats)))]
    return mf.midi_from_tracks([conductor, [(0, mf._track_name("Melody")), *events]], 960)


def heavy_files() -> dict[str, bytes]:
    """The files the bench answers, by name."""
    mf = _factory()
    return {
        "melody-76-beats": _melody_of_beats(76),
        "melody-140-beats": _melody_of_beats(140),
        "stacked-140-beats": _stacked(),
        "tune-9min": repeated_tune(9.0)[0],
        "dense-10min": _dense(),
        "wide-meter": mf.wide_meter(),
        "wide-meter-75s": mf.wide_meter(microseconds_per_beat=30_000),
        "event-1h-after": mf.events_after_music(),
        "far-meter": mf.far_meter_change(),
        "stacked-2MB": mf.stacked_note_ons(),
    }


def _outcome(warnings: list[str]) -> str:
    """The answer a take's warnings tell: "whole", or where its audio was cut ("cut at 4:04 of 8:58")."""
    for warning in warnings:
        found = re.search(r"audio stops at (\d+:\d\d) of (\d+:\d\d)", warning)
        if found:
            return f"cut at {found[1]} of {found[2]}"
    return "whole"


def _command(path: Path, model: str, out_dir: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "studio", "generate", str(path), "--model", model, "--out-dir", str(out_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode == 2:
        return wall, "refused"
    if done.returncode != 0:
        raise RuntimeError(f"studio generate {path.name} --model {model}: exit {done.returncode}: {done.stderr[-300:]}")
    return wall, _outcome([line for line in done.stderr.splitlines() if line.startswith("warning:")])


def _server(data: bytes, model: str, out_dir: Path) -> tuple[float, str]:
    from studio.core.errors import InputError
    from studio.serving.service import AccompanyRequest, accompany

    start = time.perf_counter()
    try:
        result = accompany(AccompanyRequest(data, model=model, out_dir=out_dir))
    except InputError:
        return time.perf_counter() - start, "refused"
    return time.perf_counter() - start, _outcome(result.warnings)


def bench_answer_time(models: tuple[str, ...] = LIGHT_MODELS, repeats: int = 2, files: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Wall seconds of every file through every model, each way, `repeats` times (interleaved)."""
    from studio.serving.service import AccompanyRequest, accompany

    chosen = {k: v for k, v in heavy_files().items() if files is None or k in files}
    runs: dict[str, dict[str, dict[str, list[float]]]] = {
        way: {f: {m: [] for m in models} for f in chosen} for way in ("command", "server")
    }
    said: dict[str, dict[str, str]] = {f: {} for f in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sample = (REPO_ROOT / "assets" / "melodies" / "chester.mid").read_bytes()
        for model in models:  # the server's models loaded first, as a running studio has them
            accompany(AccompanyRequest(sample, model=model, out_dir=folder))
        paths = {}
        for name, data in chosen.items():
            paths[name] = folder / f"{name}.mid"
            paths[name].write_bytes(data)
        for _ in range(repeats):
            for name, data in chosen.items():
                for model in models:
                    wall, outcome = _command(paths[name], model, folder)
                    runs["command"][name][model].append(wall)
                    said[name][model] = outcome
                    wall, _ = _server(data, model, folder)
                    runs["server"][name][model].append(wall)
    table = {}
    for name in chosen:
        row = {}
        for way in ("command", "server"):
            slowest = max(models, key=lambda m: statistics.median(runs[way][name][m]))
            row[way] = {
                "slowest_model": slowest,
                "median_s": round(statistics.median(runs[way][name][slowest]), 2),
                "max_s": round(max(runs[way][name][slowest]), 2),
            }
        row["answers"] = said[name]
        table[name] = row
    return {"bound_s": BOUND_S, "repeats": repeats, "models": list(models), "files": table, "runs": runs}


def format_answer_time(result: dict[str, Any]) -> str:
    lines = [f"answer time (bound {result['bound_s']} s; median / slowest of {result['repeats']}, the slowest model):"]
    for name, row in result["files"].items():
        ways = "; ".join(
            f"{way} {row[way]['median_s']} / {row[way]['max_s']} s ({row[way]['slowest_model']})" for way in ("command", "server")
        )
        answers = sorted(set(row["answers"].values()))
        lines.append(f"  {name:15s} {ways}; answered: {', '.join(answers)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answer_time", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default=",".join(LIGHT_MODELS), help="comma-separated models, or all (default: those that take any length)"
    )
    parser.add_argument("--files", default="", help="comma-separated file names (default: all)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each file and model, interleaved (default 2)")
    parser.add_argument("--json", action="store_true", help="print the raw result as JSON")
    args = parser.parse_args(argv)
    if args.models == "all":
        from studio.serving.registry import default_registry

        models = tuple(default_registry().names())
    else:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    files = tuple(f.strip() for f in args.files.split(",") if f.strip()) or None
    result = bench_answer_time(models, args.repeats, files)
    print(json.dumps(result, indent=2) if args.json else format_answer_time(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

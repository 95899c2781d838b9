"""Long takes: what a take costs per minute of music, in time and memory, through the command.

The studio accepts up to ten minutes of music (`studio.core.config.Limits`). A sample tune
(``assets/melodies/chester.mid``, 77 s) repeated to about 1 and 4 minutes is accompanied by
``python -m studio generate`` (MIDI, WAV and piano roll, as a person runs it), each run a fresh
process, the two lengths interleaved; the process's peak resident memory is read from the kernel
(``os.wait4``'s ``ru_maxrss``). Reported: the medians, and per minute of music beyond the first what
the longer take adds: seconds and MB. Float audio is 10.6 MB a minute a stereo stem; the take
holds its two stems while it mixes them and one copy after (`studio.audio.synth.render`), so about
40-60 MB a minute is what the audio needs (2026-12-07: 1.6-1.7 GB for 9 minutes before the stems
were measured and summed in pieces, 0.70 GB after; docs/reliability.md). The longer take stays
within the synthesis budget (`SynthConfig.render_budget`, which cuts the nine-minute tune's audio
after 3:46-3:47 with a four-voice GAN, 4:30 with `rules`; the 3:50 one is whole), so every minute
measured is a minute rendered (the
first figures of 2026-12-07 used 9 minutes, before the budget; then 5, before it was lowered).

Run ``python -m bench.long_take [--model rules] [--repeats 2] [--json]``, or
``python -m studio bench --only long``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from studio.core.config import REPO_ROOT

__all__ = ["bench_long_take", "format_long_take", "repeated_tune"]

TUNE = REPO_ROOT / "assets" / "melodies" / "chester.mid"
MINUTES = (1.0, 4.0)


def repeated_tune(minutes: float, source: Path = TUNE) -> tuple[bytes, float]:
    """The melody of `source` repeated, whole bars at a time, to the nearest whole repeat of `minutes`
    of music (at least once): the MIDI file, and its music's length in seconds."""
    from studio.core import midi
    from studio.core.score import Note, Score, Track

    score = midi.read_midi(source).score
    melody = score.tracks[0]
    bar = score.ticks_per_beat * 4
    span = -(-max(n.end for n in melody.notes) // bar) * bar
    repeats = max(1, round(minutes * 60.0 / score.tick_to_seconds(span)))
    notes = [Note(n.start + r * span, n.end + r * span, n.pitch, n.velocity) for r in range(repeats) for n in melody.notes]
    long = Score(score.ticks_per_beat, [Track(melody.name, melody.program, False, 0, notes)], score.tempos, score.time_signatures)
    return midi.write_midi(long, title=f"{source.stem} x{repeats}"), long.tick_to_seconds(max(n.end for n in notes))


def _run(path: Path, model: str, out_dir: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one `python -m studio generate` process."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child cannot block on it
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "studio", "generate", str(path), "--model", model, "--out-dir", str(out_dir)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own resource use, peak memory included
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"studio generate failed on {path.name}: {errors.read().decode(errors='replace')[-300:]}")
    return wall, usage.ru_maxrss / 1024.0  # kB on Linux


def bench_long_take(model: str = "rules", repeats: int = 2) -> dict[str, Any]:
    """Medians of wall time and peak memory for the tune at each of `MINUTES`, and what each minute adds."""
    runs: dict[float, list[tuple[float, float]]] = {m: [] for m in MINUTES}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files, lengths = {}, {}
        for minutes in MINUTES:
            data, seconds = repeated_tune(minutes)
            files[minutes], lengths[minutes] = folder / f"tune-{minutes:g}min.mid", seconds / 60.0
            files[minutes].write_bytes(data)
        for _ in range(repeats):
            for minutes in MINUTES:
                runs[minutes].append(_run(files[minutes], model, folder))
    wall = {m: statistics.median(w for w, _ in r) for m, r in runs.items()}
    peak = {m: statistics.median(p for _, p in r) for m, r in runs.items()}
    short, long = MINUTES
    added = lengths[long] - lengths[short]  # minutes of music the longer take adds
    name = {m: f"{lengths[m]:.1f} min" for m in MINUTES}
    return {
        "model": model,
        "repeats": repeats,
        "wall_s": {name[m]: round(w, 2) for m, w in wall.items()},
        "peak_mb": {name[m]: round(p) for m, p in peak.items()},
        "seconds_per_minute": round((wall[long] - wall[short]) / added, 3),
        "mb_per_minute": round((peak[long] - peak[short]) / added, 1),
        "runs": {name[m]: [(round(w, 2), round(p)) for w, p in r] for m, r in runs.items()},
    }


def format_long_take(result: dict[str, Any]) -> str:
    wall, peak = result["wall_s"], result["peak_mb"]
    return (
        f"long takes ({result['model']}, `studio generate`, medians of {result['repeats']}): "
        + ", ".join(f"{k} {wall[k]} s / {peak[k]} MB" for k in wall)
        + f"; each minute adds {result['seconds_per_minute']} s and {result['mb_per_minute']} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_take", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="rules", help="the accompanist (default rules)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each length, interleaved (default 2)")
    parser.add_argument("--json", action="store_true", help="print the raw result as JSON")
    args = parser.parse_args(argv)
    result = bench_long_take(args.model, args.repeats)
    print(json.dumps(result, indent=2) if args.json else format_long_take(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

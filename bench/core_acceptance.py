"""Measure the studio core's acceptance figures through the real CLI, on the real test tunes:
melody kept, accompaniment coverage, WAV length/loudness/clipping, musical floor, bad-input refusal
time, and the long/dense files. Usage: python -m bench.core_acceptance [--json]"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from studio.core.config import REPO_ROOT
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import bar_coverage, consonance, in_key_rate, melody_key
from studio.core.midi import read_midi
from studio.core.roll import make_grid, notes_to_roll

TUNES = REPO_ROOT / "tests" / "data" / "tunes"
KINDS = ["four_four", "three_four_pickup", "six_eight_minor", "type0", "tempo_change", "high_register_channel", "multitrack_drums"]


def _cli(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, cwd=REPO_ROOT)
    return done, time.perf_counter() - start


def tune_rows(tmp: Path) -> list[dict]:
    rows = []
    for kind in KINDS:
        src = TUNES / f"{kind}.mid"
        mid, wav, png = tmp / f"{kind}.mid", tmp / f"{kind}.wav", tmp / f"{kind}.png"
        done, seconds = _cli("generate", str(src), "--out-midi", str(mid), "--out-wav", str(wav), "--out-png", str(png))
        if done.returncode:
            rows.append({"tune": kind, "error": done.stderr.strip()})
            continue
        original = read_midi(src).score
        melody = extract_melody(original).track
        out = read_midi(mid).score
        grid = make_grid(out, estimate_pickup(melody.notes, original))
        mel = notes_to_roll(melody.notes, grid, "Melody", 0)
        acc = [notes_to_roll(t.notes, grid, t.name, t.program) for t in out.tracks[1:]]
        with wave.open(str(wav)) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
            wav_s = w.getnframes() / w.getframerate()
        rms = np.sqrt(np.mean(audio**2)) / 32768
        rows.append(
            {
                "tune": kind,
                "melody_kept": out.tracks[0].notes == melody.notes,
                "accompaniment_tracks": len(acc),
                "min_coverage": round(min(bar_coverage(t, grid, mel) for t in acc), 3),
                "in_key": round(in_key_rate(acc, melody_key(mel)), 3),
                "consonance": round(consonance(mel, acc), 3),
                "music_s": round(out.duration_seconds, 2),
                "wav_minus_music_s": round(wav_s - out.duration_seconds, 2),
                "rms_dbfs": round(20 * np.log10(rms), 1),
                "peak": int(np.abs(audio).max()),
                "png_kb": png.stat().st_size // 1024,
                "cli_s": round(seconds, 2),
            }
        )
    return rows


def bad_rows(tmp: Path) -> list[dict]:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import midi_factory as mf

    makers = {
        "empty": mf.empty_bytes,
        "random bytes": mf.random_bytes,
        "truncated": mf.truncated,
        "PNG renamed": mf.png_renamed,
        "WAV renamed": mf.wav_renamed,
        "text renamed": mf.text_renamed,
        "lying header": mf.lying_track_count,
        "drums only": mf.drums_only,
        "no notes": mf.no_notes,
        "25,000 notes": mf.too_many_notes,
        "80 tracks": mf.too_many_tracks,
        "3 MB": mf.too_large,
        "0 ticks per beat": mf.zero_ticks_per_beat,
    }
    rows = []
    for name, make in makers.items():
        path = tmp / "bad.mid"
        path.write_bytes(make())
        done, seconds = _cli("generate", str(path), "--out-dir", str(tmp))
        rows.append(
            {
                "input": name,
                "exit": done.returncode,
                "lines": len(done.stderr.strip().splitlines()),
                "s": round(seconds, 2),
                "message": done.stderr.strip(),
            }
        )
    for name, data in (("30-minute file", mf.long_file(30)), ("10,000 notes, all 128 pitches", mf.all_pitches(10_000))):
        path = tmp / "big.mid"
        path.write_bytes(data)
        done, seconds = _cli("generate", str(path), "--out-dir", str(tmp))
        rows.append(
            {"input": name, "exit": done.returncode, "s": round(seconds, 2), "message": " | ".join(done.stderr.strip().splitlines())}
        )
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        result = {"tunes": tune_rows(Path(tmp)), "bad_input": bad_rows(Path(tmp))}
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
    else:
        for row in result["tunes"] + result["bad_input"]:
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Synthesis speed: the studio's in-process FluidSynth against the `fluidsynth` CLI, side by side.

Four ways to turn the same MIDI file into a 44.1 kHz WAV are timed, interleaved (A, A1, B, C, A,
A1, B, C, ...) so that machine noise hits all of them alike, and the medians are compared:

(a) ``render``: `studio.audio.synth.render_midi` + `write_wav` in this process with the default
    `SynthConfig`, the engines already warm (SoundFont loaded once per process, as the server keeps
    it): music of a minute or more renders its channel groups on ``min(cpu_count, 4)`` engines at
    once and sums them;
(a1) ``render_single``: the same on one engine (``parallel_min_seconds`` out of reach), as before
    parallel rendering; the speed-up is a1/a, and the largest sample difference between the two
    WAVs is reported;
(b) ``cli``: ``fluidsynth -ni -g GAIN -F out.wav -r 44100 SF2 MID`` as a subprocess, with the
    studio's gain and reverb/chorus settings so both do the same work;
(c) ``command``: the studio's whole CLI, ``python -m studio render IN.mid --out-wav F``, as a
    subprocess (interpreter start and SoundFont load included); skipped while `studio/__main__.py`
    does not exist.

Run ``python -m bench.synth`` for a table, ``--json`` for the raw result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import mido
import numpy as np

__all__ = ["bench_synthesis", "make_test_midi"]

REPO = Path(__file__).resolve().parent.parent
TICKS_PER_BEAT = 480
QPM = 120
# (key of chord root above C, chord tones as semitones above the root): I - V - vi - IV, ii - V - I - I
PROGRESSION = [
    (0, (0, 4, 7)),
    (7, (0, 4, 7)),
    (9, (0, 3, 7)),
    (5, (0, 4, 7)),
    (2, (0, 3, 7)),
    (7, (0, 4, 7, 10)),
    (0, (0, 4, 7)),
    (0, (0, 4, 7, 11)),
]
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _events_to_track(name: str, events: list[tuple[int, int, mido.Message]], end_tick: int) -> mido.MidiTrack:
    """A track from (absolute tick, order, message) events, ending at `end_tick`."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def _note(events: list, start: int, length: int, ch: int, pitch: int, vel: int) -> None:
    # note_off sorts before note_on at the same tick, so repeated pitches retrigger cleanly
    events.append((start, 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
    events.append((start + length, 0, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))


def _part(kind: str, ch: int, program: int, bars: int, rng: random.Random) -> list:
    """Events of one instrument part over `bars` bars of 4/4."""
    bar = 4 * TICKS_PER_BEAT
    beat = TICKS_PER_BEAT
    events: list = []
    if kind != "drums":
        events.append((0, 0, mido.Message("program_change", channel=ch, program=program)))
    pitch = 72
    for b in range(bars):
        t0 = b * bar
        root, chord = PROGRESSION[b % len(PROGRESSION)]
        if kind == "piano":  # one chord a bar, struck on 1 and re-struck on 3, sustain pedal per bar
            events.append((t0, 0, mido.Message("control_change", channel=ch, control=64, value=0)))
            events.append((t0 + 30, 2, mido.Message("control_change", channel=ch, control=64, value=127)))
            for start in (t0, t0 + 2 * beat):
                for k in chord[:3]:
                    _note(events, start, 2 * beat - 40, ch, 60 + root + k, rng.randint(60, 90))
        elif kind == "bass":  # half notes: root then fifth
            for i, k in enumerate((0, 7)):
                _note(events, t0 + 2 * i * beat, 2 * beat - 60, ch, 36 + root + k, rng.randint(80, 105))
        elif kind == "strings":  # a random walk on the scale, quarter and half notes, expression swells
            events.append((t0, 0, mido.Message("control_change", channel=ch, control=11, value=rng.randint(70, 120))))
            t = t0
            while t < t0 + bar:
                length = rng.choice((beat, beat, 2 * beat))
                length = min(length, t0 + bar - t)
                degree = (MAJOR_SCALE.index(pitch % 12) if pitch % 12 in MAJOR_SCALE else 0) + rng.choice((-2, -1, -1, 1, 1, 2))
                octave, degree = divmod(degree, 7)
                pitch = min(84, max(60, 12 * (pitch // 12 + octave) + MAJOR_SCALE[degree]))
                _note(events, t, length - 20, ch, pitch, rng.randint(70, 100))
                t += length
        elif kind == "drums":  # kick on 1 and 3, snare on 2 and 4, a crash every 8 bars
            for i in range(4):
                _note(events, t0 + i * beat, beat // 4, ch, 36 if i % 2 == 0 else 38, rng.randint(90, 120))
            if b % 8 == 0:
                _note(events, t0, beat, ch, 49, 100)
        elif kind == "pad":  # whole-note chord tones, an octave up
            for k in chord[:2]:
                _note(events, t0, bar - 60, ch, 72 + root + k, rng.randint(50, 70))
    return events


def make_test_midi(path: str | os.PathLike[str], minutes: float = 5.0, tracks: int = 4, seed: int = 0) -> Path:
    """Write a deterministic multi-track test song (type 1 MIDI, 120 qpm, 4/4) and return its path.

    Tracks, in order: piano chords with sustain pedal (program 0), bass (33), strings melody with
    expression (48), drums (channel 10, MIDI channel index 9); further tracks are pads on the
    remaining channels. Four tracks play about 5 notes per second.
    """
    if tracks < 1 or tracks > 15:
        raise ValueError(f"tracks must be 1-15, got {tracks}")
    rng = random.Random(seed)
    bars = max(1, round(minutes * QPM / 4))
    end_tick = bars * 4 * TICKS_PER_BEAT
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(QPM), time=0),
                mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
                mido.MetaMessage("end_of_track", time=end_tick),
            ]
        )
    )
    parts = [("piano", 0, 0), ("bass", 1, 33), ("strings", 2, 48), ("drums", 9, 0)]
    pad_channels = [c for c in range(16) if c not in (0, 1, 2, 9)]
    pad_programs = (89, 52, 61, 91, 95, 49, 50, 88, 90, 92, 94, 48)
    for i in range(max(0, tracks - 4)):
        parts.append(("pad", pad_channels[i], pad_programs[i % len(pad_programs)]))
    for kind, ch, program in parts[:tracks]:
        mid.tracks.append(_events_to_track(kind, _part(kind, ch, program, bars, rng), end_tick))
    out = Path(path)
    mid.save(str(out))
    return out


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        raw = wav.readframes(wav.getnframes())
        return np.frombuffer(raw, dtype="<i2").reshape(-1, wav.getnchannels())


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two int16 signals over their common length."""
    n = min(len(a), len(b))
    x = a[:n].astype(np.float64).ravel()
    y = b[:n].astype(np.float64).ravel()
    den = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y) / den) if den else 0.0


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_synthesis(repeats: int = 3, minutes: float = 5.0) -> dict[str, Any]:
    """Time (a) in-process render (parallel), (a1) on one engine, (b) the fluidsynth CLI, (c) the command.

    Returns
    -------
    dict
        Median seconds per way (``render_s``, ``render_single_s``, ``cli_s``, ``command_s`` or
        None), all runs, ``render_over_cli`` (a/b), ``render_single_over_cli`` (a1/b),
        ``parallel_speedup`` (a1/a) and ``command_over_cli`` (c/b), the engines used, the largest
        sample difference of (a) and (a1), the WAV durations, the SoundFont, the gain, the
        waveform correlation of (a) with (b), notes, and the machine.
    """
    from studio.audio.synth import (
        SynthConfig,
        audio_stats,
        find_soundfont,
        render_midi,
        synth_status,
        write_wav,
    )
    from studio.audio.synth.split import scan_midi

    ok, status = synth_status()
    if not ok:
        return {"skipped": True, "reason": status}
    cli = shutil.which("fluidsynth")
    if cli is None:
        return {"skipped": True, "reason": "the fluidsynth CLI is not installed: apt-get install fluidsynth"}
    config = SynthConfig()
    single_config = replace(config, parallel_min_seconds=float("inf"))
    soundfont = find_soundfont(config)
    assert soundfont is not None
    notes: list[str] = [
        f"cli runs with -g {config.gain} -R {int(config.reverb)} -C {int(config.chorus)}: the studio's gain, reverb and chorus",
        "one untimed warm-up of each way first; then runs interleaved, medians reported",
        f"(a) renders on up to {config.worker_count()} engines at once (SynthConfig.workers=0: "
        f"min(cpu_count, 4)) when the music is {config.parallel_min_seconds:g} s or longer; "
        "(a1) on one engine",
        "WAV lengths differ by design: the studio adds at most 2.5 s of release, cut at -60 dBFS; "
        "the FluidSynth >= 2.3.1 player runs on until no voice sounds, plus 2 s",
    ]
    main = REPO / "studio" / "__main__.py"
    has_command = main.is_file()
    if not has_command:
        notes.append("(c) skipped: studio/__main__.py does not exist yet")

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        tmpdir = Path(tmp)
        mid = make_test_midi(tmpdir / "bench.mid", minutes=minutes)
        wav_a, wav_b, wav_c = tmpdir / "render.wav", tmpdir / "cli.wav", tmpdir / "command.wav"
        wav_a1 = tmpdir / "render-single.wav"
        last_audio: dict[str, np.ndarray] = {}

        parts: dict[str, list[float]] = {"render_midi": [], "write_wav": [], "render_midi_single": []}

        def run_render() -> None:
            start = time.perf_counter()
            audio = render_midi(mid, config)
            middle = time.perf_counter()
            write_wav(wav_a, audio, config.sample_rate)
            parts["render_midi"].append(middle - start)
            parts["write_wav"].append(time.perf_counter() - middle)
            last_audio["a"] = audio

        def run_render_single() -> None:
            start = time.perf_counter()
            audio = render_midi(mid, single_config)
            parts["render_midi_single"].append(time.perf_counter() - start)
            write_wav(wav_a1, audio, config.sample_rate)
            last_audio["a1"] = audio

        cli_cmd = [
            cli,
            "-ni",
            "-g",
            str(config.gain),
            "-R",
            str(int(config.reverb)),
            "-C",
            str(int(config.chorus)),
            "-F",
            str(wav_b),
            "-r",
            str(config.sample_rate),
            str(soundfont),
            str(mid),
        ]

        def run_cli() -> None:
            subprocess.run(cli_cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        cmd_cmd = [sys.executable, "-m", "studio", "render", str(mid), "--out-wav", str(wav_c)]

        def run_command() -> None:
            subprocess.run(cmd_cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        ways = [("render", run_render), ("render_single", run_render_single), ("cli", run_cli)]
        if has_command:
            ways.append(("command", run_command))
        times: dict[str, list[float]] = {name: [] for name, _ in ways}
        errors: dict[str, str] = {}
        warmup: dict[str, float] = {}
        for name, fn in ways:  # warm-up: loads the SoundFont in-process, fills the page cache
            try:
                warmup[name] = _timed(fn)
            except subprocess.CalledProcessError as exc:
                errors[name] = (exc.stderr or b"").decode(errors="replace").strip()[-300:] or str(exc)
        ways = [(n, f) for n, f in ways if n not in errors]
        for values in parts.values():
            values.clear()
        for _ in range(max(1, repeats)):
            for name, fn in ways:
                times[name].append(_timed(fn))

        med = {name: (statistics.median(ts) if ts else None) for name, ts in times.items()}
        render_s, cli_s, command_s = med.get("render"), med.get("cli"), med.get("command")
        single_s = med.get("render_single")
        a, a1 = last_audio["a"], last_audio["a1"]
        diff = np.abs(a.astype(np.int32) - a1) if a.shape == a1.shape else None
        split = scan_midi(mid.read_bytes())
        engines = 1
        if split is not None and split.seconds >= config.parallel_min_seconds:
            engines = min(config.worker_count(), split.sounding_channels())
        cli_audio = _read_wav(wav_b)
        stats_a = audio_stats(last_audio["a"], config.sample_rate)
        stats_b = audio_stats(cli_audio, config.sample_rate)
        result: dict[str, Any] = {
            "skipped": False,
            "minutes": minutes,
            "repeats": repeats,
            "midi_notes": sum(1 for t in mido.MidiFile(str(mid)).tracks for m in t if m.type == "note_on" and m.velocity > 0),
            "soundfont": str(soundfont),
            "gain": config.gain,
            "status": status,
            "render_s": render_s,
            "render_single_s": single_s,
            "cli_s": cli_s,
            "command_s": command_s,
            "runs_s": times,
            "render_parts_s": {k: statistics.median(v) for k, v in parts.items() if v},
            "warmup_s": warmup,
            "render_over_cli": render_s / cli_s if render_s and cli_s else None,
            "render_single_over_cli": single_s / cli_s if single_s and cli_s else None,
            "parallel_speedup": single_s / render_s if single_s and render_s else None,
            "parallel": {
                "engines": engines,
                "channel_groups": split.groups(engines) if split is not None else None,
                "music_seconds": round(split.seconds, 3) if split is not None else None,
                "max_abs_diff_lsb": int(diff.max()) if diff is not None else None,
                "samples_differing": (round(float(np.count_nonzero(diff)) / diff.size, 6) if diff is not None else None),
                "same_length": diff is not None,
            },
            "command_over_cli": command_s / cli_s if command_s and cli_s else None,
            "wav_seconds": {
                "render": _wav_seconds(wav_a),
                "render_single": _wav_seconds(wav_a1),
                "cli": _wav_seconds(wav_b),
                "command": _wav_seconds(wav_c) if wav_c.exists() else None,
            },
            "peak_dbfs": {"render": stats_a["peak_dbfs"], "cli": stats_b["peak_dbfs"]},
            "clipped_samples": {"render": stats_a["clipped_samples"], "cli": stats_b["clipped_samples"]},
            "waveform_correlation_render_cli": round(_correlation(last_audio["a"], cli_audio), 6),
            "errors": errors,
            "notes": notes,
            "machine": {
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "processor": platform.processor() or platform.machine(),
            },
        }
    return result


def _table(result: dict[str, Any]) -> str:
    if result.get("skipped"):
        return f"synthesis benchmark skipped: {result['reason']}"

    par = result["parallel"]

    def fmt(x: float | None, unit: str = "s") -> str:
        return "-" if x is None else (f"{x:.3f} {unit}" if unit else f"{x:.3f}")

    lines = [
        f"synthesis: {result['minutes']:g} min, {result['midi_notes']} notes, {result['repeats']} "
        f"interleaved runs, medians; soundfont {result['soundfont']}, gain {result['gain']}",
        f"  (a) render_midi + write_wav (warm)  {fmt(result['render_s'])}   "
        f"wav {result['wav_seconds']['render']:.2f} s   ({par['engines']} engines, channels {par['channel_groups']})",
        f"      of which render_midi {result['render_parts_s'].get('render_midi', 0):.3f} s, write_wav "
        f"{result['render_parts_s'].get('write_wav', 0):.3f} s; first (cold) render "
        f"{result['warmup_s'].get('render', 0):.3f} s",
        f"  (a1) the same on one engine        {fmt(result['render_single_s'])}   "
        f"wav {result['wav_seconds']['render_single']:.2f} s; render_midi "
        f"{result['render_parts_s'].get('render_midi_single', 0):.3f} s",
        f"  parallel speed-up (a1/a) = {fmt(result['parallel_speedup'], '')}   a vs a1: max |diff| "
        f"{par['max_abs_diff_lsb']} LSB in {par['samples_differing']} of the samples, same length: {par['same_length']}",
        f"  (b) fluidsynth CLI -F              {fmt(result['cli_s'])}   wav {result['wav_seconds']['cli']:.2f} s",
        f"  (c) python -m studio render        {fmt(result['command_s'])}"
        + (f"   wav {result['wav_seconds']['command']:.2f} s" if result["wav_seconds"]["command"] else ""),
        f"  render_over_cli (a/b) = {fmt(result['render_over_cli'], '')}   (a1/b) = "
        f"{fmt(result['render_single_over_cli'], '')}   "
        f"command_over_cli (c/b) = {fmt(result['command_over_cli'], '')}",
        f"  peak dBFS a/b: {result['peak_dbfs']['render']} / {result['peak_dbfs']['cli']}; clipped a/b: "
        f"{result['clipped_samples']['render']} / {result['clipped_samples']['cli']}; waveform correlation "
        f"{result['waveform_correlation_render_cli']}",
        f"  machine: {result['machine']['cpu_count']} CPUs, {result['machine']['platform']}",
    ]
    lines += [f"  note: {n}" for n in result["notes"]]
    lines += [f"  error ({k}): {v}" for k, v in result["errors"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each way (default 3)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the test song (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = bench_synthesis(repeats=args.repeats, minutes=args.minutes)
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

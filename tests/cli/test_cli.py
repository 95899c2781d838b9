"""The acceptance of the studio core, through the real command line (`python -m studio ...`).

Each real tune (every meter and format the studio promises) is accompanied by `rules`; the output
MIDI keeps the melody note for note, two accompaniment tracks cover its bars, the WAV lasts the
music plus at most 3 s, is neither silent nor clipped, and a PNG is written. Bad input exits 2
with one `error:` line in under a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import midi_factory as mf
import numpy as np
import pytest

from studio.audio.synth import synth_status
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import bar_coverage, consonance, in_key_rate, melody_key
from studio.core.midi import read_midi
from studio.core.roll import make_grid, notes_to_roll

REPO = Path(__file__).resolve().parents[2]
HAVE_SYNTH = synth_status()[0]


def studio(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, w.getnchannels())
        return frames, w.getframerate()


ACCEPTANCE_TUNES = [
    "four_four.mid",
    "three_four_pickup.mid",
    "six_eight_minor.mid",
    "type0.mid",
    "tempo_change.mid",
    "high_register_channel.mid",
    "multitrack_drums.mid",
]


@pytest.mark.parametrize("name", ACCEPTANCE_TUNES)
def test_generate_rules_on_real_tunes(name, tmp_path, tune_paths):
    source = tune_paths[name]
    out = {k: tmp_path / f"out.{k}" for k in ("mid", "wav", "png")}
    done = studio(
        "generate",
        str(source),
        "--model",
        "rules",
        "--out-midi",
        str(out["mid"]),
        "--out-wav",
        str(out["wav"]),
        "--out-png",
        str(out["png"]),
    )
    assert done.returncode == 0, done.stderr
    assert out["mid"].exists() and out["png"].stat().st_size > 10_000

    # The melody, note for note.
    original = read_midi(source).score
    melody = extract_melody(original).track
    result = read_midi(out["mid"]).score
    assert result.tracks[0].notes == melody.notes
    assert result.tempos == original.tempos and result.time_signatures == original.time_signatures

    # At least two accompaniment tracks covering 95% of the melody's bars; the musical floor.
    grid = make_grid(result, estimate_pickup(melody.notes, original))
    mel_roll = notes_to_roll(melody.notes, grid, "Melody", 0)
    accompaniment = [notes_to_roll(t.notes, grid, t.name, t.program, t.is_drum) for t in result.tracks[1:]]
    covering = [t for t in accompaniment if bar_coverage(t, grid, mel_roll) >= 0.95]
    assert len(covering) >= 2
    assert in_key_rate(accompaniment, melody_key(mel_roll)) >= 0.95
    assert consonance(mel_roll, accompaniment) >= 0.80

    if HAVE_SYNTH:
        audio, rate = _wav(out["wav"])
        assert rate == 44100 and audio.shape[1] == 2
        seconds = len(audio) / rate
        music = result.duration_seconds
        assert music <= seconds <= music + 3.0
        rms = np.sqrt(np.mean(audio.astype(np.float64) ** 2)) / 32768
        assert 20 * np.log10(rms) > -40  # not silent
        assert np.abs(audio.astype(np.int32)).max() < 32767  # not clipped


BAD = {
    "empty.mid": mf.empty_bytes,
    "random.mid": mf.random_bytes,
    "truncated.mid": mf.truncated,
    "picture.mid": mf.png_renamed,
    "recording.mid": mf.wav_renamed,
    "notes.mid": mf.text_renamed,
    "lying_header.mid": mf.lying_track_count,
    "drums_only.mid": mf.drums_only,
    "no_notes.mid": mf.no_notes,
    "too_many_notes.mid": mf.too_many_notes,
    "too_many_tracks.mid": mf.too_many_tracks,
    "too_large.mid": mf.too_large,
    "zero_tpb.mid": mf.zero_ticks_per_beat,
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exits_2_with_one_error_line_fast(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(BAD[name]())
    start = time.perf_counter()
    done = studio("generate", str(path), "--out-midi", str(tmp_path / "x.mid"))
    elapsed = time.perf_counter() - start
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert elapsed < 10.0, f"{name} took {elapsed:.2f} s"  # a hang guard; what makes it fast is checked below
    assert not (tmp_path / "x.mid").exists()


HEAVY = ("torch", "matplotlib", "fluidsynth", "gradio", "music21", "pretty_midi", "pypianoroll")


@pytest.mark.parametrize("name", ["notes.mid", "too_many_notes.mid", "picture.mid", "lying_header.mid"])
def test_bad_input_is_refused_before_any_heavy_library_loads(name, tmp_path):
    """Refusing a bad file takes a fraction of a second because it happens before PyTorch,
    matplotlib, FluidSynth or Gradio are imported (each takes longer to load than a bad file takes
    to refuse); a timing bound would only measure how busy the machine is."""
    path = tmp_path / name
    path.write_bytes(BAD[name]())
    code = (
        "import sys\nfrom studio.cli import main\n"
        f"rc = main(['generate', {str(path)!r}, '--out-midi', {str(tmp_path / 'x.mid')!r}])\n"
        f"print(rc, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.stdout.strip() == "2 []", done.stdout + done.stderr


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["generate", "MISSING.mid"], "no such file"),
        (["generate", "{tune}", "--model", "nope"], "unknown model"),
        (["generate", "{tune}", "--seed", "abc"], "seed"),
        (["generate", "{tune}", "--param", "pattern=waltz"], "pattern"),
        (["generate", "{tune}", "--param", "nonsense"], "KEY=VALUE"),
        (["generate", "{tune}", "--chords", "C H7"], "'H7' is not a chord symbol"),
        (["generate", "{tune}", "--model", "gan-chorale", "--chords", "C G"], "gan-chorale does not take chords: the models that follow"),
        (["generate"], "input"),
        (["frobnicate"], "invalid choice"),
        (["evaluate", "--model", "gan-renaissance", "--checkpoints", "NO-SUCH-FOLDER"], "--checkpoints NO-SUCH-FOLDER: no such folder"),
    ],
)
def test_usage_mistakes_are_one_line(args, phrase, tune_paths):
    args = [a.replace("{tune}", str(tune_paths["four_four.mid"])) for a in args]
    done = studio(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], done.stderr


def test_long_and_dense_files_finish_in_time(tmp_path):
    for name, data in (("long.mid", mf.long_file(minutes=30)), ("dense.mid", mf.all_pitches(10_000))):
        path = tmp_path / name
        path.write_bytes(data)
        start = time.perf_counter()
        done = studio("generate", str(path), "--out-dir", str(tmp_path))
        elapsed = time.perf_counter() - start
        assert done.returncode == 0, done.stderr
        assert elapsed < 60.0, f"{name} took {elapsed:.1f} s"  # within the studio's generation time-out; speed lives in bench/
        if name == "long.mid":
            assert "first 10.0 minutes" in done.stderr
        else:
            assert "moved by octaves" in done.stderr


@pytest.mark.skipif(not HAVE_SYNTH, reason="FluidSynth or a soundfont is missing")
def test_events_an_hour_after_the_music_give_the_music_alone(tmp_path):
    """Issue 23: a meter change (generate) or a text event (render, which played the file's bytes)
    an hour after an 8 s tune gave an hour of silence (a 635 MB WAV)."""
    meter, text = tmp_path / "hour.mid", tmp_path / "hourtext.mid"
    meter.write_bytes(mf.events_after_music("time_signature"))
    text.write_bytes(mf.events_after_music("text"))
    done = studio("generate", str(meter), "--model", "rules", "--out-dir", str(tmp_path))
    assert done.returncode == 0 and "60.0 minutes after its last note" in done.stderr, done.stderr
    rendered = studio("render", str(text), "--out-wav", str(tmp_path / "r.wav"))
    assert rendered.returncode == 0 and "60.0 minutes after its last note" in rendered.stderr, rendered.stderr
    for wav in (tmp_path / "hour-rules-seed0.wav", tmp_path / "r.wav"):
        audio, rate = _wav(wav)
        assert len(audio) / rate <= 8.0 + 2.0 + 3.0, wav.name  # the music, its final bar, the release


@pytest.mark.skipif(not HAVE_SYNTH, reason="FluidSynth or a soundfont is missing")
def test_music_too_dense_to_synthesize_in_time_is_heard_in_part_and_kept_whole(tmp_path):
    """Issue 23: 20,000 overlapping notes in ten minutes took 13-17 s to synthesize; the audio now
    stops where the synthesizer's budget is spent, the MIDI keeps every note, and the user is told."""
    path = tmp_path / "dense.mid"
    path.write_bytes(mf.dense_melody(minutes=3.0))
    done = studio("generate", str(path), "--model", "rules", "--out-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    cut = [line for line in done.stderr.splitlines() if "the audio stops at" in line]
    assert len(cut) == 1 and cut[0].startswith("warning: ") and "of 3:00" in cut[0], done.stderr
    audio, rate = _wav(tmp_path / "dense-rules-seed0.wav")
    assert 30.0 < len(audio) / rate < 150.0
    source = read_midi(path).score.tracks[0].notes
    take = read_midi(tmp_path / "dense-rules-seed0.mid").score
    assert take.tracks[0].notes[-1].start == source[-1].start  # the melody to its last note, in the MIDI


@pytest.mark.skipif(not HAVE_SYNTH, reason="FluidSynth or a soundfont is missing")
def test_a_dense_file_fluidsynth_would_read_otherwise_is_rendered_as_read_and_cut(tmp_path):
    """`render` plays a file's own bytes; one that FluidSynth would read otherwise than the studio
    (running status across a meta event) is played as the studio read it, so the budget holds."""
    path = tmp_path / "quirky.mid"
    path.write_bytes(mf.dense_after_meta(minutes=3.0))
    done = studio("render", str(path), "--out-wav", str(tmp_path / "q.wav"))
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("warning: the audio stops at") for line in done.stderr.splitlines()), done.stderr
    audio, rate = _wav(tmp_path / "q.wav")
    assert 30.0 < len(audio) / rate < 150.0


@pytest.mark.parametrize("value", ["inf", "1e400", "9" * 5000])
def test_a_parameter_that_overflows_exits_2_with_one_short_line(value, tune_paths):
    """Issue 23: `--param iterations=inf` gave exit 1, "internal error (OverflowError)"."""
    done = studio("generate", str(tune_paths["four_four.mid"]), "--model", "arcnn-chorale", "--param", f"iterations={value}", "--seed", "0")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "must be an int" in lines[0] and len(lines[0]) < 200, done.stderr[:500]


def test_a_seed_of_5000_digits_exits_2_with_one_short_line(tune_paths):
    done = studio("generate", str(tune_paths["four_four.mid"]), "--seed", "9" * 5000)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "whole number" in lines[0] and len(lines[0]) < 200, done.stderr[:500]


def test_a_track_name_cannot_forge_an_error_line_or_send_escape_codes(tmp_path):
    """Issue 23: a newline or ESC in a track name forged `error:` lines and sent escape codes."""
    name = b"Lead\n\x1b[2J\x1b[31merror: forged line\x1b[0m\r\n"
    tracks = [[(0, mf._meta(0x03, name)), *mf._note_events([(b, 1, 72 + b % 5) for b in range(8)], 480, channel=ch)] for ch in (0, 1)]
    path = tmp_path / "named.mid"
    path.write_bytes(mf.midi_from_tracks(tracks))
    done = studio("generate", str(path), "--model", "rules", "--out-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "melody taken from track 'Lead [2J[31merror: forged line[0m'" in done.stderr, done.stderr
    assert "\x1b" not in done.stderr + done.stdout and not any(line.startswith("error") for line in done.stderr.splitlines())


def test_the_command_ends_at_once_with_mains_status_and_its_output_flushed(monkeypatch):
    """`studio.cli.run` (the `studio` script and ``python -m studio``) ends the process with
    `os._exit` after `main` returns, skipping Python's teardown (0.5-0.7 s once torch is loaded,
    issue 23); what was printed is flushed first, and the status is `main`'s."""
    import io
    import tomllib

    import studio.cli as cli

    class Recording(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            Recording.flushes += 1
            super().flush()

    out, ended = Recording(), []
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(cli, "main", lambda: (print("wrote take.mid"), 2)[1])
    monkeypatch.setattr(cli.os, "_exit", ended.append)
    cli.run()
    assert ended == [2] and out.getvalue() == "wrote take.mid\n" and Recording.flushes >= 1
    assert (REPO / "studio" / "__main__.py").read_text().count("run()") == 1
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["studio"] == "studio.cli:run"


def test_models_lists_rules_and_json_cards():
    done = studio("models")
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert done.returncode == 0 and {"rules", "gan-chorale", "gan-renaissance", "gan-quartet"} <= set(names)
    cards = json.loads(studio("models", "--json").stdout)
    rules = next(c for c in cards if c["name"] == "rules")
    assert rules["family"] == "rules" and len(rules["tracks"]) >= 2


@pytest.mark.skipif(not HAVE_SYNTH, reason="FluidSynth or a soundfont is missing")
def test_render_plays_a_midi_without_generating(tmp_path, tune_paths):
    out = tmp_path / "r.wav"
    done = studio("render", str(tune_paths["multitrack_drums.mid"]), "--out-wav", str(out))
    assert done.returncode == 0, done.stderr
    audio, rate = _wav(out)
    music = read_midi(tune_paths["multitrack_drums.mid"]).score.duration_seconds
    assert music <= len(audio) / rate <= music + 3.0
    bad = studio("render", str(tmp_path / "nothing.mid"), "--out-wav", str(out))
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_keep_tracks_adds_the_accompaniment_to_the_song(tmp_path):
    """`generate --keep-tracks`: the song's drums, bass and pad stay, note for note, beside the
    melody and the accompaniment; without the flag the output is the melody and the accompaniment."""
    song = tmp_path / "band.mid"
    song.write_bytes(mf.band_song())
    source = read_midi(song).score
    for flag, names in (([], ["Melody", "Bass", "Guitar"]), (["--keep-tracks"], ["Melody", "Bass", "Guitar", "Drums", "Bass", "Pad"])):
        out = tmp_path / f"out{len(flag)}.mid"
        done = studio("generate", str(song), "--out-midi", str(out), *flag)
        assert done.returncode == 0, done.stderr
        written = read_midi(out).score.tracks
        assert [t.name for t in written] == names
        if flag:
            assert "note: kept the song's 3 other tracks" in done.stderr + done.stdout
            for track, kept in zip(source.tracks[1:], written[3:], strict=True):
                assert (kept.is_drum, kept.program) == (track.is_drum, track.program)
                assert [(n.start, n.end, n.pitch, n.velocity) for n in kept.notes] == [
                    (n.start, n.end, n.pitch, n.velocity) for n in track.notes
                ]


def test_generate_keeps_to_the_chords_given_and_says_them(tmp_path, tune_paths):
    """`generate --chords`: the take's MIDI carries them as markers and the command says the chords
    given and the chords heard, bar by bar."""
    out = tmp_path / "out.mid"
    done = studio("generate", str(tune_paths["four_four.mid"]), "--chords", "G D/F# | Em C", "--out-midi", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "chords given: G D/F# | Em C" in lines
    heard = next(line for line in lines if line.startswith("chords heard: "))
    assert heard.count("|") == 15  # 16 bars
    given = [m.text for m in read_midi(out).score.markers if m.text.startswith("chord: ")]
    assert (
        given[:4] == ["chord: G", "chord: D/F#", "chord: Em", "chord: C"] and len(given) == 31
    )  # two a bar, looped to the tune's end (mid bar 16)


def test_a_missing_output_folder_is_refused_alike_by_every_command(tmp_path, tune_paths):
    """Issue 23: `render --out-wav /missing/dir/x.wav` made the folders while `generate` refused them.
    Both refuse a file path in a missing folder (a typo is said, not made into folders), at once."""
    tune = str(tune_paths["four_four.mid"])
    missing = tmp_path / "missing" / "dir"
    for args in (
        ("render", tune, "--out-wav", str(missing / "x.wav")),
        ("generate", tune, "--out-wav", str(missing / "x.wav")),
        ("generate", tune, "--out-midi", str(tmp_path / "x.mid"), "--out-png", str(missing / "x.png")),
    ):
        started = time.perf_counter()
        done = studio(*args)
        assert done.returncode == 2 and done.stderr.startswith("error: cannot write") and "does not exist" in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1 and time.perf_counter() - started < 10
    assert not (tmp_path / "missing").exists() and not (tmp_path / "x.mid").exists()


def test_regenerate_writes_bars_of_a_take_again_and_refuses_bad_bars_in_one_line(tmp_path):
    """`regenerate TAKE.mid --model M --bars 3-4`: a new take whose notes outside bars 3-4 are the
    take's own; bars backwards, or voices of the rules (whose tracks go together): exit 2, one line."""
    take, new = tmp_path / "take.mid", tmp_path / "new.mid"
    tune = REPO / "assets" / "melodies" / "bobby_shaftoe.mid"  # 16 bars of 2/4 (8 steps a bar)
    assert studio("generate", str(tune), "--model", "rules", "--out-midi", str(take)).returncode == 0
    done = studio("regenerate", str(take), "--model", "rules", "--bars", "3-4", "--seed", "2", "--out-midi", str(new))
    assert done.returncode == 0, done.stderr
    assert f"wrote {new}" in done.stdout and "note: regenerated bars 3-4 with rules, seed 2" in done.stderr
    before, after = read_midi(take).score, read_midi(new).score
    bar = before.ticks_per_beat * 2
    for old, made in zip(before.tracks, after.tracks, strict=True):
        outside = [{(n.start, n.end, n.pitch, n.velocity) for n in t.notes if not 2 * bar <= n.start < 4 * bar} for t in (old, made)]
        assert outside[0] == outside[1], old.name
    assert before.tracks[1].notes != after.tracks[1].notes or before.tracks[2].notes != after.tracks[2].notes
    for args, words in (
        (["--bars", "4-3"], "error: bars 4-3 run backwards"),
        (["--bars", "3-4", "--voices", "Bass"], "error: rules plays its tracks (Bass, Guitar) from one choice of chords"),
    ):
        done = studio("regenerate", str(take), "--model", "rules", *args, "--out-dir", str(tmp_path))
        assert done.returncode == 2 and done.stderr.startswith(words) and len(done.stderr.strip().splitlines()) == 1, done.stderr

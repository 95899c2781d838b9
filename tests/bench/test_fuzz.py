"""Fuzzing (issue 10): hostile input of every kind the page takes ends in a clear `InputError` or a
valid result; never another exception, never more than 2 s of CPU per case, never 500 MB more memory.

Mutated MIDI files go through the whole `accompany` path (rules, and a share through the GAN), the
parser alone is checked for what it promises about a valid result, and the keyboard's JSON and the
remix settings are fuzzed too. The mutations are those of `bench.fuzz`, whose long run is
`python -m bench.fuzz --cases 100000`; here hypothesis draws a bounded share (profile
`studio-fuzz-ci`; set STUDIO_FUZZ_PROFILE=studio-fuzz-long for ten times as many cases).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import time

import midi_factory as mf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import fuzz
from studio.audio.mixing import TrackMix, mix_score
from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.core.recording import recording_to_midi
from studio.serving.registry import ModelRegistry

MAX_CPU_S = 2.0  # the hang limit, per case, in CPU seconds (immune to a busy machine)
MAX_WALL_S = 15.0  # a guard for hangs that do not burn CPU; generous for a shared 2-core box
MAX_GROWTH_MB = 500.0

_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("studio-fuzz-ci", max_examples=1, **_COMMON)  # each test scales this (see _examples)
settings.register_profile("studio-fuzz-long", max_examples=10, **_COMMON)
PROFILE = os.environ.get("STUDIO_FUZZ_PROFILE", "studio-fuzz-ci")


def _examples(n: int):
    """`settings` of the chosen profile with `n` times its max_examples."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=n * base.max_examples)


SEEDS = fuzz.seed_files()
mutations = st.lists(
    st.tuples(st.sampled_from(sorted(fuzz.OPS)), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    min_size=1,
    max_size=4,
)
seed_index = st.integers(0, len(SEEDS) - 1)


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A registry with both models loaded, and the process's peak memory after that warm-up."""
    registry = ModelRegistry()
    for model in ("rules", "gan-chorale"):
        assert fuzz.run_case(SEEDS[0][1], model, registry, want_png=True).outcome == "ok"
    return registry, fuzz.peak_rss_mb()


def _check_costs(result: fuzz.CaseResult, baseline_mb: float) -> None:
    assert result.cpu_s < MAX_CPU_S, f"{result.cpu_s:.2f} s of CPU"
    assert result.wall_s < MAX_WALL_S, f"{result.wall_s:.2f} s of wall time"
    assert result.peak_mb - baseline_mb < MAX_GROWTH_MB, f"peak memory {result.peak_mb:.0f} MB"
    if result.outcome == "refused":
        assert result.message and "\n" not in result.message and "Traceback" not in result.message


@_examples(250)
@given(index=seed_index, ops=mutations)
def test_mutated_midi_through_accompany_rules(warm, index, ops):
    registry, baseline = warm
    _check_costs(fuzz.run_case(fuzz.mutate(SEEDS[index][1], ops), "rules", registry), baseline)


@_examples(40)
@given(index=seed_index, ops=mutations)
def test_mutated_midi_through_the_gan(warm, index, ops):
    registry, baseline = warm
    _check_costs(fuzz.run_case(fuzz.mutate(SEEDS[index][1], ops), "gan-chorale", registry), baseline)


@_examples(10)
@given(index=seed_index, ops=mutations)
def test_mutated_midi_with_the_piano_roll(warm, index, ops):
    registry, baseline = warm
    _check_costs(fuzz.run_case(fuzz.mutate(SEEDS[index][1], ops), "rules", registry, want_png=True), baseline)


@_examples(300)
@given(index=seed_index, ops=mutations)
def test_the_parser_refuses_or_returns_what_it_promises(index, ops):
    """read_midi alone: an InputError, or a score whose every note and map entry is sane."""
    data = fuzz.mutate(SEEDS[index][1], ops)
    try:
        parsed = read_midi(data)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    score = parsed.score
    assert score.ticks_per_beat > 0
    assert len(score.tracks) >= 1 and not all(t.is_drum for t in score.tracks)
    assert score.n_notes <= 20_000
    assert score.tempos[0].tick == 0 and score.time_signatures[0].tick == 0
    assert all(t.microseconds_per_beat > 0 for t in score.tempos)
    assert all(s.numerator > 0 and s.denominator > 0 for s in score.time_signatures)
    for track in score.tracks:
        assert track.notes
        for note in track.notes:
            assert 0 <= note.start < note.end and 0 <= note.pitch <= 127 and 1 <= note.velocity <= 127
    assert score.duration_seconds <= 600.0 + 1e-6  # cut or not, nothing passes the 10-minute limit
    assert parsed.cut == any("the studio uses its first" in w for w in parsed.warnings)


# --------------------------------------------------------------------------- named hostile shapes


def _header(data: bytes, count: int | None = None, division: int | None = None) -> bytes:
    out = bytearray(data)
    if count is not None:
        struct.pack_into(">H", out, 10, count)
    if division is not None:
        struct.pack_into(">H", out, 12, division)
    return bytes(out)


def _smpte(fps: int, ticks_per_frame: int) -> int:
    return ((-fps) & 0xFF) << 8 | ticks_per_frame


SMALL_TRACK = b"MTrk\x00\x00\x00\x04\x00\xff\x2f\x00"
NAMED = {
    "65,535 tracks claimed": (_header(mf.melody([(0, 1, 60), (1, 1, 62)]), count=65_535), "65,535 tracks"),
    "65,535 tracks present": (_header(mf.melody([(0, 1, 60)]) + SMALL_TRACK * 65_533, count=65_535), "65,535 tracks"),
    "65,535 tracks present, header says 2": (mf.melody([(i, 1, 60 + i) for i in range(8)]) + SMALL_TRACK * 65_533, None),
    "zero ticks per beat": (mf.zero_ticks_per_beat(), "0 ticks per beat"),
    "SMPTE 24 fps": (_header(mf.smpte_timing(), division=_smpte(24, 40)), None),
    "SMPTE 29.97 fps": (_header(mf.smpte_timing(), division=_smpte(29, 80)), None),
    "SMPTE 30 fps": (_header(mf.smpte_timing(), division=_smpte(30, 4)), None),
    "SMPTE 0 ticks per frame": (_header(mf.smpte_timing(), division=_smpte(25, 0)), "SMPTE"),
    "SMPTE 23 fps": (_header(mf.smpte_timing(), division=_smpte(23, 40)), "SMPTE"),
    "huge delta": (mf.huge_delta(), None),
    "running status": (mf.running_status(500), None),
    "SysEx": (mf.sysex_file(), None),
    "lying track count": (mf.lying_track_count(), "only 2 are there"),
    "truncated": (mf.truncated(), "truncated"),
    "too many notes": (mf.too_many_notes(), "notes, over"),
    "every pitch": (mf.all_pitches(10_000), None),
    # Found by the fuzzer: at the slowest tempo the 10-minute cut fell before the first melody note.
    "melody after the length limit": (mf.melody([(100 + i, 1, 60 + i) for i in range(4)], tempo=0xFFFFFF), "hold no melody notes"),
}


@pytest.mark.parametrize("name", sorted(NAMED))
@pytest.mark.parametrize("model", ["rules", "gan-chorale"])
def test_named_hostile_files(warm, name, model):
    """The issue's named shapes, each through the whole path: refused with the expected words, or accompanied."""
    registry, baseline = warm
    data, refusal = NAMED[name]
    result = fuzz.run_case(data, model, registry)
    _check_costs(result, baseline)
    if refusal is None:
        assert result.outcome == "ok", result.message
    else:
        assert result.outcome == "refused" and refusal in result.message


# --------------------------------------------------------------------------- the keyboard's JSON

weird = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=6),
    st.integers(),
    st.integers(10**300, 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(0, 127), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
times = st.one_of(st.floats(-3, 40), st.floats(-1e308, 1e308), weird)
note = st.fixed_dictionaries(
    {},
    optional={
        "pitch": st.one_of(st.integers(-3, 130), weird),
        "start": times,
        "end": st.one_of(times, st.none()),
        "velocity": st.one_of(st.floats(-10, 300), weird),
    },
)
recording = st.fixed_dictionaries(
    {},
    optional={
        "notes": st.one_of(st.lists(st.one_of(note, weird), max_size=24), weird),
        "tempo": st.one_of(st.floats(10, 400), weird),
        "meter": st.one_of(st.sampled_from(["4/4", "3/4", "6/8", " 7 / 8 ", "0/4", "33/4", "3/3", "4/0", "x"]), weird),
        "aligned": st.one_of(st.booleans(), weird),
    },
)


def _check_recording(text: str) -> None:
    try:
        data = recording_to_midi(text)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    melody = read_midi(data).score
    sent = json.loads(text)["notes"]
    pitches = {int(n["pitch"]) for n in sent}
    assert {n.pitch for t in melody.tracks for n in t.notes} <= pitches
    assert 1 <= melody.n_notes <= len(sent)


@_examples(300)
@given(rec=recording)
def test_keyboard_json_is_refused_or_becomes_a_melody(rec):
    started = time.process_time()
    _check_recording(json.dumps(rec))
    assert time.process_time() - started < MAX_CPU_S


@_examples(150)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        st.integers(1, 5000).map(lambda n: "[" * n),
        st.integers(1, 5000).map(lambda n: '{"notes":' * n),
    )
)
def test_keyboard_text_that_is_not_a_recording(text):
    _check_recording(text)


# --------------------------------------------------------------------------- the remix settings


@pytest.fixture(scope="module")
def take():
    """A real take's score (melody + the rules' two tracks)."""
    from studio.serving.service import AccompanyRequest, accompany

    return accompany(AccompanyRequest(midi=SEEDS[0][1], want_wav=False, want_png=False)).score


mix = st.builds(
    TrackMix,
    program=st.one_of(st.integers(-3, 130), weird),
    volume=st.one_of(st.floats(-1, 3), weird),
    mute=st.one_of(st.booleans(), weird),
)


@_examples(300)
@given(mixes=st.lists(mix, max_size=5))
def test_remix_settings_are_refused_or_applied(take, mixes):
    try:
        mixed = mix_score(take, mixes)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert len(mixed.tracks) == len(take.tracks)
    for before, after, m in zip(take.tracks, mixed.tracks, mixes, strict=True):
        assert 0 <= after.program <= 127 and after.name == before.name
        assert math.isfinite(float(m.volume)) and 0 <= float(m.volume) <= 2
        if m.silent:
            assert not after.notes
        else:
            assert [(n.start, n.end, n.pitch) for n in after.notes] == [(n.start, n.end, n.pitch) for n in before.notes]
            assert all(1 <= n.velocity <= 127 for n in after.notes)


# --------------------------------------------------------------------------- hostile files (issue 23)

HOSTILE_CASES = 120
# The goal is 5 s per case on a 2-core machine, measured by `python -m bench.fuzz` (slowest case
# 3.8 s alone); inside the suite, with other work on the cores, a case gets a documented margin of 2x so
# that a loaded CI machine does not fail a case the studio answers in time.
HOSTILE_WALL_S = 10.0


def _clean_line(text: str) -> bool:
    return "\n" not in text and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def test_hostile_files_are_answered_within_5_s(warm):
    """`bench.fuzz.hostile_file`, a bounded share of the long run's: events long after the music, far
    meter changes, stacked note-ons, wide meters and odd track names each end in a result or one
    clean refusal in bounded time, and nothing the studio says about them carries a control character."""
    registry, baseline = warm
    classes = set()
    for case in range(HOSTILE_CASES):
        name, data = fuzz.hostile_file(random.Random(f"ci:{case}"))
        classes.add(name.split(":")[1])
        result = fuzz.run_case(data, "rules", registry)
        assert result.wall_s < HOSTILE_WALL_S, f"{name} (case {case}): {result.wall_s:.2f} s"
        assert result.peak_mb - baseline < MAX_GROWTH_MB, f"{name} (case {case}): peak memory {result.peak_mb:.0f} MB"
        assert all(_clean_line(w) for w in (result.message, *result.warnings)), (name, case, result)
    assert classes == {"after_music", "far_meter", "stacked", "wide_meter", "names"}


def test_the_long_run_can_send_its_learned_cases_to_every_model_in_turn():
    """`--other-model all` (or a comma list): every `--gan-every`-th case goes to the next model in turn."""
    registry = ModelRegistry()
    others = fuzz.other_models("all", registry)
    assert set(others) == set(registry.names()) and len(others) >= 8
    assert fuzz.other_models(" gan-chorale, diffusion-chorale ", registry) == ("gan-chorale", "diffusion-chorale")
    picked = [fuzz.case_model(case, 4, ("a", "b", "c")) for case in range(16)]
    assert picked == ["rules"] * 3 + ["a"] + ["rules"] * 3 + ["b"] + ["rules"] * 3 + ["c"] + ["rules"] * 3 + ["a"]
    assert fuzz.case_model(3, 0, ("a",)) == "rules"

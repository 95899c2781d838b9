"""studio.core.recording: the on-screen keyboard's JSON -> a quantized one-track Score -> MIDI the studio accepts."""

from __future__ import annotations

import json
import random

import pytest

from studio.core.errors import InputError
from studio.core.midi import read_midi
from studio.core.recording import (
    Recording,
    RecordingLimits,
    parse_recording,
    quantize,
    recording_to_midi,
)
from studio.core.score import Note
from studio.serving.service import AccompanyRequest, accompany

TPB = 480
STEP = TPB // 4  # a 16th note in ticks
SCALE = [60, 62, 64, 65, 67, 69, 71, 72]
RHYTHM = [2, 2, 1, 1, 2, 2, 1, 1]  # in 16ths: eighth, eighth, two 16ths, ...


def _text(notes: list[dict], tempo: float = 100, meter: str = "4/4", aligned: bool = True, **extra) -> str:
    return json.dumps({"notes": notes, "tempo": tempo, "meter": meter, "aligned": aligned, **extra})


def _note(pitch: int, start: float, end: float | None, velocity: int | None = 90) -> dict:
    out: dict = {"pitch": pitch, "start": start, "end": end}
    if velocity is not None:
        out["velocity"] = velocity
    return out


def _played_scale(seed: int, tempo: float = 100, jitter: float = 0.020, offset_s: float = 0.0) -> list[dict]:
    """The C major scale in RHYTHM as a person plays it: onsets and releases off by up to ±`jitter` s."""
    rng = random.Random(seed)
    step_s = 60 / tempo / 4
    notes, at = [], 0
    for pitch, steps in zip(SCALE, RHYTHM, strict=True):
        start = offset_s + at * step_s + rng.uniform(-jitter, jitter)
        end = offset_s + (at + steps) * step_s - 0.01 + rng.uniform(-jitter, jitter)  # a small gap before the next key
        notes.append(_note(pitch, max(0.0, start), end, rng.randint(70, 100)))  # free play: no time before 0
        at += steps
    return notes


def _expected_scale(first_step: int = 0) -> list[tuple[int, int, int]]:
    out, at = [], first_step
    for pitch, steps in zip(SCALE, RHYTHM, strict=True):
        out.append((at * STEP, (at + steps) * STEP, pitch))
        at += steps
    return out


def _triples(notes: list[Note]) -> list[tuple[int, int, int]]:
    return [(n.start, n.end, n.pitch) for n in notes]


# --------------------------------------------------------------------------- quantizing


@pytest.mark.parametrize("seed", range(6))
def test_jittered_scale_snaps_to_exact_16ths_and_8ths(seed):
    score = quantize(parse_recording(_text(_played_scale(seed))))
    assert score.ticks_per_beat == TPB
    assert len(score.tracks) == 1
    track = score.tracks[0]
    assert (track.name, track.program, track.channel, track.is_drum) == ("Melody", 0, 0, False)
    assert _triples(track.notes) == _expected_scale()
    assert [t.microseconds_per_beat for t in score.tempos] == [600_000]
    assert [(s.tick, s.numerator, s.denominator) for s in score.time_signatures] == [(0, 4, 4)]


@pytest.mark.parametrize("seed", range(3))
def test_jittered_scale_at_other_tempi(seed):
    for tempo in (60, 137.5, 240):
        score = quantize(parse_recording(_text(_played_scale(seed, tempo=tempo, jitter=0.008), tempo=tempo)))
        assert _triples(score.tracks[0].notes) == _expected_scale(), tempo
        assert score.tempos[0].microseconds_per_beat == round(60_000_000 / tempo)


def test_velocities_are_kept_and_clamped():
    notes = [_note(60, 0, 0.3, 0), _note(62, 0.3, 0.6, 200), _note(64, 0.6, 0.9, None), _note(65, 0.9, 1.2, 64.4)]
    score = quantize(parse_recording(_text(notes)))
    assert [n.velocity for n in score.tracks[0].notes] == [1, 127, 90, 64]


def test_aligned_late_start_keeps_the_leading_rest_and_free_play_starts_at_zero():
    # At 100 qpm a beat is 0.6 s: the person waited one and a half beats after the count-in.
    notes = [_note(60, 0.905, 1.19), _note(64, 1.21, 1.48), _note(67, 1.49, 2.1)]
    aligned = quantize(parse_recording(_text(notes, aligned=True))).tracks[0].notes
    assert _triples(aligned) == [(720, 960, 60), (960, 1200, 64), (1200, 1680, 67)]

    free = quantize(parse_recording(_text(notes, aligned=False))).tracks[0].notes
    assert free[0].start == 0
    assert _triples(free) == [(0, 240, 60), (240, 480, 64), (480, 960, 67)]


def test_free_play_anchors_the_grid_at_the_first_onset():
    notes = _played_scale(3, jitter=0.01, offset_s=0.37)  # the clock started a little before the first key
    notes[0]["start"] = 0.37
    score = quantize(parse_recording(_text(notes, aligned=False)))
    assert _triples(score.tracks[0].notes) == _expected_scale()


def test_early_first_note_snaps_to_zero_and_count_in_slips_are_dropped():
    notes = [_note(60, -0.030, 0.28), _note(62, 0.31, 0.59)]
    rec = parse_recording(_text(notes))
    assert rec.warnings == []
    assert _triples(quantize(rec).tracks[0].notes) == [(0, 240, 60), (240, 480, 62)]

    # A 16th at 100 qpm is 0.15 s: a note just inside that window snaps to 0, one before it is a slip.
    notes = [_note(55, -0.9, -0.7), _note(59, -0.16, -0.05), _note(60, -0.14, 0.28), _note(62, 0.31, 0.59)]
    rec = parse_recording(_text(notes))
    assert [n[0] for n in rec.notes] == [60, 62]
    assert rec.warnings == ["2 notes played during the count-in left out"]
    assert _triples(quantize(rec).tracks[0].notes) == [(0, 240, 60), (240, 480, 62)]


def test_a_chord_is_kept():
    notes = [_note(60, 0.01, 0.58), _note(64, -0.012, 0.6), _note(67, 0.018, 0.61), _note(72, 0.6, 1.2)]
    score = quantize(parse_recording(_text(notes)))
    assert _triples(score.tracks[0].notes) == [(0, 480, 60), (0, 480, 64), (0, 480, 67), (480, 960, 72)]


def test_notes_are_sorted_by_start_then_pitch():
    notes = [_note(72, 0.6, 0.9), _note(67, 0.0, 0.3), _note(48, 0.6, 1.2), _note(60, 0.0, 0.3)]
    starts_pitches = [(n.start, n.pitch) for n in quantize(parse_recording(_text(notes))).tracks[0].notes]
    assert starts_pitches == [(0, 60), (0, 67), (480, 48), (480, 72)]


def test_same_pitch_overlap_is_cut_at_the_later_start():
    # Web MIDI can deliver a re-strike before the release; both snap onto overlapping spans.
    notes = [_note(60, 0.0, 0.9), _note(60, 0.3, 0.6), _note(64, 0.0, 0.9)]
    score = quantize(parse_recording(_text(notes)))
    assert _triples(score.tracks[0].notes) == [(0, 240, 60), (0, 720, 64), (240, 480, 60)]
    ends_by_pitch: dict[int, int] = {}
    for n in sorted(score.tracks[0].notes, key=lambda n: n.start):
        assert n.start >= ends_by_pitch.get(n.pitch, 0)
        ends_by_pitch[n.pitch] = n.end


def test_same_pitch_at_the_same_onset_becomes_one_note():
    notes = [_note(60, 0.0, 0.3, 50), _note(60, 0.02, 0.6, 80)]
    assert [(n.start, n.end, n.velocity) for n in quantize(parse_recording(_text(notes))).tracks[0].notes] == [(0, 480, 80)]


def test_held_notes_last_until_the_last_event_plus_one_beat():
    # 100 qpm: a beat is 0.6 s. The last event is the release of 67 at 0.9 s, so a held key ends at 1.5 s.
    notes = [_note(60, 0.0, 0.3), {"pitch": 64, "start": 0.3, "velocity": 80}, _note(67, 0.6, 0.9)]
    rec = parse_recording(_text(notes))
    assert rec.notes[1][2] == pytest.approx(1.5)
    assert _triples(quantize(rec).tracks[0].notes) == [(0, 240, 60), (240, 1200, 64), (480, 720, 67)]

    alone = quantize(parse_recording(_text([_note(60, 0.0, None)])))
    assert _triples(alone.tracks[0].notes) == [(0, TPB, 60)]  # just one beat when nothing else happened

    late = parse_recording(_text([_note(60, 0.0, 0.3), _note(62, 1.2, None)]))
    assert late.notes[1][2] == pytest.approx(1.8)  # at least one beat after its own onset


def test_short_and_backwards_notes_last_one_16th():
    notes = [_note(60, 0.0, 0.0), _note(62, 0.3, 0.25), _note(64, 0.6, 0.61)]
    score = quantize(parse_recording(_text(notes)))
    assert _triples(score.tracks[0].notes) == [(0, STEP, 60), (240, 240 + STEP, 62), (480, 480 + STEP, 64)]
    assert all(n.end - n.start >= STEP for n in score.tracks[0].notes)


def test_missing_fields_take_defaults():
    rec = parse_recording(json.dumps({"notes": [{"pitch": 60, "start": 0, "end": 0.5}]}))
    assert (rec.tempo_qpm, rec.numerator, rec.denominator, rec.aligned) == (120.0, 4, 4, False)
    assert rec.notes == [(60, 0.0, 0.5, 90)]
    assert isinstance(rec, Recording)


def test_any_n_over_d_meter_parses():
    for meter, expected in [("5/4", (5, 4)), (" 7 / 8 ", (7, 8)), ("32/16", (32, 16)), ("1/2", (1, 2))]:
        rec = parse_recording(_text([_note(60, 0, 0.3)], meter=meter))
        assert (rec.numerator, rec.denominator) == expected
    assert "6/8" in RecordingLimits().common_meters


# --------------------------------------------------------------------------- MIDI out


@pytest.mark.parametrize("meter", ["3/4", "6/8", "4/4", "5/4", "12/8", "7/8"])
def test_meter_tempo_and_notes_survive_the_midi_round_trip(meter):
    text = _text(_played_scale(1), tempo=92, meter=meter)
    expected = quantize(parse_recording(text))
    data = recording_to_midi(text)
    assert data[:4] == b"MThd" and b"My melody" in data
    parsed = read_midi(data)
    score = parsed.score
    numerator, denominator = map(int, meter.split("/"))
    assert [(s.tick, s.numerator, s.denominator) for s in score.time_signatures] == [(0, numerator, denominator)]
    assert [(t.tick, t.microseconds_per_beat) for t in score.tempos] == [(0, round(60_000_000 / 92))]
    assert score.ticks_per_beat == TPB
    assert len(score.tracks) == 1
    assert score.tracks[0].name == "Melody" and score.tracks[0].program == 0
    assert score.tracks[0].notes == expected.tracks[0].notes
    assert parsed.warnings == []


def test_chords_and_held_notes_survive_the_midi_round_trip():
    notes = [_note(60, 0, 0.6), _note(64, 0, 0.6), _note(67, 0, None), _note(72, 0.6, 1.2, 110)]
    text = _text(notes, meter="3/4")
    assert read_midi(recording_to_midi(text)).score.tracks[0].notes == quantize(parse_recording(text)).tracks[0].notes


@pytest.mark.parametrize(("meter", "aligned"), [("3/4", True), ("6/8", False)])
def test_accompany_keeps_the_recorded_melody_note_for_note(tmp_path, meter, aligned):
    rest = 0.6 if aligned else 0.0  # aligned: one beat of leading rest
    tail = [_note(p, rest + 1.8 + i * 0.3, rest + 2.08 + i * 0.3) for i, p in enumerate([71, 69, 67, 64])]
    text = _text(_played_scale(2, offset_s=rest) + tail, meter=meter, aligned=aligned)
    expected = quantize(parse_recording(text)).tracks[0].notes
    assert (expected[0].start > 0) == aligned
    result = accompany(AccompanyRequest(midi=recording_to_midi(text), model="rules", want_wav=False, want_png=False, out_dir=tmp_path))
    melody = result.score.tracks[0].notes
    assert [(n.pitch, n.start) for n in melody] == [(n.pitch, n.start) for n in expected]
    assert len(result.score.tracks) > 1
    sig = result.score.time_signatures[0]
    assert f"{sig.numerator}/{sig.denominator}" == meter
    assert result.midi_path.is_file()


# --------------------------------------------------------------------------- bad input


_ONE = {"pitch": 60, "start": 0.0, "end": 0.3}


def _with_note(**fields) -> str:
    return json.dumps({"notes": [{**_ONE, **fields}], "tempo": 100, "meter": "4/4", "aligned": False})


BAD_INPUTS = {
    "not json": ("{notes: [", "not valid JSON"),
    "empty text": ("", "not valid JSON"),
    "json list": ("[1, 2, 3]", "JSON object"),
    "json string": ('"hello"', "JSON object"),
    "no notes key": (json.dumps({"tempo": 100}), "nothing was played yet: play some notes on the keyboard first"),
    "empty notes": (json.dumps({"notes": []}), "nothing was played yet: play some notes on the keyboard first"),
    "notes not a list": (json.dumps({"notes": {"pitch": 60}}), "must be a list"),
    "note not an object": (json.dumps({"notes": [60]}), "note 1"),
    "too many notes": (json.dumps({"notes": [_ONE] * 2001}), "2,001 notes"),
    "pitch too high": (_with_note(pitch=128), "pitch 128"),
    "pitch negative": (_with_note(pitch=-1), "pitch -1"),
    "pitch fractional": (_with_note(pitch=60.5), "pitch 60.5"),
    "pitch text": (_with_note(pitch="C4"), "pitch 'C4'"),
    "pitch bool": (_with_note(pitch=True), "pitch True"),
    "pitch missing": (json.dumps({"notes": [{"start": 0, "end": 1}]}), "note 1 has no pitch"),
    "start NaN": (_with_note(start=float("nan")), "start time"),
    "start inf": (_with_note(start=float("inf")), "start time"),
    "start missing": (json.dumps({"notes": [{"pitch": 60, "end": 1}]}), "start time is missing"),
    "start text": (_with_note(start="0"), "start time"),
    "end NaN": (_with_note(end=float("nan")), "end time"),
    "end -inf": (_with_note(end=float("-inf")), "end time"),
    "negative start free play": (_with_note(start=-0.5), "negative time (-0.5 s)"),
    "negative end free play": (_with_note(end=-0.5), "negative time (-0.5 s)"),
    "velocity text": (_with_note(velocity="loud"), "velocity"),
    "velocity NaN": (_with_note(velocity=float("nan")), "velocity"),
    "tempo too slow": (_text([_ONE], tempo=10), "tempo 10 is outside 30-300"),
    "tempo too fast": (_text([_ONE], tempo=400), "tempo 400 is outside 30-300"),
    "tempo text": (_text([_ONE], tempo="fast"), "tempo 'fast'"),
    "tempo NaN": (_text([_ONE], tempo=float("nan")), "tempo"),
    "meter denominator": (_text([_ONE], meter="3/5"), "meter 3/5 is not supported"),
    "meter zero": (_text([_ONE], meter="0/4"), "meter 0/4 is not supported"),
    "meter too big": (_text([_ONE], meter="33/4"), "meter 33/4 is not supported"),
    "meter words": (_text([_ONE], meter="waltz"), "meter 'waltz'"),
    "meter number": (_text([_ONE], meter=3), "meter 3"),
    "aligned text": (_text([_ONE], aligned="yes"), "'aligned' must be true or false"),
    "too long": (_text([_ONE, _note(62, 599.0, 700.0)], aligned=False), "lasts 700.0 s, over the 600 s limit"),
    "too long aligned": (_text([_note(62, 599.0, 601.0)]), "lasts 601.0 s, over the 600 s limit"),
    "too long held": (_text([_ONE, _note(62, 599.9, None)]), "over the 600 s limit"),
    "all count-in slips": (_text([_note(60, -1.0, -0.5), _note(62, -0.5, -0.2)]), "count-in"),
    "huge text": ("[" * 2_000_000, "characters"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "JSON"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_clear_line(case):
    text, fragment = BAD_INPUTS[case]
    with pytest.raises(InputError) as info:
        recording_to_midi(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and "\r" not in message
    assert 20 < len(message) < 200
    assert ":" in message  # what is wrong: what to do


def test_long_bad_values_are_shortened_in_the_message():
    with pytest.raises(InputError) as info:
        parse_recording(_with_note(pitch="x\n" * 500))
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_non_text_input_is_refused():
    with pytest.raises(InputError, match="JSON text"):
        parse_recording(None)  # type: ignore[arg-type]
    assert parse_recording(_with_note().encode()).notes == [(60, 0.0, 0.3, 90)]


def test_limits_are_configurable():
    limits = RecordingLimits(max_notes=3, max_seconds=2.0, min_tempo=50, max_tempo=80)
    four = _text([_note(60 + i, i * 0.3, i * 0.3 + 0.3) for i in range(4)], tempo=60)
    with pytest.raises(InputError, match="over the 3-note limit"):
        parse_recording(four, limits)
    with pytest.raises(InputError, match="over the 2 s limit"):
        parse_recording(_text([_note(60, 0, 2.5)], tempo=60), limits)
    with pytest.raises(InputError, match="outside 50-80"):
        parse_recording(_text([_note(60, 0, 1)], tempo=100), limits)
    assert parse_recording(_text([_note(60, 0, 1.9)], tempo=60), limits).tempo_qpm == 60
    with pytest.raises(ValueError):
        RecordingLimits(ticks_per_beat=482)


def test_the_limits_hold_at_their_edges():
    at_limit = json.dumps({"notes": [_note(60, i * 0.2, i * 0.2 + 0.1) for i in range(2000)], "tempo": 300})
    score = quantize(parse_recording(at_limit))
    assert score.n_notes == 2000
    assert read_midi(recording_to_midi(at_limit)).score.n_notes == 2000
    for tempo in (30, 300):
        assert parse_recording(_text([_ONE], tempo=tempo)).tempo_qpm == tempo

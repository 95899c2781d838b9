"""studio.core.meter: unmarked pickups are found; tunes that start on the downbeat are left alone."""

from __future__ import annotations

import random
import time

import midi_factory as mf

from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.midi import read_midi
from studio.core.score import Note, Score, TimeSignature, Track


def test_pickup_of_the_real_three_four_tune(tune_index, tune_paths):
    entry = next(e for e in tune_index if e["file"] == "three_four_pickup.mid")
    score = read_midi(tune_paths[entry["file"]]).score
    melody = extract_melody(score).track.notes
    assert estimate_pickup(melody, score) == round(entry["pickup_quarters"] * score.ticks_per_beat)


def test_no_pickup_invented_for_downbeat_tunes(tune_index, tune_paths):
    for entry in tune_index:
        if entry["pickup_quarters"] == 0 and entry["file"] != "lead_sheet_chords.mid":
            score = read_midi(tune_paths[entry["file"]]).score
            assert estimate_pickup(extract_melody(score).track.notes, score) == 0, entry["file"]


def test_synthetic_waltz_with_one_beat_pickup():
    tpb = 480
    notes = [Note(0, tpb, 67)]  # the pickup
    for bar in range(8):  # long note on each downbeat, then a short one
        start = tpb + bar * 3 * tpb
        notes += [Note(start, start + 2 * tpb, 72 - bar % 3), Note(start + 2 * tpb, start + 3 * tpb, 67)]
    score = Score(tpb, [Track("m", notes=notes)], time_signatures=[TimeSignature(0, 3, 4)])
    assert estimate_pickup(notes, score) == tpb


def test_meter_map_with_several_signatures_is_trusted():
    notes = [Note(i * 480, i * 480 + 480, 60) for i in range(16)]
    score = Score(480, [Track("m", notes=notes)], time_signatures=[TimeSignature(0, 1, 4), TimeSignature(480, 3, 4)])
    assert estimate_pickup(notes, score) == 0


def test_a_wide_meter_with_many_notes_is_judged_fast():
    """Issue 23: a 255/1 meter has 2,040 eighth-note shifts; over 19,999 notes they took 14-47 s."""
    score = read_midi(mf.wide_meter()).score
    melody = extract_melody(score).track.notes
    start = time.perf_counter()
    estimate_pickup(melody, score)
    assert time.perf_counter() - start < 5  # a wide margin: about 0.5 s on 2 loaded cores


def _loop_pickup(notes, score):
    """The search as a plain loop over shifts and notes (what `estimate_pickup` did before numpy)."""
    sig, tpb = score.time_signatures[0], score.ticks_per_beat
    bar, eighth = sig.bar_ticks(tpb), max(1, tpb // 2)
    unit = max(1, round(tpb * 4 / sig.denominator))
    beat = 3 * unit if sig.denominator >= 8 and sig.numerator % 3 == 0 and sig.numerator > 3 else unit
    if bar % eighth:
        return 0

    def weight(offset):
        if offset == 0:
            return 4.0
        if bar % 2 == 0 and (bar // beat) % 2 == 0 and offset == bar // 2:
            return 2.0
        return 1.5 if offset % beat == 0 else 0.5 if offset % eighth == 0 else 0.0

    window = [n for n in notes if n.start < notes[0].start + 16 * bar]
    fits = {s: 0.0 for s in range(0, bar, eighth)}
    for s in fits:
        for n in window:
            fits[s] += (0.5 + min(n.end - n.start, bar) / beat) * weight((n.start - s) % bar)
    best = max(fits, key=lambda s: (fits[s], -s))
    return 0 if best == 0 or fits[best] < 1.15 * fits[0] else best


def test_the_vectorised_search_finds_what_the_loop_finds():
    rng = random.Random(0)
    for _ in range(500):
        tpb = rng.choice([4, 7, 12, 96, 480])
        sig = TimeSignature(0, rng.choice([1, 2, 3, 4, 5, 6, 7, 9, 12]), rng.choice([1, 2, 4, 8, 16]))
        notes, tick = [], rng.randrange(4 * tpb)
        for _ in range(rng.randrange(4, 30)):
            length = max(1, tpb * rng.choice([1, 2, 4, 6]) // 4)
            notes.append(Note(tick, tick + length, 60))
            tick += length * rng.choice([1, 1, 2])
        score = Score(tpb, [Track("Melody", notes=notes)], time_signatures=[sig])
        assert estimate_pickup(notes, score) == _loop_pickup(notes, score)

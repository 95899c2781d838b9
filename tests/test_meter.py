"""studio.meter: unmarked pickups are found; tunes that start on the downbeat are left alone."""

from __future__ import annotations

from studio.melody import extract_melody
from studio.meter import estimate_pickup
from studio.midi import read_midi
from studio.score import Note, Score, TimeSignature, Track


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

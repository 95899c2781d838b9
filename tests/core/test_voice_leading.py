"""studio.core.voice_leading on tiny hand-made voices whose faults are known by ear and by hand."""

from __future__ import annotations

import math

import numpy as np

from studio.core.roll import RollTrack
from studio.core.voice_leading import (
    FALLBACK_RANGE,
    SATB_RANGES,
    classifier_accuracy,
    classifier_by_group,
    derive_ranges,
    duration_histogram,
    feature_groups,
    interval_histogram,
    js_divergence,
    order_voices,
    piece_counts,
    piece_features,
    pooled_rates,
    ranges_for,
    vertical_histogram,
    voice_notes,
)


def _voice(pitches: list[int | None], name: str = "v", length: int = 4, restrike: bool = True) -> RollTrack:
    """One note per `length` steps (None = rest); a repeated pitch is struck again when `restrike`."""
    track = RollTrack.empty(name, 0, length * len(pitches))
    for i, p in enumerate(pitches):
        if p is not None:
            track.add_note(i * length, (i + 1) * length, p)
            if not restrike and i and pitches[i - 1] == p:
                track.onset[i * length, p] = False
    return track


def _voices(*lines: list[int | None]) -> list[RollTrack]:
    names = ("Soprano", "Alto", "Tenor", "Bass")
    return [_voice(line, names[i]) for i, line in enumerate(lines)]


def test_a_textbook_parallel_fifth():
    counts = piece_counts(_voices([72, 74], [65, 67]))  # C5/F4 -> D5/G4: fifth to fifth, both up
    assert counts["moves_together"] == 1
    assert (counts["parallel_fifths"], counts["parallel_octaves"], counts["parallel_contrary"]) == (1, 0, 0)
    assert counts["hidden_fifths"] == counts["hidden_octaves"] == 0
    assert pooled_rates([counts])["parallel_fifths_octaves"] == 1.0


def test_a_fifth_to_a_compound_fifth_is_parallel_and_a_sixth_to_a_fifth_is_not():
    assert piece_counts(_voices([72, 86], [65, 67]))["parallel_fifths"] == 1  # fifth -> twelfth, both up
    assert piece_counts(_voices([69, 71], [60, 64]))["parallel_fifths"] == 0  # sixth -> fifth (by step: not hidden either)


def test_octaves_by_contrary_motion_count_as_parallels_and_apart():
    counts = piece_counts(_voices([72, 79], [60, 55]))  # C5/C4 -> G5/G3: octave to two octaves, opposite ways
    assert counts["parallel_octaves"] == 1 and counts["parallel_contrary"] == 1
    rates = pooled_rates([counts])
    assert rates["parallel_fifths_octaves"] == 1.0 and rates["parallel_by_contrary_motion"] == 1.0


def test_staccato_parallels_are_heard_across_the_rests_but_not_across_a_long_silence():
    upper, lower = RollTrack.empty("Soprano", 0, 8), RollTrack.empty("Alto", 0, 8)
    for start, top, bottom in ((0, 72, 60), (4, 74, 62)):  # eighth notes and eighth rests: C-C, D-D
        upper.add_note(start, start + 2, top)
        lower.add_note(start, start + 2, bottom)
    assert piece_counts([upper, lower])["parallel_octaves"] == 1
    far = _voices([72, *[None] * 4, 74], [60, *[None] * 4, 62])  # 20 steps of silence between
    assert piece_counts(far)["moves_together"] == 0


def test_a_held_or_restruck_voice_is_not_a_move_together():
    counts = piece_counts(_voices([72, 74], [65, 65]))  # the lower voice strikes F4 again: oblique motion
    assert counts["moves_together"] == 0 and counts["parallel_fifths"] == 0
    assert math.isnan(pooled_rates([counts])["parallel_fifths_octaves"])


def test_a_hidden_fifth_needs_similar_motion_and_a_leap_above():
    hidden = piece_counts(_voices([69, 74], [60, 67]))  # A4/C4 -> D5/G4: sixth into fifth, soprano leaps a fourth
    assert hidden["hidden_fifths"] == 1 and hidden["parallel_fifths"] == 0
    assert pooled_rates([hidden])["hidden_fifths_octaves"] == 1.0
    by_step = piece_counts(_voices([72, 74], [64, 67]))  # C5/E4 -> D5/G4: the soprano steps: allowed
    assert by_step["hidden_fifths"] == 0
    hidden_octave = piece_counts(_voices([67, 72], [57, 60]))  # G4/A3 -> C5/C4: into an octave, soprano leaps
    assert hidden_octave["hidden_octaves"] == 1


def test_a_crossing_is_counted_per_chord():
    # Alto above the soprano at the second of three chords.
    counts = piece_counts(_voices([72, 67, 72], [64, 69, 64], [48, 48, 48]))
    assert counts["chords"] == 3 and counts["crossed_chords"] == 1
    assert pooled_rates([counts])["crossings_per_chord"] == 1 / 3
    assert piece_counts(_voices([72, 72], [69, 72]))["crossed_chords"] == 0  # a unison is not a crossing


def test_an_overlap_passes_the_neighbours_previous_note_without_crossing():
    # Soprano D4 -> G4, alto C4 -> E4: the alto ends above where the soprano was, below where it is.
    counts = piece_counts(_voices([62, 67], [60, 64]))
    assert counts["crossed_chords"] == 0
    assert counts["overlaps"] == 1 and counts["overlap_checks"] == 2
    assert pooled_rates([counts])["overlaps_per_move"] == 0.5
    downward = piece_counts(_voices([67, 62], [64, 60]))  # soprano falls below the alto's previous E4
    assert downward["overlaps"] == 1
    clean = piece_counts(_voices([72, 71], [64, 62]))
    assert clean["overlaps"] == 0
    to_the_unison = piece_counts(_voices([64, 67], [60, 64]))  # the alto takes the soprano's old E4: not above it
    assert to_the_unison["overlaps"] == 0


def test_a_leap_of_a_tenth_and_an_octave():
    counts = piece_counts(_voices([72, 72, 72], [60, 76, 64]))  # alto C4 -> E5 (a tenth) -> E4 (an octave down)
    assert counts["leaps_over_octave"] == 1
    assert counts["moves"] == 4  # two moves of the soprano (repeats), two of the alto
    assert pooled_rates([counts])["leaps_over_octave"] == 1 / 4


def test_a_repeated_note_is_a_restrike_not_a_held_note():
    counts = piece_counts(_voices([72, 74, 76], [60, 60, 62]))
    assert counts["repeated_notes"] == 1 and counts["moves"] == 4
    held = [_voice([72, 74, 76], "Soprano"), _voice([60, 60, 62], "Alto", restrike=False)]
    assert voice_notes(held[1]) == [(0, 8, 60), (8, 12, 62)]
    assert piece_counts(held)["repeated_notes"] == 0


def test_a_voice_with_chords_is_read_by_its_top_note():
    alto = _voice([64, 65], "Alto")
    alto.add_note(0, 8, 55)  # a lower note under both
    assert voice_notes(alto) == [(0, 4, 64), (4, 8, 65)]


def test_out_of_range_counts_only_the_accompaniment():
    voices = _voices([90, 91], [60, 62], [50, 52], [38, 41])  # the melody is far too high: not counted
    counts = piece_counts(voices, [SATB_RANGES["Alto"], SATB_RANGES["Tenor"], SATB_RANGES["Bass"]])
    assert counts["accompaniment_notes"] == 6 and counts["out_of_range"] == 1  # the bass's D2
    assert counts["accompaniment_span"] == 62 - 38


def test_ranges_by_name_place_satb_or_fallback():
    reference = {"Alto": (53, 74), "Tenor": (48, 67), "Bass": (40, 60)}
    assert ranges_for(["Violin II", "Viola", "Cello"], reference) == [(53, 74), (48, 67), (40, 60)]
    assert ranges_for(["Bass", "Guitar"], {"Violin II": (55, 88)}) == [SATB_RANGES["Bass"], FALLBACK_RANGE]
    pieces = [[_voice(list(range(60, 80)), "Viola")], [_voice([50, 90], "Viola")]]
    low, high = derive_ranges(pieces)["Viola"]
    assert 50 <= low <= 60 and 79 <= high <= 90


def test_order_voices_keeps_ensemble_order_else_sorts_by_pitch():
    melody = _voice([72], "Melody")
    bass, alto = _voice([48], "Bass"), _voice([64], "Alto")
    assert [t.name for t in order_voices(melody, [bass, alto])] == ["Melody", "Alto", "Bass"]
    guitar = _voice([60], "Guitar")
    assert [t.name for t in order_voices(melody, [bass, guitar])] == ["Melody", "Guitar", "Bass"]


def test_histograms_and_their_distance():
    alto = _voice([60, 62, 62, 79, 64], "Alto", length=2)
    hist = interval_histogram([alto])
    assert hist.sum() == 4 and hist[13 + 2] == 1 and hist[13] == 1 and hist[26] == 1 and hist[0] == 1
    durations = duration_histogram([_voice([60, 62], "Alto", length=3), _voice([60], "Tenor", length=20)])
    assert durations.tolist() == [0, 0, 2, 0, 0, 0, 0, 0, 1]
    assert js_divergence([1, 2, 3], [2, 4, 6]) == 0.0
    assert js_divergence([1, 0], [0, 1]) == 1.0
    assert 0.0 < js_divergence([1, 1], [1, 3]) < 1.0
    assert math.isnan(js_divergence([0, 0], [1, 0]))


def test_the_vertical_histogram_counts_every_pair_at_every_chord_onset():
    """C5 over E4 held while the bass moves C3 -> G3 (an onset of the bass only): at step 0 the pairs
    make a minor sixth (72 - 64 = 8), two octaves (24: class 0) and a major third (16: 4); at step 4
    the sixth again, a fourth (72 - 55 = 17: class 5) and a major sixth (64 - 55 = 9)."""
    soprano, alto = _voice([72], "Soprano", length=8), _voice([64], "Alto", length=8)
    bass = _voice([48, 55], "Bass", length=4)
    hist = vertical_histogram([soprano, alto, bass])
    assert hist.sum() == 6 and hist.tolist() == [1, 0, 0, 0, 1, 1, 0, 0, 2, 1, 0, 0]
    assert vertical_histogram([soprano]).sum() == 0 and vertical_histogram([]).sum() == 0
    rest = _voice([None, 55], "Bass", length=4)  # a voice that is silent at an onset makes no pair there
    assert vertical_histogram([soprano, rest]).tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]


def test_features_have_a_fixed_size_whatever_the_voices():
    four = piece_features(_voices([72, 74], [64, 65], [55, 57], [48, 50]), 3)
    two = piece_features(_voices([72, 74], [64, 65]), 3)
    assert four.shape == two.shape == (6 * 3 + 9 + 12 + 12,)
    assert np.isfinite(four).all()


def test_the_classifier_tells_apart_what_differs_and_not_what_does_not():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, (12, 5))
    assert classifier_accuracy(real, real + np.array([3.0, 0, 0, 0, 0])) == 1.0
    assert classifier_accuracy(real, real.copy()) == 0.5  # one of each identical pair is always labelled wrong
    same = classifier_accuracy(real, rng.normal(0, 1, (12, 5)))
    assert same <= 0.75
    assert math.isnan(classifier_accuracy(real[:1], real[:1]))


def test_the_groups_say_which_features_give_a_generator_away():
    """Generated pieces whose durations alone differ: the durations alone tell them apart and, made real,
    hide them; the other groups alone cannot tell them apart."""
    rng = np.random.default_rng(0)
    real = rng.dirichlet(np.ones(6), (16, 51))[:, :, 0]  # 16 pieces of 51 features (6 x 3 + 9 + 12 + 12)
    generated = rng.dirichlet(np.ones(6), (16, 51))[:, :, 0]
    groups = feature_groups(3)
    generated[:, groups["durations"]] += 0.5
    out = classifier_by_group(real, generated, 3)
    assert set(out) == {"intervals", "durations", "vertical", "pitch_classes"}
    assert out["durations"]["alone"] == 1.0 and out["durations"]["made_real"] <= 0.75
    assert all(out[g]["alone"] <= 0.75 and out[g]["made_real"] == 1.0 for g in ("intervals", "vertical", "pitch_classes"))

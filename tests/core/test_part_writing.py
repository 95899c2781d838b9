"""studio.core.part_writing: the guide's penalties on hand-made voices, and sampling with it judged by
the independent counting rules of studio.core.voice_leading."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.chords import ChordSpan, ChordSymbol
from studio.core.part_writing import (
    PartWritingGuide,
    chord_faults,
    excess_motion_costs,
    guided_notes,
    harmony_penalties,
    key_preference,
    motion_costs,
    motion_penalties,
    note_penalties,
    note_spans,
    recalibrated_harmony_costs,
    recalibrated_motion_costs,
    training_ranges,
    voice_ranges,
)
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.voice_leading import SATB_RANGES, piece_counts, pooled_rates

GUIDE = PartWritingGuide()
NO_RANGES = [None, None, None, None]


def _lines(*notes: list[int | None], length: int = 4) -> np.ndarray:
    """Voices (V, T) of one pitch per `length` steps (None = rest), -1 for a rest."""
    return np.array([[-1 if p is None else p for p in line for _ in range(length)] for line in notes])


def _tracks(pitches: np.ndarray, starts: np.ndarray | None = None) -> list[RollTrack]:
    names = ("Soprano", "Alto", "Tenor", "Bass")
    out = []
    for v, line in enumerate(pitches):
        track = RollTrack.empty(names[v], 0, len(line))
        for first, end in zip(*note_spans(line, None if starts is None else starts[v]), strict=True):
            track.add_note(int(first), int(end), int(line[first]))
        out.append(track)
    return out


def test_note_spans_split_on_a_new_pitch_a_rest_and_a_restrike():
    line = np.array([60, 60, 62, -1, -1, 62, 62, 62, 64])
    starts = np.zeros(9, bool)
    starts[7] = True
    first, end = note_spans(line, starts)
    assert first.tolist() == [0, 2, 5, 7, 8] and end.tolist() == [2, 3, 7, 8, 9]
    first, end = note_spans(line)
    assert first.tolist() == [0, 2, 5, 8] and end.tolist() == [2, 3, 8, 9]


def test_a_parallel_octave_with_the_melody_is_penalised_and_contrary_motion_is_not():
    # Melody C5 -> D5; the bass's second note after C4: D4 makes parallel octaves, B3 does not.
    pitches = _lines([72, 74], [60, 60])
    pen = note_penalties(pitches, 1, np.array([4]), np.array([8]), NO_RANGES[:2], GUIDE)[0]
    assert pen[62] == pytest.approx(GUIDE.parallel)
    assert pen[59] == 0 and pen[60] == 0  # moving down, or holding (no move: nothing parallel)
    assert pen[50] == pytest.approx(GUIDE.parallel)  # D3 too: an octave class kept, by a leap
    # and moving out: the bass's first note, given that it goes to D4 while the melody goes C5 -> D5
    pitches = _lines([72, 74], [60, 62])
    pen = note_penalties(pitches, 1, np.array([0]), np.array([4]), NO_RANGES[:2], GUIDE)[0]
    assert pen[60] == pytest.approx(GUIDE.parallel) and pen[64] == 0


def test_a_fifth_kept_between_two_accompaniment_voices_is_penalised():
    # Alto G4 -> A4 while the bass moves C4 -> D4: parallel fifths between alto and bass.
    pitches = _lines([79, 79], [67, 67], [60, 62])  # the melody holds: only the bass moves with the alto
    pen = note_penalties(pitches, 1, np.array([4]), np.array([8]), NO_RANGES[:3], GUIDE)[0]
    assert pen[69] == pytest.approx(GUIDE.parallel)
    assert pen[71] == 0  # B4 over D4: a sixth


def test_crossing_range_and_leaps():
    pitches = _lines([67, 67, 67], [55, 55, 55])
    ranges = [None, SATB_RANGES["Alto"]]
    pen = note_penalties(pitches, 1, np.array([4]), np.array([8]), ranges, GUIDE)[0]
    assert pen[68] >= GUIDE.crossing  # above the melody
    assert pen[67] == 0  # a unison is not a crossing
    low, high = SATB_RANGES["Alto"]
    assert pen[low] == 0 and pen[high + 1] > 0 and pen[high + 3] > pen[high + 1]  # further out, more
    assert pen[low - 1] >= GUIDE.out_of_range
    free = note_penalties(pitches, 1, np.array([4]), np.array([8]), NO_RANGES[:2], GUIDE)[0]
    assert free[55 - 13] == pytest.approx(2 * GUIDE.leap_over_octave)  # over an octave from both neighbours
    assert free[55 - 12] == 0  # an octave is allowed


def test_only_notes_at_fault_are_redrawn():
    rng = np.random.default_rng(0)
    pitches = _lines([72, 74, 76, 77], [60, 62, 57, 53])  # the second bass note makes octaves with the melody
    odds = np.full((2, pitches.shape[1], 128), -np.inf)
    odds[1, :, 48:80] = rng.normal(size=(pitches.shape[1], 32))
    free = np.array([False, True])
    off = guided_notes(pitches, odds, free, NO_RANGES[:2], PartWritingGuide(strength=0.0), rng, 2, 0.0)
    assert (off == pitches).all()
    on = guided_notes(pitches, odds, free, NO_RANGES[:2], GUIDE, rng, 2, 0.0)
    changed = sorted({int(t) // 4 for t in np.flatnonzero(on[1] != pitches[1])})
    assert changed in ([0], [1])  # the fault is the pair's: one of its two notes moves, nothing else
    assert pooled_rates([piece_counts(_tracks(on))])["parallel_fifths_octaves"] == 0


@pytest.mark.parametrize("seed", range(6))
def test_guided_notes_on_flat_odds_keep_the_rhythm_and_break_no_rule(seed):
    """Random melodies and random voices: after the guide (the model's odds all equal inside a wide
    span), the counting rules of studio.core.voice_leading find no parallel, crossing, leap over an
    octave or note out of range, and every note starts and ends where it did."""
    rng = np.random.default_rng(seed)
    n_notes = 24
    melody = rng.integers(67, 80, n_notes)
    lines = [melody]
    for low, high in (SATB_RANGES["Alto"], SATB_RANGES["Tenor"], SATB_RANGES["Bass"]):
        lines.append(rng.integers(low - 8, high + 8, n_notes))
    lengths = rng.choice([2, 4], size=n_notes)
    pitches = np.array([np.repeat(line, lengths) for line in lines])
    starts = np.zeros(pitches.shape, bool)
    starts[:, np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
    ranges = voice_ranges(("Alto", "Tenor", "Bass"))
    odds = np.full((4, pitches.shape[1], 128), -np.inf)
    odds[1:, :, 36:84] = 0.0
    before = pooled_rates([piece_counts(_tracks(pitches, starts), ranges[1:])])
    out = guided_notes(pitches, odds, np.array([False, True, True, True]), ranges, GUIDE, rng, 4, 0.3, starts)
    after = pooled_rates([piece_counts(_tracks(out, starts), ranges[1:])])
    assert before["parallel_fifths_octaves"] + before["crossings_per_chord"] + before["out_of_range"] > 0.05  # there was work to do
    assert after["parallel_fifths_octaves"] == 0 and after["crossings_per_chord"] == 0
    assert after["leaps_over_octave"] == 0 and after["out_of_range"] == 0
    for v in range(1, 4):
        assert [a.tolist() for a in note_spans(out[v], starts[v])] == [a.tolist() for a in note_spans(pitches[v], starts[v])]


def test_voice_ranges_and_training_ranges():
    assert voice_ranges(("Alto", "Viola")) == [None, SATB_RANGES["Alto"], None]
    assert voice_ranges(("Viola", "Cello"), (48, 74, 36, 78)) == [None, (48, 74), (36, 78)]
    assert voice_ranges(("Alto", "Bass"), (45, 77, 34, 65)) == [None, SATB_RANGES["Alto"], SATB_RANGES["Bass"]]  # SATB voices: the textbook

    class Piece:
        def __init__(self, rows: list[tuple[int, int]]) -> None:
            self.notes = np.array([(t, 0, 1, p, 80) for t, p in rows])

    pieces = [Piece([(1, p) for p in range(50, 71)] + [(2, 40)]), Piece([(1, 60)])]
    got = training_ranges(pieces, [1, 2, 3])
    assert got[0][0] <= 51 and got[0][1] >= 69 and got[1] == (40, 40) and got[2] == (0, 127)


def test_a_long_note_weighs_like_a_short_one():
    """A note is one decision: the model's odds are averaged over its steps, so a fault outweighs the
    same preference on a whole note as on a sixteenth (summed, 16 steps of a 2-nat preference would
    outvote any penalty)."""
    for length in (1, 16):
        pitches = _lines([72, 74], [60, 62], length=length)  # the second bass note makes octaves with the melody
        odds = np.full((2, pitches.shape[1], 128), -np.inf)
        odds[1, :, 55:70] = 0.0
        odds[1, :length, 60] = 100.0  # the first note stays C4
        odds[1, length:, 62] = 2.0  # the model prefers D4 by 2 nats at every step of the second
        out = guided_notes(pitches, odds, np.array([False, True]), NO_RANGES[:2], GUIDE, np.random.default_rng(0), 2, 0.0)
        assert out[1, -1] != 62 and (out[1, length:] == out[1, -1]).all()


def test_a_redrawn_note_prefers_the_key_and_a_chromatic_note_at_no_fault_stays():
    c_major = frozenset({0, 2, 4, 5, 7, 9, 11})
    preference = key_preference(c_major, GUIDE)
    assert preference[61] == GUIDE.out_of_key and preference[60] == 0 and preference[61 + 12] == GUIDE.out_of_key
    pitches = _lines([72, 74, 76], [60, 62, 61])  # the bass's D4 makes octaves with the melody; its C#4 breaks no rule
    odds = np.full((2, pitches.shape[1], 128), -np.inf)
    odds[1, :, 55:70] = 0.0  # the model has no preference
    odds[1, :4, 60] = 100.0  # the first note stays C4
    odds[1, 4:8, 63] = 1.0  # for the second, the model leans to D#4 (outside the key) by less than the preference
    out = guided_notes(pitches, odds, np.array([False, True]), NO_RANGES[:2], GUIDE, np.random.default_rng(0), 2, 0.0, None, preference)
    assert out[1, 4] != 62 and out[1, 4] % 12 in c_major  # redrawn, inside the key
    assert (out[1, 8:] == 61).all()  # the chromatic note the model chose, at no fault, stays


def test_with_chords_a_note_off_the_chord_on_a_strong_beat_is_a_fault():
    """Chords given: a note sounding on a bar's first beat or its middle outside the chord there is
    redrawn into the chord; off the strong beats, and where no chord is given, nothing changes."""
    grid = Grid(480, 32, [Bar(0, 16, 4, 4), Bar(16, 16, 4, 4)])
    spans = [ChordSpan(0, 16, ChordSymbol(0)), ChordSpan(16, 24, None), ChordSpan(24, 32, ChordSymbol(7))]  # C | none, G
    faults = chord_faults(spans, grid, GUIDE)
    assert faults.shape == (32, 128)
    assert set(np.flatnonzero(faults.any(1))) == {0, 8, 24}  # strong beats with a chord (not 16: none given)
    assert faults[0, 62] == GUIDE.off_chord and faults[0, 64] == 0 and faults[24, 62] == 0 and faults[24, 64] == GUIDE.off_chord
    assert not chord_faults(spans, grid, PartWritingGuide(strength=0.0)).any()
    # one free voice of eight 4-step notes under a held melody: D E D E | D E D E
    pitches = np.array([[72] * 32, [62, 62, 62, 62, 64, 64, 64, 64] * 4])
    odds = np.full((2, 32, 128), -np.inf)
    odds[1, :, 55:70] = 0.0
    odds[1, :, 62] = odds[1, :, 64] = 1.0  # the model likes D and E alike, and nothing else as much
    free = np.array([False, True])
    rng = np.random.default_rng(0)
    plain = guided_notes(pitches, odds, free, NO_RANGES[:2], GUIDE, rng, 2, 0.0)
    assert (plain == pitches).all()  # no rule broken without chords
    out = guided_notes(pitches, odds, free, NO_RANGES[:2], GUIDE, rng, 2, 0.0, None, None, faults=faults)
    assert out[1, 0] % 12 in (0, 4, 7) and out[1, 8] % 12 in (0, 4, 7) and out[1, 24] % 12 in (7, 11, 2)  # into the chord
    unchanged = [t for t in range(32) if t // 4 not in (0, 2, 6)]
    assert (out[1, unchanged] == pitches[1, unchanged]).all()  # weak beats, and the bar without a chord, stay


def test_motion_costs_fold_moves_up_and_down_by_size_against_the_commonest():
    histogram = np.zeros(27)
    histogram[13] = 10  # repeats
    histogram[11], histogram[15] = 20, 20  # whole steps down and up: the commonest size
    histogram[18] = 5  # a fourth up
    histogram[0] = 1  # a leap down over an octave
    costs = motion_costs(histogram)
    assert len(costs) == 14 and costs[2] == 0.0
    assert costs[0] == pytest.approx(np.log(40 / 10), abs=1e-3) and costs[5] == pytest.approx(np.log(40 / 5), abs=1e-3)
    assert costs[13] == pytest.approx(np.log(40), abs=1e-3) and costs[7] == costs[13]  # never seen: as rare as one seen once
    assert motion_costs(histogram, 0.5) == pytest.approx([c / 2 for c in costs], abs=1e-3)
    assert motion_costs(np.zeros(27)) == () and motion_costs(histogram, 0.0) == ()


def test_a_note_that_moves_as_the_genre_seldom_does_is_redrawn_without_the_key_preference():
    """With motion costs a note at no other fault, but leaping where the genre steps, is redrawn to
    the move the genre makes (the model having no preference); the key is not preferred for it, so
    a chromatic step the model's odds favour can be taken; without the costs nothing changes."""
    costs = (1.0, 0.5, 0.0, *[3.0] * 11)  # whole steps cheapest, then half steps, then repeats
    guide = PartWritingGuide(motion=costs)
    pitches = _lines([79, 79, 79], [60, 67, 62])  # the bass C4 - G4 - D4: a fifth up, a fourth down
    first, end = note_spans(pitches[1])
    moves = motion_penalties(pitches, 1, first[1:2], end[1:2], guide)
    assert moves[0, 67] == 6.0 and moves[0, 61] == 1.0 and moves[0, 62] == 1.0  # G4: two leaps; C#4: two half steps; D4: a step, a repeat
    odds = np.full((2, pitches.shape[1], 128), -np.inf)
    odds[1, :, 55:70] = 0.0
    odds[1, :4, 60], odds[1, 8:, 62] = 100.0, 100.0  # the outer notes stay C4 and D4
    odds[1, 4:8, 61] = 0.5  # the model leans a little to C#4 for the middle note
    c_major = frozenset({0, 2, 4, 5, 7, 9, 11})
    args = (np.array([False, True]), NO_RANGES[:2])
    plain = guided_notes(pitches, odds, *args, GUIDE, np.random.default_rng(0), 2, 0.0, None, key_preference(c_major, GUIDE))
    assert (plain == pitches).all()  # no rule broken: the model's notes stay
    moved = guided_notes(pitches, odds, *args, guide, np.random.default_rng(0), 2, 0.0, None, key_preference(c_major, guide))
    assert moved[1, 4] == 61  # C#4 (out of the key): as cheap a motion as D4, and the model leans to it
    assert motion_penalties(pitches, 1, first, end, PartWritingGuide()).sum() == 0


def test_motion_costs_per_voice_charge_each_voice_its_own_moves():
    """Costs for every accompaniment voice one after the other (MOTION_SIZES each): a repeat costs the
    first voice nothing and the second voice much; a single row serves every voice."""
    from studio.core.part_writing import MOTION_SIZES

    first_voice = (0.0, *[2.0] * (MOTION_SIZES - 1))
    second_voice = (5.0, *[0.0] * (MOTION_SIZES - 1))
    pitches = _lines([79, 79], [60, 60], [48, 48])
    per_voice = PartWritingGuide(motion=first_voice + second_voice)
    second_note = np.array([4]), np.array([8])  # each voice strikes its pitch again at step 4: a repeat
    for voice, cost in ((1, 0.0), (2, 5.0)):
        assert motion_penalties(pitches, voice, *second_note, per_voice)[0, pitches[voice, -1]] == cost
    assert motion_penalties(pitches, 2, *second_note, PartWritingGuide(motion=first_voice))[0, 48] == 0.0


def test_excess_motion_costs_charge_only_what_the_model_overdoes():
    genre = np.zeros(27)
    genre[13], genre[11], genre[15], genre[17] = 30, 20, 20, 30  # repeats 30, whole steps 40, thirds 30 of 100
    model = np.zeros(27)
    model[13], model[11], model[15], model[17] = 15, 20, 20, 45  # fewer repeats, the same steps, more thirds
    costs = excess_motion_costs(model, genre)
    assert len(costs) == 14 and costs[0] == 0.0 and costs[2] == 0.0  # under- and equally-used sizes are free
    assert costs[4] == pytest.approx(np.log(45 / 30), abs=1e-3)  # thirds: the model's share over the genre's
    assert excess_motion_costs(model, genre, 2.0)[4] == pytest.approx(2 * costs[4], abs=2e-3)
    assert excess_motion_costs(np.zeros(27), genre) == () and excess_motion_costs(model, genre, 0.0) == ()


def test_recalibrated_motion_costs_charge_what_the_guided_model_now_overdoes():
    genre = np.zeros(27)
    genre[13], genre[11], genre[15], genre[17] = 30, 20, 20, 30  # repeats 30, whole steps 40, thirds 30 of 100
    first = excess_motion_costs(np.array([0] * 11 + [20, 0, 15, 0, 20, 0, 45] + [0] * 9), genre)  # thirds overdone
    guided = np.zeros(27)
    guided[13], guided[11], guided[15], guided[17] = 45, 20, 20, 15  # with those costs: repeats overdone, thirds under
    costs = recalibrated_motion_costs(first, guided, genre)
    assert costs[0] == pytest.approx(np.log(45 / 30), abs=1e-3)  # the repeat, free before, now costs
    assert costs[4] == pytest.approx(max(0.0, first[4] + np.log(15 / 30)), abs=1e-3) and costs[4] < first[4]
    assert costs[2] == pytest.approx(0.0, abs=1e-3)  # steps as often as the genre's: unchanged
    assert min(costs) >= 0.0 and len(costs) == 14
    assert recalibrated_motion_costs((), guided, genre)[0] == costs[0]  # from no costs: the same step
    assert recalibrated_motion_costs(first, np.zeros(27), genre) == tuple(first)


def test_harmony_costs_charge_each_interval_class_with_each_voice_at_each_onset():
    """A note is charged its interval class with every other sounding voice at every chord onset it
    sounds through: the alto's long note under a soprano that moves once meets it at two onsets."""
    seconds = (0.0, 2.0, 1.0, *[0.0] * 9)  # a minor second costs 2, a major second 1 (also as a ninth)
    guide = PartWritingGuide(harmony=seconds)
    pitches = np.array([[72] * 4 + [74] * 4, [60] * 8])  # soprano C5 then D5 over the alto's C4
    onsets = np.zeros(8, bool)
    onsets[[0, 4]] = True
    first, end = note_spans(pitches[1])
    costs = harmony_penalties(pitches, 1, first, end, onsets, guide)
    assert costs.shape == (1, 128)
    assert costs[0, 60] == 1.0  # C4: an octave (free), then a major ninth (class 2)
    assert costs[0, 61] == 2.0  # C#4: a major seventh under C5 (11: free), a minor ninth under D5 (13: class 1)
    assert costs[0, 73] == 2.0 + 2.0  # C#5: a minor second with C5, then with D5
    assert harmony_penalties(pitches, 1, first, end, onsets, PartWritingGuide()).sum() == 0
    assert harmony_penalties(pitches, 1, first, end, np.zeros(8, bool), guide).sum() == 0  # no onset, no chord


def test_a_note_that_sounds_as_the_genre_seldom_does_is_redrawn():
    """With harmony costs the alto's note a second under the soprano is redrawn, its rhythm kept, to
    the pitch the model's odds give most among those that cost nothing; without them it stays."""
    seconds = (0.0, 3.0, 3.0, *[0.0] * 9)
    pitches = np.array([[72] * 8, [70] * 4 + [67] * 4])  # the alto's B-flat 4 a major second under C5
    odds = np.full((2, 8, 128), -np.inf)
    odds[1, :, 60:72] = 0.0
    odds[1, :4, 70], odds[1, :4, 69] = 1.0, 0.5  # the model likes B-flat 4, then A4
    args = (odds, np.array([False, True]), NO_RANGES[:2])
    kept = guided_notes(pitches, *args, GUIDE, np.random.default_rng(0), 2, 0.0)
    assert (kept == pitches).all()
    moved = guided_notes(pitches, *args, PartWritingGuide(harmony=seconds), np.random.default_rng(0), 2, 0.0)
    assert (moved[1, :4] == 69).all() and (moved[1, 4:] == 67).all()  # A4 (a minor third); the G stays


def test_recalibrated_harmony_costs_charge_the_classes_the_model_overdoes():
    genre = np.array([10, 1, 4, 16, 13, 12, 4, 17, 9, 10, 3, 1], float)
    model = genre.copy()
    model[2], model[4] = 8, 9  # major seconds twice the genre's, major thirds fewer
    costs = recalibrated_harmony_costs((), model, genre)
    total_m, total_g = model.sum(), genre.sum()
    assert len(costs) == 12 and costs[4] == 0.0
    assert costs[2] == pytest.approx(np.log((8 / total_m) / (4 / total_g)), abs=1e-3)
    again = recalibrated_harmony_costs(costs, genre, genre, 0.5)  # the model now sounds as the genre: unchanged
    assert again == pytest.approx(costs, abs=2e-3)
    assert recalibrated_harmony_costs(costs, np.zeros(12), genre) == tuple(costs)


def test_the_extreme_pitch_of_another_voice_over_each_note_is_its_highest_or_lowest_there():
    """`_span_extreme`: over each span [first, end) of a voice's notes (touching, apart, up to the
    line's end), the highest or lowest pitch another line sounds there, -1 where it is silent
    throughout: the same as reading each span on its own."""
    from studio.core.part_writing import _span_extreme

    rng = np.random.default_rng(7)
    for _ in range(200):
        length = int(rng.integers(1, 60))
        line = np.where(rng.random(length) < 0.3, -1, rng.integers(30, 90, length))
        cuts = np.sort(rng.choice(np.arange(length + 1), size=min(length + 1, 2 * int(rng.integers(1, 10))), replace=False))
        first, end = cuts[0::2], cuts[1::2]
        first = first[: len(end)]
        for highest in (True, False):
            expected = []
            for a, b in zip(first, end, strict=True):
                sounding = line[a:b][line[a:b] >= 0]
                expected.append(-1 if not len(sounding) else (sounding.max() if highest else sounding.min()))
            assert _span_extreme(line, first, end, highest).tolist() == expected
    assert _span_extreme(np.array([60, 62]), np.zeros(0, np.int64), np.zeros(0, np.int64), True).tolist() == []


def test_kept_perfect_intervals_match_their_definition_note_by_note():
    """`_kept_perfect` (computed only for the notes that can keep a fifth or an octave) against its
    definition, one note and one candidate at a time, on random voices with rests and held pitches."""
    from studio.core.part_writing import PERFECT, _kept_perfect

    rng = np.random.default_rng(7)
    cand = np.arange(128)[None, :]
    for trial in range(40):
        n = int(rng.integers(0, 30))
        own, u_from, u_to = (np.where(rng.random(n) < 0.15, -1, rng.integers(36, 84, n)) for _ in range(3))
        if trial % 2:
            u_to = np.where(rng.random(n) < 0.4, u_from, u_to)  # the other voice holds: no parallel
        for into in (True, False):
            got = _kept_perfect(own, u_from, u_to, cand, into_candidate=into)
            assert got.shape == (n, 128) and got.dtype == bool
            for i in range(n):
                sounding = own[i] >= 0 and u_from[i] >= 0 and u_to[i] >= 0 and u_from[i] != u_to[i]
                fixed = abs(int(own[i]) - int(u_from[i] if into else u_to[i])) % 12
                for c in range(128):
                    moving = abs(c - int(u_to[i] if into else u_from[i])) % 12
                    expected = sounding and fixed in PERFECT and moving == fixed and c != own[i]
                    assert got[i, c] == expected, (trial, i, c, into)

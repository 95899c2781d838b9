"""bench/motion.py: the rule that chooses the weight of the genre's motion in a GAN's guide (docs/models/README.md,
"Which figures decide a change"), on made-up validation rows."""

from __future__ import annotations

from bench.motion import choose


def _row(missed, score=0.05, classifier=0.98, gaps=None):
    gaps = gaps or {"used_pitch_classes": 0.3, "empty_bar_rate": 0.2}
    return {"missed": missed, "validation_score": score, "classifier_accuracy": classifier, "gaps": gaps}


def test_a_weight_must_meet_a_missed_bound_and_keep_the_rest():
    base = _row(["classifier_accuracy", "interval_js"])
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy"], 0.09)}) == 0.25
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy", "interval_js"], 0.01)}) == 0.0  # a better score alone is not enough
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy", "repeated_notes"])}) == 0.0  # one met, another missed
    assert (
        choose({0.0: base, 0.25: _row(["classifier_accuracy"], gaps={"used_pitch_classes": 1.1, "empty_bar_rate": 0.2})}) == 0.0
    )  # a table bound broken
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy"], classifier=1.04)}) == 0.0  # easier to tell apart
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy"], classifier=1.03)}) == 0.25


def test_of_the_weights_that_pass_the_fewest_missed_then_the_lowest_score():
    base = _row(["classifier_accuracy", "interval_js", "repeated_notes"])
    rows = {
        0.0: base,
        0.25: _row(["classifier_accuracy", "repeated_notes"], 0.06),
        0.5: _row(["classifier_accuracy"], 0.2),
        1.0: _row(["classifier_accuracy"], 0.1),
    }
    assert choose(rows) == 1.0


def test_a_table_figure_already_outside_its_bound_may_not_move_further_out():
    base = _row(["classifier_accuracy", "interval_js"], gaps={"used_pitch_classes": 0.4, "empty_bar_rate": 2.0})
    same = _row(["classifier_accuracy"], gaps={"used_pitch_classes": 0.45, "empty_bar_rate": 2.0})
    further = _row(["classifier_accuracy"], gaps={"used_pitch_classes": 0.45, "empty_bar_rate": 2.2})
    assert choose({0.0: base, 0.25: same}) == 0.25
    assert choose({0.0: base, 0.25: further}) == 0.0


def test_a_weight_that_meets_nothing_new_passes_when_the_classifier_falls_by_005():
    base = _row(["classifier_accuracy"], classifier=0.98)
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy"], classifier=0.95)}) == 0.0
    rows = {0.0: base, 0.25: _row(["classifier_accuracy"], classifier=0.93), 0.5: _row(["classifier_accuracy"], classifier=0.90, score=0.3)}
    assert choose(rows) == 0.5  # the lower accuracy, though its score is worse
    assert choose({0.0: base, 0.25: _row(["classifier_accuracy", "repeated_notes"], classifier=0.80)}) == 0.0  # a bound newly missed


def test_the_histograms_the_costs_are_fitted_to_count_each_voice_and_the_harmony():
    """`_voice_histograms`: the moves of all accompaniment voices or of each, and the vertical intervals of
    every pair at every chord onset, the melody included (what the classifier reads)."""
    import numpy as np

    from bench.motion import _voice_histograms
    from studio.core.roll import RollTrack

    def voice(pitches):
        track = RollTrack.empty("v", 0, 4 * len(pitches))
        for i, p in enumerate(pitches):
            track.add_note(4 * i, 4 * i + 4, p)
        return track

    piece = [voice([72, 74]), voice([64, 64]), voice([48, 43])]  # the alto repeats, the bass falls a fourth
    shared, apart = _voice_histograms([piece, piece], False), _voice_histograms([piece, piece], True)
    assert shared["motion"][13] == 2 and shared["motion"][13 - 5] == 2 and shared["motion"].sum() == 4
    assert [h.sum() for h in apart["motion"]] == [2, 2] and apart["motion"][0][13] == 2 and apart["motion"][1][8] == 2
    assert shared["harmony"].sum() == 2 * 6 and np.array_equal(shared["harmony"], apart["harmony"])

"""studio.core.chord_marks and studio.core.progressions: a take's chords in ticks, as markers and back,
as text to edit; the common progressions spelt for a key."""

from __future__ import annotations

import itertools
import random

from studio.core.chord_marks import ChordMark, chord_markers, chord_marks, marks_from_markers, progression_text
from studio.core.chords import ChordSpan, parse_chord, parse_progression, progression_spans
from studio.core.progressions import NUMERALS, common_progressions, progression_in_key
from studio.core.roll import Bar, Grid
from studio.core.score import Marker
from studio.core.theory import Key

TPB = 480  # ticks per quarter: a step (a 16th) is 120 ticks


def _grid(n_bars: int, numerator: int = 4, pickup_steps: int = 0) -> Grid:
    full = numerator * 4
    bars = [Bar(0, pickup_steps, numerator, 4)] if pickup_steps else []
    start = pickup_steps
    bars += [Bar(start + i * full, full, numerator, 4) for i in range(n_bars)]
    return Grid(TPB, start + n_bars * full, bars)


def test_marks_are_in_ticks_spelt_for_the_key_and_skip_free_spans():
    grid = _grid(2)
    spans = [ChordSpan(0, 8, parse_chord("Bbm")), ChordSpan(8, 16, None), ChordSpan(16, 32, parse_chord("Eb7"))]
    marks = chord_marks(spans, grid, Key(11, "major"), given=True)  # B major is written with sharps
    assert marks == [ChordMark(0, 960, "A#m", True), ChordMark(1920, 3840, "D#7", True)]


def test_markers_round_trip_given_and_analysed_apart():
    given = [ChordMark(0, 1920, "C", True), ChordMark(1920, 3840, "G/B", True)]
    heard = [ChordMark(0, 960, "C", False), ChordMark(960, 1920, "Am", False), ChordMark(1920, 3840, "G", False)]
    markers = chord_markers(given + heard)
    assert [m.text for m in markers[:2]] == ["chord: C", "analysed: C"]  # the given chord first at the same tick
    other = Marker(100, "Verse 1")  # a marker that is not a chord is left alone
    assert marks_from_markers([*markers, other], 3840) == sorted(given + heard, key=lambda m: (m.start, not m.given))
    assert marks_from_markers([other, Marker(50, "chord: ")], 3840) == []


def test_progression_text_reads_back_as_the_same_chords():
    """The heard chords copied to the box, given back, are placed where they were heard: from the first
    full bar (a pickup is left free), two a bar where the chord changes in the middle."""
    grid = _grid(4, pickup_steps=4)
    heard = progression_spans(parse_progression("C G | Am | F G7 | C"), grid)
    marks = chord_marks(heard, grid, Key(0, "major"), given=False)
    bar_ticks = [grid.step_to_tick(b.start) for b in grid.bars]
    text = progression_text(marks, bar_ticks, grid.step_to_tick(grid.n_steps))
    assert text == "C G | Am | F G7 | C"
    assert progression_spans(parse_progression(text), grid) == heard


def test_progression_text_repeats_a_chord_over_a_silent_bar_and_is_empty_without_chords():
    bar_ticks = [0, 1920, 3840, 5760]
    marks = [ChordMark(0, 1920, "D", False), ChordMark(3840, 5760, "A", False)]  # nothing heard in bar 2
    assert progression_text(marks, bar_ticks, 7680) == "D | D | A | A"
    assert progression_text([], bar_ticks, 7680) == ""


def _bar_by_bar(marks, bar_ticks, end_tick):
    """progression_text's rule read literally (every mark tried in every bar): the reference."""
    marks = sorted(marks, key=lambda m: m.start)
    starts = sorted(set(bar_ticks)) or [0]
    bars = list(itertools.pairwise([*starts, max(end_tick, starts[-1] + 1)]))
    if len(bars) >= 2 and bars[0][1] - bars[0][0] < bars[1][1] - bars[1][0]:
        bars = bars[1:]
    out, previous = [], marks[0].name if marks else ""
    for a, b in bars:
        names = [m.name for m in marks if m.start <= a < m.end][:1] + [m.name for m in marks if a < m.start < b]
        names = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]] or [previous]
        previous = names[-1]
        out.append(" ".join(names))
    return " | ".join(out) if marks else ""


def test_progression_text_follows_its_rule_on_overlapping_and_gapped_marks():
    """The bar-by-bar sweep (linear: a 1/128 meter has 80,000 bars) says what the literal rule says,
    marks overlapping, gapped, empty, given and heard, bars with a pickup or none."""
    rng = random.Random(0)
    for _ in range(2000):
        marks = []
        for _ in range(rng.randint(0, 12)):
            start = rng.randint(0, 60)
            marks.append(
                ChordMark(start, start + rng.randint(0, 30), rng.choice("CDEFGAB") + rng.choice(["", "m", "7"]), rng.random() < 0.3)
            )
        bar_ticks = sorted(rng.sample(range(80), rng.randint(0, 10)))
        end_tick = rng.randint(0, 100)
        assert progression_text(marks, bar_ticks, end_tick) == _bar_by_bar(marks, bar_ticks, end_tick)


def test_common_progressions_are_spelt_for_the_key_and_its_mode():
    assert common_progressions(Key(5, "major")) == [
        ("I V vi IV: F C Dm Bb", "F C Dm Bb"),
        ("I IV V I: F Bb C F", "F Bb C F"),
        ("ii V I: Gm C F F", "Gm C F F"),
        ("vi IV I V: Dm Bb F C", "Dm Bb F C"),
    ]
    assert [text for _label, text in common_progressions(Key(4, "minor"))] == ["Em Am B Em", "Em C G D"]
    for key in (Key(6, "major"), Key(1, "minor")):
        for _label, text in common_progressions(key):
            assert parse_progression(text)  # every one reads back


def test_a_progression_is_spelt_in_the_key_or_its_relative():
    assert progression_in_key("I V vi IV", Key(7, "major")) == "G D Em C"
    assert progression_in_key("i iv V i", Key(9, "minor")) == "Am Dm E Am"
    assert progression_in_key("I V vi IV", Key(9, "minor")) == "C G Am F"  # a major one in A minor: C major's
    assert progression_in_key("i VI III VII", Key(0, "major")) == "Am F C G"  # a minor one in C major: A minor's
    assert progression_in_key("IV V", Key(0, "major")) == ""
    assert all(progression_in_key(n, Key(k, m)) for n in NUMERALS for k in range(12) for m in ("major", "minor"))

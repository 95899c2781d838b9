"""Chord symbols: reading them, placing them on bars, finding them in music, measuring the following."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from studio.core.chords import (
    _IN_KEY,
    _MEMBER,
    _NON_CHORD,
    _PRIORS,
    _QUALITY_OF,
    _ROOT_IN_BASS,
    _ROOTS,
    _SEVENTH_SHARE,
    _SEVENTHS,
    QUALITIES,
    ChordSpan,
    ChordSymbol,
    Segment,
    _bar_cuts,
    analyse_chords,
    chord_tone_share,
    harmonic_segments,
    parse_chord,
    parse_progression,
    progression_spans,
)
from studio.core.errors import InputError
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.theory import Key


def grid_of(n_bars: int, numerator: int = 4, denominator: int = 4, pickup: int = 0) -> Grid:
    """Bars of one meter (a pickup of `pickup` steps first, when given)."""
    full = round(numerator * 16 / denominator)
    bars = [Bar(0, pickup, numerator, denominator)] if pickup else []
    start = pickup
    for _ in range(n_bars):
        bars.append(Bar(start, full, numerator, denominator))
        start += full
    return Grid(480, start, bars)


def track_with(notes: list[tuple[int, int, int]], n_steps: int, name: str = "Keys") -> RollTrack:
    track = RollTrack.empty(name, 0, n_steps)
    for start, end, pitch in notes:
        track.add_note(start, end, pitch)
    return track


@pytest.mark.parametrize(
    ("text", "root", "quality", "bass", "pcs"),
    [
        ("C", 0, "", None, (0, 4, 7)),
        ("Am", 9, "m", None, (9, 0, 4)),
        ("G/B", 7, "", 11, (7, 11, 2)),
        ("F#m7", 6, "m7", None, (6, 9, 1, 4)),
        ("Bbmaj7", 10, "maj7", None, (10, 2, 5, 9)),
        ("Ebm", 3, "m", None, (3, 6, 10)),
        ("Bdim", 11, "dim", None, (11, 2, 5)),
        ("Esus4", 4, "sus4", None, (4, 9, 11)),
        ("C/D", 0, "", 2, (0, 4, 7, 2)),  # a bass outside the chord sounds too
        ("Cmin", 0, "m", None, (0, 3, 7)),
        ("CM7", 0, "maj7", None, (0, 4, 7, 11)),
        ("Cø", 0, "m7b5", None, (0, 3, 6, 10)),
        ("c", 0, "", None, (0, 4, 7)),
        ("C/C", 0, "", None, (0, 4, 7)),
    ],
)
def test_a_chord_symbol_is_read_as_a_lead_sheet_means_it(text, root, quality, bass, pcs):
    chord = parse_chord(text)
    assert (chord.root, chord.quality, chord.bass) == (root, quality, bass)
    assert chord.pitch_classes == pcs


@pytest.mark.parametrize("text", ["H", "Cx", "C/", "C/H", "Cmaj9", "", "Am7/", "7", "C#m7b5b9", "<b>C</b>", "C" * 500])
def test_what_is_not_a_chord_is_one_line_naming_it(text):
    with pytest.raises(InputError) as caught:
        parse_chord(text)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    assert "chord symbol" in message


def test_names_are_spelt_for_the_key():
    assert parse_chord("A#").name(Key(7, "minor")) == "Bb"  # G minor: two flats
    assert parse_chord("Db").name(Key(2, "major")) == "C#"  # D major: two sharps
    assert parse_chord("G/B").name() == "G/B"
    assert parse_chord("F#m7").name() == "F#m7"


def test_a_progression_without_bar_lines_is_a_chord_a_bar():
    bars = parse_progression("C G/B Am F")
    assert [[str(c) for c in bar] for bar in bars] == [["C"], ["G/B"], ["Am"], ["F"]]


def test_bar_lines_put_several_chords_in_a_bar_and_percent_repeats():
    bars = parse_progression("| C G | Am % | F |")
    assert [[str(c) for c in bar] for bar in bars] == [["C", "G"], ["Am", "Am"], ["F"]]


@pytest.mark.parametrize("text", ["", "   ", "C || G", "% C", "C | | G", "C H"])
def test_an_unusable_progression_is_one_line(text):
    with pytest.raises(InputError) as caught:
        parse_progression(text)
    assert "\n" not in str(caught.value)


def test_an_overlong_progression_is_refused_before_it_is_read():
    with pytest.raises(InputError, match="at most"):
        parse_progression("C " * 5000)


def test_chords_are_placed_on_bars_from_the_first_full_bar_and_loop():
    grid = grid_of(6, pickup=4)
    spans = progression_spans(parse_progression("C | G Am"), grid)
    assert spans[0] == ChordSpan(4, 20, parse_chord("C"))  # the pickup has no chord
    assert spans[1:3] == [ChordSpan(20, 28, parse_chord("G")), ChordSpan(28, 36, parse_chord("Am"))]  # half bars
    assert [str(s.chord) for s in spans] == ["C", "G", "Am", "C", "G", "Am", "C", "G", "Am"]  # looped over 6 bars
    assert spans[-1].end == grid.n_steps


def test_chords_in_a_triple_bar_share_its_beats():
    grid = grid_of(2, 3, 4)
    spans = progression_spans(parse_progression("C G | F"), grid)
    assert [(s.start, s.end) for s in spans[:3]] == [(0, 8), (8, 12), (12, 24)]  # 2 beats + 1, then a whole bar


def test_placement_stops_where_asked():
    grid = grid_of(4)
    spans = progression_spans(parse_progression("C F"), grid, until=40)
    assert spans[-1].end == 40 and len(spans) == 3


def test_segments_follow_the_meter():
    assert [(s.start, s.end) for s in harmonic_segments(grid_of(1))] == [(0, 8), (8, 16)]
    assert [(s.start, s.end) for s in harmonic_segments(grid_of(1, 3, 4))] == [(0, 12)]
    assert [(s.start, s.end) for s in harmonic_segments(grid_of(1, 6, 8))] == [(0, 6), (6, 12)]
    assert [(s.start, s.end) for s in harmonic_segments(grid_of(1, 5, 4))] == [(0, 12), (12, 20)]


def test_analysis_names_triads_inversions_and_sevenths():
    grid = grid_of(4)
    n = grid.n_steps
    bass = track_with([(0, 16, 48), (16, 32, 52), (32, 48, 43), (48, 64, 45)], n, "Bass")  # C, E, G, A
    upper = track_with(
        [(0, 16, 64), (0, 16, 67), (16, 32, 60), (16, 32, 67), (32, 48, 59), (32, 48, 65), (32, 48, 62), (48, 64, 60), (48, 64, 64)],
        n,
    )
    spans = analyse_chords([bass, upper], grid, Key(0, "major"))
    assert [str(s.chord) for s in spans] == ["C", "C/E", "G7", "Am"]
    assert [(s.start, s.end) for s in spans] == [(0, 16), (16, 32), (32, 48), (48, 64)]  # equal halves merged


def test_a_passing_note_between_beats_does_not_change_the_chord():
    grid = grid_of(1)
    n = grid.n_steps
    chord = track_with([(0, 8, 48), (0, 8, 64), (0, 8, 67)], n)
    melody = track_with([(0, 2, 72), (2, 4, 74), (4, 8, 76)], n, "Melody")  # C D E: D passes
    spans = analyse_chords([melody, chord], grid, Key(0, "major"))
    assert str(spans[0].chord) == "C"


def test_silence_has_no_chord():
    grid = grid_of(2)
    spans = analyse_chords([track_with([(0, 8, 60), (0, 8, 64), (0, 8, 67)], grid.n_steps)], grid)
    assert [(s.start, s.end) for s in spans] == [(0, 8)]


def test_the_share_counts_strong_beat_notes_in_the_given_chord():
    grid = grid_of(2)
    n = grid.n_steps
    spans = progression_spans(parse_progression("C G"), grid)
    # Bar 1: C E on beat 1 (in C), D on beat 3 (not in C). Bar 2: B D on beat 1 (in G), F# on beat 3 (not in G).
    track = track_with([(0, 8, 48), (0, 8, 52), (8, 16, 50), (16, 24, 59), (16, 24, 62), (24, 32, 54)], n)
    share, counted = chord_tone_share([track], grid, spans)
    assert counted == 6 and share == pytest.approx(4 / 6)
    # Off-beat notes do not count; where no chord is given nothing counts.
    off = track_with([(2, 4, 61)], n)
    assert chord_tone_share([off], grid, spans) == (1.0, 0)
    partial = [ChordSpan(0, 16, parse_chord("C")), ChordSpan(16, 32, None)]
    assert chord_tone_share([track], grid, partial) == (pytest.approx(2 / 3), 3)


def test_chord_symbols_compare_by_what_they_sound():
    assert parse_chord("Cmaj") == ChordSymbol(0, "")
    assert parse_chord("G/B") != parse_chord("G")


# --------------------------------------------------------------------------- against a bar-by-bar reading

METERS = [(4, 4), (3, 4), (2, 2), (6, 8), (9, 8), (12, 8), (5, 4), (7, 8), (5, 8), (1, 16), (1, 128), (2, 128), (255, 1), (7, 4), (3, 8)]


def random_grid(rng: np.random.Generator) -> Grid:
    """Bars of random meters (one-step 1/128 bars among them), some cut short, the grid ending before,
    inside or after its last bar."""
    bars, start = [], 0
    for _ in range(int(rng.integers(0, 12))):
        numerator, denominator = METERS[int(rng.integers(len(METERS)))]
        full = Bar(0, 0, numerator, denominator).full_length
        length = full if rng.random() < 0.7 else int(rng.integers(0, full + 3))
        bars.append(Bar(start, length, numerator, denominator))
        start += length
    return Grid(480, max(0, start + int(rng.integers(-5, 4))), bars)


def random_tracks(rng: np.random.Generator, n: int) -> list[RollTrack]:
    """Tracks of chord tones, passing notes and overlaps (a drum track among them), with silences."""
    tracks = []
    for i in range(int(rng.integers(1, 4))):
        track = RollTrack.empty(f"t{i}", 0, n + int(rng.integers(-2, 3)) if n > 2 else n, is_drum=rng.random() < 0.15)
        for _ in range(int(rng.integers(0, 25))):
            root, quality = int(rng.integers(12)), list(QUALITIES)[int(rng.integers(len(QUALITIES)))]
            start = int(rng.integers(0, max(1, n)))
            end = start + int(rng.integers(1, 12))
            for interval in QUALITIES[quality][: int(rng.integers(1, 5))]:
                track.add_note(start, end, 36 + 12 * int(rng.integers(0, 5)) + (root + interval) % 12)
        tracks.append(track)
    return tracks


def reference_segments(grid: Grid, chords_per_bar: int) -> list[Segment]:
    """`harmonic_segments` bar by bar."""
    out = []
    for i, bar in enumerate(grid.bars):
        edges = [bar.start] + [bar.start + c for c in _bar_cuts(bar, chords_per_bar) if 0 < c < bar.length] + [bar.end]
        halves = _bar_cuts(bar, 2)
        middle = bar.start + halves[0] if halves else None
        for a, b in itertools.pairwise(edges):
            b = min(b, grid.n_steps)
            if b > a:
                out.append(Segment(a, b, i, a == bar.start, a in (bar.start, middle)))
    return out


def reference_analysis(tracks: list[RollTrack], grid: Grid, key: Key | None, chords_per_bar: int, merge: bool) -> list[ChordSpan]:
    """`analyse_chords` segment by segment: each segment's weights from its own steps, its chord scored
    template by template, spans merged one by one."""
    segs = reference_segments(grid, chords_per_bar)
    n = max((s.end for s in segs), default=0)
    by_class, lowest = np.zeros((n, 12)), np.full(n, 128)
    for track in tracks:
        if track.is_drum:
            continue
        for step, pitch in zip(*np.nonzero(track.velocity[:n]), strict=True):
            by_class[step, pitch % 12] += 1
            lowest[step] = min(lowest[step], pitch)
    spans: list[ChordSpan] = []
    for seg in segs:
        beat = max(1, grid.bars[seg.bar].beat_steps)
        weights = sum((by_class[t] * (2.0 if (t - seg.start) % beat == 0 else 1.0) for t in range(seg.start, seg.end)), np.zeros(12))
        heard = [t for t in range(seg.start, seg.end) if lowest[t] < 128]
        bass = int(lowest[heard[0]]) % 12 if heard else -1
        if bass >= 0:
            weights[bass] += weights.sum() / max(1, np.count_nonzero(weights))
        total = weights.sum()
        if total <= 0:
            continue
        scores = []
        for member, root, prior, seventh in zip(_MEMBER, _ROOTS, _PRIORS, _SEVENTHS, strict=True):
            inside = weights @ member
            score = (inside - _NON_CHORD * (total - inside)) / total + prior + _ROOT_IN_BASS * (bass == root) - 0.5 * (weights[root] == 0)
            if key is not None:
                score += _IN_KEY * all(pc in key.accepted for pc in np.flatnonzero(member))
            scores.append(-np.inf if seventh >= 0 and weights[seventh] < _SEVENTH_SHARE * total else score)
        index = next(i for i, s in enumerate(scores) if s >= max(scores) - 1e-9)
        root = int(_ROOTS[index])
        chord = ChordSymbol(root, _QUALITY_OF[index], bass if bass >= 0 and bass != root and _MEMBER[index, bass] else None)
        if merge and spans and spans[-1].chord == chord and spans[-1].end == seg.start:
            spans[-1] = ChordSpan(spans[-1].start, seg.end, chord)
        else:
            spans.append(ChordSpan(seg.start, seg.end, chord))
    return spans


def test_segments_of_all_bars_at_once_are_the_bar_by_bar_ones():
    """Any meters, one-step bars, bars cut short, and a grid ending anywhere."""
    rng = np.random.default_rng(7)
    for _ in range(400):
        grid = random_grid(rng)
        for chords_per_bar in (1, 2, 3, 4):
            assert harmonic_segments(grid, chords_per_bar) == reference_segments(grid, chords_per_bar)


def test_analysis_of_all_segments_at_once_is_the_segment_by_segment_one():
    """The chords, their spans and their merging, on random music over random bars."""
    rng = np.random.default_rng(11)
    for _ in range(150):
        grid = random_grid(rng)
        tracks = random_tracks(rng, grid.n_steps)
        key = Key(int(rng.integers(12)), "major" if rng.random() < 0.5 else "minor") if rng.random() < 0.7 else None
        chords_per_bar, merge = int(rng.integers(1, 5)), rng.random() < 0.7
        assert analyse_chords(tracks, grid, key, chords_per_bar, merge) == reference_analysis(tracks, grid, key, chords_per_bar, merge)

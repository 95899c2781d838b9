"""studio.core.melody: the melody track is found (never drums) and made monophonic."""

from __future__ import annotations

import numpy as np

from studio.core.melody import extract_melody, skyline
from studio.core.midi import read_midi
from studio.core.score import Note, Score, Track


def test_skyline_keeps_the_top_note_and_cuts_overlaps():
    notes = [Note(0, 480, 60), Note(0, 480, 64), Note(0, 960, 67), Note(480, 960, 65)]
    assert skyline(notes) == [Note(0, 480, 67), Note(480, 960, 65)]


def test_monophonic_line_passes_unchanged():
    notes = [Note(0, 400, 60), Note(480, 900, 62), Note(960, 1440, 64)]
    assert skyline(notes) == notes


def test_the_melody_is_found_in_every_real_tune(tune_index, tune_paths):
    for entry in tune_index:
        score = read_midi(tune_paths[entry["file"]]).score
        choice = extract_melody(score)
        assert choice.track.notes
        assert not score.tracks[choice.source_index].is_drum
        assert score.tracks[choice.source_index].channel == entry["melody_channel"], entry["file"]
        assert len(choice.track.notes) == entry["melody_notes"], entry["file"]


def test_drums_are_never_the_melody_even_when_highest():
    drums = Track("Lead drums", 0, True, 9, [Note(i * 240, i * 240 + 120, 81) for i in range(64)])
    tune = Track("Flute", 73, False, 0, [Note(i * 480, i * 480 + 480, 60 + i % 5) for i in range(32)])
    assert extract_melody(Score(480, [drums, tune])).source_index == 1


def test_chord_track_loses_to_the_melody():
    chords = Track("Piano", 0, False, 1, [Note(i * 960, i * 960 + 960, p) for i in range(16) for p in (72, 76, 79)])
    tune = Track("Track 2", 0, False, 0, [Note(i * 480, i * 480 + 480, 64 + i % 7) for i in range(32)])
    assert extract_melody(Score(480, [chords, tune])).source_index == 1


def test_explicit_track_index_is_honoured():
    a = Track("a", notes=[Note(0, 480, 60)])
    b = Track("b", notes=[Note(0, 480, 70)])
    assert extract_melody(Score(480, [a, b]), 0).track.notes == [Note(0, 480, 60)]


def _loop_skyline(notes: list[Note], tolerance: int = 0) -> list[Note]:
    """The note-by-note `skyline` that the vectorized one replaced (issue 23): it must give exactly this."""
    if not notes:
        return []
    tops: list[Note] = []
    for note in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if tops and note.start - tops[-1].start <= tolerance:
            continue
        tops.append(note)
    line = []
    for i, note in enumerate(tops):
        end = min(note.end, tops[i + 1].start) if i + 1 < len(tops) else note.end
        if end > note.start:
            line.append(Note(note.start, end, note.pitch, note.velocity))
    return line


def test_skyline_keeps_what_the_note_by_note_loop_kept():
    """Unsorted chords, onsets a few ticks apart (a chord is measured from its kept first note, so
    onsets 0, 5, 10 with tolerance 7 make two chords), equal notes, notes that last no time."""
    rng = np.random.default_rng(5)
    for _ in range(3000):
        notes = []
        for _ in range(int(rng.integers(0, 30))):
            start = int(rng.choice([0, 10, 20, rng.integers(-20, 200), 5 * rng.integers(0, 8)]))
            end = start + int(rng.choice([0, -3, 5, 30, rng.integers(0, 100)]))
            notes.append(Note(start, end, int(rng.choice([60, 64, rng.integers(0, 128)])), int(rng.integers(1, 128))))
        for tolerance in (0, 1, 7, 15, 60, -1):
            assert skyline(notes, tolerance) == _loop_skyline(notes, tolerance), (notes, tolerance)
    assert skyline([Note(0, 9, 60), Note(5, 9, 62), Note(10, 20, 64)], 7) == [Note(0, 9, 60), Note(10, 20, 64)]

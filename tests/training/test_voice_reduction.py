"""studio.training.voice_reduction on a hand-made six-voice piece, and the reductions through the renaissance data."""

from __future__ import annotations

import pytest

from studio.core.score import Note
from studio.training import data
from studio.training.data import DatasetConfig
from studio.training.voice_reduction import fill_rests, fold_voices, reduce_voices

Q = 480  # one quarter note in ticks

# Six voices, high to low, one bar of 4/4 each (times in quarters):
SIX = [
    [Note(0, 4 * Q, 76)],  # 1: top voice
    [Note(0, Q, 72), Note(2 * Q, 4 * Q, 71)],  # 2: rests in beat 2
    [Note(0, Q, 67), Note(Q, 2 * Q, 69)],  # 3: its beat-2 note fills voice 2's rest, its beat-1 note does not (voice 2 sounds)
    [Note(Q, 2 * Q, 64), Note(3 * Q, 4 * Q, 62)],  # 4: rests in beats 1 and 3
    [Note(0, 3 * Q, 60)],  # 5: fills voice 4's first rest, cut where voice 4 comes in
    [Note(0, 4 * Q, 48)],  # 6: the bass
]


def _notes(line: list[Note]) -> list[tuple[int, int, int]]:
    return [(n.start // Q, n.end // Q, n.pitch) for n in line]


def test_the_bass_reduction_keeps_the_lowest_voice_and_folds_the_middle_ones_into_two_lines():
    top, upper, lower, bass = reduce_voices(SIX, "bass")
    assert _notes(top) == [(0, 4, 76)]
    assert _notes(bass) == [(0, 4, 48)]  # the real bass, not an inner voice
    # voices 2 and 3 make one line: voice 2's rest (beat 2) filled by voice 3's note
    assert _notes(upper) == [(0, 1, 72), (1, 2, 69), (2, 4, 71)]
    # voices 4 and 5 make the other: voice 4's first rest filled by voice 5's note, cut where voice 4 comes in
    assert _notes(lower) == [(0, 1, 60), (1, 2, 64), (3, 4, 62)]


def test_the_highest_reduction_leaves_the_bass_out():
    assert [_notes(v) for v in reduce_voices(SIX, "highest")] == [_notes(v) for v in SIX[:4]]


def test_a_rest_is_filled_by_a_note_that_starts_in_it_and_the_rests_left_by_the_voice_after():
    line = [Note(0, Q, 72), Note(3 * Q, 4 * Q, 71)]
    filled = fill_rests(line, [Note(Q, 3 * Q, 67)])
    assert _notes(filled) == [(0, 1, 72), (1, 3, 67), (3, 4, 71)]
    assert _notes(fill_rests(line, [Note(Q, 4 * Q, 67)])) == [(0, 1, 72), (1, 3, 67), (3, 4, 71)]  # cut at the line's note
    assert _notes(fill_rests(line, [Note(0, 2 * Q, 67)])) == _notes(line)  # starts under the line's note: not taken
    # five voices: three middle ones, two to the upper line; the third voice fills what the second left
    second, third = [Note(Q, 2 * Q, 67)], [Note(Q, 2 * Q, 60), Note(2 * Q, 3 * Q, 62)]
    five = [SIX[0], line, second, third, SIX[5]]
    assert _notes(reduce_voices(five, "bass")[1]) == [(0, 1, 72), (1, 2, 67), (3, 4, 71)]
    assert _notes(fold_voices([line, second, third])) == [(0, 1, 72), (1, 2, 67), (2, 3, 62), (3, 4, 71)]
    assert _notes(reduce_voices(five, "bass")[2]) == _notes(third)


def test_four_voices_come_out_as_they_are_with_either_reduction():
    four = [SIX[0], SIX[1], SIX[3], SIX[5]]
    assert [_notes(v) for v in reduce_voices(four, "bass")] == [_notes(v) for v in four]
    assert [_notes(v) for v in reduce_voices(four, "highest")] == [_notes(v) for v in four]
    with pytest.raises(ValueError, match="unknown voice reduction"):
        reduce_voices(four, "lowest")
    with pytest.raises(ValueError):
        DatasetConfig("renaissance", reduction="lowest")


def _source(source: str) -> tuple[str, str, object]:
    return next(s for s in data.list_sources("renaissance") if s[1] == source)


def _piece(source: str, reduction: str) -> data.Piece:
    return data._corpus_piece("renaissance", *_source(source), True, True, reduction)


def test_renaissance_pieces_keep_their_bass_only_with_the_bass_reduction():
    # a four-voice mass movement: the same piece, note for note
    four = [_piece("palestrina/Credo_67_c.krn", r) for r in ("highest", "bass")]
    assert (four[0].notes == four[1].notes).all() and four[0].grid == four[1].grid
    # six voices: the Bassus track is the lowest voice with `bass`, an inner voice with `highest`
    highest, bass = (_piece("palestrina/Credo_30_g.krn", r) for r in ("highest", "bass"))
    assert bass.track_names == highest.track_names == ("Cantus", "Altus", "Tenor", "Bassus")
    lowest = [(n[1], n[2], n[3]) for n in bass.notes.tolist() if n[0] == 3]
    parts = data._kern_read(_source("palestrina/Credo_30_g.krn")[2].read_text(encoding="utf-8"))[0]
    lowest_voice = min((p for p in parts if p), key=data._mean_pitch)
    assert [p for _s, _e, p in lowest] == [n.pitch for n in lowest_voice]
    assert [n[3] for n in highest.notes.tolist() if n[0] == 3] != [p for _s, _e, p in lowest]
    assert (bass.notes[bass.notes[:, 0] == 0] == highest.notes[highest.notes[:, 0] == 0]).all()  # the melody is the same


def test_a_reduced_build_has_its_own_cache_and_the_old_caches_stay_valid():
    default, bass = (
        data._cache_key(DatasetConfig("renaissance"), "")[1],
        data._cache_key(DatasetConfig("renaissance", reduction="bass"), "")[1],
    )
    assert "reduction" not in default and bass["reduction"] == "bass"
    assert data._cache_key(DatasetConfig("renaissance"), "")[0] != data._cache_key(DatasetConfig("renaissance", reduction="bass"), "")[0]
    assert data._cache_key(DatasetConfig("renaissance", reduction="highest"), "")[0] == data._cache_key(DatasetConfig("renaissance"), "")[0]

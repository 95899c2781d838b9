"""The selection rule (`studio.core.selection`): which notes a regeneration keeps, bar numbers as the
page shows them, and the bars and voices people type."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.roll import Bar, Grid, RollTrack, track_notes
from studio.core.score import Note
from studio.core.selection import (
    Selection,
    SelectionError,
    bar_numbers,
    kept_and_new,
    parse_bars,
    parse_voices,
    run_starts,
    select_voices,
    spliced_track,
)


def _grid(bars: int = 4, pickup: int = 0) -> Grid:
    out = [Bar(0, pickup, 4, 4)] if pickup else []
    out += [Bar(pickup + 16 * i, 16, 4, 4) for i in range(bars)]
    return Grid(480, pickup + 16 * bars, out)


def test_a_note_belongs_to_the_bar_it_starts_in():
    old = [Note(0, 20, 60, 70), Note(12, 24, 64, 71), Note(16, 20, 67, 72), Note(20, 40, 69, 73), Note(32, 36, 60, 74)]
    new = [Note(10, 18, 67, 90), Note(16, 40, 64, 91), Note(18, 22, 60, 92), Note(24, 28, 71, 93), Note(32, 34, 50, 94)]
    out = kept_and_new(old, new, 16, 32)
    assert set(out) == {
        Note(0, 20, 60, 70),  # starts before the selection: kept as it is, though it sounds into it
        Note(12, 24, 64, 71),
        Note(24, 32, 64, 91),  # a new note starts when the kept note of its pitch ends, and is cut at the end
        Note(20, 22, 60, 92),
        Note(24, 28, 71, 93),
        Note(32, 36, 60, 74),  # starts at the selection's end: kept
    }  # the old notes that started inside (67 at 16, 69 at 20) are gone, and the new ones outside never came
    assert [(n.start, n.pitch) for n in out] == sorted((n.start, n.pitch) for n in out)


def test_a_track_spliced_keeps_the_rest_exactly():
    old, new = RollTrack.empty("Alto", 52, 64), RollTrack.empty("Alto", 52, 64)
    for start, end, pitch, velocity in ((0, 8, 60, 70), (8, 20, 62, 75), (20, 24, 64, 80), (28, 40, 65, 85), (40, 48, 67, 90)):
        old.add_note(start, end, pitch, velocity)
    for start, end, pitch in ((0, 64, 50), (16, 40, 72), (24, 30, 74)):
        new.add_note(start, end, pitch, 99)
    out = spliced_track(old, new, 16, 32)
    assert set(track_notes(out)) == {(0, 8, 60), (8, 20, 62), (16, 32, 72), (24, 30, 74), (40, 48, 67)}
    assert out.velocity[40, 67] == 90 and out.velocity[8, 62] == 75
    assert spliced_track(old, None, 16, 32).velocity[16:32].sum() == old.velocity[16:20].sum()  # only the held note


def test_a_voice_writes_anew_after_the_note_it_holds_into_the_selection():
    grid = _grid(4)
    alto, bass = RollTrack.empty("Alto", 52, 64), RollTrack.empty("Bass", 52, 64)
    alto.add_note(12, 20, 60)
    alto.add_note(20, 24, 62)
    bass.add_note(16, 32, 40)
    chosen = select_voices([alto, bass], grid, Selection(2, 2))
    assert (chosen.start, chosen.end) == (16, 32)
    assert np.flatnonzero(chosen.free[0]).tolist() == list(range(20, 32)) and np.flatnonzero(chosen.free[1]).tolist() == list(range(16, 32))
    assert track_notes(chosen.kept[0]) == [(12, 20, 60)] and track_notes(chosen.kept[1]) == []
    only_bass = select_voices([alto, bass], grid, Selection(2, 2, (1,)))
    assert not only_bass.free[0].any() and track_notes(only_bass.kept[0]) == track_notes(alto)
    assert run_starts(chosen.free)[0, 20] and run_starts(chosen.free).sum() == 2


def test_bars_are_numbered_as_the_page_numbers_them():
    assert bar_numbers(_grid(3)) == [1, 2, 3]
    assert bar_numbers(_grid(3, pickup=4)) == [0, 1, 2, 3]
    assert Selection(0, 1).steps(_grid(3, pickup=4)) == (0, 20)
    assert Selection(2, 3).steps(_grid(3)) == (16, 48)


@pytest.mark.parametrize(
    ("bars", "words"),
    [((3, 2), "bars 3-2 run backwards"), ((0, 1), "the take has bars 1 to 3: bars 0-1"), ((2, 4), "bars 2-4 are not all in it")],
)
def test_bars_outside_the_take_or_backwards_are_refused(bars, words):
    with pytest.raises(SelectionError, match=words):
        Selection(*bars).steps(_grid(3))


def test_bars_and_voices_as_people_type_them():
    assert parse_bars("3-4") == parse_bars(" 3 to 4 ") == parse_bars([3, 4]) == (3, 4)
    assert parse_bars("5") == parse_bars(5) == (5, 5)
    for bad in ("", "3-", "a-b", "1" * 50, None, True, 3.5, [1, 2, 3]):
        with pytest.raises(SelectionError, match="bars must be a range such as 3-4"):
            parse_bars(bad)
    names = ["Alto", "Tenor", "Bass"]
    assert parse_voices(None, names) is None and parse_voices("", names) is None
    assert parse_voices("bass, Alto", names) == (0, 2) and parse_voices(["Tenor", 2], names) == (1, 2)
    with pytest.raises(SelectionError, match="the model has no voice 'Soprano': its voices are Alto, Tenor, Bass"):
        parse_voices("Soprano", names)
    with pytest.raises(SelectionError, match="the model has no voice '7'"):
        parse_voices([7], names)

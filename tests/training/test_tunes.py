"""studio.training.tunes: the unseen tunes, read tune by tune as the whole collection reads them."""

from __future__ import annotations

from studio.training import tunes
from studio.training.tunes import _reference_numbers, corpus_tunes

SMALL = ("oneills1850/0721-0730.abc", "essenFolksong/test1.abc")  # small ABC collections: parsed whole in a second


def test_tunes_read_one_by_one_are_those_of_the_whole_collection(monkeypatch):
    """A handful of tunes is read without parsing a whole collection (313 tunes in the first): each
    tune by its reference number, in file order; the same tunes, numbers and notes as the whole
    collection parsed at once (the way it is read when its reference numbers repeat)."""
    for path in SMALL:
        numbers = _reference_numbers(path)
        assert numbers and len(set(numbers)) == len(numbers), path
    one_by_one = list(corpus_tunes(None, collections=SMALL))
    monkeypatch.setattr(tunes, "_reference_numbers", lambda path: None)
    whole = list(corpus_tunes(None, collections=SMALL))
    assert len(one_by_one) >= 10
    assert [(t.title, t.source, t.meter, t.score.tracks[0].notes) for t in one_by_one] == [
        (t.title, t.source, t.meter, t.score.tracks[0].notes) for t in whole
    ]


def test_a_handful_of_tunes_stops_early():
    first = list(corpus_tunes(2))
    assert len(first) == 2 and all(len(t.score.tracks[0].notes) >= 8 for t in first)
    assert [t.source for t in first] == sorted((t.source for t in first), key=lambda s: int(s.rsplit("#", 1)[1]))

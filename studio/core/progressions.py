"""Common chord progressions in a key, spelt as chord symbols to type over ("C G Am F").

The page offers them to fill its chords box: pop's I V vi IV, the cadence I IV V I, jazz's ii V I and
vi IV I V in a major key; i iv V i and the descending i VI III VII in a minor one. Each is four bars,
a chord a bar (ii V I holds the I for two), so it loops evenly over a tune's phrases.
"""

from __future__ import annotations

from studio.core.chords import ChordSymbol
from studio.core.theory import Key

__all__ = ["MAJOR_PROGRESSIONS", "MINOR_PROGRESSIONS", "NUMERALS", "common_progressions", "progression_in_key"]

# (roman numerals, then each chord as (semitones above the tonic, quality)).
MAJOR_PROGRESSIONS: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = (
    ("I V vi IV", ((0, ""), (7, ""), (9, "m"), (5, ""))),
    ("I IV V I", ((0, ""), (5, ""), (7, ""), (0, ""))),
    ("ii V I", ((2, "m"), (7, ""), (0, ""), (0, ""))),
    ("vi IV I V", ((9, "m"), (5, ""), (0, ""), (7, ""))),
)
MINOR_PROGRESSIONS: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = (
    ("i iv V i", ((0, "m"), (5, "m"), (7, ""), (0, "m"))),
    ("i VI III VII", ((0, "m"), (8, ""), (3, ""), (10, ""))),
)


def common_progressions(key: Key) -> list[tuple[str, str]]:
    """(label, chords) of the common progressions of `key`'s mode, spelt for it, e.g.
    ('I V vi IV: G D Em C', 'G D Em C') in G major."""
    table = MAJOR_PROGRESSIONS if key.mode == "major" else MINOR_PROGRESSIONS
    out = []
    for numerals, chords in table:
        text = " ".join(ChordSymbol((key.tonic + step) % 12, quality).name(key) for step, quality in chords)
        out.append((f"{numerals}: {text}", text))
    return out


NUMERALS = tuple(numerals for numerals, _chords in (*MAJOR_PROGRESSIONS, *MINOR_PROGRESSIONS))  # every progression offered


def progression_in_key(numerals: str, key: Key) -> str:
    """The progression written as `numerals` (one of NUMERALS) spelt in `key`, e.g. 'I V vi IV' in G major
    -> 'G D Em C'; a major progression in a minor key is spelt in its relative major (and a minor one in
    a major key in its relative minor), so its chords are the key's own. '' for numerals not offered."""
    for table, mode in ((MAJOR_PROGRESSIONS, "major"), (MINOR_PROGRESSIONS, "minor")):
        for name, chords in table:
            if name == numerals:
                home = key if key.mode == mode else Key((key.tonic + (3 if mode == "major" else 9)) % 12, mode)
                return " ".join(ChordSymbol((home.tonic + step) % 12, quality).name(home) for step, quality in chords)
    return ""

"""Music theory used by the metrics and the rule-based harmonizer: keys, scales, chords.

Key finding is the Krumhansl-Schmuckler algorithm with the Krumhansl-Kessler (1982) probe-tone
profiles: correlate a duration-weighted pitch-class histogram with the profile of each of the 24
keys and take the best (Krumhansl, "Cognitive Foundations of Musical Pitch", 1990, ch. 4); given the
melody's last note, a close runner-up whose tonic it is wins (`estimate_key` says why).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FINAL_NOTE_CANDIDATES",
    "FINAL_NOTE_MARGIN",
    "FINAL_NOTE_SLACK",
    "KK_MAJOR",
    "KK_MINOR",
    "PITCH_NAMES",
    "Key",
    "estimate_key",
    "key_correlations",
    "pitch_class_histogram",
    "pitch_name",
]

PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

_MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
_NATURAL_MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Key:
    """A key: `tonic` pitch class 0-11 (0 = C) and `mode` 'major' or 'minor'."""

    tonic: int
    mode: str

    @property
    def scale(self) -> tuple[int, ...]:
        """The seven pitch classes of the key (natural minor for minor keys)."""
        steps = _MAJOR_STEPS if self.mode == "major" else _NATURAL_MINOR_STEPS
        return tuple((self.tonic + s) % 12 for s in steps)

    @property
    def accepted(self) -> frozenset[int]:
        """Pitch classes that count as in key: the scale, and in minor also the raised 6th and 7th."""
        extra = {(self.tonic + 9) % 12, (self.tonic + 11) % 12} if self.mode == "minor" else set()
        return frozenset(self.scale) | extra

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


def pitch_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI pitch, e.g. 60 -> 'C4'."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def pitch_class_histogram(pitches: Iterable[int], weights: Iterable[float] | None = None) -> np.ndarray:
    """Weighted count of each pitch class, shape=(12,)."""
    hist = np.zeros(12)
    pitches = list(pitches)
    ws = [1.0] * len(pitches) if weights is None else list(weights)
    for p, w in zip(pitches, ws, strict=True):
        hist[p % 12] += w
    return hist


def key_correlations(histogram: np.ndarray) -> list[tuple[Key, float]]:
    """The 24 keys with the correlation of their Krumhansl-Kessler profile with `histogram` (12,), best first.

    Order among equal correlations: major before minor, then by tonic from C (so a flat or empty
    histogram ranks C major first).
    """
    hist = np.asarray(histogram, float)
    flat = not hist.any() or hist.std() == 0
    scored = [
        (Key(tonic, mode), 0.0 if flat else float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1]))
        for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR))
        for tonic in range(12)
    ]
    return sorted(scored, key=lambda kr: -kr[1])  # stable: ties keep the order above


def _in_key_share(hist: np.ndarray, key: Key) -> float:
    """Share of the histogram's weight on pitch classes `key` accepts."""
    return float(hist[list(key.accepted)].sum() / hist.sum())


# How close a key must come to the best one for the melody's last note to choose it (see `estimate_key`).
FINAL_NOTE_CANDIDATES = 3  # among the best-ranked keys, as music21's final-note check in make_samples.py
FINAL_NOTE_MARGIN = 0.1  # at most this much lower correlation than the best key
FINAL_NOTE_SLACK = 0.025  # and at most this much more of the melody's weight out of key


def estimate_key(histogram: np.ndarray, final_pitch_class: int | None = None) -> Key:
    """The key of a melody's pitch-class `histogram` (12,): Krumhansl-Kessler, checked by the last note.

    1. Rank the 24 keys by the correlation of their profile with the histogram (`key_correlations`).
    2. Without `final_pitch_class`, the best key. With it (the melody's last note), the best key
       whose tonic is that note among the `FINAL_NOTE_CANDIDATES` best-ranked, when its
       correlation is within `FINAL_NOTE_MARGIN` of the best and it leaves at most
       `FINAL_NOTE_SLACK` more of the histogram out of key; otherwise the best key.

    Why: the profiles alone cannot tell a key from its relative or its dominant when the tune
    dwells on their shared notes ('Alle meine Entchen', C D E F G A, correlates a hair better with
    A minor than with C major), while folk tunes and chorales end on their tonic. The coverage check
    keeps a modal tune ending off the major/minor tonic (a Phrygian tune on D with B-flat and E-flat:
    D minor would call its E-flats out of key) in the key that holds all its notes. Ties (an empty
    histogram) resolve to C major.
    """
    hist = np.asarray(histogram, float)
    ranked = key_correlations(hist)
    best, best_r = ranked[0]
    if final_pitch_class is None or not hist.any():
        return best
    best_share = _in_key_share(hist, best)
    for key, r in ranked[:FINAL_NOTE_CANDIDATES]:
        if key.tonic != final_pitch_class % 12 or r < best_r - FINAL_NOTE_MARGIN:
            continue
        if _in_key_share(hist, key) >= best_share - FINAL_NOTE_SLACK:
            return key
    return best

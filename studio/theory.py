"""Music theory used by the metrics and the rule-based harmonizer: keys, scales, chords.

Key finding is the Krumhansl-Schmuckler algorithm with the Krumhansl-Kessler (1982) probe-tone
profiles: correlate a duration-weighted pitch-class histogram with the profile of each of the 24
keys and take the best (Krumhansl, "Cognitive Foundations of Musical Pitch", 1990, ch. 4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "KK_MAJOR",
    "KK_MINOR",
    "PITCH_NAMES",
    "Key",
    "estimate_key",
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


def estimate_key(histogram: np.ndarray) -> Key:
    """The key whose Krumhansl-Kessler profile correlates best with a pitch-class `histogram` (12,).

    Ties (e.g. an empty histogram) resolve to C major.
    """
    hist = np.asarray(histogram, float)
    if not hist.any():
        return Key(0, "major")
    best, best_r = Key(0, "major"), -np.inf
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            rotated = np.roll(profile, tonic)
            if hist.std() == 0:
                r = 0.0
            else:
                r = float(np.corrcoef(hist, rotated)[0, 1])
            if r > best_r + 1e-12:
                best, best_r = Key(tonic, mode), r
    return best

"""Chord symbols: read them ("C G/B Am F"), find them in music, and measure how music follows them.

Three pure pieces, shared by everything that speaks of chords (the harmonizer, the learned models'
chord labels, the piano roll's chord line, the metric):

- `ChordSymbol` and `parse_chord` / `parse_progression`: a lead-sheet symbol (root, quality, an
  optional slash bass) and a progression typed by a person, placed on a tune's bars with
  `progression_spans`. Written here, not with music21's `harmony.ChordSymbol`, because that class
  accepts almost any text (it guesses), so a typing mistake would become a wrong chord instead of one
  clear line, and importing music21 costs about a second in a request.
- `harmonic_segments`: where a chord may change (whole or half bars, following the meter's beats).
- `analyse_chords`: the chord of every segment of a piece, by template matching (the pitch classes
  sounding, weighted by how long and how low they sound, against every root x quality), as in
  Pardo & Birmingham's segment labelling.
- `chord_tone_share`: of the notes sounding on strong beats, the share that belong to the chord.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from studio.core.errors import InputError
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.theory import PITCH_NAMES, Key

__all__ = [
    "QUALITIES",
    "ChordSpan",
    "ChordSymbol",
    "Segment",
    "analyse_chords",
    "chord_pitch_classes",
    "chord_tone_share",
    "harmonic_segments",
    "parse_chord",
    "parse_progression",
    "progression_spans",
]

# Quality -> intervals above the root. The names are the ones written after the root.
QUALITIES: dict[str, tuple[int, ...]] = {
    "": (0, 4, 7),
    "m": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus4": (0, 5, 7),
    "sus2": (0, 2, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "6": (0, 4, 7, 9),
    "m6": (0, 3, 7, 9),
}
# Other spellings people type, -> the names above.
_ALIASES = {
    "maj": "",
    "M": "",
    "min": "m",
    "-": "m",
    "mi": "m",
    "o": "dim",
    "°": "dim",
    "+": "aug",
    "sus": "sus4",
    "M7": "maj7",
    "Δ": "maj7",
    "Δ7": "maj7",
    "ma7": "maj7",
    "min7": "m7",
    "-7": "m7",
    "mi7": "m7",
    "ø": "m7b5",
    "ø7": "m7b5",
    "-7b5": "m7b5",
    "min7b5": "m7b5",
    "o7": "dim7",
    "°7": "dim7",
    "dom7": "7",
    "min6": "m6",
    "-6": "m6",
}
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_FLAT_NAMES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
_ROOT = re.compile(r"([A-Ga-g])([#♯b♭]*)")
MAX_PROGRESSION_CHARS = 2000  # a typed progression longer than this is refused (a tune of 500 bars has fewer)


@dataclass(frozen=True)
class ChordSymbol:
    """A lead-sheet chord: `root` pitch class (0 = C), `quality` (a key of QUALITIES), `bass` pitch
    class of a slash chord ("G/B": 11), or None when the root is in the bass."""

    root: int
    quality: str = ""
    bass: int | None = None

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        """The chord's pitch classes, root first (a slash bass that is not a chord tone is added last)."""
        pcs = tuple((self.root + i) % 12 for i in QUALITIES[self.quality])
        return pcs if self.bass is None or self.bass in pcs else (*pcs, self.bass)

    def name(self, key: Key | None = None) -> str:
        """How a lead sheet writes it, e.g. 'G/B', 'F#m7': spelt with sharps or flats as `key`'s
        signature is (C# in D major, Db in Ab major); without a key, C# Eb F# Ab Bb."""
        names = PITCH_NAMES if key is None else _FLAT_NAMES if _flat_key(key) else _SHARP_NAMES
        text = names[self.root] + self.quality
        return text if self.bass is None else f"{text}/{names[self.bass]}"

    def __str__(self) -> str:
        return self.name()


def _flat_key(key: Key) -> bool:
    """Whether `key`'s signature has flats (F, Bb, Eb, Ab, Db, Gb major and their relative minors)."""
    major_tonic = key.tonic if key.mode == "major" else (key.tonic + 3) % 12
    return major_tonic in (5, 10, 3, 8, 1, 6)


def chord_pitch_classes(chord: ChordSymbol | None) -> frozenset[int]:
    """The pitch classes of `chord` (none for no chord)."""
    return frozenset(chord.pitch_classes) if chord is not None else frozenset()


def _pitch_class(text: str) -> tuple[int, int]:
    """(pitch class, characters read) of a note name at the start of `text`, e.g. 'Bb' -> (10, 2)."""
    match = _ROOT.match(text)
    if not match:
        raise ValueError
    pc = _LETTERS[match.group(1).upper()]
    for sign in match.group(2):
        pc += 1 if sign in "#♯" else -1
    return pc % 12, match.end()


def parse_chord(text: str) -> ChordSymbol:
    """One chord symbol, e.g. 'C', 'Am', 'G/B', 'F#m7', 'Bbmaj7', 'Bdim', 'Esus4'.

    Raises InputError (one line, naming the symbol) for anything else."""
    symbol = text.strip()
    shown = symbol if len(symbol) <= 24 else symbol[:24] + "..."
    try:
        root, used = _pitch_class(symbol)
        rest = symbol[used:]
        bass = None
        if "/" in rest:
            rest, _, after = rest.partition("/")
            bass, bass_used = _pitch_class(after)
            if bass_used != len(after):
                raise ValueError
        quality = _ALIASES.get(rest, rest)
        if quality not in QUALITIES:
            raise ValueError
    except ValueError:
        raise InputError(
            f"'{shown}' is not a chord symbol the studio reads: write a root (C, F#, Bb) with an optional quality "
            f"(m, dim, aug, sus4, 7, maj7, m7, m7b5, dim7, 6, m6) and bass (/B), e.g. 'C G/B Am F'"
        ) from None
    return ChordSymbol(root, quality, None if bass == root else bass)


def parse_progression(text: str) -> list[list[ChordSymbol]]:
    """A typed progression as bars of chords.

    Without bar lines every chord fills one bar ("C G/B Am F": four bars). With bar lines ('|') a bar
    holds one chord or several, which share the bar ("C G | Am F": two chords a bar, half a bar each).
    '%' repeats the previous chord. Raises InputError for an empty or unreadable progression."""
    if len(text) > MAX_PROGRESSION_CHARS:
        raise InputError(f"the chords are {len(text):,} characters long; at most {MAX_PROGRESSION_CHARS:,} are read")
    text = text.replace(",", " ").strip().strip("|").strip()
    groups = [g.split() for g in text.split("|")] if "|" in text else [[token] for token in text.split()]
    bars: list[list[ChordSymbol]] = []
    previous: ChordSymbol | None = None
    for tokens in groups:
        if not tokens:
            raise InputError("an empty bar between two '|' in the chords: put a chord (or % to repeat one) in every bar")
        bar = []
        for token in tokens:
            if token == "%":
                if previous is None:
                    raise InputError("'%' repeats the chord before it, but the chords start with it")
                chord = previous
            else:
                chord = parse_chord(token)
            bar.append(chord)
            previous = chord
        bars.append(bar)
    if not bars:
        raise InputError("no chords given: type chord symbols such as 'C G/B Am F'")
    return bars


@dataclass(frozen=True)
class Segment:
    """A stretch of a tune where one chord sounds: steps `start`..`end`, in bar `bar` (an index of grid.bars)."""

    start: int
    end: int
    bar: int
    downbeat: bool  # starts its bar
    strong: bool = True  # starts its bar or the bar's middle (a natural place for a chord change)


def _bar_cuts(bar: Bar, chords_per_bar: int) -> list[int]:
    """Offsets (steps from the bar start) where a chord may change inside a full bar."""
    if chords_per_bar <= 1 or bar.length < bar.full_length:
        return []
    beat = bar.beat_steps
    beats = max(1, bar.full_length // beat)
    if chords_per_bar > 2:
        return list(range(beat, bar.full_length, beat))
    if beats % 2 == 0:
        return [bar.full_length // 2]
    if beats == 5:
        return [3 * beat]
    if beats == 7:
        return [4 * beat]
    return []  # 3/4, 9/8, 3/8: one chord per bar


class _Segments(NamedTuple):
    """`harmonic_segments` as arrays, shape=(S,) each, and the felt beat (steps) of each one's bar."""

    start: np.ndarray
    end: np.ndarray
    bar: np.ndarray
    downbeat: np.ndarray
    strong: np.ndarray
    beat: np.ndarray


def _segment_arrays(grid: Grid, chords_per_bar: int) -> _Segments:
    """`harmonic_segments` of all bars at once. A bar's cuts depend only on its meter and whether it is
    complete, so `_bar_cuts` runs once per such kind of bar (a 1/128 meter has tens of thousands of
    bars and one kind), and the kinds' cuts are laid on every bar together."""
    bars = grid.bars
    meters: dict[tuple[int, int], int] = {}
    meter = np.fromiter((meters.setdefault((b.numerator, b.denominator), len(meters)) for b in bars), np.int64, len(bars))
    start, length = grid.bar_extents()
    shapes = [Bar(0, 0, numerator, denominator) for numerator, denominator in meters]
    full = np.array([b.full_length for b in shapes], np.int64)
    beat_steps = np.array([b.beat_steps for b in shapes], np.int64)
    kind = 2 * meter + (length >= full[meter])  # a bar of each meter: cut short (a pickup, the end), complete
    kinds = [Bar(0, b.full_length if complete else 0, b.numerator, b.denominator) for b in shapes for complete in (False, True)]
    cuts = [[c for c in _bar_cuts(b, chords_per_bar) if 0 < c < b.length] for b in kinds]  # all before a full bar's end
    middle = np.array([halves[0] if (halves := _bar_cuts(b, 2)) else -1 for b in kinds], np.int64)
    n_cuts = np.array([len(c) for c in cuts], np.int64)
    begins = np.zeros((len(kinds), 1 + int(n_cuts.max(initial=0))), np.int64)  # where each kind's segments begin
    for row, offsets in zip(begins, cuts, strict=True):
        row[1 : 1 + len(offsets)] = offsets
    per_bar = n_cuts[kind] + 1
    bar = np.repeat(np.arange(len(bars)), per_bar)  # every segment's bar, and its place in the bar
    place = np.arange(len(bar)) - np.repeat(np.cumsum(per_bar) - per_bar, per_bar)
    k = kind[bar]
    begin = begins[k, place]
    following = begins[k, np.minimum(place + 1, begins.shape[1] - 1)]
    end = np.where(place == n_cuts[k], length[bar], following)  # the next segment's begin, or the bar's end
    seg_start, seg_end = start[bar] + begin, np.minimum(start[bar] + end, grid.n_steps)
    keep = seg_end > seg_start
    strong = (begin == 0) | (begin == middle[k])
    return _Segments(seg_start[keep], seg_end[keep], bar[keep], (begin == 0)[keep], strong[keep], beat_steps[meter[bar[keep]]])


def harmonic_segments(grid: Grid, chords_per_bar: int = 2) -> list[Segment]:
    """The segments of every bar, following the meter's felt beats: half bars in duple meters (4/4 ->
    2 x 2 beats, 6/8 -> 2 dotted quarters), whole bars in triple ones (3/4, 9/8), 3+2 / 4+3 beats in
    5 and 7; `chords_per_bar` 1: whole bars, above 2: every beat."""
    segs = _segment_arrays(grid, chords_per_bar)
    columns = (segs.start, segs.end, segs.bar, segs.downbeat, segs.strong)
    return [Segment(*row) for row in zip(*(c.tolist() for c in columns), strict=True)]


@dataclass(frozen=True)
class ChordSpan:
    """A chord sounding from step `start` to `end` (None: no chord given there; the accompanist chooses)."""

    start: int
    end: int
    chord: ChordSymbol | None


def _bar_parts(bar: Bar, n: int) -> list[int]:
    """Offsets where `n` chords sharing `bar` start: at beats, as evenly as the beats allow (the earlier
    chords take the extra beat); halves follow `harmonic_segments` (a 5/4 bar splits 3 + 2)."""
    if n <= 1:
        return [0]
    if n == 2 and (halves := _bar_cuts(bar, 2)):
        return [0, halves[0]]
    beats = max(1, bar.full_length // bar.beat_steps)
    n = min(n, beats)
    sizes = [beats // n + (1 if i < beats % n else 0) for i in range(n)]
    return [bar.beat_steps * s for s in itertools.accumulate([0, *sizes[:-1]])]


def progression_spans(bars: Sequence[Sequence[ChordSymbol]], grid: Grid, until: int | None = None) -> list[ChordSpan]:
    """`bars` of chords placed on `grid` from its first full bar (a pickup has no chord), repeated as a
    loop until step `until` (default: the grid's end). More chords in a bar than it has beats: the
    ones that do not fit are dropped."""
    until = grid.n_steps if until is None else min(until, grid.n_steps)
    spans: list[ChordSpan] = []
    full_bars = [bar for bar in grid.bars if bar.length >= bar.full_length or bar is not grid.bars[0]]
    if not bars:
        return spans
    for i, bar in enumerate(full_bars):
        if bar.start >= until:
            break
        chords = bars[i % len(bars)]
        starts = _bar_parts(bar, len(chords))
        ends = [*starts[1:], bar.length]
        for chord, a, b in zip(chords, starts, ends, strict=False):
            start, end = bar.start + a, min(bar.start + b, bar.end, until)
            if end > start:
                spans.append(ChordSpan(start, end, chord))
    return spans


# --------------------------------------------------------------------------- analysis

_TEMPLATE_PRIOR = {"": 0.0, "m": 0.0, "dim": -0.15, "aug": -0.3, "sus4": -0.3, "sus2": -0.35}
_SEVENTH_PRIOR = -0.15  # a four-note chord needs its fourth note to be heard, and then some
_SEVENTH_SHARE = 0.15  # ... for at least this share of the segment's weight
_BASS_WEIGHT = 1.0  # the lowest sounding note counts this much more (a chord is heard from its bass)
_NON_CHORD = 0.7  # what a sounding pitch class outside the chord costs, per unit of weight
_ROOT_IN_BASS = 0.15  # share of the segment's weight a chord gains with its root in the bass
_IN_KEY = 0.05  # share of the segment's weight a chord gains when all its tones are in the key
_ANALYSED = ("", "m", "dim", "aug", "sus4", "7", "maj7", "m7", "m7b5", "dim7")


def _segment_weights(tracks: Sequence[RollTrack], segs: _Segments) -> tuple[np.ndarray, np.ndarray]:
    """For every segment at once: pitch-class weights of what sounds in it, shape=(S, 12) (steps
    sounding, steps on a beat twice: a passing note between beats weighs less than a chord tone on
    one; the lowest note heard first counts once more, as the mean of the sounding classes), and the
    pitch class of the lowest note sounding at its first sounding step, shape=(S,) (-1: silent)."""
    n_segs = len(segs.start)
    if not n_segs:
        return np.zeros((0, 12)), np.zeros(0, int)
    n = int(segs.end.max())
    starts, ends = segs.start, segs.end
    sizes = ends - starts
    owner = np.repeat(np.arange(n_segs), sizes)
    index = np.full(n, -1)  # the segment of each step
    index[starts[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = owner
    steps = np.arange(n)
    inside = index >= 0
    step_weight = np.where(inside, 1.0 + ((steps - starts[index]) % np.maximum(1, segs.beat[index]) == 0), 0.0)
    by_class = np.zeros((n, 12))
    lowest = np.full(n, 128)  # the lowest pitch sounding at each step (128: none)
    for track in tracks:
        if track.is_drum:
            continue
        sounding = track.velocity[:n] > 0
        if not sounding.any():
            continue
        width, pitches = sounding.shape
        for low in range(0, pitches, 12):  # pitch classes: the octaves summed (whole numbers, in any order)
            octave = sounding[:, low : low + 12]
            by_class[:width, : octave.shape[1]] += octave
        low = np.where(sounding.any(axis=1), sounding.argmax(axis=1), 128)
        lowest[:width] = np.minimum(lowest[:width], low)
    # Each segment's sum from running sums: whole numbers, so as exact as adding step by step.
    running = np.zeros((n + 1, 12))
    np.cumsum(by_class * step_weight[:, None], axis=0, out=running[1:])
    weights = running[ends] - running[starts]
    # The first sounding step at or after each step, then each segment's (inside the segment only).
    heard = np.where(lowest < 128, steps, n)
    first = np.minimum.accumulate(heard[::-1])[::-1]
    at = first[starts]
    bass = np.where(at < ends, lowest[np.minimum(at, n - 1)] % 12, -1)
    sounded = np.count_nonzero(weights, axis=1)
    bonus = _BASS_WEIGHT * weights.sum(axis=1) / np.maximum(1, sounded)
    has = bass >= 0
    weights[np.flatnonzero(has), bass[has]] += bonus[has]
    return weights, bass


def _templates() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Every analysed chord as arrays, quality by quality and root by root (the order ties go by):
    membership (N, 12), root (N,), prior (N,), the seventh's pitch class (N,; -1 for a triad), quality."""
    member, roots, priors, sevenths, qualities = [], [], [], [], []
    for quality in _ANALYSED:
        intervals = QUALITIES[quality]
        for root in range(12):
            row = np.zeros(12, bool)
            row[[(root + i) % 12 for i in intervals]] = True
            member.append(row)
            roots.append(root)
            priors.append(_TEMPLATE_PRIOR.get(quality, _SEVENTH_PRIOR))
            sevenths.append((root + intervals[3]) % 12 if len(intervals) == 4 else -1)
            qualities.append(quality)
    return np.array(member), np.array(roots), np.array(priors), np.array(sevenths), qualities


_MEMBER, _ROOTS, _PRIORS, _SEVENTHS, _QUALITY_OF = _templates()


def _best_chords(weights: np.ndarray, bass: np.ndarray, key: Key | None) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `weights` (S, 12), the chord whose tones best cover it (chord tones gain, others
    cost), every root and quality scored at once: its index in the templates (-1 for a silent row), and
    its slash bass (-1: the root in the bass), shape=(S,) each. `bass` (S,): the pitch class heard
    lowest first (-1: none)."""
    total = weights.sum(axis=1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    inside = weights @ _MEMBER.T  # (S, N)
    # (inside - _NON_CHORD * (total - inside)) / safe + _PRIORS, in place: a piece of 10,000 segments
    # scores 1.2 million cells, and a new array for every operation costs more than the arithmetic.
    score = total - inside
    score *= _NON_CHORD
    np.subtract(inside, score, out=score)
    score /= safe
    score += _PRIORS
    by_root = score.reshape(len(score), len(_ANALYSED), 12)  # (S, qualities, roots): the templates go root by root
    by_root += _ROOT_IN_BASS * (bass[:, None] == np.arange(12))[:, None, :]
    by_root -= 0.5 * (weights == 0)[:, None, :]  # a chord without its root is another chord
    if key is not None:
        outside = np.ones(12, bool)
        outside[list(key.accepted)] = False
        score += _IN_KEY * ~(_MEMBER & outside).any(axis=1)
    quiet = weights < _SEVENTH_SHARE * total
    sevenths = _SEVENTHS.reshape(-1, 12)
    for quality in np.flatnonzero(sevenths[:, 0] >= 0):  # a seventh chord only where its seventh sounds
        np.copyto(by_root[:, quality], -np.inf, where=quiet[:, sevenths[quality]])
    best = np.argmax(score >= score.max(axis=1, keepdims=True) - 1e-9, axis=1)  # near-equal: the first in the templates' order
    slash = (bass >= 0) & (bass != _ROOTS[best]) & _MEMBER[best, np.maximum(bass, 0)]  # a chord tone other than the root
    return np.where(total[:, 0] > 0, best, -1), np.where(slash, bass, -1)


def analyse_chords(
    tracks: Sequence[RollTrack], grid: Grid, key: Key | None = None, chords_per_bar: int = 2, merge: bool = True
) -> list[ChordSpan]:
    """The chord of every harmonic segment of `tracks` (all of them together: melody and accompaniment).

    `key`, when known, breaks near ties toward chords of the key. With `merge`, a segment whose chord
    equals the one before extends it. Silent segments have no span."""
    segs = _segment_arrays(grid, chords_per_bar)
    template, slash = _best_chords(*_segment_weights(tracks, segs), key)
    heard = np.flatnonzero(template >= 0)
    template, slash, starts, ends = template[heard], slash[heard], segs.start[heard], segs.end[heard]
    opens = np.ones(len(heard), bool)  # where a span begins: not the chord before, or not right after it
    if merge:
        opens[1:] = (template[1:] != template[:-1]) | (slash[1:] != slash[:-1]) | (ends[:-1] != starts[1:])
    closes = np.ones(len(heard), bool)  # where a span ends: before the next one begins
    closes[:-1] = opens[1:]
    first, last = np.flatnonzero(opens), np.flatnonzero(closes)
    return [
        ChordSpan(a, b, _chord(t, low))
        for a, b, t, low in zip(starts[first].tolist(), ends[last].tolist(), template[first].tolist(), slash[first].tolist(), strict=True)
    ]


@functools.cache
def _chord(template: int, slash: int) -> ChordSymbol:
    """The chord of the template at index `template` over the pitch class `slash` (-1: its root), made
    once: a piece's thousands of spans share a few frozen symbols."""
    return ChordSymbol(int(_ROOTS[template]), _QUALITY_OF[template], None if slash < 0 else slash)


def chord_tone_share(tracks: Sequence[RollTrack], grid: Grid, spans: Sequence[ChordSpan]) -> tuple[float, int]:
    """(share, count) of the notes of `tracks` sounding on strong beats (each bar's first beat and, in
    duple meters, its middle) whose pitch class is in the chord given there. Only positions with a
    given chord count; (1.0, 0) when there are none."""
    strong = [seg.start for seg in harmonic_segments(grid, 2) if seg.strong]
    inside = counted = 0
    span_starts = [s.start for s in spans]
    for step in strong:
        i = int(np.searchsorted(span_starts, step, side="right")) - 1
        if i < 0 or not spans[i].start <= step < spans[i].end or spans[i].chord is None:
            continue
        pcs = chord_pitch_classes(spans[i].chord)
        for track in tracks:
            if track.is_drum or step >= track.n_steps:
                continue
            for pitch in np.flatnonzero(track.velocity[step] > 0):
                counted += 1
                inside += int(pitch) % 12 in pcs
    return (inside / counted if counted else 1.0), counted

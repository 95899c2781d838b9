"""Rule-based accompanist: the yardstick every learned model must beat.

How it works, in the order of `RulesAccompanist.generate`:
1. Estimate the key of the melody (Krumhansl-Kessler profiles, `studio.core.theory`).
2. Cut every bar into harmonic segments (`studio.core.chords.harmonic_segments`): half bars in duple
   meters (4/4 -> 2 x 2 beats, 6/8 -> 2 dotted quarters), whole bars in triple meters (3/4, 9/8),
   3+2 / 4+3 beats in 5 and 7; where the user gave chords, also where those change.
3. Choose one diatonic chord per segment with the Viterbi algorithm (a segment under a given chord
   takes that chord, whatever its quality: the others are chosen around it), maximising
   (a) fit: melody notes that are chord tones score, non-chord tones cost (more on strong beats,
       most when a semitone above a chord tone);
   (b) progression: functional-harmony preferences (root motion down a fifth, pre-dominant ->
       dominant -> tonic, no dominant -> subdominant retrogression), and
   (c) cadences: start on the tonic, an authentic cadence (V - I) at the end, a tonic or dominant at
       each 4-bar phrase end.
4. Voice it as a bass line (roots, or a slash chord's bass; smooth octave choice) and chords (close
   voicings of all the chord's tones under the melody, chosen for the smallest voice-leading motion),
   with a meter-aware rhythm pattern. Under given chords every note sounding on a strong beat is a
   chord tone (`studio.core.chords.chord_tone_share` is 1.0).

The seed draws one `Variation` of that music (seed 0: none, the harmonizer's first choice every
time): near-equal chords may trade places in step 3, and in step 4 the voicing (inversion and
register among those that still move smoothly), the bass (roots, root and fifth on a held chord, or
a passing tone into the next root) and the pattern's own variant (the arpeggio's order, how long the
short chords ring) are drawn. Every draw keeps to the key and to consonance with the melody.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import CHORDS_PARAM, FamilyInfo
from studio.core.chords import QUALITIES, ChordSpan, ChordSymbol, Segment, harmonic_segments
from studio.core.metrics import CONSONANT_INTERVALS, melody_key
from studio.core.roll import STEPS_PER_BEAT as STEPS_PER_QUARTER
from studio.core.roll import Bar, Grid, RollTrack
from studio.core.selection import Selection, SelectionError, regenerated_tracks
from studio.core.theory import Key

__all__ = ["Chord", "RulesAccompanist", "RulesConfig", "Variation", "chord_vocabulary", "load"]

FAMILY = FamilyInfo(
    name="rules",
    label="Rules",
    heading="How the rules work",
    idea=("No learning: music theory written as rules (find the key, choose a chord for each half bar, voice it)."),
    writes="accompaniment",
    uses_torch=False,  # the registry need not import torch (or look for a GPU) for this family
    order=0,
    regenerates="bars",
    follows_chords=True,  # params["chords"]: the user's chords, followed exactly
)


@dataclass(frozen=True)
class RulesConfig:
    """Weights of the harmonizer and the instruments it plays."""

    chord_tone: float = 1.0  # per step of a melody note that is in the chord
    non_chord_tone: float = 0.6  # cost per step of a melody note outside the chord
    semitone_clash: float = 0.8  # extra cost when that note is a semitone above a chord tone
    strong_beat: float = 2.0  # weight multiplier of notes that start a segment
    beat: float = 1.4  # weight multiplier of notes on a beat
    secondary_prior: float = -0.6  # score of a secondary dominant before the melody asks for it
    weak_change: float = 1.0  # cost of changing chord on a beat that is not a bar's start or middle
    phrase_bars: int = 4  # phrase length for cadences
    final_tonic: float = 6.0  # bonus for ending on the tonic
    penultimate_dominant: float = 1.5  # bonus for V before the final tonic
    phrase_end: float = 0.6  # bonus for I or V at a phrase end
    start_tonic: float = 1.5  # bonus for the tonic on the first downbeat
    bass_program: int = 32  # GM Acoustic Bass
    chord_program: int = 24  # GM Acoustic Guitar (nylon): heard apart from a piano melody
    bass_range: tuple[int, int] = (36, 55)  # C2..G3
    chord_span: int = 16  # semitones the chord voicing may occupy under its ceiling
    pulse_length: int = 2  # quarters of a beat each 'pulse' strike lasts
    bass_velocity: int = 82
    chord_velocity: int = 62
    seed_chord_jitter: float = 0.6  # a seed adds up to this to each diatonic chord's score: only near-equal chords trade places
    seed_voicing_slack: int = 3  # a seed may take a voicing moving up to this many semitones more than the smoothest
    regeneration_chord_jitter: float = 1.2  # a regenerated selection's chords: bolder, so another take differs where the tune allows
    regeneration_voicing_slack: int = 7  # and its voicings: another inversion, still near the chords around it
    regeneration_change: float = 0.8  # what keeping a selected segment's old chord costs: a near-equal one is played instead


ARPEGGIO_ORDERS = ((0, 1, 2, 1), (0, 1, 2), (0, 2, 1, 2), (2, 1, 0, 1), (0, 1, 2, 1, 2, 1))  # indices into a voicing, low to high
CHORD_LENGTHS = (1.0, 0.5)  # oompah and pulse: the short chords ring a half beat, or half that (crisper; longer would ring over the tune)


@dataclass(frozen=True)
class Variation:
    """What a seed changes in the music (`Variation.draw(0)`: nothing, the harmonizer's first choices).

    The draws are per piece (bass, arpeggio order, chord length) or per choice through `rng`
    (the chords' scores, each voicing)."""

    chord_jitter: float = 0.0  # noise added to each diatonic chord's score per segment, uniform in [0, chord_jitter)
    voicing_slack: int = 0  # extra voice-leading motion (semitones) a drawn voicing may take over the smoothest
    bass: str = "root"  # 'root'; 'alternate': the fifth on a repeated chord; 'walk': a passing tone into the next root
    arpeggio: tuple[int, ...] = ARPEGGIO_ORDERS[0]  # the order the arpeggio plays the voicing's notes in
    chord_length: float = 1.0  # oompah and pulse: multiplier of the short chords' length
    rng: np.random.Generator | None = None  # None: no random draw at all

    @classmethod
    def draw(cls, seed: int, config: RulesConfig) -> Variation:
        """The variation of `seed`: the same seed always draws the same one; seed 0 draws none."""
        if not seed:
            return cls()
        return cls.from_rng(np.random.default_rng(seed), config)

    @classmethod
    def from_rng(cls, rng: np.random.Generator, config: RulesConfig, regeneration: bool = False) -> Variation:
        """A variation drawn from `rng` (`draw` seeds it; a regeneration draws its own, seed 0 too, and bolder)."""
        return cls(
            chord_jitter=config.regeneration_chord_jitter if regeneration else config.seed_chord_jitter,
            voicing_slack=config.regeneration_voicing_slack if regeneration else config.seed_voicing_slack,
            bass=str(rng.choice(["root", "alternate", "walk"])),
            arpeggio=ARPEGGIO_ORDERS[int(rng.integers(len(ARPEGGIO_ORDERS)))],
            chord_length=float(rng.choice(CHORD_LENGTHS)),
            rng=rng,
        )


@dataclass(frozen=True)
class Chord:
    """A chord the harmonizer plays: `root` pitch class, chord tones `pcs` (root first), its `name`
    (roman for the vocabulary's, the symbol for a chord the user gave) and, for a slash chord, the `bass` pitch class."""

    root: int
    pcs: tuple[int, ...]
    name: str
    prior: float  # how common the chord is (log-ish score)
    function: str  # 'T' tonic, 'S' pre-dominant, 'D' dominant, 'D2' secondary dominant, '' none (a given chord outside the key)
    bass: int | None = None  # a slash chord's bass (played by the bass), None: the root


def chord_vocabulary(key: Key, secondary_prior: float = -0.6) -> list[Chord]:
    """The triads the harmonizer may use in `key`: the diatonic ones (with the raised 6th/7th in
    minor), and secondary dominants, which only a chromatic melody note makes worth their cost."""
    t = key.tonic

    def triad(degree: int, third: int, fifth: int, name: str, prior: float, function: str) -> Chord:
        root = (t + degree) % 12
        return Chord(root, (root, (root + third) % 12, (root + fifth) % 12), name, prior, function)

    if key.mode == "major":
        return [
            triad(0, 4, 7, "I", 0.5, "T"),
            triad(2, 3, 7, "ii", 0.15, "S"),
            triad(4, 3, 7, "iii", -0.2, "T"),
            triad(5, 4, 7, "IV", 0.35, "S"),
            triad(7, 4, 7, "V", 0.4, "D"),
            triad(9, 3, 7, "vi", 0.2, "T"),
            # Secondary dominants, for melodies with a raised 4th, 5th or 1st; they must resolve.
            triad(2, 4, 7, "V/V", secondary_prior, "D2"),
            triad(4, 4, 7, "V/vi", secondary_prior, "D2"),
            triad(9, 4, 7, "V/ii", secondary_prior, "D2"),
        ]
    return [
        triad(0, 3, 7, "i", 0.5, "T"),
        triad(3, 4, 7, "III", 0.1, "T"),
        triad(5, 3, 7, "iv", 0.3, "S"),
        triad(5, 4, 7, "IV", 0.0, "S"),  # with the raised 6th (dorian tunes)
        triad(7, 4, 7, "V", 0.4, "D"),  # with the raised 7th (harmonic minor)
        triad(8, 4, 7, "VI", 0.2, "S"),
        triad(10, 4, 7, "VII", 0.1, "D"),
        triad(0, 4, 7, "V/iv", secondary_prior, "D2"),  # the tonic made major, leading to iv
        triad(2, 4, 7, "V/V", secondary_prior, "D2"),
    ]


def given_chord(symbol: ChordSymbol, vocab: Sequence[Chord], key: Key | None = None) -> Chord:
    """The chord the user gave as the harmonizer plays it: all its tones (a four-note chord voiced with
    four), its slash bass for the bass, and the harmonic function of the vocabulary's chord on the same
    triad (for the progression into and out of it), or none."""
    pcs = tuple((symbol.root + i) % 12 for i in QUALITIES[symbol.quality])
    function = next((c.function for c in vocab if c.pcs == pcs[:3]), "")
    return Chord(symbol.root, pcs, symbol.name(key), 0.0, function, symbol.bass)


def cut_at_spans(segs: Sequence[Segment], spans: Sequence[ChordSpan]) -> tuple[list[Segment], list[ChordSymbol | None]]:
    """`segs` cut where a given chord starts or ends, and the chord given over each piece (None: free).
    A piece cut off a segment's start is a strong place for a change (the user chose it)."""
    cuts = sorted({s.start for s in spans} | {s.end for s in spans})
    out: list[Segment] = []
    for seg in segs:
        edges = [seg.start, *(c for c in cuts if seg.start < c < seg.end), seg.end]
        for a, b in itertools.pairwise(edges):
            whole = (a, b) == (seg.start, seg.end)
            out.append(seg if whole else Segment(a, b, seg.bar, seg.downbeat and a == seg.start, seg.strong or a != seg.start))
    starts = [s.start for s in spans]
    given: list[ChordSymbol | None] = []
    for seg in out:
        i = bisect.bisect_right(starts, seg.start) - 1
        given.append(spans[i].chord if i >= 0 and spans[i].start <= seg.start < spans[i].end else None)
    return out, given


def _transition(a: Chord, b: Chord, at_bar_line: bool) -> float:
    """Preference for chord `b` after chord `a` (functional harmony, root motion)."""
    if a == b:
        return 0.15 if not at_bar_line else 0.05
    motion = (b.root - a.root) % 12
    score = 0.0
    if a.function == "D2":  # a secondary dominant resolves down a fifth, or costs
        return 0.8 if motion == 5 else -1.0
    if motion == 5:  # root down a fifth / up a fourth: V-I, ii-V, vi-ii, I-IV
        score += 0.6
    elif motion == 7:  # root up a fifth: I-V, IV-I
        score += 0.25
    elif motion in (2, 10):  # stepwise root motion (IV-V, V-vi, VI-VII)
        score += 0.1
    if a.function == "D" and b.function == "S":
        score -= 0.7  # retrogression V -> IV / ii
    if a.function == "S" and b.function == "D":
        score += 0.3
    if a.function == "D" and b.function == "T":
        score += 0.3
    if not at_bar_line:
        score -= 0.1  # a change inside the bar needs a reason in the melody
    return score


def _notes_by_segment(notes: list[tuple[int, int, int]], segs: list[Segment]) -> list[list[tuple[int, int, int]]]:
    """For each segment, the melody notes that overlap it (notes and segments are sorted by time)."""
    out: list[list[tuple[int, int, int]]] = [[] for _ in segs]
    first = 0
    for i, seg in enumerate(segs):
        while first < len(notes) and notes[first][1] <= seg.start:
            first += 1
        j = first
        while j < len(notes) and notes[j][0] < seg.end:
            if notes[j][1] > seg.start:
                out[i].append(notes[j])
            j += 1
    return out


def _melody_notes(melody: RollTrack) -> list[tuple[int, int, int]]:
    """(start, end, pitch) of the melody's notes on the grid (top note where it has chords)."""
    sounding = melody.velocity > 0
    notes = []
    t_len = sounding.shape[0]
    step = 0
    while step < t_len:
        pitches = np.flatnonzero(sounding[step])
        if len(pitches) == 0:
            step += 1
            continue
        pitch = int(pitches.max())
        end = step + 1
        while end < t_len and sounding[end, pitch] and not melody.onset[end].any():
            end += 1
        notes.append((step, end, pitch))
        step = end
    return notes


def _leave_out_clashes(keys: RollTrack, melody_sounding: np.ndarray) -> None:
    """Voice around the melody, as a pianist does: where a chord is struck while the melody sounds,
    leave out the chord notes that would form a second, seventh or tritone with it, as long as a
    consonant note of that chord remains. `melody_sounding` shape=(T, 128) bool."""
    struck = keys.onset & (keys.velocity > 0)
    for t in np.flatnonzero(struck.any(axis=1)).tolist():
        melody_pitches = np.flatnonzero(melody_sounding[t])
        if len(melody_pitches) == 0:
            continue
        m = int(melody_pitches.max())
        chord = np.flatnonzero(struck[t]).tolist()
        clashing = [p for p in chord if (m - p) % 12 not in CONSONANT_INTERVALS]
        if not clashing or len(clashing) == len(chord):
            continue
        for p in clashing:
            end = t + 1
            while end < keys.n_steps and keys.velocity[end, p] and not keys.onset[end, p]:
                end += 1
            keys.velocity[t:end, p] = 0
            keys.onset[t, p] = False


def _given_steps(spans: Sequence[ChordSpan]) -> frozenset[int]:
    """The steps under a given chord (a span whose chord is not None)."""
    return frozenset(t for span in spans if span.chord is not None for t in range(span.start, span.end))


_FORBIDDEN = -1e9  # the score of a chord a segment may not take (a given chord elsewhere, another chord where one is given)
PARALLEL_COST = 12  # semitones of voice-leading motion a parallel fifth or octave with the melody counts as


def _parallel_perfect(bass_before: int | None, bass_after: int, melody_before: int, melody_after: int) -> bool:
    """Whether the bass and the melody both move and keep a perfect fifth or octave (interval class 7 or 0)."""
    if bass_before is None or melody_before < 0 or melody_after < 0:
        return False
    if bass_before == bass_after or melody_before == melody_after:
        return False
    before, after = (melody_before - bass_before) % 12, (melody_after - bass_after) % 12
    return before == after and before in (0, 7)


def _voicing_cost(voicing: tuple[int, ...], previous: tuple[int, ...], melody_before: int, melody_now: int) -> int:
    """Voice-leading motion from `previous`, a parallel fifth or octave of the top with the melody
    counting `PARALLEL_COST` semitones more."""
    return _motion(voicing, previous) + PARALLEL_COST * _parallel_perfect(previous[-1], voicing[-1], melody_before, melody_now)


def _motion(voicing: tuple[int, ...], previous: tuple[int, ...]) -> int:
    """Voice-leading motion between two voicings: semitones moved, voice by voice (between a three-
    and a four-note chord: each note of the larger from the nearest of the other)."""
    if len(voicing) != len(previous):
        more, fewer = (voicing, previous) if len(voicing) > len(previous) else (previous, voicing)
        return sum(min(abs(a - b) for b in fewer) for a in more)
    return sum(abs(a - b) for a, b in zip(voicing, previous, strict=True))


def _walk(
    bass: RollTrack,
    segs: list[Segment],
    grid: Grid,
    key: Key,
    melody_sounding: np.ndarray,
    final: int,
    bass_range: tuple[int, int],
    keep: frozenset[int] = frozenset(),
) -> None:
    """A walking bass: on the last beat of a segment whose next root differs, a scale step that
    leads into it (from below when the bass climbs, from above when it falls), where that step is
    consonant with every melody note sounding then, in the bass's range, and differs from the bass it replaces.
    `melody_sounding` shape=(T, 128) bool; nothing changes from `final` (the last chord) on, nor on a
    step of `keep` (a strong beat under a given chord, where the bass plays a chord tone)."""
    scale = set(key.scale)
    sounding = bass.velocity > 0
    for seg, nxt in itertools.pairwise(segs):
        beat = grid.bars[seg.bar].beat_steps
        t0 = seg.end - beat
        if t0 <= seg.start or seg.end > final or nxt.start != seg.end or t0 in keep:
            continue
        here, there = np.flatnonzero(sounding[t0]), np.flatnonzero(bass.onset[nxt.start] & sounding[nxt.start])
        if len(here) != 1 or len(there) != 1 or here[0] == there[0]:
            continue
        current, target = int(here[0]), int(there[0])
        step = -1 if target > current else 1  # approach from the side the bass comes from
        passing = next(target + step * d for d in (1, 2) if (target + step * d) % 12 in scale)
        if passing == current or not bass_range[0] <= passing <= bass_range[1]:
            continue
        melody = np.flatnonzero(melody_sounding[t0 : seg.end].any(axis=0))
        if any((int(m) - passing) % 12 not in CONSONANT_INTERVALS for m in melody):
            continue
        velocity = int(bass.velocity[t0, current])
        bass.velocity[t0 : seg.end, current] = 0  # the held note stops a beat early ...
        bass.onset[t0, current] = False
        bass.add_note(t0, seg.end, passing, max(1, velocity - 8))  # ... and the passing tone leads on


class RulesAccompanist:
    """Harmonizes a melody with diatonic chords and voices them as bass + chords (see module doc)."""

    def __init__(self, config: RulesConfig | None = None) -> None:
        self.config = config or RulesConfig()

    # -- 3. chord choice -------------------------------------------------------------------------
    def _fit(self, chord: Chord, seg: Segment, notes: list[tuple[int, int, int]], grid: Grid) -> float:
        cfg = self.config
        bar = grid.bars[seg.bar]
        beat = bar.beat_steps
        total = 0.0
        for start, end, pitch in notes:
            overlap = min(end, seg.end) - max(start, seg.start)
            if overlap <= 0:
                continue
            if start <= seg.start:
                weight = cfg.strong_beat if start == seg.start or seg.downbeat else 1.2
            elif (start - bar.start) % beat == 0:
                weight = cfg.beat
            else:
                weight = 1.0
            amount = weight * min(overlap, 8) ** 0.5 * 2
            pc = pitch % 12
            if pc in chord.pcs:
                total += cfg.chord_tone * amount
            else:
                cost = cfg.non_chord_tone
                if any((pc - c) % 12 == 1 for c in chord.pcs):
                    cost += cfg.semitone_clash
                total -= cost * amount
        return total

    def choose_chords(
        self,
        melody: RollTrack,
        grid: Grid,
        key: Key,
        chords_per_bar: int,
        variation: Variation | None = None,
        given: Sequence[ChordSpan] = (),
        fixed: Mapping[int, int] | None = None,
        span: tuple[int, int] | None = None,
        avoid: Mapping[int, int] | None = None,
    ) -> tuple[list[Segment], list[Chord]]:
        """Viterbi over segments: the best-scoring chord per segment (fit + progression + cadences);
        a `variation` with a chord jitter adds its noise to the diatonic chords' scores first.

        `given` chords (the user's, placed on the grid) are kept exactly: the segments are cut where
        they change, and each segment under a given chord can only take that chord; the others (a
        pickup, spans without a chord) are chosen as without them, with the given ones as context.

        A regeneration's context (indices of the segments returned, cut at the given chords' changes):
        `fixed` (segment index -> index in `chord_vocabulary`) chords the others are chosen around; `span`
        (first, after the last segment): only those are chosen (the others hold the vocabulary's first
        chord), default all; `avoid` (segment index -> chord index): chords that cost
        `regeneration_change` (a regeneration's old ones)."""
        cfg = self.config
        variation = variation or Variation()
        vocab = chord_vocabulary(key, cfg.secondary_prior)
        segs = harmonic_segments(grid, chords_per_bar)
        given_at: list[ChordSymbol | None] = [None] * len(segs)
        if given:
            segs, given_at = cut_at_spans(segs, given)
            extra = {symbol: given_chord(symbol, vocab, key) for symbol in given_at if symbol is not None}
            choice = {symbol: len(vocab) + i for i, symbol in enumerate(extra)}  # the vocabulary's index of each given chord
            vocab = vocab + list(extra.values())
        notes = _melody_notes(melody)
        if not segs:
            return [], []
        last_note_end = max((e for _s, e, _p in notes), default=grid.n_steps)
        last_seg = max(i for i, s in enumerate(segs) if s.start < last_note_end) if notes else len(segs) - 1
        first_full = next((i for i, s in enumerate(segs) if s.downbeat and grid.bars[s.bar].length == grid.bars[s.bar].full_length), 0)
        pickup = 1 if grid.pickup_steps else 0

        n, k = len(segs), len(vocab)
        lo, hi = span or (0, n)
        in_segment = _notes_by_segment(notes, segs)
        local = np.zeros((n, k))
        for i in range(lo, hi):
            seg = segs[i]
            for j, chord in enumerate(vocab):
                score = chord.prior + self._fit(chord, seg, in_segment[i], grid)
                bar_number = seg.bar - pickup  # 0-based, counting full bars
                ends_phrase = (bar_number + 1) % cfg.phrase_bars == 0 and (i + 1 == n or segs[i + 1].downbeat)
                if i == first_full and chord.function == "T" and chord.root == key.tonic:
                    score += cfg.start_tonic
                if i == last_seg:
                    score += cfg.final_tonic if chord.root == key.tonic and chord.name in ("I", "i") else -cfg.final_tonic
                elif i == last_seg - 1 and chord.name == "V":
                    score += cfg.penultimate_dominant
                elif ends_phrase and chord.name in ("I", "i", "V"):
                    score += cfg.phrase_end
                local[i, j] = score
        if variation.rng is not None and variation.chord_jitter > 0:
            # Near-equal chords trade places; secondary dominants still need the melody to ask for them.
            diatonic = np.array([c.function != "D2" for c in vocab])
            local[lo:hi] += variation.rng.uniform(0, variation.chord_jitter, (hi - lo, k)) * diatonic
        for i, j in (avoid or {}).items():
            local[i, j] -= cfg.regeneration_change
        for i, j in (fixed or {}).items():
            local[i] = np.where(np.arange(k) == j, 0.0, -1e9)
        if given:
            # A given chord is the only one its segments may take; elsewhere only the key's vocabulary.
            allowed = np.zeros((n, k), bool)
            allowed[:, : k - len(choice)] = True
            for i, symbol in enumerate(given_at):
                if symbol is not None:
                    allowed[i] = False
                    allowed[i, choice[symbol]] = True
            local = np.where(allowed, local, _FORBIDDEN)
        trans = np.array([[[_transition(a, b, at_bar) for b in vocab] for a in vocab] for at_bar in (False, True)])
        best = local[lo].copy()
        back = np.zeros((n, k), int)
        change_cost = cfg.weak_change * (1 - np.eye(k))  # (k_prev, k): changing chord off a strong position
        for i in range(lo + 1, hi):
            t = trans[int(segs[i].downbeat)]
            if not segs[i].strong:
                t = t - change_cost
            cand = best[:, None] + t  # (k_prev, k)
            back[i] = cand.argmax(axis=0)
            best = cand.max(axis=0) + local[i]
        path = [int(best.argmax())]
        for i in range(hi - 1, lo, -1):
            path.append(int(back[i, path[-1]]))
        path.reverse()
        # After the last melody note the final chord holds (where no chord is given).
        chords = [vocab[0]] * lo + [vocab[j] for j in path] + [vocab[0]] * (n - hi)
        for i in range(max(last_seg + 1, lo), hi if lo <= last_seg else lo):
            if given_at[i] is None:
                chords[i] = chords[last_seg]
        return segs, chords

    # -- 4. voicing --------------------------------------------------------------------------------
    def _voicings(self, chord: Chord, ceiling: int) -> list[tuple[int, ...]]:
        """Close voicings of `chord` (all its tones: three, or four for a seventh or sixth chord) whose top is at most `ceiling`."""
        floor = ceiling - self.config.chord_span
        out = []
        for inversion in range(len(chord.pcs)):
            pcs = chord.pcs[inversion:] + chord.pcs[:inversion]
            for base in range(floor, ceiling + 1):
                if base % 12 != pcs[0]:
                    continue
                notes = [base]
                for pc in pcs[1:]:
                    nxt = notes[-1] + 1
                    while nxt % 12 != pc:
                        nxt += 1
                    notes.append(nxt)
                if notes[-1] <= ceiling:
                    out.append(tuple(notes))
        return out

    def voice(
        self,
        segs: list[Segment],
        chords: list[Chord],
        melody: RollTrack,
        grid: Grid,
        pattern: str,
        variation: Variation | None = None,
        key: Key | None = None,
        given: Sequence[ChordSpan] = (),
        before: tuple[tuple[int, ...], int | None] | None = None,
    ) -> list[RollTrack]:
        """Bass and chord tracks for the chosen chords, as `variation` draws them (default: none);
        `key` (the scale of a walking bass's passing tones) is needed only by a variation that walks.

        Under `given` chords every note sounding on a strong beat is a tone of the chord given there:
        a walking bass passes between beats only, and the held ending changes chord where they do."""
        cfg = self.config
        variation = variation or Variation()
        rng = variation.rng
        n_steps = grid.n_steps
        bass = RollTrack.empty("Bass", cfg.bass_program, n_steps)
        keys = RollTrack.empty("Guitar", cfg.chord_program, n_steps)
        sounding = melody.velocity > 0
        prev_voicing: tuple[int, ...] | None = before[0] if before and len(before[0]) == 3 else None
        prev_bass: int | None = before[1] if before else None
        lo, hi = cfg.bass_range
        notes = _melody_notes(melody)
        final = notes[-1][0] if notes else n_steps  # where the melody's last note starts
        ending: list[tuple[int, int, tuple[int, ...]]] = []  # from the last note on: (start, bass pitch, voicing), a chord each
        ending_chord: Chord | None = None
        under_given = _given_steps(given)
        prev_chord: Chord | None = None
        prev_bass_played: int | None = prev_bass  # the root, or its fifth in an alternating bass
        prev_melody = -1  # the melody's pitch where the previous chord began (-1: silent)
        for seg, chord in zip(segs, chords, strict=True):
            bar = grid.bars[seg.bar]
            span = sounding[seg.start : seg.end]
            mel_pitches = np.flatnonzero(span.any(axis=0))
            lowest = int(mel_pitches.min()) if len(mel_pitches) else 72
            ceiling = max(min(lowest - 2, 76), 55)
            options = self._voicings(chord, ceiling)
            melody_now = int(span[0].nonzero()[0].max()) if span.shape[0] and span[0].any() else -1
            if prev_voicing is None:
                voicing = max(options, key=lambda v: (v[-1], -v[0]))
                if rng is not None:  # a seed may start in another inversion, no more than a fourth lower
                    voicing = options[int(rng.choice([i for i, v in enumerate(options) if v[-1] >= voicing[-1] - 5]))]
            else:
                costs = [_voicing_cost(v, prev_voicing, prev_melody, melody_now) for v in options]
                voicing = options[min(range(len(options)), key=lambda i: (costs[i], -options[i][-1]))]
                if rng is not None:  # a seed draws among the voicings that move nearly as little
                    smooth = costs[options.index(voicing)] + variation.voicing_slack
                    voicing = options[int(rng.choice([i for i, c in enumerate(costs) if c <= smooth]))]
            prev_voicing = voicing
            roots = [p for p in range(lo, hi + 1) if p % 12 == (chord.root if chord.bass is None else chord.bass)]
            target = 43 if prev_bass is None else prev_bass  # start around G2, then move smoothly
            root_pitch = min(roots, key=lambda p: abs(p - target))  # a slash chord's bass as its root: the bass plays it
            bass_pitch = root_pitch
            if chord.bass is None:  # a slash chord's bass is the one the user wrote: neither alternated nor moved
                bass_pitch = self._bass_choice(chord, root_pitch, prev_chord, prev_bass_played, prev_melody, melody_now, variation)
            prev_melody = melody_now
            prev_bass, prev_chord, prev_bass_played = root_pitch, chord, bass_pitch
            self._play(bass, keys, seg, bar, bass_pitch, voicing, pattern, chord, variation)
            if seg.start <= final < seg.end:
                ending = [(final, root_pitch, voicing)]
            elif ending and seg.start in under_given and chord != ending_chord:
                ending.append((seg.start, root_pitch, voicing))  # a given chord changes under the held last note
            else:
                continue
            ending_chord = chord
        if variation.bass == "walk" and key is not None and pattern != "oompah":
            keep = frozenset(s.start for s in harmonic_segments(grid, 2) if s.strong and s.start in under_given)
            _walk(bass, segs, grid, key, sounding, min(final, n_steps), cfg.bass_range, keep)
        if ending:
            # The tune's last note gets one held chord, ringing to the end: a band ends on a chord,
            # not by playing its pattern on after the tune has stopped (the user's chords may change under it).
            for track in (bass, keys):
                track.velocity[final:] = 0
                track.onset[final:] = False
            for (start, bass_pitch, voicing), (end, *_) in itertools.pairwise([*ending, (n_steps, 0, ())]):
                bass.add_note(start, end, bass_pitch, cfg.bass_velocity)
                for p in voicing:
                    keys.add_note(start, end, p, cfg.chord_velocity)
        _leave_out_clashes(keys, sounding)
        return [bass, keys]

    def _bass_choice(
        self,
        chord: Chord,
        root_pitch: int,
        prev_chord: Chord | None,
        prev_bass_played: int | None,
        prev_melody: int,
        melody_now: int,
        variation: Variation,
    ) -> int:
        """The bass note under `chord` (its root at `root_pitch`): the fifth on a held chord in an
        alternating bass; the third where the root would move in parallel octaves or fifths with the melody."""
        lo, hi = self.config.bass_range
        bass_pitch = root_pitch
        if variation.bass == "alternate" and prev_chord == chord and prev_bass_played == root_pitch:
            # the chord held over: its fifth this time (a root-fifth bass), the nearer octave in range
            fifths = [p for p in range(lo, hi + 1) if p % 12 == chord.pcs[2]]
            bass_pitch = min(fifths, key=lambda p: abs(p - root_pitch))
        if _parallel_perfect(prev_bass_played, bass_pitch, prev_melody, melody_now):
            # root to root under a melody moving the same way is parallel octaves or fifths between the
            # outer voices: the chord's third in the bass instead (a first inversion), if that mends it
            thirds = [p for p in range(lo, hi + 1) if p % 12 == chord.pcs[1]]
            if thirds:
                third = min(thirds, key=lambda p: abs(p - (prev_bass_played or p)))
                if not _parallel_perfect(prev_bass_played, third, prev_melody, melody_now):
                    bass_pitch = third
        return bass_pitch

    def _play(
        self,
        bass: RollTrack,
        keys: RollTrack,
        seg: Segment,
        bar: Bar,
        bass_pitch: int,
        voicing: tuple[int, ...],
        pattern: str,
        chord: Chord,
        variation: Variation | None = None,
    ) -> None:
        cfg = self.config
        variation = variation or Variation()
        accent = 8 if seg.downbeat else 0
        length = seg.end - seg.start
        beat = bar.beat_steps
        if pattern == "oompah" and length > beat // 2:
            self._oompah(bass, keys, seg, bar, bass_pitch, voicing, accent, variation.chord_length)
            return
        bass.add_note(seg.start, seg.end, bass_pitch, cfg.bass_velocity + accent)
        if pattern == "block" or length <= beat:
            for p in voicing:
                keys.add_note(seg.start, seg.end, p, cfg.chord_velocity + accent)
            return
        if pattern == "arpeggio":
            step = max(1, beat // 2) if beat % 3 else beat // 3  # eighths (a third of a compound beat)
            order = [voicing[i] for i in variation.arpeggio]
            for i, t in enumerate(range(seg.start, seg.end, step)):
                keys.add_note(t, seg.end, order[i % len(order)], cfg.chord_velocity - 4 + (accent if i == 0 else 0))
            return
        # "pulse": the chord struck on every felt beat and released halfway (a dance-band comp).
        for i, t in enumerate(range(seg.start, seg.end, beat)):
            end = min(seg.end, t + max(1, round(beat * self.config.pulse_length * variation.chord_length) // 4))
            for p in voicing:
                keys.add_note(t, end, p, cfg.chord_velocity + (accent if i == 0 else -6))

    def _oompah(
        self,
        bass: RollTrack,
        keys: RollTrack,
        seg: Segment,
        bar: Bar,
        bass_pitch: int,
        voicing: tuple[int, ...],
        accent: int,
        chord_length: float = 1.0,
    ) -> None:
        """A dance-band comp: bass on the strong beats, short chords on the others (waltz: 1 | 2 3;
        march/polka: 1 | 2, 3 | 4; jig: 1 . . | . . 3-ish). Strong beats follow the bar, not the segment."""
        cfg = self.config
        beat = bar.beat_steps
        beats_in_bar = max(1, bar.full_length // beat)
        strong_every = 2 if beats_in_bar % 2 == 0 else beats_in_bar  # duple: every other beat; triple: the downbeat
        unit = max(1, round(STEPS_PER_QUARTER * 4 / bar.denominator))  # the notated beat unit (an eighth in 6/8)
        short = max(1, round(unit * chord_length) // 2)  # how long the 'pah' rings
        for t in range(seg.start, seg.end, unit if beat != unit else beat):
            offset = t - bar.start
            if offset % beat == 0 and (offset // beat) % strong_every == 0:
                bass.add_note(t, min(seg.end, t + beat), bass_pitch, cfg.bass_velocity + (accent if t == seg.start else 0))
            elif beat == unit or offset % beat == beat - unit:
                # simple meters: chords on the weak beats; compound: on the last eighth of each beat
                for p in voicing:
                    keys.add_note(t, min(seg.end, t + short), p, cfg.chord_velocity)
        if not keys.onset[seg.start : seg.end].any():  # a pickup or a one-beat segment: one light chord
            for p in voicing:
                keys.add_note(seg.start, min(seg.end, seg.start + short), p, cfg.chord_velocity - 6)
        if not bass.onset[seg.start : seg.end].any():
            bass.add_note(seg.start, seg.end, bass_pitch, cfg.bass_velocity)

    # -- the model interface -----------------------------------------------------------------------
    def generate(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int = 0) -> list[RollTrack]:
        """Bass and piano tracks accompanying `melody` (shape=(T, 128)) on `grid`.

        Parameters
        ----------
        params : mapping
            `chords_per_bar` : int, 1, 2 or 4, default: 2. 1: a chord per bar; 2: per half bar in
            duple meters (one per bar in 3/4, 9/8); 4: may change on any beat (off the half bar
            only when the melody asks for it).
            `pattern` : 'oompah' (bass on the strong beats, short chords between: waltz, march,
            jig), 'pulse' (chords on each beat), 'block' (held) or 'arpeggio', default: 'oompah'.
        seed : int, default: 0
            Draws the `Variation`: 0 plays the harmonizer's first choices; another seed lets
            near-equal chords trade places and draws the voicings, the bass (roots, root-fifth, a
            walking passing tone) and the pattern's variant. The same seed always plays the same.

            `chords` (`models.base.CHORDS_PARAM`) : list of `studio.core.chords.ChordSpan`, default:
            none. The user's chords on the grid, followed exactly: every accompaniment note sounding
            on a strong beat under a given chord is one of its tones; spans without a chord (and a
            pickup) are harmonized as without them.
        """
        chords_per_bar = int(params.get("chords_per_bar", 2))
        pattern = str(params.get("pattern", "oompah"))
        given: Sequence[ChordSpan] = params.get(CHORDS_PARAM) or ()
        key = melody_key(melody)
        variation = Variation.draw(int(seed), self.config)
        segs, chords = self.choose_chords(melody, grid, key, chords_per_bar, variation, given)
        if not segs:
            return [
                RollTrack.empty("Bass", self.config.bass_program, grid.n_steps),
                RollTrack.empty("Guitar", self.config.chord_program, grid.n_steps),
            ]
        return self.voice(segs, chords, melody, grid, pattern, variation, key, given)

    def regenerate(
        self,
        melody: RollTrack,
        grid: Grid,
        accompaniment: Sequence[RollTrack],
        params: Mapping[str, Any],
        seed: int,
        bars: tuple[int, int],
        voices: Sequence[int] | None = None,
    ) -> list[RollTrack]:
        """Bass and guitar with bars `bars` played again: the chords heard in the take elsewhere are read
        back (`heard_chords`) and fixed, the chords inside the selection chosen around them (Viterbi,
        with the seed's jitter: near-equal chords trade places), then voiced and played with a pattern
        variant the seed draws, continuing from the voicing and bass heard just before. Every seed draws
        (seed 0 too: a regeneration is another take). Both tracks are regenerated together (one chord
        choice plays on both): `voices` must be None or both."""
        if voices is not None and sorted(voices) != list(range(len(accompaniment))):
            raise SelectionError("the rules play one chord choice on bass and guitar together: regenerate both (leave the voices out)")
        start, end = Selection(*bars).steps(grid)
        chords_per_bar = int(params.get("chords_per_bar", 2))
        pattern = str(params.get("pattern", "oompah"))
        key = melody_key(melody)
        vocab = chord_vocabulary(key, self.config.secondary_prior)
        given = list(params.get(CHORDS_PARAM) or ())  # the chords the take was given: kept to, as in `generate`
        segs = harmonic_segments(grid, chords_per_bar)
        given_at: list[ChordSymbol | None] = [None] * len(segs)
        if given:
            segs, given_at = cut_at_spans(segs, given)  # as `choose_chords` cuts them: the same indices
        inside = [i for i, seg in enumerate(segs) if start <= seg.start < end]
        if not inside:
            return list(accompaniment)
        # The chords just around the selection are all the Viterbi needs of the take (a chain: a chord's
        # neighbours screen it from the rest), so only those two are read back and fixed (a given one
        # is fixed by being given).
        fixed = heard_chords(segs, vocab, accompaniment, (inside[0] - 1, inside[-1] + 1))
        fixed = {i: j for i, j in fixed.items() if given_at[i] is None}
        before = _heard_before(accompaniment, start)
        variation = Variation.from_rng(np.random.default_rng([REGENERATION_STREAM, int(seed)]), self.config, regeneration=True)
        span = (max(0, inside[0] - 1), min(len(segs), inside[-1] + 2))  # the selection and the two chords around it
        played_before = heard_chords(segs, vocab, accompaniment, inside)
        _segs, chords = self.choose_chords(
            melody, grid, key, chords_per_bar, variation, given=given, fixed=fixed, span=span, avoid=played_before
        )
        inside_segs, inside_chords = [segs[i] for i in inside], [chords[i] for i in inside]
        played = self.voice(inside_segs, inside_chords, melody, grid, pattern, variation, key, given=given, before=before)
        return regenerated_tracks(list(accompaniment), played, start, end, None)


REGENERATION_STREAM = 7  # a regeneration's random stream, apart from `Variation.draw`'s


def heard_chords(
    segs: Sequence[Segment], vocab: Sequence[Chord], accompaniment: Sequence[RollTrack], which: Sequence[int] | None = None
) -> dict[int, int]:
    """The chord (index in `vocab`) each segment of a take plays (of the segments `which`, default all),
    read from its accompaniment: the chord whose tones sound most in the segment (steps x notes) and
    least outside it, the lowest note struck first counting as its root; segments where nothing sounds
    (or that do not exist) are left out."""
    out = {}
    for i in range(len(segs)) if which is None else [i for i in which if 0 <= i < len(segs)]:
        seg = segs[i]
        weights = np.zeros(12)
        lowest = None
        for track in accompaniment:
            sounding = track.velocity[seg.start : seg.end] > 0  # (steps, 128)
            counts = sounding.sum(axis=0)
            for pitch in np.flatnonzero(counts):
                weights[pitch % 12] += counts[pitch]
            struck = np.flatnonzero(sounding.any(axis=1))
            if len(struck):
                low = int(np.flatnonzero(sounding[struck[0]]).min())
                lowest = low if lowest is None else min(lowest, low)
        if not weights.any():
            continue
        scores = [
            sum(weights[pc] for pc in chord.pcs)
            - 0.5 * (weights.sum() - sum(weights[pc] for pc in chord.pcs))
            + (weights.sum() * 0.25 if lowest is not None and lowest % 12 == chord.root else 0.0)
            for chord in vocab
        ]
        out[i] = int(np.argmax(scores))
    return out


def _heard_before(accompaniment: Sequence[RollTrack], start: int) -> tuple[tuple[int, ...], int | None] | None:
    """The chord voicing (the guitar's pitches struck last before `start`) and the bass pitch struck last
    before it, in a take's bass and guitar; None when nothing was struck before."""
    if start <= 0 or len(accompaniment) < 2:
        return None
    bass, keys = accompaniment[0], accompaniment[1]
    struck = np.flatnonzero((keys.onset[:start] & (keys.velocity[:start] > 0)).any(axis=1))
    voicing = tuple(int(p) for p in np.flatnonzero(keys.onset[struck[-1]] & (keys.velocity[struck[-1]] > 0))) if len(struck) else ()
    low = np.flatnonzero((bass.onset[:start] & (bass.velocity[:start] > 0)).any(axis=1))
    bass_pitch = int(np.flatnonzero(bass.onset[low[-1]] & (bass.velocity[low[-1]] > 0)).min()) if len(low) else None
    if not voicing and bass_pitch is None:
        return None
    return voicing, bass_pitch


def load(card: Mapping[str, Any], weights: Any = None, device: str = "cpu") -> RulesAccompanist:
    """The registry's door: the rules model has no weights; its card's `config` may override weights."""
    overrides = {k: v for k, v in dict(card.get("config", {})).items() if k in RulesConfig.__dataclass_fields__}
    for k in ("bass_range",):
        if k in overrides:
            overrides[k] = tuple(overrides[k])
    return RulesAccompanist(RulesConfig(**overrides))

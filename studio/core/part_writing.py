"""A part-writing guide for sampling: the rules a musician checks, as penalties on a model's log-odds.

The learned accompanists write each voice from a network's odds per step. Left alone they cross
voices, leap over octaves and move in parallel fifths far more often than the music they learned from
(`studio.core.voice_leading` measures it). The guide multiplies a model's distribution for one cell
(a voice at a step) by exp(-penalty), the penalty summing, for each candidate pitch, the faults that
pitch would make with what is around it:

- *out of range*: outside the voice's range, more the further out;
- *leap over an octave*: more than 12 semitones from the voice's previous or next sounding pitch;
  and, lightly, any leap for its size beyond a whole step (inner voices of the genres here move by step);
- *crossing*: above a voice written above it, or below one written below it, at that step;
- *parallel fifth / octave*: the voice and another both change pitch into (or out of) the same
  perfect interval class (0 or 7) they had (counted for every pair, the melody included);
- *the genre's motion and harmony* (only when a card sets them): a move to or from a neighbour by a
  size the genre's voices seldom make, or make less often than the model does
  (`PartWritingGuide.motion`), or a vertical interval class with another voice at a chord onset that
  they sound less often than the model does (`PartWritingGuide.harmony`);
- *off the chord* (only when a person gave chords, `chord_faults`): sounding on a strong beat (a bar's
  first beat or its middle) a pitch class outside the chord given there. Not a rule of part writing
  but the person's wish, and the measure `studio.core.chords.chord_tone_share` reads; declared here
  so that "guided" says everything the guide steers.

These are the counting rules of `studio.core.voice_leading` (independent code: that module judges
the result, this one steers the draw). `guided_notes` keeps the model's rhythm (where its notes
start and end) and redraws each note's pitch from model x guide by Gibbs sweeps: one voice at a
time, every other note at once (a note's penalties depend only on its neighbours and the other
voices, so the notes of one parity are independent given the rest). The model's odds for a note are
its log-odds averaged over the note's steps (a model that scores a note by its first step alone, like
the GAN's note-start events, gives that step's odds for all of them). With strength 0 the guide does nothing.

Pitches here are MIDI numbers and -1 for a rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.core.chords import ChordSpan, chord_pitch_classes, harmonic_segments
from studio.core.roll import Grid
from studio.core.voice_leading import SATB_RANGES

__all__ = [
    "PartWritingGuide",
    "chord_faults",
    "excess_motion_costs",
    "guided_notes",
    "harmony_penalties",
    "key_preference",
    "motion_costs",
    "motion_penalties",
    "note_penalties",
    "note_spans",
    "recalibrated_harmony_costs",
    "recalibrated_motion_costs",
    "training_ranges",
    "voice_ranges",
]

MOTION_SIZES = 14  # move sizes the motion costs distinguish: 0..12 semitones, then over an octave
INTERVAL_CLASSES = 12  # vertical interval classes the harmony costs distinguish: |upper - lower| mod 12
IMPOSSIBLE = -1e9  # log-odds of a pitch the model cannot write (finite, so that sums over steps subtract)
PERFECT = (0, 7)  # interval classes of octaves (and unisons) and fifths


@dataclass(frozen=True)
class PartWritingGuide:
    """Penalties in nats (log-odds units) for each fault; `strength` scales them all (0 = off)."""

    strength: float = 1.0
    out_of_range: float = 3.0  # at the first semitone outside the range
    per_semitone_out: float = 1.0  # and this much more for each further semitone
    leap_over_octave: float = 6.0  # per neighbour the leap is to or from
    crossing: float = 4.0  # per voice crossed
    per_semitone_leapt: float = 0.0  # per semitone of a move beyond a whole step (voices that move by step)
    parallel: float = 8.0  # per pair and per move
    out_of_key: float = 2.0  # a redrawn note outside the melody's key (not a fault: a note the model chose stays)
    off_chord: float = 4.0  # a note sounding on a strong beat outside the chord given there (a fault; only with chords)
    # Nats per move to or from a neighbour by its size (0..12 semitones, then over an octave): the genre's
    # own melodic motion (`motion_costs`, read from its training voices); empty: none. A note whose moves
    # are not the genre's commonest is then at fault and redrawn. MOTION_SIZES costs for every voice, or
    # MOTION_SIZES per accompaniment voice, high to low, one after the other (each voice its own motion).
    motion: tuple[float, ...] = ()
    # Nats per vertical interval class (|upper - lower| mod 12, 0..11) a note makes with another voice at each
    # chord onset it sounds at (`studio.core.voice_leading.vertical_histogram` counts them so): what the genre's
    # voices sound together less often than the model's (`recalibrated_harmony_costs`); empty: none.
    harmony: tuple[float, ...] = ()


def voice_ranges(names: Sequence[str], configured: Sequence[int] = ()) -> list[tuple[int, int] | None]:
    """Each accompaniment voice's range for the guide, with None for the melody first: the textbook
    SATB ranges when every voice is an SATB voice by name (the chorale models, whatever wider ranges
    their sampling allows); else `configured` (low, high per voice: a card's, derived from its training
    pieces) when given; else an SATB voice's by name and no range (None) for the others."""
    if configured and not all(name in SATB_RANGES for name in names):
        pairs = [(int(configured[2 * i]), int(configured[2 * i + 1])) for i in range(len(names))]
        return [None, *pairs]
    return [None, *(SATB_RANGES.get(name) for name in names)]


def training_ranges(pieces: Sequence, tracks: Sequence[int], low: float = 1.0, high: float = 99.0) -> list[tuple[int, int]]:
    """The `low`-th and `high`-th percentiles (rounded outward) of the pitches of each of `tracks` over
    training `pieces` (each with ``notes``, rows (track, start, end, pitch, velocity)); (0, 127) for a
    track without notes."""
    out = []
    for t in tracks:
        values = [p.notes[p.notes[:, 0] == t, 3] for p in pieces]
        pitches = np.concatenate(values) if values else np.zeros(0)
        if len(pitches):
            out.append((int(np.floor(np.percentile(pitches, low))), int(np.ceil(np.percentile(pitches, high)))))
        else:
            out.append((0, 127))
    return out


def motion_costs(histogram: np.ndarray, weight: float = 1.0) -> tuple[float, ...]:
    """`PartWritingGuide.motion` from the real voices' melodic intervals (`studio.core.voice_leading
    .interval_histogram`, 27 bins: over an octave down, -12..+12, over an octave up): per move size
    (0..12 semitones, then over an octave), `weight` x -log of its share against the commonest size's
    (0 for the commonest; a size never seen costs as much as one seen once in the histogram's moves)."""
    shares = _shares(_folded_sizes(histogram))
    if shares is None or weight <= 0:
        return ()
    return tuple(round(float(weight * np.log(shares.max() / q)), 3) for q in shares)


def excess_motion_costs(model_histogram: np.ndarray, genre_histogram: np.ndarray, weight: float = 1.0) -> tuple[float, ...]:
    """`PartWritingGuide.motion` that charges only what a model overdoes: per move size, `weight` x the
    log of the model's share over the genre's where the model moves so more often, 0 where it moves so
    as often or less (both `interval_histogram`s, the model's of its own voices on the same melodies).
    Unlike `motion_costs` it does not pull every note toward the genre's commonest move. (The first
    step of `recalibrated_motion_costs`, from no costs.)"""
    return recalibrated_motion_costs((), model_histogram, genre_histogram, weight)


def recalibrated_motion_costs(
    costs: Sequence[float], model_histogram: np.ndarray, genre_histogram: np.ndarray, weight: float = 1.0
) -> tuple[float, ...]:
    """`costs` (`PartWritingGuide.motion`, one per move size) moved toward the genre's motion, given how
    the model moved when sampled with them (`model_histogram`): per size, plus `weight` x the log of the
    model's share over the genre's, never under 0. A size the guided model still overdoes costs more,
    one it now underdoes costs less; a size the costs pushed it to (a repeat, when a redrawn note takes
    its neighbour's pitch) is charged once it is overdone. Repeated, it is a multiplicative-weights
    step toward the genre's shares. `costs` unchanged when either histogram is empty."""
    return _recalibrated(costs, _shares(_folded_sizes(model_histogram)), _shares(_folded_sizes(genre_histogram)), weight)


def recalibrated_harmony_costs(
    costs: Sequence[float], model_histogram: np.ndarray, genre_histogram: np.ndarray, weight: float = 1.0
) -> tuple[float, ...]:
    """`costs` (`PartWritingGuide.harmony`, one per vertical interval class; empty: none yet) moved
    toward the genre's harmony as `recalibrated_motion_costs` moves motion costs, from the
    `vertical_histogram`s of the model's voices sampled with them and of the genre's real voices."""
    return _recalibrated(costs, _shares(model_histogram), _shares(genre_histogram), weight)


def _recalibrated(costs: Sequence[float], model: np.ndarray | None, genre: np.ndarray | None, weight: float) -> tuple[float, ...]:
    """Per bin, `costs` (zeros when empty) plus `weight` x log(model share / genre share), never under 0."""
    if model is None or genre is None or weight <= 0:
        return tuple(costs)
    start = np.zeros(len(model)) if not costs else np.asarray(costs, float)
    if len(start) != len(model):
        return tuple(costs)
    return tuple(round(float(max(0.0, c + weight * np.log(m / g))), 3) for c, m, g in zip(start, model, genre, strict=True))


def _folded_sizes(histogram: np.ndarray) -> np.ndarray:
    """An `interval_histogram` (27 bins) folded to move sizes: 0..12 semitones, then over an octave."""
    counts = np.asarray(histogram, float)
    sizes = np.zeros(MOTION_SIZES)
    sizes[:13] = counts[13:26]
    sizes[1:13] += counts[12:0:-1]
    sizes[13] = counts[0] + counts[26]
    return sizes


def _shares(counts: np.ndarray) -> np.ndarray | None:
    """Counts as shares; a bin never seen counts as seen once. None for an empty histogram."""
    counts = np.asarray(counts, float)
    total = counts.sum()
    if total <= 0:
        return None
    return np.maximum(counts / total, 1.0 / total)


def key_preference(in_key: frozenset[int] | set[int], guide: PartWritingGuide) -> np.ndarray:
    """(128,) nats against each MIDI pitch whose pitch class is not in `in_key` (the melody's key,
    `studio.core.theory.Key.accepted`), for `guided_notes`' `preference`."""
    outside = np.array([pc not in in_key for pc in range(12)])
    return guide.strength * guide.out_of_key * outside[np.arange(128) % 12]


def chord_faults(spans: Sequence[ChordSpan], grid: Grid, guide: PartWritingGuide) -> np.ndarray:
    """(T, 128) nats against each MIDI pitch at each step, for `guided_notes`' `faults`: at the strong
    beats (`harmonic_segments`' strong starts) where `spans` give a chord, every pitch whose class is
    not in it costs `off_chord`; zero elsewhere (and everywhere without chords)."""
    out = np.zeros((grid.n_steps, 128))
    starts = [span.start for span in spans]
    for seg in harmonic_segments(grid, 2):
        if not seg.strong:
            continue
        i = int(np.searchsorted(starts, seg.start, side="right")) - 1
        if i < 0 or not spans[i].start <= seg.start < spans[i].end or spans[i].chord is None:
            continue
        inside = np.array([pc in chord_pitch_classes(spans[i].chord) for pc in range(12)])
        out[seg.start] = guide.strength * guide.off_chord * ~inside[np.arange(128) % 12]
    return out


def note_spans(line: np.ndarray, starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(first step, step after the last) of each note of one voice's pitches (T,) (-1 = rest): a note
    starts where the pitch changes, after a rest, or where `starts` (T,) marks a re-strike."""
    line = np.asarray(line)
    sounding = line >= 0
    before = np.concatenate([[-1], line[:-1]])
    begin = sounding & (line != before)
    if starts is not None:
        begin |= sounding & np.asarray(starts, bool)
    first = np.flatnonzero(begin)
    # a note ends at the next start or at the first step that does not sound its pitch
    boundary = np.concatenate([begin[1:] | ~sounding[1:] | (line[1:] != line[:-1]), [True]])
    ends = np.flatnonzero(boundary) + 1
    return first, ends[np.searchsorted(ends, first, side="right")] if len(first) else np.zeros(0, np.int64)


def _span_extreme(line: np.ndarray, first: np.ndarray, end: np.ndarray, highest: bool) -> np.ndarray:
    """The highest (or lowest) pitch `line` (T,) sounds within each span [first, end); -1 where it is silent throughout."""
    fill = -1 if highest else 10_000
    if not len(first):
        return np.zeros(0, np.int64)
    # reduceat runs from each index to the next: with every span's start and end as indices (a span
    # may end before the next begins), the even rows are the spans; one filler at the end lets a span
    # end at the line's end (in one call: a staccato line has as many gaps as notes)
    values = np.append(np.where(line >= 0, line, fill), fill)
    bounds = np.empty(2 * len(first), np.int64)
    bounds[0::2], bounds[1::2] = first, end
    out = (np.maximum if highest else np.minimum).reduceat(values, bounds)[0::2]
    return np.where(out == fill, -1, out)


def note_penalties(
    pitches: np.ndarray, voice: int, first: np.ndarray, end: np.ndarray, ranges: Sequence[tuple[int, int] | None], guide: PartWritingGuide
) -> np.ndarray:
    """Penalties (len(first), 128), one row per note [first, end) of `voice`, for giving that note
    each MIDI pitch, the rest of `pitches` (V, T) (voices high to low, the melody first; -1 = rest)
    staying as it is. Notes of one voice are judged against its previous and next notes, so the
    notes asked for at once should not be neighbours."""
    out = np.zeros((len(first), 128))
    if guide.strength <= 0 or len(first) == 0:
        return out
    v_count, n = pitches.shape
    cand = np.arange(128)[None, :]
    line = pitches[voice]
    if ranges[voice] is not None:
        low, high = ranges[voice]
        outside = np.maximum(low - cand, 0) + np.maximum(cand - high, 0)
        out += np.where(outside > 0, guide.out_of_range + guide.per_semitone_out * (outside - 1), 0.0)
    previous, following = _neighbours(line, first, end)
    for neighbour in (previous, following):
        distance = np.where(neighbour[:, None] >= 0, np.abs(cand - neighbour[:, None]), 0)
        out += guide.leap_over_octave * (distance > 12) + guide.per_semitone_leapt * np.maximum(distance - 2, 0)
    at_start = first - 1  # the step before the note (its move in), and the note's last step (its move out)
    own_before = np.where(first > 0, line[np.maximum(at_start, 0)], -1)
    own_after = np.where(end < n, line[np.minimum(end, n - 1)], -1)
    for u in range(v_count):
        if u == voice:
            continue
        other = pitches[u]
        if u < voice:  # written above: crossing if the note goes above its lowest pitch in the span
            lowest = _span_extreme(other, first, end, highest=False)
            out += guide.crossing * ((lowest[:, None] >= 0) & (cand > lowest[:, None]))
        else:
            highest = _span_extreme(other, first, end, highest=True)
            out += guide.crossing * ((highest[:, None] >= 0) & (cand < highest[:, None]))
        # moving in: own_before -> cand against other[first - 1] -> other[first]
        u_was = np.where(first > 0, other[np.maximum(at_start, 0)], -1)
        u_now = other[first]
        out += guide.parallel * _kept_perfect(own_before, u_was, u_now, cand, into_candidate=True)
        # moving out: cand -> own_after against other[end - 1] -> other[end]
        u_last = other[end - 1]
        u_next = np.where(end < n, other[np.minimum(end, n - 1)], -1)
        out += guide.parallel * _kept_perfect(own_after, u_last, u_next, cand, into_candidate=False)
    return out * guide.strength


def _neighbours(line: np.ndarray, first: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pitch `line` (T,) sounds last before each note [first, end) and first at or after its end (-1: none)."""
    sounding_at = np.flatnonzero(line >= 0)
    k = np.searchsorted(sounding_at, first) - 1
    previous = np.where(k >= 0, line[sounding_at[np.maximum(k, 0)]], -1)
    k = np.searchsorted(sounding_at, end)
    following = np.where(k < len(sounding_at), line[sounding_at[np.minimum(k, len(sounding_at) - 1)]], -1)
    return previous, following


def motion_penalties(pitches: np.ndarray, voice: int, first: np.ndarray, end: np.ndarray, guide: PartWritingGuide) -> np.ndarray:
    """(len(first), 128): the cost of each note's moves from its previous and to its next note in
    `voice` for every pitch it could take (`PartWritingGuide.motion`); zeros without motion costs."""
    out = np.zeros((len(first), 128))
    if guide.strength <= 0 or not guide.motion or len(first) == 0:
        return out
    motion = np.asarray(guide.motion, float).reshape(-1, MOTION_SIZES)
    motion = motion[min(max(voice - 1, 0), len(motion) - 1)] if len(motion) > 1 else motion[0]  # the voice's own, when per voice
    cand = np.arange(128)[None, :]
    for neighbour in _neighbours(pitches[voice], first, end):
        distance = np.minimum(np.abs(cand - neighbour[:, None]), MOTION_SIZES - 1)
        out += np.where(neighbour[:, None] >= 0, motion[distance], 0.0)
    return out * guide.strength


def harmony_penalties(
    pitches: np.ndarray, voice: int, first: np.ndarray, end: np.ndarray, onsets: np.ndarray, guide: PartWritingGuide
) -> np.ndarray:
    """(len(first), 128): the cost of the vertical interval classes each note [first, end) of `voice`
    would make, for every pitch it could take, with each other voice of `pitches` (V, T) sounding at each
    chord onset within the note (`onsets`, (T,) bool: some voice starts a note there), summed
    (`PartWritingGuide.harmony`); zeros without harmony costs."""
    out = np.zeros((len(first), 128))
    if guide.strength <= 0 or not guide.harmony or len(first) == 0:
        return out
    costs = np.asarray(guide.harmony, float)
    at = np.flatnonzero(onsets)
    low, high = np.searchsorted(at, first), np.searchsorted(at, end)
    counts = high - low
    note = np.repeat(np.arange(len(first)), counts)  # one row per (note, onset within it)
    steps = at[np.repeat(low - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
    cand = np.arange(128)[None, :]
    for u in range(pitches.shape[0]):
        if u == voice:
            continue
        other = pitches[u, steps]
        sounding = other >= 0
        np.add.at(out, note[sounding], costs[np.abs(cand - other[sounding, None]) % INTERVAL_CLASSES])
    return out * guide.strength


def _kept_perfect(own: np.ndarray, u_from: np.ndarray, u_to: np.ndarray, cand: np.ndarray, into_candidate: bool) -> np.ndarray:
    """(notes, 128) bool: the voice moving between its fixed pitch `own` and a candidate while the other
    voice moves `u_from` -> `u_to` keeps a perfect interval class (a parallel fifth or octave).
    `into_candidate`: the voice moves own -> candidate (else candidate -> own)."""
    ok = (own >= 0) & (u_from >= 0) & (u_to >= 0) & (u_from != u_to)
    fixed = np.abs(own - (u_from if into_candidate else u_to)) % 12
    rows = np.flatnonzero(ok & ((fixed == PERFECT[0]) | (fixed == PERFECT[1])))  # the other notes cannot keep one
    out = np.zeros((len(own), cand.shape[-1]), bool)
    moving = np.abs(cand - (u_to if into_candidate else u_from)[rows, None]) % 12
    out[rows] = (moving == fixed[rows, None]) & (cand != own[rows, None])
    return out


def guided_notes(
    pitches: np.ndarray,
    odds: np.ndarray,
    free: np.ndarray,
    ranges: Sequence[tuple[int, int] | None],
    guide: PartWritingGuide,
    rng: np.random.Generator,
    sweeps: int = 4,
    temperature: float = 1.0,
    starts: np.ndarray | None = None,
    preference: np.ndarray | None = None,
    movable: np.ndarray | None = None,
    faults: np.ndarray | None = None,
) -> np.ndarray:
    """New pitches for the notes of the `free` voices of `pitches` (V, T): the rhythm (where each note
    starts and ends, and the rests) stays the model's, and each note that breaks a rule
    (`note_penalties` above 0 at its pitch) is redrawn from the model's odds times the guide's, sweep
    after sweep (a redrawn note may leave a neighbour at fault, or mend one). A note that breaks no
    rule keeps the model's pitch, so what the model chose freely (its own draw) stays.

    Parameters
    ----------
    odds : (V, T, 128) log-odds of each MIDI pitch at each step; a note's score for a pitch is their
        mean over its steps (the steps of one note are one decision, not independent evidence; a model
        that scores a note at its first step gives that step's odds for every step). -inf: impossible.
    free : (V,) bool: the voices to redraw (the melody is not).
    starts : (V, T) bool or None: re-strikes of a held pitch (the notes' boundaries), see `note_spans`.
    preference : (128,) nats against each pitch when a note is redrawn (`key_preference`); it does not
        make a note at fault, so a chromatic note the model chose and that breaks no rule stays.
    movable : (V, T) bool or None: only a note that starts on a movable cell may be redrawn (a regenerated
        selection: the notes around it are fixed, and judged against as they are); None: every note.
    faults : (T, 128) nats against each pitch at each step (`chord_faults`), added to the penalties of a
        note sounding there (summed over its steps): unlike `preference`, a note with a fault is redrawn.
    temperature : 0 takes the best pitch for each note (iterated conditional modes), else samples.
    """
    pitches = pitches.copy()
    v_count, _n = pitches.shape
    spans = [note_spans(pitches[v], None if starts is None else starts[v]) for v in range(v_count)]
    onsets = np.zeros(pitches.shape[1], bool)  # chord onsets: where some voice starts a note (the rhythm stays)
    for first, _end in spans:
        onsets[first] = True
    # Sums over spans of the odds, -inf as a large finite number so that sums can be subtracted: for
    # the free voices only, a voice at a time (a long melody's odds are tens of MB per voice).
    rows = {int(v): i for i, v in enumerate(np.flatnonzero(free))}
    cumulative = np.zeros((len(rows), pitches.shape[1] + 1, odds.shape[-1]))
    for voice, row in rows.items():
        np.cumsum(np.maximum(np.asarray(odds[voice], np.float64), IMPOSSIBLE), axis=0, out=cumulative[row, 1:])
    step_faults = None if faults is None else np.concatenate([np.zeros((1, 128)), np.cumsum(faults, axis=0)])  # sums over spans
    for _ in range(max(0, sweeps)):
        for voice in np.flatnonzero(free):
            first, end = spans[voice]
            for parity in (0, 1):
                chosen_notes = np.arange(parity, len(first), 2)
                if movable is not None:
                    chosen_notes = chosen_notes[movable[voice, first[chosen_notes]]]
                if len(chosen_notes) == 0:
                    continue
                f, e = first[chosen_notes], end[chosen_notes]
                penalties = note_penalties(pitches, voice, f, e, ranges, guide)
                if step_faults is not None:
                    penalties = penalties + step_faults[e] - step_faults[f]
                current = pitches[voice, f]
                ruled = penalties[np.arange(len(f)), current] > 0  # a note that breaks no rule keeps its pitch,
                moves = motion_penalties(pitches, voice, f, e, guide)
                if guide.harmony:
                    moves += harmony_penalties(pitches, voice, f, e, onsets, guide)
                faulty = ruled | (moves[np.arange(len(f)), current] > 0)  # unless it moves or sounds as the genre seldom does
                if not faulty.any():
                    continue
                f, e, ruled = f[faulty], e[faulty], ruled[faulty]
                penalties = penalties[faulty] + moves[faulty]
                score = (cumulative[rows[voice], e] - cumulative[rows[voice], f]) / (e - f)[:, None] - penalties
                if preference is not None:  # the key is preferred for a note redrawn for a fault, not for its motion alone
                    score = score - ruled[:, None] * preference[None, :]
                possible = (score > IMPOSSIBLE / 2).any(axis=1)
                if temperature <= 1e-3:
                    pick = np.argmax(score, axis=1)
                else:
                    z = score / temperature
                    z = z - z.max(axis=1, keepdims=True)
                    cum = np.cumsum(np.exp(z), axis=1)
                    pick = np.minimum((cum <= rng.random(len(f))[:, None] * cum[:, -1:]).sum(axis=1), 127)
                for i in np.flatnonzero(possible):
                    pitches[voice, f[i] : e[i]] = pick[i]
    return pitches

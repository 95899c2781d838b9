"""What a musician hears in part writing: pure functions on voices (monophonic `RollTrack`s, shape=(T, 128)).

A *voice* is read as the studio reads its voices (`studio.core.voices.voice_piece`): its top note at
every step. Voices come high to low, the melody first (`order_voices` puts a model's tracks so).
Every figure is kept as integer counts (`piece_counts`) so that pieces pool by summing
(`pooled_rates`); a rate over pieces is the pooled count over the pooled denominator.

Counting rules (the exact ones; each has a hand-made test in ``tests/core/test_voice_leading.py``):

- *Note*: a voice starts a note at a step where it sounds and, at the step before, it was silent,
  sounded another top pitch, or its top pitch has a marked onset (a re-strike).
- *Melodic move* of a voice: two consecutive notes of it (across rests too). A *leap over an octave*
  is a move of more than 12 semitones; a *repeated note* is a move of 0 (the same pitch struck again).
- *Move together* of a voice pair: the pair's sonorities are the steps where both voices sound and at
  least one starts a note; two consecutive sonorities at most `MAX_GAP` steps apart (a 4/4 bar) where
  both voices have changed pitch are a move together (a re-strike of the same pitch is not a move; a
  rest between is bridged, so staccato parts are judged chord to chord). Parallel and hidden
  fifths/octaves are shares of these.
- *Parallel fifth / octave*: a move together where the interval class (|upper - lower| mod 12) is 7
  (fifth) or 0 (octave or unison) both before and after; by *contrary motion* when the two voices
  move in opposite directions (also counted in the parallel total, and reported apart).
- *Hidden (direct) fifth / octave*: a move together in similar motion (both up or both down) into
  interval class 7 or 0 from another interval class, the upper voice leaping (more than 2 semitones).
  Reported apart from the parallels; counted for every pair, not only the outer voices.
- *Chord*: a step where some voice starts a note and at least two voices sound. A *crossing* is a chord
  at which some voice sounds above a voice written above it (strictly higher pitch); a share of chords.
- *Overlap*: a note that starts while its neighbour in the voice order sounded at the step before, and
  lies strictly above that neighbour's previous pitch (the voice above) or strictly below it (the voice
  below); a share of melodic moves of voices with a neighbour. Only adjacent voices count.
- *Out of range*: accompaniment notes (not the melody's) outside their voice's range (inclusive MIDI
  bounds, `ranges_for`), a share of accompaniment notes.
- *Histograms*: melodic intervals of the accompaniment voices (-12..+12 semitones and one bin each
  for larger leaps down and up: 27 bins) and note lengths in 16ths (`DURATION_BINS`), pooled; compared
  by the Jensen-Shannon divergence with log base 2 (`js_divergence`: 0 = same, 1 = disjoint).
- *Classifier*: `classifier_accuracy`, an L2 logistic regression on `piece_features`, leave-one-piece-out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from studio.core.metrics import melody_key
from studio.core.roll import RollTrack

__all__ = [
    "DURATION_BINS",
    "ENSEMBLE_ORDER",
    "FALLBACK_RANGE",
    "INTERVAL_BINS",
    "SATB_RANGES",
    "classifier_accuracy",
    "classifier_by_group",
    "derive_ranges",
    "duration_histogram",
    "feature_groups",
    "interval_histogram",
    "js_divergence",
    "order_voices",
    "piece_counts",
    "piece_features",
    "pooled_rates",
    "ranges_for",
    "vertical_histogram",
    "voice_line",
    "voice_notes",
]

# Textbook SATB ranges (inclusive MIDI): soprano C4-A5, alto F3-D5, tenor C3-G4, bass E2-C4.
SATB_RANGES: dict[str, tuple[int, int]] = {"Soprano": (60, 81), "Alto": (53, 74), "Tenor": (48, 67), "Bass": (40, 60)}
FALLBACK_RANGE = (36, 84)  # C2-C6: any voice of an ensemble whose ranges are not known
# Part names of the studio's ensembles, high to low (a voice's place in its ensemble).
ENSEMBLE_ORDER = ("Soprano", "Cantus", "Violin I", "Alto", "Altus", "Violin II", "Tenor", "Viola", "Bass", "Bassus", "Cello")
INTERVAL_BINS = 27  # melodic intervals -12..+12, and one bin each for larger leaps down and up
DURATION_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # note lengths in 16ths: bin i holds lengths up to DURATION_BINS[i], one more bin above
LEAP_STEP = 2  # semitones: a move larger than this is a leap (for hidden fifths/octaves)
MAX_GAP = 16  # steps: two sonorities of a pair further apart than this (a 4/4 bar) are not one move


# --------------------------------------------------------------------------- voices


def voice_line(track: RollTrack) -> tuple[np.ndarray, np.ndarray]:
    """(pitch, starts) of a voice, shape=(T,) each: its top sounding pitch per step (-1 = rest), and
    the steps where a note of that line starts (see the module docstring)."""
    sounding = track.velocity > 0  # (T, 128)
    any_sound = sounding.any(axis=1)
    pitch = np.where(any_sound, 127 - np.argmax(sounding[:, ::-1], axis=1), -1)
    restruck = track.onset[np.arange(len(pitch)), np.maximum(pitch, 0)] & any_sound
    before = np.concatenate([[-1], pitch[:-1]])
    starts = any_sound & ((before != pitch) | restruck)
    return pitch, starts


def voice_notes(track: RollTrack) -> list[tuple[int, int, int]]:
    """(start, end, pitch) in steps of a voice's notes (its top line), in time order."""
    pitch, starts = voice_line(track)
    begins = np.flatnonzero(starts).tolist()
    out = []
    for i, s in enumerate(begins):
        end = s + 1
        stop = begins[i + 1] if i + 1 < len(begins) else len(pitch)
        while end < stop and pitch[end] == pitch[s]:
            end += 1
        out.append((s, end, int(pitch[s])))
    return out


def order_voices(melody: RollTrack, accompaniment: Sequence[RollTrack]) -> list[RollTrack]:
    """The voices high to low, melody first: accompaniment tracks by their place in `ENSEMBLE_ORDER`
    when every one is named there (the studio's SATB, renaissance and quartet parts, as written),
    else by mean sounding pitch, highest first (e.g. the rules baseline's Guitar over its Bass)."""
    pitched = [t for t in accompaniment if not t.is_drum]
    if all(t.name in ENSEMBLE_ORDER for t in pitched):
        return [melody, *sorted(pitched, key=lambda t: ENSEMBLE_ORDER.index(t.name))]

    def mean_pitch(track: RollTrack) -> float:
        steps, pitches = np.nonzero(track.velocity)
        return float(pitches.mean()) if len(steps) else -1.0

    return [melody, *sorted(pitched, key=mean_pitch, reverse=True)]


# --------------------------------------------------------------------------- ranges


def derive_ranges(pieces: Sequence[Sequence[RollTrack]], low: float = 1.0, high: float = 99.0) -> dict[str, tuple[int, int]]:
    """Each named voice's range in real music: the `low`-th and `high`-th percentiles of its notes'
    pitches (one per note of its top line) over `pieces` (lists of voices), rounded outward."""
    pitches: dict[str, list[int]] = {}
    for voices in pieces:
        for track in voices:
            pitches.setdefault(track.name, []).extend(p for _s, _e, p in voice_notes(track))
    return {
        name: (int(np.floor(np.percentile(values, low))), int(np.ceil(np.percentile(values, high))))
        for name, values in pitches.items()
        if values
    }


def ranges_for(names: Sequence[str], reference: Mapping[str, tuple[int, int]]) -> list[tuple[int, int]]:
    """The range of each accompaniment voice `names` (high to low): its own name's in `reference`
    (the genre's voices, high to low); else, when there are as many voices as `reference` has, the
    reference voice in the same place (a quartet model's Viola judged as a tenor on chorales); else
    its SATB range by name; else `FALLBACK_RANGE`."""
    ref = list(reference.items())
    positional = len(names) == len(ref)
    out = []
    for i, name in enumerate(names):
        if name in reference:
            out.append(reference[name])
        elif positional:
            out.append(ref[i][1])
        else:
            out.append(SATB_RANGES.get(name, FALLBACK_RANGE))
    return out


# --------------------------------------------------------------------------- counts


def _pair_counts(upper: tuple[np.ndarray, np.ndarray], lower: tuple[np.ndarray, np.ndarray]) -> dict[str, int]:
    """Moves together, parallel and hidden fifths/octaves of one voice pair (upper written above)."""
    (x, x_starts), (y, y_starts) = upper, lower
    sonority = np.flatnonzero((x >= 0) & (y >= 0) & (x_starts | y_starts))
    a, b = sonority[:-1], sonority[1:]  # consecutive sonorities of the pair
    dx, dy = x[b] - x[a], y[b] - y[a]
    move = (b - a <= MAX_GAP) & (dx != 0) & (dy != 0)
    before = np.abs(x[a] - y[a]) % 12
    after = np.abs(x[b] - y[b]) % 12
    similar = np.sign(dx) == np.sign(dy)
    kept = move & (before == after)
    into = move & similar & (before != after) & (np.abs(dx) > LEAP_STEP)
    return {
        "moves_together": int(move.sum()),
        "parallel_fifths": int((kept & (after == 7)).sum()),
        "parallel_octaves": int((kept & (after == 0)).sum()),
        "parallel_contrary": int((kept & ((after == 7) | (after == 0)) & ~similar).sum()),
        "hidden_fifths": int((into & (after == 7)).sum()),
        "hidden_octaves": int((into & (after == 0)).sum()),
    }


PAIR_KEYS = ("moves_together", "parallel_fifths", "parallel_octaves", "parallel_contrary", "hidden_fifths", "hidden_octaves")


def piece_counts(voices: Sequence[RollTrack], ranges: Sequence[tuple[int, int]] | None = None) -> dict:
    """The integer counts of one piece (see the module docstring), JSON-ready.

    Parameters
    ----------
    voices : sequence of RollTrack
        Melody first, then the accompaniment voices, high to low (`order_voices`).
    ranges : sequence of (low, high) MIDI, one per accompaniment voice, or None
        Inclusive ranges for the out-of-range count (`ranges_for`); None: `FALLBACK_RANGE` for each.
    """
    lines = [voice_line(t) for t in voices]
    notes = [voice_notes(t) for t in voices]
    n = len(lines)
    out: dict = {k: 0 for k in PAIR_KEYS}
    out["pairs"] = {}
    for i in range(n):
        for j in range(i + 1, n):
            pair = _pair_counts(lines[i], lines[j])
            out["pairs"][f"{voices[i].name}/{voices[j].name}"] = pair
            for k in PAIR_KEYS:
                out[k] += pair[k]
    # Chords and crossings.
    pitch = np.stack([p for p, _ in lines]) if lines else np.zeros((0, 0), np.int64)  # (V, T)
    starts = np.stack([s for _, s in lines]) if lines else np.zeros((0, 0), bool)
    sounding = pitch >= 0
    chord = starts.any(axis=0) & (sounding.sum(axis=0) >= 2) if n else np.zeros(0, bool)
    crossed = np.zeros(pitch.shape[1] if n else 0, bool)
    for i in range(n):
        for j in range(i + 1, n):
            crossed |= sounding[i] & sounding[j] & (pitch[j] > pitch[i])
    out["chords"] = int(chord.sum())
    out["crossed_chords"] = int((chord & crossed).sum())
    # Melodic moves, leaps, repeats, overlaps.
    out["moves"] = out["leaps_over_octave"] = out["repeated_notes"] = 0
    out["overlap_checks"] = out["overlaps"] = 0
    for v in range(n):
        for k in range(1, len(notes[v])):
            step = notes[v][k][2] - notes[v][k - 1][2]
            out["moves"] += 1
            out["leaps_over_octave"] += abs(step) > 12
            out["repeated_notes"] += step == 0
        for s, _e, p in notes[v][1:]:
            above = pitch[v - 1, s - 1] if v > 0 and s > 0 else -1
            below = pitch[v + 1, s - 1] if v + 1 < n and s > 0 else -1
            if above < 0 and below < 0:
                continue
            out["overlap_checks"] += 1
            out["overlaps"] += bool((above >= 0 and p > above) or (below >= 0 and p < below))
    # Range, accompaniment only.
    ranges = list(ranges) if ranges is not None else [FALLBACK_RANGE] * (n - 1)
    out["accompaniment_notes"] = out["out_of_range"] = 0
    for v in range(1, n):
        low, high = ranges[v - 1]
        out["accompaniment_notes"] += len(notes[v])
        out["out_of_range"] += sum(not low <= p <= high for _s, _e, p in notes[v])
    acc = [p for v in range(1, n) for _s, _e, p in notes[v]]
    out["accompaniment_span"] = int(max(acc) - min(acc)) if acc else 0
    out["interval_histogram"] = interval_histogram(voices[1:]).tolist()
    out["duration_histogram"] = duration_histogram(voices[1:]).tolist()
    return out


def pooled_rates(counts: Sequence[Mapping]) -> dict[str, float]:
    """The rates of `piece_counts` pooled over pieces (count sums over denominator sums; nan when the
    denominator is 0), and the mean accompaniment span in semitones."""

    def total(key: str) -> int:
        return sum(int(c[key]) for c in counts)

    def rate(num: int, den: int) -> float:
        return num / den if den else float("nan")

    moves_together = total("moves_together")
    parallels = total("parallel_fifths") + total("parallel_octaves")
    return {
        "parallel_fifths_octaves": rate(parallels, moves_together),
        "parallel_by_contrary_motion": rate(total("parallel_contrary"), moves_together),
        "hidden_fifths_octaves": rate(total("hidden_fifths") + total("hidden_octaves"), moves_together),
        "crossings_per_chord": rate(total("crossed_chords"), total("chords")),
        "overlaps_per_move": rate(total("overlaps"), total("overlap_checks")),
        "out_of_range": rate(total("out_of_range"), total("accompaniment_notes")),
        "leaps_over_octave": rate(total("leaps_over_octave"), total("moves")),
        "repeated_notes": rate(total("repeated_notes"), total("moves")),
        "accompaniment_span": float(np.mean([c["accompaniment_span"] for c in counts])) if counts else float("nan"),
    }


# --------------------------------------------------------------------------- histograms


def interval_histogram(voices: Sequence[RollTrack]) -> np.ndarray:
    """Counts of the voices' melodic intervals, shape=(27,): bin 0 = down more than an octave,
    bins 1..25 = -12..+12 semitones, bin 26 = up more than an octave."""
    hist = np.zeros(INTERVAL_BINS, np.int64)
    for track in voices:
        pitches = np.array([p for _s, _e, p in voice_notes(track)], np.int64)
        if len(pitches) > 1:
            np.add.at(hist, np.clip(np.diff(pitches), -13, 13) + 13, 1)
    return hist


def duration_histogram(voices: Sequence[RollTrack]) -> np.ndarray:
    """Counts of the voices' note lengths in 16ths, shape=(9,): bin i holds lengths up to
    `DURATION_BINS[i]` (and above the previous bound), the last bin longer than a whole note."""
    hist = np.zeros(len(DURATION_BINS) + 1, np.int64)
    for track in voices:
        for s, e, _p in voice_notes(track):
            hist[int(np.searchsorted(DURATION_BINS, e - s, side="left"))] += 1
    return hist


def vertical_histogram(voices: Sequence[RollTrack]) -> np.ndarray:
    """Counts of the vertical interval classes (|upper - lower| mod 12, 0..11), shape=(12,): between
    every two sounding voices (the melody included) at each chord onset (a step where some voice
    starts a note)."""
    vertical = np.zeros(12, np.int64)
    lines = [voice_line(t) for t in voices]
    if not lines:
        return vertical
    pitch = np.stack([p for p, _ in lines])
    chord = np.stack([s for _, s in lines]).any(axis=0)
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            both = chord & (pitch[i] >= 0) & (pitch[j] >= 0)
            np.add.at(vertical, np.abs(pitch[i][both] - pitch[j][both]) % 12, 1)
    return vertical


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms (normalized here), log base 2: 0 for the same
    distribution, 1 for disjoint ones; nan when either is empty."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / m[mask])).sum())

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


# --------------------------------------------------------------------------- real or generated?

_COARSE = ((0, 0), (1, 2), (3, 4), (5, 7), (8, 12), (13, 127))  # |melodic interval| bins for the per-voice features


def _share(hist: np.ndarray) -> np.ndarray:
    total = hist.sum()
    return hist / total if total else np.zeros(len(hist))


def piece_features(voices: Sequence[RollTrack], n_voices: int) -> np.ndarray:
    """Simple features of one piece's accompaniment, shape=(6 * n_voices + 9 + 12 + 12,), shares:
    per accompaniment voice (voices[1:], high to low, zeros past the last) its |melodic intervals|
    in 6 bins (repeat, step, third, 4th-5th, 6th-octave, larger); the voices' note lengths
    (`duration_histogram`); the vertical interval classes (`vertical_histogram`); the accompaniment's duration-weighted pitch classes relative
    to the melody's key tonic."""
    parts = []
    for v in range(1, n_voices + 1):
        hist = np.zeros(len(_COARSE))
        if v < len(voices):
            pitches = np.array([p for _s, _e, p in voice_notes(voices[v])], np.int64)
            for step in np.abs(np.diff(pitches)).tolist():
                hist[next(i for i, (lo, hi) in enumerate(_COARSE) if lo <= step <= hi)] += 1
        parts.append(_share(hist))
    parts.append(_share(duration_histogram(voices[1:]).astype(float)))
    parts.append(_share(vertical_histogram(voices).astype(float)))
    tonic = melody_key(voices[0]).tonic if voices else 0
    pcs = np.zeros(12)
    for track in voices[1:]:
        per_pitch = (track.velocity > 0).sum(axis=0)
        for pc in range(12):
            pcs[(pc - tonic) % 12] += per_pitch[pc::12].sum()
    parts.append(_share(pcs))
    return np.concatenate(parts)


def feature_groups(n_voices: int) -> dict[str, slice]:
    """Where each group of `piece_features` lies: the voices' melodic intervals, the durations, the
    vertical intervals and the pitch classes."""
    k = 6 * n_voices
    return {
        "intervals": slice(0, k),
        "durations": slice(k, k + 9),
        "vertical": slice(k + 9, k + 21),
        "pitch_classes": slice(k + 21, k + 33),
    }


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Weights (bias last) of an L2-penalized logistic regression by Newton's method (IRLS); the bias is not penalized."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        prob = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (prob - y) + penalty * w
        hess = (xb * (prob * (1 - prob))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def classifier_accuracy(real: np.ndarray, generated: np.ndarray, l2: float = 1.0) -> float:
    """How well a logistic regression tells generated pieces from real ones: leave-one-piece-out
    accuracy (0.5 = indistinguishable, 1.0 = always told apart).

    `real` and `generated` are feature rows, shape=(N, F) each, row i of both from the same piece
    (the same melody): each fold holds out both versions of one piece, standardizes the features on
    the rest, fits an L2 logistic regression (`l2` on standardized features, Newton's method) and
    labels the two held-out rows. nan with fewer than 2 pieces."""
    real, generated = np.asarray(real, float), np.asarray(generated, float)
    n = len(real)
    if n < 2 or len(generated) != n:
        return float("nan")
    x = np.vstack([real, generated])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    correct = 0
    for i in range(n):
        test = np.array([i, n + i])
        train = np.setdiff1d(np.arange(2 * n), test)
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std[std == 0] = 1.0
        w = _fit_logistic((x[train] - mean) / std, y[train], l2)
        scores = ((x[test] - mean) / std) @ w[:-1] + w[-1]
        correct += int(scores[0] <= 0) + int(scores[1] > 0)  # real scored as real, generated as generated
    return correct / (2 * n)


def classifier_by_group(real: np.ndarray, generated: np.ndarray, n_voices: int) -> dict[str, dict[str, float]]:
    """What gives generated pieces away, group by group of `piece_features` (`feature_groups`): the
    classifier's accuracy on that group ``alone``, and on all features with that group ``made_real``
    (each generated piece's group replaced by the next real piece's, so by real music, not its own
    piece's). A group whose ``made_real`` accuracy falls far is one the generator gets wrong; one
    whose ``alone`` accuracy is near 0.5 is one it gets right."""
    real, generated = np.asarray(real, float), np.asarray(generated, float)
    out = {}
    for name, where in feature_groups(n_voices).items():
        swapped = generated.copy()
        swapped[:, where] = np.roll(real[:, where], 1, axis=0)
        out[name] = {
            "alone": classifier_accuracy(real[:, where], generated[:, where]),
            "made_real": classifier_accuracy(real, swapped),
        }
    return out

"""Pieces as voices, and the training windows that voice models (GAN, diffusion) learn from.

A `VoicePiece` is a `studio.training.data.Piece` turned into per-voice tokens and onsets (see
`studio.core.conditioning`: 0 = rest, 1..84 = MIDI 24..107), with the metrical features of its grid.
`VoiceWindows` draws fixed-length windows of any meter from a list of them: every window starts on
a bar line (or ends with the piece, so that final cadences are seen), its metrical features come
from the piece's own bars, and training windows are transposed at random (all voices together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.core.chord_channels import N_CHORD_FEATURES, transpose_chord_channels
from studio.core.conditioning import REST, context_features, meter_features, pitch_class_profile, transpose_tokens
from studio.core.roll import MODEL_PITCH_HIGH, MODEL_PITCH_LOW

__all__ = ["RESTING_SHARE", "VoiceBatch", "VoicePiece", "VoiceWindows", "rest_costs_under", "rests_under_melody", "voice_piece"]

# Above this share of the melody's sounding steps with a lower voice resting, a genre's voices rest under its
# tunes (Palestrina and the quartets: 13-23% per voice; Bach's chorale voices: 0.1%).
RESTING_SHARE = 0.02


@dataclass
class VoicePiece:
    """One piece as voices: `tokens` and `onsets` shape=(V, T) (voice 0 = melody), `meter` (T, F),
    the melody's key `profile` (12,), and, for a chord-conditioned model, its `chords` channels
    (T, 25) (`studio.core.chord_channels`; None: the windows carry no chords)."""

    id: str
    tokens: np.ndarray
    onsets: np.ndarray
    meter: np.ndarray
    bar_starts: np.ndarray
    profile: np.ndarray | None = None
    chords: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.profile is None:
            self.profile = pitch_class_profile(self.tokens[0])

    @property
    def n_steps(self) -> int:
        return self.tokens.shape[1]


def voice_piece(piece, tracks: Sequence[int] | None = None) -> VoicePiece:
    """A `studio.training.data.Piece` as voices: each of `tracks` (default: all; the melody, track 0, first)
    one voice (where notes overlap, as in a chord, the highest sounds), pitches folded by octaves
    into 24..107."""
    chosen = list(range(piece.n_tracks)) if tracks is None else list(tracks)
    voice_of = {t: v for v, t in enumerate(chosen)}
    n_voices, n_steps = len(chosen), piece.n_steps
    tokens = np.zeros((n_voices, n_steps), np.int64)
    onsets = np.zeros((n_voices, n_steps), bool)
    notes = piece.notes[np.argsort(piece.notes[:, 3], kind="stable")]  # low to high: the highest paints last
    for track, start, end, pitch, _velocity in notes.tolist():
        if track not in voice_of:
            continue
        track = voice_of[track]
        end = min(end, n_steps)
        if end <= start:
            continue
        while pitch < MODEL_PITCH_LOW:
            pitch += 12
        while pitch > MODEL_PITCH_HIGH:
            pitch -= 12
        tokens[track, start:end] = pitch - MODEL_PITCH_LOW + 1
        onsets[track, start] = True
        onsets[track, start + 1 : end] = False
    bar_starts = np.array([b.start for b in piece.grid.bars if b.start < n_steps], np.int64)
    return VoicePiece(piece.id, tokens, onsets, meter_features(piece.grid), bar_starts)


@dataclass
class VoiceBatch:
    """A batch of windows: `tokens`, `onsets` (B, V, L); `context` (B, L, 24): meter and the melody's
    key profile (`studio.core.conditioning.context_features`); `origin` (B, 3) rows of piece index, start
    step and semitone shift; `chords` (B, L, 25) the chord channels, transposed with the window (None
    when the pieces carry none)."""

    tokens: np.ndarray
    onsets: np.ndarray
    context: np.ndarray
    origin: np.ndarray
    chords: np.ndarray | None = None


class VoiceWindows:
    """Windows of `length` steps from `pieces`, drawn at random (training) or all in order (evaluation).

    Parameters
    ----------
    pieces : sequence of VoicePiece
        All with the same number of voices.
    length : int
        Steps per window (64 = four 4/4 bars, five and a third 3/4 bars).
    transpose : (low, high) or None
        Inclusive range of random semitone shifts per window (training augmentation).
    """

    def __init__(self, pieces: Sequence[VoicePiece], length: int = 64, transpose: tuple[int, int] | None = None) -> None:
        self.pieces = list(pieces)
        self.length = length
        self.transpose = transpose
        rows = []
        for i, piece in enumerate(self.pieces):
            if piece.n_steps < length:
                continue
            starts = [int(s) for s in piece.bar_starts if s + length <= piece.n_steps]
            if piece.n_steps - length not in starts:
                starts.append(piece.n_steps - length)  # the final cadence
            for start in starts:
                if (piece.tokens[0, start : start + length] != REST).any():
                    rows.append((i, start))
        self.index = np.array(rows, np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: np.ndarray, rng: np.random.Generator | None = None) -> VoiceBatch:
        """The windows at `rows` of `self.index`, transposed at random when the set has a range."""
        rows = np.asarray(rows, np.int64)
        n, length = len(rows), self.length
        n_voices = self.pieces[0].tokens.shape[0]
        tokens = np.zeros((n, n_voices, length), np.int64)
        onsets = np.zeros((n, n_voices, length), bool)
        context = np.zeros((n, length, self.pieces[0].meter.shape[1] + 12), np.float32)
        origin = np.zeros((n, 3), np.int64)
        with_chords = self.pieces[0].chords is not None
        chords = np.zeros((n, length, N_CHORD_FEATURES), np.float32) if with_chords else None
        shifts = np.zeros(n, np.int64)
        if self.transpose is not None:
            low, high = self.transpose
            shifts = (rng or np.random.default_rng()).integers(low, high + 1, size=n)
        for j, row in enumerate(rows.tolist()):
            piece_i, start = self.index[row].tolist()
            piece = self.pieces[piece_i]
            tokens[j] = piece.tokens[:, start : start + length]
            onsets[j] = piece.onsets[:, start : start + length]
            context[j] = context_features(piece.meter[start : start + length], np.roll(piece.profile, shifts[j]))
            origin[j] = (piece_i, start, shifts[j])
            if chords is not None:
                chords[j] = piece.chords[start : start + length]
        if self.transpose is not None:
            tokens = transpose_tokens(tokens, shifts)
            if chords is not None:
                chords = transpose_chord_channels(chords, shifts)
        return VoiceBatch(tokens, onsets, context, origin, chords)

    def sample(self, batch_size: int, rng: np.random.Generator) -> VoiceBatch:
        """A random batch (with replacement across calls, without within one)."""
        rows = rng.choice(len(self.index), size=min(batch_size, len(self.index)), replace=False)
        return self.batch(rows, rng)


def rests_under_melody(pieces: Sequence[VoicePiece]) -> float:
    """The share of the steps where the melody sounds at which a lower voice rests, over `pieces`
    (every lower voice pooled): a chorale's voices sing wherever its tune does, a motet's and a
    quartet's take rests under it."""
    resting = sounding = 0
    for piece in pieces:
        sings = piece.tokens[0] != REST
        resting += int(((piece.tokens[1:] == REST) & sings[None, :]).sum())
        sounding += int(sings.sum()) * (len(piece.tokens) - 1)
    return resting / sounding if sounding else 0.0


def rest_costs_under(melody: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """Each lower voice's cost against a rest (`costs`, one per voice) at the steps where `melody` (T,)
    tokens sound, 0 where it rests: shape (len(costs), T) float32."""
    rows = np.zeros((len(costs), len(melody)), np.float32)
    rows[:, melody != REST] = np.asarray(costs, np.float32)[:, None]
    return rows

"""Where a voice strikes a held pitch again, as the genre's own music does (issue 21: repeated notes).

A voice model that writes one pitch per step (the AR-CNN) cannot tell a note held over a beat from
the same pitch struck again: its output holds every repeated pitch as one long note. Real inner
voices re-strike: in Bach's chorales an alto, tenor or bass that keeps its pitch where the melody
starts a note on a beat strikes it again about three times in four, and almost never elsewhere
(the 295 training chorales, as `arcnn-chorale`'s card holds them: 0.768 on a beat, 0.006 off it,
0.015 where the melody holds on a beat, 0.0002 off it). Without them the AR-CNN's voices re-struck
in 7% of their moves against Bach's 15%, and their notes were too long (docs/models/arcnn-chorale.md).

`restrike_odds` reads that table from a genre's training pieces (it is stored in the model's card,
like its voice ranges); `draw_restrikes` draws a take's re-strikes from it with the take's seed. A
model that holds a pitch where the real voices move more often than they do would then repeat notes
too often: `bench/restrikes.py --scale` scales the card's table so that its repeated-note share on
training pieces is the real one's (arcnn-chorale's by 0.5).

A model that writes its own note starts (the GAN) can strike held pitches again too often instead:
gan-renaissance did so in 21% of its voices' moves against Palestrina's 11%. `keep_shares` compares
its rate in each situation, measured on training melodies, with the genre's, and `thin_restrikes`
keeps each of its re-strikes with that share (at most 1: a model that strikes too seldom is left as
it is), so that the held pitch sounds on as one note (`bench/restrikes.py` measures and writes them).
The four situations of a held pitch (a voice sounding the same pitch as at the step before):

0. the melody starts a note there, on a beat;  1. the melody starts a note there, off the beat;
2. the melody holds (or rests), on a beat;     3. the melody holds, off the beat.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from studio.core.conditioning import REST

__all__ = [
    "RESTRIKE_STREAM",
    "SITUATIONS",
    "draw_restrikes",
    "held_situations",
    "keep_shares",
    "restrike_odds",
    "situation_counts",
    "thin_for_seed",
    "thin_restrikes",
    "voice_situation_counts",
]

RESTRIKE_STREAM = 2  # a take's thinning draws from numpy's generator seeded by (the take's seed, this)
SITUATIONS = ("melody starts, on a beat", "melody starts, off the beat", "melody holds, on a beat", "melody holds, off the beat")


def held_situations(tokens: np.ndarray, melody_starts: np.ndarray, on_beat: np.ndarray) -> np.ndarray:
    """For voices (V, T) of tokens (row 0 the melody): at each step where an accompanying voice
    sounds the pitch it sounded at the step before, the situation's index (0-3, `SITUATIONS`);
    -1 elsewhere (a new pitch, a rest, the first step, the melody's own row)."""
    tokens = np.asarray(tokens)
    out = np.full(tokens.shape, -1, np.int64)
    if tokens.shape[1] < 2:
        return out
    held = np.zeros(tokens.shape, bool)
    held[1:, 1:] = (tokens[1:, 1:] == tokens[1:, :-1]) & (tokens[1:, 1:] != REST)
    kind = np.where(np.asarray(melody_starts, bool), 0, 2) + np.where(np.asarray(on_beat, bool), 0, 1)
    out[held] = np.broadcast_to(kind, tokens.shape)[held]
    return out


def situation_counts(tokens: np.ndarray, onsets: np.ndarray, on_beat: np.ndarray) -> np.ndarray:
    """Shape (2, 4): per situation, the held pitches struck again (row 0) and all held pitches (row 1)
    of voices `tokens` and their note starts `onsets` (V, T), the melody first, beats `on_beat` (T,)."""
    tokens, onsets = np.asarray(tokens), np.asarray(onsets, bool)
    situation = held_situations(tokens, onsets[0] & (tokens[0] != REST), on_beat)
    return np.array([[(onsets & (situation == k)).sum() for k in range(4)], [(situation == k).sum() for k in range(4)]], float)


def voice_situation_counts(tokens: np.ndarray, onsets: np.ndarray, on_beat: np.ndarray) -> np.ndarray:
    """`situation_counts` of each accompanying voice apart, shape (V - 1, 2, 4)."""
    tokens, onsets = np.asarray(tokens), np.asarray(onsets, bool)
    return np.array([situation_counts(tokens[[0, v]], onsets[[0, v]], on_beat) for v in range(1, tokens.shape[0])]).reshape(-1, 2, 4)


def restrike_odds(pieces: Iterable[object], per_voice: bool = False) -> tuple[float, ...]:
    """The share of held pitches struck again in each situation, over `pieces` (each with `tokens`
    and `onsets` (V, T), the melody first, and `meter` (T, F) whose column 1 marks the beats, as
    `studio.core.voices.VoicePiece`); 0 for a situation that never occurs. `per_voice`: each
    accompanying voice's own four, one after the other (Bach's alto repeats a note in 22% of its
    moves, his bass in 2%)."""
    if not per_voice:
        struck, seen = sum((situation_counts(p.tokens, p.onsets, np.asarray(p.meter)[:, 1] > 0) for p in pieces), np.zeros((2, 4)))
        return tuple(round(float(s / n), 4) if n else 0.0 for s, n in zip(struck, seen, strict=True))
    total = sum(voice_situation_counts(p.tokens, p.onsets, np.asarray(p.meter)[:, 1] > 0) for p in pieces)
    return tuple(round(float(s / n), 4) if n else 0.0 for s, n in zip(np.ravel(total[:, 0]), np.ravel(total[:, 1]), strict=True))


def draw_restrikes(
    tokens: np.ndarray, melody_starts: np.ndarray, on_beat: np.ndarray, odds: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Re-strikes (V, T) bool for the voices `tokens` (row 0, the melody, never): each held pitch is
    struck again with the probability `odds` gives its situation (`restrike_odds`: four for every
    voice, or four per accompanying voice). No odds (an empty tuple): none, as before the card had them."""
    out = np.zeros(np.shape(tokens), bool)
    voices = out.shape[0] - 1
    if len(odds) not in (4, 4 * voices) or voices < 1:
        return out
    situation = held_situations(tokens, melody_starts, on_beat)
    table = np.asarray(odds, float).reshape(-1, 4)
    rows = np.zeros((out.shape[0], 4))
    rows[1:] = table if len(table) == voices else table[0]
    chance = np.where(situation >= 0, np.take_along_axis(rows, np.maximum(situation, 0), axis=1), 0.0)
    return rng.random(chance.shape) < chance


def keep_shares(genre_odds: tuple[float, ...], model_odds: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Per situation, the share of a model's re-strikes to keep so that its rate becomes the genre's:
    the genre's rate over the model's, at most 1 (1 where the model never strikes there)."""
    return tuple(round(min(1.0, g / m), 4) if m > 0 else 1.0 for g, m in zip(genre_odds, model_odds, strict=True))  # type: ignore[return-value]


def thin_restrikes(
    tokens: np.ndarray,
    onsets: np.ndarray,
    melody_tokens: np.ndarray,
    melody_starts: np.ndarray,
    on_beat: np.ndarray,
    keep: tuple[float, ...],
    rng: np.random.Generator,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """The accompanying voices' note starts `onsets` (V, T; `tokens` their pitches) with each start
    of a held pitch kept with the share `keep` gives its situation (`keep_shares`), else dropped (the
    pitch sounds on as one note); only inside `where` (V, T) when given. No shares: unchanged."""
    onsets = np.asarray(onsets, bool)
    if len(keep) != 4:
        return onsets
    situation = held_situations(np.vstack([np.asarray(melody_tokens)[None], tokens]), melody_starts, on_beat)[1:]
    kept = np.where(situation >= 0, np.asarray(keep, float)[np.maximum(situation, 0)], 1.0)
    drop = onsets & (situation >= 0) & (rng.random(kept.shape) >= kept)
    if where is not None:
        drop &= np.asarray(where, bool)
    return onsets & ~drop


def thin_for_seed(
    tokens: np.ndarray,
    onsets: np.ndarray,
    melody_tokens: np.ndarray,
    melody_onsets: np.ndarray,
    on_beat: np.ndarray,
    keep: tuple[float, ...],
    seed: int,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """`thin_restrikes` for a take: the melody's note starts read from its tokens and onsets (T,), the
    draws from the take's `seed` alone (so batching or the device changes nothing). No shares: unchanged."""
    if not keep:
        return np.asarray(onsets, bool)
    starts = np.asarray(melody_onsets, bool) & (np.asarray(melody_tokens) != REST)
    rng = np.random.default_rng([int(seed), RESTRIKE_STREAM])
    return thin_restrikes(tokens, onsets, melody_tokens, starts, on_beat, keep, rng, where)

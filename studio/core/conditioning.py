"""What a conditional model sees of a melody: voice tokens, onsets, pitch classes and the meter.

Pure functions on the studio's grid (16th-note steps), shared by the learned accompanists (GAN,
diffusion, AR-CNN) and their training data, so that a model sees a user's melody exactly as it saw
its training melodies.

- A *voice* is one line, one note at a time: per step a token, 0 = rest or 1..84 = MIDI pitch
  24..107 (`token = pitch - 23`), and an onset flag where a note starts (so repeated notes stay
  apart). Shape conventions: tokens (T,), onsets (T,), or (V, T) for V voices.
- A voice can also be written as *events*, one per step, as Magenta's melody models do: 0 = rest
  (silence begins), 1 = hold (what sounds, a note or silence, goes on), 2..85 = a note starts (MIDI
  24..107). A generator that writes events decides once per note or rest, not once per step, so
  its notes and rests do not fall apart.
- The *key profile* is the melody's pitch-class distribution over the whole piece (12 numbers), so a
  model knows the key even where the melody rests; with the metrical features it makes the
  per-step *context* (`context_features`).
- *Metrical features* say where each step lies in its bar and beat, from the grid's own bars, so one
  model serves 4/4, 3/4, 6/8, 5/4, pickups and meter changes alike (no fixed bar length is assumed).
"""

from __future__ import annotations

import numpy as np

from studio.core.roll import MODEL_PITCH_LOW, N_MODEL_PITCHES, Grid, RollTrack

__all__ = [
    "HOLD",
    "N_CONTEXT_FEATURES",
    "N_EVENTS",
    "N_MELODY_FEATURES",
    "N_METER_FEATURES",
    "N_TOKENS",
    "REST",
    "context_features",
    "events_to_tokens",
    "melody_end",
    "melody_features",
    "meter_features",
    "pitch_class_profile",
    "pitches_to_tokens",
    "token_odds_by_pitch",
    "tokens_to_events",
    "tokens_to_pitches",
    "tokens_to_track",
    "track_to_tokens",
    "transpose_tokens",
]

REST = 0
N_TOKENS = N_MODEL_PITCHES + 1  # rest + 84 pitches
HOLD = 1
N_EVENTS = N_TOKENS + 1  # rest, hold, 84 note starts
N_METER_FEATURES = 12
N_CONTEXT_FEATURES = N_METER_FEATURES + 12  # meter + the melody's key profile
N_MELODY_FEATURES = N_TOKENS + 1 + 12  # one-hot token, onset, pitch class


def meter_features(grid: Grid) -> np.ndarray:
    """Where each step lies in the music, shape=(T, 12) float32.

    Columns: downbeat, beat start, eighth-note start, half-bar start (duple bars), position in the
    bar (sin, cos), position in the beat (sin, cos), position in a 4-bar phrase (sin, cos), last
    bar, next-to-last bar. A pickup bar counts from the end of its bar, as it is heard.

    Computed for all steps at once (one pass of numpy per column rather than per bar: a request's
    conditioning costs less than its share of a batched forward pass).
    """
    n = grid.n_steps
    out = np.zeros((n, N_METER_FEATURES), np.float32)
    bars = grid.bars
    if not bars:
        return out
    index = np.arange(len(bars))
    starts = np.array([b.start for b in bars], np.int64)
    lengths = np.maximum(np.minimum(np.array([b.end for b in bars], np.int64), n) - starts, 0)
    full = np.array([b.full_length for b in bars], np.int64)
    beat = np.array([b.beat_steps for b in bars], np.int64)
    offset = np.where((index == 0) & (np.array([b.length for b in bars]) < full), full - np.array([b.length for b in bars]), 0)
    bar = np.repeat(index, lengths)  # the bar of each step that lies in a bar
    steps = starts[bar] + np.arange(len(bar)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = steps - starts[bar] + offset[bar]  # step within the full bar (pickups end on a downbeat)
    full, beat = full[bar], beat[bar]
    out[steps, 0] = pos == 0
    out[steps, 1] = pos % beat == 0
    out[steps, 2] = pos % 2 == 0
    out[steps, 3] = (pos * 2 == full) & (full % (2 * beat) == 0)
    angle = 2 * np.pi * pos / full
    out[steps, 4], out[steps, 5] = np.sin(angle), np.cos(angle)
    angle = 2 * np.pi * (pos % beat) / beat
    out[steps, 6], out[steps, 7] = np.sin(angle), np.cos(angle)
    phrase = 2 * np.pi * ((bar % 4) + pos / full) / 4
    out[steps, 8], out[steps, 9] = np.sin(phrase), np.cos(phrase)
    last = len(bars) - 1
    out[steps, 10] = bar == last
    out[steps, 11] = bar == last - 1
    return out


def track_to_tokens(track: RollTrack) -> tuple[np.ndarray, np.ndarray]:
    """A roll track as one voice: tokens (T,) int64 (highest sounding pitch, folded into 24..107 by
    octaves) and onsets (T,) bool (a note starts: marked onset, new pitch, or after a rest)."""
    sounding = track.velocity > 0  # (T, 128)
    any_sound = sounding.any(axis=1)
    top = np.where(any_sound, 127 - np.argmax(sounding[:, ::-1], axis=1), 0)
    pitch = top.copy()
    low, high = MODEL_PITCH_LOW, MODEL_PITCH_LOW + N_MODEL_PITCHES - 1
    below, above = pitch < low, pitch > high
    pitch[below] += 12 * ((low - pitch[below] + 11) // 12)
    pitch[above] -= 12 * ((pitch[above] - high + 11) // 12)
    tokens = np.where(any_sound, pitch - MODEL_PITCH_LOW + 1, REST).astype(np.int64)
    marked = track.onset[np.arange(track.n_steps), np.clip(top, 0, 127)] & any_sound
    changed = np.ones_like(any_sound)
    changed[1:] = tokens[1:] != tokens[:-1]
    onsets = any_sound & (marked | changed)
    return tokens, onsets


def tokens_to_track(tokens: np.ndarray, onsets: np.ndarray, name: str, program: int, velocity: int = 80) -> RollTrack:
    """One voice (tokens (T,), onsets (T,)) as a `RollTrack`; a new pitch or a sound after a rest
    always starts a note, whatever `onsets` says."""
    tokens = np.asarray(tokens, np.int64)
    n = len(tokens)
    track = RollTrack.empty(name, program, n)
    steps = np.flatnonzero(tokens != REST)
    if not len(steps):
        return track
    pitches = tokens[steps] + MODEL_PITCH_LOW - 1
    track.velocity[steps, pitches] = velocity
    previous = np.concatenate([[REST], tokens[:-1]])
    starts = (tokens != previous) | np.asarray(onsets, bool)
    starts &= tokens != REST
    track.onset[np.flatnonzero(starts), tokens[starts] + MODEL_PITCH_LOW - 1] = True
    return track


def melody_features(tokens: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """A melody voice as model input, shape=(T, 98) float32: one-hot token (85, rest first), onset
    (1), and its pitch class (12, zero during rests)."""
    tokens = np.asarray(tokens, np.int64)
    n = len(tokens)
    out = np.zeros((n, N_MELODY_FEATURES), np.float32)
    out[np.arange(n), tokens] = 1.0
    out[:, N_TOKENS] = onsets
    sounding = tokens != REST
    pcs = (tokens[sounding] + MODEL_PITCH_LOW - 1) % 12
    out[np.flatnonzero(sounding), N_TOKENS + 1 + pcs] = 1.0
    return out


def transpose_tokens(tokens: np.ndarray, semitones: int | np.ndarray) -> np.ndarray:
    """Tokens moved by `semitones` (a number, or one per row for a (B, ...) array); pitches that
    leave 24..107 move by octaves back into it; rests stay rests."""
    tokens = np.asarray(tokens, np.int64)
    shift = np.asarray(semitones, np.int64)
    if shift.ndim:
        shift = shift.reshape(shift.shape + (1,) * (tokens.ndim - shift.ndim))
    moved = tokens + shift
    low, high = 1, N_MODEL_PITCHES
    moved = np.where(moved < low, moved + 12 * ((low - moved + 11) // 12), moved)
    moved = np.where(moved > high, moved - 12 * ((moved - high + 11) // 12), moved)
    return np.where(tokens == REST, REST, moved)


def tokens_to_events(tokens: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Voice tokens and onsets (..., T) as events (..., T): a note start (2..85) where a note begins,
    a rest (0) where silence begins, and hold (1) wherever what sounds (a note or silence) goes on.
    A silent passage is one decision, like a note, so a voice can drop out for bars at a time."""
    tokens = np.asarray(tokens, np.int64)
    silent = tokens == REST
    starts = np.asarray(onsets, bool) & ~silent
    starts[..., 0] |= ~silent[..., 0]
    starts[..., 1:] |= (tokens[..., 1:] != tokens[..., :-1]) & ~silent[..., 1:]
    rest_starts = silent.copy()
    rest_starts[..., 1:] &= ~silent[..., :-1]
    return np.where(starts, tokens + 1, np.where(rest_starts, REST, HOLD))


def melody_end(tokens: np.ndarray) -> int:
    """The step after the melody's last sounding step (the whole length for a silent melody)."""
    sounding = np.flatnonzero(np.asarray(tokens) != REST)
    return int(sounding[-1]) + 1 if len(sounding) else len(tokens)


def events_to_tokens(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events (T,) as voice tokens (T,) and onsets (T,): a hold continues the sounding note (after a
    rest, or at the start, it is silence)."""
    events = np.asarray(events, np.int64)
    steps = np.arange(len(events))
    last_set = np.maximum.accumulate(np.where(events != HOLD, steps, -1))
    value = np.where(events >= 2, events - 1, REST)  # what each rest or start sets
    tokens = np.where(last_set >= 0, value[np.maximum(last_set, 0)], REST)
    return tokens, events >= 2


def tokens_to_pitches(tokens: np.ndarray) -> np.ndarray:
    """Voice tokens (...,) as MIDI pitches (...,), -1 for a rest."""
    tokens = np.asarray(tokens, np.int64)
    return np.where(tokens == REST, -1, tokens + MODEL_PITCH_LOW - 1)


def pitches_to_tokens(pitches: np.ndarray) -> np.ndarray:
    """MIDI pitches (...,) (-1 = rest, every other one inside the model's 24..107) as voice tokens."""
    pitches = np.asarray(pitches, np.int64)
    return np.where(pitches < 0, REST, pitches - MODEL_PITCH_LOW + 1)


def token_odds_by_pitch(log_odds: np.ndarray) -> np.ndarray:
    """Log-odds over the tokens (..., 85) as log-odds over MIDI pitches 0..127 and the rest (..., 129),
    the rest last (`studio.core.part_writing`'s columns); pitches the model cannot write are -inf."""
    log_odds = np.asarray(log_odds, np.float64)
    out = np.full((*log_odds.shape[:-1], 129), -np.inf)
    out[..., MODEL_PITCH_LOW : MODEL_PITCH_LOW + N_MODEL_PITCHES] = log_odds[..., REST + 1 :]
    out[..., 128] = log_odds[..., REST]
    return out


def pitch_class_profile(tokens: np.ndarray) -> np.ndarray:
    """Share of the melody's sounding steps on each pitch class, shape=(12,) float32 (C first;
    zeros when the melody is silent)."""
    tokens = np.asarray(tokens, np.int64)
    sounding = tokens[tokens != REST]
    hist = np.bincount((sounding + MODEL_PITCH_LOW - 1) % 12, minlength=12).astype(np.float32)
    total = hist.sum()
    return hist / total if total else hist


def context_features(meter: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Per-step context, shape=(T, 24) float32: metrical features (T, 12) and the key profile (12,)
    repeated at every step."""
    meter = np.asarray(meter, np.float32)
    return np.concatenate([meter, np.broadcast_to(np.asarray(profile, np.float32), (len(meter), 12))], axis=1)

"""VAE: variations of a melody and paths between two melodies (in the spirit of Magenta's MusicVAE).

The idea a class should take away: an *encoder* squeezes two bars of melody into a short list of
numbers, a point in a *latent space*, and a *decoder* turns any point back into two bars. Training
asks for two things at once: the decoder must give back the melody it was given (reconstruction),
and the points must stay spread like a plain bell curve (the KL term), so that the space has no
holes: points near a melody's point decode to melodies like it, and the straight road between two
melodies' points passes through melodies in between.

Representation (one melody line on the studio's 16th-note grid), one token per 16th step:
    REST (nothing sounds), HOLD (the note before goes on), or one of the 84 pitches 24..107 (a
    note starts). A *window* is two bars (one bar where two would not fit in 32 steps: 6/4, 3/2,
    12/8; longer bars are cut into equal pieces of at most 32 steps). Every step also carries its
    place in the meter (16ths since the bar line, the bar's length, beat and downbeat marks), so
    the same network reads 4/4, 3/4, 6/8 and pickups; and every window carries the key context
    of its whole tune (its duration-weighted pitch-class profile), so variations keep the key.

Network: a bidirectional GRU encoder reads a window into the mean and spread (mu, sigma) of a
64-number code z; a GRU decoder writes the window back one step at a time from z (teacher forcing
in training, greedy in use). Loss (Kingma & Welling 2014; Roberts et al. 2018, "A Hierarchical
Latent Vector Model for Learning Long-Term Structure in Music"): cross-entropy of the window's
tokens + beta * max(KL(q(z|x) || N(0, I)) - free_bits, 0), beta ramped up from 0, so the code is
used (free bits) and yet stays close to the bell curve.

Uses:
1. Variations (`generate`): each window of the user's melody (any length, meter, pickup) is
   encoded; z' = mu + how_far * sigma * noise (seeded), decoded; the windows together are the new
   melody (role "melody": it replaces the input's). how_far 0 gives the melody back as the VAE
   remembers it.
2. Interpolation (`interpolate`): the first two full bars of two melodies are encoded, and the
   codes on the great circle between them (slerp) are decoded, `steps` windows played one after
   the other: the first decodes the first melody, the last the second.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.base import MELODY_TRACKS, ConfigMixin, FamilyInfo, TrainingRecipe, check_cancelled, configured
from models.weights import loaded
from studio.core.errors import InputError
from studio.core.roll import MODEL_PITCH_HIGH, MODEL_PITCH_LOW, N_MODEL_PITCHES, Bar, Grid, RollTrack, track_notes

__all__ = [
    "Interpolation",
    "MelodyVAE",
    "Segment",
    "VAEConfig",
    "VAETraining",
    "Varier",
    "Windows",
    "key_profile",
    "load",
    "melody_tokens",
    "step_features",
    "tokens_to_notes",
    "window_spans",
]

FAMILY = FamilyInfo(
    name="vae",
    label="VAE",
    heading="How a VAE works",
    idea=("A latent space of variations: melodies become points in a space, and nearby points are similar melodies."),
    writes="variation",
    uses_torch=True,
    order=4,
    dataset="melodies",  # learns from tunes (`studio.training.melodies`), not from multi-track rolls
)

# --------------------------------------------------------------------------- one token per 16th step

PAD, REST, HOLD = 0, 1, 2  # PAD: past the window's end (never written)
PITCH0 = 3  # PITCH0 + (pitch - 24): a note of that pitch starts here
VOCAB = PITCH0 + N_MODEL_PITCHES  # 87 tokens the decoder writes
START = VOCAB  # the decoder's first input (and what token dropout puts in)
MAX_POS = 64  # positions in a bar are clamped to this (bars of 16 quarter notes)


def token_name(token: int) -> str:
    """A readable name for a token (for pictures and debugging)."""
    if token in (PAD, REST, HOLD):
        return ("PAD", "REST", "HOLD")[token]
    if token == START:
        return "START"
    return f"PITCH_{token - PITCH0 + MODEL_PITCH_LOW}"


def melody_tokens(notes: Sequence[tuple[int, int, int]], n_steps: int) -> np.ndarray:
    """A token per step, shape=(n_steps,), of a melody given as (start, end, pitch) in steps. One
    line: a note ends where the next one starts; of notes starting together the top one is kept;
    pitches outside 24..107 are moved by octaves."""
    by_start: dict[int, tuple[int, int]] = {}
    for start, end, pitch in notes:
        if 0 <= start < n_steps and (start not in by_start or pitch > by_start[start][1]):
            by_start[start] = (end, pitch)
    tokens = np.full(n_steps, REST, np.int64)
    starts = sorted(by_start)
    for i, start in enumerate(starts):
        end, pitch = by_start[start]
        while pitch < MODEL_PITCH_LOW:
            pitch += 12
        while pitch > MODEL_PITCH_HIGH:
            pitch -= 12
        stop = min(end, n_steps, starts[i + 1] if i + 1 < len(starts) else n_steps)
        tokens[start] = PITCH0 + pitch - MODEL_PITCH_LOW
        tokens[start + 1 : stop] = HOLD
    return tokens


def tokens_to_notes(
    tokens: Sequence[int] | np.ndarray, offset: int = 0, sounding: tuple[int, int] | None = None
) -> list[tuple[int, int, int]]:
    """(start, end, pitch) of the notes in `tokens` (step i is step `offset + i`). A HOLD goes on
    with the note sounding before it; a HOLD after a rest, or first with nothing `sounding` (a
    note (start, pitch) running into the tokens), is silence. PAD ends a note, as REST does."""
    notes: list[tuple[int, int, int]] = []
    current = sounding  # (start, pitch) of the note sounding now
    for i, t in enumerate(int(x) for x in tokens):
        step = offset + i
        if t == HOLD and current is not None:
            continue
        if current is not None:
            notes.append((current[0], step, current[1]))
            current = None
        if t >= PITCH0:
            current = (step, t - PITCH0 + MODEL_PITCH_LOW)
    if current is not None:
        notes.append((current[0], offset + len(tokens), current[1]))
    return notes


def key_profile(tokens: np.ndarray) -> np.ndarray:
    """Duration-weighted pitch-class profile of a melody's tokens, shape=(12,), summing to 1
    (zeros for silence): the key context every window of the tune is read with."""
    profile = np.zeros(12, np.float64)
    pitch = None
    for t in tokens.tolist():
        if t >= PITCH0:
            pitch = (t - PITCH0 + MODEL_PITCH_LOW) % 12
        elif t != HOLD:
            pitch = None
        if pitch is not None:
            profile[pitch] += 1
    total = profile.sum()
    return (profile / total if total else profile).astype(np.float32)


def step_features(grid: Grid) -> np.ndarray:
    """The meter at every step, shape=(3, T) int: 16ths since the bar line (a pickup counts from
    where its full bar would start), the bar's full length in 16ths, and 2 on a downbeat, 1 on
    another beat, 0 elsewhere. Steps past the last bar continue its meter."""
    n = grid.n_steps
    out = np.zeros((3, n), np.int64)
    bars = list(grid.bars)
    for i, bar in enumerate(bars):
        shift = bar.full_length - bar.length if i == 0 and bar.length < bar.full_length else 0
        last = i + 1 == len(bars)
        steps = np.arange(min(bar.start, n), n if last else min(bars[i + 1].start, n))
        pos = steps - bar.start + shift
        if last:
            pos = pos % bar.full_length  # steps after the last bar: further bars of its meter
        out[0, steps] = np.minimum(pos, MAX_POS - 1)
        out[1, steps] = min(bar.full_length, MAX_POS)
        out[2, steps] = np.where(pos % bar.full_length == 0, 2, np.where(pos % bar.beat_steps == 0, 1, 0))
    return out


def window_spans(bars: Sequence[Bar], max_steps: int = 32, per_window: int = 2, every_bar: bool = False) -> list[tuple[int, int]]:
    """(start, end) steps of the windows over `bars`: `per_window` consecutive bars while they fit
    in `max_steps` (else one), a bar longer than `max_steps` cut into equal pieces. Generation
    walks the bars window after window (`every_bar` False); training reads a window from every bar
    line (`every_bar` True), so windows overlap."""
    pieces: list[tuple[int, int, bool]] = []  # (start, end, whole bar)
    for bar in bars:
        if bar.length <= max_steps:
            pieces.append((bar.start, bar.end, True))
        else:
            k = math.ceil(bar.length / max_steps)
            cuts = np.linspace(bar.start, bar.end, k + 1).round().astype(int).tolist()
            pieces += [(a, b, False) for a, b in itertools.pairwise(cuts)]
    spans = []
    i = 0
    while i < len(pieces):
        start, end, whole = pieces[i]
        j = i + 1
        while whole and j < len(pieces) and j - i < per_window and pieces[j][2] and pieces[j][1] - start <= max_steps:
            end = pieces[j][1]
            j += 1
        spans.append((start, end))
        i = i + 1 if every_bar else j
    return spans


# --------------------------------------------------------------------------- windows as arrays


@dataclass
class Windows:
    """A batch of windows as arrays: `tokens`, `pos`, `bar_len`, `beat` shape=(N, L) (PAD and 0
    past each window's `length`), `length` shape=(N,), key `context` shape=(N, 12)."""

    tokens: np.ndarray
    pos: np.ndarray
    bar_len: np.ndarray
    beat: np.ndarray
    length: np.ndarray
    context: np.ndarray

    def __len__(self) -> int:
        return len(self.length)

    @classmethod
    def cut(cls, tokens: np.ndarray, features: np.ndarray, context: np.ndarray, spans: Sequence[tuple[int, int]], width: int) -> Windows:
        """The windows `spans` of one tune (its tokens, `step_features` and key context)."""
        n = len(spans)
        out = cls(
            np.full((n, width), PAD, np.int64),
            np.zeros((n, width), np.int64),
            np.zeros((n, width), np.int64),
            np.zeros((n, width), np.int64),
            np.zeros(n, np.int64),
            np.repeat(context[None].astype(np.float32), n, 0),
        )
        for i, (a, b) in enumerate(spans):
            k = b - a
            out.tokens[i, :k] = tokens[a:b]
            out.pos[i, :k], out.bar_len[i, :k], out.beat[i, :k] = features[0, a:b], features[1, a:b], features[2, a:b]
            out.length[i] = k
        return out

    @classmethod
    def join(cls, parts: Sequence[Windows]) -> Windows:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def take(self, index: np.ndarray | slice) -> Windows:
        return Windows(*(getattr(self, f.name)[index] for f in fields(self)))

    def tensors(self, device: str) -> dict[str, torch.Tensor]:
        return {f.name: torch.as_tensor(getattr(self, f.name), device=device) for f in fields(self)}


# --------------------------------------------------------------------------- the network


@dataclass
class VAEConfig(ConfigMixin):
    """Architecture and training settings (the card's ``config``)."""

    max_steps: int = 32  # a window: at most 32 16ths (two bars of 4/4)
    bars: int = 2  # bars per window where they fit
    z_dim: int = 64  # numbers in a code
    embed: int = 96  # token and meter embeddings
    enc_hidden: int = 128  # each direction of the encoder's GRU
    dec_hidden: int = 384
    dec_layers: int = 1
    token_dropout: float = 0.1  # training: share of the decoder's inputs hidden (START), so it leans on z
    # training
    batch_size: int = 64
    lr: float = 2e-3
    lr_decay: float = 0.9997  # per step, down to lr_min
    lr_min: float = 2e-4
    beta: float = 0.05  # weight of the KL term once ramped up
    beta_steps: int = 1500  # steps over which beta ramps up from 0
    free_bits: float = 96.0  # nats of KL per window that cost nothing
    bf16: bool = True  # train under bfloat16 autocast where the hardware has it (2x faster on AVX512-BF16 CPUs); use is fp32


class MeterEmbedding(nn.Module):
    """Where a step sits in the meter, as a vector: position in the bar + bar length + beat mark."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pos = nn.Embedding(MAX_POS, dim)
        self.bar_len = nn.Embedding(MAX_POS + 1, dim)
        self.beat = nn.Embedding(3, dim)

    def forward(self, pos: torch.Tensor, bar_len: torch.Tensor, beat: torch.Tensor) -> torch.Tensor:
        return self.pos(pos) + self.bar_len(bar_len) + self.beat(beat)  # (B, L, dim)


class MelodyVAE(nn.Module):
    """Encoder (bidirectional GRU -> mu, log sigma^2) and decoder (GRU, one token per step)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        c = self.config = config
        self.tok = nn.Embedding(VOCAB + 1, c.embed)  # + START
        self.meter = MeterEmbedding(c.embed)
        self.encoder = nn.GRU(c.embed, c.enc_hidden, batch_first=True, bidirectional=True)
        self.to_latent = nn.Linear(2 * c.enc_hidden + 12, 2 * c.z_dim)
        self.to_hidden = nn.Linear(c.z_dim + 12, c.dec_layers * c.dec_hidden)
        self.decoder = nn.GRU(c.embed + c.z_dim + 12, c.dec_hidden, num_layers=c.dec_layers, batch_first=True)
        self.head = nn.Linear(c.dec_hidden, VOCAB)

    def encode(self, w: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and log sigma^2 of each window's code, shape=(B, z_dim) each."""
        x = self.tok(w["tokens"]) + self.meter(w["pos"], w["bar_len"], w["beat"])  # (B, L, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, w["length"].cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # (2, B, H): the last step forward, the first step backward
        stats = self.to_latent(torch.cat([h[0], h[1], w["context"]], dim=-1))
        mu, logvar = stats.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)

    def _start(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        zc = torch.cat([z, context], dim=-1)  # (B, Z + 12)
        h0 = torch.tanh(self.to_hidden(zc)).view(-1, c.dec_layers, c.dec_hidden).transpose(0, 1).contiguous()
        return zc, h0

    def decode_logits(self, z: torch.Tensor, w: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, L, VOCAB) of every step given the tokens before it (`inputs`:
        START then the window's tokens, shifted by one)."""
        zc, h0 = self._start(z, w["context"])
        x = self.tok(inputs) + self.meter(w["pos"], w["bar_len"], w["beat"])  # (B, L, E)
        x = torch.cat([x, zc[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        out, _ = self.decoder(x, h0)
        return self.head(out)

    @torch.inference_mode()
    def decode_greedy(self, z: torch.Tensor, w: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The likeliest token at every step, each fed back (B, L); PAD past each window's length.
        A HOLD is never written after a rest (there is nothing to hold). The loop stops at the
        batch's longest window: a meter of very short bars (1/128) has windows of a step or two,
        and decoding all L steps of each would take 16 times as long for nothing."""
        b, width = w["tokens"].shape
        zc, h = self._start(z, w["context"])
        meter = self.meter(w["pos"], w["bar_len"], w["beat"])  # (B, L, E)
        prev = torch.full((b,), START, dtype=torch.long, device=z.device)
        out = torch.full((b, width), PAD, dtype=torch.long, device=z.device)
        for t in range(int(w["length"].max()) if b else 0):
            check_cancelled()  # a call the studio stopped waiting for ends here
            x = torch.cat([self.tok(prev) + meter[:, t], zc], dim=-1)[:, None]  # (B, 1, E + Z + 12)
            o, h = self.decoder(x, h)
            logits = self.head(o[:, 0])  # (B, VOCAB)
            logits[:, PAD] = float("-inf")
            logits[prev == REST, HOLD] = float("-inf")
            token = logits.argmax(-1)
            token = torch.where(t < w["length"], token, torch.full_like(token, PAD))
            out[:, t] = token
            prev = token
        return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point a share `t` of the way along the great circle from `a` to `b` (radius interpolated
    too); a straight line when they point the same way. t=0 gives `a`, t=1 gives `b`, exactly."""
    if t <= 0:
        return a.clone()
    if t >= 1:
        return b.clone()
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na.clamp(min=1e-8), b / nb.clamp(min=1e-8)).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * a + t * b
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


# --------------------------------------------------------------------------- using a trained VAE


def describe(genre: str, dataset=None) -> str:
    """The card's plain-words description."""
    return (
        "A variational autoencoder (VAE, like Magenta's MusicVAE) that has learned a map of two-bar melodies: each two bars of "
        "your tune become a point in a space of 64 numbers, and points close together sound alike. 'How far' moves each "
        "point a little (or a lot) in a random direction and plays what is there: variations of your melody, in its meter "
        "and key. It can also walk from one melody to another in a few steps (interpolation). Trained on folk songs and "
        "fiddle tunes (Essen, O'Neill's, Ryan's) and the sopranos of Bach's chorales."
    )


PARAMS = [
    {
        "name": "how_far",
        "type": "float",
        "default": 2.0,
        "min": 0.0,
        "max": 2.5,
        "help": "How far from your melody: 0 gives it back (as the VAE remembers it), 1 moves each two bars by the VAE's own "
        "uncertainty about them (a note or two changes), 2 changes about a fifth of the notes, 2.5 about a third.",
    },
]
DEFAULTS = {p["name"]: p["default"] for p in PARAMS}


@dataclass
class Segment:
    """One window of an interpolation: its notes (start, end, pitch) in steps from its own start,
    its bars (from step 0) and its length in steps."""

    notes: list[tuple[int, int, int]]
    bars: list[Bar]
    n_steps: int


@dataclass
class Interpolation:
    """What `Varier.interpolate` gives: the `segments` in order, and the shares of the first and
    last windows' steps decoded exactly as the two melodies play them there (1.0: exact)."""

    segments: list[Segment]
    start_kept: float
    end_kept: float


class Varier:
    """A loaded VAE: variations of a melody (`generate`), interpolations (`interpolate`), and
    reconstructions for evaluation (`reconstruct`)."""

    def __init__(self, config: VAEConfig, network: MelodyVAE, device: str = "cpu") -> None:
        self.config, self.network, self.device = config, network.eval(), device

    def melody_windows(self, melody: RollTrack, grid: Grid) -> tuple[np.ndarray, list[tuple[int, int]], Windows]:
        """The melody's tokens (T,), the windows generation walks, and those windows as arrays."""
        tokens = melody_tokens(track_notes(melody), grid.n_steps)
        spans = window_spans(grid.bars, self.config.max_steps, self.config.bars)
        spans = [(a, min(b, grid.n_steps)) for a, b in spans if a < grid.n_steps]
        if spans and spans[-1][1] < grid.n_steps:  # steps after the last bar line: windows of its meter
            last = grid.bars[-1]
            spans += window_spans(
                [
                    Bar(s, min(last.full_length, grid.n_steps - s), last.numerator, last.denominator)
                    for s in range(spans[-1][1], grid.n_steps, last.full_length)
                ],
                self.config.max_steps,
                self.config.bars,
            )
        return tokens, spans, Windows.cut(tokens, step_features(grid), key_profile(tokens), spans, self.config.max_steps)

    @torch.inference_mode()
    def encode(self, windows: Windows, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        mus, logvars = [], []
        for i in range(0, len(windows), batch):
            mu, logvar = self.network.encode(windows.take(slice(i, i + batch)).tensors(self.device))
            mus.append(mu)
            logvars.append(logvar)
        return torch.cat(mus), torch.cat(logvars)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, windows: Windows, batch: int = 512) -> np.ndarray:
        """Greedy decodes of codes `z` (N, Z) in the frames (meter, length, key) of `windows`, (N, L)."""
        out = [
            self.network.decode_greedy(z[i : i + batch], windows.take(slice(i, i + batch)).tensors(self.device)).cpu().numpy()
            for i in range(0, len(windows), batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.config.max_steps), np.int64)

    def reconstruct(self, windows: Windows) -> np.ndarray:
        """Each window decoded from the mean of its code (how_far 0), shape=(N, L)."""
        mu, _ = self.encode(windows)
        return self.decode(mu, windows)

    @torch.inference_mode()
    def vary(self, melody: RollTrack, grid: Grid, how_far: float, seed: int) -> dict[str, Any]:
        """A variation: every window's code moved by how_far x its sigma x noise (seeded), decoded.
        Returns `tokens` (T,) of the variation, the windows' `spans` and, per window (N, Z), the
        code's mean `mu`, its spread `sigma` and the code `z` that was decoded."""
        tokens, spans, windows = self.melody_windows(melody, grid)
        if not spans:
            empty = np.zeros((0, self.config.z_dim), np.float32)
            return {"tokens": tokens, "spans": spans, "mu": empty, "sigma": empty, "z": empty}
        mu, logvar = self.encode(windows)
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(mu.shape, generator=gen).to(mu.device)
        sigma = torch.exp(0.5 * logvar)
        z = mu + float(how_far) * sigma * noise
        decoded = self.decode(z, windows)
        out = np.full(grid.n_steps, REST, np.int64)
        for (a, b), row in zip(spans, decoded, strict=True):
            out[a:b] = row[: b - a]
        return {"tokens": out, "spans": spans, "mu": mu.cpu().numpy(), "sigma": sigma.cpu().numpy(), "z": z.cpu().numpy()}

    def latent_map(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """What `generate` (same melody, how_far and seed: the same variation) did in the latent
        space: per window its span, `mu`, `sigma` and the decoded `z` (see `vary`)."""
        p = {**DEFAULTS, **params}
        found = self.vary(melody, grid, float(p["how_far"]), seed)
        return {k: found[k] for k in ("spans", "mu", "sigma", "z")}

    def generate(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> list[RollTrack]:
        """A variation of the melody, as one track of role 'melody' (it replaces the input's)."""
        p = {**DEFAULTS, **params}
        tokens = self.vary(melody, grid, float(p["how_far"]), seed)["tokens"]
        played = melody.velocity[melody.velocity > 0]
        velocity = int(np.median(played)) if played.size else 90
        out = RollTrack.empty("Variation", melody.program, grid.n_steps, melody.is_drum)  # the service keeps the melody's own name
        for s, e, pitch in tokens_to_notes(tokens):
            out.add_note(s, e, pitch, velocity)
        out.role = "melody"
        return [out]

    def first_window(self, melody: RollTrack, grid: Grid) -> tuple[Windows, list[Bar]]:
        """The melody's first window of full bars (a pickup left out) and its bars from step 0."""
        full = [b for b in grid.bars if b.length == b.full_length and b.start < grid.n_steps]
        if not full:
            raise InputError("this melody has no full bar: play at least one whole bar to interpolate from or to it")
        a, b = window_spans(full, self.config.max_steps, self.config.bars)[0]
        tokens = melody_tokens(track_notes(melody), grid.n_steps)
        if not (tokens[a:b] >= PITCH0).any():
            raise InputError("the first full bars of this melody are silent: the VAE needs notes there to interpolate")
        windows = Windows.cut(tokens, step_features(grid), key_profile(tokens), [(a, b)], self.config.max_steps)
        bars = [Bar(x.start - a, x.length, x.numerator, x.denominator) for x in full if a <= x.start < b]
        if not bars:  # a long bar cut into pieces: the piece, in that bar's meter
            bar = next(x for x in full if x.start <= a < x.end)
            bars = [Bar(0, b - a, bar.numerator, bar.denominator)]
        return windows, bars

    def fitted_code(self, window: Windows, z: torch.Tensor, steps: int = 60, lr: float = 0.05) -> torch.Tensor:
        """`z` (Z,) moved, when its greedy decode is not exactly the window's own tokens, by Adam steps
        on the teacher-forced likelihood of those tokens (the encoder's guess refined, as in
        semi-amortized inference) until it is, for at most `steps` steps (the best code found)."""
        k = int(window.length[0])
        target = window.tokens[0, :k]

        def misses(code: torch.Tensor) -> int:
            return int((self.decode(code.detach()[None], window)[0, :k] != target).sum())

        best, best_misses = z, misses(z)
        if best_misses == 0:
            return z
        with torch.inference_mode(False), torch.enable_grad():
            w = {name: t.clone() for name, t in window.tensors(self.device).items()}
            tokens = w["tokens"]
            inputs = torch.cat([torch.full_like(tokens[:, :1], START), tokens[:, :-1]], dim=1)
            code = z.detach().clone().requires_grad_(True)
            opt = torch.optim.Adam([code], lr=lr)
            for step in range(steps):
                check_cancelled()
                logits = self.network.decode_logits(code[None], w, inputs)[0, :k]
                loss = F.cross_entropy(logits, tokens[0, :k])
                (grad,) = torch.autograd.grad(loss, [code])  # the code's gradient only: the weights stay untouched
                code.grad = grad
                opt.step()
                if step % 5 == 4:
                    now = misses(code)
                    if now < best_misses:
                        best, best_misses = code.detach().clone(), now
                    if now == 0:
                        break
        return best

    @torch.inference_mode()
    def interpolate(self, first: RollTrack, first_grid: Grid, second: RollTrack, second_grid: Grid, steps: int) -> Interpolation:
        """`steps` windows from the first melody's first full bars to the second's: their codes (mu,
        refined by `fitted_code` where it does not decode to the bars exactly) and the codes on the
        great circle between the two (slerp), each decoded in the first melody's frame
        (meter, bars) for the first half of the way and the second's after; the key context moves
        along the line between the two. The first and last decode the two codes themselves."""
        if not 2 <= int(steps) <= 64:
            raise InputError(f"interpolation takes 2 to 64 steps, got {steps}")
        wa, bars_a = self.first_window(first, first_grid)
        wb, bars_b = self.first_window(second, second_grid)
        za, zb = self.fitted_code(wa, self.encode(wa)[0][0]), self.fitted_code(wb, self.encode(wb)[0][0])
        segments, decoded = [], []
        for i in range(int(steps)):
            t = i / (int(steps) - 1)
            frame, bars = (wa, bars_a) if t < 0.5 else (wb, bars_b)
            w = frame.take(slice(0, 1))
            w.context = ((1 - t) * wa.context + t * wb.context).astype(np.float32)
            tokens = self.decode(slerp(za, zb, t)[None], w)[0][: int(w.length[0])]
            decoded.append(tokens)
            segments.append(Segment(tokens_to_notes(tokens), bars, int(w.length[0])))

        def kept(window: Windows, tokens: np.ndarray) -> float:
            return float((window.tokens[0, : len(tokens)] == tokens).mean())

        return Interpolation(segments, kept(wa, decoded[0]), kept(wb, decoded[-1]))


# --------------------------------------------------------------------------- training


def tune_windows(pieces: Sequence[Any], config: VAEConfig, every_bar: bool) -> Windows:
    """The windows of one-track pieces (`studio.training.data.Piece`): from every bar line (training) or as
    generation walks them."""
    parts = []
    for piece in pieces:
        notes = [(int(s), int(e), int(p)) for t, s, e, p, _v in piece.notes.tolist() if t == 0]
        tokens = melody_tokens(notes, piece.grid.n_steps)
        spans = [
            (a, min(b, piece.grid.n_steps))
            for a, b in window_spans(piece.grid.bars, config.max_steps, config.bars, every_bar)
            if a < piece.grid.n_steps
        ]
        if spans:
            parts.append(Windows.cut(tokens, step_features(piece.grid), key_profile(tokens), spans, config.max_steps))
    if not parts:
        return Windows.cut(np.zeros(0, np.int64), np.zeros((3, 0), np.int64), np.zeros(12, np.float32), [], config.max_steps)
    return Windows.join(parts)


def transpose_windows(w: Windows, shift_range: tuple[int, int], rng: np.random.Generator) -> Windows:
    """Each window moved by its own random number of semitones in `shift_range`, its pitches kept
    in 24..107 (the key context turns with it)."""
    pitched = w.tokens >= PITCH0
    low = np.where(pitched, w.tokens, VOCAB).min(1)
    high = np.where(pitched, w.tokens, -1).max(1)
    lo = np.where(pitched.any(1), np.maximum(shift_range[0], PITCH0 - low), 0)
    hi = np.where(pitched.any(1), np.minimum(shift_range[1], VOCAB - 1 - high), 0)
    shift = lo + np.floor(rng.random(len(w)) * (np.maximum(hi, lo) - lo + 1)).astype(np.int64)
    tokens = np.where(pitched, w.tokens + shift[:, None], w.tokens)
    turned = np.take_along_axis(w.context, (np.arange(12)[None] - shift[:, None]) % 12, axis=1)
    return Windows(tokens, w.pos, w.bar_len, w.beat, w.length, turned)


def reconstruction_scores(original: np.ndarray, decoded: np.ndarray, length: np.ndarray) -> dict[str, float]:
    """How well windows came back: `step_accuracy`, the share of the windows' 16th steps whose
    token (rest, hold or pitch) is the original's; `pitch_step_accuracy`, the same over steps where
    a note starts; `note_accuracy`, the share of notes starting in a window that come back with
    the same start, pitch and length (up to the window's end); `window_exact`, windows that come
    back whole; with the counts."""
    valid = np.arange(original.shape[1])[None] < length[:, None]
    same = (original == decoded) & valid
    onsets = (original >= PITCH0) & valid
    notes = found = 0
    for row, back, k in zip(original, decoded, length, strict=True):
        wanted = {n for n in tokens_to_notes(row[:k]) if row[n[0]] >= PITCH0}
        got = set(tokens_to_notes(back[:k]))
        notes += len(wanted)
        found += len(wanted & got)
    steps = int(valid.sum())
    return {
        "step_accuracy": float(same.sum() / max(1, steps)),
        "pitch_step_accuracy": float((same & onsets).sum() / max(1, onsets.sum())),
        "note_accuracy": found / max(1, notes),
        "window_exact": float((same.sum(1) == length).mean()) if len(length) else float("nan"),
        "windows": len(length),
        "steps": steps,
        "notes": notes,
    }


def _fast_bf16(device: str) -> bool:
    """Whether bfloat16 autocast speeds training up here: a CUDA GPU that has it, or a CPU with AVX512-BF16."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


class VAETraining(TrainingRecipe):
    """Training on windows from every bar line of the training tunes, each transposed at random
    within the dataset's range (the key context turns with it)."""

    def __init__(self, config: VAEConfig, windows: Windows, transpose: tuple[int, int], device: str = "cpu") -> None:
        self.windows, self.transpose = windows, transpose
        self.network = MelodyVAE(config).to(device)
        super().__init__(
            config, device, {"network": self.network}, {"network": torch.optim.Adam(self.network.parameters(), lr=config.lr)}, Varier
        )
        self.mixed_precision = config.bf16 and _fast_bf16(device)

    def tracks(self) -> list[dict]:
        return [dict(t) for t in MELODY_TRACKS]

    def beta(self, step: int) -> float:
        return self.config.beta * min(1.0, step / max(1, self.config.beta_steps))

    def loss(self, w: Mapping[str, torch.Tensor], step: int, gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """1. encode, 2. draw z = mu + sigma * noise (the reparameterization trick), 3. decode with
        teacher forcing (some inputs hidden), 4. cross-entropy + beta * KL over the free bits."""
        c = self.config
        mu, logvar = (x.float() for x in self.network.encode(w))
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=mu.device)
        tokens = w["tokens"]
        inputs = torch.cat([torch.full_like(tokens[:, :1], START), tokens[:, :-1]], dim=1)
        if self.network.training and c.token_dropout > 0:
            hidden = torch.rand(inputs.shape, generator=gen, device=inputs.device) < c.token_dropout
            inputs = inputs.masked_fill(hidden, START)
        logits = self.network.decode_logits(z, w, inputs).float()  # (B, L, VOCAB)
        valid = tokens != PAD
        ce = F.cross_entropy(logits.reshape(-1, VOCAB), tokens.reshape(-1), reduction="none").view(tokens.shape)
        recon = (ce * valid).sum(1).mean()  # nats per window
        kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum(1).mean()  # nats per window
        loss = recon + self.beta(step) * torch.clamp(kl - c.free_bits, min=0.0)
        with torch.no_grad():
            accuracy = float(((logits.argmax(-1) == tokens) & valid).sum() / valid.sum())
        return loss, {
            "recon": float(recon.detach()) / max(1.0, float(valid.sum(1).float().mean())),
            "kl": float(kl.detach()),
            "accuracy": accuracy,
        }

    def step(self, step: int, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        self.network.train()
        opt = self.optimizers["network"]
        for group in opt.param_groups:
            group["lr"] = max(c.lr_min, c.lr * c.lr_decay**step)
        batch = transpose_windows(self.windows.take(rng.integers(0, len(self.windows), c.batch_size)), self.transpose, rng)
        with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.mixed_precision):
            loss, report = self.loss(batch.tensors(self.device), step)
        self.update(loss)
        self.network.eval()
        return report

    selection_how = "the weights that gave back the most 16th steps of the validation pieces' windows from their codes' means"

    def validation_score(self, pieces: Sequence[Any]) -> tuple[float, dict[str, float]]:
        """Share of validation windows' steps not given back from the code's mean (lower is better)."""
        windows = tune_windows(pieces, self.config, every_bar=False)
        scores = reconstruction_scores(windows.tokens, self.accompanist().reconstruct(windows), windows.length)
        return 1.0 - scores["step_accuracy"], {
            "error_rate": 1.0 - scores["step_accuracy"],
            "step_accuracy": scores["step_accuracy"],
            "note_accuracy": scores["note_accuracy"],
        }


def training(data, overrides: Mapping[str, Any], device: str = "cpu") -> VAETraining:
    """A recipe for `studio.training.train`: windows from every bar line of `data.train`'s tunes."""
    config = configured(VAEConfig(), overrides, "VAE")
    windows = tune_windows(data.train, config, every_bar=True)
    if not len(windows):
        raise ValueError("no training tunes the VAE can read")
    return VAETraining(config, windows, tuple(data.config.transpose), device)


def load(card: Mapping[str, Any], weights: Any, device: str = "cpu") -> Varier:
    """The registry's door: the card's ``config`` rebuilds the network, safetensors fills it."""
    return loaded(card, weights, device, VAEConfig, MelodyVAE, Varier)

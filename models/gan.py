"""A melody-conditioned multi-track GAN accompanist, in the spirit of MuseGAN (Dong et al., 2018).

The idea a class should take away: a *generator* writes accompaniment voices for a melody from
random numbers, a *critic* (the discriminator) looks at melody + voices and scores how much they
look like the real music of a genre; each learns from the other. Nothing tells the generator which
notes Bach wrote: it only learns what the critic can tell apart.

Network (1-D convolutions over time, pitch as channels; shapes at line ends, B batch, T steps):
1. The melody is one voice of tokens (rest or one of 84 pitches) + onsets + pitch classes, its key
   profile (pitch classes over the whole piece) tells the key even where it rests, and the
   meter gives each step its place in the bar and beat (`studio.core.conditioning`). No bar length is
   built in, so one model serves 4/4, 3/4, 6/8 and pickups, and a melody of any length is done in
   one pass: the convolutions slide over it, so there are no windows and no seams.
2. Random inputs follow MuseGAN's four kinds: one code for the whole piece shared by all voices
   (style), one per bar shared by all voices (how the harmony moves), one per voice (its character)
   and one per voice per bar.
3. A *shared* trunk (dilated residual convolutions, about eight bars of receptive field) reads
   melody, meter and the shared codes; a *private* head per voice (grouped convolutions) turns the
   trunk's features and that voice's codes into an event per step: rest, hold the sounding note,
   or start a note of one of 84 pitches (so a note is one decision and does not fall apart).
4. Outputs are discrete: while training, straight-through Gumbel-softmax samples of the events,
   turned into sounding voices by a differentiable scan (the critic sees one-hot voices, like the
   real ones, and gradients still flow); when generating, a sample at the user's temperature (and
   steadiness: how much a voice's pitch draws in a bar hang together, `decode_batch`).
5. The critic sees the four voices, their onsets, the meter, each voice's pitch classes and the
   interval class between every pair of voices (what makes a chord consonant), and reduces time by
   strided convolutions to one score.

Objective, and why:
- Wasserstein GAN with gradient penalty (Gulrajani et al., 2017), as MuseGAN used: the critic's
  score difference estimates the Wasserstein distance between real and generated music, a number
  that falls as the generator improves (a loss curve a class can read, unlike the standard GAN
  loss), and the gradient penalty keeps training stable without weight clipping.
- Plus the cross-entropy of the real voices' events (a conditional GAN with a reconstruction
  anchor, as pix2pix (Isola et al., 2017) adds L1 to its adversarial loss), and a generator-only
  warm-up on that cross-entropy before the critic joins (as SeqGAN, Yu et al., 2017, pretrains its
  generator). Measured here: a pure WGAN-GP left the generator near noise after 30 CPU minutes (in-key
  0.57 on held-out chorales after 700 steps, notes a step or two long); the cross-entropy alone
  learns harmony in minutes, but its samples are each step's average guess; the critic then
  teaches what the average lacks (whole notes and rests, voices that move together), and its
  estimate is the curve the UI shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.base import GUIDE_PARAM, ConfigMixin, FamilyInfo, TrainingRecipe, figured_tokens, trained_on, voice_setup
from models.weights import loaded
from studio.core.conditioning import (
    HOLD,
    N_CONTEXT_FEATURES,
    N_EVENTS,
    N_MELODY_FEATURES,
    N_TOKENS,
    REST,
    context_features,
    events_to_tokens,
    melody_end,
    melody_features,
    meter_features,
    pitch_class_profile,
    pitches_to_tokens,
    tokens_to_events,
    tokens_to_pitches,
    tokens_to_track,
    track_to_tokens,
)
from studio.core.metrics import CONSONANT_INTERVALS, RATE_SLACK, RELATIVE_TOLERANCE, melody_key
from studio.core.part_writing import PartWritingGuide, guided_notes, key_preference, note_spans, voice_ranges
from studio.core.restrikes import thin_for_seed
from studio.core.roll import MODEL_PITCH_LOW, Grid, RollTrack
from studio.core.selection import Selection, context_window, regenerated_tracks, run_starts, select_voices

__all__ = ["Critic", "GANAccompanist", "GANConfig", "GANTraining", "Generator", "load"]

FAMILY = FamilyInfo(
    name="gan",
    label="GAN",
    heading="How a GAN works",
    idea=(
        "A generator and a discriminator compete: the generator writes accompaniments for real melodies, "
        "the discriminator (critic) tries to tell them from the real ones, and each gets better by beating the other."
    ),
    writes="accompaniment",
    uses_torch=True,
    order=1,
    flat_dynamics=True,
    regenerates="voices",
)


@dataclass
class GANConfig(ConfigMixin):
    """Architecture and training settings (saved in the model card's ``config``)."""

    voice_names: tuple[str, ...] = ("Alto", "Tenor", "Bass")  # accompaniment voices, high to low
    programs: tuple[int, ...] = (52, 52, 52)  # General MIDI program of each voice
    hidden: int = 160  # trunk channels
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8)  # trunk residual blocks (receptive field ~ 8 bars)
    head_hidden: int = 64  # channels of each voice's private head
    head_dilations: tuple[int, ...] = (1, 2)
    z_piece: int = 32  # shared, one per piece
    z_bar: int = 16  # shared, one per bar
    z_voice: int = 8  # private, one per voice
    z_voice_bar: int = 8  # private, one per voice per bar
    critic_hidden: int = 160
    window: int = 64  # training window in steps (four 4/4 bars)
    batch_size: int = 32
    lr_generator: float = 2e-4
    lr_critic: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    critic_steps: int = 2  # critic updates per generator update
    adversarial: float = 1.0  # weight of the critic's verdict in the generator's loss
    reconstruction: float = 1.0  # weight of the real voices' cross-entropy (pix2pix-style anchor; 0 = a pure GAN)
    pretrain_steps: int = 2000  # generator-only steps on the cross-entropy before the critic joins (as SeqGAN)
    gradient_penalty: float = 10.0
    drift: float = 1e-3  # keeps the critic's scores near 0 (Karras et al., 2018)
    gumbel_tau: float = 1.0
    consonance_match: float = 10.0  # weight of the consonance feature match (0 = off; see `dissonance_share`)
    ranges: tuple[int, ...] = ()  # low, high MIDI pitch per voice for the part-writing guide (empty: SATB by name)
    # The share of its re-strikes of a held pitch kept, by situation (`studio.core.restrikes.keep_shares`, measured by
    # `bench/restrikes.py` on training melodies); empty: all kept.
    restrike_keep: tuple[float, ...] = ()
    # How often an unfilled third into a beat gets a passing note, by situation (`studio.core.passing_notes`), and
    # the share of its starts between the eighths moved onto them (`studio.core.eighth_grid`), set by
    # `bench/passing.py` and `bench/eighth_grid.py` from training melodies; empty / 0: none.
    passing: tuple[float, ...] = ()
    snap: float = 0.0
    # The guide's cost of each move size, the genre's own melodic motion (`studio.core.part_writing.motion_costs`
    # of its training voices, times a weight chosen on validation by `bench/motion.py`); empty: none.
    motion: tuple[float, ...] = ()
    # The guide's cost of each vertical interval class the model sounds more often than its genre
    # (`studio.core.part_writing.recalibrated_harmony_costs`, chosen on validation by `bench/motion.py --harmony`); empty: none.
    harmony: tuple[float, ...] = ()
    texture_match: float = 0.0  # weight of the empty-bar and pitch-class feature match (0 = off; see `bar_texture`)
    velocity: int = 72  # of generated notes

    @property
    def n_voices(self) -> int:
        return len(self.voice_names)


# --------------------------------------------------------------------------- building blocks


# The generator's activations are (B, C, 1, T) tensors in channels-last memory: each step's channels
# lie side by side. The per-step norms are then plain layer norms over the last memory axis (no
# transposed copies), and oneDNN convolves channels-last data directly. The layers keep Conv1d's
# weights (the checkpoints' format) and run them as 2-D convolutions one row high. On a 2-core CPU
# this made a batch of 16 songs' forward pass x1.46 faster and one song's x1.15 (bench.batching).


def steps_last(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, 1, T) in channels-last memory, the generator's activation layout."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def conv_steps(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """`conv` (a Conv1d over time) applied to activations (B, C, 1, T)."""
    return F.conv2d(
        x, conv.weight.unsqueeze(2), conv.bias, padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]), groups=conv.groups
    )


class StepNorm(nn.Module):
    """LayerNorm over channels at each step of activations (B, C, 1, T): independent of the
    sequence length, so a whole song normalizes as the training windows did."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm
        return F.layer_norm(x.permute(0, 2, 3, 1), n.normalized_shape, n.weight, n.bias, n.eps).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """x + conv(act(norm(x)) + cond): a dilated residual convolution with per-step conditioning;
    `groups` runs several voices' private blocks side by side."""

    def __init__(self, channels: int, cond: int, dilation: int, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups
        self.norm = nn.GroupNorm(groups, channels) if groups > 1 else StepNorm(channels)
        self.cond = nn.Conv1d(cond, channels, 1, groups=groups)
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, groups=groups)
        self.conv2 = nn.Conv1d(channels, channels, 1, groups=groups)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, 1, T); `cond` the conditioning already projected by `self.cond`, (B, C, 1, T)."""
        h = F.gelu(self._norm(x) + cond)
        if mask is not None:  # steps past a song's end read as zeros, as the convolution's own padding
            h = h * mask
        out = x + conv_steps(F.gelu(conv_steps(h, self.conv1)), self.conv2)
        return out if mask is None else out * mask

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1:
            return self.norm(x)
        # Per step and per voice: GroupNorm would pool over time (a whole song differs from a window).
        b, c, _, t = x.shape
        g = F.layer_norm(x.permute(0, 2, 3, 1).reshape(b, 1, t, self.groups, c // self.groups), (c // self.groups,), eps=1e-5)
        return (g.reshape(b, 1, t, c) * self.norm.weight + self.norm.bias).permute(0, 3, 1, 2)


def bar_ids(context: torch.Tensor) -> torch.Tensor:
    """Bar number of each step from the context's downbeat column, shape=(B, T) int64 (a partial
    first bar is 0)."""
    downbeat = context[:, :, 0] > 0.5  # (B, T)
    return torch.cumsum(downbeat.long(), 1) - downbeat[:, :1].long()


def _gather_bars(z: torch.Tensor, bars: torch.Tensor) -> torch.Tensor:
    """Per-bar codes (B, N, D) as per-step features (B, D, T)."""
    index = bars.clamp(max=z.shape[1] - 1).unsqueeze(-1).expand(-1, -1, z.shape[2])
    return torch.gather(z, 1, index).transpose(1, 2)


@dataclass
class Noise:
    """The generator's random inputs: piece (B, Zp), bar (B, N, Zb), voice (B, V, Zv), voice-bar (B, V, N, Zvb)."""

    piece: torch.Tensor
    bar: torch.Tensor
    voice: torch.Tensor
    voice_bar: torch.Tensor

    @staticmethod
    def sample(
        config: GANConfig,
        batch: int,
        n_bars: int,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        scale: float = 1.0,
    ) -> Noise:
        """Standard normal codes (drawn on the CPU with `generator`, so a seed means the same music on
        every device), times `scale` (below 1: the truncation trick, safer and plainer music)."""
        v = config.n_voices

        def draw(*shape: int) -> torch.Tensor:
            return (torch.randn(*shape, generator=generator) * scale).to(device)

        return Noise(
            draw(batch, config.z_piece),
            draw(batch, n_bars, config.z_bar),
            draw(batch, v, config.z_voice),
            draw(batch, v, n_bars, config.z_voice_bar),
        )


# --------------------------------------------------------------------------- generator and critic


class Generator(nn.Module):
    """Melody (B, T, 98) + context (B, T, 24: meter and key profile) + noise -> event logits
    (B, V, 86, T): rest, hold, or one of 84 note starts."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = c = config
        v = c.n_voices
        shared_cond = N_CONTEXT_FEATURES + c.z_piece + c.z_bar
        self.inp = nn.Conv1d(N_MELODY_FEATURES + shared_cond, c.hidden, 1)
        self.trunk = nn.ModuleList(ResBlock(c.hidden, shared_cond, d) for d in c.dilations)
        self.trunk_out = StepNorm(c.hidden)
        private_cond = c.z_voice + c.z_voice_bar + N_CONTEXT_FEATURES
        self.head_in = nn.Conv1d(c.hidden, v * c.head_hidden, 1)
        self.heads = nn.ModuleList(ResBlock(v * c.head_hidden, v * private_cond, d, groups=v) for d in c.head_dilations)
        self.head_out = nn.Conv1d(v * c.head_hidden, v * N_EVENTS, 1, groups=v)

    def forward(self, melody: torch.Tensor, context: torch.Tensor, noise: Noise, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`mask` (B, 1, T): 1 where a song has music, 0 where a shorter song of a batch is padded."""
        c = self.config
        b, t, _ = melody.shape
        v = c.n_voices
        bars = bar_ids(context)  # (B, T)
        context_c = context.transpose(1, 2)  # (B, F, T)
        shared = torch.cat([context_c, noise.piece[:, :, None].expand(-1, -1, t), _gather_bars(noise.bar, bars)], 1)
        mask = None if mask is None else mask.unsqueeze(2)  # (B, 1, 1, T)
        h = conv_steps(steps_last(torch.cat([melody.transpose(1, 2), shared], 1)), self.inp)  # (B, H, 1, T)
        if mask is not None:
            h = h * mask
        # Every trunk block's conditioning in one product (the same weights, stacked).
        weight = torch.cat([block.cond.weight for block in self.trunk]).unsqueeze(2)
        bias = torch.cat([block.cond.bias for block in self.trunk])
        conds = F.conv2d(steps_last(shared), weight, bias).split(c.hidden, 1)
        for block, cond in zip(self.trunk, conds, strict=True):
            h = block(h, cond, mask)
        h = conv_steps(F.gelu(self.trunk_out(h)), self.head_in)  # (B, V*Hh, 1, T)
        if mask is not None:
            h = h * mask
        private = []
        for i in range(v):
            private += [noise.voice[:, i, :, None].expand(-1, -1, t), _gather_bars(noise.voice_bar[:, i], bars), context_c]
        private_c = steps_last(torch.cat(private, 1))  # (B, V*(Zv+Zvb+F), 1, T)
        for block in self.heads:
            h = block(h, conv_steps(private_c, block.cond), mask)
        return conv_steps(F.gelu(h), self.head_out).reshape(b, v, N_EVENTS, t)


_PITCH_CLASS = torch.zeros(N_TOKENS, 12)
_PITCH_CLASS[torch.arange(1, N_TOKENS), (torch.arange(1, N_TOKENS) + 23) % 12] = 1.0  # token -> pitch class (rest: none)


def critic_features(voices: torch.Tensor, onsets: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """What the critic reads, shape=(B, C, T), from one-hot voices (B, V+1, 85, T) (melody first),
    onsets (B, V+1, T) and context (B, T, 24): the voices, their onsets and pitch classes, the meter
    and the melody's key profile, and
    for every pair of voices the interval class that sounds between them (12 per pair)."""
    b, n, _, t = voices.shape
    chroma = torch.einsum("bvkt,kc->bvct", voices, _PITCH_CLASS.to(voices))  # (B, V+1, 12, T)
    pairs = []
    for i in range(n):
        for j in range(i + 1, n):
            # interval class k between voice i and j: sum_c chroma_i[c] * chroma_j[c - k]
            rolled = torch.stack([torch.roll(chroma[:, j], k, dims=1) for k in range(12)], 1)  # (B, 12, 12, T)
            pairs.append((chroma[:, i, None] * rolled).sum(2))  # (B, 12, T)
    return torch.cat([voices.reshape(b, -1, t), onsets, chroma.reshape(b, -1, t), context.transpose(1, 2), *pairs], 1)


class Critic(nn.Module):
    """Melody + voices -> one score per window (higher: more like the real music)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        n = config.n_voices + 1
        channels = n * N_TOKENS + n + 12 * n + N_CONTEXT_FEATURES + 12 * n * (n - 1) // 2
        h = config.critic_hidden
        layers: list[nn.Module] = [nn.Conv1d(channels, h, 1), nn.LeakyReLU(0.2)]
        for _ in range(4):  # 64 steps -> 4 (a bar -> a beat at 4/4)
            layers += [nn.Conv1d(h, h, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv1d(h, h, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(h, 1)

    def forward(self, voices: torch.Tensor, onsets: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = self.body(critic_features(voices, onsets, context))  # (B, H, T/16)
        return self.out(h.mean(2)).squeeze(1)  # (B,)


# --------------------------------------------------------------------------- discrete outputs


def events_to_voices(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot events (B, V, 86, T) -> one-hot sounding voices (B, V, 85, T) and onsets (B, V, T),
    differentiably: sounding(t) = start(t) + hold(t) * sounding(t - 1)."""
    hold, starts = events[:, :, 1], events[:, :, 2:]  # (B, V, T), (B, V, 84, T)
    sounding = []
    previous = torch.zeros_like(starts[..., 0])
    for t in range(events.shape[-1]):
        previous = starts[..., t] + hold[:, :, None, t] * previous
        sounding.append(previous)
    pitches = torch.stack(sounding, -1)  # (B, V, 84, T)
    rest = 1.0 - pitches.sum(2, keepdim=True)
    return torch.cat([rest, pitches], 2), starts.sum(2)


_DISSONANT = torch.tensor([[float((m - a) % 12 not in CONSONANT_INTERVALS) for a in range(12)] for m in range(12)])  # [melody pc, voice pc]


def pitch_class_roll(notes: torch.Tensor) -> torch.Tensor:
    """One-hot notes (..., 85, T) -> the pitch classes sounding at each step (..., 12, T) (a rest: none)."""
    return torch.einsum("...kt,kc->...ct", notes, _PITCH_CLASS.to(notes))


def dissonance_share(voices: torch.Tensor, melody: torch.Tensor, melody_onsets: torch.Tensor) -> torch.Tensor:
    """Share of (melody onset, sounding accompaniment note) pairs that are dissonant, counted as
    `studio.core.metrics.consonance` counts them, for a batch: voices (B, V, 85, T) one-hot (differentiable
    straight-through samples), melody (B, 85, T) one-hot, melody_onsets (B, T) 1 where a melody note starts."""
    voice_pc = pitch_class_roll(voices)  # (B, V, 12, T)
    melody_pc = pitch_class_roll(melody) * melody_onsets[:, None]  # (B, 12, T), only at onsets
    dissonant = torch.einsum("bmt,ma,bvat->", melody_pc, _DISSONANT.to(voices), voice_pc)
    pairs = torch.einsum("bmt,bvat->", melody_pc, voice_pc)
    return dissonant / pairs.clamp(min=1.0)


def bar_texture(voices: torch.Tensor, bars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MuseGAN's empty-bar rate (EB) and used pitch classes per non-empty bar (UPC), counted as
    `studio.core.metrics.empty_bar_rate` and `used_pitch_classes` count them, pooled over a batch:
    voices (B, V, 85, T) one-hot (differentiable straight-through samples), bars (B, T) the bar
    number of each step (`bar_ids`). A bar sounds if any of its steps does (a max over its steps,
    so the gradient reaches one step of each bar); a pitch class is used if any step plays it."""
    n_bars = int(bars.max()) + 1
    member = F.one_hot(bars, n_bars).to(voices)  # (B, T, N)
    present = member.amax(1)  # (B, N): bars the window reaches
    used = (pitch_class_roll(voices)[..., None] * member[:, None, None]).amax(3)  # (B, V, 12, N)
    sounding = used.amax(2)  # (B, V, N)
    n_present = present.sum() * voices.shape[1]
    empty_rate = ((1.0 - sounding) * present[:, None]).sum() / n_present.clamp(min=1.0)
    upc = (used.sum(2) * present[:, None]).sum() / (sounding * present[:, None]).sum().clamp(min=1.0)
    return empty_rate, upc


def straight_through_sample(logits: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled voices (B, V, 85, T) and onsets (B, V, T) from event logits (B, V, 86, T): one-hot in
    the forward pass (the critic sees voices like the real ones), with the gradients of the relaxed
    Gumbel-softmax sample (Jang et al., 2017) in the backward pass."""
    return events_to_voices(F.gumbel_softmax(logits, tau=tau, hard=True, dim=2))


def reconstruction_loss(logits: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats per step) of the real voices' events (B, V, T) under the logits (B, V, 86, T)."""
    return F.cross_entropy(logits.transpose(1, 2), events)  # classes on dim 1: (B, 86, V, T)


def one_hot_voices(tokens: torch.Tensor) -> torch.Tensor:
    """Tokens (B, V, T) int64 -> one-hot (B, V, 85, T) float."""
    return F.one_hot(tokens, N_TOKENS).permute(0, 1, 3, 2).float()


# --------------------------------------------------------------------------- training


class GANTraining(TrainingRecipe):
    """The GAN's training step for `studio.training.train`. For the first `pretrain_steps` steps the generator
    alone learns the real voices' events (cross-entropy); after that each step is `critic_steps`
    critic updates on fresh real batches, then one generator update on the critic's verdict plus
    the weighted cross-entropy. Losses logged per step: ``reconstruction`` (cross-entropy, nats per
    step), and once the critic has joined ``critic`` (with penalty), ``generator`` (minus the
    critic's score of generated music), ``wasserstein`` (real minus generated scores: the distance
    estimate) and ``penalty``."""

    family = "gan"

    def __init__(self, config: GANConfig, train_windows, device: str = "cpu") -> None:
        self.windows = train_windows
        self.generator = Generator(config).to(device)
        self.critic = Critic(config).to(device)
        super().__init__(
            config,
            torch.device(device),
            {"generator": self.generator, "critic": self.critic},
            {
                "generator": torch.optim.Adam(self.generator.parameters(), config.lr_generator, betas=config.betas),
                "critic": torch.optim.Adam(self.critic.parameters(), config.lr_critic, betas=config.betas),
            },
            GANAccompanist,
        )

    served = "generator"  # the critic is needed for training alone
    counted = ("generator", "critic")

    def selectable(self, step: int) -> bool:
        """Only a generator that has trained against the critic may be chosen to ship."""
        return step >= self.config.pretrain_steps

    def _real(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = self.windows.sample(self.config.batch_size, rng)
        tokens = torch.from_numpy(batch.tokens).to(self.device)  # (B, V+1, L)
        onsets = torch.from_numpy(batch.onsets).float().to(self.device)
        context = torch.from_numpy(batch.context).to(self.device)
        melody = torch.from_numpy(np.stack([melody_features(t[0], o[0]) for t, o in zip(batch.tokens, batch.onsets, strict=True)])).to(
            self.device
        )
        return tokens, onsets, context, melody

    def _fake(
        self, melody: torch.Tensor, context: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n_bars = int(bar_ids(context).max()) + 1
        noise = Noise.sample(self.config, melody.shape[0], n_bars, generator, self.device)
        return straight_through_sample(self.generator(melody, context, noise), self.config.gumbel_tau)

    def step(self, step: int, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        out: dict[str, float] = {}
        adversarial = c.adversarial > 0 and c.critic_steps > 0 and step >= c.pretrain_steps
        for _ in range(c.critic_steps if adversarial else 0):
            tokens, onsets, context, melody = self._real(rng)
            real_v = one_hot_voices(tokens)
            with torch.no_grad():
                fake_acc, fake_on = self._fake(melody, context)
            fake_v = torch.cat([real_v[:, :1], fake_acc], 1)
            fake_o = torch.cat([onsets[:, :1], fake_on], 1)
            d_real = self.critic(real_v, onsets, context)
            d_fake = self.critic(fake_v, fake_o, context)
            penalty = self._gradient_penalty(real_v, onsets, fake_v, fake_o, context)
            wasserstein = d_real.mean() - d_fake.mean()
            loss_d = -wasserstein + c.gradient_penalty * penalty + c.drift * (d_real**2).mean()
            self.update(loss_d, "critic", clip=None)
            out = {"critic": loss_d.item(), "wasserstein": wasserstein.item(), "penalty": penalty.item()}
        tokens, onsets, context, melody = self._real(rng)
        bars = bar_ids(context)
        logits = self.generator(melody, context, Noise.sample(c, melody.shape[0], int(bars.max()) + 1, None, self.device))
        loss_g = torch.zeros((), device=self.device)
        if adversarial:
            fake_acc, fake_on = straight_through_sample(logits, c.gumbel_tau)
            real_v = one_hot_voices(tokens)
            fake_v = torch.cat([real_v[:, :1], fake_acc], 1)
            fake_o = torch.cat([onsets[:, :1], fake_on], 1)
            adv = -self.critic(fake_v, fake_o, context).mean()
            loss_g = loss_g + c.adversarial * adv
            out["generator"] = adv.item()
            if c.consonance_match > 0:  # feature matching on one statistic: no more dissonance against the melody than the real voices have
                starts = onsets[:, 0] * (tokens[:, 0] != REST).float()
                fake_dis = dissonance_share(fake_acc, real_v[:, 0], starts)
                real_dis = dissonance_share(real_v[:, 1:], real_v[:, 0], starts)
                loss_g = loss_g + c.consonance_match * F.relu(fake_dis - real_dis)
                out["dissonance_gap"] = (fake_dis - real_dis).item()
            if c.texture_match > 0:  # feature matching on the texture: as many silent bars and pitch classes per bar as the real voices
                fake_eb, fake_upc = bar_texture(fake_acc, bars)
                real_eb, real_upc = bar_texture(real_v[:, 1:], bars)
                # each gap in units of its acceptance bound (15% of the real value, at least the rate slack)
                eb_gap = (fake_eb - real_eb) / (RELATIVE_TOLERANCE * real_eb).clamp(min=RATE_SLACK)
                upc_gap = (fake_upc - real_upc) / (RELATIVE_TOLERANCE * real_upc).clamp(min=RATE_SLACK)
                loss_g = loss_g + c.texture_match * 0.1 * (eb_gap.abs() + upc_gap.abs())
                out["empty_bar_gap"] = (fake_eb - real_eb).item()
                out["pitch_class_gap"] = (fake_upc - real_upc).item()
        if c.reconstruction > 0 or not adversarial:
            events = torch.from_numpy(tokens_to_events(tokens[:, 1:].cpu().numpy(), onsets[:, 1:].cpu().numpy() > 0)).to(self.device)
            rec = reconstruction_loss(logits, events)
            loss_g = loss_g + (c.reconstruction if adversarial else 1.0) * rec
            out["reconstruction"] = rec.item()
        self.update(loss_g, "generator", clip=None)
        return out

    def _gradient_penalty(self, real_v, real_o, fake_v, fake_o, context) -> torch.Tensor:
        alpha = torch.rand(real_v.shape[0], 1, 1, 1, device=self.device)
        mixed_v = (alpha * real_v + (1 - alpha) * fake_v).requires_grad_(True)
        mixed_o = (alpha[:, :, 0] * real_o + (1 - alpha[:, :, 0]) * fake_o).requires_grad_(True)
        score = self.critic(mixed_v, mixed_o, context)
        grads = torch.autograd.grad(score.sum(), [mixed_v, mixed_o], create_graph=True)
        norm = torch.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in grads) + 1e-12)
        return ((norm - 1) ** 2).mean()


def training(dataset, overrides: Mapping[str, Any], device: str = "cpu") -> GANTraining:
    """The training set-up `studio.training.train` drives: voices named and voiced as the dataset's pitched
    tracks (a folder's drum track is left out; a chord in a track is learned as its top note),
    random 64-step windows of the training pieces, transposed as the dataset config says."""
    return GANTraining(*voice_setup(dataset, GANConfig, overrides, "GAN"), device)  # every pitched voice; drums are left out


def describe(genre: str, dataset=None) -> str:
    """The card's plain-words description of a GAN trained on `genre`."""
    return (
        "A GAN (generative adversarial network): a generator writes accompaniment voices for your melody from random "
        "numbers, while a critic that has studied real music scores how real each attempt sounds. They train against "
        "each other until the critic can no longer tell them apart. Nobody tells the generator which notes to write. "
        f"Trained on {trained_on(genre)}. Each seed gives a different accompaniment."
    )


# --------------------------------------------------------------------------- generation


PARAMS = [
    {
        "name": "temperature",
        "type": "float",
        "default": 0.8,
        "min": 0.0,
        "max": 1.5,
        "help": "Creative risk: 0 plays the generator's most likely note at every step; higher values sample "
        "less likely notes (1 = as it was trained, above 1 = wilder).",
    },
    {
        "name": "steadiness",
        "type": "float",
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "help": "How steadily each voice keeps to its choice of notes within a bar: 0 draws every note afresh (as "
        "the generator was trained); 1 draws once per voice and bar, so a voice repeats its note while the harmony "
        "stands still and moves with it when it moves. The odds of each single note stay the same.",
    },
    {
        "name": "variety",
        "type": "float",
        "default": 1.0,
        "min": 0.0,
        "max": 2.0,
        "help": "How far from the average the random inputs may go (the truncation trick): 0 gives the same "
        "plain accompaniment for every seed, 1 is what the generator was trained with, 2 is bolder.",
    },
    GUIDE_PARAM,
]


DEFAULTS = {p["name"]: p["default"] for p in PARAMS}
GUIDE_SWEEPS = 4  # Gibbs sweeps of the part-writing guide over the decoded voices
REGENERATION_CONTEXT_STEPS = (
    64  # steps of the take (4 bars of 4/4, out to bar lines) on each side of a regenerated selection that the generator reads
)
GUIDE_STREAM = 1  # the guide's random stream: numpy's, seeded by (seed, this), apart from the decoder's

# Defaults that training chooses on its validation pieces, per genre (`studio.training.train._tune_defaults`):
# how far a genre's accompaniment strays from the generator's likeliest note is a matter of style.
# Tuned in this order, each at the values chosen before it: temperature sets how far the voices stray
# (rhythm and pitch alike), steadiness then how much a voice's pitch draws hang together in a bar, and
# variety last how far the random inputs may go (the truncation trick; below 1 plainer, more typical music,
# the seeds still differing through the sampling).
TUNABLE = {
    "temperature": (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "steadiness": (0.0, 0.25, 0.5, 0.75, 0.9, 1.0),
    "variety": (0.0, 0.5, 1.0, 1.5, 2.0),
}


class GANAccompanist:
    """A trained generator, ready to accompany any melody (`studio.serving.registry` calls `generate`)."""

    def __init__(self, config: GANConfig, generator: Generator, device: str = "cpu") -> None:
        self.config = config
        self.generator = generator.eval()
        self.device = torch.device(device)

    def generate(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> list[RollTrack]:
        """Accompaniment voices (one `RollTrack` each, shape=(T, 128)) for `melody` on `grid`."""
        return self.generate_batch([(melody, grid, params, seed)])[0]

    @torch.inference_mode()
    def generate_batch(self, requests: Sequence[tuple[RollTrack, Grid, Mapping[str, Any], int]]) -> list[list[RollTrack]]:
        """Several melodies at once: padded to the longest and run as one forward pass (each keeps
        its own seed, so a request's music does not depend on what it was batched with)."""
        c = self.config
        n_steps = [g.n_steps for _, g, _, _ in requests]
        length = max(n_steps)
        melody = np.zeros((len(requests), length, N_MELODY_FEATURES), np.float32)
        context = np.zeros((len(requests), length, N_CONTEXT_FEATURES), np.float32)
        mask = np.zeros((len(requests), 1, length), np.float32)
        generators, parts, ends, sung = [], [], [], []
        n_bars = max(len(g.bars) for _, g, _, _ in requests) + 1
        for i, (track, grid, params, seed) in enumerate(requests):
            tokens, onsets = track_to_tokens(track)
            ends.append(melody_end(tokens))
            melody[i, : grid.n_steps] = melody_features(tokens, onsets)
            meter = meter_features(grid)
            context[i, : grid.n_steps] = context_features(meter, pitch_class_profile(tokens))
            sung.append((tokens, onsets, meter[:, 1] > 0))  # the melody's notes and the beats, for `_thinned`
            mask[i, :, : grid.n_steps] = 1.0
            gen = torch.Generator().manual_seed(int(seed))
            part = Noise.sample(c, 1, len(grid.bars) + 1, gen, "cpu", float(params.get("variety", DEFAULTS["variety"])))
            pad = n_bars - part.bar.shape[1]
            parts.append(Noise(part.piece, F.pad(part.bar, (0, 0, 0, pad)), part.voice, F.pad(part.voice_bar, (0, 0, 0, pad))))
            generators.append(gen)
        noise = Noise(*(torch.cat([getattr(p, f) for p in parts]).to(self.device) for f in ("piece", "bar", "voice", "voice_bar")))
        # Songs of one length need no mask (nothing is padded): the pass is then exactly the plain one.
        mask_t = torch.from_numpy(mask).to(self.device) if min(n_steps) < length else None
        # Each request's generator continues its own stream: sampling is seeded too.
        temperatures = [float(params.get("temperature", DEFAULTS["temperature"])) for _, _, params, _ in requests]
        steadiness = [float(params.get("steadiness", DEFAULTS["steadiness"])) for _, _, params, _ in requests]
        context_t = torch.from_numpy(context)
        logits = self.generator(torch.from_numpy(melody).to(self.device), context_t.to(self.device), noise, mask_t).float().cpu()
        out = []
        decoded = decode_batch(logits, temperatures, n_steps, generators, ends, steadiness, bar_ids(context_t))
        for i, (tokens, onsets) in enumerate(decoded):
            strength = float(requests[i][2].get("guide", DEFAULTS["guide"]))
            if strength > 0:
                melody_tokens = sung[i][0]
                in_key = melody_key(requests[i][0]).accepted
                tokens, onsets = self.guided(
                    melody_tokens, tokens, onsets, logits[i, :, :, : n_steps[i]], ends[i], strength, temperatures[i], requests[i][3], in_key
                )
            onsets = self._thinned(*sung[i], tokens, onsets, requests[i][3])
            tokens, onsets = figured_tokens(tokens, onsets, requests[i][0], *sung[i], c, requests[i][3])  # the card's rhythm
            out.append(
                [
                    tokens_to_track(tokens[v], onsets[v], name, prog, c.velocity)
                    for v, (name, prog) in enumerate(zip(c.voice_names, c.programs, strict=True))
                ]
            )
        return out

    def guided(
        self,
        melody_tokens: np.ndarray,
        tokens: np.ndarray,
        onsets: np.ndarray,
        logits: torch.Tensor,
        end: int,
        strength: float,
        temperature: float,
        seed: int,
        in_key: frozenset[int] = frozenset(range(12)),
        movable: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The decoded voices (tokens, onsets (V, T)) with each note's pitch redrawn by the part-writing
        guide (`studio.core.part_writing.guided_notes`) from the generator's own odds of starting that
        pitch at the note's first step (`logits` (V, 86, T)): the rhythm is the generator's draw.
        `movable` (V, T): only the notes that start there may change (default: all)."""
        log_odds = torch.log_softmax(logits.double(), 1).numpy()  # (V, 86, T)
        v, _, n = log_odds.shape
        pitches = np.concatenate([tokens_to_pitches(melody_tokens)[None, :n], tokens_to_pitches(tokens)])
        starts = np.concatenate([np.zeros((1, n), bool), onsets])
        odds = np.full((v + 1, n, 128), -np.inf)
        odds[1:, :, MODEL_PITCH_LOW : MODEL_PITCH_LOW + N_TOKENS - 1] = np.moveaxis(log_odds[:, FIRST_PITCH:], 1, 2)
        for voice in range(1, v + 1):  # a note is scored by its start event (its holds do not depend on its pitch)
            first, end = note_spans(pitches[voice], starts[voice])
            owner = np.full(n, -1)
            for f, e in zip(first.tolist(), end.tolist(), strict=True):
                owner[f:e] = f
            odds[voice, owner >= 0] = odds[voice, owner[owner >= 0]]
        free = np.arange(v + 1) > 0
        guide = PartWritingGuide(strength=strength, motion=tuple(self.config.motion), harmony=tuple(self.config.harmony))
        rng = np.random.default_rng([int(seed), GUIDE_STREAM])
        ranges = voice_ranges(self.config.voice_names, self.config.ranges)
        movable = None if movable is None else np.concatenate([np.zeros((1, n), bool), movable])
        new = guided_notes(
            pitches, odds, free, ranges, guide, rng, GUIDE_SWEEPS, temperature, starts, key_preference(in_key, guide), movable
        )
        return pitches_to_tokens(new[1:]), onsets

    def _thinned(
        self,
        melody_tokens: np.ndarray,
        melody_onsets: np.ndarray,
        beats: np.ndarray,
        tokens: np.ndarray,
        onsets: np.ndarray,
        seed: int,
        where: np.ndarray | None = None,
    ) -> np.ndarray:
        """`onsets` of the voices `tokens` with the card's share of re-strikes of held pitches kept
        (`studio.core.restrikes.thin_for_seed`); the melody's tokens and onsets and the beats (T,) over
        the same steps."""
        return thin_for_seed(tokens, onsets, melody_tokens, melody_onsets, beats, self.config.restrike_keep, seed, where)

    @torch.inference_mode()
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
        """The take's voices with bars `bars` of `voices` resampled in their context: a fresh draw of the
        generator over the selection and `REGENERATION_CONTEXT_STEPS` steps each side (its receptive field),
        whose selected cells replace the old ones; then the part-writing guide mends the faults of the
        new notes only, judged against the notes kept around them (at the seams too)."""
        p = {**DEFAULTS, **params}
        c = self.config
        chosen = select_voices(accompaniment, grid, Selection(*bars, None if voices is None else tuple(voices)))
        lo, hi = context_window(grid, chosen.start, chosen.end, REGENERATION_CONTEXT_STEPS)
        n = hi - lo
        mel_tokens, mel_onsets = track_to_tokens(melody)
        features = torch.from_numpy(melody_features(mel_tokens, mel_onsets)[lo:hi][None])
        meter = meter_features(grid)
        context = torch.from_numpy(context_features(meter, pitch_class_profile(mel_tokens))[lo:hi][None])
        gen = torch.Generator().manual_seed(int(seed))
        n_bars = grid.bar_index(hi - 1) - grid.bar_index(lo) + 2
        noise = Noise.sample(c, 1, n_bars, gen, self.device, float(p["variety"]))
        logits = self.generator(features.to(self.device), context.to(self.device), noise).float().cpu()
        end = int(np.clip(melody_end(mel_tokens) - lo, 0, n))
        temperature = float(p["temperature"])
        drawn, drawn_onsets = decode_batch(logits, [temperature], [n], [gen], [end], [float(p["steadiness"])], bar_ids(context))[0]
        kept = [track_to_tokens(t) for t in chosen.kept]
        free = chosen.free[:, lo:hi]
        tokens = np.where(free, drawn, np.stack([tok for tok, _ in kept])[:, lo:hi])
        onsets = np.where(free, drawn_onsets, np.stack([on for _, on in kept])[:, lo:hi]) | run_starts(free)
        if float(p["guide"]) > 0:
            tokens, onsets = self.guided(
                mel_tokens[lo:hi], tokens, onsets, logits[0], end, float(p["guide"]), temperature, seed, melody_key(melody).accepted, free
            )
        onsets = self._thinned(mel_tokens[lo:hi], mel_onsets[lo:hi], meter[lo:hi, 1] > 0, tokens, onsets, seed, free)
        tokens, onsets = figured_tokens(tokens, onsets, melody, mel_tokens[lo:hi], mel_onsets[lo:hi], meter[lo:hi, 1] > 0, c, seed, free)
        new = []
        for v, (name, program) in enumerate(zip(c.voice_names, c.programs, strict=True)):
            line, starts = np.zeros(grid.n_steps, np.int64), np.zeros(grid.n_steps, bool)
            line[lo:hi], starts[lo:hi] = tokens[v], onsets[v]
            new.append(tokens_to_track(line, starts, name, program, c.velocity))
        return regenerated_tracks(list(accompaniment), new, chosen.start, chosen.end, chosen.voices)


def decode(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voices (tokens (V, T), onsets (V, T)) from the generator's event logits (V, 86, T): an event per
    step, sampled at `temperature` (0: the most likely one) with the request's own random stream."""
    return decode_batch(logits[None], [temperature], [logits.shape[-1]], [generator])[0]


def draw_uniforms(shape: tuple[int, int], lengths: Sequence[int], generators: Sequence[torch.Generator]) -> torch.Tensor:
    """The random numbers `decode_batch` samples with: for each sampling request, one uniform number
    per voice and step, (V, T) in row order, from its own generator. Shape (S, V, T), padding steps 0.5."""
    v, t = shape
    uniforms = torch.full((len(generators), v, t), 0.5)
    for k, (n, generator) in enumerate(zip(lengths, generators, strict=True)):
        uniforms[k, :, : int(n)] = torch.rand(v, int(n), generator=generator)
    return uniforms


FIRST_PITCH = HOLD + 1  # events: rest, hold, then a note start per pitch


def steady_uniforms(
    steadiness: Sequence[float], bars: torch.Tensor, lengths: Sequence[int], shape: tuple[int, int], generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """Uniform numbers that hang together within a bar, for the pitch draws (S, V, T): each is
    ndtr(r * z_bar + sqrt(1 - r^2) * e_step) with standard normal z per voice and bar and e per voice
    and step (a Gaussian copula), so each is exactly uniform while two in one bar have correlation
    rising with r = steadiness (1: one number per voice and bar). Drawn from each request's own
    generator, after its `draw_uniforms`; `bars` (S, T) is each step's bar number."""
    v, t = shape
    out = torch.full((len(generators), v, t), 0.5)
    for k, (r, n, generator) in enumerate(zip(steadiness, lengths, generators, strict=True)):
        ids = bars[k, : int(n)]
        per_bar = torch.randn(v, int(ids.max()) + 1, generator=generator)
        per_step = torch.randn(v, int(n), generator=generator)
        out[k, :, : int(n)] = torch.special.ndtr(r * per_bar[:, ids] + math.sqrt(max(0.0, 1.0 - r * r)) * per_step)
    return out


def decode_batch(
    logits: torch.Tensor,
    temperatures: Sequence[float],
    lengths: Sequence[int],
    generators: Sequence[torch.Generator],
    ends: Sequence[int] | None = None,
    steadiness: Sequence[float] | None = None,
    bars: torch.Tensor | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`decode` for a batch of logits (B, V, 86, T), request i being its first `lengths[i]` steps.
    From step `ends[i]` on (where its melody has ended) every event is a hold: the accompaniment
    starts nothing after the tune's last note, and what sounds then rings on to the end (a tune
    whose last note ends before its last bar does would otherwise get stray notes after it).

    Each (voice, step) event is drawn by inverse transform: the first event whose cumulative
    probability passes a uniform number from the request's own generator (`draw_uniforms`). So a
    request gets the same events, and leaves its generator in the same state, in any batch; the
    softmax and the search run once for the batch. One random number per draw, where the
    exponential race of `torch.multinomial` takes one per event (86): that race was a fifth of the
    CPU time of a batch of 16 songs on a 2-core machine.

    With `steadiness[i]` > 0 (and `bars`, (B, T) bar numbers), a draw that starts a note takes its
    pitch from a second uniform number (`steady_uniforms`) at the same quantile of the pitch odds
    for every note of that voice and bar, at steadiness 1: the rhythm is the same draw as without
    it, and each note's pitch keeps its odds, but where the odds stay alike the voice repeats its
    note instead of wandering among likely ones (sampled independently, it used more pitch classes
    per bar than the real voices; see the README's GAN section).
    """
    b, v, _, t = logits.shape
    events = torch.empty(b, v, t, dtype=torch.long)
    sampled = [i for i in range(b) if temperatures[i] > 1e-3]
    greedy = [i for i in range(b) if temperatures[i] <= 1e-3]
    if greedy:
        events[greedy] = logits[greedy].argmax(2)
    if sampled:
        uniforms = draw_uniforms((v, t), [lengths[i] for i in sampled], [generators[i] for i in sampled])
        scale = torch.tensor([temperatures[i] for i in sampled], dtype=logits.dtype).view(-1, 1, 1, 1)
        cumulative = torch.softmax(logits[sampled] / scale, 2).permute(0, 1, 3, 2).cumsum(3).contiguous()  # (S, V, T, 86)
        target = (uniforms * cumulative[..., -1]).unsqueeze(-1)  # a point in [0, total): rounding-safe
        drawn = torch.searchsorted(cumulative, target, right=True).squeeze(-1).clamp(max=N_EVENTS - 1)
        steady = [k for k, i in enumerate(sampled) if steadiness is not None and steadiness[i] > 0]
        if steady:
            rows = [sampled[k] for k in steady]
            shared = steady_uniforms(
                [steadiness[i] for i in rows], bars[rows], [lengths[i] for i in rows], (v, t), [generators[i] for i in rows]
            )
            pitch_odds = cumulative[steady, ..., FIRST_PITCH:] - cumulative[steady, ..., FIRST_PITCH - 1 : FIRST_PITCH]  # (S', V, T, 84)
            pitch = torch.searchsorted(pitch_odds, (shared * pitch_odds[..., -1]).unsqueeze(-1), right=True).squeeze(-1)
            pitch = pitch.clamp(max=N_EVENTS - 1 - FIRST_PITCH) + FIRST_PITCH
            plain = drawn[steady]
            drawn[steady] = torch.where(plain >= FIRST_PITCH, pitch, plain)
        events[sampled] = drawn
    for i, end in enumerate(ends or []):  # after the draws: the random streams are the same either way
        events[i, :, int(end) :] = HOLD
    out = []
    for i in range(b):
        voices = [events_to_tokens(row) for row in events[i, :, : int(lengths[i])].numpy()]
        out.append((np.stack([tok for tok, _ in voices]), np.stack([on for _, on in voices])))
    return out


def load(card: Mapping[str, Any], weights: Any, device: str = "cpu") -> GANAccompanist:
    """The registry's door: the card's ``config`` rebuilds the network, safetensors fills it."""
    return loaded(card, weights, device, GANConfig, Generator, GANAccompanist)

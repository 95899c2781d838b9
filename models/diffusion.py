"""Diffusion: a network that writes alto, tenor and bass under a melody by removing noise from a
piano roll, step by step (DDPM training, Ho et al. 2020; DDIM sampling, Song et al. 2021).

The idea a class should take away: training takes real chorale rolls, buries them under random
noise of every strength, and teaches the network to see the clean roll through the noise. Writing
music runs this backwards: start from pure noise (random notes everywhere), let the network guess
the clean roll, keep a little less noise than before, guess again, ... until no noise is left.

Representation (B batch, V = 3 voices, T steps of a 16th note): each lower voice is a one-hot piano
roll over 85 rows (a rest row and the 84 pitches 24..107, as `studio.core.conditioning`'s tokens), scaled
to [-1, 1]: the roll ``x0`` has shape (B, V, 85, T), and noise is added to it. Where a note is
struck again at the same pitch (an onset the roll cannot show) is not diffused: the network names it
at every step from the roll it is cleaning (a diffused onset row committed to new notes before the
pitches had settled, and left twice the real share of repeated notes). The melody (soprano) is known:
the network sees it clean at every step, with the meter and the melody's key
(`studio.core.conditioning`), and inpaints the other voices.

Network: 1-D dilated residual convolutions over time (a receptive field of about 8 bars of 4/4),
with channel norms per step (so any length goes through in one pass, with no seams) and the noise
level fed to every block (FiLM). It predicts the clean roll ``x0`` as logits (which row each voice
sings at each step, and whether a note starts there), trained with cross-entropy: the
``x0``-parametrization of DDPM with the categorical loss of CDCD (Dieleman et al., 2022), which suits
one-hot data better than a squared error. Two standard helpers: self-conditioning (Chen et al.,
2022: the network also sees its own previous guess) and classifier-free guidance (Ho & Salimans,
2022: the melody is hidden from a tenth of the training examples, so at sampling time the
melody's pull can be strengthened).

Sampling (`generate`): DDIM with `steps` steps on the cosine schedule (Nichol & Dhariwal, 2021).
Every guess is kept inside choir ranges and, as in a chorale, a voice rests only where the melody
rests (a card of a genre whose voices rest under the tune, `config.voices_rest`, keeps the network's
rests there at each voice's measured cost, `config.rest_costs`); the last guess is read as monophonic
voices (argmax per voice and step; a note starts where the pitch changes or the onset row says so).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.base import GUIDE_PARAM, ConfigMixin, FamilyInfo, TrainingRecipe, check_cancelled, figured_tokens, trained_on, voice_setup
from models.weights import loaded
from studio.core.conditioning import (
    N_CONTEXT_FEATURES,
    N_MELODY_FEATURES,
    N_METER_FEATURES,
    N_TOKENS,
    REST,
    context_features,
    melody_features,
    meter_features,
    pitch_class_profile,
    pitches_to_tokens,
    token_odds_by_pitch,
    tokens_to_pitches,
    tokens_to_track,
    track_to_tokens,
)
from studio.core.metrics import melody_key
from studio.core.part_writing import PartWritingGuide, guided_notes, key_preference, note_spans, voice_ranges
from studio.core.restrikes import thin_for_seed
from studio.core.roll import MODEL_PITCH_LOW, Grid, RollTrack
from studio.core.selection import Selection, context_window, regenerated_tracks, run_starts, select_voices
from studio.core.voices import rest_costs_under

__all__ = [
    "DiffusionAccompanist",
    "DiffusionConfig",
    "DiffusionTraining",
    "RollDenoiser",
    "alpha_bar",
    "ddim_times",
    "load",
    "training",
]

FAMILY = FamilyInfo(
    name="diffusion",
    label="Diffusion",
    heading="How a diffusion model works",
    idea=("Removes noise step by step: it starts from random notes and cleans them into music that fits the melody."),
    writes="accompaniment",
    uses_torch=True,
    order=5,
    flat_dynamics=True,
    regenerates="voices",
    cpu_max_beats=176,  # 44 bars of 4/4 in a server within 5 s on 2 cores, 76 in a command (docs/reliability.md, "Long melodies")
    cpu_seconds_per_beat=0.015,
)
ROWS = N_TOKENS  # rows of the diffused roll per voice: rest and 84 pitches
ONSET = N_TOKENS  # the network's output row that says a note starts (not diffused)
N_COND = N_MELODY_FEATURES + N_CONTEXT_FEATURES + 1  # melody, meter + key, "the melody is given"


@dataclass
class DiffusionConfig(ConfigMixin):
    """Architecture, training and sampling settings (the card's ``config``)."""

    voice_names: tuple[str, ...] = ("Alto", "Tenor", "Bass")
    programs: tuple[int, ...] = (52, 52, 52)
    hidden: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 16)  # receptive field 125 steps
    time_dim: int = 64  # sinusoidal features of the noise level
    window: int = 128  # training window, steps (8 bars of 4/4)
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    ema: float = 0.999  # the shipped weights are an exponential moving average of the trained ones
    uncond_share: float = 0.1  # share of examples trained without the melody (classifier-free guidance)
    self_condition: float = 0.5  # share of steps trained with the network's own previous guess as input
    # Choir ranges (MIDI, inclusive) the voices are kept in when sampling: low, high per voice.
    ranges: tuple[int, ...] = (52, 77, 45, 72, 34, 65)
    velocity: int = 80
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
    # Whether its lower voices may rest where the melody sounds, as the genre's do (set when it trains, as the
    # AR-CNN's: `studio.core.voices.rests_under_melody`), and the nats against a rest there per voice that make
    # each voice rest as often as the genre's (`bench/rests.py`); without the costs the voices sound wherever
    # the melody does (a chorale's texture, and a card from before).
    voices_rest: bool = False
    rest_costs: tuple[float, ...] = ()

    @property
    def n_voices(self) -> int:
        return len(self.voice_names)


# --------------------------------------------------------------------------- noise schedule


def alpha_bar(t: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """The cosine schedule (Nichol & Dhariwal 2021, eq. 17) in continuous time t in [0, 1]: the
    share of signal power left at noise level t (1 at t = 0, 0 at t = 1)."""
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f / math.cos(s / (1 + s) * math.pi / 2) ** 2).clamp(0.0, 1.0)


def ddim_times(steps: int) -> list[float]:
    """The noise levels a DDIM run visits: `steps` + 1 levels from 1 (pure noise) down to 0."""
    return [1.0 - i / steps for i in range(steps + 1)]


# --------------------------------------------------------------------------- network


class ChannelNorm(nn.Module):
    """Layer norm over the channels of every step on its own (B, C, T): the result at a step does
    not depend on how long the piece is."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + 1e-5) * self.weight[:, None] + self.bias[:, None]


class Block(nn.Module):
    """Residual block: norm, noise-level FiLM, dilated convolution over time; then norm and a 1x1 mix."""

    def __init__(self, channels: int, dilation: int, embed: int) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(channels)
        self.film = nn.Linear(embed, 2 * channels)
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm2 = ChannelNorm(channels)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).unsqueeze(-1).chunk(2, 1)  # (B, C, 1) each
        x = x + self.conv(F.gelu(self.norm1(x) * (1 + scale) + shift))
        return x + self.mix(F.gelu(self.norm2(x)))


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of noise levels t (B,) in [0, 1], shape=(B, dim) (Vaswani et al.'s)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


class RollDenoiser(nn.Module):
    """(noisy roll x_t (B, V*85, T), noise level t (B,), condition (B, 123, T), previous guess
    (B, V*85, T)) -> logits (B, V, 86, T): rows 0..84 a softmax over rest and pitches (the clean
    roll), row 85 whether a note starts (a sigmoid)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        rows = config.n_voices * ROWS
        self.inp = nn.Conv1d(2 * rows + N_COND, config.hidden, 1)
        self.embed = nn.Sequential(nn.Linear(config.time_dim, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.hidden))
        self.blocks = nn.ModuleList(Block(config.hidden, d, config.hidden) for d in config.dilations)
        self.norm = ChannelNorm(config.hidden)
        self.out = nn.Conv1d(config.hidden, config.n_voices * (ROWS + 1), 1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        emb = self.embed(timestep_features(t, self.config.time_dim))
        h = self.inp(torch.cat([x_t, previous, cond], 1))
        for block in self.blocks:
            h = block(h, emb)
        logits = self.out(F.gelu(self.norm(h)))
        b, _, n = logits.shape
        return logits.view(b, self.config.n_voices, ROWS + 1, n)


def guess_roll(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The network's expected clean roll in [-1, 1], shape=(B, V*85, T), from logits (B, V, 86, T):
    2 * softmax - 1 over the 85 rows (CDCD's score interpolation)."""
    probs = torch.softmax(logits[:, :, :ONSET] / max(temperature, 1e-3), 2)
    b, v, _, n = logits.shape
    return (2 * probs - 1).reshape(b, v * ROWS, n)


# --------------------------------------------------------------------------- data as rolls


def clean_roll(tokens: np.ndarray) -> np.ndarray:
    """Voices' tokens (B, V, T) as the roll x0 in {-1, 1}, shape=(B, V*85, T)."""
    b, v, n = tokens.shape
    x = np.full((b, v, ROWS, n), -1.0, np.float32)
    bi, vi, ti = np.indices(tokens.shape)
    x[bi, vi, tokens, ti] = 1.0
    return x.reshape(b, v * ROWS, n)


def condition(
    melody_tokens: np.ndarray, melody_onsets: np.ndarray, meter: np.ndarray, given: bool = True, profile: np.ndarray | None = None
) -> np.ndarray:
    """What the network is told of the music, shape=(123, T) float32: the melody (one-hot, onset,
    pitch class), the meter, the melody's key profile (default: of these tokens), and a flag; with
    `given` False the melody, the key and the flag are zeros (the unconditional model of
    classifier-free guidance)."""
    n = len(melody_tokens)
    out = np.zeros((N_COND, n), np.float32)
    if given:
        out[:N_MELODY_FEATURES] = melody_features(melody_tokens, melody_onsets).T
        out[N_MELODY_FEATURES:-1] = context_features(meter, pitch_class_profile(melody_tokens) if profile is None else profile).T
        out[-1] = 1.0
    else:
        out[N_MELODY_FEATURES : N_MELODY_FEATURES + N_METER_FEATURES] = np.asarray(meter, np.float32).T
    return out


def roll_loss(logits: torch.Tensor, tokens: torch.Tensor, onsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy of each voice's row, nats per voice-step; binary cross-entropy of its onsets)
    against the clean voices tokens, onsets (B, V, T)."""
    ce = F.cross_entropy(logits[:, :, :ONSET].transpose(1, 2), tokens)  # classes second: (B, 85, V, T)
    target = (onsets & (tokens != REST)).float()
    bce = F.binary_cross_entropy_with_logits(logits[:, :, ONSET], target)
    return ce, bce


# --------------------------------------------------------------------------- training


class DiffusionTraining(TrainingRecipe):
    """The diffusion model's training step for `studio.training.train`: one AdamW step of DDPM training on a
    batch of random chorale windows (each at its own random noise level), then the moving average.
    Logged per step: ``ce`` (nats per voice-step) and ``onset`` (binary cross-entropy)."""

    family = "diffusion"

    def __init__(self, config: DiffusionConfig, windows, device: str = "cpu") -> None:
        self.windows = windows
        self.network = RollDenoiser(config).to(device)
        self.average = RollDenoiser(config).to(device)
        self.average.load_state_dict(self.network.state_dict())
        self.average.requires_grad_(False)
        super().__init__(
            config,
            torch.device(device),
            {"network": self.network, "ema": self.average},
            {"network": torch.optim.AdamW(self.network.parameters(), config.lr, weight_decay=config.weight_decay)},
            DiffusionAccompanist,
        )

    served = "ema"  # the moving average samples and ships

    def selectable(self, step: int) -> bool:
        """Trained by its denoising loss: the moving average of the last step ships (sampling the
        validation pieces every few minutes would cost a third of a CPU run)."""
        return False

    def step(self, step: int, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        batch = self.windows.sample(c.batch_size, rng)
        b = len(batch.tokens)
        given = rng.random(b) >= c.uncond_share
        cond = np.stack(
            [condition(batch.tokens[i, 0], batch.onsets[i, 0], batch.context[i, :, :N_METER_FEATURES], bool(given[i])) for i in range(b)]
        )
        cond = torch.from_numpy(cond).to(self.device)
        tokens = torch.from_numpy(batch.tokens[:, 1:]).to(self.device)
        onsets = torch.from_numpy(batch.onsets[:, 1:]).to(self.device)
        x0 = torch.from_numpy(clean_roll(batch.tokens[:, 1:])).to(self.device)
        # 1. a noise level per example, and the noisy roll x_t = sqrt(abar) x0 + sqrt(1 - abar) eps (DDPM eq. 4)
        t = torch.from_numpy(rng.random(b).astype(np.float32)).to(self.device)
        a = alpha_bar(t)[:, None, None]
        noise = torch.from_numpy(rng.standard_normal(x0.shape).astype(np.float32)).to(self.device)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        self.network.train()
        # 2. self-conditioning: half the time, first guess without a previous guess, then feed it back
        previous = torch.zeros_like(x_t)
        if rng.random() < c.self_condition:
            with torch.no_grad():
                previous = guess_roll(self.network(x_t, t, cond, previous))
        # 3. predict the clean roll; cross-entropy of its rows and onsets
        ce, bce = roll_loss(self.network(x_t, t, cond, previous), tokens, onsets)
        loss = ce + bce
        self.update(loss)
        # 4. the moving average (with a warm-up, so early snapshots are not the random start)
        decay = min(c.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for avg, p in zip(self.average.parameters(), self.network.parameters(), strict=True):
                avg.lerp_(p, 1 - decay)
        return {"ce": float(ce.detach()), "onset": float(bce.detach())}


def training(dataset, overrides: Mapping[str, Any], device: str = "cpu") -> DiffusionTraining:
    """Four-voice windows of the dataset (melody first), transposed as its config says."""

    def check(config: DiffusionConfig) -> None:
        if len(config.ranges) != 2 * config.n_voices:
            raise ValueError(f"ranges needs a low and a high pitch for each of the {config.n_voices} voices")

    config, windows = voice_setup(
        dataset,
        DiffusionConfig,
        overrides,
        "diffusion",
        voices=4,
        check=check,
        too_few="the diffusion model needs four pitched voices (a melody and three more)",
    )
    return DiffusionTraining(config, windows, device)


def describe(genre: str, dataset=None) -> str:
    """The card's plain-words description."""
    return (
        "A diffusion model: it starts from pure noise (random notes everywhere under your melody) and removes the noise "
        "step by step, each time guessing the clean piano roll and keeping a little less noise than before, until three "
        "voices under your melody are left. It learned by seeing real music buried under noise of every strength and "
        f"guessing the music underneath; your melody stays as you played it. Trained on {trained_on(genre)}."
    )


PARAMS = [
    {
        "name": "steps",
        "type": "int",
        "default": 50,
        "min": 1,
        "max": 200,
        "help": "Denoising steps (DDIM): how many times the noise is cleaned away, a little at a time. More is slower and a little more careful.",
    },
    {
        "name": "guidance",
        "type": "float",
        "default": 1.0,
        "min": 0.0,
        "max": 5.0,
        "help": "How strongly the melody steers the voices (classifier-free guidance): 0 = the model's plain guess; "
        "higher follows the melody's harmony more strictly.",
    },
    {
        "name": "temperature",
        "type": "float",
        "default": 1.0,
        "min": 0.1,
        "max": 2.0,
        "help": "Creative risk: below 1 each guess commits early to its favourite notes; above 1 it stays open to less likely ones for longer.",
    },
    GUIDE_PARAM,
]
DEFAULTS = {p["name"]: p["default"] for p in PARAMS}
GUIDE_SWEEPS = 2  # sweeps of the part-writing guide over the voices, at each step it guides
GUIDE_FROM = 0.5  # the guide steers every step from this noise level down
REGENERATION_CONTEXT_STEPS = (
    64  # steps of the take (4 bars of 4/4, out to bar lines) on each side of a regenerated selection that the network reads
)


@dataclass
class Inpainting:
    """What a regeneration keeps, on the steps [lo, hi) the network reads: the voices' tokens and
    onsets (V, T) as they are kept, and the cells written anew, `free` (V, T) bool."""

    lo: int
    hi: int
    tokens: np.ndarray
    onsets: np.ndarray
    free: np.ndarray


# --------------------------------------------------------------------------- sampling


class DiffusionAccompanist:
    """A trained diffusion model serving the studio: alto, tenor and bass for a melody by DDIM."""

    def __init__(self, config: DiffusionConfig, network: RollDenoiser, device: str = "cpu") -> None:
        self.config = config
        self.network = network.eval()
        self.device = torch.device(device)

    @property
    def _resting(self) -> bool:
        """Whether the voices keep the network's rests under the melody (at their measured costs)."""
        return self.config.voices_rest and bool(self.config.rest_costs)

    def _allowed(self, melody_tokens: np.ndarray) -> torch.Tensor:
        """Where each voice may be, shape=(1, V, 85, T) bool: the rest row only where the melody
        rests (a chorale's texture; anywhere for a genre whose voices rest), the pitch rows inside the
        voice's choir range."""
        c = self.config
        n = len(melody_tokens)
        allowed = np.zeros((1, c.n_voices, N_TOKENS, n), bool)
        for v in range(c.n_voices):
            low, high = c.ranges[2 * v], c.ranges[2 * v + 1]
            allowed[0, v, low - MODEL_PITCH_LOW + 1 : high - MODEL_PITCH_LOW + 2] = True
        allowed[0, :, REST] = True if self._resting else melody_tokens == REST
        return torch.from_numpy(allowed).to(self.device)

    def _rest_costs(self, melody_tokens: np.ndarray) -> torch.Tensor | None:
        """`config.rest_costs` per voice at the steps where the melody sounds, 0 elsewhere, (1, V, T); None: no costs."""
        if not self._resting:
            return None
        return torch.from_numpy(rest_costs_under(melody_tokens, self.config.rest_costs)[None]).to(self.device)

    def _denoise(self, x_t: torch.Tensor, t: float, cond: torch.Tensor, previous: torch.Tensor, guidance: float) -> torch.Tensor:
        """Logits of the clean roll (1, V, 86, T); with guidance w, l_c + w (l_c - l_u) (Ho & Salimans, eq. 6)."""
        if guidance <= 0:
            return self.network(x_t, torch.full((1,), t, device=self.device), cond[:1], previous)
        both = self.network(x_t.expand(2, -1, -1), torch.full((2,), t, device=self.device), cond, previous.expand(2, -1, -1))
        return both[:1] + guidance * (both[:1] - both[1:])

    def _run(
        self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int, inpaint: Inpainting | None = None
    ) -> Iterator[tuple[int, float, torch.Tensor, torch.Tensor]]:
        """The DDIM run, one item per step: (step, noise level after it, the roll x_t, the last logits).
        With `inpaint`, on its steps only, and its kept cells given (the replacement method: each step's
        guess of them is the kept roll, and the roll x_t there is the kept roll noised to the step's level
        with fresh noise; Song et al. 2021, appendix of score-based inpainting)."""
        p = {**DEFAULTS, **params}
        steps, guidance, temperature = int(p["steps"]), float(p["guidance"]), float(p["temperature"])
        if steps < 1:
            raise ValueError("steps must be at least 1")
        c = self.config
        mel_tokens, mel_onsets = track_to_tokens(melody)
        meter = meter_features(grid)[: len(mel_tokens)]
        profile = pitch_class_profile(mel_tokens)  # the whole melody's key, also when only some bars are written
        if inpaint is not None:
            mel_tokens, mel_onsets, meter = (a[inpaint.lo : inpaint.hi] for a in (mel_tokens, mel_onsets, meter))
        cond = np.stack([condition(mel_tokens, mel_onsets, meter, True, profile), condition(mel_tokens, mel_onsets, meter, False)])
        cond = torch.from_numpy(cond).to(self.device)
        allowed, rest_costs = self._allowed(mel_tokens), self._rest_costs(mel_tokens)
        gen = torch.Generator().manual_seed(int(seed))
        n = len(mel_tokens)
        # 1. pure noise: x_1 ~ N(0, I)
        x_t = torch.randn((1, c.n_voices * ROWS, n), generator=gen).to(self.device)
        previous = torch.zeros_like(x_t)
        times = ddim_times(steps)
        strength = float(p["guide"])
        kept = given = None
        if inpaint is not None:  # the kept cells: their clean roll, and where they are (every row of a voice at a step)
            kept = torch.from_numpy(clean_roll(inpaint.tokens[None])).to(self.device)
            given = torch.from_numpy(np.repeat(~inpaint.free, ROWS, axis=0)[None]).to(self.device)  # (1, V*85, T)
        with torch.inference_mode():
            for i in range(steps):
                check_cancelled()  # a call the studio stopped waiting for ends here
                t, s = times[i], times[i + 1]
                # 2. guess the clean roll, inside the choir ranges and the texture
                logits = self._denoise(x_t, t, cond, previous, guidance)
                logits[:, :, :ONSET] = logits[:, :, :ONSET].masked_fill(~allowed, float("-inf"))
                if rest_costs is not None:
                    logits[:, :, REST] -= rest_costs
                x0 = guess_roll(logits, temperature)
                if strength > 0 and t <= GUIDE_FROM:
                    # 2b. the part-writing guide: the guess read as notes, their pitches chosen by the guide,
                    # and the guess replaced by those notes, so that the next steps write around them
                    drawn, onsets = self._read(logits)
                    tokens, _ = self._guided(drawn, onsets, logits, mel_tokens, strength, inpaint)
                    changed = torch.from_numpy(np.repeat(tokens != drawn, ROWS, axis=0)[None]).to(x0.device)  # (1, V*85, T)
                    x0 = torch.where(changed, torch.from_numpy(clean_roll(tokens[None])).to(x0), x0)
                if given is not None:
                    x0 = torch.where(given, kept, x0)  # 2c. inpainting: the kept cells are known
                previous = x0 if temperature == 1.0 or given is not None else guess_roll(logits)  # self-conditioning sees the plain guess
                # 3. the noise that guess implies, and one DDIM step to the next level (Song et al., eq. 12, eta = 0)
                a_t, a_s = float(alpha_bar(torch.tensor(t))), float(alpha_bar(torch.tensor(s)))
                eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(max(1 - a_t, 1e-8))
                x_t = math.sqrt(a_s) * x0 + math.sqrt(1 - a_s) * eps
                if given is not None:  # 3b. the kept cells noised afresh to the next level
                    fresh = torch.randn(x_t.shape, generator=gen).to(self.device)
                    x_t = torch.where(given, math.sqrt(a_s) * kept + math.sqrt(1 - a_s) * fresh, x_t)
                yield i + 1, s, x_t, logits

    def _voices(self, rows: torch.Tensor, logits: torch.Tensor) -> list[RollTrack]:
        """A roll (1, V, >= 85, T) of logits or noisy values read as voices (a step of the run, as the
        step-by-step view shows it): the highest of the 85 rows per voice and step; a note starts where
        the pitch changes, after a rest, or where the `logits`' onset row (1, V, 86, T) says so
        (probability above one half). The run's end is read by `_take` (the guide, the re-strikes)."""
        return self._tracks(*self._read(rows, logits))

    @staticmethod
    def _read(rows: torch.Tensor, logits: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (V, T) of a roll (1, V, >= 85, T), and onsets (V, T) from `logits`' onset row (or `rows`')."""
        tokens = rows[0, :, :ONSET].float().cpu().argmax(1).numpy()
        onsets = ((rows if logits is None else logits)[0, :, ONSET].float().cpu() > 0).numpy()
        return tokens, onsets

    def _guided(
        self,
        tokens: np.ndarray,
        onsets: np.ndarray,
        logits: torch.Tensor,
        melody_tokens: np.ndarray,
        strength: float,
        inpaint: Inpainting | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`_voices`' tokens and onsets (V, T) with each note's pitch chosen by the guide (see there);
        with `inpaint`, its kept cells are taken as they are and only the new notes may change."""
        movable = None
        if inpaint is not None:
            tokens = np.where(inpaint.free, tokens, inpaint.tokens)
            onsets = np.where(inpaint.free, onsets, inpaint.onsets) | run_starts(inpaint.free)
            movable = np.concatenate([np.zeros((1, tokens.shape[1]), bool), inpaint.free])
        n_voices, n = tokens.shape
        log_odds = torch.log_softmax(logits[0, :, :ONSET].double().cpu(), 1).numpy()  # (V, 85, T), -inf outside the ranges
        odds = np.zeros((n_voices + 1, n, 128))
        odds[1:] = token_odds_by_pitch(np.moveaxis(log_odds, 1, 2))[..., :128]
        pitches = np.concatenate([tokens_to_pitches(melody_tokens)[None, :n], tokens_to_pitches(tokens)])
        starts = np.concatenate([np.zeros((1, n), bool), onsets])
        for voice in range(1, n_voices + 1):  # the notes as the model's rows give them, re-strikes included
            first = note_spans(pitches[voice], starts[voice])[0]
            starts[voice] = False
            starts[voice, first] = True
        ranges = voice_ranges(self.config.voice_names, self.config.ranges)
        free = np.arange(n_voices + 1) > 0
        guide = PartWritingGuide(strength=strength, motion=tuple(self.config.motion), harmony=tuple(self.config.harmony))
        in_key = melody_key(tokens_to_track(melody_tokens, np.zeros(len(melody_tokens), bool), "Melody", 0)).accepted
        preference = key_preference(in_key, guide)
        new = guided_notes(pitches, odds, free, ranges, guide, np.random.default_rng(0), GUIDE_SWEEPS, 0.0, starts, preference, movable)
        return pitches_to_tokens(new[1:]), starts[1:]

    def generate(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> list[RollTrack]:
        """Alto, tenor and bass for `melody` (any length and meter, in one pass: no windows, no seams)."""
        last = None
        for last in self._run(melody, grid, params, seed):  # noqa: B007 - the run's last item is the result
            pass
        return self._take(last[3], melody, grid, params, seed)

    def _take(self, logits: torch.Tensor, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> list[RollTrack]:
        """The voices of a whole run's last `logits` (1, V, 86, T), read as `_voices` reads a roll; with
        the `guide` > 0 each note's pitch is then chosen by the part-writing guide
        (`studio.core.part_writing.guided_notes`) from the rows' log-odds summed over the note, the
        rhythm kept; then the card's share of re-strikes of held pitches is kept (`thin_for_seed`)."""
        mel_tokens, mel_onsets = track_to_tokens(melody)
        tokens, onsets = self._read(logits, logits)
        guide = float({**DEFAULTS, **params}["guide"])
        if guide > 0:
            tokens, onsets = self._guided(tokens, onsets, logits, mel_tokens, guide)
        beats = meter_features(grid)[: len(mel_tokens), 1] > 0
        onsets = thin_for_seed(tokens, onsets, mel_tokens, mel_onsets, beats, self.config.restrike_keep, seed)
        return self._tracks(*figured_tokens(tokens, onsets, melody, mel_tokens, mel_onsets, beats, self.config, seed))

    def _tracks(self, tokens: np.ndarray, onsets: np.ndarray) -> list[RollTrack]:
        c = self.config
        return [
            tokens_to_track(tokens[v], onsets[v], name, program, c.velocity)
            for v, (name, program) in enumerate(zip(c.voice_names, c.programs, strict=True))
        ]

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
        """The take's voices with bars `bars` of `voices` written again by inpainting: the same DDIM run
        as `generate` on the selection and `REGENERATION_CONTEXT_STEPS` steps each side, the kept cells
        given at every step (`_run`), then read as notes with the guide mending the new ones only."""
        chosen = select_voices(accompaniment, grid, Selection(*bars, None if voices is None else tuple(voices)))
        lo, hi = context_window(grid, chosen.start, chosen.end, REGENERATION_CONTEXT_STEPS)
        kept = [track_to_tokens(t) for t in chosen.kept]
        inpaint = Inpainting(
            lo,
            hi,
            np.stack([tok for tok, _ in kept])[:, lo:hi],
            np.stack([on for _, on in kept])[:, lo:hi],
            chosen.free[:, lo:hi],
        )
        last = None
        for last in self._run(melody, grid, params, seed, inpaint):  # noqa: B007 - the run's last item is the result
            pass
        guide = float({**DEFAULTS, **params}["guide"])
        tokens, onsets = self._read(last[3], last[3])
        mel_tokens, mel_onsets = (a[lo:hi] for a in track_to_tokens(melody))
        if guide > 0:
            tokens, onsets = self._guided(tokens, onsets, last[3], mel_tokens, guide, inpaint)
        else:
            tokens = np.where(inpaint.free, tokens, inpaint.tokens)
            onsets = np.where(inpaint.free, onsets, inpaint.onsets) | run_starts(inpaint.free)
        beats = meter_features(grid)[lo:hi, 1] > 0
        onsets = thin_for_seed(tokens, onsets, mel_tokens, mel_onsets, beats, self.config.restrike_keep, seed, inpaint.free)
        tokens, onsets = figured_tokens(tokens, onsets, melody, mel_tokens, mel_onsets, beats, self.config, seed, inpaint.free)
        c = self.config
        new = []
        for v, (name, program) in enumerate(zip(c.voice_names, c.programs, strict=True)):
            line, starts = np.zeros(grid.n_steps, np.int64), np.zeros(grid.n_steps, bool)
            line[lo:hi], starts[lo:hi] = tokens[v], onsets[v]
            new.append(tokens_to_track(line, starts, name, program, c.velocity))
        return regenerated_tracks(list(accompaniment), new, chosen.start, chosen.end, chosen.voices)

    def trace_plan(self, params: Mapping[str, Any]) -> tuple[int, list[int]]:
        """(the number of steps, the steps worth showing): noise levels 1 - k/5 of the way down."""
        total = int({**DEFAULTS, **params}["steps"])
        return total, sorted({max(1, round(total * k / 5)) for k in range(6)})

    def trace_caption(self, step: int, total: int) -> str:
        level = ddim_times(total)[step]
        return f"step {step} of {total}: noise level t = {level:.2f}"

    def sampling_trace(
        self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int, at: Sequence[int]
    ) -> list[tuple[int, list[RollTrack]]]:
        """The roll x_t itself (read as voices) after each of the steps `at` of the same run `generate`
        does (same seed): noise at first, music at the end (the last is exactly `generate`'s output)."""
        wanted = {int(i) for i in at}
        c = self.config
        out = []
        for step, _level, x_t, logits in self._run(melody, grid, params, seed):
            if step in wanted:
                if step == int({**DEFAULTS, **params}["steps"]):
                    out.append((step, self._take(logits, melody, grid, params, seed)))
                else:
                    out.append((step, self._voices(x_t.view(1, c.n_voices, ROWS, -1), logits)))
        return out


def load(card: Mapping[str, Any], weights: Any, device: str = "cpu") -> DiffusionAccompanist:
    """The registry's door: the card's ``config`` rebuilds the network, safetensors fills it."""
    return loaded(card, weights, device, DiffusionConfig, RollDenoiser, DiffusionAccompanist)

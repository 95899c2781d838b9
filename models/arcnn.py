"""AR-CNN: a convolutional network that rewrites a four-voice piano roll note by note, in the
spirit of Coconet (Huang et al., 2017) and AWS DeepComposer's AR-CNN.

The idea a class should take away: the network never writes music left to right. It looks at the
whole roll with some notes erased and guesses what belongs in the gaps. Music comes out of
*Gibbs sampling*: erase some notes, let the network fill them in, erase others, fill them in
again, erasing fewer each time, until every note agrees with its neighbours.

Network (1-D convolutions over time; B batch, V = 4 voices, T steps of a 16th note):
- Each voice at each step is a token: a rest or one of 84 pitches (a held note is the same pitch
  at the next step, as in Coconet). The input shows each voice's token one-hot (zero where it is
  erased), its pitch class, and a mask channel saying which steps are erased; the meter and the
  melody's key profile (`studio.core.conditioning`) tell where the bar lines and the key are, so any
  meter and any length go through in one pass. A card trained with chords (`ARCNNConfig.chords`) also
  reads the chord sounding at each step (`studio.core.chord_channels`: its tones, its bass, and a flag
  saying whether a chord is given there at all).
- A stack of dilated residual convolutions (a receptive field of about 9 bars of 4/4) ends in one
  distribution over the 85 tokens for every voice at every step.

Training (Coconet's orderless objective): erase a random share of the (voice, step) cells of real
chorale windows (the share itself uniform in (0, 1], so the network learns to fill any pattern of
gaps) and minimize the cross-entropy of the erased cells. A quarter of the batch erases the three
lower voices completely, which is exactly the harmonization task. With chords, every training piece's
chords are found once by `studio.core.chords.analyse_chords` over its own four voices (the analysis
the page shows), transposed with each window; some windows go without chords and some with chords in
only part of them (chord dropout), so one network serves with chords and without.

Uses (`generate`):
- harmonize: the melody is the soprano (and a card trained with chords follows `params["chords"]`,
  the user's chords on the melody's grid, where they are given); alto, tenor and bass are written by
  annealed blocked Gibbs sampling (Coconet's schedule: the share erased per iteration falls from 90% to 5%), singing
  wherever the melody sings (the texture of a chorale: no voice falls silent under the tune; a card of
  a genre whose voices rest under the tune, `config.voices_rest`, keeps the network's rests at each
  voice's measured cost, `config.rest_costs`).
- enhance: the same, then the melody itself is rewritten: spans of it are erased and resampled,
  and a change is kept only if the notes removed from the input stay within the share asked and
  the notes added within the number asked (so both limits hold exactly).
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

from models.base import (
    CHORDS_PARAM,
    GUIDE_PARAM,
    ConfigMixin,
    FamilyInfo,
    TrainingRecipe,
    check_cancelled,
    figured_tokens,
    trained_on,
    voice_setup,
)
from models.weights import loaded
from studio.core.chord_channels import N_CHORD_FEATURES, chord_channels, key_from_name, piece_chords
from studio.core.conditioning import (
    N_CONTEXT_FEATURES,
    N_TOKENS,
    REST,
    context_features,
    melody_end,
    meter_features,
    pitch_class_profile,
    pitches_to_tokens,
    token_odds_by_pitch,
    tokens_to_pitches,
    tokens_to_track,
    track_to_tokens,
)
from studio.core.metrics import melody_key
from studio.core.part_writing import (
    MOTION_SIZES,
    PartWritingGuide,
    chord_faults,
    guided_notes,
    key_preference,
    note_spans,
    voice_ranges,
)
from studio.core.restrikes import draw_restrikes
from studio.core.roll import MODEL_PITCH_LOW, Grid, RollTrack
from studio.core.selection import Selection, context_window, regenerated_tracks, run_starts, select_voices
from studio.core.voices import rest_costs_under

__all__ = ["ARCNN", "ARCNNAccompanist", "ARCNNConfig", "ARCNNTraining", "load", "melody_notes"]

FAMILY = FamilyInfo(
    name="arcnn",
    label="AR-CNN",
    heading="How an AR-CNN works",
    idea="Rewrites notes step by step: it looks at the whole piano roll, removes notes it doubts and adds notes it likes, again and again.",
    writes="accompaniment",
    uses_torch=True,
    order=2,
    flat_dynamics=True,
    regenerates="voices",
    follows_chords=True,
    chords_setting="chords",
    cpu_max_beats=290,  # 72 bars of 4/4 in a server within 5 s on 2 cores, 140 in a command (docs/reliability.md, "Long melodies")
    cpu_seconds_per_beat=0.010,
)
N_VOICE_FEATURES = N_TOKENS + 12 + 1  # one-hot token, pitch class, erased?


@dataclass
class ARCNNConfig(ConfigMixin):
    """Architecture and training settings (the card's ``config``)."""

    voice_names: tuple[str, ...] = ("Alto", "Tenor", "Bass")
    programs: tuple[int, ...] = (52, 52, 52)
    hidden: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 16)
    window: int = 64
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    decay_steps: int = 0  # the learning rate falls along a half cosine to lr * lr_floor over this many steps (0: constant)
    lr_floor: float = 0.05
    harmonize_share: float = 0.25  # share of each batch that erases the three lower voices entirely
    ranges: tuple[int, ...] = ()  # low, high MIDI pitch per voice for the part-writing guide (empty: SATB by name)
    # How often a voice strikes a held pitch again, by situation (`studio.core.restrikes`), read from the training
    # pieces when it trains (`bench/restrikes.py --scale` then fits it to the genre's repeated-note share); empty (a
    # card from before): its voices hold every repeated pitch as one note.
    restrikes: tuple[float, ...] = ()
    # How often an unfilled third into a beat gets a passing note, by situation (`studio.core.passing_notes`),
    # set by `bench/passing.py` so that the model's filled share on training melodies becomes the genre's;
    # empty (a card from before): none.
    passing: tuple[float, ...] = ()
    # The share of its notes starting between the eighths that are moved onto them (`studio.core.eighth_grid`), set
    # by `bench/eighth_grid.py` so that the model's share on training melodies becomes the genre's; 0: none moved.
    snap: float = 0.0
    # The guide's cost of each move size, the genre's own melodic motion (`studio.core.part_writing.motion_costs`
    # of its training voices, times a weight chosen on validation by `bench/motion.py`); empty: none.
    motion: tuple[float, ...] = ()
    # The guide's cost of each vertical interval class the model sounds more often than its genre
    # (`studio.core.part_writing.recalibrated_harmony_costs`, chosen on validation by `bench/motion.py --harmony`); empty: none.
    harmony: tuple[float, ...] = ()
    # The same kind of costs (per move size, one row or one per voice) charged inside the Gibbs sampling
    # itself (`gibbs_motion_penalties`): a cell that would start a note by a move its voice overdoes
    # costs that much, so the network writes around it (its rhythm too) rather than a note being
    # redrawn afterwards with its rhythm kept. Chosen on validation by `bench/motion.py --gibbs`; empty: none.
    gibbs_motion: tuple[float, ...] = ()
    # Whether its lower voices may rest where the melody sounds, as the genre's do (`studio.core.voices.rests_under_melody`
    # of its training pieces over `RESTING_SHARE`, set when it trains); False (a chorale, and a card from before):
    # they sing wherever the melody does.
    voices_rest: bool = False
    # With `voices_rest`: nats against a rest in each lower voice's cells under the melody's sounding steps, so that
    # each voice rests there as often as the genre's (`bench/rests.py` sets them on training melodies; 0: the
    # network's own odds, which can leave a voice silent for a whole tune once it starts resting). Empty: the
    # voices sound wherever the melody does, as if `voices_rest` were false, until they are measured.
    rest_costs: tuple[float, ...] = ()
    velocity: int = 80
    chords: bool = False  # chord channels in the input (False: a card from before chords; it ignores params["chords"])
    chord_dropout: float = 0.4  # share of training windows shown without chords
    chord_partial: float = 0.2  # share of training windows shown chords in only part of them

    @property
    def n_voices(self) -> int:
        return len(self.voice_names) + 1

    @property
    def n_context(self) -> int:
        """Per-step context channels: meter and key profile, then the chord channels when trained with them."""
        return N_CONTEXT_FEATURES + (N_CHORD_FEATURES if self.chords else 0)


class Block(nn.Module):
    """Residual block: dilated convolution over time, then a 1x1 mix, each after a norm."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, channels)
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm2 = nn.GroupNorm(1, channels)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.conv(F.gelu(self.norm1(x)))
        return x + self.mix(F.gelu(self.norm2(x)))


class ARCNN(nn.Module):
    """(tokens (B, V, T) int64, erased (B, V, T) bool, context (B, T, C)) -> logits (B, V, 85, T); C is
    `config.n_context` (24, or 49 with the chord channels)."""

    def __init__(self, config: ARCNNConfig) -> None:
        super().__init__()
        self.config = config
        v = config.n_voices
        self.inp = nn.Conv1d(v * N_VOICE_FEATURES + config.n_context, config.hidden, 1)
        self.blocks = nn.ModuleList(Block(config.hidden, d) for d in config.dilations)
        self.norm = nn.GroupNorm(1, config.hidden)
        self.out = nn.Conv1d(config.hidden, v * N_TOKENS, 1)
        # Where each token's pitch class sits among a voice's features: after the 85 one-hot channels;
        # a rest has no pitch class (it points at channel N_TOKENS with a 0 written there).
        pc_channel = torch.full((N_TOKENS,), N_TOKENS, dtype=torch.long)
        pc_channel[1:] += (torch.arange(1, N_TOKENS) + MODEL_PITCH_LOW - 1) % 12
        self.register_buffer("pc_channel", pc_channel, persistent=False)

    def features(self, tokens: torch.Tensor, erased: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The network's input, shape (B, V * 98 + C, T): per voice its token one-hot (85), pitch class
        (12), both zero where erased, and the erased flag (1); then the context (C: 24, + 25 chord
        channels). Written in place into one buffer (each value is set once: no one-hot, concatenation
        or transposition copies)."""
        b, v, t = tokens.shape
        x = tokens.new_zeros((b, v * N_VOICE_FEATURES + self.config.n_context, t), dtype=torch.float32)
        voices = x[:, : v * N_VOICE_FEATURES].view(b, v, N_VOICE_FEATURES, t)  # (B, V, F, T), a view of x
        keep = (~erased).float().unsqueeze(2)  # (B, V, 1, T)
        voices.scatter_(2, tokens.unsqueeze(2), keep)  # the token's one-hot where kept
        voices.scatter_(2, self.pc_channel[tokens].unsqueeze(2), keep * (tokens != REST).unsqueeze(2))  # its pitch class
        voices[:, :, N_VOICE_FEATURES - 1] = erased
        x[:, v * N_VOICE_FEATURES :] = context.transpose(1, 2)
        return x

    def forward(self, tokens: torch.Tensor, erased: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = self.inp(self.features(tokens, erased, context))
        for block in self.blocks:
            h = block(h)
        logits = self.out(F.gelu(self.norm(h)))
        b, _, t = logits.shape
        return logits.view(b, self.config.n_voices, N_TOKENS, t)


def random_erasure(shape: tuple[int, int, int], harmonize_share: float, rng: np.random.Generator) -> np.ndarray:
    """Coconet's training masks, shape=(B, V, T) bool: each example erases a uniform random share
    of its cells; `harmonize_share` of them erase every voice but the melody instead."""
    b, v, t = shape
    share = rng.uniform(0.0, 1.0, size=(b, 1, 1))
    erased = rng.random((b, v, t)) < share
    harmonize = rng.random(b) < harmonize_share
    erased[harmonize] = False
    erased[harmonize, 1:] = True
    empty = ~erased.reshape(b, -1).any(1)
    for i in np.flatnonzero(empty):  # at least one cell to learn from
        erased[i, rng.integers(v), rng.integers(t)] = True
    return erased


def chord_dropout(chords: np.ndarray, dropout: float, partial: float, rng: np.random.Generator) -> np.ndarray:
    """Training windows' chord channels (B, L, 25) with chords taken away: a `dropout` share of the
    windows lose all of theirs, a `partial` share keep them only inside (or only outside) a random
    stretch of steps; the rest keep them all."""
    chords = chords.copy()
    b, length, _ = chords.shape
    draw = rng.random(b)
    chords[draw < dropout] = 0.0
    for i in np.flatnonzero((draw >= dropout) & (draw < dropout + partial)):
        a, z = np.sort(rng.integers(0, length + 1, size=2))
        if rng.random() < 0.5:
            chords[i, a:z] = 0.0
        else:
            chords[i, :a] = 0.0
            chords[i, z:] = 0.0
    return chords


def with_chords(context: np.ndarray, config: ARCNNConfig, chords: np.ndarray | None = None) -> np.ndarray:
    """The network's context (..., T, config.n_context): `context` (..., T, 24), then, for a card
    trained with chords, the chord channels `chords` (..., T, 25) (None: no chord given anywhere)."""
    if not config.chords:
        return context
    if chords is None:
        chords = np.zeros((*context.shape[:-1], N_CHORD_FEATURES), np.float32)
    return np.concatenate([context, chords.astype(np.float32)], axis=-1)


def masked_cross_entropy(logits: torch.Tensor, tokens: torch.Tensor, erased: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (nats) of the erased cells, each example weighted equally."""
    nll = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # classes second: (B, 85, V, T) -> (B, V, T)
    weights = erased.float()
    per_example = (nll * weights).sum((1, 2)) / weights.sum((1, 2)).clamp_min(1.0)
    return per_example.mean()


class ARCNNTraining(TrainingRecipe):
    """The AR-CNN's training step for `studio.training.train`: one Adam step on a batch of random windows
    with random erasures. Logged per step: ``nll`` (nats per erased cell)."""

    family = "arcnn"

    def __init__(self, config: ARCNNConfig, windows, device: str = "cpu") -> None:
        self.windows = windows
        self.network = ARCNN(config).to(device)
        super().__init__(
            config,
            torch.device(device),
            {"network": self.network},
            {"network": torch.optim.AdamW(self.network.parameters(), config.lr, weight_decay=config.weight_decay)},
            ARCNNAccompanist,
        )

    def selectable(self, step: int) -> bool:
        """The network is trained by likelihood: the last step ships (no selection by samples)."""
        return False

    def learning_rate(self, step: int) -> float:
        """The learning rate at `step`: `lr`, or with `decay_steps` a half cosine from `lr` down to
        `lr * lr_floor` at that step, and the floor after it."""
        c = self.config
        if c.decay_steps <= 0:
            return c.lr
        done = min(1.0, step / c.decay_steps)
        return c.lr * (c.lr_floor + (1.0 - c.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * done)))

    def step(self, step: int, rng: np.random.Generator) -> dict[str, float]:
        for group in self.optimizers["network"].param_groups:
            group["lr"] = self.learning_rate(step)
        batch = self.windows.sample(self.config.batch_size, rng)
        tokens = torch.from_numpy(batch.tokens).to(self.device)
        context = batch.context
        if self.config.chords:
            context = with_chords(
                context, self.config, chord_dropout(batch.chords, self.config.chord_dropout, self.config.chord_partial, rng)
            )
        context = torch.from_numpy(context).to(self.device)
        erased = torch.from_numpy(random_erasure(tuple(tokens.shape), self.config.harmonize_share, rng)).to(self.device)
        self.network.train()
        loss = masked_cross_entropy(self.network(tokens, erased, context), tokens, erased)
        self.update(loss)
        return {"nll": float(loss.detach())}


def training(dataset, overrides: Mapping[str, Any], device: str = "cpu") -> ARCNNTraining:
    """Four-voice windows of the dataset (melody first), transposed as its config says; with
    ``chords``, each piece's chords found once here (`piece_chords`) and carried by its windows."""
    config, windows = voice_setup(dataset, ARCNNConfig, overrides, "AR-CNN", voices=4)
    if config.chords:
        for piece, voices in zip(dataset.train, windows.pieces, strict=True):
            tracks = [track for track in piece.tracks if not track.is_drum][: config.n_voices]
            voices.chords = chord_channels(piece_chords(tracks, piece.grid, key_from_name(piece.key)), voices.n_steps)
    return ARCNNTraining(config, windows, device)


def describe(genre: str, dataset=None) -> str:
    """The card's plain-words description."""
    return (
        "An AR-CNN (autoregressive convolutional network), like AWS DeepComposer's: it looks at the whole piano roll with "
        "some notes erased and guesses what belongs in the gaps. It writes by Gibbs sampling: erase some notes, fill them "
        "in, erase others, fill again, fewer each time. Harmonize keeps your melody and writes the three voices under it; "
        f"enhance also rewrites your melody, within the limits you set. Trained on {trained_on(genre)}."
    )


PARAMS = [
    {
        "name": "mode",
        "type": "choice",
        "default": "harmonize",
        "choices": ["harmonize", "enhance"],
        "help": "harmonize: keep your melody and write the three voices under it; enhance: also rewrite the melody (within the limits below).",
    },
    {
        "name": "iterations",
        "type": "int",
        "default": 64,
        "min": 1,
        "max": 256,
        "help": "Sampling iterations: each erases part of the music and lets the network fill it in again (more = more settled).",
    },
    {
        "name": "creative_risk",
        "type": "float",
        "default": 0.7,
        "min": 0.0,
        "max": 2.0,
        "help": "Temperature: 0 always takes the network's favourite note, 1 samples as it learned, above 1 takes more risks.",
    },
    {
        "name": "max_removed",
        "type": "float",
        "default": 0.3,
        "min": 0.0,
        "max": 1.0,
        "help": "Enhance: the largest share of your melody's notes that may be removed (0 = remove none).",
    },
    {
        "name": "max_added",
        "type": "int",
        "default": 8,
        "min": 0,
        "max": 64,
        "help": "Enhance: the largest number of new notes that may be added to your melody.",
    },
    GUIDE_PARAM,
]
DEFAULTS = {p["name"]: p["default"] for p in PARAMS}
REGENERATION_CONTEXT_STEPS = (
    64  # steps of the take (4 bars of 4/4, out to bar lines) on each side of a regenerated selection that the network reads
)
GUIDE_SWEEPS = 3  # sweeps of the part-writing guide over the sampled voices (each: one forward pass per voice)


def melody_notes(tokens: np.ndarray, onsets: np.ndarray) -> set[tuple[int, int]]:
    """The notes of one voice as (start step, token): where a sound starts after a rest, a new
    pitch, or a marked onset (a repeated note)."""
    tokens = np.asarray(tokens)
    previous = np.concatenate([[REST], tokens[:-1]])
    starts = (tokens != REST) & ((tokens != previous) | np.asarray(onsets, bool))
    return {(int(t), int(tokens[t])) for t in np.flatnonzero(starts)}


def gibbs_motion_penalties(tokens: np.ndarray, cells: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """(cells.sum(), N_TOKENS) nats against each token of each cell (v, t) of `cells` (V, T) bool, in
    `np.nonzero` order: for each side, the cost (`costs`, MOTION_SIZES per move size: 0..12 semitones,
    then over an octave; one row for every voice or one per accompaniment voice, high to low) of the
    move from the neighbouring cell's pitch of the same voice to the token's. Holding the neighbour's
    pitch (the same token: one note) and a rest on either side cost nothing."""
    v_idx, t_idx = np.nonzero(cells)
    out = np.zeros((len(v_idx), N_TOKENS))
    rows = np.asarray(costs, float).reshape(-1, MOTION_SIZES)
    if len(v_idx) == 0 or len(rows) == 0:
        return out
    per_cell = rows[np.clip(v_idx - 1, 0, len(rows) - 1)]  # each cell's voice's row (a single row serves all)
    cand = np.arange(N_TOKENS)[None, :]
    for side in (-1, 1):
        at = t_idx + side
        inside = (at >= 0) & (at < tokens.shape[1])
        neighbour = np.where(inside, tokens[v_idx, np.clip(at, 0, tokens.shape[1] - 1)], REST)[:, None]
        moves = (neighbour != REST) & (cand != REST) & (cand != neighbour)
        size = np.minimum(np.abs(cand - neighbour), MOTION_SIZES - 1)  # token and pitch distances agree
        out += np.where(moves, np.take_along_axis(per_cell, size, axis=1), 0.0)
    return out


def annealed_share(i: int, n: int, high: float = 0.9, low: float = 0.05, eta: float = 0.75) -> float:
    """Coconet's schedule: the share of cells erased at iteration i of n falls linearly from `high`
    to `low` over the first `eta` of the iterations, then stays at `low`."""
    return max(low, high - (high - low) * i / max(1.0, eta * n))


class ARCNNAccompanist:
    """A trained AR-CNN serving the studio: harmonize or enhance a melody by Gibbs sampling."""

    def __init__(self, config: ARCNNConfig, network: ARCNN, device: str = "cpu") -> None:
        self.config = config
        self.network = network.eval()
        self.device = torch.device(device)

    def context(self, grid: Grid, melody_tokens: np.ndarray, chords: Sequence[Any] | None = None) -> np.ndarray:
        """The network's per-step context, shape=(T, config.n_context) float32: meter and the melody's key
        profile, then (a card trained with chords) the chord channels of `chords` (ChordSpans on the grid;
        None or empty: no chord given). A card without chord channels ignores `chords`."""
        context = context_features(meter_features(grid), pitch_class_profile(melody_tokens)).astype(np.float32)
        return with_chords(context, self.config, chord_channels(chords, len(melody_tokens)) if self.config.chords else None)

    def gibbs_costs(self, guide: float) -> tuple[float, ...]:
        """The card's `gibbs_motion` costs scaled by the `guide` parameter (0: none, the model alone)."""
        return tuple(guide * cost for cost in self.config.gibbs_motion)

    def _logits(self, tokens: np.ndarray, erased: np.ndarray, context: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            out = self.network(
                torch.from_numpy(tokens[None]).to(self.device),
                torch.from_numpy(erased[None]).to(self.device),
                torch.from_numpy(context[None]).to(self.device),
            )
        return out[0].float().cpu()  # (V, 85, T)

    @staticmethod
    def _sample(
        logits: torch.Tensor,
        cells: np.ndarray,
        temperature: float,
        gen: torch.Generator,
        no_rest: np.ndarray | None = None,
        penalty: np.ndarray | None = None,
        rest_cost: np.ndarray | None = None,
    ) -> np.ndarray:
        """Tokens for the `cells` (V, T) bool from logits (V, 85, T); cells marked in `no_rest` (V, T)
        may not be a rest; `penalty` (cells.sum(), 85): nats against each token of each cell;
        `rest_cost` (V, T): nats against a rest in each cell."""
        chosen = logits.permute(0, 2, 1)[torch.from_numpy(cells)]  # (n, 85): only the cells asked for, copied
        if penalty is not None:
            chosen -= torch.from_numpy(penalty).to(chosen.dtype)
        if rest_cost is not None:
            chosen[:, REST] -= torch.from_numpy(rest_cost[cells]).to(chosen.dtype)
        if no_rest is not None:
            chosen[torch.from_numpy(no_rest[cells]), REST] = float("-inf")
        if temperature <= 1e-3:
            return chosen.argmax(1).numpy()
        return torch.multinomial(torch.softmax(chosen / temperature, 1), 1, generator=gen)[:, 0].numpy()

    def gibbs(
        self,
        tokens: np.ndarray,
        free: np.ndarray,
        context: np.ndarray,
        iterations: int,
        temperature: float,
        gen: torch.Generator,
        rng: np.random.Generator,
        trace: dict[int, np.ndarray] | None = None,
        motion: Sequence[float] = (),
    ) -> np.ndarray:
        """Annealed blocked Gibbs sampling of the `free` cells (V, T) bool of `tokens` (V, T). When
        `trace` is given, its keys are iteration numbers (1-based) and get the tokens after them.
        `motion`: move-size costs charged to each cell's draw (`gibbs_motion_penalties`); empty: none."""
        tokens = tokens.copy()
        if not free.any():
            return tokens
        resting = self.config.voices_rest and bool(self.config.rest_costs)  # the genre's rests kept, at their costs
        for i in range(iterations):
            check_cancelled()  # a call the studio stopped waiting for ends here
            erased = free if i == 0 else free & (rng.random(free.shape) < annealed_share(i, iterations))
            if erased.any():
                # Chorale texture: the lower voices sing wherever the melody sings (a rest is allowed only
                # where the melody rests). Without this a melody unlike a chorale soprano (runs of 16th
                # notes) can leave the voices silent for bars. A genre whose voices rest under the tune
                # (`config.voices_rest`) keeps the network's rests, each voice's at its measured cost
                # (`config.rest_costs`: without them the network can leave a voice silent for a whole tune).
                no_rest = None if resting else free & (tokens[0] != REST)[None, :]
                penalty = gibbs_motion_penalties(tokens, erased, motion) if motion else None
                rests = (
                    np.vstack([np.zeros((1, len(tokens[0])), np.float32), rest_costs_under(tokens[0], self.config.rest_costs)])
                    if resting
                    else None
                )
                tokens[erased] = self._sample(self._logits(tokens, erased, context), erased, temperature, gen, no_rest, penalty, rests)
            if trace is not None and i + 1 in trace:
                trace[i + 1] = tokens.copy()
        return tokens

    def _enhance(
        self,
        tokens: np.ndarray,
        onsets: np.ndarray,
        context: np.ndarray,
        params: Mapping[str, Any],
        gen: torch.Generator,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rewrite the melody (voice 0) span by span; a change is kept only within the limits."""
        original = melody_notes(tokens[0], onsets[0])
        may_remove = int(np.floor(float(params["max_removed"]) * len(original) + 1e-9))
        may_add = int(params["max_added"])
        melody, mel_onsets = tokens[0].copy(), onsets[0].copy()
        n = len(melody)
        temperature = float(params["creative_risk"])
        for _ in range(int(params["iterations"])):
            check_cancelled()
            span = int(rng.integers(1, 5))
            start = int(rng.integers(0, max(1, n - span + 1)))
            cells = np.zeros_like(tokens, bool)
            cells[0, start : start + span] = True
            trial = tokens.copy()
            trial[0] = melody
            proposal = self._sample(self._logits(trial, cells, context), cells, max(temperature, 0.3), gen)
            candidate = melody.copy()
            candidate[start : start + span] = proposal
            cand_onsets = mel_onsets.copy()
            cand_onsets[start : start + span] = False  # resampled steps start notes only where the pitch changes
            notes = melody_notes(candidate, cand_onsets)
            if len(original - notes) <= may_remove and len(notes - original) <= may_add:
                melody, mel_onsets = candidate, cand_onsets
        return melody, mel_onsets

    def generate(
        self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int, trace: dict[int, np.ndarray] | None = None
    ) -> list[RollTrack]:
        """Alto, tenor and bass for `melody` (harmonize), or, in enhance mode, the rewritten melody
        (marked ``role="melody"``, replacing the input's) followed by the three voices. `trace`
        (see `gibbs`) collects the harmonization as it goes."""
        p = {**DEFAULTS, **params}
        c = self.config
        gen = torch.Generator().manual_seed(int(seed))
        rng = np.random.default_rng(int(seed))
        mel_tokens, mel_onsets = track_to_tokens(melody)
        n = len(mel_tokens)
        context = self.context(grid, mel_tokens, p.get(CHORDS_PARAM))
        tokens = np.zeros((c.n_voices, n), np.int64)
        tokens[0] = mel_tokens
        onsets = np.zeros((c.n_voices, n), bool)
        onsets[0] = mel_onsets
        free = np.zeros_like(tokens, bool)
        free[1:] = True
        iterations = int(p["iterations"])
        temperature = float(p["creative_risk"])
        motion = self.gibbs_costs(float(p["guide"]))
        tokens = self.gibbs(tokens, free, context, iterations, temperature, gen, rng, trace, motion)
        out: list[RollTrack] = []
        if p["mode"] == "enhance":
            new_melody, new_onsets = self._enhance(tokens, onsets, context, p, gen, rng)
            if not np.array_equal(new_melody, tokens[0]):
                tokens[0] = new_melody
                tokens = self.gibbs(tokens, free, context, max(1, iterations // 2), temperature, gen, rng, None, motion)  # voices follow it
            track = tokens_to_track(new_melody, new_onsets, melody.name, melody.program, c.velocity)
            track.role = "melody"
            out.append(track)
        starts = np.zeros_like(tokens, bool)  # the voices' re-strikes: none but what the guide keeps apart
        if float(p["guide"]) > 0:
            chords = p.get(CHORDS_PARAM) if self.config.chords else None
            faults = chord_faults(chords, grid, PartWritingGuide(strength=float(p["guide"]))) if chords else None
            tokens, starts = self.guided(tokens, context, float(p["guide"]), temperature, rng, melody_key(melody).accepted, faults=faults)
        # Held pitches struck again where the genre's voices strike them (drawn last: the pitches are those drawn before).
        sung = new_onsets if p["mode"] == "enhance" else mel_onsets
        beats = meter_features(grid)[:, 1] > 0
        starts |= draw_restrikes(tokens, sung & (tokens[0] != REST), beats, c.restrikes, rng)
        # The genre's rhythm: starts on the eighths, thirds into a beat passed through.
        tokens[1:], starts[1:] = figured_tokens(tokens[1:], starts[1:], melody, tokens[0], sung, beats, c, seed)
        # The voices start nothing after the melody's last note: each holds what it sings then (a
        # held pitch is one note here) to the end of the song.
        end = melody_end(tokens[0])
        if 0 < end < n:
            tokens[1:, end:] = tokens[1:, end - 1 : end]
            starts[1:, end:] = False
        for v, (name, program) in enumerate(zip(c.voice_names, c.programs, strict=True), start=1):
            out.append(tokens_to_track(tokens[v], starts[v], name, program, c.velocity))
        return out

    def guided(
        self,
        tokens: np.ndarray,
        context: np.ndarray,
        strength: float,
        temperature: float,
        rng: np.random.Generator,
        in_key: frozenset[int] = frozenset(range(12)),
        starts: np.ndarray | None = None,
        movable: np.ndarray | None = None,
        faults: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sampled voices (tokens (V, T), the melody first) with each note's pitch redrawn by the
        part-writing guide (`studio.core.part_writing.guided_notes`), and the note starts (V, T): the
        rhythm is kept (two notes given one pitch stay two notes). Voice by voice, the network's odds
        for that voice given all the others (the voice erased, as in training), summed over each note's
        steps, times the guide's; `GUIDE_SWEEPS` rounds over the voices. `starts` (V, T): re-strikes
        besides the pitch changes (default: none); `movable` (V, T): only notes starting there may change.

        `faults` (T, 128): the chords'
        strong-beat faults (`studio.core.part_writing.chord_faults`), when chords are given."""
        pitches = tokens_to_pitches(tokens)
        given = starts
        starts = np.zeros(tokens.shape, bool)
        for voice in range(1, tokens.shape[0]):
            starts[voice, note_spans(pitches[voice], None if given is None else given[voice])[0]] = True
        ranges = voice_ranges(self.config.voice_names, self.config.ranges)
        guide = PartWritingGuide(strength=strength, motion=tuple(self.config.motion), harmony=tuple(self.config.harmony))
        n_voices, n = tokens.shape
        for _ in range(GUIDE_SWEEPS):
            for voice in range(1, n_voices):
                check_cancelled()
                erased = np.zeros_like(tokens, bool)
                erased[voice] = True
                log_odds = torch.log_softmax(self._logits(pitches_to_tokens(pitches), erased, context)[voice].double(), 0)
                odds = np.zeros((n_voices, n, 128))
                odds[voice] = token_odds_by_pitch(log_odds.T.numpy())[:, :128]
                free = np.arange(n_voices) == voice
                pitches = guided_notes(
                    pitches, odds, free, ranges, guide, rng, 1, temperature, starts, key_preference(in_key, guide), movable, faults
                )
        return pitches_to_tokens(pitches), starts

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
        """The take's voices with bars `bars` of `voices` written again by inpainting: only the selected
        cells are erased and Gibbs-sampled, conditioned on everything else (the melody, the other voices,
        the bars around); then the part-writing guide mends the new notes only. The network sees the
        selection with `REGENERATION_CONTEXT_STEPS` steps each side (as long as its training windows; most
        of its receptive field). The melody is kept (enhance mode does not apply)."""
        p = {**DEFAULTS, **params}
        c = self.config
        chosen = select_voices(accompaniment, grid, Selection(*bars, None if voices is None else tuple(voices)))
        gen = torch.Generator().manual_seed(int(seed))
        rng = np.random.default_rng(int(seed))
        mel_tokens, mel_onsets = track_to_tokens(melody)
        lo, hi = context_window(grid, chosen.start, chosen.end, REGENERATION_CONTEXT_STEPS)
        chords = p.get(CHORDS_PARAM) if c.chords else None
        context = self.context(grid, mel_tokens, chords)[lo:hi]  # the chords given, if the card follows them
        kept = [track_to_tokens(t) for t in chosen.kept]
        tokens = np.stack([mel_tokens, *(tok for tok, _ in kept)])[:, lo:hi]
        free = np.concatenate([np.zeros((1, grid.n_steps), bool), chosen.free])[:, lo:hi]
        restrikes = np.concatenate([np.zeros((1, grid.n_steps), bool), *(on[None] for _, on in kept)])[:, lo:hi] & ~free
        restrikes |= run_starts(free)  # the new music starts its own notes
        temperature = float(p["creative_risk"])
        motion = self.gibbs_costs(float(p["guide"]))
        tokens = self.gibbs(tokens, free, context, int(p["iterations"]), temperature, gen, rng, None, motion)
        # After the melody's last note the new cells hold what sounds then (as `generate` ends a song).
        end = melody_end(mel_tokens) - lo
        if 0 < end < tokens.shape[1]:
            after = free[:, end:]
            tokens[:, end:] = np.where(after, tokens[:, end - 1 : end], tokens[:, end:])
            restrikes[:, end:] &= ~after
        starts = restrikes
        if float(p["guide"]) > 0:
            faults = chord_faults(chords, grid, PartWritingGuide(strength=float(p["guide"])))[lo:hi] if chords else None
            accepted = melody_key(melody).accepted
            tokens, starts = self.guided(tokens, context, float(p["guide"]), temperature, rng, accepted, restrikes, free, faults)
        sung = (mel_onsets & (mel_tokens != REST))[lo:hi]
        beats = meter_features(grid)[lo:hi, 1] > 0
        starts = starts | (draw_restrikes(tokens, sung, beats, c.restrikes, rng) & free)
        # Only where the new music is: the kept notes stay as they are.
        tokens[1:], changed = figured_tokens(tokens[1:], (starts | restrikes)[1:], melody, tokens[0], sung, beats, c, seed, free[1:])
        starts[1:] = np.where(free[1:], changed, starts[1:])
        new = []
        for v, (name, program) in enumerate(zip(c.voice_names, c.programs, strict=True), start=1):
            line, onsets = np.zeros(grid.n_steps, np.int64), np.zeros(grid.n_steps, bool)
            line[lo:hi], onsets[lo:hi] = tokens[v], starts[v] | restrikes[v]
            new.append(tokens_to_track(line, onsets, name, program, c.velocity))
        return regenerated_tracks(list(accompaniment), new, chosen.start, chosen.end, chosen.voices)

    def sampling_trace(
        self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int, at: Sequence[int]
    ) -> list[tuple[int, list[RollTrack]]]:
        """The voices after each of the iterations `at` of the same run `generate` does (same seed)."""
        trace: dict[int, np.ndarray] = {int(i): None for i in at}  # type: ignore[misc]
        self.generate(melody, grid, {**params, "mode": "harmonize"}, seed, trace)
        c = self.config
        out = []
        for i in sorted(k for k, v in trace.items() if v is not None):
            tokens = trace[i]
            out.append(
                (
                    i,
                    [
                        tokens_to_track(tokens[v], np.zeros(tokens.shape[1], bool), name, program, c.velocity)
                        for v, (name, program) in enumerate(zip(c.voice_names, c.programs, strict=True), start=1)
                    ],
                )
            )
        return out

    def held_out_nll(self, pieces: Sequence[Any], seed: int = 0) -> dict[str, Any]:
        """Frame-level negative log-likelihood (nats per 16th-note frame) on held-out pieces:
        ``voice_given_others`` erases one whole voice and scores it given the other three (per
        voice, and the mean), ``half_erased`` erases a random half of all cells (fixed seed) and
        scores them; both read every piece whole, untransposed."""
        rng = np.random.default_rng(seed)
        per_voice = np.zeros(self.config.n_voices)
        frames = 0
        half_sum, half_n = 0.0, 0
        for piece in pieces:
            tokens = piece.tokens.astype(np.int64)
            context = with_chords(context_features(piece.meter, piece.profile).astype(np.float32), self.config)  # no chords given
            t = torch.from_numpy(tokens)
            for v in range(self.config.n_voices):
                erased = np.zeros_like(tokens, bool)
                erased[v] = True
                logits = self._logits(tokens, erased, context)
                per_voice[v] += float(F.cross_entropy(logits[v].T, t[v], reduction="sum"))
            frames += tokens.shape[1]
            erased = rng.random(tokens.shape) < 0.5
            logits = self._logits(tokens, erased, context)
            nll = F.cross_entropy(logits.permute(0, 2, 1).reshape(-1, N_TOKENS), t.reshape(-1), reduction="none").view(tokens.shape)
            half_sum += float(nll[torch.from_numpy(erased)].sum())
            half_n += int(erased.sum())
        names = ["Soprano", *self.config.voice_names]
        voices = {name: round(per_voice[i] / max(1, frames), 4) for i, name in enumerate(names)}
        return {
            "voice_given_others": voices,
            "voice_given_others_mean": round(float(np.mean(list(voices.values()))), 4),
            "half_erased": round(half_sum / max(1, half_n), 4),
            "frames": frames,
            "pieces": len(pieces),
        }


def unigram_nll(train_pieces: Sequence[Any], held_out: Sequence[Any], n_voices: int) -> dict[str, Any]:
    """The baseline: an independent per-voice model (each voice's token frequencies in training,
    add-one smoothed), scored per frame on the held-out pieces."""
    counts = np.ones((n_voices, N_TOKENS))
    for piece in train_pieces:
        for v in range(n_voices):
            counts[v] += np.bincount(piece.tokens[v], minlength=N_TOKENS)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    total = np.zeros(n_voices)
    frames = 0
    for piece in held_out:
        for v in range(n_voices):
            total[v] -= logp[v, piece.tokens[v]].sum()
        frames += piece.tokens.shape[1]
    per = total / max(1, frames)
    return {"per_voice": [round(float(x), 4) for x in per], "mean": round(float(per.mean()), 4)}


def load(card: Mapping[str, Any], weights: Any, device: str = "cpu") -> ARCNNAccompanist:
    """The registry's door: the card's ``config`` rebuilds the network, safetensors fills it."""
    return loaded(card, weights, device, ARCNNConfig, ARCNN, ARCNNAccompanist)

"""Transformer: continues a melody by some bars, in its style (a small GPT, in the spirit of nanoGPT).

The idea a class should take away: the melody is written as a sentence of *events* and the network
only ever answers one question, "what comes next?". It reads every earlier event through
self-attention (each event looks back at all the others and picks what matters: the last beat, the
first bar of the phrase, the key), gives a probability to each possible next event, and one is
drawn. Drawn events are fed back in, one at a time; a *KV cache* keeps what the network already
computed for earlier events, so each new event costs one step instead of re-reading the whole tune.

Events (REMI-like, one melody line on the studio's 16th-note grid):
    BOS  NUM_n DEN_d  (meter, at the start and where it changes)
    BAR  then for each note: POS_p (16ths from the bar line)  PITCH_k  DUR_d (16ths, up to 32)
A pickup bar's positions count from where the full bar would start, so beats keep their names.

Sampling choices a user sees: top-k or nucleus (top-p), creative risk (temperature), bars to add and
how many bars of the input to use as the prompt. Sampling follows the grammar above (a POS never goes
back in time, every added bar has the tune's meter), so every continuation is well formed.
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

from models.base import MELODY_TRACKS, ConfigMixin, FamilyInfo, TrainingRecipe, check_cancelled, configured
from models.weights import loaded
from studio.core.errors import InputError
from studio.core.roll import MODEL_PITCH_HIGH, MODEL_PITCH_LOW, Bar, Grid, RollTrack, track_notes

__all__ = [
    "GPT",
    "Continuer",
    "MelodyTokens",
    "TransformerConfig",
    "TransformerTraining",
    "decode",
    "encode",
    "load",
]

FAMILY = FamilyInfo(
    name="transformer",
    label="Transformer",
    heading="How a Transformer works",
    idea=("Attends to what came before: it reads the melody so far and predicts the next note, one at a time."),
    writes="melody",
    uses_torch=True,
    order=3,
    dataset="melodies",  # learns from tunes (`studio.training.melodies`), not from multi-track rolls
)

# --------------------------------------------------------------------------- the event vocabulary

PAD, BOS, EOS, BAR = 0, 1, 2, 3
NUMERATORS = tuple(range(1, 17))
DENOMINATORS = (1, 2, 4, 8, 16, 32)
MAX_POS = 64  # a bar of up to 16 quarter notes
MAX_DUR = 32  # two whole notes of 4/4; longer notes are shortened to this
NUM0 = 4
DEN0 = NUM0 + len(NUMERATORS)
POS0 = DEN0 + len(DENOMINATORS)
PITCH0 = POS0 + MAX_POS
DUR0 = PITCH0 + (MODEL_PITCH_HIGH - MODEL_PITCH_LOW + 1)
VOCAB = DUR0 + MAX_DUR


def token_name(token: int) -> str:
    """A readable name for a token (for pictures and debugging)."""
    if token < NUM0:
        return ("PAD", "BOS", "EOS", "BAR")[token]
    if token < DEN0:
        return f"NUM_{NUMERATORS[token - NUM0]}"
    if token < POS0:
        return f"DEN_{DENOMINATORS[token - DEN0]}"
    if token < PITCH0:
        return f"POS_{token - POS0}"
    if token < DUR0:
        return f"PITCH_{token - PITCH0 + MODEL_PITCH_LOW}"
    return f"DUR_{token - DUR0 + 1}"


@dataclass
class MelodyTokens:
    """A tokenized melody: `tokens`, where each bar's BAR token is (`bar_index`), and each bar's
    meter prefix (NUM, DEN) so a window can start at any bar."""

    tokens: list[int]
    bar_index: list[int]
    meters: list[tuple[int, int]]


def _meter_tokens(bar: Bar) -> list[int] | None:
    if bar.numerator not in NUMERATORS or bar.denominator not in DENOMINATORS:
        return None
    return [NUM0 + NUMERATORS.index(bar.numerator), DEN0 + DENOMINATORS.index(bar.denominator)]


def encode(notes: Sequence[tuple[int, int, int]], bars: Sequence[Bar], bos: bool = True) -> MelodyTokens | None:
    """Events of a one-line melody: `notes` are (start step, end step, pitch) sorted by start, one
    note per start (the top one is kept), pitches in the model range; `bars` tile the steps.
    None when a bar's meter cannot be written (over 16 beats, or an unusual denominator)."""
    tokens = [BOS] if bos else []
    bar_index: list[int] = []
    meters: list[tuple[int, int]] = []
    by_start: dict[int, tuple[int, int]] = {}
    for start, end, pitch in notes:
        if MODEL_PITCH_LOW <= pitch <= MODEL_PITCH_HIGH and (start not in by_start or pitch > by_start[start][1]):
            by_start[start] = (end, pitch)
    starts = sorted(by_start)
    k = 0
    previous = None
    for i, bar in enumerate(bars):
        meter = _meter_tokens(bar)
        if meter is None or bar.full_length > MAX_POS:
            return None
        if (bar.numerator, bar.denominator) != previous:
            tokens += meter
            previous = (bar.numerator, bar.denominator)
        bar_index.append(len(tokens))
        meters.append((meter[0], meter[1]))
        tokens.append(BAR)
        shift = bar.full_length - bar.length if i == 0 and bar.length < bar.full_length else 0
        while k < len(starts) and starts[k] < bar.end:
            start = starts[k]
            end, pitch = by_start[start]
            if start >= bar.start:
                pos = min(MAX_POS - 1, start - bar.start + shift)
                tokens += [POS0 + pos, PITCH0 + pitch - MODEL_PITCH_LOW, DUR0 + min(MAX_DUR, max(1, end - start)) - 1]
            k += 1
    return MelodyTokens(tokens, bar_index, meters)


def decode(tokens: Sequence[int], bars: Sequence[Bar]) -> list[tuple[int, int, int]]:
    """(start step, end step, pitch) of the notes in `tokens`: the i-th BAR token is `bars[i]`.
    Notes of bars past the last given bar are dropped; a note's end is cut at the last bar's end."""
    notes: list[tuple[int, int, int]] = []
    b = -1
    pos = pitch = None
    limit = bars[-1].end if bars else 0
    for t in tokens:
        if t == BAR:
            b += 1
            pos = pitch = None
        elif POS0 <= t < PITCH0:
            pos = t - POS0
        elif PITCH0 <= t < DUR0 and pos is not None:
            pitch = t - PITCH0 + MODEL_PITCH_LOW
        elif t >= DUR0 and pos is not None and pitch is not None and 0 <= b < len(bars):
            bar = bars[b]
            shift = bar.full_length - bar.length if b == 0 and bar.length < bar.full_length else 0
            start = bar.start + pos - shift
            end = min(limit, start + t - DUR0 + 1)
            if start >= bar.start and end > start:
                notes.append((start, end, pitch))
            pos = pitch = None
    return notes


# --------------------------------------------------------------------------- the network


@dataclass
class TransformerConfig(ConfigMixin):
    """Architecture and training settings (the card's ``config``)."""

    vocab: int = VOCAB
    block_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1
    # training
    seq_len: int = 512  # the whole context: packed rows train every position generation uses
    batch_size: int = 6
    lr: float = 1.5e-3
    warmup_steps: int = 200
    weight_decay: float = 0.1


KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class SelfAttention(nn.Module):
    """Causal multi-head self-attention that can extend a key/value cache."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        self.keep_weights = False  # explain(): also compute the attention weights (heads averaged), slower
        self.weights: torch.Tensor | None = None

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if cache is not None:  # earlier positions: computed once, reused
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        if self.keep_weights:
            past = k.shape[2] - t
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            causal = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(past)
            weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
            self.weights = weights.mean(dim=1)[0]
            y = weights @ v
        elif cache is None or t > 1:
            past = k.shape[2] - t
            mask = None if past == 0 else torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=mask is None, dropout_p=self.dropout if self.training else 0.0
            )
        else:  # one new token sees everything before it
            y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c)), (k, v)


class Block(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(), nn.Linear(4 * config.n_embd, config.n_embd), nn.Dropout(config.dropout)
        )

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, kv = self.attn(self.ln1(x), cache)
        x = x + a
        return x + self.mlp(self.ln2(x)), kv


class GPT(nn.Module):
    """Token + position embeddings, `n_layer` blocks, a linear head over the vocabulary."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab, config.n_embd)
        self.pos = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab, bias=False)  # untied: plain state dicts, 40k weights more
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Logits for every position of `idx` (B, T) and the extended cache (positions continue the cache's)."""
        past = cache[0][0].shape[2] if cache else 0
        t = idx.shape[1]
        if past + t > self.config.block_size:
            raise ValueError(f"{past + t} tokens exceed the context of {self.config.block_size}")
        x = self.drop(self.tok(idx) + self.pos(torch.arange(past, past + t, device=idx.device)))
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, cache[i] if cache else None)
            new_cache.append(kv)
        return self.head(self.ln(x)), new_cache


# --------------------------------------------------------------------------- sampling


class Grammar:
    """Which events may come next, so that sampled music is well formed: a POS never goes back in
    time (nor into a note still sounding), a PITCH follows a POS, a DUR follows a PITCH."""

    def __init__(self, bar_length: int, cursor: int = 0) -> None:
        self.bar_length = bar_length
        self.cursor = cursor  # the first free 16th of the current bar
        self.expect = "pos_or_bar"

    def allowed(self) -> torch.Tensor:
        mask = torch.zeros(VOCAB, dtype=torch.bool)
        if self.expect == "pitch":
            mask[PITCH0:DUR0] = True
        elif self.expect == "dur":
            mask[DUR0:VOCAB] = True
        else:
            mask[BAR] = True
            if self.cursor < self.bar_length:
                mask[POS0 + self.cursor : POS0 + self.bar_length] = True
        return mask

    def advance(self, token: int, next_bar_length: int | None = None) -> None:
        """Take `token`; a BAR starts a bar of `next_bar_length` (default: the same length)."""
        if token == BAR:
            self.cursor = max(0, self.cursor - self.bar_length)
            self.bar_length = next_bar_length or self.bar_length
            self.expect = "pos_or_bar"
        elif POS0 <= token < PITCH0:
            self.cursor = token - POS0
            self.expect = "pitch"
        elif PITCH0 <= token < DUR0:
            self.expect = "dur"
        elif token >= DUR0:
            self.cursor += token - DUR0 + 1
            self.expect = "pos_or_bar"


def filter_logits(logits: torch.Tensor, technique: str, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the `top_k` likeliest events (technique 'top-k') or the smallest set whose probability
    reaches `top_p` (technique 'nucleus'); the others get -inf."""
    if technique == "top-k":
        k = max(1, min(int(top_k), int(torch.isfinite(logits).sum())))
        kth = torch.topk(logits, k).values[-1]
        return logits.masked_fill(logits < kth, float("-inf"))
    ordered, index = torch.sort(logits, descending=True)
    cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
    drop = cumulative - torch.softmax(ordered, dim=-1) >= top_p  # keep up to and including the one that crosses top_p
    ordered = ordered.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(0, index, ordered)


def describe(genre: str, dataset=None) -> str:
    """The card's plain-words description."""
    return (
        "A Transformer (a small GPT) that continues your melody by the bars you ask for, in its style. It reads the tune as "
        "a sentence of events (bar line, position, pitch, length) and writes one event at a time, each chosen from the "
        "probabilities it gives to what comes next after looking back at everything so far (self-attention). Trained on "
        "folk songs and fiddle tunes (Essen, O'Neill's, Ryan's) and the sopranos of Bach's chorales. Chain it with an "
        "accompanist to hear the longer tune harmonized."
    )


PARAMS = [
    {"name": "bars", "type": "int", "default": 8, "min": 1, "max": 32, "help": "Bars to add after your melody."},
    {
        "name": "prompt_bars",
        "type": "int",
        "default": 0,
        "min": 0,
        "max": 64,
        "help": "How many of your last bars the Transformer reads before writing (0 = as many as fit: up to its 512 events).",
    },
    {
        "name": "sampling",
        "type": "choice",
        "default": "nucleus",
        "choices": ["nucleus", "top-k"],
        "help": "nucleus: draw from the likeliest events that together make up 'top_p' of the probability; top-k: from the 'top_k' likeliest.",
    },
    {"name": "top_k", "type": "int", "default": 8, "min": 1, "max": 200, "help": "top-k: how many of the likeliest events may be drawn."},
    {"name": "top_p", "type": "float", "default": 0.9, "min": 0.05, "max": 1.0, "help": "nucleus: the share of probability to draw from."},
    {
        "name": "creative_risk",
        "type": "float",
        "default": 0.9,
        "min": 0.05,
        "max": 2.0,
        "help": "Temperature: low plays safe (the likeliest notes), 1 samples as it learned, above 1 takes more risks.",
    },
]
DEFAULTS = {p["name"]: p["default"] for p in PARAMS}


class Continuer:
    """A loaded Transformer: continues melodies (`generate`), scores them (`nll`)."""

    def __init__(self, config: TransformerConfig, network: GPT, device: str = "cpu") -> None:
        self.config, self.network, self.device = config, network.eval(), device

    # ---- the prompt

    @staticmethod
    def _prompt(melody: RollTrack, grid: Grid, prompt_bars: int, room: int, block: int) -> list[int]:
        """The events of the melody's last `prompt_bars` bars (0: all that fit in `block - room`)."""
        encoded = encode(track_notes(melody), grid.bars)
        if encoded is None:
            odd = next(b for b in grid.bars if _meter_tokens(b) is None or b.full_length > MAX_POS)
            raise InputError(
                f"the Transformer cannot read bars of {odd.numerator}/{odd.denominator} (it knows up to 16 beats "
                "of 1, 2, 4, 8, 16 or 32): choose another model for this melody"
            )
        first = 0 if prompt_bars <= 0 else max(0, len(grid.bars) - prompt_bars)
        while True:
            at = encoded.bar_index[first]
            tokens = encoded.tokens[at:] if first else encoded.tokens
            if first:
                tokens = list(encoded.meters[first]) + tokens
            if len(tokens) <= block - room or first == len(grid.bars) - 1:
                return tokens[-(block - room) :] if len(tokens) > block - room else tokens
            first += 1

    @torch.inference_mode()
    def continue_tokens(
        self,
        prompt: list[int],
        bar_lengths: Sequence[int],
        params: Mapping[str, Any],
        seed: int,
        use_cache: bool = True,
        choices: list | None = None,
    ) -> list[int]:
        """Events of `len(bar_lengths)` new bars after `prompt` (which ends at a bar line), sampled
        under the grammar with the user's choices; the returned events start with the first new BAR.
        `choices`, when a list, receives each pitch decision: (the candidates' probabilities, chosen)."""
        p = {**DEFAULTS, **params}
        gen = torch.Generator().manual_seed(int(seed))
        temperature = max(1e-3, float(p["creative_risk"]))
        block = self.config.block_size
        seq = list(prompt)
        out: list[int] = []
        grammar = Grammar(bar_lengths[0], bar_lengths[0])  # the prompt's last bar is complete
        done = 0
        cache: KVCache | None = None
        fed = 0  # tokens of `seq` already in the cache
        pending = [BAR]  # the first new bar starts where the prompt ends
        while True:
            check_cancelled()  # a call the studio stopped waiting for ends here
            for token in pending:
                seq.append(token)
                out.append(token)
                grammar.advance(token, bar_lengths[done])
            pending = []
            if len(seq) > block:  # slide: keep the latest half, from a bar line, with its meter
                bars_at = [i for i, t in enumerate(seq) if t == BAR and len(seq) - i <= block // 2]
                cut = bars_at[0] if bars_at else len(seq) - block // 2
                meter = [t for t in seq[:cut] if NUM0 <= t < POS0][-2:]
                seq = meter + seq[cut:]
                cache, fed = None, 0
            if use_cache:
                logits, cache = self.network(torch.tensor([seq[fed:]], device=self.device), cache)
                fed = len(seq)
            else:
                logits, _ = self.network(torch.tensor([seq], device=self.device))
            logits = logits[0, -1].float().cpu() / temperature
            logits = logits.masked_fill(~grammar.allowed(), float("-inf"))
            logits = filter_logits(logits, str(p["sampling"]), int(p["top_k"]), float(p["top_p"]))
            probs = torch.softmax(logits, -1)
            token = int(torch.multinomial(probs, 1, generator=gen))
            if choices is not None and grammar.expect == "pitch":
                choices.append((probs[PITCH0:DUR0].clone(), token - PITCH0 + MODEL_PITCH_LOW))
            if token == BAR:
                done += 1
                if done == len(bar_lengths):
                    return out
            pending = [token]

    def generate(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> list[RollTrack]:
        """The melody and `bars` new bars after it (the tune's last meter), as one track of role
        'continuation': its first `grid.n_steps` steps are the input, unchanged."""
        p = {**DEFAULTS, **params}
        n_new = int(p["bars"])
        last = grid.bars[-1]
        bar_len = last.full_length
        room = min(self.config.block_size // 2, 24 * n_new + 8)
        prompt = self._prompt(melody, grid, int(p["prompt_bars"]), room, self.config.block_size)
        events = self.continue_tokens(prompt, [bar_len] * n_new, p, seed)
        start = grid.n_steps
        new_bars = [Bar(start + i * bar_len, bar_len, last.numerator, last.denominator) for i in range(n_new)]
        total = start + n_new * bar_len
        out = RollTrack.empty(melody.name, melody.program, total, melody.is_drum)
        out.velocity[:start] = melody.velocity
        out.onset[:start] = melody.onset
        played = melody.velocity[melody.velocity > 0]
        velocity = int(np.median(played)) if played.size else 90
        for s, e, pitch in decode(events, new_bars):
            out.add_note(s, e, pitch, velocity)
        out.role = "continuation"
        return [out]

    @torch.inference_mode()
    def explain(self, melody: RollTrack, grid: Grid, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """What `generate` (same melody, parameters and seed: the same notes) weighed at each new note:
        `choices`, the probability of every pitch when it chose one (after creative risk and the
        sampling technique) and the pitch drawn; `attention`, for each new note, how much the last
        layer's attention (heads averaged) fell on each earlier note; `notes`, those earlier and new
        notes as (start step, pitch, is_new)."""
        p = {**DEFAULTS, **params}
        n_new, last = int(p["bars"]), grid.bars[-1]
        room = min(self.config.block_size // 2, 24 * n_new + 8)
        prompt = self._prompt(melody, grid, int(p["prompt_bars"]), room, self.config.block_size)
        choices: list = []
        events = self.continue_tokens(prompt, [last.full_length] * n_new, p, seed, choices=choices)
        seq = (prompt + events)[-self.config.block_size :]
        attention = self.network.blocks[-1].attn
        attention.keep_weights = True
        try:
            with torch.inference_mode():
                self.network(torch.tensor([seq], device=self.device))
            weights = attention.weights.float().cpu().numpy()
        finally:
            attention.keep_weights, attention.weights = False, None
        first_new = len(seq) - len(events)
        pitch_at = [i for i, t in enumerate(seq) if PITCH0 <= t < DUR0]
        new = [i for i in pitch_at if i >= first_new]
        rows = np.array([[weights[i, j] for j in pitch_at if j < i] + [0.0] * sum(j >= i for j in pitch_at) for i in new]).reshape(
            len(new), len(pitch_at)
        )
        bar_of = np.cumsum([t == BAR for t in seq])
        notes = [(int(bar_of[i]), int(seq[i] - PITCH0 + MODEL_PITCH_LOW), i >= first_new) for i in pitch_at]
        return {"choices": [(c.numpy(), chosen) for c, chosen in choices], "attention": rows, "notes": notes}

    @torch.inference_mode()
    def nll(self, tunes: Sequence[MelodyTokens]) -> tuple[float, int]:
        """Total negative log-likelihood (nats) and number of predicted events over `tunes`, each read
        in windows of the context length that start at bar lines (with their meter)."""
        total, count = 0.0, 0
        for windows in (_eval_windows(t, self.config.block_size) for t in tunes):
            for seq, first in windows:
                x = torch.tensor([seq[:-1]], device=self.device)
                y = torch.tensor(seq[1:], device=self.device)
                logits, _ = self.network(x)
                losses = F.cross_entropy(logits[0].float(), y, reduction="none")[first - 1 :]
                total += float(losses.sum())
                count += losses.numel()
        return total, count


def _eval_windows(tune: MelodyTokens, block: int) -> list[tuple[list[int], int]]:
    """Windows that score every event of `tune` after the first exactly once: (events, index of the
    first event scored). Windows start at bar lines where they can, with the bar's meter in front."""
    tokens, out, start = tune.tokens, [], 0
    while start < len(tokens):
        bar = max((i for i, at in enumerate(tune.bar_index) if at <= start), default=0)
        prefix = list(tune.meters[bar]) if start else []
        limit = start + block + 1 - len(prefix)
        if limit >= len(tokens):
            end = len(tokens)
        else:
            lines = [at for at in tune.bar_index if start < at <= limit]
            end = lines[-1] if lines else limit
        out.append((prefix + tokens[start:end], len(prefix) if start else 1))
        start = end
    return out


# --------------------------------------------------------------------------- training


def tokenize_pieces(pieces: Sequence[Any]) -> list[MelodyTokens]:
    """Events of each one-track piece (pieces whose meter cannot be written are left out)."""
    out = []
    for piece in pieces:
        notes = [(int(s), int(e), int(p)) for t, s, e, p, _v in piece.notes.tolist() if t == 0]
        encoded = encode(notes, piece.grid.bars)
        if encoded is not None and len(encoded.tokens) > 8:
            out.append(encoded)
    return out


def n_gram_baselines(train: Sequence[MelodyTokens], held: Sequence[MelodyTokens], block: int) -> dict[str, float]:
    """Per-event perplexity of add-one-smoothed unigram and bigram models fitted on `train`, on the
    same held-out events the Transformer is scored on."""
    uni = np.ones(VOCAB)
    bi = np.ones((VOCAB, VOCAB))
    for tune in train:
        t = np.asarray(tune.tokens)
        np.add.at(uni, t[1:], 1)
        np.add.at(bi, (t[:-1], t[1:]), 1)
    uni_logp = np.log(uni / uni.sum())
    bi_logp = np.log(bi / bi.sum(1, keepdims=True))
    nll_u = nll_b = 0.0
    count = 0
    for tune in held:
        for seq, first in _eval_windows(tune, block):
            s = np.asarray(seq)
            prev, nxt = s[first - 1 : -1], s[first:]
            nll_u -= uni_logp[nxt].sum()
            nll_b -= bi_logp[prev, nxt].sum()
            count += len(nxt)
    return {"unigram": round(math.exp(nll_u / count), 3), "bigram": round(math.exp(nll_b / count), 3)}


class TransformerTraining(TrainingRecipe):
    """Next-event prediction on random windows of training tunes (each window starts at a bar line
    with its meter; a random transposition in the dataset's range, kept inside the model's pitches)."""

    def __init__(self, config: TransformerConfig, tunes: list[MelodyTokens], transpose: tuple[int, int], device: str = "cpu") -> None:
        self.tunes, self.transpose = tunes, transpose
        self.network = GPT(config).to(device)
        decay = [p for n, p in self.network.named_parameters() if p.dim() >= 2]
        other = [p for n, p in self.network.named_parameters() if p.dim() < 2]
        super().__init__(
            config,
            device,
            {"network": self.network},
            {
                "network": torch.optim.AdamW(
                    [{"params": decay, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}],
                    lr=config.lr,
                    betas=(0.9, 0.95),
                )
            },
            Continuer,
        )
        self._arrays = [np.asarray(t.tokens, np.int64) for t in tunes]

    def selectable(self, step: int) -> bool:
        return step >= self.config.warmup_steps

    @property
    def n_windows(self) -> int:
        return sum(len(t.bar_index) for t in self.tunes)

    def tracks(self) -> list[dict]:
        return [dict(t) for t in MELODY_TRACKS]

    def _segment(self, rng: np.random.Generator) -> np.ndarray:
        """One tune from its start, or from a random bar line with that bar's meter in front, to its
        end and EOS, transposed at random within the dataset's range and the model's pitches."""
        i = int(rng.integers(len(self.tunes)))
        tune, tokens = self.tunes[i], self._arrays[i]
        bar = 0 if rng.random() < 0.5 else int(rng.integers(len(tune.bar_index)))
        head = tokens if bar == 0 else np.concatenate([list(tune.meters[bar]), tokens[tune.bar_index[bar] :]])
        seq = np.concatenate([head, [EOS]]).astype(np.int64)
        pitch = (seq >= PITCH0) & (seq < DUR0)
        if pitch.any():
            lo = max(self.transpose[0], PITCH0 - int(seq[pitch].min()))
            hi = min(self.transpose[1], DUR0 - 1 - int(seq[pitch].max()))
            if lo <= hi:
                seq[pitch] += int(rng.integers(lo, hi + 1))
        return seq

    def batch(self, rng: np.random.Generator) -> torch.Tensor:
        """(B, seq_len + 1) rows packed with segments back to back (GPT-style: no padding, every
        position of the context trained; EOS then BOS or a meter tells where a new tune begins)."""
        c = self.config
        out = np.empty((c.batch_size, c.seq_len + 1), np.int64)
        for row in range(c.batch_size):
            parts, length = [], 0
            while length < c.seq_len + 1:
                parts.append(self._segment(rng))
                length += len(parts[-1])
            out[row] = np.concatenate(parts)[: c.seq_len + 1]
        return torch.from_numpy(out).to(self.device)

    def step(self, step: int, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        self.network.train()
        lr = c.lr * min(1.0, (step + 1) / c.warmup_steps)
        for group in self.optimizers["network"].param_groups:
            group["lr"] = lr
        batch = self.batch(rng)
        logits, _ = self.network(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c.vocab), batch[:, 1:].reshape(-1), ignore_index=PAD)
        self.update(loss)
        self.network.eval()
        return {"nll": float(loss.detach())}

    def validation_score(self, pieces: Sequence[Any]) -> tuple[float, dict[str, float]]:
        """Mean NLL per event on validation tunes (lower is better) for choosing the checkpoint."""
        total, count = self.accompanist().nll(tokenize_pieces(pieces))
        nll = total / max(1, count)
        return nll, {"nll": nll, "perplexity": math.exp(nll)}


def training(data, overrides: Mapping[str, Any], device: str = "cpu") -> TransformerTraining:
    """A recipe for `studio.training.train`: the tunes of `data.train` as events."""
    config = configured(TransformerConfig(), overrides, "Transformer")
    tunes = tokenize_pieces(data.train)
    if not tunes:
        raise ValueError("no training tunes the Transformer can read")
    return TransformerTraining(config, tunes, tuple(data.config.transpose), device)


def load(card: Mapping[str, Any], weights: Any, device: str = "cpu") -> Continuer:
    """The registry's door: the card's ``config`` rebuilds the network, safetensors fills it."""
    return loaded(card, weights, device, TransformerConfig, GPT, Continuer)

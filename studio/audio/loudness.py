"""Loudness of float audio: integrated loudness (ITU-R BS.1770-4), true peak, the melody's lead and the
normalisation every studio WAV gets (issue 21: -16 LUFS, true peak at most -1 dBTP).

Pure functions on float arrays of shape (N, C) (frames, channels; full scale 1.0) or (N,); nothing
here renders or writes files (`studio.audio.synth.render` calls it on its float mix, before int16).

1. Integrated loudness is BS.1770-4's: K-weighting (`pyloudnorm`'s two biquads, so the figure is
   `pyloudnorm.Meter(rate).integrated_loudness`'s to a thousandth of a LU), mean squares of 400 ms
   blocks every 100 ms, an absolute gate at -70 LUFS and a relative gate 10 LU under the
   absolutely gated loudness (BS.1770-4, eqs. 1-7). The blocks are summed from 100 ms hops of the
   K-weighted signal, so the loudness of a sum ``melody + a * accompaniment`` follows from the two
   stems' hop sums and their cross term for any gain `a` without filtering again (`StemPowers`).
2. True peak is the peak of the signal oversampled 4x (BS.1770-4, Annex 2), with
   `scipy.signal.resample_poly`'s interpolator; only the stretches whose samples could reach the
   peak are oversampled (`true_peak`), which gives the whole file's figure at a fraction of the cost.
3. `normalize` scales to the target loudness; where that would put the true peak over the ceiling, a
   look-ahead limiter (`limit`) takes the peaks down rather than the whole take, so the loudness
   stays on target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = [
    "CEILING_DBTP",
    "LEAD_LU",
    "TARGET_LUFS",
    "Normalized",
    "StemPowers",
    "integrated_loudness",
    "lead_gain",
    "limit",
    "normalize",
    "stem_loudness",
    "true_peak",
]

TARGET_LUFS = -16.0  # integrated loudness of every WAV (what browser and streaming players expect)
CEILING_DBTP = -1.0  # highest true peak
LEAD_LU = 1.0  # how far the melody is set above the accompaniment, when it is under that
BLOCK_S, HOP_S = 0.4, 0.1  # BS.1770 gating blocks: 400 ms, 75% overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLING = 4


def _frames(x: np.ndarray) -> np.ndarray:
    """`x` as (N, C)."""
    x = np.asarray(x)
    return x[:, None] if x.ndim == 1 else x


@cache
def _k_weighting(rate: int) -> np.ndarray:
    """BS.1770's K-weighting at `rate` as second-order sections: pyloudnorm's high shelf, then its high pass."""
    import pyloudnorm  # the reference meter; only its filter design is used

    meter = pyloudnorm.Meter(rate)
    sections = []
    for stage in ("high_shelf", "high_pass"):
        f = meter._filters[stage]
        b, a = np.asarray(f.b, float), np.asarray(f.a, float)
        sections.append(np.concatenate([f.passband_gain * b / a[0], a / a[0]]))
    return np.array(sections)


def _k_weighted(x: np.ndarray, rate: int) -> np.ndarray:
    """`x` (N, C) K-weighted, as float64 of shape (C, N) (each channel contiguous, for the hop sums)."""
    from scipy.signal import sosfilt

    return sosfilt(_k_weighting(int(rate)), np.ascontiguousarray(_frames(x).T, dtype=np.float64), axis=1)


def _hop_sums(k: np.ndarray, hop: int, hops: int) -> np.ndarray:
    """Sums of `k` (C, N) over `hops` hops of `hop` frames (zeros past its end), shape (C, hops)."""
    n = min(k.shape[1], hop * hops)
    out = np.zeros((k.shape[0], hops))
    whole = n // hop
    out[:, :whole] = k[:, : whole * hop].reshape(k.shape[0], whole, hop).sum(axis=2)
    if n > whole * hop:
        out[:, whole] = k[:, whole * hop : n].sum(axis=1)
    return out


def _layout(frames: int, rate: int) -> tuple[int, int, int]:
    """Frames per hop, frames per block, and the number of blocks, as pyloudnorm counts them."""
    hop, block = round(HOP_S * rate), round(BLOCK_S * rate)
    blocks = max(1, int(np.round((frames / rate - BLOCK_S) / HOP_S)) + 1)
    return hop, block, blocks


def _gated(z: np.ndarray) -> float:
    """BS.1770-4 gated loudness from block mean squares `z` (C, J), every channel weighted 1 (L, R)."""
    power = z.sum(axis=0)
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10.0 * np.log10(power)
        kept = blocks >= ABSOLUTE_GATE_LUFS
        if not kept.any():
            return -math.inf
        relative = -0.691 + 10.0 * math.log10(power[kept].mean()) + RELATIVE_GATE_LU
        kept = (blocks > relative) & (blocks > ABSOLUTE_GATE_LUFS)
        if not kept.any():
            return -math.inf
        return float(-0.691 + 10.0 * math.log10(power[kept].mean()))


class StemPowers:
    """K-weighted hop sums of two stems, `lead` and `rest`, and of their product: the BS.1770
    loudness of ``lead + a * rest`` for any gain `a` without filtering again (the filter is linear)."""

    def __init__(self, lead: np.ndarray, rest: np.ndarray, rate: int) -> None:
        frames = max(len(lead), len(rest))
        self.hop, self.block, self.blocks = _layout(frames, rate)
        hops = self.blocks + round(self.block / self.hop) - 1
        kl, kr = _k_weighted(lead, rate), _k_weighted(rest, rate)
        n = min(kl.shape[1], kr.shape[1])
        self.lr = _hop_sums(kl[:, :n] * kr[:, :n], self.hop, hops)
        self.ll = _hop_sums(np.square(kl, out=kl), self.hop, hops)
        self.rr = _hop_sums(np.square(kr, out=kr), self.hop, hops)

    def _blocks(self, hops: np.ndarray) -> np.ndarray:
        per = round(self.block / self.hop)
        c = np.cumsum(np.pad(hops, ((0, 0), (1, 0))), axis=1)
        return (c[:, per : per + self.blocks] - c[:, : self.blocks]) / self.block

    def loudness(self, a: float = 1.0, lead: float = 1.0) -> float:
        """Integrated loudness (LUFS) of ``lead * lead_stem + a * rest_stem``."""
        return _gated(self._blocks(lead * lead * self.ll + a * a * self.rr + 2.0 * a * lead * self.lr))

    def lead_loudness(self) -> float:
        return _gated(self._blocks(self.ll))

    def rest_loudness(self) -> float:
        return _gated(self._blocks(self.rr))


def integrated_loudness(x: np.ndarray, rate: int) -> float:
    """Integrated loudness of `x` (N, C) or (N,) in LUFS, by ITU-R BS.1770-4 (-inf for silence)."""
    k = _k_weighted(x, rate)
    hop, block, blocks = _layout(k.shape[1], rate)
    hops = _hop_sums(np.square(k, out=k), hop, blocks + round(block / hop) - 1)
    per = round(block / hop)
    c = np.cumsum(np.pad(hops, ((0, 0), (1, 0))), axis=1)
    return _gated((c[:, per : per + blocks] - c[:, :blocks]) / block)


def lead_gain(lead_lufs: float, rest_lufs: float, lead_lu: float = LEAD_LU, lead_db: float = 0.0, rest_db: float = 0.0) -> float:
    """The gain (at most 1) of the accompaniment that sets the melody `lead_lu` above it.

    `lead_db` and `rest_db` are gains the stems already carry relative to the take as generated
    (the mixer's volumes): they are taken out before the balance is found, so that the mixer acts
    relative to the take's mix rather than being undone by it. 1 (nothing to do) when the melody
    already leads by as much, or when either stem is silent.
    """
    if not (math.isfinite(lead_lufs) and math.isfinite(rest_lufs)):
        return 1.0
    short = (lead_lufs - lead_db) - (rest_lufs - rest_db) - lead_lu
    return min(1.0, 10.0 ** (short / 20.0))


@cache
def _interpolator() -> np.ndarray:
    """`scipy.signal.resample_poly(x, 4, 1)`'s filter: 2 * 10 * 4 + 1 taps, Kaiser window (beta 5), gain 4."""
    from scipy.signal import firwin

    half = 10 * OVERSAMPLING
    return firwin(2 * half + 1, 1.0 / OVERSAMPLING, window=("kaiser", 5.0)) * OVERSAMPLING


TRUE_PEAK_SEARCH_DB = 6.0  # `true_peak` oversamples the stretches whose samples come this close to the sample peak
_TP_BLOCK = 1024  # frames per stretch looked at by `true_peak` (the interpolator reaches 10 frames either side)
_TP_CONTEXT = 32  # frames of context oversampled each side of a stretch


def true_peak(x: np.ndarray, search_db: float = TRUE_PEAK_SEARCH_DB) -> float:
    """True peak of `x` (N, C) or (N,), linear (1.0 = full scale): the largest magnitude of `x`
    oversampled 4x with `scipy.signal.resample_poly`'s interpolator (BS.1770-4, Annex 2).

    Only the stretches of `_TP_BLOCK` frames that hold a sample within `search_db` of the sample
    peak (or border one that does) are oversampled: a value between samples `search_db` (6 dB) over
    every sample near it needs energy close to the Nyquist frequency that synthesized music does not
    have. With ``search_db=inf`` the whole signal is oversampled; the tests check that both agree on
    the studio's takes, and against `resample_poly` on the whole file.
    """
    from scipy.signal import upfirdn

    data = _frames(x)
    if not len(data):
        return 0.0
    frames = np.abs(data).max(axis=1)
    peak = float(frames.max())
    if not peak > 0:
        return 0.0
    n = -(-len(frames) // _TP_BLOCK)
    local = np.zeros(n * _TP_BLOCK, frames.dtype)
    local[: len(frames)] = frames
    local = local.reshape(n, _TP_BLOCK).max(axis=1)
    near = local.copy()
    near[1:] = np.maximum(near[1:], local[:-1])
    near[:-1] = np.maximum(near[:-1], local[1:])
    wanted = near >= peak * 10.0 ** (-search_db / 20.0)
    starts = np.flatnonzero(wanted & ~np.concatenate([[False], wanted[:-1]]))
    ends = np.flatnonzero(wanted & ~np.concatenate([wanted[1:], [False]])) + 1
    h = _interpolator()
    delay = len(h) // 2  # output sample of input frame i is at OVERSAMPLING * i + delay
    for s, e in zip(starts * _TP_BLOCK, np.minimum(ends * _TP_BLOCK, len(data)), strict=True):
        lo, hi = max(0, s - _TP_CONTEXT), min(len(data), e + _TP_CONTEXT)
        up = upfirdn(h, data[lo:hi].astype(np.float64, copy=False), OVERSAMPLING, axis=0)
        inner = up[(s - lo) * OVERSAMPLING + delay : (e - lo) * OVERSAMPLING + delay]
        peak = max(peak, float(np.abs(inner).max()))
    return peak


_LOOKAHEAD_S = 0.040  # the limiter's gain reaches its lowest this long before a peak and holds it as long after
_RAMP_S = 0.010  # ... moving there and back over this long (a moving average: no step, no click)
_MARGIN_DB = 0.3  # the limiter aims this far under the ceiling (the sample peaks it sees are not the true peak)


def limit(x: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """`x` (N, C) with a look-ahead limiter's gain: every frame whose largest sample is above
    `ceiling` (linear, minus a small margin) is brought down to it, the gain reduction held
    `_LOOKAHEAD_S` either side of each peak and ramped over `_RAMP_S` (linked channels). A new
    array; `x` is not changed.

    Every frame's gain is at most what its own sample needs, because the ramp averages a minimum
    taken over a window at least as wide (so no sample is left over the aim); true peaks between
    samples may still pass by a little, which `normalize` measures and trims.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    data = _frames(x)
    aim = ceiling * 10.0 ** (-_MARGIN_DB / 20.0)
    level = np.abs(data).max(axis=1).astype(np.float64)
    need = np.minimum(1.0, aim / np.maximum(level, 1e-12))
    hold = minimum_filter1d(need, size=2 * round(_LOOKAHEAD_S * rate) + 1, mode="nearest")
    gain = uniform_filter1d(hold, size=2 * round(_RAMP_S * rate) + 1, mode="nearest")
    return data * gain[:, None].astype(data.dtype)


@dataclass(frozen=True)
class Normalized:
    """What `normalize` did: the audio's loudness before and after (LUFS), the gain applied (dB), the
    true peak after (dBTP), and how much the limiter took off the loudest frame (dB, 0 if it did not act)."""

    loudness_before: float
    loudness: float
    gain_db: float
    true_peak_dbtp: float
    limited_db: float


def _db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def normalize(
    x: np.ndarray,
    rate: int,
    target_lufs: float = TARGET_LUFS,
    ceiling_dbtp: float = CEILING_DBTP,
    loudness: float | None = None,
) -> tuple[np.ndarray, Normalized]:
    """`x` (N, C) scaled to `target_lufs` with its true peak at most `ceiling_dbtp`.

    1. The gain that puts the integrated loudness (`loudness` when the caller measured it) on target.
    2. If the true peak would then pass the ceiling, the look-ahead limiter (`limit`) takes the
       loud frames down, and the loudness is measured again and the gain corrected once (the
       limiter lowers the loudness a little), limiting again from the original.
    3. A last trim scales the whole down to the ceiling if a true peak between samples still
       passes it (a fraction of a dB at most).

    Silence (loudness -inf) is returned as it is. `x` may be changed in place (float32 stays float32).
    """
    data = _frames(x)
    before = integrated_loudness(data, rate) if loudness is None else loudness
    if not math.isfinite(before):
        return data, Normalized(before, before, 0.0, _db(true_peak(data)), 0.0)
    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    gain = 10.0 ** ((target_lufs - before) / 20.0)
    peak = true_peak(data) * gain
    if peak <= ceiling:  # 1. the gain alone
        np.multiply(data, np.asarray(gain, data.dtype), out=data, casting="unsafe")
        return data, Normalized(before, target_lufs, _db(gain), _db(peak), 0.0)
    limited = _db(peak / ceiling) + _MARGIN_DB
    out = limit(data * np.asarray(gain, data.dtype), ceiling, rate)  # 2. the limiter
    after = integrated_loudness(out, rate)
    if math.isfinite(after) and abs(after - target_lufs) > 0.05:
        gain *= 10.0 ** ((target_lufs - after) / 20.0)
        out = limit(data * np.asarray(gain, data.dtype), ceiling, rate)
        after = integrated_loudness(out, rate)
    peak = true_peak(out)
    if peak > ceiling:  # 3. inter-sample peaks the limiter could not see
        out *= np.asarray(ceiling / peak, out.dtype)
        after += _db(ceiling / peak)
        peak = ceiling
    return out, Normalized(before, after, after - before, _db(peak), limited)


def stem_loudness(mix: np.ndarray, melody: np.ndarray, accompaniment: np.ndarray, rate: int) -> tuple[float, float]:
    """The integrated loudness (LUFS) of the melody's part and the accompaniment's part of `mix`.

    `melody` and `accompaniment` are the two rendered alone (any level); `mix` is split into
    ``g_m * melody + g_a * accompaniment`` by least squares (exact when the mix is such a sum, as
    it is unless the limiter acted), and each part is measured. All (N, C), cut or padded with
    silence to `mix`'s length. For tests and the bench: it checks a WAV's balance from the WAV.
    """
    mix = _frames(mix).astype(np.float64)
    parts = []
    for stem in (melody, accompaniment):
        stem = _frames(stem).astype(np.float64)[: len(mix)]
        parts.append(np.concatenate([stem, np.zeros((len(mix) - len(stem), stem.shape[1]))]))
    basis = np.stack([p.reshape(-1) for p in parts], axis=1)
    gains, *_ = np.linalg.lstsq(basis, mix.reshape(-1), rcond=None)
    return integrated_loudness(gains[0] * parts[0], rate), integrated_loudness(gains[1] * parts[1], rate)

"""Loudness of float audio: integrated loudness (ITU-R BS.1770-4), true peak, the melody's lead and the
normalisation every studio WAV gets (issue 21: -16 LUFS, true peak at most -1 dBTP).

Pure functions on float arrays of shape (N, C) (frames, channels; full scale 1.0) or (N,); nothing
here renders or writes files (`studio.audio.synth.render` calls it on its float mix, before int16).

1. Integrated loudness is BS.1770-4's: K-weighting (`pyloudnorm`'s two biquads, so the figure is
   `pyloudnorm.Meter(rate).integrated_loudness`'s to a thousandth of a LU), mean squares of 400 ms
   blocks every 100 ms, an absolute gate at -70 LUFS and a relative gate 10 LU under the
   absolutely gated loudness (BS.1770-4, eqs. 1-7). The blocks are summed from 100 ms hops. For
   the two stems of a take (melody, accompaniment) each hop is K-weighted in the frequency domain
   instead (`spectra`: half the cost, within a few thousandths of a LU), so that the loudness of
   a sum ``melody + a * accompaniment`` follows from the two stems' hop energies and their cross
   term for any gain `a` without measuring again (`StemPowers`).
2. True peak is the peak of the signal oversampled 4x (BS.1770-4, Annex 2), with
   `scipy.signal.resample_poly`'s interpolator; it is computed only between the samples that could
   reach the peak (`true_peak`), which gives the whole file's figure at a fraction of the cost.
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
    "Spectra",
    "StemPowers",
    "integrated_loudness",
    "lead_gain",
    "limit",
    "normalize",
    "spectra",
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


K_WEIGHTING = (("high_shelf", 1500.0, 4.0, 1.0 / math.sqrt(2.0)), ("high_pass", 38.0, 0.0, 0.5))  # (shape, Hz, dB, Q)


@cache
def _k_weighting(rate: int) -> np.ndarray:
    """BS.1770's K-weighting at `rate` as second-order sections (rows ``b0 b1 b2 a0 a1 a2``, a0 = 1):
    a high shelf of +4 dB at 1.5 kHz, then a high pass at 38 Hz, each an RBJ cookbook biquad with
    pyloudnorm's parameters (the tests check the coefficients against `pyloudnorm.Meter`'s).

    Designed here rather than read from pyloudnorm, as before: importing it pulls in `scipy.signal`,
    about half a second of every command's start (issue 23), for two biquads of closed form."""
    sections = []
    for shape, hz, gain_db, q in K_WEIGHTING:
        w0 = 2.0 * math.pi * hz / rate
        cos, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
        if shape == "high_shelf":
            a = 10.0 ** (gain_db / 40.0)
            root = 2.0 * math.sqrt(a) * alpha
            b = [a * ((a + 1) + (a - 1) * cos + root), -2 * a * ((a - 1) + (a + 1) * cos), a * ((a + 1) + (a - 1) * cos - root)]
            den = [(a + 1) - (a - 1) * cos + root, 2 * ((a - 1) - (a + 1) * cos), (a + 1) - (a - 1) * cos - root]
        else:
            b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
            den = [1 + alpha, -2 * cos, 1 - alpha]
        sections.append(np.array([*b, *den]) / den[0])
    return np.array(sections)


def _sos_response(sos: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The complex response of second-order sections `sos` at angular frequencies `w` (radians per sample)."""
    z = np.exp(-1j * w)[:, None] ** np.arange(3)  # 1, z^-1, z^-2 at each frequency
    return np.prod((z @ sos[:, :3].T) / (z @ sos[:, 3:].T), axis=1)


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


def _block_means(hops: np.ndarray, frames: int, rate: int) -> np.ndarray:
    """Mean squares of the 400 ms blocks (C, J) from the energies of the 100 ms hops (C, hops)."""
    hop, block, blocks = _layout(frames, rate)
    per = round(block / hop)
    c = np.cumsum(np.pad(hops, ((0, 0), (1, 0))), axis=1)
    return (c[:, per : per + blocks] - c[:, :blocks]) / block


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


@cache
def _spectral_weights(rate: int, hop: int) -> np.ndarray:
    """Per rfft bin of a `hop`-frame hop: the square root of the K-weighting's power gain times
    Parseval's factor, so that the sum of squares of a hop's scaled spectrum is its K-weighted energy."""
    bins = hop // 2 + 1
    response = _sos_response(_k_weighting(rate), 2.0 * np.pi * np.arange(bins) / hop)
    weight = np.abs(response) ** 2 * 2.0 / hop
    weight[0] /= 2.0  # 0 Hz (and the Nyquist bin of an even hop) appear once in the full spectrum
    if hop % 2 == 0:
        weight[-1] /= 2.0
    return np.sqrt(weight).astype(np.float32)


@dataclass(frozen=True)
class Spectra:
    """A stem cut into BS.1770's 100 ms hops (zeros past its end), each hop's spectrum scaled by the
    K-weighting (`spectra`): what `StemPowers` needs of one stem, computed on its own (in the thread
    that rendered it).

    Attributes
    ----------
    frames : int
        The stem's length in frames.
    rate : int
        Its sample rate.
    values : numpy.ndarray
        Shape (C, hops, 2 * bins), float32: each hop's `rfft`, real and imaginary parts side by
        side, scaled per bin by `_spectral_weights`. The sum of squares along the last axis is the
        hop's K-weighted energy (Parseval), and the sum of products with another stem's values the
        cross term of their sum.
    """

    frames: int
    rate: int
    values: np.ndarray

    def energies(self, other: Spectra | None = None, hops: int | None = None) -> np.ndarray:
        """K-weighted energy of each hop, shape (C, hops), or with `other` the sum over each hop of
        the product of the two K-weighted signals; zeros past the end of either (up to `hops`)."""
        values = self.values if other is None else other.values
        common = min(self.values.shape[1], values.shape[1])
        out = np.zeros((self.values.shape[0], max(common, hops or 0)))
        out[:, :common] = np.einsum("chb,chb->ch", self.values[:, :common], values[:, :common])
        return out

    def loudness(self) -> float:
        """The stem's integrated loudness (LUFS; -inf for silence)."""
        return _gated(_block_means(self.energies(), self.frames, self.rate))


def _hops_for(frames: int, rate: int) -> int:
    """Hops `Spectra` holds for `frames`: every frame, and at least the hops the blocks cover."""
    hop, block, blocks = _layout(frames, rate)
    return max(-(-frames // hop), blocks + round(block / hop) - 1)


def spectra(x: np.ndarray, rate: int) -> Spectra:
    """`x` (N, C) as `Spectra`: every 100 ms hop K-weighted in the frequency domain.

    The K-weighting is applied to each hop on its own (a circular filter) rather than to the whole
    signal, so a hop's energy differs from the time-domain filter's by what the filter carries
    over a hop's edges; over 400 ms blocks the integrated loudness comes out within a few
    thousandths of a LU of pyloudnorm's on the studio's takes (the tests and bench check it), at
    about half the cost of the two biquads run over the whole signal.
    """
    import scipy.fft

    data = _frames(x)
    hop = round(HOP_S * rate)
    hops = _hops_for(len(data), rate)
    cut = np.zeros((data.shape[1], hop * hops), np.float32)
    cut[:, : len(data)] = data.T
    spectrum = scipy.fft.rfft(cut.reshape(data.shape[1], hops, hop), axis=2)
    spectrum *= _spectral_weights(int(rate), hop)
    return Spectra(len(data), int(rate), spectrum.view(np.float32))


class StemPowers:
    """K-weighted hop energies of two stems, `lead` and `rest` (as `Spectra`; the shorter one
    followed by silence), and of their product: the BS.1770 loudness of ``lead + a * rest`` for any
    gain `a` without measuring again (the K-weighting is linear)."""

    def __init__(self, lead: Spectra, rest: Spectra) -> None:
        if lead.rate != rest.rate:
            raise ValueError(f"stems at {lead.rate} and {rest.rate} Hz do not add up")
        self.frames, self.rate = max(lead.frames, rest.frames), lead.rate
        hops = _hops_for(self.frames, self.rate)
        self.ll, self.rr, self.lr = lead.energies(hops=hops), rest.energies(hops=hops), lead.energies(rest, hops)

    def _blocks(self, hops: np.ndarray) -> np.ndarray:
        return _block_means(hops, self.frames, self.rate)

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
    return _gated(_block_means(hops, k.shape[1], rate))


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
    """`scipy.signal.resample_poly(x, 4, 1)`'s filter: 2 * 10 * 4 + 1 taps, Kaiser window (beta 5), gain 4.

    The window method written out (a sinc cut at a quarter of the rate, times the window, scaled
    to unit gain at 0 Hz, as `scipy.signal.firwin` does; the tests compare the two) so that
    rendering does not import `scipy.signal` (see `_k_weighting`)."""
    half = 10 * OVERSAMPLING
    n = np.arange(-half, half + 1)
    h = np.sinc(n / OVERSAMPLING) * np.kaiser(2 * half + 1, 5.0)
    return h / h.sum() * OVERSAMPLING


TRUE_PEAK_SEARCH_DB = 6.0  # `true_peak` looks between the samples that come this close to the sample peak
_TP_ROWS = 2048  # ... in stacks of this many frames (a product small enough for BLAS to keep to one thread)


@cache
def _phases() -> np.ndarray:
    """`_interpolator`'s polyphase taps, shape (21, 4): the oversampled value at phase p (p quarters of
    a sample after frame i) is ``x[i - 10 : i + 11] @ taps[:, p]`` (phase 0 is the sample times
    1.0006: firwin scales the filter to unit gain at 0 Hz, so its centre tap is not exactly 4)."""
    h = _interpolator()
    half = len(h) // 2 // OVERSAMPLING  # 10 frames either side
    taps = np.zeros((2 * half + 1, OVERSAMPLING))
    for t in range(2 * half + 1):  # frame i - half + t
        for p in range(OVERSAMPLING):
            k = OVERSAMPLING * (2 * half - t) + p  # upfirdn: output 4i + p + delay takes h[k] * x[i - half + t]
            if k < len(h):
                taps[t, p] = h[k]
    return taps


@cache
def _channel_phases(channels: int) -> np.ndarray:
    """`_phases` for the windows of `channels` channels laid end to end (channel by channel): shape
    (C * 21, C * 4), each channel's taps on its own samples, so one product gives every phase of
    every channel."""
    taps = _phases()
    out = np.zeros((channels, len(taps), channels, taps.shape[1]))
    for c in range(channels):
        out[c, :, c, :] = taps
    return out.reshape(channels * len(taps), channels * taps.shape[1])


def _true_peak_whole(data: np.ndarray) -> float:
    """The whole of `data` (N, C) oversampled (`resample_poly`'s output, as upfirdn computes it)."""
    from scipy.signal import upfirdn

    h = _interpolator()
    up = upfirdn(h, data.astype(np.float64, copy=False), OVERSAMPLING, axis=0)
    delay = len(h) // 2
    return float(np.abs(up[delay : delay + OVERSAMPLING * len(data)]).max())


def true_peak(x: np.ndarray, search_db: float = TRUE_PEAK_SEARCH_DB) -> float:
    """True peak of `x` (N, C) or (N,), linear (1.0 = full scale): the largest magnitude of `x`
    oversampled 4x with `scipy.signal.resample_poly`'s interpolator (BS.1770-4, Annex 2).

    The oversampled values are computed only on either side of the samples that come within
    `search_db` of the sample peak (with the polyphase taps of `_phases`). A value between two
    samples 6 dB over both needs the waveform there to be led by a frequency above a third of the
    rate (a sine of frequency f peaks at most 1 / cos(pi f / rate) over the samples either side:
    6 dB at 14.7 kHz; MIDI's highest note, G9, is 12.5 kHz, at most 4.1 dB), which synthesized
    music does not have. So this is the whole file's figure (the tests check it against
    `resample_poly` on the whole signal, the bench on every take) at a fraction of the cost: 2-4%
    of a take's frames are looked at. With ``search_db=inf`` the whole signal is oversampled.
    """
    data = _frames(x)
    if not len(data):
        return 0.0
    if not math.isfinite(search_db):
        return _true_peak_whole(data)
    magnitude = np.abs(data)
    peak = float(magnitude.max())
    if not peak > 0:
        return 0.0
    loud_samples = magnitude >= peak * 10.0 ** (-search_db / 20.0)
    del magnitude
    loud = loud_samples[:, 0].copy()  # frames with a loud sample in any channel
    for c in range(1, data.shape[1]):
        loud |= loud_samples[:, c]
    near = loud.copy()  # the frames each side of a loud sample: the values between them and it
    near[:-1] |= loud[1:]
    from numpy.lib.stride_tricks import sliding_window_view

    half = len(_phases()) // 2
    frames = np.flatnonzero(near)
    if frames[0] < half or frames[-1] >= len(data) - half:  # near an end: zeros beyond it, as upfirdn pads
        data = np.pad(data, ((half, half), (0, 0)))
        frames = frames + half
    starts = np.zeros(-(-len(frames) // _TP_ROWS) * _TP_ROWS, np.int64)  # whole stacks (the last one padded)
    starts[: len(frames)] = frames - half
    windows = sliding_window_view(data, 2 * half + 1, axis=0)[starts].astype(np.float64, order="C")  # (K, C, 21)
    values = windows.reshape(-1, _TP_ROWS, windows.shape[1] * windows.shape[2]) @ _channel_phases(data.shape[1])
    return float(np.abs(values).max())  # (stacks, rows, C * 4): the four phases after each frame, every channel


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

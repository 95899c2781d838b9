"""Loudness of float audio: integrated loudness (ITU-R BS.1770-4), true peak, the melody's lead and the
normalisation every studio WAV gets (issue 21: -16 LUFS, true peak at most -1 dBTP).

Pure functions on float arrays of shape (N, C) (frames, channels; full scale 1.0) or (N,); nothing
here renders or writes files (`studio.audio.synth.render` calls it on its float mix, before int16).

1. Integrated loudness is BS.1770-4's: K-weighting (`pyloudnorm`'s two biquads, so the figure is
   `pyloudnorm.Meter(rate).integrated_loudness`'s to a thousandth of a LU), mean squares of 400 ms
   blocks every 100 ms, an absolute gate at -70 LUFS and a relative gate 10 LU under the
   absolutely gated loudness (BS.1770-4, eqs. 1-7). The blocks are summed from 100 ms hops. A
   render's mix is measured with each hop K-weighted in the frequency domain instead
   (`hop_energies`: a fraction of the cost, within a few thousandths of a LU; a few hops at a time,
   so any length is measured in a few MB); `hops_loudness` gives the loudness of hop energies
   however they were found (`studio.audio.synth.balance` predicts them from notes).
2. True peak is the peak of the signal oversampled 4x (BS.1770-4, Annex 2), with
   `scipy.signal.resample_poly`'s interpolator; it is computed only between the samples that could
   reach the peak (`true_peak`), which gives the whole file's figure at a fraction of the cost.
3. `normalize` scales to the target loudness; where that would put the true peak over the ceiling, a
   look-ahead limiter (`limit`) takes the peaks down rather than the whole take, so the loudness
   stays on target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = [
    "CEILING_DBTP",
    "LEAD_LU",
    "TARGET_LUFS",
    "Normalized",
    "hop_energies",
    "hop_loudness",
    "hops_loudness",
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


_CHUNK_HOPS = 128  # hops K-weighted per FFT call (12.8 s): any length is measured in a few MB
_FFT_WORKERS = 2  # the mix is measured once it is rendered, its engines done


def _channels(x: np.ndarray | Sequence[np.ndarray]) -> int:
    chunks = [x] if isinstance(x, np.ndarray) else list(x)
    return _frames(chunks[0]).shape[1] if chunks else 1


def _segments(x: np.ndarray | Sequence[np.ndarray], hop: int, hops: int) -> Iterator[np.ndarray]:
    """The first `hops` hops of `x` (N, C), or of chunks (each (n, C)) laid end to end, `_CHUNK_HOPS`
    hops at a time: each segment (C, k, hop) float32, zeros past the end (one channel for no chunks
    at all). Chunks are read in place (a long take is never joined into one array)."""
    chunks = [_frames(x)] if isinstance(x, np.ndarray) else [_frames(c) for c in x]
    channels = _channels(x)
    index, offset = 0, 0  # the chunk and frame the next segment starts at
    for first in range(0, hops, _CHUNK_HOPS):
        k = min(_CHUNK_HOPS, hops - first)
        if index < len(chunks) and offset + k * hop <= len(chunks[index]) and chunks[index].dtype == np.float32:
            # within one float32 chunk: a view of it, channels first (the FFT reads it strided, no copy here)
            yield chunks[index][offset : offset + k * hop].T.reshape(channels, k, hop)
            offset += k * hop
            if offset == len(chunks[index]):
                index, offset = index + 1, 0
            continue
        cut = np.zeros((channels, k * hop), np.float32)
        filled = 0
        while filled < k * hop and index < len(chunks):
            chunk = chunks[index]
            n = min(len(chunk) - offset, k * hop - filled)
            cut[:, filled : filled + n] = chunk[offset : offset + n].T
            filled, offset = filled + n, offset + n
            if offset == len(chunk):
                index, offset = index + 1, 0
        yield cut.reshape(channels, k, hop)


def _weighted(segment: np.ndarray, rate: int) -> np.ndarray:
    """Each hop of `segment` (C, k, hop) as its `rfft` scaled per bin by `_spectral_weights`, real and
    imaginary parts side by side (C, k, 2 * bins) float32: the sum of squares along the last axis is
    the hop's K-weighted energy (Parseval), the sum of products with another signal's its cross term."""
    import scipy.fft

    spectrum = scipy.fft.rfft(segment, axis=2, workers=_FFT_WORKERS)
    spectrum *= _spectral_weights(int(rate), segment.shape[2])
    return spectrum.view(np.float32)


def _length(x: np.ndarray | Sequence[np.ndarray]) -> int:
    return len(x) if isinstance(x, np.ndarray) else sum(len(c) for c in x)


def hop_energies(x: np.ndarray | Sequence[np.ndarray], rate: int) -> np.ndarray:
    """K-weighted energy of every 100 ms hop of `x` (N, C), or of chunks laid end to end, shape
    (C, hops): each hop K-weighted on its own in the frequency domain (a circular filter), which
    over 400 ms blocks gives the integrated loudness within a few thousandths of a LU of
    pyloudnorm's on the studio's takes (the tests and bench check it), at a fraction of the cost of
    the two biquads run over the whole signal."""
    frames = _length(x)
    hop, hops = round(HOP_S * rate), _hops_for(frames, rate)
    parts = []
    for segment in _segments(x, hop, hops):
        weighted = _weighted(segment, rate)
        parts.append(np.einsum("chb,chb->ch", weighted, weighted))
    return np.concatenate(parts, axis=1) if parts else np.zeros((1, 0))


def hop_loudness(x: np.ndarray | Sequence[np.ndarray], rate: int) -> float:
    """Integrated loudness (LUFS; -inf for silence) from `hop_energies`."""
    return _gated(_block_means(hop_energies(x, rate), _length(x), rate))


def hops_loudness(hops: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS; -inf for silence) from the K-weighted energies of 100 ms hops
    (C, hops), as `hop_loudness` sums them from audio (`studio.audio.synth.balance` predicts them)."""
    hops = np.asarray(hops, np.float64)
    per = round(BLOCK_S / HOP_S)
    if hops.shape[1] < per:  # shorter than one block: silence after it, as audio that short is measured
        hops = np.pad(hops, ((0, 0), (0, per - hops.shape[1])))
    return _gated(_block_means(hops, hops.shape[1] * round(HOP_S * rate), rate))


def _hops_for(frames: int, rate: int) -> int:
    """Hops measured for `frames`: every frame, and at least the hops the blocks cover."""
    hop, block, blocks = _layout(frames, rate)
    return max(-(-frames // hop), blocks + round(block / hop) - 1)


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
_TP_STACKS = 32  # ... this many stacks at a time (22 MB of windows for stereo)
_TP_CHUNK = 1 << 20  # frames read at a time to find the loud ones


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
    # Read in pieces of _TP_CHUNK frames, so that a long take needs no copy of itself (magnitudes,
    # masks, windows): the same values as the whole at once.
    pieces = range(0, len(data), _TP_CHUNK)
    peak = max(float(np.abs(data[i : i + _TP_CHUNK]).max()) for i in pieces)
    if not peak > 0:
        return 0.0
    threshold = peak * 10.0 ** (-search_db / 20.0)
    channels = data.shape[1]
    # the frames each side of a loud sample (the values between them and it): the loud frames and
    # those just before, marked in a mask (samples compared flat: a reduction along the two channels,
    # or a sorted union, costs several times as much on a take)
    near = np.zeros(len(data), bool)
    for i in pieces:
        loud = np.flatnonzero(np.abs(data[i : i + _TP_CHUNK]).ravel() >= threshold) // channels + i
        near[loud] = True
        near[loud[loud > 0] - 1] = True
    frames = np.flatnonzero(near)
    from numpy.lib.stride_tricks import sliding_window_view

    half = len(_phases()) // 2
    if frames[0] < half or frames[-1] >= len(data) - half:  # near an end: zeros beyond it, as upfirdn pads
        data = np.pad(data, ((half, half), (0, 0)))
        frames = frames + half
    starts = np.zeros(-(-len(frames) // _TP_ROWS) * _TP_ROWS, np.int64)  # whole stacks (the last one padded)
    starts[: len(frames)] = frames - half
    views = sliding_window_view(data, 2 * half + 1, axis=0)  # (N - 20, C, 21), no copy
    phases = _channel_phases(data.shape[1])
    best = 0.0
    for first in range(0, len(starts), _TP_ROWS * _TP_STACKS):
        windows = views[starts[first : first + _TP_ROWS * _TP_STACKS]].astype(np.float64, order="C")  # (K, C, 21)
        values = windows.reshape(-1, _TP_ROWS, windows.shape[1] * windows.shape[2]) @ phases
        best = max(best, float(np.abs(values).max()))  # (stacks, rows, C * 4): the four phases after each frame, every channel
    return best


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
    return _limit_in_place(np.array(_frames(x)), ceiling, rate)


_LIMIT_CHUNK = 1 << 18  # frames looked at a time for samples over the aim (no copy of a long take)


def _limit_in_place(data: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """`limit`, changing `data` (N, C) itself. The gain is 1 farther than the hold and the ramp from
    every frame over the aim, so it is computed only around those (each stretch of them with the
    frames it reaches, and as far again, where the gain is 1, so that the filters' edges see what
    the whole signal has there): the same gain as over the whole take, at the cost of the stretches
    (a solo piano's 6 minutes, limited twice by `normalize`, took 2.6 s over the whole take)."""
    aim = ceiling * 10.0 ** (-_MARGIN_DB / 20.0)
    hold, ramp = round(_LOOKAHEAD_S * rate), round(_RAMP_S * rate)
    reach = hold + ramp  # a frame over the aim lowers the gain this far either side of it
    # the frames over the aim, samples compared flat (a reduction along the two channels costs several
    # times as much); a frame with both channels over it comes twice, which the stretches below ignore
    channels = data.shape[1]
    loud = [np.flatnonzero(np.abs(data[i : i + _LIMIT_CHUNK]).ravel() > aim) // channels + i for i in range(0, len(data), _LIMIT_CHUNK)]
    over = np.concatenate(loud) if loud else np.zeros(0, np.int64)
    if not len(over):
        return data
    breaks = np.flatnonzero(np.diff(over) > 4 * reach) + 1  # stretches whose reaches (and margins) never meet
    for first, last in zip(over[np.r_[0, breaks]], over[np.r_[breaks - 1, len(over) - 1]], strict=True):
        lo, hi = max(0, first - 2 * reach), min(len(data), last + 2 * reach + 1)
        level = np.abs(data[lo:hi]).max(axis=1).astype(np.float64)
        need = np.minimum(1.0, aim / np.maximum(level, 1e-12))
        gain = _moving_mean(_moving_min(need, 2 * hold + 1), 2 * ramp + 1)
        data[lo:hi] *= gain[:, None].astype(data.dtype)
    return data


def _moving_min(x: np.ndarray, size: int) -> np.ndarray:
    """The least of `x` over a window of odd `size` centred on each element, the ends extended with
    their own values (`scipy.ndimage.minimum_filter1d`'s "nearest"; written here because importing
    `scipy.ndimage` takes 0.4 s of the command's answer, see `_k_weighting`). Van Herk's way: in
    blocks of `size`, each window is the rest of one block and the start of the next."""
    half, n = size // 2, len(x)
    padded = np.pad(x, half, mode="edge")
    blocks = -(-len(padded) // size)
    tiled = np.pad(padded, (0, blocks * size - len(padded)), constant_values=np.inf).reshape(blocks, size)
    from_start = np.minimum.accumulate(tiled, axis=1).ravel()
    to_end = np.minimum.accumulate(tiled[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(to_end[:n], from_start[size - 1 : size - 1 + n])


def _moving_mean(x: np.ndarray, size: int) -> np.ndarray:
    """The mean of `x` (values at most 1) over a window of odd `size` centred on each element, the
    ends extended ("nearest", as `scipy.ndimage.uniform_filter1d`; see `_moving_min`). Summed as
    differences from 1, so that wherever the window holds only 1 the mean is exactly 1."""
    half = size // 2
    sums = np.concatenate(([0.0], np.cumsum(np.pad(x, half, mode="edge") - 1.0)))
    return 1.0 + (sums[size:] - sums[:-size]) / size


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
    full_scale: float = 1.0,
    measure: Callable[[np.ndarray, int], float] = integrated_loudness,
) -> tuple[np.ndarray, Normalized]:
    """`x` (N, C) scaled to `target_lufs` with its true peak at most `ceiling_dbtp`, then multiplied by
    `full_scale` (32767 for int16 samples to follow: in the same pass as the gain, most often).

    1. The gain that puts the integrated loudness (`loudness` when the caller measured it) on target.
    2. If the true peak would then pass the ceiling, the look-ahead limiter (`limit`) takes the
       loud frames down, and the loudness is measured again and the gain corrected once (the
       limiter lowers the loudness a little), limiting again from the original.
    3. A last trim scales the whole down to the ceiling if a true peak between samples still
       passes it (a fraction of a dB at most).

    Silence (loudness -inf) is returned as it is (times `full_scale`). `x` may be changed in place
    (float32 stays float32). The figures returned are at full scale 1.0 whatever `full_scale` is.
    `measure` finds the loudness (`integrated_loudness`; a render's mix, `hop_loudness`, which
    agrees within a few thousandths of a LU at a fraction of the cost).
    """
    data = _frames(x)
    before = measure(data, rate) if loudness is None else loudness
    if not math.isfinite(before):
        peak = true_peak(data)
        if full_scale != 1.0:
            np.multiply(data, np.asarray(full_scale, data.dtype), out=data, casting="unsafe")
        return data, Normalized(before, before, 0.0, _db(peak), 0.0)
    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    gain = 10.0 ** ((target_lufs - before) / 20.0)
    peak = true_peak(data) * gain
    if peak <= ceiling:  # 1. the gain alone
        np.multiply(data, np.asarray(gain * full_scale, data.dtype), out=data, casting="unsafe")
        return data, Normalized(before, target_lufs, _db(gain), _db(peak), 0.0)
    limited = _db(peak / ceiling) + _MARGIN_DB
    out = _limit_in_place(data * np.asarray(gain, data.dtype), ceiling, rate)  # 2. the limiter
    after = measure(out, rate)
    if math.isfinite(after) and abs(after - target_lufs) > 0.05:
        gain *= 10.0 ** ((target_lufs - after) / 20.0)
        out = _limit_in_place(np.multiply(data, np.asarray(gain, data.dtype), out=out), ceiling, rate)
        after = measure(out, rate)
    peak = true_peak(out)
    trim = 1.0
    if peak > ceiling:  # 3. inter-sample peaks the limiter could not see
        trim = ceiling / peak
        after += _db(trim)
        peak = ceiling
    if trim * full_scale != 1.0:
        out *= np.asarray(trim * full_scale, out.dtype)
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

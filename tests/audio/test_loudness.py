"""studio.audio.loudness against the reference code (pyloudnorm, resample_poly on the whole signal),
and the takes `accompany` writes: -16 LUFS, true peak <= -1 dBTP, never full scale, the melody leading."""

from __future__ import annotations

import itertools
import math
import wave
from pathlib import Path

import midi_factory
import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from studio.audio import loudness
from studio.audio.mixing import TrackMix, channel_volume, mix_score, take_tracks
from studio.audio.synth import Lead, SynthConfig, engine, render_midi, synth_status
from studio.core.midi import read_midi, write_midi
from studio.serving.service import AccompanyRequest, accompany

SYNTH_OK, SYNTH_WHY = synth_status()
needs_synth = pytest.mark.skipif(not SYNTH_OK, reason=f"FluidSynth unavailable: {SYNTH_WHY}")
RATE = 44100


def _music(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """A stereo stand-in for music: decaying partials of a few notes, a quiet stretch, a loud hit."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    x = np.zeros((len(t), 2))
    for start in np.arange(0.0, seconds - 0.5, 0.5):
        f = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        on = t >= start
        env = np.where(on, np.exp(-(t - start) * 3.0), 0.0)
        for k in (1, 2, 3):
            x[:, 0] += 0.1 / k * env * np.sin(2 * np.pi * f * k * t)
            x[:, 1] += 0.08 / k * env * np.sin(2 * np.pi * f * k * t + 0.3)
    x[round(2 * RATE) : round(3 * RATE)] *= 0.01
    hit = round(4.2 * RATE)
    if hit + 400 <= len(x):
        x[hit : hit + 400] += 0.6 * np.sin(2 * np.pi * 5000 * t[:400])[:, None]
    return x


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_filters_are_the_references(rate):
    """The K-weighting designed in closed form is pyloudnorm's (coefficients and response), and the
    true peak's interpolator is `scipy.signal.firwin`'s: written out so that rendering does not import
    scipy.signal (the test below)."""
    from scipy.signal import firwin, freqz_sos

    meter = pyloudnorm.Meter(rate)
    for row, stage in zip(loudness._k_weighting(rate), ("high_shelf", "high_pass"), strict=True):
        f = meter._filters[stage]
        b, a = np.asarray(f.b, float), np.asarray(f.a, float)
        assert row == pytest.approx(np.concatenate([f.passband_gain * b / a[0], a / a[0]]), rel=1e-12, abs=1e-15)
    w = np.linspace(0.0, np.pi, 257)
    _, want = freqz_sos(loudness._k_weighting(rate), worN=w)
    assert np.abs(loudness._sos_response(loudness._k_weighting(rate), w) - want).max() < 1e-9
    assert loudness._interpolator() == pytest.approx(firwin(81, 0.25, window=("kaiser", 5.0)) * 4, abs=1e-15)


@needs_synth
def test_a_take_is_rendered_without_scipy_signal(tmp_path):
    """A command's start-up does not pay for `scipy.signal` (half a second, issue 23): `generate` in a
    fresh process (a take measured, balanced and normalised) leaves it unimported. The limiter, for
    the few takes that need it, may still import it."""
    import subprocess
    import sys

    code = (
        "import runpy, sys\n"
        f"sys.argv = ['studio', 'generate', 'assets/melodies/chester.mid', '--model', 'rules', '--out-dir', {str(tmp_path)!r}]\n"
        "try:\n    runpy.run_module('studio', run_name='__main__')\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'scipy.signal' not in sys.modules, 'scipy.signal imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.glob("*.wav"))


def test_integrated_loudness_is_pyloudnorms():
    meter = pyloudnorm.Meter(RATE)
    rng = np.random.default_rng(1)
    for x in (_music(), rng.normal(size=(RATE * 3 + 123, 2)) * 0.1, _music(1.3), _music()[:, 0]):
        assert loudness.integrated_loudness(x, RATE) == pytest.approx(meter.integrated_loudness(x), abs=1e-3)
    assert loudness.integrated_loudness(np.zeros((RATE, 2)), RATE) == -math.inf


def test_the_hop_measure_is_pyloudnorms_from_any_chunks():
    """Each 100 ms hop K-weighted in the frequency domain (not the whole signal in time): within 0.01 LU
    of pyloudnorm; from chunks of any size (a render's buffers) as from one array; and the loudness of
    hop energies (`hops_loudness`, what the balance predicts) is the loudness of the audio they measure."""
    meter = pyloudnorm.Meter(RATE)
    lead, rest = _music(seed=2), _music(seed=3) * 1.7
    for x in (lead, rest, lead + 0.3 * rest, lead[: round(0.45 * RATE)]):
        assert loudness.hop_loudness(x, RATE) == pytest.approx(meter.integrated_loudness(x), abs=0.01)
        if len(x) < RATE:
            continue
        hops = loudness.hop_energies(x, RATE)
        # (the hops' last block may reach past the audio's: one block more at most, of seconds of blocks)
        assert loudness.hops_loudness(hops, RATE) == pytest.approx(loudness.hop_loudness(x, RATE), abs=1e-3)
        assert loudness.hops_loudness(hops.sum(axis=0, keepdims=True), RATE) == pytest.approx(loudness.hops_loudness(hops, RATE), abs=1e-6)
    assert loudness.hop_loudness(np.zeros((RATE, 2)), RATE) == -math.inf
    assert loudness.hops_loudness(np.zeros((1, 0)), RATE) == -math.inf
    cuts = [0, 1, 4410 * 3 + 17, RATE, len(lead) - 5, len(lead)]
    chunked = loudness.hop_energies([lead[a:b] for a, b in itertools.pairwise(cuts)], RATE)
    assert np.allclose(chunked, loudness.hop_energies(lead, RATE))
    # float32 audio is read in place (views of it), float64 copied: the same energies, over many segments too
    long = np.tile(lead, (-(-RATE * 30 // len(lead)), 1))[: RATE * 30 + 123]
    assert np.array_equal(loudness.hop_energies(long.astype(np.float32), RATE), loudness.hop_energies(long, RATE))


def test_true_peak_is_the_whole_signal_oversampled():
    for x in (_music(), _music(seed=5)[:, 0], np.random.default_rng(4).normal(size=(20000, 2)) * 0.1):
        whole = float(np.abs(resample_poly(x, 4, 1, axis=0)).max())
        assert loudness.true_peak(x) == pytest.approx(whole, rel=1e-9)
        assert loudness.true_peak(x, search_db=math.inf) == pytest.approx(whole, rel=1e-9)
    # between samples: a sine at a quarter of the rate sampled 45 degrees off its peaks
    n = np.arange(4000)
    x = np.sin(np.pi / 2 * n + np.pi / 4)
    assert np.abs(x).max() == pytest.approx(math.sqrt(0.5))
    assert loudness.true_peak(x) > 0.95


def test_lead_gain_turns_the_accompaniment_down_only_when_needed():
    assert loudness.lead_gain(-20.0, -17.0, 1.0) == pytest.approx(10 ** (-4.0 / 20))
    assert loudness.lead_gain(-20.0, -25.0, 1.0) == 1.0  # leads already
    assert loudness.lead_gain(-math.inf, -17.0) == loudness.lead_gain(-20.0, -math.inf) == 1.0
    # the mixer turned the melody down 6 dB: the take's balance, not a new one
    assert loudness.lead_gain(-26.0, -17.0, 1.0, lead_db=-6.0) == pytest.approx(10 ** (-4.0 / 20))


@pytest.mark.parametrize("scale", [0.01, 1.0, 3.0])
def test_normalize_hits_the_target_under_the_ceiling(scale):
    """Quiet, moderate and loud input: -16 LUFS, true peak <= -1 dBTP (the hit goes through the limiter,
    which costs a little loudness: within a quarter LU)."""
    out, info = loudness.normalize(_music() * scale, RATE)
    assert loudness.integrated_loudness(out, RATE) == pytest.approx(-16.0, abs=0.25)
    assert info.loudness == pytest.approx(loudness.integrated_loudness(out, RATE), abs=1e-6)
    assert 20 * math.log10(float(np.abs(resample_poly(out, 4, 1, axis=0)).max())) <= -1.0 + 1e-6
    assert info.limited_db > 0  # the 0.6 hit is far over -1 dBTP at -16 LUFS
    gentle, info = loudness.normalize(_music()[: round(2 * RATE)] * scale, RATE)  # no hit: the gain alone
    assert info.limited_db == 0 and loudness.integrated_loudness(gentle, RATE) == pytest.approx(-16.0, abs=0.01)
    silent, info = loudness.normalize(np.zeros((RATE, 2)), RATE)
    assert not silent.any() and info.loudness == -math.inf


@pytest.mark.parametrize("scale", [0.01, 3.0])
def test_normalize_scales_to_a_full_scale_in_the_same_pass(scale):
    """`full_scale` (int16's 32767 for the render) multiplies the normalised audio, on the gain's path
    and the limiter's alike; the figures it returns are those at full scale 1.0."""
    for x in (_music()[: round(2 * RATE)] * scale, _music() * scale):  # the gain alone, then the limiter
        plain, info = loudness.normalize(x.astype(np.float32), RATE)
        scaled, same = loudness.normalize(x.astype(np.float32), RATE, full_scale=32767.0)
        assert same == info and scaled.dtype == np.float32
        np.testing.assert_allclose(scaled, plain * np.float32(32767.0), rtol=1e-5, atol=1e-3)


# --- the takes `accompany` writes (FluidSynth and a SoundFont needed) ------------------------------

MODELS = ("rules", "gan-chorale", "arcnn-chorale")
SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "melodies"
TUNES = ("yankee_doodle.mid", "binnorie.mid")  # binnorie's melody sits high, where the choir covered it


def _wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)


@needs_synth
@pytest.mark.parametrize("model", MODELS)
def test_a_takes_wav_is_at_the_studio_loudness_and_the_melody_leads(model, tmp_path):
    for tune in TUNES:
        take = accompany(AccompanyRequest(SAMPLES / tune, model=model, seed=0, out_dir=tmp_path, want_png=False, want_listen=False))
        audio = _wav(take.wav_path)
        x = audio / 32767.0
        # measured in the render from the stems' hop energies: on target to a twentieth of a LU by pyloudnorm
        assert pyloudnorm.Meter(RATE).integrated_loudness(x) == pytest.approx(-16.0, abs=0.05), tune
        whole = float(np.abs(resample_poly(x, 4, 1, axis=0)).max())
        assert 20 * math.log10(whole) <= -1.0, tune
        assert loudness.true_peak(x) == pytest.approx(whole, rel=1e-9), tune  # the fast search finds the peak
        assert np.abs(audio.astype(np.int32)).max() < 32767, tune
        # the melody's lead, on the WAV: the take rendered with the accompaniment muted and with the
        # melody muted through the mixer's path, without the loudness step, fitted to the WAV
        score = read_midi(take.midi_path).score
        stems = []
        for melody_on in (True, False):
            mixes = [TrackMix(t.program, mute=(t.index == 0) != melody_on) for t in take_tracks(take.midi_path)]
            data = write_midi(mix_score(score, mixes), volumes=[channel_volume(m) for m in mixes])
            stems.append(render_midi(data, SynthConfig(loudness_lufs=None)) / 32767.0)
        melody, accompaniment = loudness.stem_loudness(x, stems[0], stems[1], RATE)
        assert melody - accompaniment >= -3.0, tune  # the acceptance bound per tune
        # what the mix sets, from the balance predicted before the render (tests/audio/test_balance.py)
        assert melody - accompaniment >= SynthConfig().lead_lu - 0.6, tune


@needs_synth
def test_a_lead_take_spread_over_engines_is_the_take_on_one(monkeypatch, request):
    """A lead render's channels (the accompaniment's volumes turned down) rendered on several engines
    at once (long music) or on one: the same take at the same loudness."""
    pool = engine.Pool()  # the four engines are this test's own, deleted at its end
    monkeypatch.setattr(engine, "POOL", pool)
    request.addfinalizer(pool.clear)
    song = midi_factory.band_song(bars=4)  # a flute melody on channel 0; drums, bass and a pad
    one = render_midi(song, SynthConfig(workers=1), Lead((0,))) / 32767.0
    spread = render_midi(song, SynthConfig(parallel_min_seconds=0.0, workers=4), Lead((0,))) / 32767.0
    meter = pyloudnorm.Meter(RATE)
    assert one.shape == spread.shape
    assert meter.integrated_loudness(one) == pytest.approx(-16.0, abs=0.05)
    assert meter.integrated_loudness(spread) == pytest.approx(meter.integrated_loudness(one), abs=0.01)
    # the same take but for FluidSynth's voice leftovers between renders (some onsets)
    difference = spread - one
    assert 20 * math.log10(np.sqrt(np.mean(difference**2)) / np.sqrt(np.mean(one**2))) < -45
    assert np.mean(np.abs(difference) > 10 / 32767) < 0.01


def _limit_over_the_whole_take(x: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """The limiter's gain computed over every frame (what `loudness.limit` did before it looked only
    around the frames over its aim), the reference it must equal."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    aim = ceiling * 10.0 ** (-loudness._MARGIN_DB / 20.0)
    need = np.minimum(1.0, aim / np.maximum(np.abs(x).max(axis=1).astype(np.float64), 1e-12))
    hold = minimum_filter1d(need, size=2 * round(loudness._LOOKAHEAD_S * rate) + 1, mode="nearest")
    gain = uniform_filter1d(hold, size=2 * round(loudness._RAMP_S * rate) + 1, mode="nearest")
    return x * gain[:, None].astype(x.dtype)


@pytest.mark.parametrize("seed", range(6))
def test_the_limiter_looks_only_around_its_peaks_and_gives_the_whole_takes_gain(seed, monkeypatch):
    """Peaks alone, in clusters, at both ends and close enough that their reaches meet: the same
    gain as scipy's filters over the whole take give, also when the take is read in small chunks."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(RATE // 2, 4 * RATE))
    x = (rng.normal(size=(n, 2)) * 0.05).astype(np.float32 if seed % 2 else np.float64)
    reach = round((loudness._LOOKAHEAD_S + loudness._RAMP_S) * RATE)
    spots = [0, n - 1, *rng.integers(0, n, size=int(rng.integers(1, 40)))]
    spots += [spots[-1] + d for d in (reach, 2 * reach, 4 * reach + 1) if spots[-1] + d < n]
    for at in spots:
        x[at, int(rng.integers(0, 2))] = float(rng.choice([-1.0, 1.0])) * rng.uniform(0.5, 3.0)
    if seed == 5:
        monkeypatch.setattr(loudness, "_LIMIT_CHUNK", 1000)
    ceiling = 10 ** (-1 / 20)
    expected = _limit_over_the_whole_take(x, ceiling, RATE)
    got = loudness.limit(x, ceiling, RATE)
    assert got.dtype == x.dtype
    # the same gain but for the last bits of the moving average (summed another way than scipy's)
    np.testing.assert_allclose(got, expected, rtol=1e-6 if x.dtype == np.float32 else 1e-9, atol=0)
    assert np.abs(got).max() <= ceiling * 10 ** (-loudness._MARGIN_DB / 20) * (1 + 1e-6)  # no sample over the aim
    assert not np.array_equal(got, x)
    quiet = x * 0.1
    assert np.array_equal(loudness.limit(quiet, ceiling, RATE), quiet)


@pytest.mark.parametrize("size", [1, 3, 7, 883, 3529])
def test_the_limiters_moving_minimum_and_mean_are_scipys(size):
    """The limiter's own filters (scipy.ndimage takes 0.4 s to import) against scipy's, "nearest" ends:
    windows longer than the signal, shorter, and lengths that are not a multiple of the window."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    rng = np.random.default_rng(size)
    for n in (1, 5, size - 1, size, size + 1, 3 * size + 2, 10_000):
        if n < 1:
            continue
        x = np.minimum(1.0, rng.uniform(0.2, 1.6, n))
        assert np.array_equal(loudness._moving_min(x, size), minimum_filter1d(x, size=size, mode="nearest"))
        np.testing.assert_allclose(loudness._moving_mean(x, size), uniform_filter1d(x, size=size, mode="nearest"), rtol=1e-9)
    ones = np.ones(5000)
    assert np.array_equal(loudness._moving_mean(ones, size), ones)  # exactly 1 where nothing is limited

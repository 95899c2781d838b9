"""How loud one note of each instrument is, hop by hop: single notes rendered once per SoundFont.

The loudness step sets the melody above the accompaniment before a take is rendered, from its
notes (`studio.audio.synth.balance`). What it needs of the SoundFont is here: for an instrument
(drum kit or not, bank, program), a key and a velocity of `VELOCITIES`, the K-weighted energy
(`studio.audio.loudness`) of each 100 ms hop of that one note, struck at the default channel
volume, held `HOLD_SECONDS` and released (`Envelopes`, `ENVELOPE_HOPS` hops: the held part, then
up to `RELEASE_HOPS` of release). Keys are not interpolated: FluidR3_GM's piano is 3.6 dB louder
at G4 than at F#4 (another sample). Velocities are (`studio.audio.synth.balance`), from the two
measured either side: a note's held level goes as the fourth power of its velocity to within
0.2 dB, but not its release (a guitar's falls 13 dB a hop struck at 64, 6 dB at 100).

A note is rendered dry (reverb and chorus off; FluidSynth's reverb changes a note's energy by
-0.5 to +0.7 dB, alike for the melody and the rest, and would double the cost), on a render's own
engine before that render resets it: a few milliseconds a note, once. The envelopes are kept in
memory and in the studio's cache folder (`$STUDIO_CACHE/note-energies`, else
``~/.cache/music-studio/note-energies``), one file per SoundFont (its path, size and time),
sample rate, gain and FluidSynth version, written atomically; a file that cannot be read or
written is ignored (the notes are rendered again).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from studio.audio.synth.config import FLUID_BLOCK, SynthConfig
from studio.audio.synth.engine import Engine
from studio.core.config import cache_dir

__all__ = ["ENVELOPE_HOPS", "HOLD_HOPS", "HOP_SECONDS", "VELOCITIES", "Envelopes", "envelopes_for", "instrument_code"]

HOP_SECONDS = 0.1  # BS.1770's hop: the loudness of 400 ms blocks is summed from these
HOLD_SECONDS = 3.0
HOLD_HOPS = round(HOLD_SECONDS / HOP_SECONDS)
RELEASE_HOPS = 15  # at most 1.5 s of release, less where the note falls silent first
ENVELOPE_HOPS = HOLD_HOPS + RELEASE_HOPS
VELOCITIES = (32, 64, 96, 127)  # the velocities a note is measured at (at channel volume 100, a file's default)
MOST_NEW_NOTES = 64  # notes measured for one render at most (about 0.5 s on the project's 2-core machine)
_SILENT = 10.0 ** (-70.0 / 20.0)  # a release hop whose peak is under -70 dBFS ends the note
_FORMAT = 2  # bump when what is measured changes, so that older cache files are not read


def instrument_code(
    drum: np.ndarray | int, bank: np.ndarray | int, program: np.ndarray | int, key: np.ndarray | int, velocity: np.ndarray | int
) -> np.ndarray:
    """One integer for (drum kit or not, bank, program, key, velocity): what a note's envelope is looked up by."""
    return (((np.asarray(drum, np.int64) * 128 + bank) * 128 + program) * 128 + key) * 128 + velocity


class Envelopes:
    """The note envelopes of one SoundFont at one sample rate and gain: `of(codes, engine)` gives
    each code's (`instrument_code`) `ENVELOPE_HOPS` hop energies, rendering those not known yet."""

    def __init__(self, soundfont: Path, sample_rate: int, gain: float, version: str) -> None:
        self.gain = gain
        stat = soundfont.stat()
        ident = f"{_FORMAT}|{soundfont.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}|{gain!r}|{version}"
        self.path = cache_dir("note-energies") / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.npz"
        self.sample_rate = sample_rate
        self._lock = threading.Lock()
        self._known: dict[int, np.ndarray] = {}
        self._read()

    def _read(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                codes, energies = saved["codes"], saved["energies"]
        except (OSError, ValueError, KeyError):
            return
        if energies.ndim == 2 and energies.shape[1] == ENVELOPE_HOPS and len(codes) == len(energies):
            self._known.update(zip(codes.tolist(), energies.astype(np.float32), strict=True))

    def _write(self) -> None:
        codes = np.array(sorted(self._known), np.int64)
        energies = np.stack([self._known[c] for c in codes.tolist()]) if len(codes) else np.zeros((0, ENVELOPE_HOPS))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as out:
                    np.savez(out, codes=codes, energies=energies)
                os.replace(temp, self.path)
            finally:
                Path(temp).unlink(missing_ok=True)
        except OSError:
            pass  # a cache that cannot be written: the notes are rendered again next time

    def of(self, codes: np.ndarray, engine: Engine, most: int = MOST_NEW_NOTES) -> np.ndarray:
        """The envelopes of `codes` (K,), shape (K, `ENVELOPE_HOPS`), float32. Notes not known yet are
        rendered on `engine` (which the caller resets before its next render), at most `most` of
        them, those most asked for first; any others borrow the envelope of the nearest key known of
        the same instrument at the same velocity (else of any instrument), until a later call
        measures them. A file of every key of sixteen instruments costs no more than `most` notes."""
        wanted, counts = np.unique(codes, return_counts=True)
        if not len(wanted):
            return np.zeros((0, ENVELOPE_HOPS), np.float32)
        with self._lock:
            missing = [int(c) for c in wanted[np.argsort(-counts, kind="stable")].tolist() if c not in self._known]
            if missing:
                for code in missing[: most if self._known else max(1, most)]:  # something to borrow from
                    self._known[code] = _render_note(engine, code, self.sample_rate, self.gain)
                self._write()
            known = np.fromiter(self._known, np.int64, len(self._known))
            table = np.stack([self._known[c] if c in self._known else self._nearest(c, known) for c in wanted.tolist()])
        return table[np.searchsorted(wanted, codes)]

    def _nearest(self, code: int, known: np.ndarray) -> np.ndarray:
        """The envelope of the `known` note nearest to `code` by key: of its instrument and velocity,
        else of its velocity, else any."""
        velocity, key = code % 128, code // 128 % 128
        instrument = code // (128 * 128)
        for mine in (known // (128 * 128) == instrument) & (known % 128 == velocity), known % 128 == velocity, np.ones(len(known), bool):
            if mine.any():
                candidates = known[mine]
                return self._known[int(candidates[np.argmin(np.abs(candidates // 128 % 128 - key))])]
        raise AssertionError("no note measured")  # `of` measures one at least before it borrows


def _render_note(engine: Engine, code: int, sample_rate: int, gain: float) -> np.ndarray:
    """The hop energies of one note (`instrument_code` `code`) rendered alone on `engine`, dry."""
    from studio.audio import loudness

    rest, velocity = divmod(code, 128)
    rest, key = divmod(rest, 128)
    rest, program = divmod(rest, 128)
    drum, bank = divmod(rest, 128)
    channel = 9 if drum else 0  # FluidSynth plays channel 10 from the drum kits' bank
    engine.reset(SynthConfig(sample_rate=sample_rate, gain=gain, reverb=False, chorus=False))
    synth = engine.synth
    synth.cc(channel, 0, bank)
    synth.program_change(channel, program)
    hop = round(HOP_SECONDS * sample_rate)
    blocks = -(-hop * ENVELOPE_HOPS // FLUID_BLOCK)
    audio = np.zeros((blocks * FLUID_BLOCK, 2), np.float32)
    held = hop * HOLD_HOPS // FLUID_BLOCK * FLUID_BLOCK
    synth.noteon(channel, key, velocity)
    engine.fluid.render(synth.synth, held, audio.ctypes.data)
    synth.noteoff(channel, key)
    at = held
    while at < len(audio):  # the release, a hop at a time, until it falls silent
        n = min(-(-hop // FLUID_BLOCK) * FLUID_BLOCK, len(audio) - at)
        engine.fluid.render(synth.synth, n, audio[at:].ctypes.data)
        at += n
        if np.abs(audio[at - n : at]).max() < _SILENT:
            break
    energies = loudness.hop_energies(audio[: hop * ENVELOPE_HOPS], sample_rate).sum(axis=0)
    out = np.zeros(ENVELOPE_HOPS, np.float32)  # kept for every note a SoundFont played: half the room of float64
    out[: len(energies)] = energies[:ENVELOPE_HOPS]
    return out


_TABLES: dict[tuple, Envelopes] = {}
_TABLES_LOCK = threading.Lock()


def envelopes_for(engine: Engine, config: SynthConfig) -> Envelopes:
    """The `Envelopes` of `engine`'s SoundFont and sample rate at `config`'s gain (one per process)."""
    soundfont, sample_rate = engine.key
    gain = config.gain
    with _TABLES_LOCK:
        key = (soundfont, sample_rate, gain)
        if key not in _TABLES:
            _TABLES[key] = Envelopes(Path(soundfont), sample_rate, gain, engine.fluid.version())
        return _TABLES[key]

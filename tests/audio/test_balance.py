"""studio.audio.synth.balance and note_energy: each part's loudness predicted from its notes against the
part rendered by FluidSynth and measured, the accompaniment's volumes rewritten, the envelopes kept."""

from __future__ import annotations

import io
import math

import mido
import numpy as np
import pytest

from studio.audio import loudness
from studio.audio.synth import SynthConfig, engine, note_energy, render_midi, synth_status
from studio.audio.synth.balance import part_loudness, rest_gain
from studio.audio.synth.config import Lead
from studio.audio.synth.split import scan_midi

SYNTH_OK, SYNTH_WHY = synth_status()
needs_synth = pytest.mark.skipif(not SYNTH_OK, reason=f"FluidSynth unavailable: {SYNTH_WHY}")
RAW = SynthConfig(loudness_lufs=None)  # the renders measured here: FluidSynth's own level, reverb on
TPB = 480


def _song(
    parts: dict[int, tuple[int, list[tuple[float, float, int, int]]]], volumes: dict[int, list[tuple[float, int]]] | None = None
) -> bytes:
    """A type-1 file at 120 qpm: per channel (program, notes as (start beat, beats, key, velocity)) and
    channel volumes (CC7) as (beat, value)."""
    tracks = [mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])]
    for channel, (program, notes) in parts.items():
        events = [] if channel == 9 else [(0, 0, mido.Message("program_change", channel=channel, program=program))]
        for beat, value in (volumes or {}).get(channel, []):
            events.append((round(beat * TPB), 1, mido.Message("control_change", channel=channel, control=7, value=value)))
        for start, beats, key, velocity in notes:
            events.append((round(start * TPB), 2, mido.Message("note_on", channel=channel, note=key, velocity=velocity)))
            events.append((round((start + beats) * TPB), 0, mido.Message("note_off", channel=channel, note=key)))
        track, now = mido.MidiTrack(), 0
        for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        tracks.append(track)
    out = io.BytesIO()
    mido.MidiFile(type=1, ticks_per_beat=TPB, tracks=tracks).save(file=out)
    return out.getvalue()


def _rendered(split, channels: list[int]) -> float:
    """The loudness of `channels` of `split` rendered by FluidSynth (reverb on) and measured."""
    return loudness.hop_loudness(render_midi(split.midi(channels), RAW).astype(np.float64) / 32767.0, RAW.sample_rate)


def _predicted(split, channels: list[int]) -> float:
    engines = engine.POOL.acquire(RAW)
    try:
        return part_loudness(split, channels, engines[0], RAW)
    finally:
        engine.POOL.release(engines)


def _hymn() -> bytes:
    """A piano melody over a choir of three voices that double one another on some chords (struck
    together, released together or not), long held notes, a plucked bass, drums; velocities varied."""
    rng = np.random.default_rng(3)
    tune = [67, 69, 71, 72, 74, 72, 71, 69, 67, 71, 74, 79, 78, 76, 74, 72]
    melody = [(i * 1.0, 1.0, k, int(rng.integers(60, 110))) for i, k in enumerate(tune)]
    chords = [(55, 59, 62), (57, 60, 64), (55, 59, 62), (55, 55, 60), (54, 57, 62), (55, 59, 59), (52, 55, 60), (50, 55, 59)]
    choir = {c: [] for c in (1, 2, 3)}
    for bar, chord in enumerate(chords):
        for voice, key in enumerate(chord):
            beats = 2.0 if voice != 1 or bar % 3 else 0.5  # the alto sometimes lets go early
            choir[voice + 1].append((bar * 2.0, beats, key, int(rng.integers(55, 95))))
    bass = [(b * 2.0, 8.0 if b == 0 else 1.5, (43, 45, 43, 48, 50, 43, 40, 38)[b], 80) for b in range(8)]
    drums = [(b * 0.5, 0.1, 42, 70) for b in range(32)] + [(b * 2.0, 0.25, 36, 100) for b in range(8)]
    return _song({0: (0, melody), 1: (52, choir[1]), 2: (52, choir[2]), 3: (48, choir[3]), 4: (32, bass), 9: (0, drums)})


@needs_synth
@pytest.mark.parametrize(
    "name, data, melody",
    [
        ("hymn", _hymn(), [0]),
        ("strings", _song({0: (40, [(b, 1.0, 76 - b % 5, 90) for b in range(12)]), 1: (48, [(0, 12.0, 55, 70), (0, 12.0, 43, 70)])}), [0]),
        (
            "flute and guitar",  # short plucked notes, struck softly: their release is another than at 100
            _song(
                {
                    0: (73, [(b * 0.5, 0.5, 72 + b % 7, 100) for b in range(24)]),
                    1: (24, [(b * 0.25, 0.2, 48 + b % 12, 64) for b in range(48)]),
                }
            ),
            [0],
        ),
        (
            "electric piano, keys struck again",  # a soft electric piano fades out within its measured hold;
            # the piano strikes keys it still holds (each new note-on releases the old)
            _song(
                {
                    0: (73, [(b, 1.0, 72 + b % 5, 96) for b in range(16)]),
                    1: (2, [(b * 0.5, 0.5, 50 + b % 7, 70) for b in range(32)]),
                    2: (0, [(b, 2.5, k, 80) for b in range(16) for k in (43, 55)] + [(b, 2.5, 55, 60) for b in range(0, 16, 4)]),
                }
            ),
            [0],
        ),
    ],
)
def test_each_part_is_predicted_as_it_renders(name, data, melody):
    """Within half a LU each part, and the balance of the two (what the mix sets) within 0.6 LU; a part
    is the notes of some channels, every other event kept, rendered with FluidSynth's reverb."""
    split = scan_midi(data)
    rest = sorted({n[0] for n in split.notes} - set(melody))
    lead_error = _predicted(split, melody) - _rendered(split, melody)
    rest_error = _predicted(split, rest) - _rendered(split, rest)
    assert abs(lead_error) <= 0.5, name
    assert abs(rest_error) <= 0.5, name
    assert abs(lead_error - rest_error) <= 0.6, name


@needs_synth
def test_velocity_and_channel_volume_scale_a_part_as_fluidsynth_does():
    """Amplitude goes as the square of the velocity and of CC7 (the SoundFont 2 default modulators):
    a part at velocity 50 is 12 dB under the same at 100, at CC7 71 6 dB under; rendered likewise."""
    notes = [(b, 1.0, 60 + b % 8, 100) for b in range(8)]
    loud = scan_midi(_song({0: (0, notes)}))
    soft = scan_midi(_song({0: (0, [(s, d, k, 50) for s, d, k, _ in notes])}))
    turned = scan_midi(_song({0: (0, notes)}, volumes={0: [(0, 71)]}))
    for split, drop in ((soft, 40 * math.log10(2)), (turned, 40 * math.log10(100 / 71))):
        assert _predicted(loud, [0]) - _predicted(split, [0]) == pytest.approx(drop, abs=0.05)
        assert _rendered(loud, [0]) - _rendered(split, [0]) == pytest.approx(drop, abs=0.3)


@needs_synth
def test_with_volume_turns_the_channels_down_by_their_volume_alone():
    """`Split.with_volume`: every CC7 of those channels scaled, their default volume set first, every
    other byte kept; the part renders `gain` times as loud in amplitude (to the CC7's rounding)."""
    data = _song({0: (0, [(b, 1.0, 67, 90) for b in range(8)]), 1: (52, [(b, 1.0, 55, 80) for b in range(8)])}, volumes={1: [(4, 90)]})
    split = scan_midi(data)
    turned = split.with_volume([1], 0.25)
    read = mido.MidiFile(file=io.BytesIO(turned.midi([0, 1])))
    volumes = [(m.channel, m.value) for t in read.tracks for m in t if m.type == "control_change" and m.control == 7]
    assert volumes == [(1, 50), (1, 45)]  # 100 and 90 times sqrt(0.25)
    assert [(c, v) for _, c, number, v in turned.controls if number == 7] == volumes  # what the balance reads
    assert turned.midi([0]) != split.midi([0]) and turned.with_volume([1], 1.0).midi([0, 1]) == turned.midi([0, 1])
    untouched = [m for t in read.tracks for m in t if not (m.type == "control_change" and m.control == 7)]
    original = [m for t in mido.MidiFile(file=io.BytesIO(data)).tracks for m in t if not (m.type == "control_change" and m.control == 7)]
    assert [str(m) for m in untouched] == [str(m) for m in original]
    assert _rendered(split, [1]) - _rendered(turned, [1]) == pytest.approx(-20 * math.log10(0.25), abs=0.15)
    assert _rendered(turned, [0]) == pytest.approx(_rendered(split, [0]), abs=0.01)


@needs_synth
def test_rest_gain_sets_the_melody_ahead_by_the_mixers_measure():
    """The gain asked of the rest follows `loudness.lead_gain` from the predicted parts: 1 when the
    melody leads already, the mixer's gains taken out, 1 for a part without notes."""
    split = scan_midi(_hymn())
    engines = engine.POOL.acquire(RAW)
    try:
        melody, rest = part_loudness(split, [0], engines[0], RAW), part_loudness(split, [1, 2, 3, 4, 9], engines[0], RAW)
        config = SynthConfig()
        assert rest_gain(split, Lead((0,)), engines[0], config) == pytest.approx(loudness.lead_gain(melody, rest, config.lead_lu))
        assert rest_gain(split, Lead((0,), rest_db=-6.0), engines[0], config) == pytest.approx(
            loudness.lead_gain(melody, rest, 1.0, 0.0, -6.0)
        )
        assert rest_gain(split, Lead((0,)), engines[0], SynthConfig(lead_lu=-40.0)) == 1.0
        assert rest_gain(split, Lead((5,)), engines[0], config) == 1.0  # no melody notes
    finally:
        engine.POOL.release(engines)


@needs_synth
def test_the_envelopes_are_kept_between_processes_and_a_bad_cache_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    engines = engine.POOL.acquire(RAW)
    try:
        soundfont, rate = engines[0].key
        codes = note_energy.instrument_code(np.array([0, 0, 1]), 0, np.array([0, 52, 0]), np.array([60, 60, 36]), np.array([64, 127, 96]))
        first = note_energy.Envelopes(soundfont, rate, RAW.gain, "x").of(codes, engines[0])
        assert first.shape == (3, note_energy.ENVELOPE_HOPS) and (first[:, 0] > 0).all()
        assert first[0, note_energy.HOLD_HOPS - 1] > first[0, -1]  # held, then released

        def no_render(*_args):
            raise AssertionError("rendered again")

        monkeypatch.setattr(note_energy, "_render_note", no_render)
        again = note_energy.Envelopes(soundfont, rate, RAW.gain, "x").of(codes[::-1], engines[0])
        assert np.array_equal(again, first[::-1])
        for path in (tmp_path / "note-energies").iterdir():
            path.write_bytes(b"not an npz")
        monkeypatch.undo()
        monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
        fresh = note_energy.Envelopes(soundfont, rate, RAW.gain, "x").of(codes, engines[0])
        assert np.allclose(fresh, first, rtol=1e-3)
    finally:
        engine.POOL.release(engines)


@needs_synth
def test_a_render_measures_a_bounded_number_of_new_notes(monkeypatch, tmp_path):
    """A file of many keys and instruments measures at most `most` new notes in one render (those
    asked for most first); the others borrow the nearest key's envelope until a later render."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    rendered = []
    real = note_energy._render_note

    def counted(engine_, code, *args):
        rendered.append(code)
        return real(engine_, code, *args)

    monkeypatch.setattr(note_energy, "_render_note", counted)
    engines = engine.POOL.acquire(RAW)
    try:
        soundfont, rate = engines[0].key
        table = note_energy.Envelopes(soundfont, rate, RAW.gain, "x")
        keys = np.array([60] * 5 + list(range(40, 80)))
        codes = note_energy.instrument_code(0, 0, 52, keys, 96)
        first = table.of(codes, engines[0], most=3)
        assert len(rendered) == 3 and rendered[0] == note_energy.instrument_code(0, 0, 52, 60, 96)  # the most asked first
        assert first.shape == (len(codes), note_energy.ENVELOPE_HOPS) and (first[:, 0] > 0).all()
        other = note_energy.instrument_code(0, 0, 0, 61, 32)  # nothing known of the piano at 32: the nearest key at any
        borrowed = table.of(np.array([other]), engines[0], most=0)
        assert len(rendered) == 3 and np.array_equal(borrowed[0], first[list(keys).index(60)])  # key 60 at 96
        table.of(codes, engines[0], most=64)
        assert len(rendered) == 40  # the other 37 keys measured by the next render
    finally:
        engine.POOL.release(engines)


def test_notes_of_a_key_struck_again_end_as_fluidsynth_plays_them():
    """A note-on releases the note of its key and channel still sounding; a note-off releases every
    note of that key; two struck at one tick sound as one, to the earlier note-off."""
    from studio.audio.synth.balance import _as_played

    a = 10  # the release allowance, added to every end
    notes = np.array(
        [
            [0, 0, 400 + a, 60, 90],  # released at 100 by the next note-on ...
            [0, 100, 300 + a, 60, 90],  # ... which ends at its own note-off (300 < 400)
            [0, 500, 700 + a, 60, 90],  # struck after: its own
            [0, 600, 650 + a, 60, 90],  # the first is released at 600; this one by its own note-off at 650
            [1, 0, 200 + a, 60, 90],  # struck together on another channel: one voice, to the earlier end
            [1, 0, 300 + a, 60, 90],
            [1, 0, 300 + a, 62, 90],  # another key: untouched
        ]
    )
    played = sorted(map(tuple, _as_played(notes, a).tolist()))
    assert played == [
        (0, 0, 100 + a, 60, 90),
        (0, 100, 300 + a, 60, 90),
        (0, 500, 600 + a, 60, 90),
        (0, 600, 650 + a, 60, 90),
        (1, 0, 200 + a, 60, 90),
        (1, 0, 300 + a, 62, 90),
    ]
    overlapping = np.array([[0, 0, 200 + a, 60, 90], [0, 100, 300 + a, 60, 90]])  # the first's note-off releases the second
    assert sorted(map(tuple, _as_played(overlapping, a).tolist())) == [(0, 0, 100 + a, 60, 90), (0, 100, 200 + a, 60, 90)]

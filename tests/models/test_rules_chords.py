"""models/rules.py with the user's chords: followed exactly on every strong beat, in every meter."""

from __future__ import annotations

from pathlib import Path

import midi_factory
import numpy as np
import pytest

from models.base import CHORDS_PARAM, declarations
from models.rules import RulesAccompanist
from studio.core.chords import QUALITIES, ChordSpan, chord_tone_share, parse_progression, progression_spans
from studio.core.melody import extract_melody
from studio.core.meter import estimate_pickup
from studio.core.metrics import melody_key
from studio.core.midi import read_midi
from studio.core.roll import make_grid, notes_to_roll

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "assets" / "melodies").glob("*.mid"))
TUNES = REPO / "tests" / "data" / "tunes"
# Every kind of symbol: slash chords (a bass outside the chord too), sevenths and sixths, two and three chords a bar, a repeat.
PROGRESSION = "C G/B | Am7 Fmaj7 | Dm7 G7 | C6 C/Bb | F#m7b5 B7 Em | Ab Bbsus4 | % Gsus2 | Bdim7 Caug"
ONE_A_BAR = "C Am F G7 Em A7/C# Dm G"  # whole-bar chords: a walking bass must not pass through the middle of a 2/4 or 6/8 bar
SEEDS = (0, 1, 3)  # seed 0 plays the first choices; 1 draws a root-fifth bass, 3 a walking one


def _prepare(path: Path):
    score = read_midi(path).score
    melody = extract_melody(score).track
    grid = make_grid(score, estimate_pickup(melody.notes, score))
    return notes_to_roll(melody.notes, grid, "Melody", 0), grid


def _five_four(tmp_path: Path):
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    path = tmp_path / "five_four.mid"
    path.write_bytes(midi_factory.melody([(i * 0.5, 0.5, scale[i % 8]) for i in range(8 * 10)], numerator=5))
    return _prepare(path)


def _given(melody, grid, text: str = PROGRESSION) -> list[ChordSpan]:
    melody_end = int(np.flatnonzero(melody.velocity.any(axis=1))[-1]) + 1
    return progression_spans(parse_progression(text), grid, until=melody_end)


def _share(melody, grid, params, seed, text: str = PROGRESSION) -> tuple[float, int]:
    spans = _given(melody, grid, text)
    tracks = RulesAccompanist().generate(melody, grid, {**params, CHORDS_PARAM: spans}, seed)
    return chord_tone_share(tracks, grid, spans)


def test_rules_declares_that_it_follows_chords():
    assert declarations()["rules"].follows_chords


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_strong_beat_note_is_in_the_given_chord_on_the_samples(path):
    melody, grid = _prepare(path)
    for seed in SEEDS:
        share, counted = _share(melody, grid, {}, seed)
        assert counted > 0 and share == 1.0, (seed, share)


@pytest.mark.parametrize("tune", ["three_four_pickup", "six_eight_minor", "two_four", "four_four_pickup_minor", "five_four"])
@pytest.mark.parametrize("pattern", ["oompah", "pulse", "block", "arpeggio"])
def test_every_meter_pattern_and_chord_rate_follows_the_chords(tune, pattern, tmp_path):
    melody, grid = _five_four(tmp_path) if tune == "five_four" else _prepare(TUNES / f"{tune}.mid")
    for seed in SEEDS:
        for chords_per_bar in (1, 2, 4):
            for text in (PROGRESSION, ONE_A_BAR):
                share, counted = _share(melody, grid, {"pattern": pattern, "chords_per_bar": chords_per_bar}, seed, text)
                assert counted > 0 and share == 1.0, (seed, chords_per_bar, text, share)


def test_chords_given_after_the_last_note_are_followed_too():
    """The Water of Tyne ends two beats before its last bar does: chords placed to the grid's end hold there."""
    melody, grid = _prepare(REPO / "assets" / "melodies" / "the_water_of_tyne.mid")
    spans = progression_spans(parse_progression("C G | Am F | Dm G7 | C Em"), grid)
    assert spans[-1].end > int(np.flatnonzero(melody.velocity.any(axis=1))[-1]) + 1
    tracks = RulesAccompanist().generate(melody, grid, {CHORDS_PARAM: spans}, 0)
    share, counted = chord_tone_share(tracks, grid, spans)
    assert counted > 0 and share == 1.0


def test_the_bass_plays_a_slash_chords_bass_and_four_note_chords_sound_whole():
    melody, grid = _prepare(TUNES / "four_four.mid")
    spans = _given(melody, grid, "G/B Am7 D7/F# Gmaj7")
    bass, keys = RulesAccompanist().generate(melody, grid, {"pattern": "block", CHORDS_PARAM: spans}, 0)
    assert [int(np.flatnonzero(bass.velocity[s.start])[0]) % 12 for s in spans[:4]] == [11, 9, 6, 7]  # B, A, F#, G
    whole = 0
    for span in spans[:-1]:
        tones = {(span.chord.root + i) % 12 for i in QUALITIES[span.chord.quality]}
        struck = {int(p) % 12 for p in np.flatnonzero(keys.onset[span.start : span.end].any(axis=0))}
        assert struck <= tones, span
        whole += struck == tones and len(tones) == 4
    assert whole >= len(spans) // 3  # most four-note chords keep all their tones (a tone clashing with the melody is left out)


def test_the_pickup_and_free_spans_are_harmonized_in_the_key():
    melody, grid = _prepare(TUNES / "three_four_pickup.mid")
    key = melody_key(melody)
    assert grid.pickup_steps > 0
    spans = _given(melody, grid, " ".join(("C", "F", "G", "C") if key.mode == "major" else ("Cm", "Fm", "G", "Cm")))
    free = [ChordSpan(s.start, s.end, None if i % 2 else s.chord) for i, s in enumerate(spans)]
    tracks = RulesAccompanist().generate(melody, grid, {CHORDS_PARAM: free}, 0)
    assert all(t.velocity[: grid.pickup_steps].any() for t in tracks)  # the pickup has its own chord
    share, counted = chord_tone_share(tracks, grid, free)
    assert counted > 0 and share == 1.0
    for span in free[1:-1:2]:  # the free spans: played, in the key
        for track in tracks:
            sounding = {int(p) % 12 for p in np.flatnonzero(track.velocity[span.start : span.end].any(axis=0))}
            assert sounding and sounding <= key.accepted, (span, track.name)


def test_no_chords_or_an_empty_list_plays_what_it_played_without_them():
    melody, grid = _prepare(TUNES / "four_four.mid")
    model = RulesAccompanist()
    for seed in SEEDS:
        a = model.generate(melody, grid, {"pattern": "pulse"}, seed)
        b = model.generate(melody, grid, {"pattern": "pulse", CHORDS_PARAM: []}, seed)
        assert all((x.velocity == y.velocity).all() and (x.onset == y.onset).all() for x, y in zip(a, b, strict=True))

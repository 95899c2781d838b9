"""Every accompanist's take keeps the melody note for note, and nothing sounds more than one beat
(the last bar's felt beat, at most a quarter note) after the melody's last note ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.melody import extract_melody
from studio.core.midi import read_midi
from studio.serving.registry import default_registry, family_writes
from studio.serving.service import AccompanyRequest, accompany

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "assets" / "melodies"
INDEX = json.loads((SAMPLES / "index.json").read_text())
# one tune in 4/4 and one in a compound meter (its felt beat is longer than a quarter note)
TUNES = [next(e["file"] for e in INDEX if e.get("meter", "4/4") == "4/4"), next(e["file"] for e in INDEX if e.get("meter") == "6/8")]
ACCOMPANISTS = [c.name for c in default_registry().cards() if not c.disabled and family_writes(c.family) == "accompaniment"]


@pytest.mark.parametrize("model", ACCOMPANISTS)
def test_the_melody_is_kept_and_the_voices_end_with_it(model, tmp_path):
    for tune in TUNES:
        source = read_midi(SAMPLES / tune).score
        played = extract_melody(source).track
        result = accompany(
            AccompanyRequest(midi=SAMPLES / tune, model=model, out_dir=tmp_path, want_wav=False, want_png=False, want_listen=False)
        )
        written = read_midi(result.midi_path).score
        melody = written.tracks[0]
        assert [(n.start, n.end, n.pitch) for n in melody.notes] == [(n.start, n.end, n.pitch) for n in played.notes], (model, tune)
        end = max(n.end for n in melody.notes)
        last = max(n.end for t in written.tracks[1:] for n in t.notes)
        assert last - end <= written.ticks_per_beat, (model, tune, (last - end) / written.ticks_per_beat)

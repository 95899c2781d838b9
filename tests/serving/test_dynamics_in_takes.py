"""A family that writes one flat velocity (`FamilyInfo.flat_dynamics`) gets its accompaniment shaped
(`studio.core.dynamics`) by the service; the melody and the other families' tracks are as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.midi import read_midi
from studio.serving.registry import family_info
from studio.serving.service import AccompanyRequest, accompany

REPO = Path(__file__).resolve().parents[2]
SAMPLE = sorted((REPO / "assets" / "melodies").glob("*.mid"))[0]


def _velocities(model: str, tmp_path: Path) -> dict[str, set[int]]:
    request = AccompanyRequest(midi=SAMPLE, model=model, out_dir=tmp_path, want_wav=False, want_png=False, want_listen=False)
    score = read_midi(accompany(request).midi_path).score
    return {t.name: {n.velocity for n in t.notes} for t in score.tracks}


@pytest.mark.parametrize("model", ["gan-chorale", "arcnn-chorale"])
def test_a_flat_family_s_voices_get_accents_and_the_melody_is_untouched(model, tmp_path):
    assert family_info(model.split("-")[0]).flat_dynamics
    source = {n.velocity for t in read_midi(SAMPLE).score.tracks for n in t.notes}
    got = _velocities(model, tmp_path)
    assert got.pop("Melody") <= source  # the melody's velocities as played
    for name, velocities in got.items():
        assert len(velocities) >= 4, (name, velocities)  # downbeats, beats, offbeats, and the phrase


def test_rules_keeps_its_own_accents(tmp_path):
    assert not family_info("rules").flat_dynamics
    got = _velocities("rules", tmp_path)
    assert got["Bass"] <= {82 - 8, 82, 82 + 8}  # as rules.py writes them (its bass, a downbeat accent, a passing tone), not reshaped

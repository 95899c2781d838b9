"""bench/rests.py: each lower voice's share of the melody's sounding steps at which it rests."""

from __future__ import annotations

from bench.rests import rest_shares
from studio.core.roll import RollTrack


def _track(name: str, sounding: list[int], pitch: int = 60) -> RollTrack:
    track = RollTrack.empty(name, 0, 8)
    for step in sounding:
        track.velocity[step, pitch] = 80
    return track


def test_a_voice_rests_only_where_the_melody_sounds_and_it_does_not():
    melody = _track("Melody", [0, 1, 2, 3, 4, 5], 72)  # steps 6, 7 are the melody's rest
    alto = _track("Alto", [0, 1, 2, 3, 4, 5, 6])  # always under it
    tenor = _track("Tenor", [0, 1, 2])  # rests at 3, 4, 5 (and 6, 7, where the melody rests too)
    bass = _track("Bass", [])  # silent
    assert rest_shares([(melody, [alto, tenor, bass])]).tolist() == [0.0, 0.5, 1.0]
    twice = rest_shares([(melody, [alto, tenor, bass]), (melody, [alto, alto, alto])])  # pooled over the takes' steps
    assert twice.tolist() == [0.0, 0.25, 0.5]
    assert rest_shares([]).size == 0

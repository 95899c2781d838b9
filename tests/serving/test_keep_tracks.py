"""`AccompanyRequest.keep_tracks`: the accompaniment is added to an uploaded song, its other tracks
(drums, bass, pad) kept note for note, on channels that do not clash with the generated tracks."""

from __future__ import annotations

from collections import Counter

import mido

from studio.core.midi import read_midi
from studio.serving.service import AccompanyRequest, accompany
from tests import midi_factory


def _notes(track) -> Counter:
    return Counter((n.start, n.end, n.pitch, n.velocity) for n in track.notes)


def _run(tmp_path, keep: bool, model: str = "rules"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    song = tmp_path / "band.mid"
    song.write_bytes(midi_factory.band_song())
    request = AccompanyRequest(
        midi=song, model=model, out_dir=tmp_path / "out", want_wav=False, want_png=False, want_listen=False, keep_tracks=keep
    )
    return read_midi(song).score, accompany(request)


def test_every_note_of_the_other_tracks_is_in_the_output(tmp_path):
    source, result = _run(tmp_path, keep=True)
    written = read_midi(result.midi_path).score
    others = [t for t in source.tracks if t.name != "Flute"]
    assert [t.name for t in others] == ["Drums", "Bass", "Pad"]
    for track in others:
        match = [t for t in written.tracks if t.name == track.name and t.is_drum == track.is_drum and t.program == track.program]
        assert len(match) == 1, track.name
        assert _notes(match[0]) == _notes(track), track.name  # every note, as played
    # the melody and the generated Bass and Guitar are there too, ahead of the kept tracks
    assert [t.name for t in written.tracks][:3] == ["Melody", "Bass", "Guitar"]
    assert any("kept the song's 3 other tracks" in n for n in result.notes)


def test_kept_tracks_do_not_share_a_channel_with_the_generated_ones(tmp_path):
    _source, result = _run(tmp_path, keep=True)
    channels = []
    for track in mido.MidiFile(result.midi_path).tracks:
        used = {m.channel for m in track if m.type == "note_on"}
        if used:
            assert len(used) == 1
            channels.append(used.pop())
    assert len(channels) == 6 and len(set(channels)) == 6  # melody, bass, guitar, drums, bass, pad
    assert 9 in channels  # the drums stay on channel 10


def test_without_it_the_song_is_melody_and_accompaniment_as_before(tmp_path):
    _source, kept = _run(tmp_path / "kept", keep=True)
    _source, plain = _run(tmp_path / "plain", keep=False)
    names = [t.name for t in read_midi(plain.midi_path).score.tracks]
    assert names == ["Melody", "Bass", "Guitar"]
    assert [t.name for t in read_midi(kept.midi_path).score.tracks] == ["Melody", "Bass", "Guitar", "Drums", "Bass", "Pad"]
    assert kept.metrics == plain.metrics  # the accompaniment is measured alone, either way
    assert not plain.notes


def test_keeping_a_one_track_melodys_tracks_says_there_is_nothing_to_keep(tmp_path):
    song = tmp_path / "tune.mid"
    song.write_bytes(midi_factory.melody([(i, 1, 60 + i % 5) for i in range(8)]))
    result = accompany(AccompanyRequest(midi=song, out_dir=tmp_path, want_wav=False, want_png=False, want_listen=False, keep_tracks=True))
    assert len(read_midi(result.midi_path).score.tracks) == 3
    assert "the song has no other tracks to keep" in result.notes

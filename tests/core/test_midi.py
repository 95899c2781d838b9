"""studio.core.midi: reading real tunes of every format, writing them back, and refusing bad input clearly."""

from __future__ import annotations

import io
import struct
import time

import midi_factory as mf
import mido
import pytest

from studio.core.config import Limits
from studio.core.errors import InputError
from studio.core.midi import read_midi, write_midi
from studio.core.score import Note, Score, TempoChange, TimeSignature, Track


def test_reads_every_real_tune(tune_index, tune_paths):
    for entry in tune_index:
        parsed = read_midi(tune_paths[entry["file"]])
        score = parsed.score
        assert score.ticks_per_beat == entry["ticks_per_beat"], entry["file"]
        assert score.n_notes > 0
        meters = [f"{s.numerator}/{s.denominator}" for s in score.time_signatures]
        assert entry["meter"] in meters, entry["file"]
        assert len(score.tempos) == len(entry["tempos_qpm"]) or entry["file"] != "tempo_change.mid"


def test_type0_is_split_by_channel(tune_paths):
    score = read_midi(tune_paths["type0.mid"]).score
    assert len(score.tracks) == 2
    assert {t.channel for t in score.tracks} == {0, 1}
    assert {t.program for t in score.tracks} == {0, 43}


def test_tempo_changes_and_channel_and_program_survive(tune_paths):
    score = read_midi(tune_paths["tempo_change.mid"]).score
    assert [round(t.qpm) for t in score.tempos] == [100, 140, 80]
    high = read_midi(tune_paths["high_register_channel.mid"]).score
    assert high.tracks[0].channel == 5 and high.tracks[0].program == 73
    assert max(n.pitch for n in high.tracks[0].notes) > 107


def test_bytes_and_path_give_the_same_score(tune_paths):
    path = tune_paths["six_eight_minor.mid"]
    assert read_midi(path).score == read_midi(path.read_bytes()).score


def test_write_then_read_keeps_notes_tempo_and_meter():
    score = Score(
        384,
        [
            Track("Melody", 73, False, 0, [Note(0, 384, 60, 90), Note(384, 576, 62, 80), Note(576, 1152, 64, 70)]),
            Track("Drums", 0, True, 9, [Note(0, 48, 36, 100)]),
        ],
        [TempoChange(0, 500_000), TempoChange(576, 400_000)],
        [TimeSignature(0, 3, 4), TimeSignature(1152, 6, 8)],
    )
    again = read_midi(write_midi(score)).score
    assert again.tempos == score.tempos
    assert again.time_signatures == score.time_signatures
    assert again.tracks[0].notes == score.tracks[0].notes
    assert again.tracks[0].program == 73
    assert again.tracks[1].is_drum and again.tracks[1].notes == score.tracks[1].notes


def test_repeated_notes_stay_separate():
    notes = [Note(0, 480, 60), Note(480, 960, 60), Note(960, 1440, 60)]
    again = read_midi(write_midi(Score(480, [Track("m", notes=notes)]))).score
    assert again.tracks[0].notes == notes


def test_smpte_timing_is_read_in_seconds():
    parsed = read_midi(mf.smpte_timing())
    assert parsed.score.ticks_per_beat == 1000  # 25 fps x 40 ticks per frame = 1000 ticks per second
    assert parsed.score.tempos == [TempoChange(0, 1_000_000)]
    assert any("SMPTE" in w for w in parsed.warnings)


def test_running_status_and_sysex_are_read():
    assert read_midi(mf.running_status(200)).score.n_notes == 200
    assert read_midi(mf.sysex_file()).score.n_notes > 0


BAD_INPUTS = {
    "empty": (mf.empty_bytes, "empty"),
    "random bytes": (mf.random_bytes, "not a MIDI file"),
    "truncated": (mf.truncated, "truncated"),
    "png renamed": (mf.png_renamed, "PNG"),
    "wav renamed": (mf.wav_renamed, "WAV"),
    "text renamed": (mf.text_renamed, "text"),
    "lying track count": (mf.lying_track_count, "tracks but only"),
    "drums only": (mf.drums_only, "drum"),
    "no notes": (mf.no_notes, "no notes"),
    "too many notes": (mf.too_many_notes, "note limit"),
    "too many tracks": (mf.too_many_tracks, "track limit"),
    "too large": (mf.too_large, "MB limit"),
    "zero ticks per beat": (mf.zero_ticks_per_beat, "0 ticks per beat"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line(kind):
    make, phrase = BAD_INPUTS[kind]
    data = make()
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        read_midi(data)
    assert time.perf_counter() - start < 3.0  # a guard against hangs, not a speed test (shared CI)
    message = str(info.value)
    assert phrase.lower() in message.lower()
    assert "\n" not in message and len(message) < 200
    assert ":" in message  # what is wrong: what to do


def test_oversized_path_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.mid"
    big.write_bytes(mf.too_large())
    with pytest.raises(InputError, match="MB limit"):
        read_midi(big)


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_midi(tmp_path / "nope.mid")


def test_long_file_is_cut_to_ten_minutes_with_a_warning():
    start = time.perf_counter()
    parsed = read_midi(mf.long_file(minutes=30))
    assert time.perf_counter() - start < 5
    assert parsed.cut
    assert parsed.score.duration_seconds <= 600.5
    assert any("first 10.0 minutes" in w for w in parsed.warnings)


def test_huge_delta_is_cut_not_crashed():
    parsed = read_midi(mf.huge_delta())
    assert parsed.score.duration_seconds <= 600.5


@pytest.mark.parametrize("kind", ["time_signature", "tempo", "text", "control"])
def test_events_after_the_music_are_dropped_with_a_warning(kind):
    """Issue 23: an event an hour after an 8 s tune made an hour of silence (every limit looked at notes)."""
    start = time.perf_counter()
    parsed = read_midi(mf.events_after_music(kind))
    assert time.perf_counter() - start < 5  # a wide margin: it takes about 0.01 s
    assert parsed.trimmed and any("60.0 minutes after its last note" in w for w in parsed.warnings), parsed.warnings
    score = parsed.score
    bar = 4 * score.ticks_per_beat
    assert all(e.tick <= score.end_tick + bar for e in [*score.tempos, *score.time_signatures])
    written = mido.MidiFile(file=io.BytesIO(write_midi(score)))
    assert written.length <= score.duration_seconds + 2.0  # the music plus at most its final bar


def test_a_far_meter_change_at_one_tick_per_beat_is_dropped_fast():
    start = time.perf_counter()
    parsed = read_midi(mf.far_meter_change())
    assert time.perf_counter() - start < 5  # a wide margin: it takes about 0.01 s
    assert parsed.trimmed and [(s.numerator, s.denominator) for s in parsed.score.time_signatures] == [(4, 4)]


def test_a_short_silence_after_the_music_is_kept_without_a_warning():
    data = mf.midi_from_tracks([[*mf._note_events([(0, 1, 60), (1, 1, 62)], 480), (3 * 480, mido.MetaMessage("text", text="end"))]])
    parsed = read_midi(data)
    assert not parsed.trimmed and not any("after its last note" in w for w in parsed.warnings)


def test_a_stack_of_note_ons_is_refused_in_linear_time():
    """Issue 23: note-offs ending the oldest of 175,000 stacked note-ons took 17-52 s (list.pop(0))."""
    data = mf.stacked_note_ons()
    start = time.perf_counter()
    with pytest.raises(InputError, match="note limit"):
        read_midi(data)
    assert time.perf_counter() - start < 5  # a wide margin: about 1 s on a loaded 2-core machine, 8-50 s before


def _named(*names: bytes) -> bytes:
    """A tune of two melodic tracks with raw track-name bytes (a melody and a low, slow part)."""
    tracks = []
    for i, name in enumerate(names):
        notes = [(b, 1, 72 + b % 5) for b in range(8)] if i == 0 else [(b, 4, 40) for b in range(0, 8, 4)]
        tracks.append([(0, mf._meta(0x03, name)), *mf._note_events(notes, 480, channel=i)])
    return mf.midi_from_tracks(tracks)


def test_track_names_are_read_as_utf8_then_latin1_one_clean_line():
    """Issue 23: names were read as latin-1 (emoji garbled) with their newlines and ESC codes."""
    forged = "Tune\n\x1b[31merror: your files are deleted\x1b[0m\r\u202eevil".encode()
    cases = {
        "Fl\u00f6te \U0001f3b5".encode(): "Fl\u00f6te \U0001f3b5",  # UTF-8, emoji included
        "Fl\u00f6te".encode("latin-1"): "Fl\u00f6te",  # an older file's latin-1
        forged: "Tune [31merror: your files are deleted[0m evil",
        ("\U0001f3b5" * 100).encode(): "\U0001f3b5" * 60,  # cut to 60 characters, never inside one
    }
    for raw, want in cases.items():
        names = [t.name for t in read_midi(_named(raw, b"Bass")).score.tracks]
        assert names[0] == want, names


def test_a_name_written_in_utf8_reads_back_whole():
    score = Score(480, [Track("Fl\u00f6te \U0001f3b5", 0, notes=[Note(0, 480, 60)])])
    assert read_midi(write_midi(score)).score.tracks[0].name == "Fl\u00f6te \U0001f3b5"
    long = Score(480, [Track("\u00e9" * 100, 0, notes=[Note(0, 480, 60)])])
    assert read_midi(write_midi(long)).score.tracks[0].name == "\u00e9" * 60  # 127 bytes: 63 whole characters


def test_limits_are_configurable():
    with pytest.raises(InputError, match="note limit"):
        read_midi(mf.melody([(i, 1, 60) for i in range(20)]), Limits(max_notes=10))


def test_written_file_is_type1_with_named_tracks_and_programs():
    score = Score(480, [Track("Melody", 0, notes=[Note(0, 480, 60)]), Track("Bass", 32, notes=[Note(0, 480, 36)])])
    midi = mido.MidiFile(file=__import__("io").BytesIO(write_midi(score, "t")))
    assert midi.type == 1 and len(midi.tracks) == 3
    names = [m.name for t in midi.tracks for m in t if m.type == "track_name"]
    assert names[1:] == ["Melody", "Bass"]
    programs = [m.program for t in midi.tracks for m in t if m.type == "program_change"]
    assert programs == [0, 32]


def test_a_gap_longer_than_a_delta_time_is_written_as_a_valid_file():
    """Issue 23: a meter, tempo or note past tick 0x0FFFFFFF after the event before it took a 5-byte
    delta, which the studio's reader (and FluidSynth) refuse as a damaged file. The writer bridges
    the gap with empty text events, every time exact."""
    far = 0x0FFFFFFF * 2 + 5
    score = Score(
        1,
        [Track("Melody", 0, False, 0, [Note(0, 1, 60, 90), Note(far, far + 1, 62, 90)])],
        [TempoChange(0, 500_000), TempoChange(far, 400_000)],
        [TimeSignature(0, 4, 4), TimeSignature(far, 3, 4)],
    )
    data = write_midi(score)
    read_midi(data)  # not refused as damaged (the far events are then cut as past the length limit)
    song = mido.MidiFile(file=io.BytesIO(data))
    for track in song.tracks:
        ticks, at = {}, 0
        for msg in track:
            at += msg.time
            assert msg.time <= 0x0FFFFFFF
            ticks.setdefault(msg.type, []).append(at)
        if "set_tempo" in ticks:
            assert ticks["set_tempo"] == [0, far] and ticks["time_signature"] == [0, far]
        if "note_on" in ticks:
            assert ticks["note_on"] == [0, far]


# --------------------------------------------------------------------------- issue 23, item 7


TUNE = [(i, 1, 60 + i % 8) for i in range(8)]


@pytest.mark.parametrize("tail", [b"garbage appended after the file\n", b"\x00" * 300, b"MTr", b"RIFF\x00\x00"])
def test_bytes_after_the_midi_data_are_ignored_with_a_warning(tail):
    """All the tracks the header announced are there: the bytes after them are not "truncated" music."""
    plain = read_midi(mf.melody(TUNE))
    parsed = read_midi(mf.melody(TUNE) + tail)
    assert [n.pitch for n in parsed.score.tracks[0].notes] == [n.pitch for n in plain.score.tracks[0].notes]
    assert f"{len(tail):,} extra bytes after the MIDI data were ignored" in parsed.warnings
    assert parsed.repaired and not plain.repaired
    assert not any("extra bytes" in w for w in read_midi(mf.melody(TUNE) + b"XTRA\x00\x00\x00\x02ok").warnings)  # a chunk


def test_a_tempo_of_zero_is_ignored_with_a_warning():
    parsed = read_midi(mf.melody(TUNE, tempo=0))
    assert [t.microseconds_per_beat for t in parsed.score.tempos] == [500_000]  # 120 bpm, not 60 million
    assert parsed.score.duration_seconds == pytest.approx(4.0)
    assert any(w.startswith("the file sets a tempo of 0") for w in parsed.warnings) and parsed.repaired


def test_the_cut_message_names_both_limits():
    """4,800 quarter notes at 600 bpm last 8 minutes: the 4,000-beat limit cuts them, and says so."""
    parsed = read_midi(mf.melody([(i, 1, 60 + i % 12) for i in range(4800)], ticks_per_beat=4, tempo=100_000))
    assert parsed.cut
    (cut,) = [w for w in parsed.warnings if "the studio uses its first" in w]
    assert cut == (
        "the music is 8.0 minutes (4,800 beats) long, over the studio's limit of 10 minutes or 4,000 beats: "
        "the studio uses its first 6.7 minutes (4,000 beats)"
    )


def test_rmid_files_are_read_without_their_info_chunk():
    """`.rmi` (RIFF RMID): the MIDI file in its `data` chunk; an INFO list after it is not extra bytes."""
    smf = mf.melody(TUNE)
    info = b"LIST" + struct.pack("<I", 14) + b"INFOINAM\x05\x00\x00\x00tune\x00\x00"
    body = b"RMID" + b"data" + struct.pack("<I", len(smf)) + smf + b"\x00" * (len(smf) % 2) + info
    parsed = read_midi(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert parsed.score.n_notes == 8 and not parsed.repaired
    assert not any("extra bytes" in w for w in parsed.warnings)


def test_markers_are_written_as_clean_lines_and_read_back():
    """A take's chords travel as marker meta events: one clean line each (no line break, escape code or
    bidirectional override from a typed name), at most 60 characters, read back in order by both readers."""
    from studio.core.score import Marker

    score = Score(480, [Track("Melody", 0, False, 0, [Note(0, 1920, 60)])])
    score.markers = [Marker(0, "chord: C"), Marker(960, "chord: G/B\n\x1b[31mred\u202e"), Marker(1440, "x" * 100), Marker(1500, " \n ")]
    data = write_midi(score)
    read = read_midi(data).score.markers
    assert [m.tick for m in read] == [0, 960, 1440]  # the empty one is not written
    assert read[0].text == "chord: C" and read[1].text == "chord: G/B [31mred" and read[2].text == "x" * 60
    assert [m.text for m in mido.MidiFile(file=io.BytesIO(data)).tracks[0] if m.type == "marker"] == [m.text for m in read]
    assert read_midi(write_midi(Score(480, [Track("Melody", 0, False, 0, [Note(0, 1920, 60)])]))).score.markers == []


def test_a_track_of_notes_is_written_as_the_event_by_event_encoder_writes_it():
    """`_note_track_chunk` (numpy) gives the bytes `_track_chunk` gives for the same events, one at a
    time: overlapping and zero-length notes, equal ticks (note-offs first, then as given), deltas of
    every width, velocities out of range (clipped), a gap past `MAX_DELTA` (bridged), and no notes."""
    import numpy as np

    from studio.core.midi import MAX_DELTA, _meta, _note_track_chunk, _text, _track_chunk

    def by_events(head, notes, channel):
        events = list(head)
        for n in notes:
            events.append((n.start, 1, bytes([0x90 | channel, n.pitch, max(1, min(127, n.velocity))])))
            events.append((n.end, 0, bytes([0x80 | channel, n.pitch, 0])))
        return _track_chunk(events)

    rng = np.random.default_rng(0)
    head = [(0, -2, _meta(0x03, _text("Alto \u00e9"))), (0, -1, bytes([0xC3, 52])), (0, -1, bytes([0xB3, 7, 90]))]
    for case in range(60):
        count = int(rng.integers(0, 300))
        scale = int(rng.choice([1, 10, 200, 20_000, 3_000_000]))
        starts = np.sort(rng.integers(0, scale * 50 + 1, count)) if case % 2 else rng.integers(0, scale * 50 + 1, count)
        notes = [
            Note(int(s), int(s + rng.integers(0, scale * 3 + 1)), int(rng.integers(0, 128)), int(rng.integers(-5, 140))) for s in starts
        ]
        channel = int(rng.integers(0, 16))
        mine = head[: int(rng.integers(0, 4))]
        assert _note_track_chunk(mine, notes, channel) == by_events(mine, notes, channel), case
    far = [Note(0, 5, 60, 90), Note(MAX_DELTA * 2 + 7, MAX_DELTA * 2 + 9, 62, 80)]
    assert _note_track_chunk(head, far, 0) == by_events(head, far, 0)

"""Build the real-tune MIDI fixtures in tests/data/tunes/ from the music21 corpus (public domain).

Run once; the .mid files and index.json it writes are committed. Deterministic: running it again
rewrites byte-identical files. Every tune comes out of music21's own MIDI export
(`midi.translate.streamToMidiFile`), so the files carry music21's real-world habits: a pickup is
written at tick 0 with no padding under a single time signature from tick 0 (the bar lines implied
by the file are shifted by the pickup), key-signature meta events copied from the notation (which
may not match the music), ticks_per_beat 10080, and lyrics/track names where the source has them.
Where a fixture needs another resolution, a type-0 layout or an extra drum track, the music21
export is post-processed with mido (exact tick rescaling, track merging, track insertion).

Usage (music21 needs a writable HOME for its settings):

    HOME=/tmp/m21home .venv/bin/python tests/data/make_fixtures.py          # build + verify
    HOME=/tmp/m21home .venv/bin/python tests/data/make_fixtures.py --check  # verify only
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
import warnings
from pathlib import Path

import mido
from music21 import chord, corpus, harmony, instrument, meter, midi, note, stream, tempo
from music21.corpus import chorales

warnings.filterwarnings("ignore")

OUT = Path(__file__).resolve().parent / "tunes"
MAX_BYTES = 50_000
M21_TPB = 10080  # music21's MIDI resolution (defaults.ticksPerQuarter)


# --------------------------------------------------------------------------- helpers


def load(path: str, number: int | None = None) -> stream.Score:
    """One score from the corpus (`number` picks a tune out of an ABC opus by its X: number)."""
    return corpus.parse(path, number=number) if number is not None else corpus.parse(path)


def chorale_title(bwv_path: str) -> str:
    """'bach/bwv227.1' -> 'Jesu, meine Freude' (from music21's Riemenschneider/BWV list)."""
    return chorales.ChoraleListRKBWV().byBWV[bwv_path.removeprefix("bach/bwv")]["title"]


def set_instrument(part: stream.Part, inst: instrument.Instrument, channel: int | None = None) -> None:
    """Replace every instrument in `part` by `inst` (optionally pinned to a 0-based MIDI channel)."""
    for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
        old.activeSite.remove(old)
    if channel is not None:
        inst.midiChannel = channel
    part.insert(0, inst)


def to_mido(score: stream.Stream) -> mido.MidiFile:
    """music21's own MIDI export, read back with mido."""
    return mido.MidiFile(file=io.BytesIO(midi.translate.streamToMidiFile(score).writestr()))


def rescale(mid: mido.MidiFile, tpb: int) -> mido.MidiFile:
    """The same file at another ticks_per_beat; every event must land on an exact tick."""
    out = mido.MidiFile(type=mid.type, ticks_per_beat=tpb)
    for track in mid.tracks:
        new = mido.MidiTrack()
        now_old = prev_new = 0
        for msg in track:
            now_old += msg.time
            num = now_old * tpb
            if num % mid.ticks_per_beat:
                raise ValueError(f"tick {now_old} does not rescale exactly to {tpb} tpb")
            tick = num // mid.ticks_per_beat
            new.append(msg.copy(time=tick - prev_new))
            prev_new = tick
        out.tracks.append(new)
    return out


def abs_events(track: mido.MidiTrack):
    """(absolute_tick, message) for every message of a track."""
    now = 0
    for msg in track:
        now += msg.time
        yield now, msg


def to_track(events: list[tuple[int, mido.Message]], name: str) -> mido.MidiTrack:
    """Absolute-tick events -> a MidiTrack (stable sort, so note-offs listed first stay first)."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    prev = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - prev))
        prev = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def as_played(score: stream.Score) -> stream.Score:
    """The score as music21 plays it (repeats expanded, the way streamToMidiFile does it)."""
    return score.expandRepeats() if score.recurse().getElementsByClass(stream.Measure) else score


def bar_ql(score: stream.Score) -> float:
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    return float(ts.barDuration.quarterLength) if ts else 4.0


def pickup_quarters(part: stream.Part, bar_len: float) -> float:
    """Length of the anacrusis: the first measure when it is shorter than a full bar, else 0."""
    first = part.getElementsByClass(stream.Measure).first()
    if first is None:
        return 0.0
    length = float(first.duration.quarterLength)
    return length if length < bar_len - 1e-9 else 0.0


def n_bars(part: stream.Part, pickup: float) -> int:
    """Measures as music21 counts them, not counting the pickup measure."""
    return len(part.getElementsByClass(stream.Measure)) - (1 if pickup else 0)


def pitched_count(part: stream.Stream) -> int:
    """Sounding notes after ties are merged (what the MIDI file holds): chord tones count one each."""
    flat = part.stripTies(matchByPitch=True).flatten().notes
    return sum(len(n.pitches) for n in flat if not isinstance(n, harmony.ChordSymbol))


def analyse_key(s: stream.Stream) -> str:
    k = s.analyze("key")
    return f"{k.tonic.name} {k.mode}"


def key_of_file(path: Path, exclude_channel: int | None = None) -> str:
    """Key as music21 analyses the written .mid (drum channel removed, if given)."""
    mid = mido.MidiFile(path)
    if exclude_channel is not None:
        mid = copy.deepcopy(mid)
        for tr in mid.tracks:
            tr[:] = [m for m in tr if getattr(m, "channel", None) != exclude_channel or m.type not in ("note_on", "note_off")]
    buf = io.BytesIO()
    mid.save(file=buf)
    mf = midi.MidiFile()
    mf.readstr(buf.getvalue())
    return analyse_key(midi.translate.midiFileToStream(mf))


# --------------------------------------------------------------------------- file facts


def track_summary(mid: mido.MidiFile) -> list[dict]:
    out = []
    for i, tr in enumerate(mid.tracks):
        names = [m.name for m in tr if m.type == "track_name"]
        ons = [m for m in tr if m.type == "note_on" and m.velocity > 0]
        out.append(
            {
                "index": i,
                "name": names[0] if names else None,
                "channels": sorted({m.channel for m in ons}),
                "programs": sorted({(m.channel, m.program) for m in tr if m.type == "program_change"}),
                "notes": len(ons),
                "pitch_range": [min(m.note for m in ons), max(m.note for m in ons)] if ons else None,
            }
        )
    return out


def meta_list(mid: mido.MidiFile, kind: str) -> list[tuple[int, mido.MetaMessage]]:
    return [(t, m) for tr in mid.tracks for t, m in abs_events(tr) if m.type == kind]


def tempo_map(mid: mido.MidiFile) -> list[list]:
    """[[tick, qpm], ...] with consecutive duplicates dropped."""
    out: list[list] = []
    for t, m in sorted(meta_list(mid, "set_tempo"), key=lambda e: e[0]):
        qpm = round(mido.tempo2bpm(m.tempo), 3)
        if not out or out[-1][1] != qpm:
            out.append([t, qpm])
    return out


def ts_map(mid: mido.MidiFile) -> list[list]:
    out: list[list] = []
    for t, m in sorted(meta_list(mid, "time_signature"), key=lambda e: e[0]):
        sig = f"{m.numerator}/{m.denominator}"
        if not out or out[-1][1] != sig:
            out.append([t, sig])
    return out


def melody_notes_in_file(mid: mido.MidiFile, track: int, channel: int) -> list[tuple[int, int]]:
    return [(t, m.note) for t, m in abs_events(mid.tracks[track]) if m.type == "note_on" and m.velocity > 0 and m.channel == channel]


# --------------------------------------------------------------------------- the fixtures


def fx_four_four():
    path, num = "essenFolksong/erk20", 82
    sc = load(path, num)
    return dict(
        file="four_four.mid",
        score=sc,
        source=f"{path} X:{num}",
        special="plain 4/4 folk tune, no pickup, single melody track (type 1: conductor + 1 track), music21 resolution 10080",
    )


def fx_three_four_pickup():
    path, num = "essenFolksong/erk20", 76
    sc = load(path, num)
    return dict(
        file="three_four_pickup.mid",
        score=sc,
        source=f"{path} X:{num}",
        special="3/4 with a one-quarter pickup written at tick 0 without padding; one 3/4 time signature from tick 0, "
        "so the file's implied bar lines are one beat early (true bar 1 starts at tick 1*tpb)",
    )


def fx_six_eight_minor():
    path, num = "miscFolk/northumbrianminstrelsyopus", 7
    sc = load(path, num)
    return dict(
        file="six_eight_minor.mid",
        score=sc,
        source=f"{path} X:{num}",
        special="6/8, minor, one-eighth pickup at tick 0 (no padding); time signature 6/8 from tick 0",
    )


def fx_type0():
    path = "bach/bwv145-a"
    full = load(path)
    sop, bass = copy.deepcopy(full.parts[0]), copy.deepcopy(full.parts[-1])
    set_instrument(sop, instrument.Piano(), channel=0)
    set_instrument(bass, instrument.Contrabass(), channel=1)
    sc = stream.Score([sop, bass])
    sc.insert(0, copy.deepcopy(full.metadata))
    mid = rescale(to_mido(sc), 96)
    merged = mido.MidiFile(type=0, ticks_per_beat=96)
    merged.tracks.append(mido.merge_tracks(mid.tracks))
    return dict(
        file="type0.mid",
        score=sc,
        mid=merged,
        source=path,
        title=chorale_title(path),
        melody_track=0,
        melody_channel=0,
        special="MIDI type 0 (one track), ticks_per_beat 96: chorale soprano (melody, ch 0, piano) + bass (ch 1, "
        "contrabass) interleaved; the melody must be split out by channel",
    )


def fx_tempo_change():
    path, num = "essenFolksong/erk20", 213
    sc = load(path, num)
    measures = sc.parts[0].getElementsByClass(stream.Measure)
    for m in list(sc.recurse().getElementsByClass(tempo.MetronomeMark)):
        m.activeSite.remove(m)
    for bar_no, qpm in ((1, 100), (6, 140), (11, 80)):
        measures[bar_no - 1].insert(0, tempo.MetronomeMark(number=qpm))
    mid = rescale(to_mido(sc), 480)
    return dict(
        file="tempo_change.mid",
        score=sc,
        mid=mid,
        source=f"{path} X:{num}",
        special="ticks_per_beat 480; tempo 100 qpm, then 140 at bar 6 (tick 9600) and 80 at bar 11 (tick 19200), "
        "written by music21 from MetronomeMarks",
    )


def fx_high_register():
    path, num = "essenFolksong/erk20", 165
    sc = load(path, num).transpose(34)  # 2 octaves + minor 7th up: C major -> B-flat major, MIDI 94-110
    set_instrument(sc.parts[0], instrument.Flute(), channel=5)
    mid = rescale(to_mido(sc), 384)
    return dict(
        file="high_register_channel.mid",
        score=sc,
        mid=mid,
        source=f"{path} X:{num} (transposed up 34 semitones)",
        melody_channel=5,
        special="melody transposed up 34 semitones (MIDI 94-110: most notes above 100, three above 107), "
        "on channel 5 (not 0) with program 73 (flute), ticks_per_beat 384",
    )


def _drum_track(total_quarters: float, tpb: int, beats_per_bar: int = 4) -> mido.MidiTrack:
    """A steady kit on channel 9: kick 36 on 1 and 3, snare 38 on 2 and 4, closed hat 42 on eighths,
    open triangle 81 on every beat (so the drums own the highest pitch in the file)."""
    events: list[tuple[int, mido.Message]] = []
    length = tpb // 4

    def hit(tick: int, pitch: int, vel: int) -> None:
        events.append((tick, mido.Message("note_on", channel=9, note=pitch, velocity=vel)))
        events.append((tick + length, mido.Message("note_off", channel=9, note=pitch, velocity=0)))

    for eighth in range(round(total_quarters * 2)):
        tick = eighth * tpb // 2
        hit(tick, 42, 70)
        if eighth % 2 == 0:
            beat = (eighth // 2) % beats_per_bar
            hit(tick, 81, 60)
            hit(tick, 36 if beat % 2 == 0 else 38, 100 if beat % 2 == 0 else 95)
    # note-offs before note-ons at equal ticks
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    return to_track(events, "Drums")


def fx_multitrack_drums():
    path = "bach/bwv227.1"
    sc = load(path)
    winds = (instrument.Flute(), instrument.Clarinet(), instrument.EnglishHorn(), instrument.Bassoon())
    for part, inst in zip(sc.parts, winds, strict=True):
        set_instrument(part, inst)
    mid = rescale(to_mido(sc), 960)
    total = float(as_played(sc).highestTime)
    drums = _drum_track(total, 960)
    mid.tracks.insert(1, drums)  # right after the conductor track: track order says nothing about the melody
    return dict(
        file="multitrack_drums.mid",
        score=sc,
        mid=mid,
        source=path,
        title=chorale_title(path),
        melody_track=2,
        melody_channel=0,
        drum_channel=9,
        special="6 tracks, ticks_per_beat 960: conductor, DRUMS FIRST (track 1, channel 9: kick 36, snare 38, hat 42, "
        "triangle 81 = the highest pitch in the file), then the chorale soprano (melody: flute 73, ch 0), "
        "alto (clarinet 71, ch 1), tenor (English horn 69, ch 2), bass (bassoon 70, ch 3)",
    )


def fx_four_four_pickup_minor():
    path = "bach/bwv158.4"
    full = load(path)
    sop = copy.deepcopy(full.parts[0])
    sc = stream.Score([sop])
    sc.insert(0, copy.deepcopy(full.metadata))
    return dict(
        file="four_four_pickup_minor.mid",
        score=sc,
        source=f"{path} (soprano part only)",
        title=chorale_title(path),
        special="4/4 minor chorale melody alone with a one-quarter pickup at tick 0 (no padding); fermatas are not in "
        "the MIDI; phrase-final bars are complete, the last bar is short (3 beats), as in the score",
    )


def fx_two_four():
    path, num = "miscFolk/northumbrianminstrelsyopus", 44
    sc = load(path, num)
    return dict(
        file="two_four.mid",
        score=sc,
        source=f"{path} X:{num}",
        special="2/4, minor, no pickup (chorus and verse, 16 bars)",
    )


def fx_cut_time():
    path, num = "miscFolk/americanfifeopus", 12
    sc = load(path, num)
    return dict(
        file="cut_time.mid",
        score=sc,
        source=f"{path} X:{num}",
        special="2/2 alla breve (ABC 'M:C|'): time signature meta 2/2, so a bar is 4 quarter notes but 2 beats",
    )


def _chord_part(melody: stream.Part) -> stream.Part:
    """A piano accompaniment realised from the lead sheet's chord symbols: root in the bass on beats 1
    and 3, the chord (close position, F3 and up) on beats 2 and 4."""
    symbols = [(float(cs.getOffsetInHierarchy(melody)), cs) for cs in melody.recurse().getElementsByClass(harmony.ChordSymbol)]
    symbols.sort(key=lambda e: e[0])
    part = stream.Part()
    set_instrument(part, instrument.Piano())
    total = float(melody.highestTime)
    beat = 0.0
    while beat < total - 1e-9:
        active = [cs for off, cs in symbols if off <= beat + 1e-9]
        if active:
            cs = active[-1]
            pcs = []
            for p in cs.pitches:
                if p.pitchClass not in pcs:
                    pcs.append(p.pitchClass)
            root = cs.root().pitchClass
            if round(beat) % 2 == 0:
                n = note.Note(36 + (root - 36) % 12, quarterLength=1.0)
                n.volume.velocity = 80
                part.insert(beat, n)
            else:
                midis, floor = [], 53
                for pc in [root] + [pc for pc in pcs if pc != root]:
                    m = floor + (pc - floor) % 12
                    midis.append(m)
                    floor = m + 1
                c = chord.Chord(midis, quarterLength=1.0)
                c.volume.velocity = 64
                part.insert(beat, c)
        beat += 1.0
    part.insert(0, copy.deepcopy(melody.recurse().getElementsByClass(meter.TimeSignature).first()))
    return part.makeMeasures()


def fx_lead_sheet():
    path = "leadSheet/fosterBrownHair"
    src = load(path)
    played = as_played(src)
    mel = copy.deepcopy(played.parts[0])
    chords = _chord_part(mel)
    for cs in list(mel.recurse().getElementsByClass(harmony.ChordSymbol)):
        cs.activeSite.remove(cs)
    set_instrument(mel, instrument.Piano())
    sc = stream.Score([mel, chords])
    sc.insert(0, copy.deepcopy(src.metadata))
    mid = rescale(to_mido(sc), 480)
    return dict(
        file="lead_sheet_chords.mid",
        score=sc,
        mid=mid,
        source=path,
        title="Jeanie with the Light Brown Hair",
        melody_track=1,
        melody_channel=0,
        key_part=played,
        special="lead sheet as 2 tracks, both piano (program 0) and BOTH ON CHANNEL 0 (music21 gives parts with equal "
        "programs one channel), ticks_per_beat 480: melody (track 1) + a chord track (track 2) realised from the 40 "
        "chord symbols, with ~3x more notes, chords and a bass line; only the track separates them; bar 1 is a full bar "
        "beginning with two beats of rest (a pickup notated as a whole bar); repeats expanded (65 bars); "
        "the file's key_signature meta says C although the music is in F",
    )


FIXTURES = [
    fx_four_four,
    fx_three_four_pickup,
    fx_six_eight_minor,
    fx_type0,
    fx_tempo_change,
    fx_high_register,
    fx_multitrack_drums,
    fx_four_four_pickup_minor,
    fx_two_four,
    fx_cut_time,
    fx_lead_sheet,
]

# What verify() insists on, per file: (midi type, ticks_per_beat, n tempo changes, time signatures).
EXPECT = {
    "four_four.mid": (1, 10080, 1, ["4/4"]),
    "three_four_pickup.mid": (1, 10080, 1, ["3/4"]),
    "six_eight_minor.mid": (1, 10080, 1, ["6/8"]),
    "type0.mid": (0, 96, 1, ["4/4"]),
    "tempo_change.mid": (1, 480, 3, ["4/4"]),
    "high_register_channel.mid": (1, 384, 1, ["4/4"]),
    "multitrack_drums.mid": (1, 960, 1, ["4/4"]),
    "four_four_pickup_minor.mid": (1, 10080, 1, ["4/4"]),
    "two_four.mid": (1, 10080, 1, ["2/4"]),
    "cut_time.mid": (1, 10080, 1, ["2/2"]),
    "lead_sheet_chords.mid": (1, 480, 1, ["4/4"]),
}


def build_one(spec: dict) -> dict:
    sc: stream.Score = spec["score"]
    mid: mido.MidiFile = spec.get("mid") or to_mido(sc)
    played = as_played(sc)
    mel_part = played.parts[0]
    bl = bar_ql(sc)
    pk = pickup_quarters(mel_part, bl)
    melody_track = spec.get("melody_track", 1)
    melody_channel = spec.get("melody_channel", 0)
    notes = melody_notes_in_file(mid, melody_track, melody_channel)
    expected = pitched_count(mel_part)
    if len(notes) != expected:
        raise AssertionError(f"{spec['file']}: melody has {len(notes)} notes in the file, {expected} in music21")
    ks = meta_list(mid, "key_signature")
    ts = sc.recurse().getElementsByClass(meter.TimeSignature).first()
    title = spec.get("title") or (sc.metadata.title if sc.metadata else "") or ""
    data = io.BytesIO()
    mid.save(file=data)
    raw = data.getvalue()
    if len(raw) > MAX_BYTES:
        raise AssertionError(f"{spec['file']}: {len(raw)} bytes")
    (OUT / spec["file"]).write_bytes(raw)
    tpb = mid.ticks_per_beat
    return {
        "file": spec["file"],
        "title": title,
        "source": spec["source"],
        "meter": ts.ratioString if ts else "4/4",
        "key": analyse_key(spec.get("key_part") or played),
        "n_bars": n_bars(mel_part, pk),
        "pickup_quarters": pk,
        "special": spec["special"],
        "melody_track": melody_track,
        "melody_channel": melody_channel,
        "melody_notes": len(notes),
        "melody_pitch_range": [min(p for _, p in notes), max(p for _, p in notes)],
        "midi_type": mid.type,
        "ticks_per_beat": tpb,
        "n_tracks": len(mid.tracks),
        "first_note_tick": min(t for t, _ in notes),
        "first_downbeat_tick": round(pk * tpb),
        "length_quarters": float(played.highestTime),
        "tempos_qpm": tempo_map(mid),
        "time_signatures": ts_map(mid),
        "key_signature_meta": ks[0][1].key if ks else None,
        "drum_channel": spec.get("drum_channel"),
        "tracks": track_summary(mid),
        "bytes": len(raw),
    }


# --------------------------------------------------------------------------- verification


def verify(index: list[dict]) -> None:
    """Re-open every file from disk and check it against the index; print a table."""
    rows = []
    for e in index:
        path = OUT / e["file"]
        mid = mido.MidiFile(path)
        mtype, tpb, n_tempi, sigs = EXPECT[e["file"]]
        assert path.stat().st_size < MAX_BYTES, e["file"]
        assert mid.type == mtype == e["midi_type"], (e["file"], mid.type)
        assert mid.ticks_per_beat == tpb == e["ticks_per_beat"], (e["file"], mid.ticks_per_beat)
        assert len(tempo_map(mid)) == n_tempi, (e["file"], tempo_map(mid))
        assert [s for _, s in ts_map(mid)] == sigs, (e["file"], ts_map(mid))
        assert all(t == 0 for t, _ in ts_map(mid)), "one time signature, from tick 0"
        notes = melody_notes_in_file(mid, e["melody_track"], e["melody_channel"])
        assert len(notes) == e["melody_notes"], e["file"]
        assert notes[0][0] == e["first_note_tick"], e["file"]
        if e["pickup_quarters"]:
            assert notes[0][0] == 0, "pickup written at tick 0, unpadded"
        chans = sorted({c for tr in e["tracks"] for c in tr["channels"]})
        file_chans = sorted({m.channel for tr in mid.tracks for m in tr if m.type == "note_on" and m.velocity})
        assert chans == file_chans, e["file"]
        drum = e.get("drum_channel")
        k_file = key_of_file(path, exclude_channel=drum)
        rows.append((e, mid, chans, k_file))

    # the special claims
    by = {e["file"]: (e, mid) for e, mid, _, _ in rows}
    e, mid = by["type0.mid"]
    assert len(mid.tracks) == 1 and sorted({m.channel for m in mid.tracks[0] if m.type == "note_on"}) == [0, 1]
    e, mid = by["tempo_change.mid"]
    assert [q for _, q in tempo_map(mid)] == [100, 140, 80] and [t for t, _ in tempo_map(mid)] == [0, 9600, 19200]
    e, mid = by["high_register_channel.mid"]
    ps = [p for _, p in melody_notes_in_file(mid, 1, 5)]
    assert sum(p > 100 for p in ps) >= 10 and 1 <= sum(p > 107 for p in ps) <= 12, ps
    assert (5, 73) in [tuple(x) for x in e["tracks"][1]["programs"]]
    e, mid = by["multitrack_drums.mid"]
    assert e["tracks"][1]["channels"] == [9] and e["tracks"][1]["pitch_range"][1] == 81
    assert max(t["pitch_range"][1] for t in e["tracks"][2:]) < 81
    e, mid = by["lead_sheet_chords.mid"]
    assert e["tracks"][2]["notes"] > 2 * e["tracks"][1]["notes"]

    print(
        f"{'file':28} {'type':>4} {'tpb':>5} {'trk':>3} {'meter':5} {'key (index)':12} {'key (.mid)':12} "
        f"{'bars':>4} {'pickup':>6} {'mel trk/ch':>10} {'notes':>5} {'tempi':16} {'chans':12} bytes"
    )
    for e, mid, chans, k_file in rows:
        tempi = "/".join(str(int(q)) for _, q in e["tempos_qpm"])
        print(
            f"{e['file']:28} {mid.type:>4} {mid.ticks_per_beat:>5} {len(mid.tracks):>3} {e['meter']:5} {e['key']:12} "
            f"{k_file:12} {e['n_bars']:>4} {e['pickup_quarters']:>6} {str(e['melody_track']) + '/' + str(e['melody_channel']):>10} "
            f"{e['melody_notes']:>5} {tempi:16} {','.join(map(str, chans)):12} {e['bytes']}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only verify the committed files against index.json")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.check:
        index = [build_one(f()) for f in FIXTURES]
        (OUT / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    index = json.loads((OUT / "index.json").read_text(encoding="utf-8"))
    verify(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())

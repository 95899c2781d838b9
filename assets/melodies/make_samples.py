"""Build the sample melodies in assets/melodies/ from the music21 corpus (all public domain).

Run once; the .mid files and index.json it writes are committed. Deterministic: running it again
rewrites byte-identical files. Each melody is one part exported by music21's own MIDI writer
(`midi.translate.streamToMidiFile`): a conductor track (tempo, time signature, key signature) and
one melody track on channel 0 with program 0 (piano), ticks_per_beat 10080 (music21's resolution).
A pickup is written the way music21 writes it: at tick 0, unpadded, under one time signature
from tick 0.

Usage (music21 needs a writable HOME for its settings):

    HOME=/tmp/m21home .venv/bin/python assets/melodies/make_samples.py
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import mido
from music21 import bar, corpus, instrument, meter, midi, stream, tempo
from music21.corpus import chorales

warnings.filterwarnings("ignore")

OUT = Path(__file__).resolve().parent

# (file stem, title, corpus path, X: number or None, tempo in quarter notes per minute, description, options)
SAMPLES: list[tuple[str, str, str, int | None, int, str, dict]] = [
    (
        "alle_meine_entchen",
        "Alle meine Entchen",
        "essenFolksong/kinder0",
        149,
        100,
        "German children's song (Essen Folksong Collection, children's songs)",
        {},
    ),
    (
        "o_du_lieber_augustin",
        "O du lieber Augustin",
        "essenFolksong/erk20",
        356,
        144,
        "Viennese folk song, a waltz (Essen Folksong Collection, Erk)",
        {},
    ),
    (
        "god_save_the_king",
        "God Save the King",
        "miscFolk/americanfifeopus",
        10,
        90,
        "British anthem, also sung as 'America (My Country, 'Tis of Thee)' (American fife tunes)",
        {},
    ),
    (
        "yankee_doodle",
        "Yankee Doodle",
        "miscFolk/americanfifeopus",
        30,
        110,
        "American Revolutionary-era tune, both strains repeated (American fife tunes)",
        {"fix_repeats": True},
    ),
    (
        "chester",
        "Chester",
        "miscFolk/americanfifeopus",
        7,
        100,
        "American Revolutionary-era tune, played twice (American fife tunes)",
        {},
    ),
    (
        "bobby_shaftoe",
        "Bobby Shaftoe",
        "miscFolk/northumbrianminstrelsyopus",
        39,
        100,
        "Northumbrian folk song (Northumbrian Minstrelsy, 1882)",
        {},
    ),
    (
        "the_water_of_tyne",
        "The Water of Tyne",
        "miscFolk/northumbrianminstrelsyopus",
        23,
        84,
        "Northumbrian folk song, a slow air in 6/8 with a pickup (Northumbrian Minstrelsy, 1882)",
        {},
    ),
    (
        "binnorie",
        "Binnorie; or, The Cruel Sister",
        "miscFolk/northumbrianminstrelsyopus",
        12,
        80,
        "Border ballad in a minor key with a pickup (Northumbrian Minstrelsy, 1882)",
        {},
    ),
    (
        "lay_the_bent_to_the_bonny_broom",
        "Lay the Bent to the Bonny Broom",
        "miscFolk/northumbrianminstrelsyopus",
        16,
        72,
        "Border ballad air, slow 3/4 in a minor key with a pickup (Northumbrian Minstrelsy, 1882)",
        {},
    ),
    (
        "tim_hogans_jig",
        "Tim Hogan's Jig",
        "oneills1850/1001-1031",
        1012,
        150,
        "Irish jig in three strains, the first repeated (O'Neill's Music of Ireland, 1903)",
        {},
    ),
    (
        "fishing_for_eels",
        "Fishing for Eels",
        "oneills1850/1001-1031",
        1006,
        150,
        "Irish double jig, both strains repeated (O'Neill's Music of Ireland, 1903)",
        {"fix_repeats": True},
    ),
    (
        "herzliebster_jesu",
        "Herzliebster Jesu, was hast du verbrochen",
        "bach/bwv244.3",
        None,
        72,
        "Lutheran chorale melody, soprano of J. S. Bach's setting in the St Matthew Passion (BWV 244.3)",
        {"soprano": True},
    ),
]


def fix_repeats(score: stream.Score) -> None:
    """Add the start-repeat implied after an end-repeat that a later end-repeat jumps back to.

    In ABC like `|A-strain :| B-strain :|` the second `:|` repeats the B strain only; music21's
    expandRepeats() instead goes back to the very beginning (48 bars instead of 32), so the
    implied `|:` is written in before expanding.
    """
    for part in score.parts:
        measures = list(part.getElementsByClass(stream.Measure))
        last_end, start_since = None, False
        for i, m in enumerate(measures):
            if isinstance(m.leftBarline, bar.Repeat) and m.leftBarline.direction == "start":
                start_since = True
            if isinstance(m.rightBarline, bar.Repeat) and m.rightBarline.direction == "end":
                if last_end is not None and not start_since:
                    measures[last_end + 1].leftBarline = bar.Repeat(direction="start")
                last_end, start_since = i, False


def final_note_key(s: stream.Stream) -> str:
    """music21's key analysis, preferring among its three best-ranked keys one whose tonic is the last note.

    Krumhansl-Schmuckler alone calls 'Alle meine Entchen' D minor and 'Yankee Doodle' G major (the
    right keys rank second); a tune ending off the tonic (Tim Hogan's Jig ends on G#) keeps the
    plain analysis.
    """
    k = s.analyze("key")
    last = s.flatten().notes[-1].pitches[-1].pitchClass
    for cand in [k, *k.alternateInterpretations][:3]:
        if cand.tonic.pitchClass == last:
            return f"{cand.tonic.name} {cand.mode}"
    return f"{k.tonic.name} {k.mode}"


def build(stem: str, title: str, path: str, number: int | None, qpm: int, description: str, opts: dict) -> dict:
    score = corpus.parse(path, number=number) if number is not None else corpus.parse(path)
    if opts.get("fix_repeats"):
        fix_repeats(score)
    part = score.parts[0]
    if opts.get("soprano") or len(score.parts) > 1:
        score = stream.Score([part])
    for mm in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
        mm.activeSite.remove(mm)
    for inst in list(score.recurse().getElementsByClass(instrument.Instrument)):
        inst.activeSite.remove(inst)
    first = part.getElementsByClass(stream.Measure).first()
    first.insert(0, tempo.MetronomeMark(number=qpm))
    part.insert(0, instrument.Piano())

    played = score.expandRepeats()
    mpart = played.parts[0]
    measures = list(mpart.getElementsByClass(stream.Measure))
    ts = played.recurse().getElementsByClass(meter.TimeSignature).first()
    bar_len = float(ts.barDuration.quarterLength)
    first_len = float(measures[0].duration.quarterLength)
    pickup = first_len if first_len < bar_len - 1e-9 else 0.0
    lens = [float(m.duration.quarterLength) for m in measures]
    if any(abs(x - bar_len) > 1e-9 for x in lens[1:-1]):
        raise AssertionError(f"{stem}: irregular inner bars {lens}")
    n_bars = len(measures) - (1 if pickup else 0)
    if not 8 <= n_bars <= 32:
        raise AssertionError(f"{stem}: {n_bars} bars")

    data = midi.translate.streamToMidiFile(score).writestr()
    mid = mido.MidiFile(file=io.BytesIO(data))
    if len(mid.tracks) != 2:
        raise AssertionError(f"{stem}: {len(mid.tracks)} tracks")
    ons = [m for m in mid.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert {m.channel for m in ons} == {0}, stem
    assert any(m.type == "time_signature" for m in mid.tracks[0]), stem
    tempos = [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"]
    # a repeat of bar 1 repeats its MetronomeMark: music21 then writes the same tempo again
    assert tempos and all(round(mido.tempo2bpm(t)) == qpm for t in tempos), (stem, tempos)
    (OUT / f"{stem}.mid").write_bytes(data)
    return {
        "file": f"{stem}.mid",
        "title": title,
        "source": path + (f" X:{number}" if number is not None else ""),
        "meter": ts.ratioString,
        "key": final_note_key(mpart),
        "bars": n_bars,
        "pickup_quarters": pickup,
        "tempo_qpm": qpm,
        "notes": len(ons),
        "pitch_range": [min(m.note for m in ons), max(m.note for m in ons)],
        "description": description,
    }


def main() -> int:
    index = [build(*s) for s in SAMPLES]
    assert chorales.ChoraleListRKBWV().byBWV["244.3"]["title"] == SAMPLES[-1][1]
    (OUT / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{'file':38} {'meter':5} {'key':10} {'bars':>4} {'pickup':>6} {'qpm':>4} {'notes':>5}  range")
    for e in index:
        print(
            f"{e['file']:38} {e['meter']:5} {e['key']:10} {e['bars']:>4} {e['pickup_quarters']:>6} {e['tempo_qpm']:>4} "
            f"{e['notes']:>5}  {e['pitch_range']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A session's takes: every accompaniment a person generated, kept to play back and compare.

A take is a plain dict (it lives in the page's per-session `gr.State`, which copies it), made and
read only through these functions. Files stay where `accompany` wrote them (the session's own
results folder); a take whose files were cleaned away says so instead of failing later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studio.core.chord_marks import ChordMark, moved_chord, moved_progression, progression_text
from studio.core.errors import InputError
from studio.core.theory import PITCH_NAMES

__all__ = ["MAX_TAKES", "add_take", "changed_take", "find_take", "take_chords_text", "take_from_result", "take_label"]

MAX_TAKES = 20  # the oldest takes are dropped beyond this (their files are cleaned with the session's folder)


def take_from_result(result: Any, number: int, melody_name: str, source: str | None = None, regenerated: str | None = None) -> dict:
    """A take from an `AccompanyResult`: model, seed, parameters, output files and headline metrics;
    `regenerated` says what it regenerated of which take ('bars 3-4 of take 2').

    ``"wav"`` is the full-quality WAV (the download); ``"listen"`` is what the page's player plays,
    the MP3 copy (`AccompanyResult.listen_path`), or the WAV when there is none; None without audio."""
    tracks = [t.name for t in result.score.tracks]
    return {
        "number": number,
        "melody": melody_name,
        "source": source,  # the melody file it was made from
        "model": result.model,
        "then": getattr(result, "then", None),  # the accompanist after a melody model, if any
        "seed": int(result.seed),
        "params": {k: v for k, v in result.params.items()},
        "midi": str(result.midi_path),
        "wav": str(result.wav_path) if result.wav_path else None,
        "listen": str(listen) if (listen := getattr(result, "listen_path", None) or result.wav_path) else None,  # what the player plays
        "png": str(result.png_path) if result.png_path else None,
        "tracks": tracks,
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "key": str(result.metrics.get("key", "")),
        "warnings": list(result.warnings),
        "bar_ticks": [int(t) for t in getattr(result, "bar_ticks", None) or []],  # the live roll's bars (a pickup the meter map lacks)
        "given_until_tick": getattr(result, "given_until_tick", None),  # where a model's added bars begin, if it added any
        "regenerated": regenerated,  # 'bars 3-4 of take 2' for a take made by regenerating part of another
        "given_chords": getattr(result, "given_chords", None),  # the chords the accompanist was given, as typed
        "chords": [[m.start, m.end, m.name, m.given] for m in getattr(result, "chords", None) or []],  # ticks, name, given
    }


def _moved_key(key: str, semitones: int) -> str:
    """'G major' moved by `semitones` ('A major' for 2); anything else unchanged."""
    tonic, _, mode = key.partition(" ")
    if tonic not in PITCH_NAMES or not mode:
        return key
    return f"{PITCH_NAMES[(PITCH_NAMES.index(tonic) + semitones) % 12]} {mode}"


def changed_take(take: Mapping[str, Any], number: int, files: Sequence[Any], semitones: int, tempo: float) -> dict:
    """The take `take` transposed by `semitones` and played `tempo` times as fast (`files`: the MIDI,
    WAV, PNG and listen paths `change_take` wrote): the same model, seed and parameters, the key moved,
    and what changed in ``"changes"`` (shown in its label)."""
    midi_path, wav, png, listen = files
    words = [f"transposed {semitones:+d}"] if semitones else []
    words += [f"tempo x{tempo:g}"] if tempo != 1 else []
    return {
        **dict(take),
        "number": number,
        "midi": str(midi_path),
        "wav": str(wav) if wav else None,
        "listen": str(listen or wav) if (listen or wav) else None,
        "png": str(png) if png else None,
        "key": _moved_key(str(take.get("key", "")), semitones),
        "changes": ", ".join(words) or "as it was",
        "changed_from": take.get("number"),  # the take it was made from (itself perhaps changed)
        "regenerated": None,  # the label names the take it came from, which may say how it was made
        "given_chords": moved_progression(take.get("given_chords"), semitones),
        "chords": [[start, end, moved_chord(name, semitones), given] for start, end, name, given in take.get("chords") or []],
    }


def take_label(take: Mapping[str, Any]) -> str:
    """How a take is listed: 'Take 3 · gan-chorale · seed 7 · Yankee Doodle'."""
    extras = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in take.get("params", {}).items())
    model = f"{take['model']} → {take['then']}" if take.get("then") else take["model"]
    label = f"Take {take['number']} · {model} · seed {take['seed']}"
    if extras:
        label += f" ({extras})"
    if take.get("changes"):
        label += f" · take {take.get('changed_from')} {take['changes']}"
    if take.get("regenerated"):
        label += f" · {take['regenerated']}"
    if take.get("given_chords"):
        label += f" · chords {take['given_chords']}"
    return f"{label} · {take['melody']}"


def add_take(takes: Sequence[Mapping[str, Any]] | None, take: Mapping[str, Any]) -> list[dict]:
    """The session's takes with `take` appended (at most MAX_TAKES, newest last)."""
    kept = [dict(t) for t in (takes or [])] + [dict(take)]
    return kept[-MAX_TAKES:]


def find_take(takes: Sequence[Mapping[str, Any]] | None, label: str | None) -> dict:
    """The take listed as `label`, with its files still on disk; InputError otherwise."""
    for take in takes or []:
        if take_label(take) == label:
            if not Path(take["midi"]).exists():
                raise InputError(f"{label} has expired (its files are kept an hour): generate it again with the same seed")
            return dict(take)
    raise InputError("that take is not in this session any more: generate a new one")


def take_chords_text(take: Mapping[str, Any], heard: bool = True) -> str:
    """The take's chords as a progression to edit and give back ("C G | Am F | ..."): the ones heard in
    it (`heard`), or the ones it was given; '' when it has none."""
    marks = [ChordMark(int(a), int(b), str(name), bool(given)) for a, b, name, given in take.get("chords") or []]
    chosen = [m for m in marks if m.given != heard]
    end = max((m.end for m in marks), default=0)
    return progression_text(chosen, take.get("bar_ticks") or [0], end)

"""Chord following (issue 25): do the accompanists that take chords sound them, and at what cost to
their part writing?

On the first N unseen folk tunes (`studio.training.tunes`, 100 by default), seed 0:

1. the chords: `rules` harmonizes the tune (seed 0, default parameters), and
   `studio.core.chords.analyse_chords` reads the chords of its accompaniment alone (without the
   melody; key from `studio.core.metrics.melody_key`), a chord per half bar in duple meters; those
   spans are given as they are;
2. every model whose card follows chords (`models.base.card_follows_chords`: picked by the
   declaration, so `rules` joins once it declares it) accompanies the tune with them
   (``params["chords"]``) and without, each with the part-writing guide off (``guide`` 0: the model
   alone) and at its default, where the card has a guide;
3. the figures: `studio.core.chords.chord_tone_share` (of the accompaniment's notes sounding on strong
   beats, the share in the given chord, pooled over the tunes: the same spans also score the takes
   written without chords, as the share a model reaches by chance and style), and the voice-leading
   figures of `studio.training.musicianship` (as `bench.musicianship` computes them: SATB ranges).

The first column is the source itself: `rules`' own accompaniment against the chords read from it
(how faithfully the analysis reads a plain harmonization).

Usage: python -m bench.chord_following [--tunes 100] [--models NAME,...] [--seed 0] [--params JSON] [--markdown] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from models.base import CHORDS_PARAM, card_follows_chords
from studio.core.chords import ChordSpan, analyse_chords, chord_tone_share
from studio.core.metrics import melody_key
from studio.core.roll import Grid, RollTrack
from studio.serving.process import apply_process_settings
from studio.serving.registry import ModelRegistry
from studio.training.musicianship import format_table as musicianship_table
from studio.training.musicianship import generated_rates, genre_ranges, record
from studio.training.tunes import corpus_tunes, tune_roll

SOURCE = "rules"
# The rows of the table: key -> label (the share first, then the musicianship issue's bounded figures).
ROWS = {
    "chord_tone_share": "strong-beat notes in the given chord",
    "strong_beat_notes": "  strong-beat notes counted",
    "parallel_fifths_octaves": "parallel 5ths/8ves (share of moves together)",
    "out_of_range": "notes outside the voice's range",
    "leaps_over_octave": "leaps over an octave (share of moves)",
    "crossings_per_chord": "voice crossings (share of chords)",
}


def chord_followers(registry: ModelRegistry) -> list[str]:
    """The models whose cards follow chords, by name."""
    return sorted(c.name for c in registry.cards() if card_follows_chords(c.to_json()) and c.disabled is None)


def source_chords(registry: ModelRegistry, melody: RollTrack, grid: Grid, seed: int) -> tuple[list[RollTrack], list[ChordSpan]]:
    """(the `rules` harmonization, the chords read from its accompaniment alone)."""
    tracks = registry.generate(SOURCE, melody, grid, {}, seed)
    accompaniment = [t for t in tracks if t.role == "accompaniment"]
    return accompaniment, analyse_chords(accompaniment, grid, melody_key(melody))


def variants(registry: ModelRegistry, name: str) -> dict[str, tuple[dict[str, Any], bool]]:
    """Column name -> (parameters, with chords?): with and without chords, alone (guide 0) and at the
    default where the card has a guide."""
    guided = any(p.name == "guide" for p in registry.card(name).params)
    out: dict[str, tuple[dict[str, Any], bool]] = {}
    for chords in (True, False):
        given = "chords" if chords else "no chords"
        if guided:
            out[f"{name}, alone, {given}"] = ({"guide": 0.0}, chords)
        out[f"{name}, {'default' if guided else 'as is'}, {given}"] = ({}, chords)
    return out


def _figures(shares: list[tuple[float, int]], records: list) -> dict[str, Any]:
    inside = sum(share * count for share, count in shares)
    counted = sum(count for _share, count in shares)
    rates = generated_rates(records)
    return {
        "chord_tone_share": round(inside / counted, 4) if counted else None,
        "strong_beat_notes": counted,
        **{k: rates.get(k) for k in ROWS if k in rates},
    }


def measure(models: list[str] | None, tunes: int, seed: int = 0, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"columns": {column: figures}, "tunes": [...], "models": [...], "seconds": {model: s}, ...};
    `params` go to every model that has them (under each column's own)."""
    registry = ModelRegistry()
    models = chord_followers(registry) if models is None else models
    reference = genre_ranges("chorale", [])
    melodies = [(t.title, *tune_roll(t.score)) for t in corpus_tunes(tunes)]
    chords = []
    source_shares, source_records = [], []
    for _title, melody, grid in melodies:
        accompaniment, spans = source_chords(registry, melody, grid, seed)
        chords.append(spans)
        source_shares.append(chord_tone_share(accompaniment, grid, spans))
        source_records.append(record(melody, accompaniment, reference))
    columns: dict[str, Any] = {f"{SOURCE} (the source)": _figures(source_shares, source_records)}
    seconds: dict[str, float] = {}
    for name in models:
        t0 = time.perf_counter()
        model = registry.get(name)  # called directly: the chords are not one of the card's parameters
        known = {p.name for p in registry.card(name).params}
        shared = {k: v for k, v in (params or {}).items() if k in known}
        for column, (asked, with_chords) in variants(registry, name).items():
            shares, records = [], []
            for (_title, melody, grid), spans in zip(melodies, chords, strict=True):
                given = registry.card(name).resolve_params({**shared, **asked})
                if with_chords:
                    given[CHORDS_PARAM] = spans
                tracks = [t for t in model.generate(melody, grid, given, seed) if t.role == "accompaniment"]
                shares.append(chord_tone_share(tracks, grid, spans))
                records.append(record(melody, tracks, reference))
            columns[column] = _figures(shares, records)
        seconds[name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
    return {
        "tunes": [title for title, _m, _g in melodies],
        "seed": seed,
        "params": params or {},
        "models": models,
        "chords": "analyse_chords over the rules harmonization's accompaniment (seed 0), key from the melody",
        "columns": columns,
        "seconds": seconds,
    }


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "-"
    return str(value) if key == "strong_beat_notes" else f"{value:.3f}"


def format_table(columns: dict[str, dict[str, Any]], markdown: bool = False) -> str:
    """`ROWS` (rows) by `columns`, laid out as the musicianship tables are."""
    return musicianship_table(columns, markdown, ROWS, _cell)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunes", type=int, default=100, help="unseen folk tunes (the first N)")
    parser.add_argument("--models", default="", help="comma-separated; default: every model whose card follows chords")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default="{}", help="JSON parameters for every model that has them, e.g. '{\"iterations\": 16}'")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    apply_process_settings()  # as the server and the CLI run models: torch's threads sleep when idle (7x faster here at load 7)
    result = measure([m for m in args.models.split(",") if m] or None, args.tunes, args.seed, json.loads(args.params))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{len(result['tunes'])} unseen folk tunes, seed {result['seed']}, params {result['params']}; chords: {result['chords']}")
    print(format_table(result["columns"], args.markdown))


if __name__ == "__main__":
    main()

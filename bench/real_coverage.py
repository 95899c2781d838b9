"""How often each genre's real music meets issue 5's coverage line for unseen tunes: at least two
accompaniment voices sounding in >= 95% of the bars. Counted in 16-bar windows of every piece of the
genre where the melody sounds in every bar (as a folk tune's does), in the music's own bars and with
the same music cut into 4/4, 3/4 and 2/4 bars (folk tunes' bars are shorter than a renaissance
breve, and a rest empties a short bar more easily), with the voices' empty-bar rate (EB) in those
windows and in the others (where the melody rests for a bar or more). A model that rests as its
genre does cannot cover tunes more often than this.

Usage:
    python -m bench.real_coverage [--genres chorale,renaissance,quartet] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BAR_LENGTHS = {"4/4": 16, "3/4": 12, "2/4": 8}  # steps of a 16th note


@dataclass(frozen=True)
class CoverageRule:
    """Issue 5's line: `voices` accompaniment voices each sounding in >= `share` of a tune's bars."""

    window_bars: int = 16
    voices: int = 2
    share: float = 0.95


def window_coverage(
    melody: np.ndarray, voices: np.ndarray, bar_length: int, rule: CoverageRule = CoverageRule()
) -> list[tuple[bool, bool, float]]:
    """For each whole window of `rule.window_bars` bars of `bar_length` steps: (whether the melody
    (sounding per step, (T,) bool) sounds in every bar of it, whether at least `rule.voices` of
    `voices` ((V, T) bool) sound in >= `rule.share` of its bars, the voices' empty-bar rate there)."""
    n_bars = len(melody) // bar_length
    if n_bars < rule.window_bars:
        return []
    cut = n_bars * bar_length
    melody_bars = melody[:cut].reshape(n_bars, bar_length).any(1)
    voice_bars = voices[:, :cut].reshape(len(voices), n_bars, bar_length).any(2)  # (V, bars)
    out = []
    for start in range(0, n_bars - rule.window_bars + 1, rule.window_bars):
        window = slice(start, start + rule.window_bars)
        sounding = voice_bars[:, window].mean(1)
        covered = int((sounding >= rule.share).sum()) >= rule.voices
        out.append((bool(melody_bars[window].all()), covered, float(1.0 - voice_bars[:, window].mean())))
    return out


def genre_coverage(genre: str) -> dict[str, Any]:
    """The genre's windows, in its own bars (each piece's longest bar) and cut into 4/4, 3/4, 2/4."""
    from studio.training.data import DatasetConfig, build_dataset

    dataset = build_dataset(DatasetConfig(genre), progress=False)
    # (melody sounding per step, voices sounding per step, the piece's own bar length), once per piece
    sounding = [
        (p.tracks[0].velocity.any(1), np.stack([t.velocity.any(1) for t in p.tracks[1:]]), max(b.length for b in p.grid.bars))
        for p in dataset.pieces
    ]
    report: dict[str, Any] = {"genre": genre, "pieces": len(sounding)}
    for label, length in ({"own bars": None} | BAR_LENGTHS).items():
        rows = []
        for melody, voices, own in sounding:
            rows += window_coverage(melody, voices, length or own)
        full = [(ok, eb) for whole, ok, eb in rows if whole]
        rest = [eb for whole, _, eb in rows if not whole]
        report[label] = {
            "windows": len(full),  # the melody in every bar
            "covered": round(float(np.mean([ok for ok, _ in full])), 3) if full else None,
            "empty_bar_rate": round(float(np.mean([eb for _, eb in full])), 3) if full else None,
            "empty_bar_rate_elsewhere": round(float(np.mean(rest)), 3) if rest else None,  # windows where the melody rests a bar
        }
    return report


def format_coverage(reports: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| genre | bars | 16-bar windows (melody in every bar) | two voices over 95% of bars | EB there | EB in the other windows |",
        "|---|---|---|---|---|---|",
    ]
    for report in reports:
        for label in ("own bars", *BAR_LENGTHS):
            row = report[label]
            covered = "-" if row["covered"] is None else f"{row['covered']:.0%}"
            eb, other = (("-" if row[k] is None else f"{row[k]:.3f}") for k in ("empty_bar_rate", "empty_bar_rate_elsewhere"))
            lines.append(f"| {report['genre']} ({report['pieces']} pieces) | {label} | {row['windows']} | {covered} | {eb} | {other} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.real_coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--genres", default="chorale,renaissance,quartet")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from studio.training.data import CORPUS_GENRES

    genres = [g for g in args.genres.split(",") if g]
    unknown = [g for g in genres if g not in CORPUS_GENRES]
    if unknown:
        print(f"error: unknown genre {unknown[0]}: choose from {', '.join(CORPUS_GENRES)}", file=sys.stderr)
        return 2
    reports = [genre_coverage(g) for g in genres]
    print(json.dumps(reports, indent=2) if args.json else format_coverage(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())

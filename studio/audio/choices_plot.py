"""Pictures of how the Transformer chose its notes (what `Continuer.explain` returns):

- the choices: for each of the first new notes, the pitches it could draw and their probabilities
  (after creative risk and top-k / nucleus), the drawn one marked;
- the attention: for each new note, where the network's last layer looked among the earlier notes
  (each row sums to 1 over the notes), with the bar lines of the tune.

Each call builds its own Agg `Figure` (no pyplot state: thread-safe, as `studio.audio.plot`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from studio.core.files import atomic_file
from studio.core.roll import MODEL_PITCH_LOW
from studio.core.theory import pitch_name

__all__ = ["attention_png", "choices_png"]

CHOSEN = "#D55E00"
OTHER = "#0072B2"


def choices_png(choices: Sequence[tuple[np.ndarray, int]], out_png: str | os.PathLike, title: str, notes: int = 8, top: int = 6) -> Path:
    """Bars of the `top` likeliest pitches at each of the first `notes` pitch choices."""
    shown = list(choices)[:notes]
    cols = 4
    rows = max(1, -(-len(shown) // cols))
    fig = Figure(figsize=(10, 2.3 * rows + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, (probs, chosen) in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        order = np.argsort(probs)[::-1][:top]
        order = [j for j in order if probs[j] > 0] or [int(np.argmax(probs))]
        pitches = [MODEL_PITCH_LOW + int(j) for j in order]
        values = [float(probs[j]) for j in order]
        colors = [CHOSEN if p == chosen else OTHER for p in pitches]
        ax.barh(range(len(order))[::-1], values, color=colors)
        ax.set_yticks(range(len(order))[::-1], [pitch_name(p) for p in pitches], fontsize=8)
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=7)
        kept = int((probs > 0).sum())
        ax.set_title(f"note {i + 1}: drew {pitch_name(chosen)} ({kept} allowed)", fontsize=9)
    fig.suptitle(f"{title}: the likeliest pitches for each new note, and the one drawn (orange)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def attention_png(
    attention: np.ndarray, notes: Sequence[tuple[int, int, bool]], out_png: str | os.PathLike, title: str, rows: int = 24
) -> Path:
    """A heat map: new notes (rows) against every earlier note (columns), shares of attention."""
    matrix = np.asarray(attention, float)[:rows]
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    first_new = next((j for j, n in enumerate(notes) if n[2]), len(notes))
    for k in range(len(shares)):  # a note cannot look at itself or later: drawn blank
        shares[k, first_new + k :] = np.nan
    fig = Figure(figsize=(10, 1.2 + 0.22 * max(4, len(shares))), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="#eeeeee")
    top = float(np.nanmax(shares)) if np.isfinite(shares).any() else 1.0
    ax.imshow(shares, aspect="auto", cmap=cmap, interpolation="nearest", vmin=0, vmax=max(0.05, top))
    bars = [n[0] for n in notes]
    for j in range(1, len(bars)):
        if bars[j] != bars[j - 1]:
            ax.axvline(j - 0.5, color="#999999", linewidth=0.6)
    ax.axvline(first_new - 0.5, color=CHOSEN, linewidth=1.5)
    new = [n for n in notes if n[2]][: len(shares)]
    ax.set_yticks(range(len(new)), [f"{pitch_name(n[1])} (bar {n[0]})" for n in new], fontsize=7)
    step = max(1, len(notes) // 24)
    ax.set_xticks(range(0, len(notes), step), [pitch_name(notes[j][1]) for j in range(0, len(notes), step)], fontsize=7, rotation=90)
    ax.set_xlabel("earlier notes, in order (grey lines: bar lines; orange line: where the new bars begin)", fontsize=8)
    ax.set_title(f"{title}: where each new note's attention went (last layer, heads averaged)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def _save(fig: Figure, out_png: str | os.PathLike) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as f:  # a failed write leaves no half picture
        fig.savefig(f, format="png", dpi=fig.dpi)
    return out

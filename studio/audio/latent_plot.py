"""A picture of what a VAE did in its latent space (what `Varier.latent_map` returns): every window
of the melody is a point (the mean of its code), and the variation decoded a point moved away from
it (how far x the code's own spread x noise). The 64 numbers of a code are shown on the two
directions along which the melody's own points differ most (principal components), so points
close in the picture are windows the VAE finds alike.

Each call builds its own Agg `Figure` (no pyplot state: thread-safe, as `studio.audio.plot`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from studio.core.files import atomic_file

__all__ = ["latent_png", "principal_axes"]

MEAN = "#0072B2"
MOVED = "#D55E00"


def principal_axes(points: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The centre (Z,) and the `k` directions (k, Z) along which `points` (N, Z) spread most; fewer
    points than directions give zero rows."""
    centre = points.mean(axis=0)
    axes = np.zeros((k, points.shape[1]))
    if len(points) > 1:
        _u, _s, vt = np.linalg.svd(points - centre, full_matrices=False)
        axes[: min(k, len(vt))] = vt[:k]
    elif points.shape[1] >= k:
        axes[np.arange(k), np.arange(k)] = 1.0
    return centre, axes


def latent_png(mu: np.ndarray, z: np.ndarray, out_png: str | os.PathLike, title: str, labels: list[str] | None = None) -> Path:
    """Each window's code mean `mu` (N, Z) as a numbered dot, an arrow to the code `z` (N, Z) the
    variation decoded, on the melody's two principal directions."""
    centre, axes = principal_axes(np.asarray(mu, float))
    a, b = (np.asarray(mu, float) - centre) @ axes.T, (np.asarray(z, float) - centre) @ axes.T
    fig = Figure(figsize=(7, 5.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(a[:, 0], a[:, 1], color="#bbbbbb", linewidth=0.8, zorder=1)  # the melody's windows in order
    ax.scatter(a[:, 0], a[:, 1], s=36, color=MEAN, zorder=3, label="your melody's windows (the mean of each code)")
    ax.scatter(b[:, 0], b[:, 1], s=24, color=MOVED, marker="s", zorder=3, label="the points the variation played")
    names = labels or [str(i + 1) for i in range(len(a))]
    places: list[tuple[np.ndarray, list[str]]] = []  # windows the VAE reads alike (a repeat) share one label
    scale = max(1e-9, float(np.abs(a).max()) if len(a) else 1.0)
    for p, q, name in zip(a, b, names, strict=True):
        if np.linalg.norm(q - p) > 1e-9:
            ax.annotate("", xy=q, xytext=p, arrowprops={"arrowstyle": "->", "color": MOVED, "lw": 1}, zorder=2)
        same = next((names_here for where, names_here in places if np.linalg.norm(where - p) < 1e-3 * scale), None)
        if same is not None:
            same.append(name)
        else:
            places.append((p, [name]))
    for where, names_here in places:
        ax.annotate(", ".join(names_here), where, textcoords="offset points", xytext=(4, 4), fontsize=7, color="#333333")
    ax.set_xlabel("the direction in which your melody's windows differ most", fontsize=8)
    ax.set_ylabel("the next direction", fontsize=8)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as f:  # a failed write leaves no half picture
        fig.savefig(f, format="png", dpi=fig.dpi)
    return out

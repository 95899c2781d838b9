"""How a model learned, as pictures: its loss curves and the sample rolls saved along its training.

`studio.training.train` writes a history beside the checkpoints (`models/checkpoints/training/<name>.json`:
every step's losses and, at several points, the model's accompaniment of two held-out melodies).
This module draws them for the UI, so a class can watch a GAN's generator and critic compete and
its accompaniments turn from noise into music. Pictures are drawn once per process and cached.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from studio.audio.plot import PlotConfig, plot_score
from studio.core.config import REPO_ROOT
from studio.core.files import atomic_file
from studio.core.score import Note, Score, TimeSignature, Track

__all__ = ["LOSS_LABELS", "history", "loss_curves_png", "snapshot_pngs"]

TRAINING_DIR = REPO_ROOT / "models" / "checkpoints" / "training"
LOSS_LABELS = {
    "generator": "generator loss (minus the critic's score of its music)",
    "critic": "critic loss",
    "wasserstein": "Wasserstein estimate (critic: real minus generated; falls as the generator improves)",
    "reconstruction": "cross-entropy of the real voices (nats per step)",
    "dissonance_gap": "dissonance against the melody, generated minus real (the consonance match pushes it to 0)",
    "empty_bar_gap": "share of silent bars, generated minus real (the texture match pushes it to 0)",
    "pitch_class_gap": "pitch classes per bar, generated minus real (the texture match pushes it to 0)",
    "nll": "negative log-likelihood of the training music (nats per guess; lower is better)",
    "recon": "reconstruction: cross-entropy of the melody's 16ths from their code (nats per step)",
    "kl": "KL divergence of the codes from the bell curve (nats per two-bar window)",
    "validation": "distance from real music on validation pieces (1 = the acceptance bound; lower is better)",
    "ce": "cross-entropy of the clean voices guessed through the noise (nats per step)",
    "onset": "where notes start, guessed through the noise (binary cross-entropy)",
    "accuracy": "share of the melody's 16ths given back from its code",
}
_NOT_LOSSES = frozenset({"step", "seconds"})
VALIDATION_NLL_LABEL = "negative log-likelihood per event of validation tunes (lower is better)"
VALIDATION_ERROR_LABEL = "share of validation tunes' 16ths not given back from their code (lower is better)"
_lock = threading.Lock()
_cache_dir: Path | None = None


def history(name: str, folder: Path = TRAINING_DIR) -> dict[str, Any] | None:
    """The training history of model `name`, or None when it has none (e.g. the rules baseline)."""
    path = folder / f"{Path(name).name}.json"  # a bare name only: never a path from the user
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _out_dir(name: str, folder: Path) -> Path:
    """This process's picture folder for one history file (a new one when the file changes)."""
    global _cache_dir
    with _lock:
        if _cache_dir is None:
            _cache_dir = Path(tempfile.mkdtemp(prefix="studio-learning-"))
    source = folder / f"{Path(name).name}.json"
    stamp = f"{source.resolve()}:{source.stat().st_mtime_ns}"
    out = _cache_dir / f"{Path(name).name}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    out.mkdir(exist_ok=True)
    return out


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def loss_curves_png(name: str, folder: Path = TRAINING_DIR) -> Path | None:
    """A PNG of the model's losses over training steps (moving average), or None without a history."""
    data = history(name, folder)
    if not data or not data.get("losses"):
        return None
    out = _out_dir(name, folder) / "losses.png"
    if out.exists():
        return out
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib loads on first use (start-up speed)
    from matplotlib.figure import Figure  # with the line above

    rows = data["losses"]
    logged = {k for r in rows for k, v in r.items() if k not in _NOT_LOSSES and isinstance(v, (int, float))}
    keys = [k for k in LOSS_LABELS if k in logged] + sorted(logged - set(LOSS_LABELS))  # a new loss is drawn under its own name
    alone = ("reconstruction", "dissonance_gap", "empty_bar_gap", "pitch_class_gap", "kl", "onset", "accuracy")  # each on its own scale
    adversarial = [k for k in keys if k not in alone]
    panels = [p for p in (adversarial, *([k] for k in alone if k in keys)) if p]
    validation = data.get("validation") or []
    if validation:
        panels.append(["validation"])
    if not panels:
        return None
    fig = Figure(figsize=(10, 2.6 * len(panels)), dpi=100)
    FigureCanvasAgg(fig)
    window = max(1, len(rows) // 200)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        if panel == ["validation"]:
            steps = [r["step"] for r in validation]
            scores = [r["score"] for r in validation]
            likelihood = "perplexity" in validation[0]  # a melody model scores itself by NLL, not by distance from bounds
            reconstruction = "error_rate" in validation[0]  # the VAE: by what it fails to give back
            label = VALIDATION_NLL_LABEL if likelihood else VALIDATION_ERROR_LABEL if reconstruction else LOSS_LABELS["validation"]
            ax.plot(steps, scores, marker="o", markersize=3, linewidth=1.2, color="#0072B2", label=label)
            best = min(range(len(scores)), key=scores.__getitem__)
            ax.plot(
                [steps[best]],
                [scores[best]],
                marker="*",
                markersize=14,
                color="#D55E00",
                linestyle="none",
                label=f"kept: step {steps[best]}",
            )
            if not (likelihood or reconstruction):
                ax.axhline(1.0, color="#999999", linestyle=":", linewidth=1)
            ax.legend(fontsize=8, loc="upper right")
            ax.set_xlabel("training step")
            ax.grid(alpha=0.3)
            continue
        for key in panel:
            pts = [(r["step"], r[key]) for r in rows if key in r]
            steps, values = np.array([p[0] for p in pts]), np.array([p[1] for p in pts], float)
            smooth = _smooth(values, window)
            ax.plot(steps[len(steps) - len(smooth) :], smooth, label=LOSS_LABELS.get(key, key), linewidth=1.4)
        first_adversarial = next((r["step"] for r in rows if "critic" in r), None)
        if first_adversarial and first_adversarial > rows[0]["step"]:
            ax.axvline(first_adversarial, color="#999999", linestyle="--", linewidth=1)
            ax.text(first_adversarial, ax.get_ylim()[0], " the critic joins", va="bottom", fontsize=8, color="#555555")
        ax.axhline(0, color="#cccccc", linewidth=0.8)
        ax.legend(fontsize=8, loc="upper right")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"How {name} learned", fontsize=11)
    fig.tight_layout()
    with atomic_file(out) as f:  # a failed write leaves no half picture that the `exists()` above would take as drawn
        fig.savefig(f, format="png")
    return out


def snapshot_pngs(name: str, piece: int = 0, folder: Path = TRAINING_DIR) -> list[tuple[Path, str]]:
    """One piano-roll PNG per saved snapshot of held-out melody `piece`, with a caption each:
    the model's accompaniment after 0, a few hundred, ... steps of training."""
    data = history(name, folder)
    if not data:
        return []
    out = []
    for snap in data.get("samples", []):
        if piece >= len(snap["pieces"]):
            continue
        entry = snap["pieces"][piece]
        minutes = snap["seconds"] / 60
        caption = f"step {snap['step']}, {minutes:.1f} min"
        png = _out_dir(name, folder) / f"piece{piece}-step{snap['step']:07d}.png"
        if not png.exists():
            tracks = [Track(t["name"], t["program"], notes=[Note(s, e, p, 80) for s, e, p in t["notes"]]) for t in entry["tracks"]]
            score = Score(4, tracks, time_signatures=[TimeSignature(0, 4, 4)])  # 4 ticks per quarter: ticks are steps
            bars = [int(b) for b in entry["bars"]]
            plot_score(score, png, bars, 0, caption, PlotConfig(width=9.0, height=3.6))
        out.append((png, caption))
    return out

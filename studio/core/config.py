"""Configuration of the studio as dataclasses: input limits and service settings.

Defaults are the limits the README states; a deployment can override them (e.g. `Limits(max_seconds=300)`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import InputError

__all__ = ["REPO_ROOT", "Limits", "ServiceConfig", "cache_dir"]

REPO_ROOT = Path(__file__).resolve().parents[2]  # where models/, assets/ and soundfonts/ live


def cache_dir(name: str) -> Path:
    """The studio's cache folder `name` (datasets, training runs, note energies): under ``$STUDIO_CACHE``
    when it is set, else under ``~/.cache/music-studio``. Not created here."""
    root = os.environ.get("STUDIO_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "music-studio") / name


@dataclass(frozen=True)
class Limits:
    """What the studio accepts from a user; over a limit it refuses or cuts, with a clear message."""

    max_upload_bytes: int = 2 * 1024 * 1024  # checked before parsing
    max_notes: int = 20_000  # all tracks together
    max_tracks: int = 64  # MIDI track chunks in the file
    max_seconds: float = 600.0  # longer music is cut to its first 10 minutes, with a warning
    max_beats: int = 4_000  # also cut past this many quarter notes (guards absurd tempo maps)


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of the generation service shared by the CLI, the UI and the API."""

    limits: Limits = Limits()
    generation_timeout_s: float = 60.0  # a model slower than this is stopped with a clear message
    max_seed: int = 2**31 - 1
    output_dir: Path | None = None  # where results go; default: a fresh temp dir per request

    @staticmethod
    def from_env() -> ServiceConfig:
        """Defaults, with `STUDIO_TIMEOUT_S` (seconds a model may take) read from the environment when set."""
        raw = os.environ.get("STUDIO_TIMEOUT_S", "").strip() or "60"
        try:
            timeout = float(raw)
        except ValueError:
            timeout = math.nan
        if not (math.isfinite(timeout) and timeout > 0):
            raise InputError(f"STUDIO_TIMEOUT_S must be a number of seconds above 0, got {raw!r}: fix or unset it")
        return ServiceConfig(generation_timeout_s=timeout)

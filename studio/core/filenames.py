"""File names made from user text: a melody's or a take's name becomes a stem of safe characters
only, so that no user text becomes a path unchecked (no `/`, `..`, NUL or shell characters)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["safe_stem"]


def safe_stem(name: str, default: str = "melody", max_length: int = 40) -> str:
    """The stem of `name` with every run of characters outside ``[A-Za-z0-9_-]`` turned into one
    ``-``, trimmed of ``-`` at both ends and cut to `max_length`; `default` when nothing is left."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(str(name)).stem).strip("-")[:max_length]
    return stem or default

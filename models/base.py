"""The model-family contract: what every family in `models/` shares.

A family is one file, `models/<family>.py`. What it declares and what the studio calls is written
here once, so no family imports the training loop or another family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["coerce_setting", "configured"]


def coerce_setting(default: Any, value: Any) -> Any:
    """A `--set key=value` string as the type of the setting's default (any family's config)."""
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, tuple):
        kind = type(default[0]) if default else str
        return tuple(kind(v) for v in value.split(","))
    return value


def configured(base: Any, overrides: Mapping[str, Any], family: str) -> Any:
    """`base` (a family's config dataclass, with `to_json`/`from_json`) with `--set` overrides, each
    coerced to its setting's type; unknown names are refused with the known ones listed."""
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {family} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return type(base).from_json({**base.to_json(), **{k: coerce_setting(getattr(base, k), v) for k, v in overrides.items()}})

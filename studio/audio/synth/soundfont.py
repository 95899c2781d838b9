"""Finding and checking the SoundFont to render with.

The search order (`find_soundfont`): ``$STUDIO_SOUNDFONT``, then the ``.sf2``/``.sf3`` files of the
repository's ``soundfonts/`` folder sorted by name (see ``soundfonts/README.md``), then the
General MIDI fonts of Linux packages (`SynthConfig.system_soundfonts`). A file is checked by its
RIFF header (`soundfont_problem`) before FluidSynth loads it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from studio.audio.synth.config import SynthConfig

__all__ = [
    "ENV_SOUNDFONT",
    "REPO_SOUNDFONTS",
    "bad_soundfont_message",
    "find_soundfont",
    "missing_env_note",
    "no_soundfont_message",
    "soundfont_problem",
]

ENV_SOUNDFONT = "STUDIO_SOUNDFONT"
REPO_SOUNDFONTS = Path(__file__).resolve().parents[3] / "soundfonts"  # <repo>/soundfonts
SOUNDFONT_SUFFIXES = (".sf2", ".sf3")


def _soundfont_candidates(config: SynthConfig) -> list[tuple[str, Path]]:
    """Every place a SoundFont may be, in search order, each with where it came from."""
    candidates: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_SOUNDFONT, "").strip()
    if env:
        candidates.append((ENV_SOUNDFONT, Path(env).expanduser()))
    if REPO_SOUNDFONTS.is_dir():
        for path in sorted(REPO_SOUNDFONTS.iterdir(), key=lambda p: p.name):
            if path.suffix.lower() in SOUNDFONT_SUFFIXES:
                candidates.append(("soundfonts/", path))
    candidates.extend(("system", Path(p)) for p in config.system_soundfonts)
    return candidates


def find_soundfont(config: SynthConfig | None = None) -> Path | None:
    """The SoundFont to render with, or None when there is none.

    Parameters
    ----------
    config
        When ``config.soundfont`` is set, that file alone is considered (None if it is missing).

    Returns
    -------
    Path or None
        The first existing file of: ``$STUDIO_SOUNDFONT`` (skipped when set to a missing file),
        ``<repo>/soundfonts/*.sf2|*.sf3`` sorted by name, then the system GM fonts of
        `SynthConfig.system_soundfonts`.
    """
    config = config or SynthConfig()
    if config.soundfont is not None:
        path = Path(config.soundfont).expanduser()
        return path if path.is_file() else None
    for _, path in _soundfont_candidates(config):
        if path.is_file():
            return path
    return None


def missing_env_note() -> str:
    """A note when ``$STUDIO_SOUNDFONT`` names a file that does not exist, else ''."""
    env = os.environ.get(ENV_SOUNDFONT, "").strip()
    if env and not Path(env).expanduser().is_file():
        return f"{ENV_SOUNDFONT}={env} does not exist, ignored"
    return ""


def no_soundfont_message(config: SynthConfig) -> str:
    if config.soundfont is not None:
        return f"SoundFont {config.soundfont} does not exist: fix the path or leave it unset"
    note = missing_env_note()
    return (
        ("" if not note else note + "; ") + "no SoundFont found: put a .sf2 in soundfonts/, set STUDIO_SOUNDFONT=/path/to/font.sf2, "
        "or run `apt-get install fluid-soundfont-gm` (or `make run`)"
    )


def soundfont_problem(path: Path) -> str | None:
    """Why `path` cannot be a SoundFont, from its RIFF header (not a RIFF sfbk/DLS file, or shorter
    than the header says), or None. Checked before FluidSynth loads it, so that a damaged file gives
    one clear line instead of FluidSynth's own log lines on stderr."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(12)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] not in (b"sfbk", b"DLS "):
        return "is not a SoundFont (no RIFF sfbk header)"
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if declared > size:
        return f"is truncated ({size:,} of its {declared:,} bytes)"
    return None


def bad_soundfont_message(path: Path, problem: str) -> str:
    return f"the SoundFont {path} {problem}: use a valid .sf2/.sf3 (set STUDIO_SOUNDFONT, or put one in soundfonts/)"

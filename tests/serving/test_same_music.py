"""Same seed, same music: every shipped model's MIDI for every sample melody at seed 0 is byte for byte
what `tests/data/same_music.json` recorded (SHA-256 of the file `accompany` writes).

A change that should leave the music alone (moving code, a faster kernel, a tidier loop) must keep
every hash. A change that means to change the music records the new hashes on purpose:

    STUDIO_RECORD_SAME_MUSIC=1 .venv/bin/python -m pytest tests/serving/test_same_music.py

and says in its commit which models' music changed and why.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from studio.serving.registry import default_registry
from studio.serving.service import AccompanyRequest, accompany

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "assets" / "melodies"
RECORD = REPO / "tests" / "data" / "same_music.json"
MODELS = sorted(c.name for c in default_registry().cards() if not c.disabled)
TUNES = [e["file"] for e in json.loads((SAMPLES / "index.json").read_text())]


def _hash(model: str, tune: str, out_dir: Path) -> str:
    result = accompany(
        AccompanyRequest(
            midi=SAMPLES / tune,
            model=model,
            seed=0,
            out_dir=out_dir,
            name=Path(tune).stem,
            want_wav=False,
            want_png=False,
            want_listen=False,
        )
    )
    return hashlib.sha256(result.midi_path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_writes_the_recorded_music(model, tmp_path):
    hashes = {tune: _hash(model, tune, tmp_path) for tune in TUNES}
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if os.environ.get("STUDIO_RECORD_SAME_MUSIC"):
        recorded[model] = hashes
        RECORD.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        return
    assert model in recorded, f"no recorded music for {model}: record it (see this file's docstring)"
    changed = sorted(t for t in TUNES if hashes[t] != recorded[model].get(t))
    assert not changed, f"{model} wrote different music for {changed} at seed 0"

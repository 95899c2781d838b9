"""studio.audio.learning_plot: the loss curves are written atomically, so a drawing that fails halfway
leaves no half picture for the next request to take as already drawn."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from studio.audio.learning_plot import loss_curves_png

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_drawing_that_fails_halfway_leaves_nothing_and_the_next_one_is_whole(tmp_path, monkeypatch):
    rows = [{"step": s, "generator": 1.0 / s, "critic": -0.5 / s} for s in range(1, 41)]
    (tmp_path / "gan-test.json").write_text(json.dumps({"losses": rows}))
    real = Figure.savefig

    def half_then_full(self, fname, **kwargs):
        if hasattr(fname, "write"):
            fname.write(PNG[:4])  # part of a picture, then the disk is full
        else:
            Path(fname).write_bytes(PNG[:4])
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Figure, "savefig", half_then_full)
        with pytest.raises(OSError):
            loss_curves_png("gan-test", tmp_path)
    monkeypatch.setattr(Figure, "savefig", real)
    curves = loss_curves_png("gan-test", tmp_path)
    assert curves.read_bytes()[:8] == PNG  # drawn again, whole: no half file was taken as the cached picture
    assert [p.name for p in curves.parent.iterdir()] == ["losses.png"]  # no scratch file left

"""studio.core.files: every result is written atomically, so a write that fails halfway leaves
nothing behind (and an older file at the same path stays whole)."""

from __future__ import annotations

import resource
import signal
from contextlib import contextmanager

import pytest

from studio.core.files import atomic_file, atomic_write_bytes, place_files


@contextmanager
def _files_up_to(n_bytes: int):
    """Writes past `n_bytes` of a file fail with EFBIG, as on a full disk: the first `n_bytes` land."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a signal that kills
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_atomic_write_bytes_writes_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "take.mid"
    assert atomic_write_bytes(target, b"MThd new") == target
    assert target.read_bytes() == b"MThd new"
    assert [p.name for p in tmp_path.iterdir()] == ["take.mid"]


def test_a_write_that_fails_halfway_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "take.mid"
    target.write_bytes(b"old")
    fresh = tmp_path / "fresh.wav"
    with _files_up_to(50_000):
        with pytest.raises(OSError):
            atomic_write_bytes(target, b"x" * 100_000)
        with pytest.raises(OSError), atomic_file(fresh) as f:
            for _ in range(10):
                f.write(b"y" * 10_000)
    assert target.read_bytes() == b"old"  # the reader never sees half a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


def test_an_error_in_a_streaming_writer_removes_its_file(tmp_path):
    with pytest.raises(ValueError), atomic_file(tmp_path / "x.png") as f:
        f.write(b"half a picture")
        raise ValueError("the drawing failed")
    assert list(tmp_path.iterdir()) == []


def test_place_files_is_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.mid", tmp_path / "b.wav"
    a.write_bytes(b"midi")
    b.write_bytes(b"wave")
    out = tmp_path / "out"
    out.mkdir()
    assert place_files([(a, out / "x.mid"), (b, out / "x.wav")]) == [out / "x.mid", out / "x.wav"]
    assert (out / "x.mid").read_bytes() == b"midi" and (out / "x.wav").read_bytes() == b"wave"
    # The second copy fails (its folder is gone): the first target is not touched, no copy is left.
    (out / "x.mid").write_bytes(b"before")
    with pytest.raises(OSError):
        place_files([(b, out / "x.mid"), (a, tmp_path / "gone" / "x.wav")])
    assert (out / "x.mid").read_bytes() == b"before"
    assert sorted(p.name for p in out.iterdir()) == ["x.mid", "x.wav"]

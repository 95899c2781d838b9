"""Writing results: every result is written atomically (to a temporary name in its folder, then
renamed over its own), so a write that fails halfway leaves nothing behind; and a write that fails
(a full disk, a read-only folder) becomes one line a person can act on, with no server path in it."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from studio.core.errors import StudioError

__all__ = ["atomic_file", "atomic_write_bytes", "output_error", "place_files", "saving_results"]


def _part(target: Path) -> Path:
    """A fresh hidden name beside `target` (same folder, so the rename cannot cross file systems)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to stream `path`'s contents into (a WAV, a PNG): it is written under a
    temporary name in the same folder and renamed to `path` (`os.replace`) only when the block ends
    without an error; on any error the temporary file is removed and the error goes on. A reader
    never sees half a file, and an older file at `path` stays whole until the new one replaces it.
    The file is created with the usual permissions (the umask's), as `open` makes them."""
    target = Path(path)
    part = _part(target)
    try:
        with open(part, "xb") as f:
            yield f
        os.replace(part, target)
    except BaseException:
        with suppress(OSError):  # the first error is the one to report
            part.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_file`); returns `path` as a `Path`."""
    target = Path(path)
    part = _part(target)
    try:
        part.write_bytes(data)
        os.replace(part, target)
    except BaseException:
        with suppress(OSError):
            part.unlink(missing_ok=True)
        raise
    return target


def place_files(moves: Sequence[tuple[str | os.PathLike, str | os.PathLike]]) -> list[Path]:
    """Copy each ``(source, target)`` to a temporary name beside its target, then rename them all:
    when a copy fails (a full disk, a folder that became read-only), no target is touched and the
    copies made so far are removed. Returns the targets. The sources are left where they are."""
    staged: list[tuple[Path, Path]] = []
    try:
        for source, target in moves:
            part = _part(Path(target))
            staged.append((part, Path(target)))
            shutil.copyfile(source, part)
        for part, target in staged:
            os.replace(part, target)
    except BaseException:
        for part, _target in staged:
            with suppress(OSError):
                part.unlink(missing_ok=True)
        raise
    return [target for _part_path, target in staged]


@contextmanager
def saving_results(written: Sequence[str | os.PathLike] = ()) -> Iterator[None]:
    """Writes inside this block that fail (a full disk, a read-only folder) raise `output_error`'s
    one line, after removing the files named in `written` (a list the block may fill as it goes:
    the results of one request are all there or none is)."""
    try:
        yield
    except OSError as exc:
        for path in written:
            with suppress(OSError):
                Path(path).unlink(missing_ok=True)
        raise output_error(exc) from None


def output_error(exc: OSError) -> StudioError:
    """A failed write of the results as one line a person can act on (the server's paths are not shown)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StudioError(
            "the disk is full, so the result could not be saved: try again in a few minutes "
            "(old results are cleaned every hour), or tell whoever runs the studio"
        )
    return StudioError(
        f"the result could not be saved ({exc.strerror or type(exc).__name__}): check that the output folder exists and can be written to"
    )

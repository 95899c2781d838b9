"""Writing results: a write that fails (a full disk, a read-only folder) becomes one line a person can
act on, with no server path in it."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from studio.core.errors import StudioError

__all__ = ["output_error", "saving_results"]


@contextmanager
def saving_results() -> Iterator[None]:
    """Writes inside this block that fail (a full disk, a read-only folder) raise `output_error`'s one line."""
    try:
        yield
    except OSError as exc:
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

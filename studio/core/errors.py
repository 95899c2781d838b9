"""The studio's exceptions: what went wrong, in one line a person can act on."""

from __future__ import annotations

__all__ = ["InputError", "ModelError", "StudioError", "one_line"]

# Line breaks become spaces; other control characters (ESC starts a terminal's escape codes) and the
# bidirectional overrides (which reorder what a reader sees) are removed.
_LINE_BREAKS = "\n\r\v\f\x85\u2028\u2029\t"
_UNSEEN = {*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F}
_ONE_LINE = {code: (" " if chr(code) in _LINE_BREAKS else None) for code in _UNSEEN | {ord(c) for c in _LINE_BREAKS}}


def one_line(text: str) -> str:
    """`text` as one line that shows as written: line breaks as spaces, control characters (ESC,
    NUL, ...) and bidirectional overrides removed. For text from a file (a track name) and for the
    CLI's `warning:` and `error:` lines, so a name cannot forge a line or send escape codes."""
    return text.translate(_ONE_LINE)


class StudioError(Exception):
    """Base of every error the studio reports to a person (CLI `error:` line, UI `gr.Error`)."""


class InputError(StudioError):
    """The user's input (a MIDI file, a parameter, a model name) cannot be used; the message says why and what to do."""


class ModelError(StudioError):
    """A model could not be loaded or failed while generating; other models keep working."""

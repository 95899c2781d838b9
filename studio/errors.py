"""The studio's exceptions: what went wrong, in one line a person can act on."""

from __future__ import annotations

__all__ = ["InputError", "ModelError", "StudioError"]


class StudioError(Exception):
    """Base of every error the studio reports to a person (CLI `error:` line, UI `gr.Error`)."""


class InputError(StudioError):
    """The user's input (a MIDI file, a parameter, a model name) cannot be used; the message says why and what to do."""


class ModelError(StudioError):
    """A model could not be loaded or failed while generating; other models keep working."""

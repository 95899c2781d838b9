"""Whether this machine has FluidSynth (the library and pyfluidsynth), apart from any SoundFont: the
SoundFont checks of the studio run only once FluidSynth has loaded, so the tests of those messages
skip without it, saying why (a run with STUDIO_TEST_WITHOUT_FLUIDSYNTH=1 shows them as skips)."""

from __future__ import annotations

import pytest

from studio.audio.synth import SynthUnavailable
from studio.audio.synth.fluid import get_fluid

__all__ = ["FLUIDSYNTH_MISSING", "needs_audio", "needs_fluidsynth"]


def _missing() -> str | None:
    try:
        get_fluid()
    except SynthUnavailable as exc:
        return str(exc)
    return None


FLUIDSYNTH_MISSING = _missing()  # None, or why FluidSynth cannot load here
needs_fluidsynth = pytest.mark.skipif(
    FLUIDSYNTH_MISSING is not None, reason=f"the SoundFont is looked at once FluidSynth loads, and it cannot: {FLUIDSYNTH_MISSING}"
)
needs_audio = pytest.mark.skipif(
    FLUIDSYNTH_MISSING is not None,
    reason=f"this check plays or measures the take's audio, and FluidSynth cannot load here: {FLUIDSYNTH_MISSING}",
)

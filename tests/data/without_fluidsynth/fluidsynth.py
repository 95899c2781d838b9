"""Stands in for pyfluidsynth when a test run hides it (STUDIO_TEST_WITHOUT_FLUIDSYNTH=1, see
tests/conftest.py): importing it fails as it does on a machine without FluidSynth."""

raise ImportError("FluidSynth hidden for this test run (STUDIO_TEST_WITHOUT_FLUIDSYNTH)")

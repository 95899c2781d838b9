"""What the studio shows and plays: FluidSynth synthesis, the page's MP3 copy, piano-roll and
learning pictures, and the mixer. Imports only `studio.core`."""

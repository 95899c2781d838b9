"""The music core: score, MIDI reading and writing, the 16th-note roll, melody, meter, theory, metrics,
conditioning, voices, recording, configuration, errors and file names. Pure music types and I/O at
the edges: no torch, no gradio, and nothing else of the project."""

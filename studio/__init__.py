"""The music studio: melody in, multi-track accompaniment out (MIDI, WAV, piano roll).

`studio.service.accompany` is the one entry point that the CLI, the web UI and the API share.
"""

__version__ = "0.1.0"

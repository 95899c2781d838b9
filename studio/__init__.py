"""The music studio: melody in, multi-track accompaniment out (MIDI, WAV, piano roll).

`studio.serving.service.accompany` is the one entry point that the CLI, the web UI and the API share.
Importing the package changes nothing in the process: `app.py` and the CLI call
`studio.serving.process.apply_process_settings` first.
"""

__version__ = "0.1.0"

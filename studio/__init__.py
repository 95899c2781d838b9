"""The music studio: melody in, multi-track accompaniment out (MIDI, WAV, piano roll).

`studio.service.accompany` is the one entry point that the CLI, the web UI and the API share.
"""

import os

# torch's intra-op threads (GNU OpenMP) sleep between parallel regions instead of spinning for them.
# Spinning pays on an idle machine with a core per thread; on a shared one (a Space, a classroom
# server running several requests, FluidSynth and matplotlib beside the model) a spinning thread
# takes the core its partner needs. Measured on the 2-core machine at load 7-9: 16 GAN requests one
# by one 0.78-1.18 s spinning vs 0.17-0.23 s sleeping, batched 0.24-0.38 vs 0.08 s. Set before torch
# is first imported (the studio imports it lazily); OMP_WAIT_POLICY=ACTIVE in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

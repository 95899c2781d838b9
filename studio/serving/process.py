"""Process-wide settings for a studio server or command: set by `app.py` and the CLI before torch
loads, never by importing the package (a program that embeds the studio keeps its own)."""

from __future__ import annotations

import os
import sys

__all__ = ["apply_process_settings"]


def apply_process_settings() -> None:
    """torch's OpenMP threads sleep when idle and the GIL changes hands after 1 ms; settings the
    environment or the embedding program chose are kept. Call before torch is imported."""
    # torch's intra-op threads (GNU OpenMP) sleep between parallel regions instead of spinning for them.
    # Spinning pays on an idle machine with a core per thread; on a shared one (a Space, a classroom
    # server running several requests, FluidSynth and matplotlib beside the model) a spinning thread
    # takes the core its partner needs. Measured on the 2-core machine at load 7-9: 16 GAN requests one
    # by one 0.78-1.18 s spinning vs 0.17-0.23 s sleeping, batched 0.24-0.38 vs 0.08 s. Set before torch
    # is first imported (the studio imports it lazily); OMP_WAIT_POLICY=ACTIVE in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    # A thread that wants the GIL back (FluidSynth's render after a long call, the batcher, a request
    # finishing) waits until the thread holding it lets go: at most the switch interval, 5 ms by default,
    # while another thread runs Python (the piano roll is drawn beside the render). 1 ms cuts those waits;
    # switching more often costs CPU-bound threads little. Measured, whole 16-bar request / synthesis
    # alone, 100 runs each interleaved on the idle 2-core machine: 1.37 at 5 ms, 1.20 at 1 ms, 1.18 at
    # 0.2 ms. An interval the embedding program set itself is kept.
    if sys.getswitchinterval() == 0.005:
        sys.setswitchinterval(0.001)

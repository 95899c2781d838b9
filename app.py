"""Hugging Face Spaces entry point: build the studio's page and serve it (127.0.0.1:7860 unless
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say otherwise). The process-wide settings are made here,
before the large imports: torch's OpenMP threads sleep when idle, the GIL changes hands after 1 ms,
and glibc's heap is bounded and trimmed (a long-running server)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from studio.serving.allocator import bound_heap_growth, start_heap_trimmer  # small; before the large imports allocate
from studio.serving.process import apply_process_settings

apply_process_settings()
bound_heap_growth()

from studio.ui.page import build_app, launch_options  # noqa: E402 - after the settings above, before gradio and torch load

if __name__ == "__main__":
    start_heap_trimmer()
    build_app().queue(max_size=64, default_concurrency_limit=2).launch(**launch_options())

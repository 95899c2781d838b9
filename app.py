"""Hugging Face Spaces entry point: build the studio's page and serve it (127.0.0.1:7860 unless
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say otherwise)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from studio.allocator import bound_heap_growth, start_heap_trimmer  # small; before the large imports allocate

bound_heap_growth()  # a long-running server: glibc's heap must not creep (see studio.allocator)

from studio.ui import build_app, launch_options  # noqa: E402 - imported after the variable above is set, before gradio reads it

if __name__ == "__main__":
    start_heap_trimmer()
    build_app().queue(max_size=64, default_concurrency_limit=2).launch(**launch_options())

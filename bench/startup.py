"""Start-up and memory (issue 9, item 6): seconds from launching `app.py` to the first `/accompany`
answer, and the server's resident memory once every shipped model has answered a request.

Run: `python -m bench.startup [--json]` (starts its own server on a free loopback port).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.launch import launch_studio
from studio.core.config import REPO_ROOT

__all__ = ["bench_startup"]

TUNE = REPO_ROOT / "assets" / "melodies" / "yankee_doodle.mid"


def bench_startup(timeout_s: float = 120.0) -> dict[str, Any]:
    """Launch the studio, time the first page and the first answer, then load every model and measure memory."""
    import psutil
    from gradio_client import Client, handle_file

    from studio.serving.registry import ModelRegistry

    start = time.perf_counter()
    launched = launch_studio(timeout_s=timeout_s, poll_s=0.1)
    url, proc = launched.url, launched.process
    try:
        page_s = time.perf_counter() - start
        client = Client(url, verbose=False)
        client.predict(handle_file(str(TUNE)), "rules", 0, api_name="/accompany")
        first_s = time.perf_counter() - start
        server = psutil.Process(proc.pid)
        rss_start = server.memory_info().rss
        names = [c.name for c in ModelRegistry().cards() if not c.disabled]
        for name in names:
            client.predict(handle_file(str(TUNE)), name, 0, api_name="/accompany")
        rss_all = server.memory_info().rss
    finally:
        launched.stop()
    return {
        "page_s": round(page_s, 2),
        "first_answer_s": round(first_s, 2),
        "bound_first_answer_s": 10.0,
        "rss_after_first_mb": round(rss_start / 2**20),
        "rss_all_models_mb": round(rss_all / 2**20),
        "bound_mb": 1536,
        "models": names,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    result = bench_startup()
    if parser.parse_args().json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"page after {result['page_s']} s, first /accompany answer after {result['first_answer_s']} s (bound 10 s); "
            f"resident memory {result['rss_after_first_mb']} MB after it, {result['rss_all_models_mb']} MB with "
            f"{len(result['models'])} models loaded (bound 1536 MB)"
        )


if __name__ == "__main__":
    main()

"""Start-up and memory (issue 9, item 6): seconds from launching `app.py` to the first `/accompany`
answer, and the server's resident memory once every shipped model has answered a request.

Run: `python -m bench.startup [--json]` (starts its own server on a free loopback port).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from studio.config import REPO_ROOT

__all__ = ["bench_startup"]

TUNE = REPO_ROOT / "assets" / "melodies" / "yankee_doodle.mid"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_startup(timeout_s: float = 120.0) -> dict[str, Any]:
    """Launch the studio, time the first page and the first answer, then load every model and measure memory."""
    import psutil
    from gradio_client import Client, handle_file

    from studio.registry import ModelRegistry

    port = _free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"the studio did not answer within {timeout_s:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
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
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "page_s": round(page_s, 2), "first_answer_s": round(first_s, 2), "bound_first_answer_s": 10.0,
        "rss_after_first_mb": round(rss_start / 2**20), "rss_all_models_mb": round(rss_all / 2**20), "bound_mb": 1536,
        "models": names,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    result = bench_startup()
    if parser.parse_args().json:
        print(json.dumps(result, indent=2))
    else:
        print(f"page after {result['page_s']} s, first /accompany answer after {result['first_answer_s']} s (bound 10 s); "
              f"resident memory {result['rss_after_first_mb']} MB after it, {result['rss_all_models_mb']} MB with "
              f"{len(result['models'])} models loaded (bound 1536 MB)")


if __name__ == "__main__":
    main()

"""Micro-batching: requests for the same model that arrive within a short window run as one batched
forward pass (what a classroom of simultaneous "Generate" clicks needs on a GPU, and helps on a CPU).

A `Batcher` owns one worker thread per model. `submit` puts a request on the model's queue and
returns a future; the worker takes the first waiting request, waits at most `window_s` for more of a
similar length (lengths within a factor of `length_ratio`, so one long melody does not make short
ones wait for its padding), up to `max_batch`, and runs them with the model's `generate_batch`.
If the batched call fails, each request of that batch is run alone, so one bad request fails only
itself. Results go back to the right caller through its own future.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchConfig", "Batcher"]


@dataclass(frozen=True)
class BatchConfig:
    """How requests are grouped: wait up to `window_s` for up to `max_batch` requests whose lengths
    (steps) are within `length_ratio` of the first one's. `window_s` 0 disables batching."""

    window_s: float = 0.01
    max_batch: int = 16
    length_ratio: float = 2.0


@dataclass
class _Request:
    args: tuple
    length: int
    future: Future


class Batcher:
    """Batches calls to `run_batch(list of args) -> list of results` (one worker thread per key)."""

    def __init__(self, config: BatchConfig | None = None) -> None:
        self.config = config or BatchConfig()
        self._queues: dict[str, queue.Queue[_Request]] = {}
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []  # every batch run, for tests and benchmarks

    def submit(self, key: str, run_batch: Callable[[Sequence[tuple]], list], args: tuple, length: int) -> Future:
        """Queue one request for model `key`; its future gets its own result (or exception)."""
        request = _Request(args, max(1, int(length)), Future())
        with self._lock:
            q = self._queues.get(key)
            if q is None:
                q = self._queues[key] = queue.Queue()
                threading.Thread(target=self._work, args=(q, run_batch), name=f"batch-{key}", daemon=True).start()
        q.put(request)
        return request.future

    def _collect(self, q: queue.Queue[_Request], first: _Request) -> tuple[list[_Request], list[_Request]]:
        """The batch started by `first`, and requests taken off the queue that did not fit it."""
        batch, later = [first], []
        deadline = time.monotonic() + self.config.window_s
        while len(batch) < self.config.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                other = q.get(timeout=remaining)
            except queue.Empty:
                break
            low, high = sorted((first.length, other.length))
            (batch if high <= self.config.length_ratio * low else later).append(other)
        return batch, later

    def _work(self, q: queue.Queue[_Request], run_batch: Callable[[Sequence[tuple]], list]) -> None:
        pending: list[_Request] = []
        while True:
            first = pending.pop(0) if pending else q.get()
            if self.config.window_s > 0:
                batch, later = self._collect(q, first)
                pending.extend(later)
            else:
                batch = [first]
            batch = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                results = run_batch([r.args for r in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"the model returned {len(results)} results for {len(batch)} requests")
            except Exception:  # noqa: BLE001 - isolate the failing request: run each alone
                for r in batch:
                    try:
                        r.future.set_result(run_batch([r.args])[0])
                    except Exception as exc:  # noqa: BLE001 - goes back to its own caller
                        r.future.set_exception(exc)
                continue
            for r, result in zip(batch, results, strict=True):
                r.future.set_result(result)

    @staticmethod
    def gather(futures: Sequence[Future], timeout_s: float | None = None) -> list[Any]:
        """Results of `futures` in order (raises the first failure)."""
        return [f.result(timeout=timeout_s) for f in futures]

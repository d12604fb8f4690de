"""One model worker with a bounded queue and a status that never waits for it.

The models run on one thread (:class:`Worker`), so requests are served one at a
time in arrival order. The web server's event loop only *waits* for results, so
while a slow request runs it still answers :meth:`Worker.status` (the page's
"busy" indicator) at once, and a request that would overflow the queue is
refused straight away with :class:`ServerBusy` instead of hanging.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from editable_deepsc.errors import EdscError


class ServerBusy(EdscError):
    """The work queue is full; try again in a moment.

    Attributes
    ----------
    waiting : int
        Requests running or queued when this one was refused.
    """

    def __init__(self, message: str, waiting: int = 0):
        super().__init__(message)
        self.waiting = int(waiting)


@dataclass(frozen=True)
class WorkerStatus:
    """A snapshot of the worker.

    Attributes
    ----------
    busy : bool
        A request is running.
    running : str or None
        What it is doing (e.g. ``"send"``).
    running_seconds : float
        How long it has run.
    queued : int
        Requests waiting behind it.
    max_queue : int
        Requests that may wait before new ones are refused.
    served : int
        Requests finished since start.
    """

    busy: bool
    running: str | None
    running_seconds: float
    queued: int
    max_queue: int
    served: int

    def to_json(self) -> dict:
        return {"busy": self.busy, "running": self.running, "running_seconds": round(self.running_seconds, 2),
                "queued": self.queued, "max_queue": self.max_queue, "served": self.served}


class Worker:
    """Run model calls one at a time on a dedicated thread.

    Parameters
    ----------
    max_queue : int
        How many requests may wait behind the running one (≥ 0); more are refused
        with :class:`ServerBusy`.
    """

    def __init__(self, max_queue: int = 4):
        if int(max_queue) < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self.max_queue = int(max_queue)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edsc-web-worker")
        self._lock = threading.Lock()  # guards the counters only; never held while a model runs
        self._pending = 0  # running + queued
        self._running: str | None = None
        self._started = 0.0
        self._served = 0

    def status(self) -> WorkerStatus:
        """Current state; returns immediately."""
        with self._lock:
            running = self._running
            return WorkerStatus(
                busy=running is not None, running=running,
                running_seconds=(time.perf_counter() - self._started) if running else 0.0,
                queued=max(0, self._pending - (1 if running else 0)), max_queue=self.max_queue,
                served=self._served)

    def _wrap(self, label: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with self._lock:
                self._running, self._started = label, time.perf_counter()
            try:
                return fn()
            finally:
                with self._lock:
                    self._running = None
                    self._pending -= 1
                    self._served += 1

        return run

    async def run(self, label: str, fn: Callable[[], Any]) -> Any:
        """Queue ``fn`` (no arguments) on the worker thread and await its result.

        Raises
        ------
        ServerBusy
            ``max_queue`` requests are already waiting.
        """
        with self._lock:
            if self._pending > self.max_queue:
                waiting = self._pending
                raise ServerBusy(f"server busy: {waiting} request(s) ahead of yours; try again in a moment",
                                 waiting=waiting)
            self._pending += 1
        try:
            fut = self._pool.submit(self._wrap(label, fn))
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        return await asyncio.wrap_future(fut)

    def shutdown(self) -> None:
        """Stop accepting work; let the running call finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["ServerBusy", "Worker", "WorkerStatus"]

"""Scaffolding shared by the resumable training loops (generator, encoder, codec, DeepJSCC).

:class:`ResumableRun` resumes modules and optimisers from a checkpoint written by
:func:`~editable_deepsc.train.checkpointing.save_training_state`, gives the tqdm
loop over the remaining steps, keeps the wall time accumulated over
resumptions, and writes a checkpoint (plus an optional JSONL log line).
:func:`cosine_decay` is the cosine learning-rate curve the trainers share.
What each loop does per step stays in its own module.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TextIO

import torch
from tqdm import tqdm

from editable_deepsc.train.checkpointing import load_training_state, save_training_state


class ResumableRun:
    """Checkpoint, clock and progress bar of one resumable training loop.

    Parameters
    ----------
    path : str or Path
        The checkpoint file; resumed from when it exists.
    modules, optimizers : dict
        Named modules and optimisers stored in (and restored from) the checkpoint.

    Attributes
    ----------
    start : int
        Steps done before this call (0 for a fresh run).
    seconds : float
        Training seconds accumulated before this call.
    t0 : float
        ``time.perf_counter()`` when this call's loop started (see :meth:`steps`).
    """

    def __init__(
        self,
        path: str | Path,
        modules: dict[str, torch.nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
    ) -> None:
        self.path = Path(path)
        self.modules = modules
        self.optimizers = optimizers
        counters: dict = {"step": 0, "seconds": 0.0}
        if self.path.is_file():
            counters = load_training_state(self.path, modules, optimizers)
        self.start = int(counters["step"])
        self.seconds = float(counters.get("seconds", 0.0))
        self.t0 = time.perf_counter()

    def steps(self, end: int, total: int, desc: str, progress: bool = True) -> tqdm:
        """A tqdm bar over ``range(start, end)`` out of ``total``; (re)starts the clock.

        Parameters
        ----------
        end : int
            One past the last step index of this call.
        total : int
            Planned steps of the whole run (the bar's length).
        desc : str
            Bar label.
        progress : bool
            Show the bar.
        """
        bar = tqdm(range(self.start, end), initial=self.start, total=total, disable=not progress, desc=desc)
        self.t0 = time.perf_counter()
        return bar

    def elapsed(self) -> float:
        """Training seconds so far, over all resumptions (float)."""
        return self.seconds + time.perf_counter() - self.t0

    def save(self, done: int, log: TextIO | None = None, record: dict | None = None) -> float:
        """Checkpoint after ``done`` steps; with ``log``, append a JSONL line ``{step, seconds, **record}``.

        Returns
        -------
        float
            The elapsed seconds stored in the checkpoint.
        """
        elapsed = self.elapsed()
        save_training_state(self.path, self.modules, self.optimizers, {"step": done, "seconds": elapsed})
        if log is not None:
            log.write(json.dumps({"step": done, "seconds": round(elapsed, 1), **(record or {})}) + "\n")
            log.flush()
        return elapsed


def cosine_decay(t: float, start: float, end: float) -> float:
    """Half-cosine from ``start`` (``t = 0``) to ``end`` (``t = 1``); ``t`` is the run fraction in [0, 1]."""
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * t))


__all__ = ["ResumableRun", "cosine_decay"]

"""The ``"w0"`` start (the paper preset): the refinement starts at the original latent."""

from __future__ import annotations

import torch

from editable_deepsc.editing.problem import EditProblem
from editable_deepsc.editing.starts.base import Start


def start_from_origin(problem: EditProblem) -> Start:
    """``w0`` itself, no direction step (``alpha`` zeros (N, T))."""
    return Start(problem.w0.clone(), torch.zeros(problem.w0.shape[0], len(problem.targets)))

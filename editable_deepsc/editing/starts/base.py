"""What a start strategy returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Start:
    """The latent an edit's refinement starts from.

    Attributes
    ----------
    w : Tensor, float32, (N, num_ws, w_dim)
        Start latent.
    alpha : Tensor, float32, (N, T)
        Direction step per target (0 without a jump).
    met : Tensor, bool, (N, T), optional
        Per-target met flags of ``w`` when the start measured them.
    finished : Tensor, bool, (N,), optional
        With ``met``: samples whose targets are met and identity kept (they take no refinement step).
    final : bool
        The start is the answer (the instant preset without ``verify``): no refinement,
        ``met`` and ``values_before``/``values_after`` are predictions.
    values_before, values_after : dict of str to Tensor (N,)
        With ``final``: the predicted attribute values of ``w0`` and ``w``.
    """

    w: torch.Tensor
    alpha: torch.Tensor
    met: torch.Tensor | None = None
    finished: torch.Tensor | None = None
    final: bool = False
    values_before: dict[str, torch.Tensor] | None = None
    values_after: dict[str, torch.Tensor] | None = None

"""Additive white Gaussian noise channel."""

from __future__ import annotations

import torch
from torch import nn


def complex_noise(
    shape: tuple[int, ...], no: float | torch.Tensor, rng: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw circularly-symmetric complex Gaussian noise :math:`\\mathcal{CN}(0, N_0)`.

    Parameters
    ----------
    shape : tuple of int
        Output shape, e.g. (N, k).
    no : float or Tensor
        Noise variance per complex symbol (total over real and imaginary parts);
        a tensor must broadcast against ``shape`` (e.g. (N, 1) for per-sample SNR).
    rng : torch.Generator, optional
        Source of randomness (seeded for reproducibility).

    Returns
    -------
    Tensor, complex64, shape ``shape``
    """
    n = torch.randn(shape, dtype=torch.complex64, generator=rng, device=device)  # CN(0, 1)
    std = torch.as_tensor(no, dtype=torch.float32, device=device).sqrt()
    return n * std


class AWGN(nn.Module):
    """Complex AWGN channel: ``y = x + n``, ``n ~ CN(0, no)``.

    Call as ``AWGN()(x, no, rng=rng)``. Differentiable with respect to ``x``.
    With ``return_h=True`` it returns ``(y, h)`` like
    :class:`~editable_deepsc.channel.rayleigh.RayleighBlockFading`, with unit gains ``h``,
    so that callers treat both channels alike.

    Parameters (call)
    -----------------
    x : Tensor, complex64, shape (N, k)
        Channel input, normally of unit average power.
    no : float or Tensor
        Noise variance per complex symbol; a tensor of shape (N, 1) gives each
        sample its own SNR (used to train SNR-aware codecs).
    rng : torch.Generator, optional
    return_h : bool
        Also return the channel gains (all ones).

    Returns
    -------
    y : Tensor, complex64, shape (N, k)
    h : Tensor, complex64, shape (N, k)
        Only with ``return_h=True``.
    """

    def forward(self, x: torch.Tensor, no: float | torch.Tensor, rng: torch.Generator | None = None,
                return_h: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = x + complex_noise(tuple(x.shape), no, rng, device=x.device)
        return (y, torch.ones_like(y)) if return_h else y

"""Power normalisation and real/complex packing of channel symbols."""

from __future__ import annotations

import torch


def average_power(x: torch.Tensor) -> torch.Tensor:
    """Average symbol power per sample.

    Parameters
    ----------
    x : Tensor, complex64, shape (N, k)

    Returns
    -------
    Tensor, float32, shape (N,)
        :math:`\\frac{1}{k}\\sum_i |x_i|^2`.
    """
    return x.abs().pow(2).flatten(1).mean(dim=1)


def normalize_power(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale each sample to unit average symbol power (differentiable).

    Parameters
    ----------
    x : Tensor, complex64, shape (N, k)

    Returns
    -------
    Tensor, complex64, shape (N, k)
        ``x * sqrt(k / sum|x|^2)`` per sample, so ``average_power(out) == 1``.
    """
    p = average_power(x).clamp_min(eps)
    scale = torch.rsqrt(p).view(-1, *([1] * (x.dim() - 1)))
    return x * scale.to(x.real.dtype)


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Pack a real tensor (N, 2k) into complex symbols (N, k): first half real, second half imaginary.

    Parameters
    ----------
    x : Tensor, float32, shape (N, 2k)

    Returns
    -------
    Tensor, complex64, shape (N, k)
    """
    if x.shape[-1] % 2:
        raise ValueError(f"last dimension must be even to pack into complex symbols, got {x.shape[-1]}")
    k = x.shape[-1] // 2
    return torch.complex(x[..., :k].float(), x[..., k:].float())


def complex_to_real(z: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`real_to_complex`: (N, k) complex → (N, 2k) real."""
    return torch.cat([z.real, z.imag], dim=-1)

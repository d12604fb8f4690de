"""Confining an edit to a linear subspace of W+ (e.g. the axes a delta codec sends)."""

from __future__ import annotations

import torch

from editable_deepsc.errors import BadInput


def check_subspace(basis: torch.Tensor, dim: int) -> torch.Tensor:
    """``basis`` as float32 (dim, m) with orthonormal columns, else :class:`BadInput`."""
    if not isinstance(basis, torch.Tensor) or basis.dim() != 2 or basis.shape[0] != dim or basis.shape[1] < 1:
        raise BadInput(f"subspace must be a ({dim}, m) basis, got {tuple(getattr(basis, 'shape', ()))}")
    basis = basis.detach().float()
    gram = basis.T @ basis
    if not torch.allclose(gram, torch.eye(gram.shape[0], device=gram.device), atol=1e-3):
        raise BadInput("subspace columns must be orthonormal")
    return basis


def project(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Orthogonal projection of latents ``x`` (..., num_ws, w_dim) onto ``span(basis)`` ((num_ws·w_dim, m))."""
    flat = x.reshape(-1, basis.shape[0])
    return ((flat @ basis) @ basis.T).reshape(x.shape)

"""The interface every image generator of the package implements.

A generator maps a latent ``z`` to an intermediate latent ``w`` (``mapping``)
and synthesises images from a *layer-wise* latent ``w_plus`` of shape
``(N, num_ws, w_dim)``, one style vector per synthesis layer (``synthesis``).
Inversion, editing and the channel codec only ever see ``w_plus``; a generator
with a single latent (the plain teacher) simply has ``num_ws == 1``.
"""

from __future__ import annotations

import torch
from torch import nn

from editable_deepsc.errors import BadInput


class StyleGenerator(nn.Module):
    """Base class: mapping ``z -> w`` and synthesis ``w_plus -> image``.

    Subclasses set the attributes below in ``__init__`` and implement
    :meth:`mapping` and :meth:`synthesis`.

    Attributes
    ----------
    z_dim : int
        Size of the input latent ``z`` (drawn from N(0, I)).
    w_dim : int
        Size of one style vector.
    num_ws : int
        Number of style vectors (synthesis layers) in ``w_plus``.
    resolution : int
        Output images are ``(N, 3, resolution, resolution)``.
    name : str
        Registry name (``"edsc-faces64"``, ``"teacher-dcgan64"``, ...) or a path.
    """

    z_dim: int
    w_dim: int
    num_ws: int
    resolution: int
    name: str = "unnamed"

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``z`` (N, z_dim) float32 to ``w`` (N, w_dim) float32."""
        raise NotImplementedError

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        """Synthesise images (N, 3, R, R) float32 in [-1, 1] from ``w_plus`` (N, num_ws, w_dim)."""
        raise NotImplementedError

    @torch.no_grad()
    def mean_w(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Average ``w`` over ``n`` random ``z`` (the truncation centre), shape (w_dim,).

        Cached on the module after the first call with the same ``n`` and ``seed``.
        """
        key = (n, seed)
        cached = getattr(self, "_mean_w_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1].clone()
        dev = next(self.parameters()).device
        rng = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=rng).to(dev)
        m = torch.cat([self.mapping(c) for c in z.split(1024)]).mean(0)
        object.__setattr__(self, "_mean_w_cache", (key, m))
        return m.clone()

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """Repeat ``w`` (N, w_dim) into ``w_plus`` (N, num_ws, w_dim) (the same style in every layer)."""
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def check_w_plus(self, w_plus: torch.Tensor) -> None:
        """Raise :class:`BadInput` unless ``w_plus`` has shape (N, num_ws, w_dim)."""
        if w_plus.dim() != 3 or w_plus.shape[1:] != (self.num_ws, self.w_dim):
            raise BadInput(
                f"w_plus must have shape (N, {self.num_ws}, {self.w_dim}) for {self.name}, got {tuple(w_plus.shape)}"
            )

    def forward(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """Images from ``z`` (N, z_dim): mapping, optional truncation towards :meth:`mean_w`, synthesis."""
        w = self.mapping(z)
        if truncation != 1.0:
            m = self.mean_w().to(w)
            w = m + truncation * (w - m)
        return self.synthesis(self.broadcast(w))

    @torch.no_grad()
    def sample(
        self, n: int, rng: torch.Generator | None = None, truncation: float = 1.0, batch_size: int = 64
    ) -> torch.Tensor:
        """Draw ``n`` images (n, 3, R, R) with ``z ~ N(0, I)`` from ``rng`` (CPU torch.Generator)."""
        z = torch.randn(n, self.z_dim, generator=rng)
        dev = next(self.parameters()).device
        return torch.cat([self(c.to(dev), truncation).cpu() for c in z.split(batch_size)])

    def num_parameters(self) -> int:
        """Number of learnable parameters."""
        return sum(p.numel() for p in self.parameters())

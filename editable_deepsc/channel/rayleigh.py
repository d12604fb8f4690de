"""Rayleigh block-fading channel with coherent (known-h) equalisation."""

from __future__ import annotations

import torch
from torch import nn

from editable_deepsc.channel.awgn import complex_noise


class RayleighBlockFading(nn.Module):
    """Flat Rayleigh block fading: ``y = h ⊙ x + n``, ``h ~ CN(0, 1)`` constant over blocks.

    Fading is split into :meth:`generate` (draw gains) and :meth:`apply` (use
    them) so that a receiver or a test can see ``h``; calling the module does both.

    Parameters
    ----------
    block_length : int or None
        Number of consecutive symbols that share one gain. ``None`` (default)
        means one gain per sample (quasi-static fading over the whole block of k
        symbols, the usual JSCC convention).
    equalize : bool
        If ``True`` (default) the receiver knows ``h`` and returns the
        zero-forcing estimate ``y / h``; otherwise the raw ``y``.

    Notes
    -----
    After zero-forcing, the noise on symbol ``i`` has variance ``no / |h_i|^2``;
    use ``return_h=True`` to get ``h`` for soft demapping or learned receivers.
    """

    def __init__(self, block_length: int | None = None, equalize: bool = True):
        super().__init__()
        if block_length is not None and block_length < 1:
            raise ValueError(f"block_length must be >= 1, got {block_length}")
        self.block_length = block_length
        self.equalize = equalize

    def generate(
        self, batch: int, k: int, rng: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Draw channel gains.

        Returns
        -------
        Tensor, complex64, shape (batch, k)
            ``h`` repeated over each block of ``block_length`` symbols.
        """
        bl = k if self.block_length is None else self.block_length
        n_blocks = -(-k // bl)
        h = torch.randn((batch, n_blocks), dtype=torch.complex64, generator=rng, device=device)
        return h.repeat_interleave(bl, dim=1)[:, :k]

    def apply(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        no: float | torch.Tensor,
        rng: torch.Generator | None = None,
        equalize: bool | None = None,
    ) -> torch.Tensor:
        """Pass ``x`` (N, k) through gains ``h`` (N, k) and noise of variance ``no``.

        Returns
        -------
        Tensor, complex64, shape (N, k)
            ``(h x + n) / h`` if equalising, else ``h x + n``.
        """
        y = h * x + complex_noise(tuple(x.shape), no, rng, device=x.device)
        eq = self.equalize if equalize is None else equalize
        return y / h if eq else y

    def forward(
        self,
        x: torch.Tensor,
        no: float | torch.Tensor,
        rng: torch.Generator | None = None,
        return_h: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = self.generate(x.shape[0], x.shape[1], rng, device=x.device)
        y = self.apply(x, h, no, rng)
        return (y, h) if return_h else y

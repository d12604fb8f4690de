"""Reconstruction losses shared by optimisation-based inversion and encoder training.

``ReconstructionLoss`` combines, per image,

* ``pixel``      -- mean squared error over C, H, W (images in [-1, 1]);
* ``perceptual`` -- the proxy LPIPS (``lpips-proxy(effnet-lite0)``, see
  :mod:`editable_deepsc.metrics.lpips`) computed at a small EfficientNet input
  size (64 px by default, ~10x cheaper than the 224 px metric) so that it is
  affordable as a loss on CPU; the *reported* LPIPS uses the 224 px metric;
* ``ssim``       -- ``1 - SSIM``;
* ``identity``   -- ``1 - cos`` between face-recognition embeddings, when the
  face-analysis nets are installed (:func:`identity_loss_or_none`).

Each term returns a (N,) tensor, so a batch of images is optimised as N
independent problems (the loss is summed over images, Adam is element-wise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.identity import IdentityLoss
from editable_deepsc.metrics.image import ssim
from editable_deepsc.metrics.lpips import LPIPS

#: EfficientNet input size of the perceptual *loss* (the metric uses 224).
LOSS_PERCEPTUAL_SIZE = 64

IdentityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def identity_loss_or_none() -> IdentityFn | None:
    """The face-recognition identity loss ``(images, targets) -> (N,)`` if its weights are available, else None.

    Uses :class:`editable_deepsc.guidance.identity.IdentityLoss` (``1 - cos`` of
    face-api recognition descriptors). Any failure to import or load it
    returns ``None``: identity is optional everywhere in inversion.
    """
    try:
        loss = IdentityLoss()
    except Exception:  # noqa: BLE001 - optional component, absent or unweighted
        return None

    def fn(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss(images, targets)

    return fn


@dataclass
class ReconstructionLoss:
    """Weighted per-image reconstruction loss between synthesised and target images.

    Parameters
    ----------
    pixel : float
        Weight of the pixel MSE.
    perceptual : float
        Weight of the proxy LPIPS at ``perceptual_size`` px (0 disables it).
    ssim : float
        Weight of ``1 - SSIM`` (0 disables it).
    identity : float
        Weight of the identity loss (ignored when ``identity_fn`` is None).
    perceptual_size : int
        EfficientNet input side for the perceptual term (multiple of 32).
    identity_fn : callable or None
        ``(images, targets) -> (N,)`` identity loss, e.g. from :func:`identity_loss_or_none`.
    """

    pixel: float = 1.0
    perceptual: float = 0.5
    ssim: float = 0.0
    identity: float = 0.0
    perceptual_size: int = LOSS_PERCEPTUAL_SIZE
    identity_fn: IdentityFn | None = None

    def __post_init__(self) -> None:
        for k in ("pixel", "perceptual", "ssim", "identity"):
            if getattr(self, k) < 0:
                raise BadInput(f"loss weight {k} must be >= 0, got {getattr(self, k)}")
        self._lpips = None

    def _perceptual(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self._lpips is None:
            self._lpips = LPIPS(prefer_standard=False, proxy_input_size=self.perceptual_size)
        return self._lpips(a, b)

    def parts(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every active (weighted > 0) term, unweighted, each (N,) float32.

        Parameters
        ----------
        images, targets : torch.Tensor
            Float32 (N, 3, H, W) in [-1, 1]; gradients flow into ``images``.
        """
        if images.shape != targets.shape:
            raise BadInput(f"images {tuple(images.shape)} and targets {tuple(targets.shape)} differ in shape")
        out = {"pixel": (images - targets).pow(2).flatten(1).mean(1)}
        if self.perceptual > 0:
            out["perceptual"] = self._perceptual(images, targets)
        if self.ssim > 0:
            out["ssim"] = 1.0 - ssim(images, targets)
        if self.identity > 0 and self.identity_fn is not None:
            out["identity"] = self.identity_fn(images, targets)
        return out

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Weighted sum of :meth:`parts`, shape (N,) float32."""
        parts = self.parts(images, targets)
        return sum(getattr(self, k) * v for k, v in parts.items())

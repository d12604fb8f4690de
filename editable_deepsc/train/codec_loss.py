"""Image terms of the semantic codec's training loss (pixel MSE, proxy perceptual distance, identity)."""

from __future__ import annotations

import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.generator.base import StyleGenerator

#: floor inside the log of the squared-error terms (-40 dB)
LOG_EPS = 1e-4


class ImageLoss:
    """Image terms of the codec loss: pixel MSE, proxy perceptual distance, identity (optional).

    Parameters
    ----------
    generator : StyleGenerator
        Frozen generator that synthesises both images.
    pixel_weight, perceptual_weight, identity_weight : float
        Weights; a zero weight skips (and does not load) that term.
    """

    def __init__(
        self, generator: StyleGenerator, pixel_weight: float, perceptual_weight: float, identity_weight: float
    ):
        self.generator = generator
        self.pixel_weight, self.perceptual_weight, self.identity_weight = pixel_weight, perceptual_weight, identity_weight
        self.lpips = None
        if perceptual_weight > 0:
            from editable_deepsc.metrics.lpips import LPIPS

            self.lpips = LPIPS(prefer_standard=False, proxy_input_size=64)
        self.identity = None
        if identity_weight > 0:
            try:
                from editable_deepsc.guidance import IdentityLoss  # type: ignore[attr-defined]

                self.identity = IdentityLoss()
            except (ImportError, CheckpointError):
                self.identity = None

    @property
    def active(self) -> bool:
        return self.pixel_weight > 0 or self.lpips is not None or self.identity is not None

    def __call__(self, w_hat: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted image loss of decoded latents ``w_hat`` against the noise-free image of ``w``.

        Returns
        -------
        loss : Tensor, float32, scalar
        terms : dict of str to float
            Unweighted values of each term.
        """
        with torch.no_grad():
            target = self.generator.synthesis(w)
        img = self.generator.synthesis(w_hat)
        loss = torch.zeros(())
        terms: dict[str, float] = {}
        mse = (img - target).pow(2).flatten(1).mean(1)
        terms["pixel_mse"] = float(mse.mean().detach())
        loss = loss + self.pixel_weight * torch.log(mse + LOG_EPS).mean()
        if self.lpips is not None:
            perc = self.lpips(img, target).mean()
            terms["lpips_proxy"] = float(perc)
            loss = loss + self.perceptual_weight * perc
        if self.identity is not None:
            ident = self.identity(img, target).mean()
            terms["identity"] = float(ident)
            loss = loss + self.identity_weight * ident
        return loss, terms

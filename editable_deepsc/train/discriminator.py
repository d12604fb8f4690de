"""A small convolutional discriminator for 64x64 faces (used only in training).

Four stride-2 convolutions 64 -> 32 -> 16 -> 8 -> 4 px with leaky ReLU, then a
linear layer to one logit per image. No normalisation layers, so the R1
gradient penalty (Mescheder et al. 2018) applies per sample.
"""

from __future__ import annotations

import torch
from torch import nn


class FaceDiscriminator(nn.Module):
    """Logit "real teacher face" for images (N, 3, 64, 64) in [-1, 1].

    Parameters
    ----------
    base : int
        Channels of the first convolution (doubled at each stride).
    resolution : int
        Input side (power of two >= 8).
    """

    def __init__(self, base: int = 32, resolution: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, side = 3, resolution
        cout = base
        while side > 4:
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin, cout, side = cout, min(cout * 2, 256), side // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, 3, R, R) float32 -> logits (N,) float32."""
        return self.head(self.features(x).flatten(1)).squeeze(1)

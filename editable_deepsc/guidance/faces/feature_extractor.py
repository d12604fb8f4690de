"""face-api's ``FaceFeatureExtractor``: four dense blocks on a 112×112 face, shared in structure by
the landmark and expression nets (each has its own weights)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from editable_deepsc.guidance.faces.layers import Conv, SeparableConv, normalize_pixels, to_pixels

INPUT_SIZE = 112
FEATURE_DIM = 256


class DenseBlock4(nn.Module):
    """Four densely connected convs; the first halves the resolution (a plain conv in block 0)."""

    def __init__(self, c_in: int, c_out: int, first: bool = False):
        super().__init__()
        self.conv0 = Conv(c_in, c_out, 3, stride=2) if first else SeparableConv(c_in, c_out, stride=2)
        self.conv1 = SeparableConv(c_out, c_out)
        self.conv2 = SeparableConv(c_out, c_out)
        self.conv3 = SeparableConv(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceFeatureExtractor(nn.Module):
    """(N, 3, 112, 112) images in [-1, 1] → (N, 256) features (after a 7×7 average pool)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = DenseBlock4(3, 32, first=True)
        self.dense1 = DenseBlock4(32, 64)
        self.dense2 = DenseBlock4(64, 128)
        self.dense3 = DenseBlock4(128, 256)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalize_pixels(to_pixels(images))
        x = self.dense3(self.dense2(self.dense1(self.dense0(x))))
        return F.avg_pool2d(x, 7, 2).flatten(1)

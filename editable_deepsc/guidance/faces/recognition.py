"""face-api's ``FaceRecognitionNet``: a ResNet-34-like net mapping a 150×150 face to a 128-d descriptor.

The descriptor is not L2-normalised; face-api compares descriptors by Euclidean distance
(same person below ~0.6). See :mod:`editable_deepsc.guidance.identity`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from editable_deepsc.guidance.faces.layers import Conv, normalize_pixels, to_pixels

INPUT_SIZE = 150
DESCRIPTOR_DIM = 128


class ScaleLayer(nn.Module):
    """Per-channel affine ``x * weights + biases`` (a folded batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weights = nn.Parameter(torch.ones(channels))
        self.biases = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights.view(1, -1, 1, 1) + self.biases.view(1, -1, 1, 1)


class ConvScale(nn.Module):
    """Conv (+bias) → scale layer → optional ReLU. Stride 2 uses ``'valid'`` padding (``convDown``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, relu: bool = True):
        super().__init__()
        self.conv = Conv(c_in, c_out, kernel, stride, padding="valid" if stride == 2 else "same")
        self.scale = ScaleLayer(c_out)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale(self.conv(x))
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    """Residual block; ``down=True`` halves the resolution and (maybe) widens the channels.

    The shortcut of a down block is a 2×2 average pool, zero-padded in channels when they grow;
    when the conv path comes out one pixel smaller it is zero-padded at the bottom/right (face-api).
    """

    def __init__(self, c_in: int, c_out: int, down: bool = False):
        super().__init__()
        self.down = down
        self.conv1 = ConvScale(c_in, c_out, 3, stride=2 if down else 1)
        self.conv2 = ConvScale(c_out, c_out, 3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        if shortcut.shape[-1] != out.shape[-1] or shortcut.shape[-2] != out.shape[-2]:
            out = F.pad(out, (0, shortcut.shape[-1] - out.shape[-1], 0, shortcut.shape[-2] - out.shape[-2]))
        if shortcut.shape[1] != out.shape[1]:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out.shape[1] - shortcut.shape[1]))
        return F.relu(out + shortcut)


class FaceRecognitionNet(nn.Module):
    """Identity embedding net.

    Input: (N, 3, 150, 150) float32 in [-1, 1] (see :func:`~.layers.prepare_input`).
    Output: (N, 128) float32 descriptor.
    """

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.conv32_down = ConvScale(3, 32, kernel=7, stride=2)
        self.conv32_1 = Residual(32, 32)
        self.conv32_2 = Residual(32, 32)
        self.conv32_3 = Residual(32, 32)
        self.conv64_down = Residual(32, 64, down=True)
        self.conv64_1 = Residual(64, 64)
        self.conv64_2 = Residual(64, 64)
        self.conv64_3 = Residual(64, 64)
        self.conv128_down = Residual(64, 128, down=True)
        self.conv128_1 = Residual(128, 128)
        self.conv128_2 = Residual(128, 128)
        self.conv256_down = Residual(128, 256, down=True)
        self.conv256_1 = Residual(256, 256)
        self.conv256_2 = Residual(256, 256)
        self.conv256_down_out = Residual(256, 256, down=True)
        self.fc = nn.Parameter(torch.zeros(DESCRIPTOR_DIM, 256))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalize_pixels(to_pixels(images))
        x = F.max_pool2d(self.conv32_down(x), 3, 2)
        for block in (
            self.conv32_1, self.conv32_2, self.conv32_3,
            self.conv64_down, self.conv64_1, self.conv64_2, self.conv64_3,
            self.conv128_down, self.conv128_1, self.conv128_2,
            self.conv256_down, self.conv256_1, self.conv256_2, self.conv256_down_out,
        ):  # fmt: skip
            x = block(x)
        return F.linear(x.mean(dim=(2, 3)), self.fc)

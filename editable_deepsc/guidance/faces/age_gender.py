"""face-api's ``AgeGenderNet``: a tiny Xception on a 112×112 face → age (years) and gender logits."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from editable_deepsc.guidance.faces.layers import Conv, FullyConnected, SeparableConv, max_pool_same, normalize_pixels, to_pixels

INPUT_SIZE = 112


class ReductionBlock(nn.Module):
    """Two separable convs + 3×3/2 max pool, plus a strided 1×1 expansion shortcut."""

    def __init__(self, c_in: int, c_out: int, activate_input: bool = True):
        super().__init__()
        self.activate_input = activate_input
        self.separable_conv0 = SeparableConv(c_in, c_out)
        self.separable_conv1 = SeparableConv(c_out, c_out)
        self.expansion_conv = Conv(c_in, c_out, kernel=1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(x) if self.activate_input else x
        out = self.separable_conv1(F.relu(self.separable_conv0(out)))
        return max_pool_same(out, 3, 2) + self.expansion_conv(x)


class MainBlock(nn.Module):
    """Three ReLU → separable conv steps with an identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.separable_conv0 = SeparableConv(channels, channels)
        self.separable_conv1 = SeparableConv(channels, channels)
        self.separable_conv2 = SeparableConv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.separable_conv0(F.relu(x))
        out = self.separable_conv1(F.relu(out))
        out = self.separable_conv2(F.relu(out))
        return out + x


class EntryFlow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_in = Conv(3, 32, 3, stride=2)
        self.reduction_block_0 = ReductionBlock(32, 64, activate_input=False)
        self.reduction_block_1 = ReductionBlock(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduction_block_1(self.reduction_block_0(F.relu(self.conv_in(x))))


class MiddleFlow(nn.Module):
    def __init__(self, num_blocks: int = 2):
        super().__init__()
        for i in range(num_blocks):
            self.add_module(f"main_block_{i}", MainBlock(128))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class ExitFlow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.reduction_block = ReductionBlock(128, 256)
        self.separable_conv = SeparableConv(256, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.separable_conv(self.reduction_block(x)))


class AgeGenderHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.age = FullyConnected(512, 1)
        self.gender = FullyConnected(512, 2)


class AgeGenderNet(nn.Module):
    """(N, 3, 112, 112) images in [-1, 1] → ``(age, gender_logits)``.

    Returns
    -------
    age : torch.Tensor
        (N,) apparent age in years.
    gender_logits : torch.Tensor
        (N, 2) logits of (male, female); ``softmax(...)[:, 0]`` is P(male).
    """

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.entry_flow = EntryFlow()
        self.middle_flow = MiddleFlow(2)
        self.exit_flow = ExitFlow()
        self.fc = AgeGenderHeads()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalize_pixels(to_pixels(images))
        x = self.exit_flow(self.middle_flow(self.entry_flow(x)))
        pooled = F.avg_pool2d(x, 7, 2).flatten(1)
        return self.fc.age(pooled).squeeze(1), self.fc.gender(pooled)

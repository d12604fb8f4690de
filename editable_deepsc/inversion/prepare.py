"""Turning a user image into the generator's input: size checks and face alignment.

* An image already at the generator's resolution (e.g. a 64x64 teacher face or a
  received image) goes straight in; user input (``check_face=True``: the CLI and the web) is
  first checked for a face like any photo
  (:func:`~editable_deepsc.guidance.faces.align.check_small_face`), so a flat or noise
  image is refused.
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
from typing import Any

import torch

from editable_deepsc.errors import BadInput, ImageError
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
    faces_found : int or None
        Faces the detector found (``None``: no face check was made).
    face_index : int or None
        The face used, counting from 0 in order of detector score.
    face_box : tuple of float or None
        Its box ``(x, y, w, h)`` in input pixels.
    face_score : float or None
        Its detector score.
    target : PhotoTarget or None
        Full-size sets (:func:`prepare_photo`): the photo, its FFHQ-aligned crop (``image``) and
        the alignment transform (for the identity to the photo and the paste-back).
    """

    image: torch.Tensor
    aligned: bool
    source_size: tuple[int, int]
    faces_found: int | None = None
    face_index: int | None = None
    face_box: tuple[float, float, float, float] | None = None
    face_score: float | None = None
    target: Any = None

    def face_json(self) -> dict | None:
        """``{"found", "used", "box", "score"}`` of the face check (``boxes`` too for a photo target),
        or None when none was made."""
        if self.target is not None:
            return self.target.face_json()
        if self.faces_found is None:
            return None
        return {"found": self.faces_found, "used": self.face_index,
                "box": None if self.face_box is None else [round(float(v), 1) for v in self.face_box],
                "score": None if self.face_score is None else round(float(self.face_score), 3)}

    def face_note(self) -> str | None:
        """A line for stderr when several faces were found (which one is used), else None."""
        return face_note(self.face_json())


def face_note(face: dict | None) -> str | None:
    """The stderr line for a :meth:`PreparedImage.face_json` record with several faces, else None."""
    if not face or face["found"] < 2:
        return None
    box = ", ".join(f"{v:.0f}" for v in face["box"] or ())
    order = "0 = leftmost" if "boxes" in face else "0 = highest score"
    return (f"note: {face['found']} faces found; using face {face['used']} (detector score {face['score']:.2f}, "
            f"box x,y,w,h = {box}); --face N picks another ({order})")


def prepare_photo(image: torch.Tensor, size: int = 256, face: int | None = None, aligner=None) -> PreparedImage:
    """Detect and FFHQ-align the face of a photo of any size and shape (the full-size sets' input).

    Parameters
    ----------
    image : torch.Tensor
        Float32 (1, 3, H, W) or (3, H, W) in [-1, 1].
    size : int
        Side of the aligned crop (the inversion's work size).
    face : int, optional
        Which detected face (0 = highest detector score).
    aligner : FaceAligner, optional

    Returns
    -------
    PreparedImage
        ``image`` the aligned crop (1, 3, size, size), ``target`` the
        :class:`~editable_deepsc.inversion.photo_target.PhotoTarget`.

    Raises
    ------
    NoFaceFound, ImageError, BadInput
    """
    from editable_deepsc.inversion.photo_target import PhotoTarget

    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ImageError(f"expected one RGB image, got shape {tuple(image.shape)}")
    target = PhotoTarget.from_photo(image.float(), size=size, face=face, aligner=aligner)
    return PreparedImage(target.crop, aligned=True, source_size=(int(image.shape[-2]), int(image.shape[-1])),
                         faces_found=target.faces_found, face_index=target.face_index, face_box=target.face_box,
                         face_score=target.face_score, target=target)


def prepare_image(image: torch.Tensor, resolution: int = 64, align: bool = True, face: int | None = None,
                  check_face: bool = False, aligner=None) -> PreparedImage:
    """Check and align one image for a generator of side ``resolution``.

    Parameters
    ----------
    image : torch.Tensor
        Float32 (1, 3, H, W) or (3, H, W) in [-1, 1].
    resolution : int
        The generator's image side.
    align : bool
        Detect and align the face of photos larger than ``resolution``.
    face : int, optional
        Which detected face to use (0 = highest score; default 0).
    check_face : bool
        Refuse an image without a face, whatever its size (user input: the CLI and the web).
        A generator-sized image is then checked with
        :func:`~editable_deepsc.guidance.faces.align.check_small_face`; a larger photo is
        always detected (with ``align=False`` it is still resized, not aligned).
    aligner : FaceAligner, optional
        Reuse loaded face nets.

    Returns
    -------
    PreparedImage

    Raises
    ------
    ImageError
        Not one RGB image, non-square, or smaller than ``resolution`` (and than
        :data:`MIN_PHOTO_SIDE`) without being exactly ``resolution``.
    NoFaceFound
        No face in the image (alignment, or the face check).
    BadInput
        ``face`` is not one of the faces found.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ImageError(f"expected one RGB image, got shape {tuple(image.shape)}")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if (h, w) == (resolution, resolution):
        if not check_face:
            return PreparedImage(image.float(), aligned=False, source_size=(h, w))
        if face:
            raise BadInput(f"--face {face}: a {w}x{h} generator-sized image holds one face (use 0)")
        try:
            from editable_deepsc.guidance.faces.align import check_small_face
        except ImportError:  # pragma: no cover - face module absent: nothing to check with
            return PreparedImage(image.float(), aligned=False, source_size=(h, w))
        score = check_small_face(image.float(), aligner)  # NoFaceFound propagates
        return PreparedImage(image.float(), aligned=False, source_size=(h, w), faces_found=1, face_index=0,
                             face_box=(0.0, 0.0, float(w), float(h)), face_score=score)
    if h != w:
        raise ImageError(f"photo must be square (crop it around the face first), got {w}x{h}")
    if h < max(resolution, MIN_PHOTO_SIDE):
        raise ImageError(f"photo too small: {w}x{h} (need {resolution}x{resolution} or at least "
                         f"{max(resolution, MIN_PHOTO_SIDE)} px per side)")
    if align or check_face:
        try:
            from editable_deepsc.guidance.faces.align import FaceAligner
        except ImportError as e:  # pragma: no cover - face module absent
            warnings.warn(f"face alignment unavailable ({e}); resizing the photo without alignment", stacklevel=2)
        else:
            aligner = aligner or FaceAligner()
            found = aligner.align(image.float(), size=resolution, framing="teacher", face=int(face or 0))
            meta = dict(source_size=(h, w), faces_found=found.faces_found, face_index=found.index,
                        face_box=tuple(float(v) for v in found.detection.box), face_score=float(found.detection.score))
            if align:
                return PreparedImage(found.image.float().clamp(-1, 1), aligned=True, **meta)
            return PreparedImage(resize(image.float(), resolution), aligned=False, **meta)
    return PreparedImage(resize(image.float(), resolution), aligned=False, source_size=(h, w))

"""One-image face analysis report (what ``edsc analyze`` prints)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.align import FaceAligner, check_small_face
from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
from editable_deepsc.guidance.faces.geometry import ATTRIBUTE_UNITS
from editable_deepsc.imaging.io import load_image

ALIGN_ABOVE = 128
"""With ``align=None``, images whose longer side exceeds this are detected and aligned; smaller
ones (64×64 generator faces, aligned crops) go straight into the nets."""

ALIGNED_SIZE = 150
"""Side of the aligned crop the nets see (recognition's input size)."""


@torch.no_grad()
def analyze_image(
    image: torch.Tensor,
    align: bool | None = None,
    mirror: bool = False,
    analyzer: FaceAnalyzer | None = None,
    aligner: FaceAligner | None = None,
    face: int | None = None,
    check_face: bool = False,
) -> dict:
    """Analyse one face image.

    Parameters
    ----------
    image : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1].
    align : bool or None
        Detect and align the face first (teacher framing, :data:`ALIGNED_SIZE` px); ``None``:
        only when the longer side exceeds :data:`ALIGN_ABOVE`.
    mirror : bool
        Average the scores with the mirror image.
    analyzer, aligner : optional
        Shared instances (made if omitted).
    face : int, optional
        Which detected face to align (0 = highest detector score).
    check_face : bool
        Refuse a small image (direct mode) without a face (:func:`check_small_face`).

    Returns
    -------
    dict
        ``mode`` ("aligned" or "direct"), ``input_size`` [w, h], ``detection`` (score, box
        [x, y, w, h] in input pixels, ``faces_found`` and the ``index`` used; aligned mode only), ``identity_embedding_norm``,
        ``age_years``, ``gender``, ``expressions``, ``pose_degrees``, ``landmark_attributes``,
        ``units`` and ``mirror_averaged``.

    Raises
    ------
    NoFaceFound
        Alignment was requested (or implied) and no face was detected, or the face check failed.
    """
    analyzer = analyzer if analyzer is not None else FaceAnalyzer()
    h, w = image.shape[-2:]
    if align is None:
        align = max(h, w) > ALIGN_ABOVE
    out: dict = {"mode": "aligned" if align else "direct", "input_size": [int(w), int(h)]}
    if align:
        aligner = aligner if aligner is not None else FaceAligner(analyzer)
        found = aligner.align(image, size=ALIGNED_SIZE, framing="teacher", face=int(face or 0))
        out["detection"] = {"score": found.detection.score, "box": [float(v) for v in found.detection.box],
                            "faces_found": found.faces_found, "index": found.index}
        image = found.image
    elif check_face:
        if face:
            raise BadInput(f"--face {face}: a {int(w)}x{int(h)} image analysed directly holds one face (use 0)")
        check_small_face(image, aligner if aligner is not None else FaceAligner(analyzer))
    out.update(analyzer(image, mirror=mirror).to_json(0))
    out["units"] = {"age_years": "years", "gender.p_male": "probability", "expressions": "probability",
                    **{k: v for k, v in ATTRIBUTE_UNITS.items()}}  # fmt: skip
    return out


def analyze_file(path: str | os.PathLike, align: bool | None = None, mirror: bool = False,
                 face: int | None = None) -> dict:
    """Read an image file, check it for a face and :func:`analyze_image` it; adds ``file`` to the result.

    Raises
    ------
    ImageError
        Unreadable or too small image.
    NoFaceFound
        See :func:`analyze_image`.
    """
    image = load_image(path)
    result = {"file": Path(path).name}
    result.update(analyze_image(image, align=align, mirror=mirror, face=face, check_face=True))
    return result

"""One-image face analysis report (what ``edsc analyze`` prints)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from editable_deepsc.guidance.faces.align import FaceAligner
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

    Returns
    -------
    dict
        ``mode`` ("aligned" or "direct"), ``input_size`` [w, h], ``detection`` (score, box
        [x, y, w, h] in input pixels; aligned mode only), ``identity_embedding_norm``,
        ``age_years``, ``gender``, ``expressions``, ``pose_degrees``, ``landmark_attributes``,
        ``units`` and ``mirror_averaged``.

    Raises
    ------
    NoFaceFound
        Alignment was requested (or implied) and no face was detected.
    """
    analyzer = analyzer if analyzer is not None else FaceAnalyzer()
    h, w = image.shape[-2:]
    if align is None:
        align = max(h, w) > ALIGN_ABOVE
    out: dict = {"mode": "aligned" if align else "direct", "input_size": [int(w), int(h)]}
    if align:
        aligner = aligner if aligner is not None else FaceAligner(analyzer)
        face = aligner.align(image, size=ALIGNED_SIZE, framing="teacher")
        out["detection"] = {"score": face.detection.score, "box": [float(v) for v in face.detection.box]}
        image = face.image
    out.update(analyzer(image, mirror=mirror).to_json(0))
    out["units"] = {"age_years": "years", "gender.p_male": "probability", "expressions": "probability",
                    **{k: v for k, v in ATTRIBUTE_UNITS.items()}}  # fmt: skip
    return out


def analyze_file(path: str | os.PathLike, align: bool | None = None, mirror: bool = False) -> dict:
    """Read an image file and :func:`analyze_image` it; adds ``file`` to the result.

    Raises
    ------
    ImageError
        Unreadable or too small image.
    NoFaceFound
        See :func:`analyze_image`.
    """
    image = load_image(path)
    result = {"file": Path(path).name}
    result.update(analyze_image(image, align=align, mirror=mirror))
    return result

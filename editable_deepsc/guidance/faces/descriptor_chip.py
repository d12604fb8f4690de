"""The face chip the identity descriptor is computed on, from 68 landmarks.

face-api's recognition net (dlib's ResNet-34 descriptor) was trained on tight 150×150 chips
centred between the eyes and the mouth. Embedding a whole FFHQ-framed crop instead (hair,
background, and on small photos much reflect-padding) blurs the identity: on the 400 Olivetti
faces the FFHQ framing separates people far worse than this chip (``edsc bench identity``,
``docs/identity.md``). The chip is the FFHQ square scaled by 0.7 and centred half-way from the
eyes' midpoint to the mouth (:data:`~.align.FRAMINGS` ``"descriptor"``), the middle of the plateau
that ``edsc bench identity --grid`` measures on Olivetti (``docs/identity.md``).
"""

from __future__ import annotations

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.align import face_quad, warp_quad
from editable_deepsc.guidance.faces.recognition import INPUT_SIZE

CHIP_FRAMING = "descriptor"
"""The :data:`~.align.FRAMINGS` entry of the chip."""


def descriptor_chips(images: torch.Tensor, landmarks: torch.Tensor, size: int = INPUT_SIZE,
                     framing: str | tuple[float, float] = CHIP_FRAMING) -> torch.Tensor:
    """Cut the descriptor chip of each face.

    Parameters
    ----------
    images : torch.Tensor
        (N, 3, H, W) float32 in [-1, 1] (photos or aligned crops; any size).
    landmarks : torch.Tensor
        (N, 68, 2) ``(x, y)`` pixels of ``images``.
    size : int
        Chip side (150: the recognition net's input, so no further resize).
    framing : str or (float, float)
        Any :data:`~.align.FRAMINGS` name (``"ffhq"`` to compare with the full FFHQ framing), or
        ``(scale, shift)`` (see :func:`framed_quads`).

    Returns
    -------
    torch.Tensor
        (N, 3, size, size) float32 in [-1, 1]; reflect-padded where the chip leaves the image.
    """
    check_faces(images, landmarks)
    quads = framed_quads(landmarks, framing)
    return torch.cat([warp_quad(images[k : k + 1].float(), quads[k], size) for k in range(len(images))])


def check_faces(images: torch.Tensor, landmarks: torch.Tensor) -> None:
    """Raise :class:`BadInput` unless ``images`` is (N, 3, H, W) and ``landmarks`` (N, 68, 2)."""
    if images.dim() != 4 or landmarks.dim() != 3 or landmarks.shape[1:] != (68, 2) or len(images) != len(landmarks):
        raise BadInput(f"expected (N, 3, H, W) images and (N, 68, 2) landmarks, got "
                       f"{tuple(images.shape)} and {tuple(landmarks.shape)}")


def framed_quads(landmarks: torch.Tensor, framing: str | tuple[float, float]) -> torch.Tensor:
    """(N, 4, 2) quads for a framing name or an explicit ``(scale, shift)`` of the FFHQ square.

    ``(scale, shift)``: the FFHQ square's side times ``scale``, centred ``shift``·eye-to-mouth below
    the eyes' midpoint (``(1.0, 0.1)`` is the FFHQ square itself).
    """
    lm = landmarks.double()
    if isinstance(framing, str):
        return face_quad(lm, framing)
    scale, shift = (float(v) for v in framing)
    if not 0.1 <= scale <= 3.0:
        raise BadInput(f"framing scale must be in [0.1, 3], got {scale}")
    eye_mid = (lm[:, 36:42].mean(dim=1) + lm[:, 42:48].mean(dim=1)) / 2
    eye_to_mouth = (lm[:, 48] + lm[:, 54]) / 2 - eye_mid
    ffhq = face_quad(lm, "ffhq")
    old_c, new_c = eye_mid + 0.1 * eye_to_mouth, eye_mid + shift * eye_to_mouth
    return (ffhq - old_c.unsqueeze(1)) * scale + new_c.unsqueeze(1)

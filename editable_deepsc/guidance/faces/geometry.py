"""Face attributes derived from 68 landmarks (iBUG 300-W order): head pose, mouth, eyes, smile.

Every function takes landmarks as a float tensor (N, 68, 2) of ``(x, y)`` image coordinates
(x to the right, y down; any unit, e.g. pixels) and returns a differentiable (N,) float tensor.

Conventions ("left"/"right" are the *image's* left and right, not the subject's):

=============== =========================================================== ===============
attribute       definition                                                  unit
=============== =========================================================== ===============
roll            angle of the line from the image-left eye centre to the      degrees
                image-right eye centre; positive = clockwise on screen
                (the image-right eye is lower)
yaw             head turn; positive = the face turns towards the image's      degrees
                right (the nose moves right of the eyes' midpoint)
pitch           head tilt; positive = looking up (the nose tip rises          degrees
                towards the eye line)
mouth_open      mean inner-lip gap / mouth width (0 = closed, ~0.3–0.5 wide   ratio
                open)
eyes_open       eye aspect ratio: mean lid gap / eye width over both eyes     ratio
                (~0.25–0.35 open, < 0.15 closed)
smile_width     mouth width (corner to corner) / inter-ocular distance        ratio
=============== =========================================================== ===============

Yaw and pitch come from simple rigid-head models, applied to landmarks that are first de-rolled
(rotated so that the eye line is horizontal):

* yaw — a vertical cylinder: the jaw contour (points 0–16) outlines the head, whose half-width
  is half the distance between points 0 and 16; a turn by ψ moves the nose tip sideways from the
  contour's mean by ``half_width · sin ψ``, so ``ψ = asin(offset / half_width)``.
* pitch — the nose tip sits :data:`NOSE_DEPTH` inter-ocular distances (IOD) in front of the eye
  centres and :data:`NOSE_DROP` IODs below them; a tilt by θ makes the eye-to-nose drop
  ``IOD·(NOSE_DROP·cos θ − NOSE_DEPTH·sin θ)`` (IOD corrected for yaw by ``1 / cos ψ``).

So angles are approximate degrees: monotone in the true angle and ≈ 0 for a frontal face, good
for guidance and ranking, not a calibrated pose estimator. ``docs/faces.md`` reports how
consistent each attribute is between a face and its mirror image.
"""

from __future__ import annotations

import math

import torch

NOSE_DEPTH = 0.4
"""Depth of the nose tip in front of the eye centres, in inter-ocular distances."""

NOSE_DROP = 0.63
"""Vertical drop from the eye line to the nose tip of a frontal face, in inter-ocular distances
(an anthropometric average; also the median over 200 teacher test faces, so 0° is their typical
tilt)."""

# iBUG 68-point indices (image-left / image-right as seen in the picture)
JAW = slice(0, 17)
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
"""(upper, lower) inner-lip landmark pairs."""
EYE_LID_PAIRS = (((37, 41), (38, 40)), ((43, 47), (44, 46)))
"""Per eye: (upper, lower) lid landmark pairs."""
EYE_CORNERS = ((36, 39), (42, 45))

MIRROR_PERMUTATION: tuple[int, ...] = (
    tuple(range(16, -1, -1))  # jaw
    + tuple(range(26, 16, -1))  # eyebrows
    + (27, 28, 29, 30)  # nose bridge
    + (35, 34, 33, 32, 31)  # nose base
    + (45, 44, 43, 42, 47, 46)  # image-left eye <- image-right eye
    + (39, 38, 37, 36, 41, 40)  # image-right eye <- image-left eye
    + (54, 53, 52, 51, 50, 49, 48)  # outer lip, top
    + (59, 58, 57, 56, 55)  # outer lip, bottom
    + (64, 63, 62, 61, 60)  # inner lip, top
    + (67, 66, 65)  # inner lip, bottom
)
"""Index map of a horizontal flip: landmark ``i`` of a mirrored face is landmark
``MIRROR_PERMUTATION[i]`` of the original (after ``x → width − x``)."""

ATTRIBUTE_UNITS: dict[str, str] = {
    "yaw": "degrees",
    "pitch": "degrees",
    "roll": "degrees",
    "mouth_open": "ratio",
    "eyes_open": "ratio",
    "smile_width": "ratio",
}
"""Every landmark-derived attribute and its unit."""

_EPS = 1e-6


def mirror_landmarks(landmarks: torch.Tensor, width: float) -> torch.Tensor:
    """Landmarks of the horizontally mirrored image.

    Parameters
    ----------
    landmarks : torch.Tensor
        (N, 68, 2) float, ``(x, y)`` in pixels of an image ``width`` wide.
    width : float
        Image width in the same unit (coordinates are continuous: 0 = left edge).

    Returns
    -------
    torch.Tensor
        (N, 68, 2): ``x → width − x`` and the indices permuted so that every landmark keeps its
        meaning (e.g. index 36 stays the image-left eye's outer corner). Applying it twice is the
        identity.
    """
    perm = torch.tensor(MIRROR_PERMUTATION, device=landmarks.device)
    flipped = landmarks[:, perm]
    return torch.stack([width - flipped[..., 0], flipped[..., 1]], dim=-1)


def _dist(landmarks: torch.Tensor, i: int, j: int) -> torch.Tensor:
    return (landmarks[:, i] - landmarks[:, j]).norm(dim=-1)


def eye_centres(landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres (N, 2) of the image-left and image-right eyes (mean of their six points)."""
    return landmarks[:, LEFT_EYE].mean(dim=1), landmarks[:, RIGHT_EYE].mean(dim=1)


def interocular_distance(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the eye centres, (N,), in the landmarks' unit."""
    left, right = eye_centres(landmarks)
    return (right - left).norm(dim=-1)


def roll(landmarks: torch.Tensor) -> torch.Tensor:
    """In-plane head rotation, (N,) degrees; positive = clockwise on screen."""
    left, right = eye_centres(landmarks)
    d = right - left
    return torch.rad2deg(torch.atan2(d[:, 1], d[:, 0]))


def derolled(landmarks: torch.Tensor) -> torch.Tensor:
    """Landmarks rotated about the eyes' midpoint so that the eye line is horizontal, (N, 68, 2)."""
    left, right = eye_centres(landmarks)
    d = right - left
    angle = torch.atan2(d[:, 1], d[:, 0])
    c, s = torch.cos(angle), torch.sin(angle)
    centre = ((left + right) / 2).unsqueeze(1)
    p = landmarks - centre
    x = p[..., 0] * c.unsqueeze(1) + p[..., 1] * s.unsqueeze(1)
    y = -p[..., 0] * s.unsqueeze(1) + p[..., 1] * c.unsqueeze(1)
    return torch.stack([x, y], dim=-1)


def yaw(landmarks: torch.Tensor) -> torch.Tensor:
    """Head turn, (N,) approximate degrees; positive = facing the image's right.

    ``asin(offset / half_width)``: the nose tip's horizontal offset from the mean of the jaw
    contour, over half the contour's width, after de-rolling (see the module docstring).
    """
    return torch.rad2deg(_yaw_radians(derolled(landmarks)))


def _yaw_radians(p: torch.Tensor) -> torch.Tensor:
    half_width = ((p[:, JAW.stop - 1, 0] - p[:, JAW.start, 0]) / 2).clamp_min(_EPS)
    offset = p[:, NOSE_TIP, 0] - p[:, JAW, 0].mean(dim=1)
    return torch.asin((offset / half_width).clamp(-0.99, 0.99))


def pitch(landmarks: torch.Tensor) -> torch.Tensor:
    """Head tilt, (N,) approximate degrees; positive = looking up.

    Solves ``drop / IOD_frontal = NOSE_DROP·cos θ − NOSE_DEPTH·sin θ`` for θ, where ``drop`` is the
    nose tip's distance below the (de-rolled) eye line and ``IOD_frontal`` the inter-ocular distance
    corrected for yaw.
    """
    p = derolled(landmarks)
    iod = interocular_distance(landmarks).clamp_min(_EPS)
    iod_frontal = iod / torch.cos(_yaw_radians(p))
    ratio = p[:, NOSE_TIP, 1] / iod_frontal
    r = math.hypot(NOSE_DROP, NOSE_DEPTH)
    phi = math.atan2(NOSE_DEPTH, NOSE_DROP)
    theta = torch.acos((ratio / r).clamp(-1 + 1e-4, 1 - 1e-4)) - phi
    return torch.rad2deg(theta)


def mouth_open(landmarks: torch.Tensor) -> torch.Tensor:
    """Mouth openness, (N,) ratio: mean inner-lip gap over mouth width (corner to corner)."""
    gap = torch.stack([_dist(landmarks, u, lo) for u, lo in INNER_LIP_PAIRS]).mean(dim=0)
    return gap / _dist(landmarks, MOUTH_LEFT, MOUTH_RIGHT).clamp_min(_EPS)


def eyes_open(landmarks: torch.Tensor) -> torch.Tensor:
    """Eye openness, (N,) ratio: lid gap over eye width (eye aspect ratio), mean of both eyes."""
    ratios = []
    for pairs, (a, b) in zip(EYE_LID_PAIRS, EYE_CORNERS):
        gap = (_dist(landmarks, *pairs[0]) + _dist(landmarks, *pairs[1])) / 2
        ratios.append(gap / _dist(landmarks, a, b).clamp_min(_EPS))
    return (ratios[0] + ratios[1]) / 2


def smile_width(landmarks: torch.Tensor) -> torch.Tensor:
    """Mouth width over inter-ocular distance, (N,) ratio (grows with a broad smile)."""
    return _dist(landmarks, MOUTH_LEFT, MOUTH_RIGHT) / interocular_distance(landmarks).clamp_min(_EPS)


GEOMETRY_FUNCTIONS = {
    "yaw": yaw,
    "pitch": pitch,
    "roll": roll,
    "mouth_open": mouth_open,
    "eyes_open": eyes_open,
    "smile_width": smile_width,
}
"""Attribute name → function of (N, 68, 2) landmarks returning (N,)."""


def landmark_attributes(landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
    """All landmark-derived attributes: name → (N,) tensor (units in :data:`ATTRIBUTE_UNITS`)."""
    return {name: fn(landmarks) for name, fn in GEOMETRY_FUNCTIONS.items()}

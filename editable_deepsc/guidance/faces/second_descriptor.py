"""The second identity descriptor: FaceRes on template-aligned 224×224 chips, cosine distance.

Inversion and editing optimise face-api's descriptor, and an optimised net can be fooled; benches
therefore also report this one, which no loss of the project touches (a MobileNet v1 trained to
identify people, converted from another package: :mod:`~editable_deepsc.guidance.faces.faceres`,
``edsc zoo convert faceres``).

**Crop.** The chip is aligned to the standard five-point face template of ArcFace/InsightFace
(:data:`TEMPLATE_112`: eye centres, nose tip, mouth corners in a 112×112 square), sampled at the
net's 224×224: the least-squares similarity transform maps the five points taken from face-api's
68 landmarks (eye centres = means of 36–41 / 42–47, nose tip 30, mouth corners 48 / 54) onto the
template (:func:`template_quads`, :func:`embedding_chips`). Where the chip leaves the image it is
filled with mid-grey (reflection would paste mirrored half-faces beside tight crops). This square
is larger than face-api's 150×150 descriptor chip (it reaches above the eyebrows; on the
Olivetti faces its side is about three quarters of the FFHQ square's, and its centre nearly the
FFHQ square's), so it cannot be cut from that chip: cut it from the photo or the aligned crop with
the landmarks.

**Distance.** ``1 − cos`` of the pooled features, in [0, 1] (the features are non-negative);
the same-person threshold is the one ``edsc bench identity --descriptor faceres`` measures on
Olivetti at 1% false accepts (:func:`second_descriptor_threshold` reads it from
``docs/identity_faceres.json``).

Usage::

    d2 = SecondDescriptor()                                  # loads the converted net once
    chips_a = embedding_chips(photos, landmarks_photos)      # (N, 3, 224, 224)
    chips_b = embedding_chips(outputs, landmarks_outputs)
    dist = d2.distance(chips_a, chips_b)                     # (N,)
    same = dist < second_descriptor_threshold()
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.guidance.faces.align import warp_quad
from editable_deepsc.guidance.faces.descriptor_chip import check_faces
from editable_deepsc.guidance.faces.faceres import INPUT_SIZE, FaceRes

TEMPLATE_112 = torch.tensor(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=torch.float64,
)
"""ArcFace's 112×112 five-point template ``(x, y)``: left eye, right eye (as seen), nose tip, mouth corners."""
DESCRIPTOR_NAME = "faceres"
"""Name of this descriptor in bench options and result files."""
RESULT_JSON = Path(__file__).resolve().parents[3] / "docs" / "identity_faceres.json"
"""Where ``edsc bench identity --descriptor faceres --out`` keeps the measured threshold."""
PADDING = "zeros"
"""``warp_quad`` fill outside the image: zeros = mid-grey in [-1, 1]."""
MEASURE_COMMAND = "edsc bench identity --descriptor faceres --out docs/identity_faceres.json"


def five_points(landmarks: torch.Tensor) -> torch.Tensor:
    """(N, 68, 2) face-api landmarks → (N, 5, 2) eye centres, nose tip, mouth corners (template order)."""
    lm = landmarks.double()
    return torch.stack([lm[:, 36:42].mean(1), lm[:, 42:48].mean(1), lm[:, 30], lm[:, 48], lm[:, 54]], dim=1)


def similarity_to_template(points: torch.Tensor, template: torch.Tensor = TEMPLATE_112) -> torch.Tensor:
    """Least-squares similarity transforms mapping ``points`` onto ``template``.

    Parameters
    ----------
    points : torch.Tensor
        (N, K, 2) source points (pixels).
    template : torch.Tensor
        (K, 2) target points.

    Returns
    -------
    torch.Tensor
        (N, 2, 3) float64 matrices ``[[a, −b, tx], [b, a, ty]]``: ``template ≈ M @ [x, y, 1]``.
    """
    p = points.double()
    n, k, _ = p.shape
    x, y = p[..., 0], p[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, -y, ones, zeros], dim=-1)  # u = a x − b y + tx
    rows_v = torch.stack([y, x, zeros, ones], dim=-1)  # v = b x + a y + ty
    a_mat = torch.cat([rows_u, rows_v], dim=1)  # (N, 2K, 4)
    t = template.double().to(p.device)
    rhs = torch.cat([t[:, 0], t[:, 1]]).expand(n, 2 * k).unsqueeze(-1)
    sol = torch.linalg.lstsq(a_mat, rhs).solution.squeeze(-1)  # (N, 4)
    a, b, tx, ty = sol.unbind(-1)
    return torch.stack([torch.stack([a, -b, tx], -1), torch.stack([b, a, ty], -1)], dim=1)


def template_quads(landmarks: torch.Tensor) -> torch.Tensor:
    """(N, 4, 2) quads (top-left, bottom-left, bottom-right, top-right, image pixels) of the aligned chip.

    Parameters
    ----------
    landmarks : torch.Tensor
        (N, 68, 2) ``(x, y)`` pixels.
    """
    m = similarity_to_template(five_points(landmarks))
    lin, shift = m[:, :, :2], m[:, :, 2]
    s = 112.0  # the template's square; the chip side only sets the sampling density
    corners = torch.tensor([[0.0, 0.0], [0.0, s], [s, s], [s, 0.0]], dtype=torch.float64)
    # invert u = L p + t  ->  p = L^-1 (u - t)
    inv = torch.linalg.inv(lin)
    return torch.einsum("nij,nkj->nki", inv, corners.unsqueeze(0) - shift.unsqueeze(1))


def embedding_chips(images: torch.Tensor, landmarks: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Cut the ArcFace-aligned chip of each face.

    Parameters
    ----------
    images : torch.Tensor
        (N, 3, H, W) float32 in [-1, 1] (photos or aligned crops; any size).
    landmarks : torch.Tensor
        (N, 68, 2) face-api landmarks ``(x, y)`` in pixels of ``images``.
    size : int
        Chip side (224: the net's input).

    Returns
    -------
    torch.Tensor
        (N, 3, size, size) float32 in [-1, 1]; mid-grey where the chip leaves the image.
    """
    check_faces(images, landmarks)
    quads = template_quads(landmarks)
    return torch.cat([warp_quad(images[k : k + 1].float(), quads[k], size, padding_mode=PADDING)
                      for k in range(len(images))])  # fmt: skip


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 − cos`` between matching rows of (N, D) embeddings → (N,)."""
    return 1.0 - torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=1)


class SecondDescriptor:
    """The converted FaceRes net, loaded once, with its distance.

    Parameters
    ----------
    net : FaceRes, optional
        A net to use (default: the converted one from the zoo, see ``edsc zoo convert faceres``).
    batch : int
        Chips per forward pass.
    """

    def __init__(self, net: FaceRes | None = None, batch: int = 32):
        if net is None:
            from editable_deepsc.guidance.faces.faceres_zoo import load_faceres

            net = load_faceres()
        self.net, self.batch = net, batch

    @torch.no_grad()
    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) chips in [-1, 1] → (N, 1024) unit feature vectors."""
        if chips.dim() != 4 or chips.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise BadInput(f"expected (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) chips (embedding_chips), got {tuple(chips.shape)}")
        dev = next(self.net.parameters()).device
        return torch.cat([self.net(chips[i : i + self.batch].to(dev)).cpu() for i in range(0, len(chips), self.batch)])

    def distance(self, chips_a: torch.Tensor, chips_b: torch.Tensor) -> torch.Tensor:
        """(N,) ``1 − cos`` between the features of matching chips (N, 3, 224, 224)."""
        if chips_a.shape != chips_b.shape:
            raise BadInput(f"chips differ in shape: {tuple(chips_a.shape)} vs {tuple(chips_b.shape)}")
        return cosine_distance(self.embed(chips_a), self.embed(chips_b))


def second_descriptor_distance(chips_a: torch.Tensor, chips_b: torch.Tensor,
                               descriptor: SecondDescriptor | None = None) -> torch.Tensor:
    """(N,) cosine distances of matching chips (:func:`embedding_chips`) under FaceRes.

    Pass ``descriptor`` (a :class:`SecondDescriptor`) when calling repeatedly; without it the net
    is loaded (and sha256-checked) on every call.
    """
    return (descriptor or SecondDescriptor()).distance(chips_a, chips_b)


def second_descriptor_threshold(path: str | Path = RESULT_JSON) -> float:
    """The same-person threshold (cosine distance at 1% false accepts on Olivetti, template chip).

    Raises
    ------
    CheckpointError
        The result file is missing or lacks the number (quoting the command that measures it).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        return float(data["olivetti"]["framings"]["template"]["separation"]["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"no measured threshold of the second descriptor in {p}; fix: {MEASURE_COMMAND}") from None

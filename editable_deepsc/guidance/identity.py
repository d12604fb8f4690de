"""Identity preservation from face-api's recognition net (128-d descriptors).

* :func:`identity_similarity` — cosine similarity of the descriptors (1 = identical), (N,).
* :func:`identity_distance` — Euclidean descriptor distance, face-api's own measure (the same
  person is usually below 0.6), (N,).
* :class:`IdentityLoss` — ``1 − cosine`` to reference images, differentiable, for the editor
  (``λ_ID · (1 − cos(id(G(w)), id(G(w0))))``) and the inversion.

The recognition net reacts to pose and expression too (see ``docs/faces.md`` for measured
distances: same face vs mirror vs unrelated), so the weight of the identity loss has to be
balanced against edit success.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer


def _embed(images: torch.Tensor, analyzer: FaceAnalyzer, mirror: bool) -> torch.Tensor:
    return analyzer(images, heads=("recognition",), mirror=mirror).embedding


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() != 4 or b.dim() != 4:
        raise BadInput(f"expected (N, 3, H, W) images, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] != b.shape[0] and b.shape[0] != 1:
        raise BadInput(f"batch sizes differ: {a.shape[0]} vs {b.shape[0]} (reference may also be a single image)")


def identity_similarity(
    a: torch.Tensor, b: torch.Tensor, analyzer: FaceAnalyzer | None = None, mirror: bool = False
) -> torch.Tensor:
    """Cosine similarity of the identity descriptors of two image batches.

    Parameters
    ----------
    a, b : torch.Tensor
        (N, 3, H, W) float32 in [-1, 1] (``b`` may be a single image, (1, 3, H, W)). Any size;
        64×64 generator faces are resized inside.
    analyzer : FaceAnalyzer, optional
        Analyzer whose recognition net to use (a new one is made, and its net loaded, if omitted).
    mirror : bool
        Average each descriptor with that of the mirrored image.

    Returns
    -------
    torch.Tensor
        (N,) float32 in [-1, 1]; differentiable with respect to both inputs.
    """
    _check_pair(a, b)
    analyzer = analyzer if analyzer is not None else FaceAnalyzer(heads=("recognition",))
    return F.cosine_similarity(_embed(a, analyzer, mirror), _embed(b, analyzer, mirror), dim=1)


def identity_distance(
    a: torch.Tensor, b: torch.Tensor, analyzer: FaceAnalyzer | None = None, mirror: bool = False
) -> torch.Tensor:
    """Euclidean distance of the identity descriptors (face-api's measure; < 0.6 ≈ same person), (N,)."""
    _check_pair(a, b)
    analyzer = analyzer if analyzer is not None else FaceAnalyzer(heads=("recognition",))
    return (_embed(a, analyzer, mirror) - _embed(b, analyzer, mirror)).norm(dim=1)


class IdentityLoss(nn.Module):
    """``1 − cos(id(images), id(reference))`` per image, (N,); 0 = same descriptor.

    Parameters
    ----------
    analyzer : FaceAnalyzer, optional
        Shared analyzer (only its recognition net is used).
    mirror : bool
        Mirror-average the descriptors (steadier, twice the cost).

    Notes
    -----
    The reference descriptors are computed without gradient and cached for the last reference
    tensor (same object, unmodified), so calling the loss every optimisation step with the same
    reference costs one recognition pass per step.

    Examples
    --------
    >>> id_loss = IdentityLoss()
    >>> loss = id_loss(G(w), G(w0)).mean()
    """

    def __init__(self, analyzer: FaceAnalyzer | None = None, mirror: bool = False) -> None:
        super().__init__()
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer(heads=("recognition",))
        self.mirror = mirror
        self._ref: tuple[torch.Tensor, int, torch.Tensor] | None = None

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] → (N, 128) descriptors (differentiable)."""
        return _embed(images, self.analyzer, self.mirror)

    def reference_embedding(self, reference: torch.Tensor) -> torch.Tensor:
        """(N, 128) descriptors of ``reference``, no gradient, cached for the last reference tensor."""
        c = self._ref
        if c is not None and c[0] is reference and c[1] == reference._version:
            return c[2]
        with torch.no_grad():
            e = self.embed(reference)
        self._ref = (reference, reference._version, e)
        return e

    def forward(
        self,
        images: torch.Tensor,
        reference: torch.Tensor | None = None,
        reference_embedding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Identity loss of ``images`` against ``reference`` images or precomputed descriptors.

        Parameters
        ----------
        images : torch.Tensor
            (N, 3, H, W) float32 in [-1, 1].
        reference : torch.Tensor, optional
            (N, 3, H, W) or (1, 3, H, W) reference images.
        reference_embedding : torch.Tensor, optional
            (N, 128) or (1, 128) reference descriptors (instead of ``reference``).

        Returns
        -------
        torch.Tensor
            (N,) float32 in [0, 2], differentiable with respect to ``images``.
        """
        if (reference is None) == (reference_embedding is None):
            raise BadInput("IdentityLoss needs exactly one of reference / reference_embedding")
        if reference is not None:
            _check_pair(images, reference)
            reference_embedding = self.reference_embedding(reference)
        return 1.0 - F.cosine_similarity(self.embed(images), reference_embedding, dim=1)

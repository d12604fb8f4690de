"""The built-in attribute guidance, tuned for the editor's inner loop: one analysis pass per step.

In one step the editor asks, for the same batch of images, for the guidance loss
of each target, the attribute values (stop criterion, keep term) and the identity
loss. :class:`FaceNetGuidance` is :class:`~editable_deepsc.guidance.attributes.AttributeGuidance`
(same losses, goals and measurements) whose face analysis is cached for the last
image tensors it saw, and merged across heads, so all of those come from a single
pass over just the nets needed — about half the cost of separate calls.

Identity: ``identity_loss`` is ``1 − cos`` of the 128-d face-api descriptors
(as :class:`~editable_deepsc.guidance.identity.IdentityLoss`);
``identity_similarity`` the cosine and ``identity_distance`` the Euclidean
distance (face-api's own measure, same person ≲ 0.6).
"""

from __future__ import annotations

import torch

from editable_deepsc.guidance.attributes import HEAD_OF, AttributeGuidance
from editable_deepsc.guidance.faces.analyzer import FaceAnalysis, FaceAnalyzer
from editable_deepsc.guidance.faces.view import FaceView

_FIELD_OF_HEAD = {"recognition": "embedding", "landmarks": "landmarks", "expression": "expression_logits",
                  "age_gender": "age"}  # fmt: skip
_FIELDS = ("embedding", "age", "gender_logit", "expression_logits", "landmarks")


class FaceNetGuidance(AttributeGuidance):
    """:class:`AttributeGuidance` with a per-tensor analysis cache and identity terms.

    Parameters
    ----------
    analyzer : FaceAnalyzer, optional
        Shared analyzer (a fresh one with all heads if omitted).
    mirror : bool
        Mirror-average every analysis (steadier, twice the cost).
    cache_size : int
        How many recent image tensors keep their analysis.
    view : FaceView, optional
        The window of each image the nets read (default the whole image; see
        :func:`~editable_deepsc.guidance.faces.view.view_for_generator`).
    """

    def __init__(self, analyzer: FaceAnalyzer | None = None, mirror: bool = False, cache_size: int = 3,
                 view: FaceView | None = None) -> None:
        super().__init__(analyzer, mirror, view)
        self._cache: list[tuple[torch.Tensor, int, bool, FaceAnalysis]] = []
        self._cache_size = cache_size

    def _heads(self, an: FaceAnalysis) -> set[str]:
        return {h for h, f in _FIELD_OF_HEAD.items() if getattr(an, f) is not None}

    def analyse_heads(self, images: torch.Tensor, heads: set[str]) -> FaceAnalysis:
        """Analysis of ``images`` with at least ``heads``, reusing (and extending) a cached pass."""
        grad = torch.is_grad_enabled()
        for i, (img, ver, g, an) in enumerate(self._cache):
            if img is images and ver == images._version and g == grad:
                missing = heads - self._heads(an)
                if missing:
                    extra = self.analyzer(self.view.crop(images), heads=tuple(sorted(missing)), mirror=self.mirror)
                    for f in _FIELDS:
                        if getattr(extra, f) is not None:
                            setattr(an, f, getattr(extra, f))
                    an._geometry.clear()
                return an
        an = self.analyzer(self.view.crop(images), heads=tuple(sorted(heads)), mirror=self.mirror)
        self._cache.insert(0, (images, images._version, grad, an))
        del self._cache[self._cache_size :]
        return an

    def analyse(self, images: torch.Tensor, attributes: tuple[str, ...] | list[str]) -> FaceAnalysis:
        unknown = [a for a in attributes if a not in HEAD_OF]
        if unknown:
            return super().analyse(images, attributes)  # raises the one-line BadInput
        return self.analyse_heads(images, {HEAD_OF[a] for a in attributes})

    def clear_cache(self) -> None:
        """Drop cached analyses (and the graphs they hold)."""
        self._cache.clear()
        self._ref_cache = None

    def embedding(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 128) face descriptors (cached like the other heads)."""
        return self.analyse_heads(images, {"recognition"}).embedding

    def identity_loss(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) ``1 − cos`` between the descriptors of ``images`` and ``reference`` (no gradient to the reference)."""
        e = self.embedding(images)
        with torch.no_grad():
            r = self.embedding(reference)
        return 1.0 - torch.nn.functional.cosine_similarity(e, r, dim=1)

    @torch.no_grad()
    def identity_similarity(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) cosine similarity of the face descriptors (1 = same descriptor)."""
        return torch.nn.functional.cosine_similarity(self.embedding(images), self.embedding(reference), dim=1)

    def identity_distance(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) Euclidean distance of the face descriptors (face-api: same person ≲ 0.6), detached.

        ``images`` are analysed in the current grad mode so that an editor step
        reuses their cached analysis instead of a second pass; the reference, as
        in :meth:`identity_loss`, without autograd.
        """
        e = self.embedding(images)
        with torch.no_grad():
            r = self.embedding(reference)
        return (e - r).norm(dim=1).detach()

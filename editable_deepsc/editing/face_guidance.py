"""Face-net guidance tuned for the editor's inner loop: one analysis pass per step.

The editor asks, for the same batch of images in one step, for the guidance
loss of each target, the attribute values (stop criterion, keep term) and the
identity loss. :class:`FaceNetGuidance` answers all of them from a single
:class:`~editable_deepsc.guidance.faces.analyzer.FaceAnalyzer` pass over just the
heads needed (cached for the tensor it was computed on), which halves the cost
of a step compared with separate calls.

It implements the :class:`~editable_deepsc.guidance.base.Guidance` protocol plus
``measure`` (:class:`~editable_deepsc.editing.measure.MeasuringGuidance`).

Losses (lower is better), per target ``t`` with sign ``s`` (+1 more, −1 less):

* probability attributes: ``−s · logit P`` (expressions: stable logit from the
  7 logits; gender: ``logit P(male)``);
* continuous attributes: ``−s · v / Δ`` with the unit edit ``Δ`` of
  :data:`~editable_deepsc.editing.criteria.UNIT_EDIT`;
* ``set``: ``((v − amount) / scale)²``.

Identity: ``1 − cos(e(G(w)), e(G(w0)))`` of the 128-d face-api descriptors.
"""

from __future__ import annotations

import torch

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES, SCALE, UNIT_EDIT
from editable_deepsc.guidance.faces.analyzer import FaceAnalysis, FaceAnalyzer, expression_logit
from editable_deepsc.text.targets import EXPRESSIONS, EditTarget, ParsedInstruction

HEAD_OF: dict[str, str] = {
    **{e: "expression" for e in EXPRESSIONS},
    "age": "age_gender",
    "gender": "age_gender",
    "yaw": "landmarks",
    "pitch": "landmarks",
    "mouth_open": "landmarks",
    "eyes_open": "landmarks",
}
"""Which face-api net measures each attribute."""


def _targets(target: ParsedInstruction | EditTarget) -> tuple[EditTarget, ...]:
    return tuple(target.targets) if isinstance(target, ParsedInstruction) else (target,)


class FaceNetGuidance:
    """Attribute guidance, measurements and identity loss from the face-api nets.

    Parameters
    ----------
    analyzer : FaceAnalyzer, optional
        Shared analyzer (a fresh one, no mirroring, is made if omitted).
    """

    attributes: tuple[str, ...] = tuple(HEAD_OF)

    def __init__(self, analyzer: FaceAnalyzer | None = None) -> None:
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer()
        self._cache: tuple[torch.Tensor, int, bool, FaceAnalysis] | None = None
        self._ref_cache: tuple[torch.Tensor, int, torch.Tensor] | None = None

    # ------------------------------------------------------------------ analysis
    def analyse(self, images: torch.Tensor, heads: set[str]) -> FaceAnalysis:
        """Analysis of ``images`` with at least ``heads``; reuses the last pass on the same tensor."""
        c = self._cache
        if c is not None and c[0] is images and c[1] == images._version and c[2] == torch.is_grad_enabled():
            have = c[3]
            missing = {h for h in heads if not _has(have, h)}
            if not missing:
                return have
            extra = self.analyzer(images, heads=tuple(sorted(missing)))
            for name in ("embedding", "age", "gender_logit", "expression_logits", "landmarks"):
                if getattr(extra, name) is not None:
                    setattr(have, name, getattr(extra, name))
            return have
        out = self.analyzer(images, heads=tuple(sorted(heads)))
        self._cache = (images, images._version, torch.is_grad_enabled(), out)
        return out

    def _value(self, an: FaceAnalysis, attribute: str) -> torch.Tensor:
        if attribute in EXPRESSIONS:
            return an.expression(attribute)
        if attribute == "age":
            return an.age
        if attribute == "gender":
            return an.p_male
        return an.geometry(attribute)

    def _drive(self, an: FaceAnalysis, attribute: str) -> torch.Tensor:
        """The unbounded quantity the loss pushes: logit for probabilities, value / Δ otherwise."""
        if attribute in EXPRESSIONS:
            return expression_logit(an.expression_logits, attribute)
        if attribute == "gender":
            return an.gender_logit
        return self._value(an, attribute) / UNIT_EDIT.get(attribute, 1.0)

    # ------------------------------------------------------------------ protocol
    def measure(self, images: torch.Tensor, attributes: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
        """``{attribute: (N,) value}`` in the units of :mod:`editable_deepsc.text.targets`."""
        an = self.analyse(images, {HEAD_OF[a] for a in attributes})
        return {a: self._value(an, a) for a in attributes}

    def loss(
        self, images: torch.Tensor, target: ParsedInstruction | EditTarget, reference: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N,) loss summed over the targets (see the module docstring)."""
        ts = _targets(target)
        an = self.analyse(images, {HEAD_OF[t.attribute] for t in ts})
        total = torch.zeros(images.shape[0], device=images.device)
        for t in ts:
            if t.direction == "set":
                total = total + ((self._value(an, t.attribute) - float(t.amount)) / SCALE[t.attribute]).pow(2)
            else:
                total = total - t.sign * self._drive(an, t.attribute)
        return total

    def score(
        self, images: torch.Tensor, target: ParsedInstruction | EditTarget, reference: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N,) change from ``reference`` in each target's direction (units of the attribute), summed;
        for ``set`` targets minus the distance to the amount. Without reference: the signed value."""
        ts = _targets(target)
        total = torch.zeros(images.shape[0], device=images.device)
        for t in ts:
            v = self.measure(images, (t.attribute,))[t.attribute]
            if t.direction == "set":
                total = total - (v - float(t.amount)).abs()
                continue
            r = self.measure(reference, (t.attribute,))[t.attribute] if reference is not None else 0.0
            total = total + t.sign * (v - r)
        return total

    def identity_loss(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) ``1 − cos`` between the face descriptors of ``images`` and ``reference``."""
        e = self.analyse(images, {"recognition"}).embedding
        c = self._ref_cache
        if c is not None and c[0] is reference and c[1] == reference._version:
            r = c[2]
        else:
            with torch.no_grad():
                r = self.analyzer.embedding(reference)
            self._ref_cache = (reference, reference._version, r)
        return 1.0 - torch.nn.functional.cosine_similarity(e, r, dim=1)

    @torch.no_grad()
    def identity_similarity(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) cosine similarity of the face descriptors (1 = same descriptor)."""
        return torch.nn.functional.cosine_similarity(
            self.analyzer.embedding(images), self.analyzer.embedding(reference), dim=1
        )


def _has(an: FaceAnalysis, head: str) -> bool:
    field = {"recognition": "embedding", "landmarks": "landmarks", "expression": "expression_logits",
             "age_gender": "age"}[head]  # fmt: skip
    return getattr(an, field) is not None

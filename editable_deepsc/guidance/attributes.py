"""Built-in guidance: face-api attribute scores as a differentiable edit objective.

:class:`AttributeGuidance` implements the :class:`~editable_deepsc.guidance.base.Guidance`
protocol (``score``/``loss``) and ``measure`` (raw attribute values) for every attribute of
:mod:`editable_deepsc.text.targets`:

=========== =============================== =========== ==================== ================
attribute   measured by                     unit        drive (loss space)   default step
=========== =============================== =========== ==================== ================
expressions expression net, P(class)        probability logit P              rate 1.5 (see below)
gender      age/gender net, P(male)         probability logit P(male)        rate 1.5 (see below)
age         age/gender net                  years       years                10 years
yaw         landmarks → geometry.yaw        degrees     degrees              15°
pitch       landmarks → geometry.pitch      degrees     degrees              10°
mouth_open  landmarks → geometry.mouth_open ratio       ratio                0.15
eyes_open   landmarks → geometry.eyes_open  ratio       ratio                0.08
=========== =============================== =========== ==================== ================

How a target becomes a goal ``g`` in drive space (``d`` = the drive of the images, ``d0`` that of
the reference images; probabilities are worked in logits so that the gradient does not vanish
when P is near 0 or 1):

* ``more``/``less`` without ``amount``: ``g = d0 ± strength · DEFAULT_STEP``; for probabilities
  the goal is to cover a fraction ``1 − exp(−1.5 · strength)`` of the remaining way to P = 1
  ("more") or P = 0 ("less"): from P0 = 0, "smile" asks for P ≥ 0.78, "smile a bit" (strength
  0.5) for 0.53, "smile a lot" (2.0) for 0.95;
* ``more``/``less`` with ``amount`` (in the attribute's unit, e.g. "20 years older"):
  ``g = drive(value0 ± amount)`` (probabilities clipped to [0.02, 0.98]);
* ``set``: ``g = drive(amount)``; ``strength`` weights the term.

``loss`` (lower is better, (N,)) sums over targets a Huber penalty of the shortfall
``(g − d)/LOSS_SCALE`` — one-sided for ``more``/``less`` (overshooting is free), two-sided for
``set``. ``score`` (higher is better, (N,)) is the mean over targets of the fraction of the
requested change achieved in drive space (0 = as the reference, 1 = goal reached). Without
``reference`` images, the images themselves (detached) serve as reference for the loss, so each
call asks for one more step; ``score`` then returns the signed drive ``±d / LOSS_SCALE``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.view import WHOLE, FaceView
from editable_deepsc.guidance.faces.analyzer import FaceAnalysis, FaceAnalyzer, expression_logit
from editable_deepsc.guidance.identity import IdentityLoss, identity_distance, identity_similarity
from editable_deepsc.text.targets import ATTRIBUTES, EXPRESSIONS, EditTarget, ParsedInstruction

__all__ = ["AttributeGuidance", "IdentityLoss", "identity_similarity", "identity_distance", "HEAD_OF", "UNITS"]

HEAD_OF: dict[str, str] = {
    **{e: "expression" for e in EXPRESSIONS},
    "age": "age_gender",
    "gender": "age_gender",
    "yaw": "landmarks",
    "pitch": "landmarks",
    "mouth_open": "landmarks",
    "eyes_open": "landmarks",
}
"""Attribute → the face-api net that measures it."""

PROBABILITY_ATTRIBUTES: frozenset[str] = frozenset(EXPRESSIONS) | {"gender"}

UNITS: dict[str, str] = {
    **{e: "probability" for e in EXPRESSIONS},
    "gender": "probability (male)",
    "age": "years",
    "yaw": "degrees",
    "pitch": "degrees",
    "mouth_open": "ratio",
    "eyes_open": "ratio",
}
"""Attribute → unit of :meth:`AttributeGuidance.measure` and of ``EditTarget.amount``."""

DEFAULT_STEP: dict[str, float] = {
    **{e: 1.5 for e in EXPRESSIONS},
    "gender": 1.5,
    "age": 10.0,
    "yaw": 15.0,
    "pitch": 10.0,
    "mouth_open": 0.15,
    "eyes_open": 0.08,
}
"""Requested change for ``more``/``less`` at strength 1: in the attribute's unit, or for
probabilities the rate of the fraction ``1 − exp(−rate · strength)`` of the way to 0 or 1."""

LOSS_SCALE: dict[str, float] = {
    **{e: 1.0 for e in EXPRESSIONS},
    "gender": 1.0,
    "age": 5.0,
    "yaw": 5.0,
    "pitch": 5.0,
    "mouth_open": 0.05,
    "eyes_open": 0.03,
}
"""Drive difference that counts as one unit of loss (Huber knee)."""

P_CLIP = 0.02


def _targets(target: ParsedInstruction | EditTarget) -> tuple[EditTarget, ...]:
    if isinstance(target, EditTarget):
        return (target,)
    if isinstance(target, ParsedInstruction):
        if not target.targets:
            raise BadInput(f"instruction {target.text!r} has no edit targets")
        return tuple(target.targets)
    raise BadInput(f"expected an EditTarget or ParsedInstruction, got {type(target).__name__}")


def _logit(p: float) -> float:
    p = min(max(p, P_CLIP), 1.0 - P_CLIP)
    return math.log(p / (1.0 - p))


class AttributeGuidance:
    """Face-attribute guidance from the face-api nets (see the module docstring).

    Parameters
    ----------
    analyzer : FaceAnalyzer, optional
        Shared analyzer (one with all heads is made if omitted; nets load on first use).
    mirror : bool
        Average every measurement with the mirror image (yaw sign-corrected). Steadier on
        64×64 faces — recommended for age and gender — at twice the cost.
    view : FaceView, optional
        The window of each image the nets read (:mod:`~editable_deepsc.guidance.faces.view`;
        default the whole image). Landmarks are then in the window's pixels.

    Attributes
    ----------
    attributes : tuple of str
        Everything :meth:`measure` reports (all of :data:`~editable_deepsc.text.targets.ATTRIBUTES`).

    Examples
    --------
    >>> g = AttributeGuidance()
    >>> t = EditTarget("happy", "more")
    >>> loss = g.loss(images, t, reference=originals)   # (N,), differentiable
    >>> g.measure(images, ["happy", "age"])             # {"happy": (N,), "age": (N,)}
    """

    attributes: tuple[str, ...] = ATTRIBUTES

    def __init__(self, analyzer: FaceAnalyzer | None = None, mirror: bool = False,
                 view: FaceView | None = None) -> None:
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer()
        self.mirror = mirror
        self.view = view if view is not None else WHOLE
        self._ref_cache: tuple[torch.Tensor, int, frozenset[str], FaceAnalysis] | None = None

    # ----------------------------------------------------------------- measuring
    def analyse(self, images: torch.Tensor, attributes: tuple[str, ...] | list[str]) -> FaceAnalysis:
        """Run the nets needed for ``attributes`` on (N, 3, H, W) ``images`` in [-1, 1]."""
        unknown = [a for a in attributes if a not in HEAD_OF]
        if unknown:
            raise BadInput(f"unknown attribute(s) {unknown} (known: {', '.join(HEAD_OF)})")
        heads = tuple(sorted({HEAD_OF[a] for a in attributes}))
        return self.analyzer(self.view.crop(images), heads=heads, mirror=self.mirror)

    @staticmethod
    def value(analysis: FaceAnalysis, attribute: str) -> torch.Tensor:
        """(N,) value of ``attribute`` in its unit (:data:`UNITS`) from an analysis."""
        if attribute in EXPRESSIONS:
            return analysis.expression(attribute)
        if attribute == "gender":
            return analysis.p_male
        if attribute == "age":
            return analysis.require("age")
        return analysis.geometry(attribute)

    @staticmethod
    def drive(analysis: FaceAnalysis, attribute: str) -> torch.Tensor:
        """(N,) the quantity the loss moves: logit P for probabilities, the value otherwise."""
        if attribute in EXPRESSIONS:
            return expression_logit(analysis.require("expression_logits"), attribute)
        if attribute == "gender":
            return analysis.require("gender_logit")
        return AttributeGuidance.value(analysis, attribute)

    def measure(self, images: torch.Tensor, attributes: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
        """Attribute values of ``images``.

        Parameters
        ----------
        images : torch.Tensor
            (N, 3, H, W) float32 in [-1, 1].
        attributes : sequence of str
            Names from :data:`UNITS`.

        Returns
        -------
        dict of str to torch.Tensor
            ``{attribute: (N,) float32}`` in the units of :data:`UNITS`, differentiable.
        """
        an = self.analyse(images, tuple(attributes))
        return {a: self.value(an, a) for a in attributes}

    # ----------------------------------------------------------------- goals
    def _goal(self, t: EditTarget, d0: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
        """Goal in drive space, (N,)."""
        a = t.attribute
        prob = a in PROBABILITY_ATTRIBUTES
        if t.direction == "set":
            amount = float(t.amount)
            if prob and not 0.0 <= amount <= 1.0:
                raise BadInput(f"{a}: a probability must be in [0, 1], got {amount:g}")
            return torch.full_like(d0, _logit(amount) if prob else amount)
        if t.amount is not None:
            goal_value = v0 + t.sign * float(t.amount)
            if prob:
                p = goal_value.clamp(P_CLIP, 1.0 - P_CLIP)
                return torch.log(p) - torch.log1p(-p)
            return goal_value
        if prob:  # move a strength-dependent fraction of the remaining way towards P = 1 (or 0)
            p0 = torch.sigmoid(d0)
            frac = 1.0 - math.exp(-DEFAULT_STEP[a] * t.strength)
            p = p0 + frac * (1.0 - p0) if t.sign > 0 else p0 * (1.0 - frac)
            p = p.clamp(P_CLIP, 1.0 - P_CLIP)
            return torch.log(p) - torch.log1p(-p)
        return d0 + t.sign * t.strength * DEFAULT_STEP[a]

    def _reference(self, images: torch.Tensor, reference: torch.Tensor | None, attrs: tuple[str, ...]) -> FaceAnalysis:
        """Analysis of the reference (no gradient); cached for the last reference tensor, so an
        optimisation loop that passes the same reference every step analyses it once."""
        if reference is None:
            with torch.no_grad():
                return self.analyse(images.detach(), attrs)
        if reference.shape[0] not in (1, images.shape[0]):
            raise BadInput(f"reference batch {reference.shape[0]} does not match images batch {images.shape[0]}")
        heads = frozenset(HEAD_OF[a] for a in attrs)
        c = self._ref_cache
        if c is not None and c[0] is reference and c[1] == reference._version and heads <= c[2]:
            return c[3]
        with torch.no_grad():
            an = self.analyse(reference, attrs)
        self._ref_cache = (reference, reference._version, heads, an)
        return an

    # ----------------------------------------------------------------- protocol
    def loss(
        self, images: torch.Tensor, target: ParsedInstruction | EditTarget, reference: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Guidance loss, (N,), lower is better, differentiable with respect to ``images``.

        Parameters
        ----------
        images : torch.Tensor
            (N, 3, H, W) float32 in [-1, 1].
        target : ParsedInstruction or EditTarget
        reference : torch.Tensor, optional
            (N, 3, H, W) or (1, 3, H, W) unedited images for relative targets.
        """
        ts = _targets(target)
        attrs = tuple(dict.fromkeys(t.attribute for t in ts))
        an = self.analyse(images, attrs)
        need_ref = any(t.direction != "set" for t in ts)
        ref = self._reference(images, reference, attrs) if need_ref else None
        total = images.new_zeros(images.shape[0])
        for t in ts:
            d = self.drive(an, t.attribute)
            d0 = self.drive(ref, t.attribute) if ref is not None else d.detach()
            v0 = self.value(ref, t.attribute) if ref is not None else self.value(an, t.attribute).detach()
            g = self._goal(t, d0, v0)
            gap = (g - d) / LOSS_SCALE[t.attribute]
            if t.direction == "set":
                total = total + t.strength * F.huber_loss(gap, torch.zeros_like(gap), reduction="none", delta=1.0)
            else:
                short = F.relu(t.sign * gap)
                total = total + F.huber_loss(short, torch.zeros_like(short), reduction="none", delta=1.0)
        return total

    def score(
        self, images: torch.Tensor, target: ParsedInstruction | EditTarget, reference: torch.Tensor | None = None
    ) -> torch.Tensor:
        """How far ``images`` went towards the targets, (N,), higher is better.

        With ``reference``: mean over targets of the fraction of the requested change achieved in
        drive space (0 = like the reference, 1 = goal reached; may exceed 1). Without: mean of
        ``±d / LOSS_SCALE`` for ``more``/``less`` and ``−|d − g| / LOSS_SCALE`` for ``set``.
        """
        ts = _targets(target)
        attrs = tuple(dict.fromkeys(t.attribute for t in ts))
        an = self.analyse(images, attrs)
        ref = self._reference(images, reference, attrs) if reference is not None else None
        parts = []
        for t in ts:
            d = self.drive(an, t.attribute)
            scale = LOSS_SCALE[t.attribute]
            if ref is None:
                if t.direction == "set":
                    g = self._goal(t, d.detach(), self.value(an, t.attribute).detach())
                    parts.append(-(d - g).abs() / scale)
                else:
                    parts.append(t.sign * d / scale)
                continue
            d0 = self.drive(ref, t.attribute)
            g = self._goal(t, d0, self.value(ref, t.attribute))
            if t.direction == "set":
                parts.append(1.0 - (d - g).abs() / (d0 - g).abs().clamp_min(0.1 * scale))
            else:
                parts.append((d - d0) / (g - d0).where((g - d0).abs() > 1e-6, torch.full_like(g, t.sign * 1e-6)))
        return torch.stack(parts).mean(dim=0)

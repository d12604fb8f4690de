"""When is an edit target met? Goal values, success criteria and attribute scales.

Every criterion compares the attribute value of the edited image ``v`` with the
value of the original ``v0`` (both measured by the guidance's face nets, units as
in :mod:`editable_deepsc.text.targets`); ``s`` is the effective strength (the
target's strength times the ``strength`` argument of the edit).

Probability attributes (the 7 expressions and ``gender`` = P(male)):

* ``more``: met when ``v >= max(1 - 0.5**s, min(v0 + 0.1·s, 0.95))`` — e.g.
  "more happy" at strength 1 means P(happy) ≥ 0.5 and at least +0.1 above the
  original (capped at 0.95 for faces that already smile);
* ``less``: met when ``v <= min(0.5**s, max(v0 - 0.1·s, 0.05))``;
* an explicit ``amount`` with more/less moves by that much (``v0 ± amount``);
* ``set``: met when ``|v - amount| <= 0.1``.

Continuous attributes (``age`` years, ``yaw``/``pitch`` degrees, ``mouth_open``
and ``eyes_open`` ratios): ``more`` is met when ``v - v0 >= s·Δ``, ``less`` when
``v0 - v >= s·Δ`` (or by ``amount`` when given), ``set`` when
``|v - amount| <= Δ/2``, with the unit edit ``Δ`` of :data:`UNIT_EDIT`.
"""

from __future__ import annotations

import torch

from editable_deepsc.text.targets import EXPRESSIONS, EditTarget

PROBABILITY_ATTRIBUTES: frozenset[str] = frozenset(EXPRESSIONS + ("gender",))
"""Attributes measured as probabilities in [0, 1]."""

UNIT_EDIT: dict[str, float] = {
    "age": 8.0,
    "yaw": 10.0,
    "pitch": 6.0,
    "mouth_open": 0.1,
    "eyes_open": 0.06,
}
"""Change that counts as a strength-1 edit for the continuous attributes (their unit)."""

PROB_STEP = 0.1
"""Minimum change of a probability attribute per unit strength."""

SCALE: dict[str, float] = {**{a: 0.2 for a in PROBABILITY_ATTRIBUTES}, **UNIT_EDIT}
"""Per-attribute scale that normalises the keep term (a change of one scale costs 1)."""

KEEP_DEFAULT: tuple[str, ...] = ("happy", "surprised", "age", "gender", "yaw", "pitch", "mouth_open", "eyes_open")
"""Attributes the keep term watches by default (those the face nets measure reliably)."""

COUPLED: dict[str, frozenset[str]] = {
    **{e: frozenset(EXPRESSIONS + ("mouth_open", "eyes_open")) for e in EXPRESSIONS},
    "mouth_open": frozenset(EXPRESSIONS),
    "eyes_open": frozenset(("surprised", "fearful")),
}
"""Attributes that legitimately move with a named one (not held fixed by the keep term):
expressions share a softmax and change the mouth and eyes."""


def _level(s: float) -> float:
    return 1.0 - 0.5**s


def goal_value(target: EditTarget, v0: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """The value the attribute must reach (more: at least; less: at most; set: about).

    Parameters
    ----------
    target : EditTarget
    v0 : Tensor, float32, shape (N,)
        Attribute value of the original images.
    strength : float
        Extra strength multiplier (applied on top of ``target.strength``).

    Returns
    -------
    Tensor, float32, shape (N,)
    """
    s = float(target.strength) * float(strength)
    a = target.attribute
    if target.direction == "set":
        return torch.full_like(v0, float(target.amount))
    sign = target.sign
    if target.amount is not None:
        return v0 + sign * float(target.amount) * s / float(target.strength)
    if a in PROBABILITY_ATTRIBUTES:
        if sign > 0:
            return torch.maximum(torch.full_like(v0, _level(s)), (v0 + PROB_STEP * s).clamp(max=0.95))
        return torch.minimum(torch.full_like(v0, 1.0 - _level(s)), (v0 - PROB_STEP * s).clamp(min=0.05))
    return v0 + sign * s * UNIT_EDIT.get(a, 1.0)


def tolerance(attribute: str) -> float:
    """Half-width of the band that meets a ``set`` target."""
    return PROB_STEP if attribute in PROBABILITY_ATTRIBUTES else 0.5 * UNIT_EDIT.get(attribute, 1.0)


def target_met(target: EditTarget, v0: torch.Tensor, v: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Whether each edited value ``v`` (N,) meets ``target`` given the original ``v0`` (N,).

    Returns
    -------
    Tensor, bool, shape (N,)
    """
    return meets_goal(target.attribute, target.direction, goal_value(target, v0, strength), v)


def meets_goal(attribute: str, direction: str, goal: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether values ``v`` (N,) meet a goal (N,) of :func:`goal_value`: the test :func:`target_met` makes.

    ``more``: ``v >= goal``; ``less``: ``v <= goal``; ``set``: ``|v - goal| <= tolerance(attribute)``.
    A receiver that was sent the goal (it cannot measure the source) judges with this.

    Returns
    -------
    Tensor, bool, shape (N,)
    """
    if direction == "set":
        return (v - goal).abs() <= tolerance(attribute)
    if direction not in ("more", "less"):
        raise ValueError(f"unknown direction {direction!r}")
    return v >= goal if direction == "more" else v <= goal


def progress(target: EditTarget, v0: torch.Tensor, v: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Signed distance still to go, in units of the attribute's scale (≤ 0 once met), shape (N,)."""
    goal = goal_value(target, v0, strength)
    sc = SCALE.get(target.attribute, 1.0)
    if target.direction == "set":
        return ((v - goal).abs() - tolerance(target.attribute)) / sc
    return (goal - v) * target.sign / sc


def keep_attributes(named: tuple[str, ...] | list[str], watch: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Attributes the keep term holds fixed: ``watch`` minus the named ones and those coupled to them."""
    watch = KEEP_DEFAULT if watch is None else tuple(watch)
    skip = set(named)
    for a in named:
        skip |= COUPLED.get(a, frozenset())
    return tuple(a for a in watch if a not in skip)

"""Reading attribute values out of a guidance object.

The editor's stop criterion and keep term need the *value* of each attribute
(P(happy), age in years, yaw in degrees, ...), differentiably. A guidance that
can provide them implements :class:`MeasuringGuidance` (``measure``); the
built-in :class:`~editable_deepsc.guidance.attributes.AttributeGuidance` does.
Guidance that cannot (CLIP) is still usable: the editor then relies on
:meth:`Guidance.score` and ``EditConfig.score_threshold``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from editable_deepsc.guidance.base import Guidance
from editable_deepsc.text.targets import ATTRIBUTES


@runtime_checkable
class MeasuringGuidance(Protocol):
    """A guidance that also reports raw attribute values.

    Attributes
    ----------
    attributes : tuple of str, optional
        What ``measure`` can report (default: every attribute of
        :data:`editable_deepsc.text.targets.ATTRIBUTES`).

    Methods
    -------
    measure(images, attributes) -> dict[str, Tensor]
        ``images`` float32 (N, 3, H, W) in [-1, 1]; returns, for each requested
        attribute, a float32 tensor (N,) in the attribute's unit (see
        :mod:`editable_deepsc.text.targets`), differentiable w.r.t. ``images``.
    """

    def measure(self, images: torch.Tensor, attributes: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]: ...


def can_measure(guidance: Guidance) -> bool:
    """Whether ``guidance`` reports attribute values (has a callable ``measure``)."""
    return callable(getattr(guidance, "measure", None))


def measurable_attributes(guidance: Guidance) -> tuple[str, ...]:
    """Attributes ``guidance.measure`` reports (its ``attributes`` attribute, else all known ones)."""
    if not can_measure(guidance):
        return ()
    return tuple(getattr(guidance, "attributes", None) or ATTRIBUTES)


def measure_attributes(
    guidance: Guidance, images: torch.Tensor, attributes: tuple[str, ...] | list[str]
) -> dict[str, torch.Tensor]:
    """Attribute values of ``images`` (N, 3, H, W): ``{attribute: (N,) float32}``.

    Raises
    ------
    TypeError
        If ``guidance`` has no ``measure`` method (check :func:`can_measure` first).
    """
    if not attributes:
        return {}
    if not can_measure(guidance):
        raise TypeError(f"{type(guidance).__name__} does not report attribute values")
    out = guidance.measure(images, tuple(attributes))
    return {a: out[a].reshape(images.shape[0]).float() for a in attributes}

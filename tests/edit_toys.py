"""Tiny generator and a differentiable toy guidance for editing tests (no weights needed)."""

from __future__ import annotations

import torch
from torch import nn

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.text.targets import EditTarget, ParsedInstruction


class TinyGenerator(StyleGenerator):
    """w_plus (N, 3, 8) -> images (N, 3, 8, 8): each layer drives a fixed random image basis, tanh."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.z_dim = self.w_dim = 8
        self.num_ws = 3
        self.resolution = 8
        self.name = "tiny"
        g = torch.Generator().manual_seed(seed)
        self.basis = nn.Parameter(torch.randn(self.num_ws, self.w_dim, 3 * 8 * 8, generator=g) * 0.15)
        self.requires_grad_(False)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_w_plus(w_plus)
        x = torch.einsum("nlw,lwp->np", w_plus, self.basis)
        return torch.tanh(x).view(-1, 3, 8, 8)


class ToyGuidance:
    """Readouts of image statistics named like face attributes.

    * ``happy`` = sigmoid(8 · mean of the red channel's top half) (probability)
    * ``yaw`` = 40 · (mean of the left half − mean of the right half) (degrees)
    * ``age`` = 40 + 120 · mean of the green channel (years)
    """

    attributes = ("happy", "yaw", "age")

    def measure(self, images: torch.Tensor, attributes) -> dict[str, torch.Tensor]:
        vals = {
            "happy": torch.sigmoid(8.0 * images[:, 0, :4].mean((1, 2))),
            "yaw": 40.0 * (images[:, :, :, :4].mean((1, 2, 3)) - images[:, :, :, 4:].mean((1, 2, 3))),
            "age": 40.0 + 120.0 * images[:, 1].mean((1, 2)),
        }
        return {a: vals[a] for a in attributes}

    def _value(self, images: torch.Tensor, a: str) -> torch.Tensor:
        v = self.measure(images, (a,))[a]
        if a in PROBABILITY_ATTRIBUTES:
            p = v.clamp(1e-4, 1 - 1e-4)
            return torch.log(p) - torch.log1p(-p)
        return v / 10.0

    def score(self, images, target, reference=None):
        ts = target.targets if isinstance(target, ParsedInstruction) else (target,)
        out = 0.0
        for t in ts:
            v = self.measure(images, (t.attribute,))[t.attribute]
            r = self.measure(reference, (t.attribute,))[t.attribute] if reference is not None else 0.0
            out = out + (v - r) * (t.sign if t.sign else 1)
        return out

    def loss(self, images, target, reference=None):
        ts = target.targets if isinstance(target, ParsedInstruction) else (target,)
        out = 0.0
        for t in ts:
            out = out - t.sign * self._value(images, t.attribute)
        return out


def target(attribute: str, direction: str = "more", strength: float = 1.0) -> EditTarget:
    return EditTarget(attribute, direction, strength)

"""The guidance interface: what the editor optimises.

A guidance object measures, differentiably, how well images satisfy an
instruction's targets. The built-in :class:`AttributeGuidance` uses face
analysis nets; :class:`ClipGuidance` uses a CLIP model (StyleCLIP's loss).
Both fit this protocol, so the editor does not care which it gets.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from editable_deepsc.text.targets import EditTarget, ParsedInstruction


@runtime_checkable
class Guidance(Protocol):
    """Differentiable instruction-satisfaction measure.

    Methods
    -------
    score(images, target, reference=None) -> Tensor[N]
        Higher is better. ``images``: float32 (N, 3, H, W) in [-1, 1].
        ``target``: a :class:`ParsedInstruction` (or a single :class:`EditTarget`).
        ``reference``: the unedited images (N, 3, H, W), needed for relative
        targets ("more", "less") — the score is then the change from the reference
        in the target's direction.
    loss(images, target, reference=None) -> Tensor[N]
        Lower is better; what the editor minimises. Must be differentiable with
        respect to ``images``.
    """

    def score(
        self,
        images: torch.Tensor,
        target: ParsedInstruction | EditTarget,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    def loss(
        self,
        images: torch.Tensor,
        target: ParsedInstruction | EditTarget,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

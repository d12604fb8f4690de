"""A generator seen at one of its exits: the same latents, smaller images, several times cheaper.

The editor, the direction fit and the critic only need images the face nets can read (the
``ffhq`` set reads them at 256 px, its card's ``work_size``). :class:`ExitView` wraps a generator
with exits (:class:`~editable_deepsc.generator.mobile_stylegan.MobileStyleGAN`) so that
``synthesis(w_plus)`` returns ``generator.synthesis(w_plus, size=size)``; everything else —
mapping, ``num_ws``, ``mean_w``, the name the zoo knows it by — is the wrapped generator's. Code
written for any :class:`~editable_deepsc.generator.base.StyleGenerator` runs on it unchanged.
:func:`work_generator` picks the view a model set asks for.
"""

from __future__ import annotations

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator


class ExitView(StyleGenerator):
    """``generator`` synthesising at ``size`` (one of ``generator.sizes``).

    Parameters
    ----------
    generator : StyleGenerator
        A generator whose ``synthesis`` takes ``size=`` (has exits).
    size : int
        Output side; the full resolution is allowed (then this is a plain pass-through).

    Raises
    ------
    BadInput
        ``generator`` has no exit of that size.
    """

    def __init__(self, generator: StyleGenerator, size: int) -> None:
        super().__init__()
        sizes = list(getattr(generator, "sizes", [generator.resolution]))
        if int(size) not in sizes:
            raise BadInput(f"{generator.name} has no {size} px output (sizes: {', '.join(map(str, sizes))})")
        self.base = generator
        self.z_dim, self.w_dim, self.num_ws = generator.z_dim, generator.w_dim, generator.num_ws
        self.resolution = int(size)
        self.name = generator.name

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.base.mapping(z)

    def mean_w(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        return self.base.mean_w(n, seed)

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, size, size) float32, about [-1, 1], from ``w_plus`` (N, num_ws, w_dim)."""
        if self.resolution == self.base.resolution:
            return self.base.synthesis(w_plus)
        return self.base.synthesis(w_plus, size=self.resolution)

    def full(self, w_plus: torch.Tensor) -> torch.Tensor:
        """Full-resolution images of the wrapped generator."""
        return self.base.synthesis(w_plus)


def work_generator(generator: StyleGenerator, size: int | None = None) -> StyleGenerator:
    """``generator`` at the work size of its model set (``size`` overrides; the generator itself when equal).

    The set is the shipped one whose generator ``generator.name`` is (its card's ``work_size``);
    generators outside every set, and sets without a work size, work at full resolution.
    """
    if isinstance(generator, ExitView):
        generator = generator.base
    if size is None:
        from editable_deepsc.zoo.sets import generator_set

        ms = generator_set(generator.name)
        size = None if ms is None else ms.work_size
    if size is None or int(size) == generator.resolution:
        return generator
    return ExitView(generator, int(size))

"""Sample grids from a model set's generator (``edsc sample``)."""

from __future__ import annotations

import math

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator


def load_set_generator(models: str) -> StyleGenerator:
    """The generator of the model set ``models`` (``ffhq``: with its trained exits when registered).

    Raises
    ------
    BadInput
        Unknown set name.
    CheckpointError
        The generator is not converted / trained yet (quoting the fixing command), naming the set.
    """
    from editable_deepsc.generator.loading import load_generator
    from editable_deepsc.zoo.sets import load_set

    ms = load_set(models)
    name = ms.member("generator")
    with ms.member_errors("generator", name):
        from editable_deepsc.generator import ffhq

        if name == ffhq.GENERATOR_NAME:
            ffhq.read_card()  # not converted yet: the error names `edsc zoo convert ffhq`
        return load_generator(name)


def sizes_of(g: StyleGenerator) -> list[int]:
    """Image sides ``g`` can synthesise (its exits and its full resolution)."""
    return list(getattr(g, "sizes", [g.resolution]))


@torch.no_grad()
def sample_images(
    g: StyleGenerator, n: int, truncation: float = 1.0, size: int | None = None, seed: int = 0, batch_size: int = 4
) -> torch.Tensor:
    """``n`` images (n, 3, size, size) in [-1, 1] from ``z`` drawn with ``seed``, truncated around the mean ``w``.

    Raises
    ------
    BadInput
        ``size`` is not one of :func:`sizes_of`.
    """
    size = size or g.resolution
    if size not in sizes_of(g):
        raise BadInput(f"--size {size} is not available for {g.name} (sizes: {sizes_of(g)})")
    z = torch.randn(n, g.z_dim, generator=torch.Generator().manual_seed(seed))
    out = []
    for c in z.split(batch_size):
        w = g.mapping(c)
        if truncation != 1.0:
            m = g.mean_w().to(w)
            w = m + truncation * (w - m)
        wp = g.broadcast(w)
        img = g.synthesis(wp, size=size) if size != g.resolution else g.synthesis(wp)
        out.append(img.clamp(-1, 1))
    return torch.cat(out)


def grid(images: torch.Tensor, cols: int | None = None) -> torch.Tensor:
    """Tile (n, 3, H, W) into one (1, 3, rows*H, cols*W) image (``cols`` default: ceil(sqrt(n))), blank cells at -1."""
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = images.new_full((c, rows * h, cols * w), -1.0)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, r * h : (r + 1) * h, q * w : (q + 1) * w] = images[i]
    return canvas.unsqueeze(0)

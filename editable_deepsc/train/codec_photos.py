"""Inverted real training photos for the semantic codec of a photo model set (``ffhq``).

What the transmitter really sends is the latent of a user's photo (and its edit), not a
mapped ``w``. :func:`photo_pool` gathers W+ inversions of CelebA *training* photos
(000001–000700): encoder inversions, computed here and cached per photo, and hybrid
inversions, read from the same cache when a previous run made them
(``edsc invert``-style refinement costs ~10 s a photo on two cores, so they are made
in the background and used as far as they go).
"""

from __future__ import annotations

from pathlib import Path

import torch

from editable_deepsc.data.celeba import celeba_indices
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.zoo.registry import load_state_dict

#: methods whose cached inversions the pool reads; only ``encoder`` ones are computed on demand
POOL_METHODS: tuple[str, ...] = ("encoder", "hybrid")


def cached_inversion(cache: Path, index: int, method: str, generator_name: str) -> Path:
    """Path of the cached inversion of CelebA photo ``index`` (the photo benches' naming)."""
    return Path(cache) / f"celeba-{index:06d}-{method}-{generator_name}.safetensors"


def photo_pool(
    generator: StyleGenerator,
    cache: str | Path,
    n: int = 700,
    compute_encoder: bool = True,
    progress: bool = True,
) -> tuple[torch.Tensor | None, dict[str, int]]:
    """W+ inversions of the first ``n`` CelebA training photos.

    Parameters
    ----------
    generator : StyleGenerator
        The full generator (its ``name`` keys the cache).
    cache : str or Path
        Directory of per-photo inversions (``celeba-000001-hybrid-<generator>.safetensors`` …).
    n : int
        Photos 000001…n of the training split (at most 700).
    compute_encoder : bool
        Invert the photos without a cached encoder inversion (face detection, alignment and the
        set's encoder; ~0.3 s a photo).
    progress : bool

    Returns
    -------
    pool : Tensor or None
        (M, num_ws, w_dim) float32, encoder inversions first, then hybrid ones; ``None`` if empty.
    counts : dict
        Latents per method.
    """
    cache = Path(cache)
    indices = celeba_indices("train")[: max(0, n)]
    if compute_encoder:
        _invert_missing(generator, cache, indices, progress)
    pools: dict[str, list[torch.Tensor]] = {m: [] for m in POOL_METHODS}
    for method in POOL_METHODS:
        for i in indices:
            p = cached_inversion(cache, i, method, generator.name)
            if p.is_file():
                pools[method].append(load_state_dict(p, verify=False)["w_plus"].float().reshape(
                    1, generator.num_ws, generator.w_dim))
    counts = {m: len(v) for m, v in pools.items()}
    flat = [w for m in POOL_METHODS for w in pools[m]]
    return (torch.cat(flat) if flat else None), counts


def _invert_missing(generator: StyleGenerator, cache: Path, indices: list[int], progress: bool) -> None:
    missing = [i for i in indices if not cached_inversion(cache, i, "encoder", generator.name).is_file()]
    if not missing:
        return
    from editable_deepsc.data.celeba import celeba_jpeg, decode_photo
    from editable_deepsc.eval.photo_edit_bench import inverted_photos
    from editable_deepsc.inversion.encoder import load_encoder
    from editable_deepsc.zoo.sets import generator_set

    encoder = load_encoder(generator_set(generator.name).member("encoder"), generator=generator)
    photos = ((f"celeba-{i:06d}", decode_photo(celeba_jpeg(i))) for i in missing)
    inverted_photos(_Sized(photos, len(missing)), generator, encoder, cache, method="encoder", progress=progress)


class _Sized:
    """An iterable with a length (for the progress bar) that decodes photos one at a time."""

    def __init__(self, items, n: int):
        self.items, self.n = items, n

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return self.n

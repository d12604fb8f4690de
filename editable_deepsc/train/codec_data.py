"""Training latents of the semantic codec: mapped and style-mixed W+ samples, inversions and their edits.

:class:`LatentSampler` draws the batches of :func:`~editable_deepsc.train.codec.train_codec`;
:func:`inversion_pool` inverts teacher *training* faces with the generator's encoder (cached);
:func:`~editable_deepsc.train.codec_photos.photo_pool` gathers inversions of real training photos.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import face_latents, load_teacher, random_train_seeds, teacher_faces
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.zoo import registry


def load_inversion_encoder(generator: StyleGenerator):
    """The inversion encoder for ``generator`` if one is available, else ``None``.

    Returns a callable ``images (N, 3, H, W) in [-1, 1] -> w_plus (N, num_ws, w_dim)``.
    """
    try:
        from editable_deepsc.inversion import load_encoder  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        enc = load_encoder(generator=generator)
    except Exception:  # noqa: BLE001 - no trained encoder for this generator: train without inversions
        return None
    if enc is None:
        return None
    enc = enc.eval().requires_grad_(False)
    return lambda images: enc(images)


@torch.no_grad()
def inversion_pool(
    generator: StyleGenerator, n: int, seed: int, cache: Path | None = None, progress: bool = True
) -> torch.Tensor | None:
    """Encoder inversions of ``n`` teacher *training* faces, (n, num_ws, w_dim) float32, or ``None``.

    Cached in ``cache`` (safetensors) so that a resumed run reuses them.
    """
    from safetensors.torch import load_file

    if n <= 0:
        return None
    if cache is not None and cache.is_file():
        return load_file(str(cache))["w_plus"]
    invert = load_inversion_encoder(generator)
    if invert is None:
        return None
    seeds = random_train_seeds(n, make_generator(derive_seed(seed, "inversion-pool")))
    teacher = load_teacher()
    out = []
    for chunk in tqdm(range(0, n, 64), desc="invert training faces", leave=False, disable=not progress):
        out.append(invert(teacher_faces(seeds[chunk : chunk + 64], teacher)).float())
    w = torch.cat(out)
    if cache is not None:
        registry.save_state_dict({"w_plus": w}, cache)
    return w


def teacher_z(n: int, rng: torch.Generator) -> torch.Tensor:
    """Latent codes of ``n`` random teacher *training* seeds (the faces64 family), (n, z_dim) float32."""
    return face_latents(random_train_seeds(n, rng))


def gaussian_z(z_dim: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    """A ``draw_z`` of ``N(0, I)`` codes of width ``z_dim`` (generators without a seed split, e.g. FFHQ)."""
    return lambda n, rng: torch.randn(n, z_dim, generator=rng)


class LatentSampler:
    """Draws training W+ latents: mapped, style-mixed and (optionally) inverted, some of them edited.

    Parameters
    ----------
    generator : StyleGenerator
    mix_prob : float
        Probability that a generated latent is style-mixed.
    inversions : Tensor or None
        Pool of inverted latents (M, num_ws, w_dim).
    inversion_frac : float
        Fraction of each batch drawn from the pool (0 without a pool).
    draw_z : callable, optional
        ``(n, rng) -> (n, z_dim)`` codes to map (default :func:`teacher_z`).
    edits : Tensor or None
        Edit directions (A, num_ws, w_dim), each scaled to the latents' spread along it.
    edit_frac : float
        Fraction of each batch moved along one random direction by ``α ~ U[-edit_range, edit_range]``
        (what the transmitter sends after an edit; 0 without directions).
    edit_range : float
    """

    def __init__(
        self,
        generator: StyleGenerator,
        mix_prob: float = 0.3,
        inversions: torch.Tensor | None = None,
        inversion_frac: float = 0.3,
        draw_z: Callable[[int, torch.Generator], torch.Tensor] | None = None,
        edits: torch.Tensor | None = None,
        edit_frac: float = 0.0,
        edit_range: float = 1.5,
    ):
        self.generator = generator
        self.mix_prob = mix_prob
        self.inversions = inversions
        self.inversion_frac = inversion_frac if inversions is not None else 0.0
        self.draw_z = draw_z or teacher_z
        self.edits = edits
        self.edit_frac = edit_frac if edits is not None and len(edits) else 0.0
        self.edit_range = edit_range
        #: inversions per method of a photo pool (``{"encoder": .., "hybrid": ..}``), when known
        self.pool_counts: dict[str, int] | None = None

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """``n`` latents (n, num_ws, w_dim) float32, shuffled, drawn with ``rng``."""
        g = self.generator
        n_inv = int(round(n * self.inversion_frac))
        n_gen = n - n_inv
        w_a = g.mapping(self.draw_z(n_gen, rng))
        w_b = g.mapping(self.draw_z(n_gen, rng))
        mixed = torch.rand(n_gen, generator=rng) < self.mix_prob
        cross = torch.where(
            mixed, torch.randint(1, max(g.num_ws, 2), (n_gen,), generator=rng), torch.full((n_gen,), g.num_ws)
        )
        layer = torch.arange(g.num_ws)[None, :, None]
        w = torch.where(layer < cross[:, None, None], w_a[:, None], w_b[:, None])
        if n_inv:
            idx = torch.randint(0, self.inversions.shape[0], (n_inv,), generator=rng)
            w = torch.cat([w, self.inversions[idx]])
        w = w[torch.randperm(n, generator=rng)].float()
        n_edit = int(round(n * self.edit_frac))
        if n_edit:
            which = torch.randint(0, self.edits.shape[0], (n_edit,), generator=rng)
            alpha = (2 * torch.rand(n_edit, generator=rng) - 1) * self.edit_range
            rows = torch.randperm(n, generator=rng)[:n_edit]
            w[rows] = w[rows] + alpha[:, None, None] * self.edits[which]
        return w

"""Training-seed latents and their face-net scores: the data of the direction and critic fits.

:func:`sample_latents` draws W+ latents of a generator from training seeds only
(never a held-out test face); :func:`score_latents` reads the guidance's
attribute values (and, on request, face descriptors) off their images in
batches. ``edsc train directions`` (:mod:`editable_deepsc.train.directions`)
and ``edsc train critic`` (:mod:`editable_deepsc.train.critic_data`) both go
through them.
"""

from __future__ import annotations

import torch

from editable_deepsc.editing.measure import measure_attributes
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import Z_DIM, face_latents, random_train_seeds

EMBEDDING = "embedding"
"""Key of the face descriptors (M, 128) in :func:`score_latents`' result when asked for."""


def _draw_z(generator: StyleGenerator, n: int, rng: torch.Generator, faces: bool) -> torch.Tensor:
    if faces and generator.z_dim == Z_DIM:  # the teacher's faces (training seeds), as the generator was distilled on
        return face_latents(random_train_seeds(n, rng))
    return torch.randn(n, generator.z_dim, generator=rng)


@torch.no_grad()
def sample_latents(
    generator: StyleGenerator, n: int, rng: torch.Generator, mix_prob: float = 0.0, truncation: float = 1.0,
    faces: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Latents for fitting: (n, num_ws, w_dim) float32 on the CPU, ``broadcast(mapping(z))``.

    Parameters
    ----------
    generator : StyleGenerator
    n : int
    rng : torch.Generator
        CPU generator, drawn in a fixed order: ``z``, then (with ``mix_prob > 0``)
        the second ``z``, the mix flags and the crossover layers.
    mix_prob : float
        Probability that a sample is style-mixed: layers from a random crossover
        index on take the ``w`` of a second ``z``.
    truncation : float
        ``w ← mean_w + truncation·(w − mean_w)``.
    faces : bool
        ``z`` of teacher training faces (:func:`~editable_deepsc.generator.teacher.random_train_seeds`)
        when the generator takes the teacher's ``z``; otherwise (and by default) ``z ~ N(0, I)``.
    """
    dev = next(generator.parameters()).device
    z1 = _draw_z(generator, n, rng, faces)
    mixing = mix_prob > 0 and generator.num_ws > 1
    if mixing:
        z2 = _draw_z(generator, n, rng, faces)
        mix = torch.rand(n, generator=rng) < mix_prob
        cross = torch.randint(1, generator.num_ws, (n,), generator=rng)
    w1 = generator.mapping(z1.to(dev)).cpu()
    if truncation != 1.0:
        m = generator.mean_w().cpu()
        w1 = m + truncation * (w1 - m)
    wp = w1[:, None].repeat(1, generator.num_ws, 1)
    if mixing:
        w2 = generator.mapping(z2.to(dev)).cpu()
        if truncation != 1.0:
            w2 = m + truncation * (w2 - m)
        layer = torch.arange(generator.num_ws)[None, :]
        take2 = mix[:, None] & (layer >= cross[:, None])
        wp = torch.where(take2[..., None], w2[:, None].expand_as(wp), wp)
    return wp


@torch.no_grad()
def score_latents(
    generator: StyleGenerator,
    guidance,
    w_plus: torch.Tensor,
    attributes: tuple[str, ...],
    batch_size: int = 64,
    progress: bool = False,
    embedding: bool = False,
) -> dict[str, torch.Tensor]:
    """Attribute values of ``G(w_plus)`` for latents (M, num_ws, w_dim): ``{attribute: (M,) float32}`` on the CPU.

    With ``embedding`` the result also holds the face descriptors ``guidance.embedding(G(w))``,
    (M, 128) float32, under :data:`EMBEDDING`.
    """
    dev = next(generator.parameters()).device
    chunks = list(w_plus.split(batch_size))
    it = chunks
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(chunks, desc="score faces")
    out: dict[str, list[torch.Tensor]] = {a: [] for a in attributes}
    if embedding:
        out[EMBEDDING] = []
    for c in it:
        images = generator.synthesis(c.to(dev))
        v = measure_attributes(guidance, images, attributes)
        for a in attributes:
            out[a].append(v[a].cpu())
        if embedding:
            out[EMBEDDING].append(guidance.embedding(images).float().cpu())
    return {a: torch.cat(v) for a, v in out.items()}

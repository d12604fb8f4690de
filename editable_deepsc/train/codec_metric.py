"""Per-coordinate sensitivities of what the receiver sees, for the codec's latent-space losses.

An error ``δ`` in the codec's projected coordinates changes the image, the face-net
attribute scores and the face descriptor by ``J δ`` to first order (``J`` the
Jacobian of each at the sent latent). The squared change averaged over latents is
``δᵀ E[JᵀJ] δ``. When the coordinates are many (the FFHQ W+ keeps thousands), the full
matrices cost too many vector–Jacobian products to estimate well, and
:func:`diagonal_metrics` keeps their diagonals: ``m_i = E[(Jᵀv)_i²]`` over random
probes ``v``, one product per latent and quantity. The codec then weighs each
coordinate's error by how much the receiver's image, attributes and identity move
with it, at the cost of a latent step. :func:`image_metric` is the full (D, D) pixel
metric, for small latents.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm import tqdm

from editable_deepsc.generator.base import StyleGenerator

#: quantities :func:`diagonal_metrics` can weigh
METRIC_TERMS: tuple[str, ...] = ("pixel", "attribute", "identity")


def diagonal_metrics(
    generator: StyleGenerator,
    codec: Any,
    latents: torch.Tensor,
    rng: torch.Generator,
    guidance: Any = None,
    attributes: dict[str, float] | None = None,
    batch: int = 8,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Diagonals of the pull-back metrics of pixel MSE, attribute scores and face descriptors.

    Parameters
    ----------
    generator : StyleGenerator
        Synthesis the receiver's quality is judged on (e.g. the 256 exit).
    codec : SemanticCodec
        Its :meth:`coordinates` / :meth:`latents` define the coordinates (PCA fitted).
    latents : Tensor
        (M, num_ws, w_dim) float32, where the Jacobians are taken.
    rng : torch.Generator
        Draws the probes.
    guidance : FaceNetGuidance, optional
        Face nets; without them only ``pixel`` is measured.
    attributes : dict of str to float, optional
        Attribute → its spread (the score change that counts as one unit).
    batch : int
    progress : bool

    Returns
    -------
    dict of str to Tensor
        ``pixel`` (per pixel value), ``attribute`` (sum over attributes, in spreads²) and
        ``identity`` (descriptor distance²), each (coords,) float32, mean over latents.
    """
    n_coords = codec.config.coords
    zero = torch.zeros(1, n_coords)
    origin = codec.latents(zero).detach()
    sums = {t: torch.zeros(n_coords, dtype=torch.float64) for t in METRIC_TERMS}
    terms = ["pixel"] + (["attribute"] if guidance is not None and attributes else []) + (
        ["identity"] if guidance is not None else [])
    for chunk in tqdm(latents.split(batch), desc="codec metric", disable=not progress, leave=False):
        delta = torch.zeros(chunk.shape[0], n_coords, requires_grad=True)
        w = chunk + (codec.latents(delta) - origin)
        img = generator.synthesis(w)
        outputs = {"pixel": img.flatten(1) / math.sqrt(img[0].numel())}
        if "attribute" in terms:
            from editable_deepsc.editing.measure import measure_attributes

            values = measure_attributes(guidance, img, tuple(attributes))
            outputs["attribute"] = torch.stack([values[a] / attributes[a] for a in attributes], dim=1)
        if "identity" in terms:
            outputs["identity"] = guidance.embedding(img)
        for i, t in enumerate(terms):
            out = outputs[t]
            v = torch.randn(out.shape, generator=rng)
            (g,) = torch.autograd.grad(out, delta, grad_outputs=v, retain_graph=i < len(terms) - 1)
            sums[t] += g.double().pow(2).sum(0)
        if guidance is not None and hasattr(guidance, "clear_cache"):
            guidance.clear_cache()
    m = latents.shape[0]
    return {t: (sums[t] / m).float() for t in terms}


def image_metric(
    generator: StyleGenerator, codec: Any, sampler: Any, n: int, rng: torch.Generator,
    batch: int = 64,
) -> torch.Tensor:
    """Average pull-back metric of pixel MSE in the codec's projected PCA coordinates.

    ``M = E_w[Jᵀ J] / P`` with ``J`` the Jacobian of ``G`` at ``w`` w.r.t. the
    projected coordinates ``u`` (see :meth:`LatentPCA.project`) and ``P`` the
    number of pixel values, estimated as ``mean g gᵀ`` over ``g = Jᵀ v / √P``,
    ``v ~ N(0, I)``, one vector-Jacobian product per latent. To second order,
    ``MSE(G(w + δ), G(w)) ≈ δᵤᵀ M δᵤ``.

    Returns
    -------
    Tensor, float32, shape (D, D)
    """
    pca = codec.pca
    d = pca.dim
    m = torch.zeros(d, d, dtype=torch.float64)
    done = 0
    while done < n:
        b = min(batch, n - done)
        w = sampler.sample(b, rng)
        u = pca.project(w).detach().requires_grad_(True)
        img = generator.synthesis(pca.unproject(u))
        v = torch.randn(img.shape, generator=rng)
        (g,) = torch.autograd.grad(img, u, grad_outputs=v)
        g = g.double() / math.sqrt(img[0].numel())
        m += g.T @ g
        done += b
    return (m / n).float()

"""Measurements of a generator for its model card: sample grids, proxy FID, the W+ property.

All faces come from the teacher's reserved evaluation seeds
(:data:`~editable_deepsc.generator.teacher.TEST_SEEDS`), at fixed offsets:

=========================  ===========================================  ================
what                       seeds (offset into TEST_SEEDS)               used by
=========================  ===========================================  ================
FID set A (reference)      ``[0, n)``                                    teacher faces
FID set B                  ``[n, 2n)``                                   teacher faces and
                                                                         generator samples
W+ vs w inversion          ``[INVERSION_OFFSET, INVERSION_OFFSET + m)``  teacher faces
sample grid                ``[GRID_OFFSET, GRID_OFFSET + k)``            both
=========================  ===========================================  ================

The FID "floor" is teacher(B) against teacher(A): two disjoint sets of the same
size from the same distribution. A generator's number is generator(z_B)
against teacher(A), so the only difference to the floor is the generator.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import face_latents, random_train_seeds, teacher_faces, test_seeds
from editable_deepsc.inversion.optimize import invert_optimize
from editable_deepsc.metrics.features import EfficientNetFeatures
from editable_deepsc.metrics.image import psnr
from editable_deepsc.metrics.lpips import LPIPS
from editable_deepsc.rng import make_generator

INVERSION_OFFSET = 900_000
GRID_OFFSET = 950_000


def image_grid(images: torch.Tensor, nrow: int, pad: int = 2) -> torch.Tensor:
    """Tile images (N, 3, H, W) in [-1, 1] into one (3, rows*(H+pad)+pad, nrow*(W+pad)+pad) image (white gaps)."""
    if images.dim() != 4 or nrow < 1:
        raise BadInput(f"images must be (N, 3, H, W) and nrow >= 1, got {tuple(images.shape)}, {nrow}")
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    out = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        out[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = images[i]
    return out


@torch.no_grad()
def generate(generator: StyleGenerator, z: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Images (N, 3, R, R) float32 in [-1, 1] of ``generator`` for latents ``z`` (N, z_dim), no truncation."""
    dev = next(generator.parameters()).device
    return torch.cat([generator(c.to(dev)).cpu() for c in z.split(batch_size)])


@torch.no_grad()
def proxy_fid_features(
    images: torch.Tensor, batch_size: int = 50, progress: bool = False, input_size: int = 224
) -> np.ndarray:
    """EfficientNet-Lite0 pooled features (N, 1280) float64 of images (N, 3, H, W) (the FID proxy).

    The features of ``fid-proxy(effnet-lite0)`` (:mod:`editable_deepsc.metrics.fid`):
    images resized to ``input_size`` px (224 in the metric; 64, the faces' own size,
    is 12x cheaper), global-average-pooled head activations.
    """
    from tqdm.auto import tqdm

    net = EfficientNetFeatures(input_size=input_size)
    chunks = list(images.split(batch_size))
    feats = [net.pooled(c).double().numpy() for c in tqdm(chunks, desc="fid-proxy features", disable=not progress)]
    return np.concatenate(feats)


@dataclass
class InversionRow:
    """One row of the W+ vs single-w table (means over the test faces)."""

    generator: str
    space: str
    num_latents: int
    steps: int
    psnr_db: float
    lpips_proxy: float
    seconds_per_image: float
    tie: float = 0.0
    psnr_per_image: list[float] | None = None
    lpips_per_image: list[float] | None = None


def paired_difference(a: list[float], b: list[float]) -> dict:
    """Mean of ``a − b`` over paired images with a 95% t-interval, the share of images where ``a > b``
    and the two-sided sign-test p-value (robust to the heavy tails of per-image differences).

    Returns
    -------
    dict
        ``mean``, ``ci_low``, ``ci_high``, ``share_greater``, ``sign_p``, ``n``.
    """
    x = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if x.size < 2:
        raise BadInput("need at least two paired values")
    from scipy import stats

    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    m = float(x.mean())
    nonzero = int((x != 0).sum())
    sign_p = float(stats.binomtest(int((x > 0).sum()), nonzero, 0.5).pvalue) if nonzero else 1.0
    return {"mean": m, "ci_low": m - half, "ci_high": m + half, "share_greater": float((x > 0).mean()),
            "sign_p": sign_p, "n": int(x.size)}


def inversion_comparison(
    generator: StyleGenerator,
    targets: torch.Tensor,
    steps: int = 200,
    spaces: tuple[str, ...] = ("w", "wplus"),
    lr: float = 0.05,
    seed: int = 0,
    progress: bool = False,
    tie: float = 0.0,
) -> list[InversionRow]:
    """Invert ``targets`` by Adam in each latent space with the same steps; report PSNR and proxy LPIPS.

    Parameters
    ----------
    generator : StyleGenerator
        Frozen generator.
    targets : torch.Tensor
        Float32 (N, 3, R, R) in [-1, 1].
    steps : int
        Adam steps per space (same for every space).
    spaces : tuple of str
        ``"w"`` (one shared latent) and/or ``"wplus"`` (one per layer).
    lr : float
        Peak learning rate.
    seed : int
        Seed of the optimiser's exploration noise.
    progress : bool
        Progress bars.
    tie : float
        For ``"wplus"``: fraction of the steps with the layers tied (progressive
        untying, :func:`~editable_deepsc.inversion.optimize.invert_optimize`).

    Returns
    -------
    list of InversionRow
    """
    lpips = LPIPS(prefer_standard=False)
    rows = []
    for space in spaces:
        t0 = time.perf_counter()
        res = invert_optimize(generator, targets, steps=steps, space=space, lr=lr, seed=seed, progress=progress,
                              tie=tie if space == "wplus" else 0.0)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            p_img = psnr(res.images, targets)
            lp_img = torch.cat([lpips(a, b) for a, b in zip(res.images.split(16), targets.split(16))])
            p, lp = float(p_img.mean()), float(lp_img.mean())
        rows.append(
            InversionRow(
                generator=generator.name,
                space=space,
                num_latents=1 if space == "w" else generator.num_ws,
                steps=steps,
                psnr_db=round(p, 3),
                lpips_proxy=round(lp, 4),
                seconds_per_image=round(seconds / targets.shape[0], 3),
                tie=tie if space == "wplus" else 0.0,
                psnr_per_image=[round(float(v), 3) for v in p_img],
                lpips_per_image=[round(float(v), 4) for v in lp_img],
            )
        )
    return rows


def validation_targets(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` teacher faces from *training* seeds (for choosing settings; never the test faces), (n, 3, 64, 64)."""
    return teacher_faces(random_train_seeds(n, make_generator(seed + 11)))


def select_tie(
    generator: StyleGenerator,
    n: int = 8,
    steps: int = 200,
    grid: tuple[float, ...] = (0.25, 0.5, 0.75),
    lr: float = 0.05,
    seed: int = 0,
) -> dict:
    """Pick the W+ untying fraction with the lowest mean proxy LPIPS on ``n`` training-seed faces.

    Returns
    -------
    dict
        ``tie`` (the choice) and ``candidates``: ``{tie: {"psnr_db", "lpips_proxy"}}``.
    """
    targets = validation_targets(n, seed)
    cands = {}
    for t in grid:
        r = inversion_comparison(generator, targets, steps=steps, spaces=("wplus",), lr=lr, seed=seed, tie=t)[0]
        cands[t] = {"psnr_db": r.psnr_db, "lpips_proxy": r.lpips_proxy}
    best = min(cands, key=lambda t: cands[t]["lpips_proxy"])
    return {"tie": best, "candidates": {str(k): v for k, v in cands.items()}, "faces": n}


def inversion_targets(n: int) -> torch.Tensor:
    """The ``n`` held-out teacher faces of the W+ vs w comparison, (n, 3, 64, 64)."""
    return teacher_faces(test_seeds(n, INVERSION_OFFSET))


def fid_latents(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents of FID sets A and B: (n, 100) each, disjoint evaluation seeds."""
    return face_latents(test_seeds(n, 0)), face_latents(test_seeds(n, n))


def rows_to_dicts(rows: list[InversionRow]) -> list[dict]:
    """Plain dicts for JSON."""
    return [asdict(r) for r in rows]

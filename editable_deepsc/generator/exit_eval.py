"""How close each early exit of the FFHQ generator is to the downsampled full image, and how much faster.

On held-out latents (seeds from :data:`editable_deepsc.train.exits.HELD_OUT_SEED`,
never used in training; the same latent distribution as training: truncation in
[0.5, 1], every second one style-mixed) the full 1024 image is area-downsampled to
each exit's size and compared with the exit's image: PSNR (on [-1, 1], peak 2),
proxy LPIPS (:class:`editable_deepsc.metrics.lpips.LPIPS`, labelled as such) and the
face-api identity-descriptor distance (central 70 % crop; the distance between
*different* held-out faces is reported beside it for scale). Speed: median seconds
per batch-1 synthesis, exits and full image interleaved in the same run.

**Oracle colour diagnosis** (not a result): the PSNR after an affine colour map
(3x4, least squares, fitted *per image against its own target*) is applied to the
exit image. It needs the target, so no exit can reach it; the gap between it and
the plain PSNR says how much of the error is a per-image colour / low-frequency
shift rather than missing detail.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN


def _crop(x: torch.Tensor) -> torch.Tensor:
    s = x.shape[-1]
    a, b = int(round(0.15 * s)), int(round(0.85 * s))
    return x[..., a:b, a:b]


def psnr_db(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (N, C, H, W) images in [-1, 1] (peak-to-peak 2) -> (N,) float32."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def oracle_colour_fit(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image least-squares affine colour map of ``pred`` onto ``target`` (an oracle: it reads the target).

    For each image, ``M`` (3 x 4) minimises ``sum_pixels |M [r, g, b, 1]_pred - [r, g, b]_target|^2``
    (float64 normal equations); the identity map is one candidate, so the fitted
    image is never further from the target than ``pred`` is.

    Parameters
    ----------
    pred, target : torch.Tensor
        (N, 3, H, W) float images of the same shape.

    Returns
    -------
    torch.Tensor
        (N, 3, H, W), dtype of ``pred``: ``pred`` after its own fitted colour map.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target must be (N, C, H, W) of one shape, got {tuple(pred.shape)}, {tuple(target.shape)}")
    n, c = pred.shape[:2]
    x = torch.cat([pred.double().flatten(2), pred.new_ones(n, 1, pred[0, 0].numel(), dtype=torch.float64)], 1)  # (N, C+1, P)
    y = target.double().flatten(2)  # (N, C, P)
    xtx = x @ x.transpose(1, 2)
    xtx = xtx + 1e-9 * xtx.diagonal(dim1=1, dim2=2).mean(1)[:, None, None] * torch.eye(c + 1, dtype=torch.float64)
    m = torch.linalg.solve(xtx, x @ y.transpose(1, 2)).transpose(1, 2)  # (N, C, C+1)
    return (m @ x).reshape(pred.shape).to(pred.dtype)


@torch.no_grad()
def evaluate_exits(
    g: MobileStyleGAN, n: int = 200, batch: int = 4, speed_reps: int = 5, log=print, perceptual: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """PSNR / proxy LPIPS / descriptor distance of every exit vs the downsampled full image, and the speed-up.

    Parameters
    ----------
    perceptual : bool
        Also measure the proxy LPIPS and the face-descriptor distance (``False``:
        PSNR and speed only; those keys are ``None``).

    Returns
    -------
    dict
        ``{"n": n, "seeds": [first, last], "exits": {size: {"psnr_db": mean, "psnr_min_db": ...,
        "psnr_oracle_colour_db": mean PSNR after the per-image oracle colour fit (a diagnosis,
        see :func:`oracle_colour_fit`), "psnr_oracle_colour_min_db": ...,
        "lpips": mean, "lpips_kind": ..., "id_distance": mean, "id_distance_unrelated": mean,
        "seconds": median, "speedup": full / exit}}, "full_seconds": median}``
    """
    from editable_deepsc.train.exits import HELD_OUT_SEED, downsample, latent_for_seed

    sizes = sorted(int(s) for s in g.exits)
    lp = face = None
    if perceptual:
        from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
        from editable_deepsc.metrics.lpips import LPIPS

        lp, face = LPIPS(), FaceAnalyzer(heads=("recognition",))
    keys = ("psnr", "oracle", "lpips", "id", "id_unrelated")
    rows: dict[int, dict[str, list[float]]] = {s: {k: [] for k in keys} for s in sizes}
    t0 = time.time()
    for i0 in range(0, n, batch):
        seeds = list(range(HELD_OUT_SEED + i0, HELD_OUT_SEED + min(n, i0 + batch)))
        wp = torch.stack([latent_for_seed(g, s) for s in seeds])
        full = g.synthesis(wp).clamp(-1, 1)
        for s in sizes:
            target = downsample(full, s)
            pred = g.synthesis(wp, size=s).clamp(-1, 1)
            rows[s]["psnr"] += psnr_db(pred, target).tolist()
            rows[s]["oracle"] += psnr_db(oracle_colour_fit(pred, target).clamp(-1, 1), target).tolist()
            if lp is None or face is None:
                continue
            rows[s]["lpips"] += lp(pred, target).flatten().tolist()
            et, ep = face.embedding(_crop(target)), face.embedding(_crop(pred))
            rows[s]["id"] += (et - ep).norm(dim=1).tolist()
            if len(seeds) > 1:
                rows[s]["id_unrelated"] += (et - et.roll(1, 0)).norm(dim=1).tolist()
        log(f"held-out {i0 + len(seeds)}/{n}  {time.time() - t0:.0f} s")
    wp1 = latent_for_seed(g, HELD_OUT_SEED)[None]
    times: dict[str, list[float]] = {str(s): [] for s in [*sizes, g.resolution]}
    for _ in range(speed_reps + 1):
        for s in [*sizes, g.resolution]:
            t = time.perf_counter()
            g.synthesis(wp1, size=s)
            times[str(s)].append(time.perf_counter() - t)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    full_s = med[str(g.resolution)]
    out: dict[str, Any] = {"n": n, "seeds": [HELD_OUT_SEED, HELD_OUT_SEED + n - 1], "threads": torch.get_num_threads(),
                           "full_seconds": round(full_s, 4), "exits": {}}  # fmt: skip
    for s in sizes:
        r = rows[s]
        mean4 = lambda v: round(statistics.mean(v), 4) if v else None  # noqa: E731
        out["exits"][str(s)] = {
            "psnr_db": round(statistics.mean(r["psnr"]), 2), "psnr_min_db": round(min(r["psnr"]), 2),
            "psnr_oracle_colour_db": round(statistics.mean(r["oracle"]), 2),
            "psnr_oracle_colour_min_db": round(min(r["oracle"]), 2),
            "lpips": mean4(r["lpips"]), "lpips_kind": repr(lp) if lp is not None else None,
            "id_distance": mean4(r["id"]),
            "id_distance_unrelated": round(statistics.mean(r["id_unrelated"]), 4) if r["id_unrelated"] else None,
            "seconds": round(med[str(s)], 4), "speedup": round(full_s / med[str(s)], 2),
        }  # fmt: skip
    return out

"""How close each early exit of the FFHQ generator is to the downsampled full image, and how much faster.

On held-out latents (seeds from :data:`editable_deepsc.train.exits.HELD_OUT_SEED`,
never used in training; the same latent distribution as training: truncation in
[0.5, 1], every second one style-mixed) the full 1024 image is area-downsampled to
each exit's size and compared with the exit's image: PSNR (on [-1, 1], peak 2),
proxy LPIPS (:class:`editable_deepsc.metrics.lpips.LPIPS`, labelled as such) and the
face-api identity-descriptor distance (central 70 % crop; the distance between
*different* held-out faces is reported beside it for scale). Speed: median seconds
per batch-1 synthesis, exits and full image interleaved in the same run.
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


@torch.no_grad()
def evaluate_exits(g: MobileStyleGAN, n: int = 200, batch: int = 4, speed_reps: int = 5, log=print) -> dict[str, Any]:
    """PSNR / proxy LPIPS / descriptor distance of every exit vs the downsampled full image, and the speed-up.

    Returns
    -------
    dict
        ``{"n": n, "seeds": [first, last], "exits": {size: {"psnr_db": mean, "psnr_min_db": ...,
        "lpips": mean, "lpips_kind": ..., "id_distance": mean, "id_distance_unrelated": mean,
        "seconds": median, "speedup": full / exit}}, "full_seconds": median}``
    """
    from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
    from editable_deepsc.metrics.lpips import LPIPS
    from editable_deepsc.train.exits import HELD_OUT_SEED, downsample, latent_for_seed

    sizes = sorted(int(s) for s in g.exits)
    lp = LPIPS()
    face = FaceAnalyzer(heads=("recognition",))
    rows: dict[int, dict[str, list[float]]] = {s: {"psnr": [], "lpips": [], "id": [], "id_unrelated": []} for s in sizes}
    t0 = time.time()
    for i0 in range(0, n, batch):
        seeds = list(range(HELD_OUT_SEED + i0, HELD_OUT_SEED + min(n, i0 + batch)))
        wp = torch.stack([latent_for_seed(g, s) for s in seeds])
        full = g.synthesis(wp).clamp(-1, 1)
        for s in sizes:
            target = downsample(full, s)
            pred = g.synthesis(wp, size=s).clamp(-1, 1)
            mse = (pred - target).pow(2).flatten(1).mean(1)
            rows[s]["psnr"] += (10 * torch.log10(4.0 / mse.clamp_min(1e-12))).tolist()
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
        out["exits"][str(s)] = {
            "psnr_db": round(statistics.mean(r["psnr"]), 2), "psnr_min_db": round(min(r["psnr"]), 2),
            "lpips": round(statistics.mean(r["lpips"]), 4), "lpips_kind": repr(lp),
            "id_distance": round(statistics.mean(r["id"]), 4),
            "id_distance_unrelated": round(statistics.mean(r["id_unrelated"]), 4) if r["id_unrelated"] else None,
            "seconds": round(med[str(s)], 4), "speedup": round(full_s / med[str(s)], 2),
        }  # fmt: skip
    return out

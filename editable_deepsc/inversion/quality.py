"""Reconstruction quality of an inversion: PSNR, SSIM, LPIPS and face identity per image."""

from __future__ import annotations

from typing import Any

import torch

from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
from editable_deepsc.guidance.identity import identity_similarity
from editable_deepsc.metrics.image import psnr, ssim
from editable_deepsc.metrics.lpips import LPIPS

_IDENTITY_UNSET = object()


def identity_similarity_or_none():
    """``(a, b) -> (N,)`` cosine similarity of face-api identity descriptors, or None if unavailable.

    The returned function shares one face analyzer between calls.
    """
    try:
        analyzer = FaceAnalyzer(heads=("recognition",))
    except Exception:  # noqa: BLE001 - optional component (module or weights missing)
        return None

    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return identity_similarity(a, b, analyzer=analyzer)

    return similarity


@torch.no_grad()
def reconstruction_stats(
    recon: torch.Tensor, target: torch.Tensor, lpips_metric: Any | None = None, identity: Any = _IDENTITY_UNSET
) -> list[dict[str, Any]]:
    """Per-image quality of ``recon`` against ``target``.

    Parameters
    ----------
    recon, target : torch.Tensor
        Float32 (N, 3, H, W) in [-1, 1].
    lpips_metric : editable_deepsc.metrics.lpips.LPIPS, optional
        Reused between calls (construction loads the backbone once).
    identity : callable or None, optional
        ``(a, b) -> (N,)`` identity similarity; by default the face-api one when present.

    Returns
    -------
    list of dict
        ``psnr``, ``ssim``, ``lpips``, ``lpips_metric``, ``lpips_is_proxy``, ``identity`` per image.
    """
    metric = lpips_metric if lpips_metric is not None else LPIPS()
    identity = identity_similarity_or_none() if identity is _IDENTITY_UNSET else identity
    p, s, lp = psnr(recon, target), ssim(recon, target), metric(recon, target)
    ids = None
    if identity is not None:
        try:
            ids = identity(recon, target).reshape(-1).float()
        except Exception:  # noqa: BLE001 - identity is best-effort (e.g. no face detected)
            ids = None
    return [
        {
            "psnr": float(p[i]),
            "ssim": float(s[i]),
            "lpips": float(lp[i]),
            "lpips_metric": metric.name,
            "lpips_is_proxy": bool(metric.is_proxy),
            "identity": None if ids is None else float(ids[i]),
        }
        for i in range(recon.shape[0])
    ]


__all__ = ["identity_similarity_or_none", "reconstruction_stats"]

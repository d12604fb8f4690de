"""Invert a real photo into a full-size generator (the ``ffhq`` set) and judge it against the photo.

The path of a user's photo through :func:`invert_photo`:

1. :class:`~editable_deepsc.inversion.photo_target.PhotoTarget` -- face detection on the whole
   photo (any size, any aspect ratio), 68 landmarks, FFHQ alignment to ``size`` (256 by default,
   the generator's cheap exit), the alignment transform kept for paste-back;
2. the latent: the encoder's W+ (``encoder``), Adam on W+ from the mean ``w`` (``optimize``), or
   the encoder's W+ refined by Adam (``hybrid``). The optimisation runs at the exit ``size`` with
   pixel + proxy-perceptual + identity loss, the identity measured **against the source photo**
   (:class:`~editable_deepsc.inversion.photo_target.PhotoIdentity`), a latent prior keeping every
   style on the generator's ``w`` distribution, and a stop once the loss stops improving;
3. the reconstruction the receiver would make: the full synthesis (1024 px), scored at ``size``
   against the aligned photo (PSNR, SSIM, LPIPS -- the proxy unless the standard weights are
   installed) and by its descriptor distance to the **photo**, next to the same-person threshold.

Example
-------
>>> out = invert_photo(photo, method="hybrid")
>>> out.stats["identity_distance"], out.stats["same_person"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.inversion.optimize import invert_optimize
from editable_deepsc.inversion.photo_target import PhotoIdentity, PhotoTarget, SecondIdentity, same_person_threshold
from editable_deepsc.metrics.image import psnr, ssim
from editable_deepsc.vocab import INVERSION_METHODS

#: Side at which photos are aligned, optimised and scored (the FFHQ generator's 256 exit).
PHOTO_SIZE = 256
#: Optimisation settings of the photo path per method. Chosen on CelebA train photos
#: (000005, 000006): lr 0.06 with the prior at 0.02 keeps the full 1024 synthesis a plausible face
#: (without the prior, the optimised exit image looks right while the full image washes out).
PHOTO_DEFAULTS: dict[str, dict[str, float]] = {
    "optimize": {"steps": 100, "lr": 0.06, "prior": 0.02, "tie": 0.3, "noise": 0.05, "identity": 0.3,
                 "perceptual": 0.5, "patience": 15},
    "hybrid": {"steps": 30, "lr": 0.03, "prior": 0.02, "tie": 0.0, "noise": 0.0, "identity": 0.3,
               "perceptual": 0.5, "patience": 8},
}


@dataclass
class PhotoInversion:
    """Result of :func:`invert_photo`.

    Attributes
    ----------
    w_plus : torch.Tensor
        (1, num_ws, w_dim) float32.
    image : torch.Tensor
        (1, 3, R, R) float32 in [-1, 1], the full synthesis (what the receiver shows).
    target : PhotoTarget
        The photo, its aligned crop and transform.
    stats : dict
        ``psnr`` (dB), ``ssim``, ``lpips``, ``lpips_metric``, ``lpips_is_proxy`` at ``size`` px;
        ``identity_distance`` (to the photo), ``same_person_threshold``, ``threshold_source``,
        ``same_person``; ``second_identity`` (FaceRes, a descriptor no loss optimises:
        ``{"name", "distance", "threshold", "same_person"}``, or why it is unavailable);
        ``exit_psnr`` (the exit image the optimiser saw); ``seconds``, ``steps``.
    config : dict
        Method, generator, encoder and optimisation settings.
    """

    w_plus: torch.Tensor
    image: torch.Tensor
    target: PhotoTarget
    stats: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def takes_photos(generator: StyleGenerator) -> bool:
    """Whether ``generator`` takes the photo path: a full-size generator with an exit at :data:`PHOTO_SIZE`."""
    return generator.resolution > PHOTO_SIZE and PHOTO_SIZE in getattr(generator, "sizes", ())


def photo_loss(identity: PhotoIdentity | None, settings: dict[str, float]) -> ReconstructionLoss:
    """Pixel MSE + proxy LPIPS + ``1 - cos`` identity to the source photo, weighted by ``settings``."""
    return ReconstructionLoss(pixel=1.0, perceptual=float(settings["perceptual"]),
                              identity=float(settings["identity"]) if identity is not None else 0.0,
                              identity_fn=None if identity is None else identity.loss)


def _check_size(g: StyleGenerator, size: int) -> None:
    sizes = getattr(g, "sizes", [g.resolution])
    if size not in sizes:
        raise BadInput(f"{g.name} cannot synthesise {size} px (sizes: {sizes})")


def _synthesis_at(g: StyleGenerator, w_plus: torch.Tensor, size: int) -> torch.Tensor:
    _check_size(g, size)
    return g.synthesis(w_plus) if size == g.resolution else g.synthesis(w_plus, size=size)


def _second_identity(target: PhotoTarget, scored: torch.Tensor, second: Any) -> dict[str, Any] | None:
    """``{"name", "distance", "threshold", "same_person"}`` of the second descriptor, or why it is absent."""
    from editable_deepsc.errors import CheckpointError

    if second is None:
        return None
    try:
        d2 = SecondIdentity([target], descriptor=None if second == "auto" else second)
    except CheckpointError as e:
        return {"name": "faceres", "distance": None, "unavailable": str(e)}
    dist = float(d2.distance(scored)[0])
    return {"name": d2.name, "distance": dist, "threshold": d2.threshold, "same_person": dist < d2.threshold}


def invert_photo(
    photo: torch.Tensor | PhotoTarget,
    method: str = "hybrid",
    generator: StyleGenerator | None = None,
    encoder: torch.nn.Module | None = None,
    steps: int | None = None,
    size: int = PHOTO_SIZE,
    face: int | None = None,
    seed: int = 0,
    aligner=None,
    lpips_metric: Any | None = None,
    whitening: tuple[torch.Tensor, torch.Tensor] | None = None,
    second: Any = "auto",
    progress: bool = False,
) -> PhotoInversion:
    """Invert one face of a photo into ``generator``'s W+ and score the result against the photo.

    Parameters
    ----------
    photo : torch.Tensor or PhotoTarget
        (1, 3, H, W) float32 in [-1, 1], any size and aspect ratio (or an already aligned target).
    method : {"encoder", "optimize", "hybrid"}
    generator : StyleGenerator, optional
        A generator with an exit at ``size`` (default: the ``ffhq`` set's, with its exits).
    encoder : module, optional
        ``(N, 3, size, size) -> (N, num_ws, w_dim)``; required by ``encoder`` and ``hybrid``.
    steps : int, optional
        Adam steps (defaults: :data:`PHOTO_DEFAULTS`); the optimisation may stop earlier when the
        loss stops improving.
    size : int
        Side of the aligned crop, of the optimisation and of the scores.
    face : int, optional
        Which detected face (0 = highest detector score).
    seed : int
        Seed of the exploration noise.
    aligner : FaceAligner, optional
        Loaded face nets to reuse (its recognition net gives the identity loss and metric).
    lpips_metric : LPIPS, optional
        Metric object to reuse.
    whitening : (torch.Tensor, torch.Tensor), optional
        :func:`~editable_deepsc.inversion.optimize.w_whitening` of ``generator``, to reuse.
    second : SecondDescriptor, "auto" or None
        The second descriptor (FaceRes, optimised by nothing) to report beside face-api's: a loaded
        net, ``"auto"`` (load it if converted, else report ``None`` and why), or ``None`` (skip).
    progress : bool
        tqdm progress bar over the Adam steps.

    Returns
    -------
    PhotoInversion

    Raises
    ------
    NoFaceFound
        No face in the photo.
    BadInput
        Unknown method, bad steps, no exit at ``size``, ``face`` out of range.
    CheckpointError
        ``encoder``/``hybrid`` without an encoder, or an encoder that does not fit the generator.
    """
    from editable_deepsc.guidance.faces.align import FaceAligner
    from editable_deepsc.metrics.lpips import LPIPS

    if method not in INVERSION_METHODS:
        raise BadInput(f"method must be one of {', '.join(INVERSION_METHODS)}, got {method!r}")
    if steps is not None and steps < 0:
        raise BadInput(f"steps must be >= 0, got {steps}")
    if generator is None:
        from editable_deepsc.generator.ffhq import load_ffhq

        generator = load_ffhq()
    g = generator.eval().requires_grad_(False)
    _check_size(g, size)  # refuse a missing exit before any work
    if method != "optimize" and encoder is None:
        raise CheckpointError(f"method {method!r} needs an encoder for {g.name}; use --method optimize, or train "
                              "one with `edsc train encoder --models ffhq`")
    aligner = aligner or FaceAligner()
    target = photo if isinstance(photo, PhotoTarget) else PhotoTarget.from_photo(photo, size, face, aligner)
    if target.crop.shape[-1] != size:
        raise BadInput(f"the target crop is {target.crop.shape[-1]} px, not {size}")
    ident = PhotoIdentity([target], analyzer=aligner.analyzer)

    t0 = time.perf_counter()
    init: str | torch.Tensor = "mean"
    if encoder is not None and method != "optimize":
        with torch.no_grad():
            init = encoder(target.crop).float()
        if tuple(init.shape[1:]) != (g.num_ws, g.w_dim):
            raise CheckpointError(f"the encoder gives W+ {tuple(init.shape[1:])}, {g.name} needs ({g.num_ws}, {g.w_dim})")
    settings = dict(PHOTO_DEFAULTS["hybrid" if method == "hybrid" else "optimize"])
    n_steps = int(settings["steps"] if steps is None else steps)
    taken = 0
    if method == "encoder":
        w_plus = init
    else:
        res = invert_optimize(
            g, target.crop, steps=n_steps, init=init, lr=settings["lr"], loss=photo_loss(ident, settings),
            prior=settings["prior"], whitening=whitening, noise=settings["noise"], tie=settings["tie"], seed=seed,
            size=size, patience=int(settings["patience"]), progress=progress,
        )
        w_plus, taken = res.w_plus, len(res.history)
    seconds = time.perf_counter() - t0

    with torch.no_grad():
        full = g.synthesis(w_plus).clamp(-1, 1)
        scored = F.interpolate(full, size=(size, size), mode="area") if full.shape[-1] != size else full
        exit_img = _synthesis_at(g, w_plus, size).clamp(-1, 1)
        metric = lpips_metric if lpips_metric is not None else LPIPS()
        dist = float(ident.distance(scored)[0])
        second_stats = _second_identity(target, scored, second)
    threshold, source = same_person_threshold()
    stats = {
        "psnr": float(psnr(scored, target.crop)[0]),
        "ssim": float(ssim(scored, target.crop)[0]),
        "lpips": float(metric(scored, target.crop)[0]),
        "lpips_metric": metric.name,
        "lpips_is_proxy": bool(metric.is_proxy),
        "identity_distance": dist,
        "same_person_threshold": threshold,
        "threshold_source": source,
        "same_person": dist < threshold,
        "second_identity": second_stats,
        "exit_psnr": float(psnr(exit_img, target.crop)[0]),
        "seconds": seconds,
        "steps": taken,
        "size": size,
    }
    config = {"method": method, "generator": g.name, "steps": n_steps, "seed": seed,
              **{k: v for k, v in settings.items() if k != "steps"}}
    return PhotoInversion(w_plus=w_plus.detach().float().cpu(), image=full.float().cpu(), target=target,
                          stats=stats, config=config)


__all__ = ["PHOTO_DEFAULTS", "PHOTO_SIZE", "PhotoInversion", "invert_photo", "photo_loss", "takes_photos"]

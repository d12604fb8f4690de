"""One entry point for GAN inversion: ``invert(images, method=...)``.

Methods
-------
``encoder``
    One forward pass of the e4e-style encoder (:mod:`editable_deepsc.inversion.encoder`).
``optimize``
    Adam on W+ from the mean ``w`` (:func:`editable_deepsc.inversion.optimize.invert_optimize`),
    ``steps`` steps (default 200) -- the quality reference.
``hybrid``
    The encoder's W+ refined by a few Adam steps (default 50) without
    exploration noise.

All methods return W+ (N, num_ws, w_dim) float32 and per-image statistics
(:func:`reconstruction_stats`): PSNR, SSIM, LPIPS (the standard metric when its
weights are on disk, else the EfficientNet-Lite0 proxy, labelled by
``lpips_metric``), identity similarity (face-api descriptors, when the face
nets are available) and the seconds spent producing the latent.

Example
-------
>>> out = invert(images, method="hybrid", generator=g, encoder=enc)
>>> out.w_plus.shape, out.stats[0]["psnr"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.inversion.encoder import ENCODER_NAME, E4EEncoder, load_encoder
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.inversion.optimize import invert_optimize
from editable_deepsc.inversion.quality import reconstruction_stats
from editable_deepsc.vocab import INVERSION_METHODS

METHODS = INVERSION_METHODS
#: Defaults per method: Adam steps, peak learning rate, exploration noise, and the fraction of the
#: steps with the W+ layers tied (progressive untying from the mean; 25 %: the value ``edsc zoo card``
#: selects on training-seed faces, see docs/models.md; the hybrid starts from the encoder's W+).
OPTIMIZE_DEFAULTS = {"steps": 200, "lr": 0.2, "noise": 0.05, "tie": 0.25}
HYBRID_DEFAULTS = {"steps": 100, "lr": 0.2, "noise": 0.0, "tie": 0.0}


@dataclass
class InversionOutput:
    """Result of :func:`invert`.

    Attributes
    ----------
    w_plus : torch.Tensor
        Float32 (N, num_ws, w_dim) on CPU.
    images : torch.Tensor
        Float32 (N, 3, R, R) in [-1, 1]: the generator's reconstruction.
    stats : list of dict
        One dict per image: ``psnr`` (dB), ``ssim``, ``lpips``, ``lpips_metric``,
        ``lpips_is_proxy``, ``identity`` (cosine similarity or None), ``seconds``.
    method : str
    seconds : float
        Wall time to produce all latents (excluding metrics).
    config : dict
        Steps, learning rate, generator and encoder names.
    """

    w_plus: torch.Tensor
    images: torch.Tensor
    stats: list[dict[str, Any]] = field(default_factory=list)
    method: str = "encoder"
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)


def _encoder_label(encoder: E4EEncoder | str | Path | None) -> str:
    return "in-memory" if isinstance(encoder, E4EEncoder) else str(encoder or ENCODER_NAME)


def invert(
    images: torch.Tensor,
    method: str = "encoder",
    generator: StyleGenerator | str | None = None,
    encoder: E4EEncoder | str | None = None,
    steps: int | None = None,
    lr: float | None = None,
    loss: ReconstructionLoss | None = None,
    seed: int = 0,
    batch_size: int = 16,
    with_stats: bool = True,
    lpips_metric: Any | None = None,
    progress: bool = False,
) -> InversionOutput:
    """Invert face images into the W+ space of a style-based generator.

    Parameters
    ----------
    images : torch.Tensor
        Float32 (N, 3, R, R) in [-1, 1], already aligned, R = generator resolution.
    method : {"encoder", "optimize", "hybrid"}
    generator : StyleGenerator or str, optional
        The generator or its zoo name (default ``edsc-faces64``).
    encoder : E4EEncoder or str, optional
        The encoder or its zoo name/path (default ``edsc-e4e-faces64``); unused by ``optimize``.
    steps, lr : optional
        Adam steps / peak learning rate (defaults: :data:`OPTIMIZE_DEFAULTS`, :data:`HYBRID_DEFAULTS`).
    loss : ReconstructionLoss, optional
        Optimisation loss (default pixel MSE + 0.5 proxy LPIPS at 64 px).
    seed : int
        Seed of the optimisation noise.
    batch_size : int
        Images processed together (each image is still an independent problem).
    with_stats : bool
        Compute :func:`reconstruction_stats`.
    lpips_metric : LPIPS, optional
        Metric object to reuse.
    progress : bool
        tqdm progress bars.

    Returns
    -------
    InversionOutput

    Raises
    ------
    BadInput
        Unknown method, wrong image shape, bad steps/lr.
    CheckpointError
        Generator or encoder cannot be loaded or do not fit each other.
    """
    if method not in METHODS:
        raise BadInput(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if batch_size < 1:
        raise BadInput(f"batch_size must be >= 1, got {batch_size}")
    g = _generator(generator) if generator is None or isinstance(generator, (str, Path)) else generator
    r = g.resolution
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (3, r, r):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise BadInput(f"images must have shape (N, 3, {r}, {r}) for {g.name}, got {shape}")
    enc = None
    if method in ("encoder", "hybrid"):
        if encoder is None or isinstance(encoder, (str, Path)):
            enc = load_encoder(encoder or ENCODER_NAME, generator=g)
        else:
            enc = encoder
            if (enc.num_ws, enc.w_dim) != (g.num_ws, g.w_dim):
                raise CheckpointError(
                    f"encoder ({enc.num_ws}, {enc.w_dim}) does not fit {g.name} ({g.num_ws}, {g.w_dim})"
                )
        enc.eval()
    defaults = HYBRID_DEFAULTS if method == "hybrid" else OPTIMIZE_DEFAULTS
    steps = defaults["steps"] if steps is None else int(steps)
    lr = defaults["lr"] if lr is None else float(lr)
    dev = next(g.parameters()).device

    ws, recons = [], []
    t_total = 0.0
    for i, chunk in enumerate(images.split(batch_size)):
        chunk = chunk.to(dev, torch.float32)
        t0 = time.perf_counter()
        if enc is not None:
            with torch.no_grad():
                w = enc(chunk.to(next(enc.parameters()).device)).to(dev)
        if method == "encoder":
            t_total += time.perf_counter() - t0
            with torch.no_grad():
                recon = g.synthesis(w)
        else:
            res = invert_optimize(
                g,
                chunk,
                steps=steps,
                space="wplus",
                init=w if method == "hybrid" else "mean",
                lr=lr,
                loss=loss,
                noise=defaults["noise"],
                tie=defaults["tie"],
                seed=seed + i,
                progress=progress,
            )
            t_total += time.perf_counter() - t0
            w, recon = res.w_plus, res.images
        ws.append(w.detach().float().cpu())
        recons.append(recon.detach().float().cpu())
    w_plus, recon = torch.cat(ws), torch.cat(recons)
    stats: list[dict[str, Any]] = []
    if with_stats:
        stats = reconstruction_stats(recon, images.float().cpu(), lpips_metric)
        for s in stats:
            s["seconds"] = t_total / images.shape[0]
    config = {
        "method": method,
        "generator": g.name,
        "encoder": _encoder_label(encoder) if enc is not None else None,
        "steps": 0 if method == "encoder" else steps,
        "lr": None if method == "encoder" else lr,
        "seed": seed,
        "num_ws": g.num_ws,
        "w_dim": g.w_dim,
    }
    return InversionOutput(w_plus=w_plus, images=recon, stats=stats, method=method, seconds=t_total, config=config)


def _generator(generator: str | Path | None) -> StyleGenerator:
    """The generator named ``generator`` (default: the default model set's)."""
    return load_generator(generator)  # None: the default model set's generator

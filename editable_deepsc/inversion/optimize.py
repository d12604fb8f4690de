"""Optimisation-based GAN inversion: Adam on the latent of a frozen generator.

The quality reference of the inversion methods (and the refinement stage of
the *hybrid* method). Two latent spaces:

* ``space="wplus"`` -- one free style vector per synthesis layer,
  ``w_plus`` (N, num_ws, w_dim);
* ``space="w"``     -- a single shared ``w`` (N, w_dim) broadcast to every
  layer (the StyleGAN2 projector's space).

The learning rate follows the StyleGAN2 projector's schedule: a linear
ramp-up over the first ``rampup`` fraction of the steps and a cosine ramp-down
over the last ``rampdown`` fraction. The loss is summed over images, so a batch
is N independent problems: inverting images together or one by one gives the
same latents.

Example
-------
>>> res = invert_optimize(generator, images, steps=200, space="wplus")
>>> res.w_plus.shape          # (N, num_ws, w_dim)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.rng import make_generator

SPACES = ("wplus", "w")


@dataclass
class OptimizeResult:
    """What :func:`invert_optimize` returns.

    Attributes
    ----------
    w_plus : torch.Tensor
        Float32 (N, num_ws, w_dim), detached, on CPU. For ``space="w"`` all
        layers hold the same vector.
    images : torch.Tensor
        Float32 (N, 3, R, R) in [-1, 1]: ``generator.synthesis(w_plus)``.
    loss : torch.Tensor
        Float32 (N,): the final per-image loss.
    history : list of float
        Mean loss per step (length ``steps``).
    seconds : float
        Wall time of the optimisation.
    space : str
        ``"wplus"`` or ``"w"``.
    """

    w_plus: torch.Tensor
    images: torch.Tensor
    loss: torch.Tensor
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    space: str = "wplus"


def lr_at(step: int, steps: int, lr: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """Learning rate of the StyleGAN2-projector schedule at ``step`` (0-based) of ``steps``.

    With ``t = step / steps``: ``lr * up(t) * down(t)``, ``up = min(1, (t + 1/steps) / rampup)``
    (linear warm-up) and ``down = 0.5 - 0.5 cos(pi * min(1, (1 - t) / rampdown))`` (cosine decay).
    """
    t = step / max(steps, 1)
    down = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    up = min(1.0, (t + 1.0 / max(steps, 1)) / rampup) if rampup > 0 else 1.0
    return lr * down * up


@torch.no_grad()
def w_whitening(generator: StyleGenerator, n: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (w_dim,) and whitening matrix (w_dim, w_dim) of the mapped ``w`` (``n`` samples, float32).

    ``(w - mean) @ white`` has identity covariance on the generator's ``w`` distribution, so its
    mean square is about 1 for a typical ``w`` and grows fast off the distribution: the latent
    prior of :func:`invert_optimize`.
    """
    dev = next(generator.parameters()).device
    z = torch.randn(n, generator.z_dim, generator=make_generator(seed)).to(dev)
    w = torch.cat([generator.mapping(c) for c in z.split(1024)]).double()
    mean = w.mean(0)
    cov = torch.cov((w - mean).T) + 1e-6 * torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
    evals, evecs = torch.linalg.eigh(cov)
    white = evecs @ torch.diag(evals.clamp_min(1e-8).rsqrt()) @ evecs.T
    return mean.float(), white.float()


@torch.no_grad()
def w_std(generator: StyleGenerator, n: int = 4096, seed: int = 0) -> float:
    """Spread of ``w`` around :meth:`~StyleGenerator.mean_w`: ``sqrt(E ||w - mean||^2)`` over ``n`` samples.

    Scales the exploration noise of :func:`invert_optimize`.
    """
    dev = next(generator.parameters()).device
    z = torch.randn(n, generator.z_dim, generator=make_generator(seed)).to(dev)
    w = torch.cat([generator.mapping(c) for c in z.split(1024)])
    return float((w - generator.mean_w(n, seed).to(w)).pow(2).sum(1).mean().sqrt())


def _initial_latent(
    generator: StyleGenerator, n: int, init: str | torch.Tensor, space: str, device: torch.device
) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        w = init.detach().to(device=device, dtype=torch.float32)
        if w.dim() == 2:
            w = generator.broadcast(w)
        generator.check_w_plus(w)
        if w.shape[0] != n:
            raise BadInput(f"init has {w.shape[0]} latents for {n} images")
    elif init == "mean":
        w = generator.broadcast(generator.mean_w().to(device).expand(n, -1))
    else:
        raise BadInput(f"init must be 'mean' or a latent tensor, got {init!r}")
    w = w.clone()
    return w.mean(1) if space == "w" else w


def invert_optimize(
    generator: StyleGenerator,
    images: torch.Tensor,
    steps: int = 200,
    space: str = "wplus",
    init: str | torch.Tensor = "mean",
    lr: float = 0.2,
    loss: ReconstructionLoss | None = None,
    rampup: float = 0.05,
    rampdown: float = 0.25,
    latent_l2: float = 0.0,
    prior: float = 0.0,
    whitening: tuple[torch.Tensor, torch.Tensor] | None = None,
    noise: float = 0.05,
    noise_ramp: float = 0.75,
    tie: float = 0.0,
    seed: int = 0,
    progress: bool = False,
    size: int | None = None,
    patience: int = 0,
    min_delta: float = 1e-3,
) -> OptimizeResult:
    """Invert ``images`` into ``generator``'s latent space by Adam on the latent.

    Parameters
    ----------
    generator : StyleGenerator
        Frozen generator (its parameters are not updated; gradients only reach the latent).
    images : torch.Tensor
        Float32 (N, 3, R, R) in [-1, 1], R = ``generator.resolution``.
    steps : int
        Adam steps (>= 0; 0 returns the initial latent).
    space : {"wplus", "w"}
        Per-layer styles or one shared ``w``.
    init : "mean" or torch.Tensor
        Start at the generator's mean ``w`` in every layer, or at a given
        latent (N, num_ws, w_dim) or (N, w_dim) (e.g. the encoder's output).
    lr : float
        Peak learning rate.
    loss : ReconstructionLoss, optional
        Per-image loss; default pixel MSE + 0.5 * proxy LPIPS (64 px).
    rampup, rampdown : float
        Fractions of ``steps`` for the linear warm-up and the cosine decay.
    latent_l2 : float
        Weight of ``||w - w_init||^2 / w_dim`` (keeps refinement near its start).
    prior : float
        Weight of the latent prior: the mean square of the whitened styles
        (:func:`w_whitening`; about 1 on the mapped distribution). Keeps each style where the
        generator was trained, which matters most at an exit, whose head was fitted only there.
    whitening : (torch.Tensor, torch.Tensor), optional
        ``w_whitening(generator)`` computed once by the caller (it maps 10,000 z) to reuse it.
    noise : float
        Exploration noise added to the latent before synthesis, as a fraction
        of :func:`w_std`, decaying quadratically to 0 at ``noise_ramp`` of the
        steps (as in the StyleGAN2 projector). It also moves the start off
        dead points such as the DCGAN's ``z = 0``, where every ReLU is off.
    noise_ramp : float
        Fraction of the steps after which the noise is 0.
    tie : float
        ``space="wplus"`` only: fraction of the steps during which the layers
        move together (the gradient is averaged over layers, so a tied start
        stays tied and the steps are those of single-``w`` optimisation); the
        layers are free for the rest -- progressive untying, as in e4e's
        progressive training. 0: free from the first step.
    seed : int
        Seed of the noise.
    progress : bool
        Show a tqdm progress bar.
    size : int, optional
        Optimise at this output side of a generator with early exits (e.g. 256 on the FFHQ
        generator: ``synthesis(w_plus, size=256)``, several times cheaper than 1024); ``images``
        must then be ``size`` x ``size``. ``None``: the generator's full resolution. The styles
        the exit's trunk does not run (``generator.styles_seen(size)`` on) keep their initial
        offset to the last one it runs and move with it, instead of drifting where the exit
        cannot see them.

    patience : int
        Stop early once the exploration noise is off and no image's loss has dropped by more than
        ``min_delta`` (relative) for ``patience`` steps -- the reconstruction and the identity
        have stopped improving. 0: run all ``steps``.
    min_delta : float
        Relative improvement that counts (see ``patience``).

    Returns
    -------
    OptimizeResult
        The latent with the lowest loss seen once the exploration noise is
        off (the final one if that is best), so refinement never ends worse
        than its noise-free start.

    Raises
    ------
    BadInput
        Wrong image shape, unknown space, negative steps or bad init.
    """
    if space not in SPACES:
        raise BadInput(f"space must be one of {SPACES}, got {space!r}")
    if steps < 0:
        raise BadInput(f"steps must be >= 0, got {steps}")
    if lr <= 0:
        raise BadInput(f"lr must be > 0, got {lr}")
    if not 0.0 <= tie <= 1.0:
        raise BadInput(f"tie must be in [0, 1], got {tie}")
    tie_steps = int(round(tie * steps)) if space == "wplus" else 0
    r = generator.resolution if size is None else int(size)
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, r, r):
        raise BadInput(f"images must have shape (N, 3, {r}, {r}), got {tuple(images.shape)}")
    loss = loss if loss is not None else ReconstructionLoss()
    dev = next(generator.parameters()).device
    target = images.detach().to(dev, torch.float32)
    n = target.shape[0]
    was_training = generator.training
    generator.eval()
    req = [p.requires_grad for p in generator.parameters()]
    generator.requires_grad_(False)

    start = _initial_latent(generator, n, init, space, dev)
    seen = generator.styles_seen(size) if size is not None and hasattr(generator, "styles_seen") else generator.num_ws
    tail = None  # offsets of the unseen styles from the last seen one, kept as they start
    if space == "wplus" and seen < generator.num_ws:
        tail = (start[:, seen:] - start[:, seen - 1 : seen]).clone()
        start = start[:, :seen].clone()
    latent = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=lr, betas=(0.9, 0.999))
    history: list[float] = []
    noise_scale = noise * w_std(generator) / math.sqrt(generator.w_dim) if noise > 0 and steps > 0 else 0.0
    rng = make_generator(seed)
    if prior > 0:
        w_mean, w_white = (t.to(dev) for t in (whitening or w_whitening(generator)))
    best, best_loss = start.clone(), torch.full((n,), float("inf"), device=dev)

    def expand(x: torch.Tensor) -> torch.Tensor:
        if space == "w":
            return generator.broadcast(x)
        if tail is not None:  # unseen styles move with the last seen one
            return torch.cat([x, x[:, -1:] + tail], dim=1)
        return x

    def synthesise(w_plus: torch.Tensor) -> torch.Tensor:
        return generator.synthesis(w_plus) if size is None else generator.synthesis(w_plus, size=size)

    t0 = time.perf_counter()
    stale = 0
    try:
        for step in tqdm(range(steps), desc=f"invert ({space})", disable=not progress, leave=False):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, lr, rampup, rampdown)
            amp = noise_scale * max(0.0, 1.0 - step / (noise_ramp * steps)) ** 2 if noise_ramp > 0 else 0.0
            shape = (latent.shape[0], 1, latent.shape[2]) if step < tie_steps else latent.shape  # tied: same noise
            jitter = amp * torch.randn(shape, generator=rng).to(dev).expand_as(latent) if amp > 0 else 0.0
            per_image = loss(synthesise(expand(latent + jitter)), target)
            if amp == 0.0:  # the loss is that of the current latent: remember the best one per image
                with torch.no_grad():
                    improved = per_image.detach() < best_loss * (1.0 - min_delta)
                    stale = 0 if bool(improved.any()) else stale + 1
                    better = per_image.detach() < best_loss
                    best_loss = torch.where(better, per_image.detach(), best_loss)
                    best[better] = latent.detach()[better]
            total = per_image.sum()
            if latent_l2 > 0:
                total = total + latent_l2 * (latent - start).pow(2).sum() / generator.w_dim
            if prior > 0:
                total = total + prior * ((latent - w_mean) @ w_white).pow(2).mean(-1).sum()
            opt.zero_grad(set_to_none=True)
            total.backward()
            if step < tie_steps and latent.grad is not None:
                latent.grad.copy_(latent.grad.mean(1, keepdim=True).expand_as(latent.grad))
            opt.step()
            history.append(float(per_image.detach().mean()))
            if patience and stale >= patience:
                break
        with torch.no_grad():
            final_latent = latent.detach()
            final = loss(synthesise(expand(final_latent)), target)
            better = best_loss < final
            final_latent = torch.where(better.view(-1, *([1] * (latent.dim() - 1))), best, final_latent)
            w_plus = expand(final_latent).contiguous()
            recon = synthesise(w_plus)
            final = torch.minimum(final, best_loss)
    finally:
        for p, rg in zip(generator.parameters(), req):
            p.requires_grad_(rg)
        generator.train(was_training)
    return OptimizeResult(
        w_plus=w_plus.float().cpu(),
        images=recon.float().cpu(),
        loss=final.float().cpu(),
        history=history,
        seconds=time.perf_counter() - t0,
        space=space,
    )

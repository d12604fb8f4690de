"""Training of the built-in ``edsc-faces64`` generator (``edsc train generator``).

The generator starts as an exact copy of the teacher
(:meth:`Faces64Generator.from_teacher`: all per-layer style weights zero, so
``w_1..w_4`` do nothing yet). Each step teaches the per-layer styles to carry
meaning while keeping the generator on the teacher's manifold:

* **style mixing** -- two batches of training faces ``z_A, z_B`` (seeds from
  :data:`~editable_deepsc.generator.teacher.TRAIN_SEEDS`) are mapped to
  ``w_A, w_B``; with probability ``mix_prob`` a sample gets ``w_A`` in layers
  ``< k`` and ``w_B`` in layers ``>= k`` (random crossover ``k`` in 1..4),
  otherwise ``w_A`` everywhere (``k = 5``).
* **band target** -- layer ``k - 1`` outputs ``4 * 2**(k-1)`` px, so a mixed
  sample should show the coarse content of face A up to that scale and the
  finer detail of face B: ``t = L_r(x_A) + x_B - L_r(x_B)`` with ``L_r`` the
  low-pass "average-pool to r px, bilinear back up". For ``k = 5`` the target
  is the teacher face ``x_A`` itself (distillation). Loss: L1, weighted
  ``distill_weight`` (unmixed) and ``mix_weight`` (mixed).
* **adversarial** -- non-saturating GAN loss against teacher faces with a small
  discriminator (:class:`~editable_deepsc.train.discriminator.FaceDiscriminator`)
  and a lazy R1 penalty, so mixed faces stay natural faces.

Everything is seeded per step (``derive_seed(seed, "step", i)``), so a resumed
run draws exactly the faces an uninterrupted run would. Checkpoints (modules,
Adam moments, counters) go to ``<workdir>/checkpoint.safetensors`` every
``checkpoint_every`` steps; a JSONL log to ``<workdir>/log.jsonl``. At the end
:func:`export_faces64` writes the zoo weights and card.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.faces64 import FACES64_NAME, Faces64Generator
from editable_deepsc.generator.teacher import face_latents, load_teacher, random_train_seeds
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.loop import ResumableRun
from editable_deepsc.train.discriminator import FaceDiscriminator
from editable_deepsc.zoo import registry

CHECKPOINT_FILE = "checkpoint.safetensors"
LOG_FILE = "log.jsonl"
SUMMARY_FILE = f"{FACES64_NAME}.train.json"


@dataclass
class GeneratorTrainConfig:
    """Hyper-parameters of :func:`train_faces64` (all recorded in the log and the card).

    Attributes
    ----------
    steps : int
        Total optimisation steps (a resumed run continues up to this number).
    batch_size : int
        Faces per step.
    lr_new, lr_pretrained : float
        Adam learning rates of the new style parameters and of the
        teacher-initialised convolutions (the mapping stays the identity).
    lr_d : float
        Discriminator learning rate.
    mix_prob : float
        Probability that a sample is style-mixed.
    distill_weight, mix_weight, adv_weight : float
        Loss weights (see module docstring).
    r1_gamma : float
        R1 penalty weight, applied every ``r1_every`` steps (scaled by it).
    checkpoint_every : int
        Steps between checkpoints.
    seed : int
        Root seed of the run.
    """

    steps: int = 1500
    batch_size: int = 16
    lr_new: float = 5e-4
    lr_pretrained: float = 5e-5
    lr_d: float = 2e-4
    mix_prob: float = 0.5
    distill_weight: float = 10.0
    mix_weight: float = 2.0
    adv_weight: float = 0.1
    r1_gamma: float = 1.0
    r1_every: int = 8
    checkpoint_every: int = 100
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`BadInput` for out-of-range values."""
        if self.steps < 1 or self.batch_size < 2 or self.checkpoint_every < 1 or self.r1_every < 1:
            raise BadInput("steps >= 1, batch_size >= 2, checkpoint_every >= 1 and r1_every >= 1 required")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise BadInput(f"mix_prob must lie in [0, 1], got {self.mix_prob}")
        if min(self.lr_new, self.lr_pretrained, self.lr_d) <= 0:
            raise BadInput("learning rates must be positive")


def mix_styles(w_a: torch.Tensor, w_b: torch.Tensor, crossover: torch.Tensor, num_ws: int) -> torch.Tensor:
    """Layer-wise style mixing.

    Parameters
    ----------
    w_a, w_b : torch.Tensor
        Float (N, w_dim) styles of faces A and B.
    crossover : torch.Tensor
        Int64 (N,) in 1..num_ws: layers ``< k`` take ``w_a``, layers ``>= k`` take ``w_b``
        (``k = num_ws`` keeps ``w_a`` everywhere).
    num_ws : int
        Number of style vectors.

    Returns
    -------
    torch.Tensor
        Float (N, num_ws, w_dim).
    """
    layer = torch.arange(num_ws, device=w_a.device)[None, :, None]
    take_a = layer < crossover.to(w_a.device)[:, None, None]
    return torch.where(take_a, w_a[:, None], w_b[:, None])


def lowpass(x: torch.Tensor, size: int) -> torch.Tensor:
    """Average-pool (N, C, R, R) to ``size`` px and upsample back bilinearly; identity if ``size >= R``."""
    if size >= x.shape[-1]:
        return x
    return F.interpolate(F.adaptive_avg_pool2d(x, size), size=x.shape[-2:], mode="bilinear", align_corners=False)


def band_target(x_a: torch.Tensor, x_b: torch.Tensor, crossover: torch.Tensor, num_ws: int) -> torch.Tensor:
    """Target of a style-mixed sample: coarse content of A, detail of B above the crossover scale.

    Parameters
    ----------
    x_a, x_b : torch.Tensor
        Float (N, 3, R, R) teacher faces of A and B.
    crossover : torch.Tensor
        Int64 (N,) crossover layers as in :func:`mix_styles`.
    num_ws : int
        Number of style vectors; layer ``i`` outputs ``4 * 2**i`` px.

    Returns
    -------
    torch.Tensor
        Float (N, 3, R, R); equals ``x_a`` where ``crossover == num_ws``.
    """
    out = x_a.clone()
    for k in crossover.unique().tolist():
        if k >= num_ws:
            continue
        idx = (crossover == k).nonzero().squeeze(1)
        r = 4 * 2 ** (k - 1)
        a, b = x_a[idx], x_b[idx]
        out[idx] = lowpass(a, r) + b - lowpass(b, r)
    return out


def _optimizers(g: Faces64Generator, d: FaceDiscriminator, cfg: GeneratorTrainConfig):
    # the mapping stays at its initial identity (w = z): the teacher's latent space is the W space
    g.mapping_net.requires_grad_(False)
    new, pre = [], []
    for name, p in g.named_parameters():
        if not name.startswith("mapping_net"):
            (new if ".style_" in name else pre).append(p)
    opt_g = torch.optim.Adam(
        [{"params": new, "lr": cfg.lr_new}, {"params": pre, "lr": cfg.lr_pretrained}], betas=(0.5, 0.99)
    )
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(0.5, 0.99))
    return opt_g, opt_d


def train_step(
    g: Faces64Generator,
    d: FaceDiscriminator,
    teacher: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    cfg: GeneratorTrainConfig,
    step: int,
    device: torch.device,
) -> dict[str, float]:
    """One discriminator + generator update; returns the step's losses."""
    rng = make_generator(derive_seed(cfg.seed, "step", step))
    n = cfg.batch_size
    z_a = face_latents(random_train_seeds(n, rng)).to(device)
    z_b = face_latents(random_train_seeds(n, rng)).to(device)
    mixed = torch.rand(n, generator=rng) < cfg.mix_prob
    k = torch.where(mixed, torch.randint(1, g.num_ws, (n,), generator=rng), torch.full((n,), g.num_ws))
    with torch.no_grad():
        x_a, x_b = teacher(z_a), teacher(z_b)
        target = band_target(x_a, x_b, k.to(device), g.num_ws)

    w_plus = mix_styles(g.mapping(z_a), g.mapping(z_b), k, g.num_ws)
    fake = g.synthesis(w_plus)

    # discriminator: teacher faces (x_b, independent of the fakes' A faces) vs generated
    d.requires_grad_(True)
    real = x_b.detach().requires_grad_(step % cfg.r1_every == 0)
    d_real = d(real)
    loss_d = F.softplus(d(fake.detach())).mean() + F.softplus(-d_real).mean()
    r1 = torch.zeros((), device=device)
    if step % cfg.r1_every == 0:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
        loss_d = loss_d + 0.5 * cfg.r1_gamma * cfg.r1_every * r1
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # generator
    d.requires_grad_(False)
    adv = F.softplus(-d(fake)).mean()
    err = (fake - target).abs().flatten(1).mean(1)
    weight = torch.where(mixed.to(device), cfg.mix_weight, cfg.distill_weight)
    recon = (weight * err).mean()
    loss_g = recon + cfg.adv_weight * adv
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    unmixed = ~mixed
    return {
        "loss_g": loss_g.item(),
        "loss_d": loss_d.item(),
        "adv": adv.item(),
        "r1": r1.item(),
        "l1_distill": err[unmixed.to(device)].mean().item() if unmixed.any() else float("nan"),
        "l1_mix": err[mixed.to(device)].mean().item() if mixed.any() else float("nan"),
    }


def train_faces64(
    workdir: str | Path,
    cfg: GeneratorTrainConfig,
    device: str = "cpu",
    progress: bool = True,
    export: bool = True,
) -> dict:
    """Train (or resume training of) ``edsc-faces64``.

    Parameters
    ----------
    workdir : str or Path
        Holds ``checkpoint.safetensors`` and ``log.jsonl``; an existing
        checkpoint is resumed (the config of the run is taken from ``cfg``).
    cfg : GeneratorTrainConfig
        Hyper-parameters.
    device : str
        ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a tqdm progress bar.
    export : bool
        Write the trained weights and card to the zoo at the end.

    Returns
    -------
    dict
        Summary: steps, seconds (accumulated over resumptions), config, final losses.
    """
    cfg.validate()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    teacher = load_teacher(device=dev)
    g = Faces64Generator.from_teacher(teacher).to(dev).train()
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(cfg.seed, "discriminator"))
        d = FaceDiscriminator().to(dev)
    opt_g, opt_d = _optimizers(g, d, cfg)
    run = ResumableRun(workdir / CHECKPOINT_FILE, {"g": g, "d": d}, {"g": opt_g, "d": opt_d})
    last: dict[str, float] = {}
    bar = run.steps(cfg.steps, cfg.steps, "train generator", progress)
    with open(workdir / LOG_FILE, "a") as log:
        for step in bar:
            last = train_step(g, d, teacher, opt_g, opt_d, cfg, step, dev)
            done = step + 1
            if done % 10 == 0 or done == cfg.steps:
                bar.set_postfix(distill=f"{last['l1_distill']:.3f}", mix=f"{last['l1_mix']:.3f}", adv=f"{last['adv']:.2f}")
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                run.save(done, log, last)
    seconds = run.elapsed()
    summary = {
        "steps": cfg.steps,
        "seconds": round(seconds, 1),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "config": asdict(cfg),
        "final": last,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if export:
        export_faces64(g, summary)
    return summary


def export_faces64(g: Faces64Generator, summary: dict, weights_dir: Path | None = None) -> Path:
    """Write ``edsc-faces64.safetensors`` + card + training summary into the zoo; return the weights path."""
    weights_dir = Path(weights_dir) if weights_dir else registry.WEIGHTS_DIR
    weights_dir.mkdir(parents=True, exist_ok=True)
    (weights_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    cfg = summary["config"]
    return registry.publish(
        FACES64_NAME,
        {k: v.float() for k, v in g.state_dict().items()},
        metadata={"format": "edsc-faces64"},
        weights_dir=weights_dir,
        kind="generator",
        licence="MIT (derived from teacher-dcgan64 / gan-face-generate; DigiFace-1M research use)",
        source=f"edsc train generator --steps {cfg['steps']} --seed {cfg['seed']} "
        f"(initialised from teacher-dcgan64; {summary['seconds']:.0f} s on {summary['device']})",
        resolution=64,
        description="Style-based 64x64 face generator, W+ of 5 x 100 (one style per synthesis layer)",
        config={"z_dim": g.z_dim, "num_ws": g.num_ws, "w_dim": g.w_dim, "hidden": g.mapping_net.fc1.out_features},
    )

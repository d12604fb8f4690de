"""Training of the e4e-style inversion encoder (``edsc train encoder``).

Every step draws a batch of ``batch_size`` images (seeded per step by
``derive_seed(seed, "step", i)``, so a resumed run sees exactly the data of an
uninterrupted one):

* **generator samples with exact latent supervision** (``1 - teacher_fraction``
  of the batch): ``z`` from the training seeds, ``w = mapping(z)``; with
  probability ``mix_prob`` a sample is style-mixed (layers ``>= k`` take the
  ``w`` of a second face, random crossover ``k``), so the encoder sees W+
  codes that are not constant across layers. Losses: latent MSE between the
  predicted and the true W+ (``latent_weight``) and pixel MSE of the
  reconstruction (``pixel_weight``).
* **teacher faces** (the rest): faces of
  :func:`~editable_deepsc.generator.teacher.teacher_faces` for random training
  seeds (never the test seeds), with no latent label. Losses: pixel MSE,
  proxy perceptual distance (``lpips-proxy(effnet-lite0)`` at 64 px,
  ``perceptual_weight``) and, when the face-analysis nets are available,
  identity loss ``1 - cos`` of face-api descriptors (``identity_weight``, every
  ``identity_every`` steps).
* **offset regularisation** (e4e): ``delta_weight * sum_i ||delta_i||_2``;
  **progressive unlocking**: layer ``i`` gets an offset from step
  ``i * progressive_every`` on (0 = all layers from the start).

Checkpoints (encoder, Adam moments, counters) go to
``<workdir>/checkpoint.safetensors`` every ``checkpoint_every`` steps and a
JSONL log to ``<workdir>/log.jsonl``; an existing checkpoint is resumed. At the
end :func:`export_encoder` writes the weights and the zoo card.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import Z_DIM, TeacherDCGAN, face_latents, load_teacher, random_train_seeds
from editable_deepsc.inversion.encoder import ENCODER_NAME, E4EEncoder, encoder_metadata, load_encoder
from editable_deepsc.inversion.losses import ReconstructionLoss, identity_loss_or_none
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.loop import ResumableRun
from editable_deepsc.zoo import registry

CHECKPOINT_FILE = "checkpoint.safetensors"
LOG_FILE = "log.jsonl"


@dataclass
class EncoderTrainConfig:
    """Hyper-parameters of :func:`train_encoder` (recorded in the log and the card).

    Attributes
    ----------
    steps : int
        Total steps (a resumed run continues up to this number).
    batch_size : int
        Images per step (generator samples + teacher faces).
    teacher_fraction : float
        Share of the batch that are teacher faces (image losses only).
    lr : float
        Adam learning rate (cosine decay to 10% over the run).
    mix_prob : float
        Probability that a generator sample is style-mixed.
    latent_weight, pixel_weight, perceptual_weight, identity_weight, delta_weight : float
        Loss weights (module docstring).
    identity_every : int
        Identity loss on every ``identity_every``-th step (it is the costliest term).
    progressive_every : int
        Steps between unlocking offsets of successive layers (0: all at once).
    checkpoint_every : int
        Steps between checkpoints.
    seed : int
        Root seed of the run.
    """

    steps: int = 3000
    batch_size: int = 16
    teacher_fraction: float = 0.5
    lr: float = 5e-4
    mix_prob: float = 0.5
    latent_weight: float = 1.0
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.5
    identity_weight: float = 0.1
    identity_every: int = 8
    delta_weight: float = 2e-4
    progressive_every: int = 150
    checkpoint_every: int = 100
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`BadInput` for out-of-range values."""
        if self.steps < 1 or self.batch_size < 2 or self.checkpoint_every < 1 or self.identity_every < 1:
            raise BadInput("steps >= 1, batch_size >= 2, checkpoint_every >= 1 and identity_every >= 1 required")
        if not 0.0 <= self.teacher_fraction <= 1.0 or not 0.0 <= self.mix_prob <= 1.0:
            raise BadInput("teacher_fraction and mix_prob must lie in [0, 1]")
        if self.lr <= 0 or self.progressive_every < 0:
            raise BadInput("lr must be > 0 and progressive_every >= 0")
        weights = (self.latent_weight, self.pixel_weight, self.perceptual_weight, self.identity_weight, self.delta_weight)
        if min(weights) < 0:
            raise BadInput("loss weights must be >= 0")


def sample_latents(
    generator: StyleGenerator, n: int, mix_prob: float, rng: torch.Generator
) -> torch.Tensor:
    """Training W+ codes: mapped training-seed latents, a share of them style-mixed.

    Parameters
    ----------
    generator : StyleGenerator
    n : int
        Number of codes.
    mix_prob : float
        Probability of style mixing per code.
    rng : torch.Generator
        CPU generator (drawn in a fixed order: seeds A, seeds B, mix flags, crossovers).
        With ``z_dim == 100`` the latents are those of teacher training seeds,
        otherwise ``z ~ N(0, I)`` from ``rng``.

    Returns
    -------
    torch.Tensor
        Float32 (n, num_ws, w_dim) on the generator's device.
    """
    dev = next(generator.parameters()).device
    if generator.z_dim == Z_DIM:  # latents of training-seed faces (never a test seed)
        z_a = face_latents(random_train_seeds(n, rng)).to(dev)
        z_b = face_latents(random_train_seeds(n, rng)).to(dev)
    else:
        z_a = torch.randn(n, generator.z_dim, generator=rng).to(dev)
        z_b = torch.randn(n, generator.z_dim, generator=rng).to(dev)
    mixed = torch.rand(n, generator=rng) < mix_prob
    nw = generator.num_ws
    k = torch.randint(1, max(nw, 2), (n,), generator=rng)
    k = torch.where(mixed & (nw > 1), k, torch.full((n,), nw))
    with torch.no_grad():
        w_a, w_b = generator.mapping(z_a), generator.mapping(z_b)
    take_a = torch.arange(nw, device=dev)[None, :, None] < k.to(dev)[:, None, None]
    return torch.where(take_a, w_a[:, None], w_b[:, None]).contiguous()


def unlocked_layers(step: int, num_ws: int, progressive_every: int) -> int:
    """Number of layers (incl. layer 0) that receive an offset at ``step``."""
    if progressive_every <= 0:
        return num_ws
    return min(num_ws, 1 + step // progressive_every)


def lr_factor(step: int, steps: int) -> float:
    """Cosine decay of the learning rate from 1 to 0.1 over ``steps``."""
    import math

    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))


def train_step(
    encoder: E4EEncoder,
    generator: StyleGenerator,
    teacher: TeacherDCGAN | None,
    opt: torch.optim.Optimizer,
    cfg: EncoderTrainConfig,
    step: int,
    recon_loss: ReconstructionLoss,
) -> dict[str, float]:
    """One encoder update; returns the step's losses (floats)."""
    dev = next(generator.parameters()).device
    rng = make_generator(derive_seed(cfg.seed, "step", step))
    n_t = int(round(cfg.batch_size * cfg.teacher_fraction))
    n_g = cfg.batch_size - n_t
    encoder.num_active.fill_(unlocked_layers(step, encoder.num_ws, cfg.progressive_every))
    for group in opt.param_groups:
        group["lr"] = cfg.lr * lr_factor(step, cfg.steps)

    parts: dict[str, torch.Tensor] = {}
    images, w_true = [], None
    if n_g:
        w_true = sample_latents(generator, n_g, cfg.mix_prob, rng)
        with torch.no_grad():
            images.append(generator.synthesis(w_true))
    if n_t:
        with torch.no_grad():
            images.append(teacher(face_latents(random_train_seeds(n_t, rng)).to(dev)))
    x = torch.cat(images)
    w0, deltas = encoder.forward_parts(x)
    w_hat = w0[:, None] + deltas
    recon = generator.synthesis(w_hat)

    total = x.new_zeros(())
    parts["pixel"] = (recon - x).pow(2).flatten(1).mean(1).mean()
    total = total + cfg.pixel_weight * parts["pixel"]
    if n_g and cfg.latent_weight > 0:
        parts["latent"] = (w_hat[:n_g] - w_true).pow(2).mean()
        total = total + cfg.latent_weight * parts["latent"]
    if n_t and cfg.perceptual_weight > 0:
        parts["perceptual"] = recon_loss._perceptual(recon[n_g:], x[n_g:]).mean()
        total = total + cfg.perceptual_weight * parts["perceptual"]
    if n_t and cfg.identity_weight > 0 and recon_loss.identity_fn is not None and step % cfg.identity_every == 0:
        parts["identity"] = recon_loss.identity_fn(recon[n_g:], x[n_g:]).mean()
        total = total + cfg.identity_weight * cfg.identity_every * parts["identity"]
    parts["delta"] = E4EEncoder.delta_norm(deltas).mean()
    total = total + cfg.delta_weight * parts["delta"]
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    out = {k: float(v.detach()) for k, v in parts.items()}
    out["loss"] = float(total.detach())
    return out


def build_encoder(generator: StyleGenerator, init: str | Path | None, seed: int) -> E4EEncoder:
    """A fresh encoder for ``generator`` (seeded init), or one warm-started from ``init``.

    ``init`` is an encoder (zoo name or ``.safetensors`` written by :func:`save_encoder`)
    or a training checkpoint of this trainer (``<workdir>/checkpoint.safetensors``).
    A warm start keeps the loaded weights but takes ``w_avg`` from ``generator``.
    """
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(seed, "encoder-init"))
        enc = E4EEncoder.for_generator(generator)
    if init is not None:
        state = _init_state(init, generator)
        state["w_avg"] = enc.w_avg.clone()
        ref = enc.state_dict()
        bad = [k for k in ref if k not in state or state[k].shape != ref[k].shape]
        if bad:
            raise CheckpointError(f"cannot warm-start from {init}: missing or mis-shaped {bad[:3]}")
        enc.load_state_dict({k: state[k] for k in ref})
    return enc


def _init_state(init: str | Path, generator: StyleGenerator) -> dict[str, torch.Tensor]:
    """Encoder weights from an exported encoder (name/path) or from a training checkpoint of this trainer."""
    p = Path(init)
    if p.is_file():
        state = registry.load_state_dict(p)
        pre = "module.encoder."
        if any(k.startswith(pre) for k in state):
            return {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}
    return load_encoder(init, generator=generator).state_dict()


def train_encoder(
    workdir: str | Path,
    cfg: EncoderTrainConfig,
    generator: StyleGenerator,
    device: str = "cpu",
    init: str | Path | None = None,
    progress: bool = True,
    export: bool = True,
    export_dir: Path | None = None,
    name: str = ENCODER_NAME,
    command: str | None = None,
    stop_at: int | None = None,
    max_seconds: float | None = None,
) -> dict:
    """Train (or resume training of) the inversion encoder of ``generator``.

    Parameters
    ----------
    workdir : str or Path
        Holds ``checkpoint.safetensors`` and ``log.jsonl``; an existing checkpoint is resumed.
    cfg : EncoderTrainConfig
        Hyper-parameters.
    generator : StyleGenerator
        The frozen generator whose W+ the encoder predicts.
    device : str
        ``"cpu"`` or ``"cuda"``.
    init : str or Path, optional
        Encoder weights to start from (ignored when resuming).
    progress : bool
        tqdm progress bar.
    export : bool
        Write the weights + card (``name``) at the end.
    export_dir : Path, optional
        Weights folder of the export (default: the zoo's); cards go to its sibling ``cards``.
    name : str
        Zoo name of the exported encoder (the model set's ``encoder``).
    command : str, optional
        The command line recorded as the card's source.
    stop_at : int, optional
        Stop (with a checkpoint, without export) once this step is reached, as
        if the run had been interrupted there; a later call resumes.
    max_seconds : float, optional
        Wall-time budget of this call: training stops after the step that
        exceeds it, checkpoints, and (if ``export``) exports the encoder as
        trained so far; the summary records the steps actually done.

    Returns
    -------
    dict
        Summary: steps, seconds (accumulated over resumptions), config, final losses.
    """
    cfg.validate()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    generator = generator.to(dev).eval().requires_grad_(False)
    teacher = None
    if cfg.teacher_fraction > 0:
        teacher = load_teacher(device=dev)
        if teacher.resolution != generator.resolution:
            raise BadInput(
                f"teacher faces are {teacher.resolution}px but {generator.name} makes {generator.resolution}px; "
                "use teacher_fraction=0"
            )
    ckpt = workdir / CHECKPOINT_FILE
    enc = build_encoder(generator, None if ckpt.is_file() else init, cfg.seed).to(dev).train()
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    run = ResumableRun(ckpt, {"encoder": enc}, {"encoder": opt})
    identity_fn = identity_loss_or_none() if cfg.identity_weight > 0 else None
    recon_loss = ReconstructionLoss(perceptual=cfg.perceptual_weight, identity_fn=identity_fn)
    last: dict[str, float] = {}
    end = cfg.steps if stop_at is None else max(run.start, min(cfg.steps, stop_at))
    bar = run.steps(end, cfg.steps, "train encoder", progress)
    with open(workdir / LOG_FILE, "a") as log:
        for step in bar:
            last = train_step(enc, generator, teacher, opt, cfg, step, recon_loss)
            done = step + 1
            if max_seconds is not None and time.perf_counter() - run.t0 > max_seconds and done < end:
                end = done  # out of time: checkpoint now and finish the run here
            if done % 10 == 0 or done == cfg.steps:
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k in ("latent", "pixel", "perceptual")})
            if done % cfg.checkpoint_every == 0 or done == end:
                run.save(done, log, last)
            if done >= end:
                break
    seconds = run.elapsed()
    timed_out = max_seconds is not None and end < cfg.steps and (stop_at is None or end < stop_at)
    if end < cfg.steps and not timed_out:
        return {"steps": end, "seconds": round(seconds, 1), "stopped": True, "final": last}
    summary = {
        "steps": end,
        "planned_steps": cfg.steps,
        "seconds": round(seconds, 1),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "generator": generator.name,
        "identity_loss": identity_fn is not None,
        "init": None if init is None else str(init),
        "config": asdict(cfg),
        "final": last,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if export:
        export_encoder(enc.eval(), summary, generator, weights_dir=export_dir, name=name, command=command)
    return summary


def export_encoder(
    encoder: E4EEncoder,
    summary: dict,
    generator: StyleGenerator,
    weights_dir: Path | None = None,
    name: str = ENCODER_NAME,
    command: str | None = None,
) -> Path:
    """Write ``<name>.safetensors``, its training summary and its zoo card; return the weights path."""
    weights_dir = Path(weights_dir) if weights_dir else registry.WEIGHTS_DIR
    weights_dir.mkdir(parents=True, exist_ok=True)
    (weights_dir / f"{name}.train.json").write_text(json.dumps(summary, indent=2) + "\n")
    cfg = summary["config"]
    cmd = command or f"edsc train encoder --steps {cfg['steps']} --seed {cfg['seed']} --generator {generator.name}"
    n_params = sum(p.numel() for p in encoder.parameters())
    return registry.publish(
        name,
        encoder.state_dict(),
        metadata=encoder_metadata(encoder),
        weights_dir=weights_dir,
        kind="encoder",
        licence="MIT (this project; trained on samples of edsc-faces64 and teacher-dcgan64 faces, "
        "DigiFace-1M research use)",
        source=f"{cmd} ({summary['steps']} of {summary.get('planned_steps', summary['steps'])} steps, "
        f"{summary['seconds']:.0f} s on {summary['device']}, "
        f"{summary['threads']} threads; identity loss {'on' if summary['identity_loss'] else 'off'})",
        resolution=encoder.resolution,
        description=f"e4e-style inversion encoder for {generator.name}: 64x64 image -> W+ "
        f"({encoder.num_ws} x {encoder.w_dim}), {n_params / 1e6:.2f}M parameters",
        config={**encoder.config(), "generator": generator.name},
    )


def command_line(argv: list[str]) -> str:
    """Render an ``edsc train encoder`` command line for the card."""
    return "edsc train encoder " + " ".join(shlex.quote(a) for a in argv)

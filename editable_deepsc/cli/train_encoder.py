"""``edsc train encoder``: train the e4e-style inversion encoder ``edsc-e4e-faces64`` (resumable)."""

from __future__ import annotations

import json
import sys

import click

from editable_deepsc.cli.options import RunOptions, loss_weight_options, member_option, models_option, set_member
from editable_deepsc.cli.options import set_threads, trainer_options
from editable_deepsc.train.encoder import EncoderTrainConfig


@click.command("encoder")
@models_option(check=False)
@click.option("--workdir", default=None, show_default="runs/<the encoder of --models>",
              help="Checkpoints and log (resumed if present).")
@member_option("--generator", "generator_name", "generator",
               "Generator (zoo name or path); 'edsc-faces64@teacher-init' = untrained faces64 from the teacher.")
@click.option("--steps", default=EncoderTrainConfig.steps, show_default=True, type=int, help="Total steps.")
@click.option("--batch-size", default=EncoderTrainConfig.batch_size, show_default=True, type=int)
@click.option("--lr", default=EncoderTrainConfig.lr, show_default=True, type=float)
@click.option("--mix-prob", default=EncoderTrainConfig.mix_prob, show_default=True, type=float,
              help="Share of style-mixed generator samples (0 for a generator whose styles are untrained).")
@loss_weight_options(EncoderTrainConfig, "Weight of the proxy-LPIPS loss on teacher faces (0 = pixel losses only).",
                     "Weight of the face-api identity loss (used when the face nets are available).")
@click.option("--progressive-every", default=EncoderTrainConfig.progressive_every, show_default=True, type=int,
              help="Steps between unlocking the offsets of successive layers (0 = all at once).")
@click.option("--checkpoint-every", default=EncoderTrainConfig.checkpoint_every, show_default=True, type=int)
@click.option("--max-minutes", default=None, type=float,
              help="Wall-time budget: stop after it, checkpoint and export what was trained (resumable).")
@click.option("--stop-at", default=None, type=int,
              help="Stop at this step with a checkpoint and no export, as if interrupted (resume later).")
@click.option("--init", "init", default=None, help="Encoder weights (name or path) to warm-start from.")
@trainer_options(device=True)
def encoder(
    models: str,
    workdir: str | None,
    generator_name: str | None,
    steps: int,
    batch_size: int,
    lr: float,
    mix_prob: float,
    perceptual_weight: float,
    identity_weight: float,
    progressive_every: int,
    checkpoint_every: int,
    max_minutes: float | None,
    stop_at: int | None,
    init: str | None,
    run: RunOptions,
) -> None:
    """Train the e4e-style encoder (latent supervision on generator samples + image losses on teacher faces).

    \b
    Examples:
      edsc train encoder --steps 3000 --seed 0
      edsc train encoder --workdir runs/e --steps 20 --no-export   # quick check

    \b
    The shipped edsc-e4e-faces64 was trained in two stages (see its card):
      edsc train encoder --generator edsc-faces64@teacher-init --workdir runs/e4e-warmup \\
        --steps 2500 --stop-at 600 --mix-prob 0 --progressive-every 0 --identity-weight 0 --threads 1 --no-export
      edsc train encoder --generator edsc-faces64 --init runs/e4e-warmup/checkpoint.safetensors \\
        --workdir runs/edsc-e4e-faces64 --steps 1500 --progressive-every 100 --threads 1 --max-minutes 40
    """
    from editable_deepsc.generator import load_generator
    from editable_deepsc.train.encoder import command_line, train_encoder

    set_threads(run.threads)
    cfg = EncoderTrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        mix_prob=mix_prob,
        perceptual_weight=perceptual_weight,
        identity_weight=identity_weight,
        progressive_every=progressive_every,
        checkpoint_every=checkpoint_every,
        seed=run.seed,
    )
    cfg.validate()
    name = set_member(models, "encoder")
    workdir = workdir or f"runs/{name}"
    g = load_generator(set_member(models, "generator", generator_name), device=run.device)
    argv = [a for a in sys.argv[1:] if a not in ("train", "encoder")] if sys.argv[0].endswith("edsc") else []
    summary = train_encoder(
        workdir, cfg, g, device=run.device, init=init, progress=not run.quiet, export=not run.no_export,
        command=command_line(argv) if argv else None,
        max_seconds=None if max_minutes is None else 60.0 * max_minutes,
        stop_at=stop_at, name=name,
    )
    click.echo(json.dumps({k: summary.get(k) for k in ("steps", "seconds", "device", "generator", "final")}))

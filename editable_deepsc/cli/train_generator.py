"""``edsc train generator``: train the built-in ``edsc-faces64`` (resumable)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import set_threads, trainer_options
from editable_deepsc.train.generator import GeneratorTrainConfig, train_faces64


@click.command("generator")
@click.option("--workdir", default="runs/edsc-faces64", show_default=True, help="Checkpoints and log (resumed if present).")
@click.option("--steps", default=GeneratorTrainConfig.steps, show_default=True, type=int, help="Total steps.")
@click.option("--batch-size", default=GeneratorTrainConfig.batch_size, show_default=True, type=int)
@click.option("--checkpoint-every", default=GeneratorTrainConfig.checkpoint_every, show_default=True, type=int)
@trainer_options(device=True)
def generator(
    workdir: str,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    seed: int,
    device: str,
    threads: int | None,
    no_export: bool,
    quiet: bool,
) -> None:
    """Train edsc-faces64 from the teacher (style mixing + adversarial + distillation).

    \b
    Examples:
      edsc train generator --steps 1500 --seed 0
      edsc train generator --workdir runs/g --steps 20 --no-export   # quick check
    """
    set_threads(threads)
    cfg = GeneratorTrainConfig(steps=steps, batch_size=batch_size, checkpoint_every=checkpoint_every, seed=seed)
    summary = train_faces64(workdir, cfg, device=device, progress=not quiet, export=not no_export)
    click.echo(json.dumps({k: summary[k] for k in ("steps", "seconds", "device", "final")}))

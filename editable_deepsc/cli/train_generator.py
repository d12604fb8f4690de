"""``edsc train generator``: train the built-in ``edsc-faces64`` (resumable)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import RunOptions, models_option, set_member, set_threads, trainer_options
from editable_deepsc.train.generator import GeneratorTrainConfig, train_faces64


@click.command("generator")
@models_option("Model set whose generator is trained (edsc-faces64 is the one this trainer makes).", check=False)
@click.option("--workdir", default=None, show_default="runs/<the generator of --models>",
              help="Checkpoints and log (resumed if present).")
@click.option("--steps", default=GeneratorTrainConfig.steps, show_default=True, type=int, help="Total steps.")
@click.option("--batch-size", default=GeneratorTrainConfig.batch_size, show_default=True, type=int)
@click.option("--checkpoint-every", default=GeneratorTrainConfig.checkpoint_every, show_default=True, type=int)
@trainer_options(device=True)
def generator(models: str, workdir: str | None, steps: int, batch_size: int, checkpoint_every: int,
              run: RunOptions) -> None:
    """Train edsc-faces64 from the teacher (style mixing + adversarial + distillation).

    \b
    Examples:
      edsc train generator --steps 1500 --seed 0
      edsc train generator --workdir runs/g --steps 20 --no-export   # quick check
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.generator.faces64 import FACES64_NAME

    name = set_member(models, "generator")
    if name != FACES64_NAME:
        raise BadInput(f"edsc train generator makes {FACES64_NAME}; model set {models!r} has generator {name!r}")
    set_threads(run.threads)
    cfg = GeneratorTrainConfig(steps=steps, batch_size=batch_size, checkpoint_every=checkpoint_every, seed=run.seed)
    summary = train_faces64(workdir or f"runs/{name}", cfg, device=run.device, progress=not run.quiet,
                            export=not run.no_export)
    click.echo(json.dumps({k: summary[k] for k in ("steps", "seconds", "device", "final")}))

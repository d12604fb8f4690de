"""``edsc train codec``: train a built-in SNR-aware semantic channel codec (resumable)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli import options as opt
from editable_deepsc.cli.options import RunOptions, loss_weight_options, member_option, models_option
from editable_deepsc.train.codec import CodecTrainConfig, train_codec

_D = CodecTrainConfig


@click.command("codec")
@click.option("--k", "k", default=_D.k, show_default=True, type=int, help="Complex channel symbols per latent.")
@models_option(check=False)
@member_option("--generator", "generator", "generator",
               "Generator zoo name (edsc-faces64@teacher-init: the untrained teacher copy, for development).")
@click.option("--workdir", default=None, help="Checkpoints and log (resumed if present) [runs/<codec name>].")
@click.option("--steps", default=_D.steps, show_default=True, type=int, help="Total steps.")
@click.option("--warmup-steps", default=_D.warmup_steps, show_default=True, type=int,
              help="Steps with the latent + Gauss-Newton image loss only; the rest add the true image loss.")
@click.option("--batch-size", default=_D.batch_size, show_default=True, type=int)
@click.option("--image-batch", default=_D.image_batch, show_default=True, type=int, help="Images per channel per step.")
@click.option("--hidden", default=_D.hidden, show_default=True, type=int, help="MLP width.")
@click.option("--lr", default=_D.lr, show_default=True, type=float)
@click.option("--pixel-weight", default=_D.pixel_weight, show_default=True, type=float)
@loss_weight_options(_D, "Weight of the proxy LPIPS (EfficientNet-Lite0) term.",
                     "Weight of the face-api identity term (0: off; costly on CPU).")
@click.option("--inversion-frac", default=_D.inversion_frac, show_default=True, type=float,
              help="Share of encoder inversions of training faces in each batch (if an encoder is in the zoo).")
@click.option("--checkpoint-every", default=_D.checkpoint_every, show_default=True, type=int)
@opt.trainer_options()
def codec(
    k: int,
    models: str,
    generator: str | None,
    workdir: str | None,
    steps: int,
    warmup_steps: int,
    batch_size: int,
    image_batch: int,
    hidden: int,
    lr: float,
    pixel_weight: float,
    perceptual_weight: float,
    identity_weight: float,
    inversion_frac: float,
    checkpoint_every: int,
    run: RunOptions,
) -> None:
    """Train the semantic codec for a generator's W+ at k symbols (AWGN + Rayleigh, SNR 0-20 dB).

    \b
    Examples:
      edsc train codec --k 128 --generator edsc-faces64 --seed 0
      edsc train codec --k 16 --generator edsc-faces64@teacher-init --steps 20 --warmup-steps 10 --no-export
    """
    from editable_deepsc.channel.codec_zoo import codec_name

    opt.set_threads(run.threads)
    generator = opt.set_member(models, "generator", generator)
    cfg = CodecTrainConfig(
        k=k, generator=generator, steps=steps, warmup_steps=min(warmup_steps, steps), batch_size=batch_size,
        image_batch=image_batch, hidden=hidden, lr=lr, pixel_weight=pixel_weight,
        perceptual_weight=perceptual_weight, identity_weight=identity_weight, inversion_frac=inversion_frac,
        checkpoint_every=checkpoint_every, seed=run.seed,
    )
    workdir = workdir or f"runs/{codec_name(generator, k)}"
    summary = train_codec(workdir, cfg, progress=not run.quiet, export=not run.no_export)
    click.echo(json.dumps({key: summary[key] for key in ("name", "steps", "seconds", "data", "final")}))

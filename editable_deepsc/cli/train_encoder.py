"""``edsc train encoder``: train the e4e-style inversion encoder of a model set (resumable).

``--models faces64`` trains ``edsc-e4e-faces64`` (:mod:`editable_deepsc.train.encoder`),
``--models ffhq`` trains ``edsc-e4e-ffhq`` from a cache of generator samples
(:mod:`editable_deepsc.train.encoder_ffhq`).
"""

from __future__ import annotations

import json
import sys

import click

from editable_deepsc.errors import BadInput

from editable_deepsc.cli.options import RunOptions, loss_weight_options, member_option, models_option, set_member
from editable_deepsc.cli.options import FiniteFloatRange, set_threads, trainer_options
from editable_deepsc.train.encoder import EncoderTrainConfig

FFHQ_DEFAULTS = {"steps": 6000, "batch_size": 16, "lr": 3e-4, "progressive_every": 50}


@click.command("encoder")
@models_option(check=False)
@click.option("--workdir", default=None, show_default="runs/<the encoder of --models>",
              help="Checkpoints and log (resumed if present).")
@member_option("--generator", "generator_name", "generator",
               "Generator (zoo name or path); 'edsc-faces64@teacher-init' = untrained faces64 from the teacher.")
@click.option("--steps", default=None, type=int, show_default="3000 (faces64), 6000 (ffhq)",
              help="Total steps (ffhq: the learning-rate decay spans them; a resumed run continues to them).")
@click.option("--batch-size", default=None, type=int, show_default="16")
@click.option("--lr", default=None, type=float, show_default="5e-4 (faces64), 3e-4 (ffhq)")
@click.option("--mix-prob", default=EncoderTrainConfig.mix_prob, show_default=True, type=float,
              help="Share of style-mixed generator samples (0 for a generator whose styles are untrained).")
@loss_weight_options(EncoderTrainConfig, "Weight of the proxy-LPIPS loss on teacher faces (0 = pixel losses only).",
                     "Weight of the face-api identity loss (used when the face nets are available).")
@click.option("--progressive-every", default=None, type=int, show_default="150 (faces64), 50 (ffhq)",
              help="Steps between unlocking the offsets of successive layers (0 = all at once).")
@click.option("--checkpoint-every", default=EncoderTrainConfig.checkpoint_every, show_default=True, type=int,
              help="faces64: steps between checkpoints (ffhq checkpoints every --checkpoint-minutes).")
@click.option("--n", "n_samples", default=40_000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="ffhq: training samples the cache grows to (seeds 0..n-1, known W+).")
@click.option("--exit-share", default=0.5, show_default=True, type=FiniteFloatRange(0.0, 1.0),
              help="ffhq: share of cache shards rendered at the cheap 256 exit instead of the full 1024 synthesis.")
@click.option("--readout", type=click.Choice(["linear", "conv"]), default="linear", show_default=True,
              help="ffhq: 'linear' = ridge readout of frozen EfficientNet-Lite0 features, refitted in closed form "
                   "as the cache grows (no gradient steps); 'conv' = e4e heads trained by Adam.")
@click.option("--refit-every", default=16, show_default=True, type=click.IntRange(1, 100_000),
              help="ffhq, linear readout: new cache shards between two refits.")
@click.option("--shard-every", default=4, show_default=True, type=click.IntRange(0, 10_000),
              help="ffhq: steps between two new cache shards (8 samples) while fewer than --n exist (0 = never).")
@click.option("--image-weight", default=0.0, show_default=True, type=FiniteFloatRange(0.0, 1_000.0),
              help="ffhq: weight of the image losses at the 256 exit (phase B; 0 = latent loss only).")
@click.option("--celeba-share", default=0.5, show_default=True, type=FiniteFloatRange(0.0, 1.0),
              help="ffhq: share of phase-B images that are FFHQ-aligned CelebA 000001-000700.")
@click.option("--celeba-n", "celeba_n", default=700, show_default=True, type=click.IntRange(1, 700),
              help="ffhq: how many CelebA training photos (from 000001) phase B aligns and uses.")
@click.option("--checkpoint-minutes", default=5.0, show_default=True, type=FiniteFloatRange(0.0, 1e4, min_open=True),
              help="ffhq: wall minutes between checkpoints (each one validates and keeps the best).")
@click.option("--publish", is_flag=True,
              help="ffhq: publish the best checkpoint of --workdir as the zoo model (no training) and exit.")
@click.option("--eval-n", default=0, show_default=True, type=int,
              help="ffhq, with --publish: measure on this many held-out generator seeds (>= 1000000) and on 16 "
                   "FFHQ-aligned CelebA validation photos (000701 on) first.")
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
    steps: int | None,
    batch_size: int | None,
    lr: float | None,
    mix_prob: float,
    perceptual_weight: float,
    identity_weight: float,
    progressive_every: int | None,
    checkpoint_every: int,
    n_samples: int,
    exit_share: float,
    readout: str,
    refit_every: int,
    shard_every: int,
    image_weight: float,
    celeba_share: float,
    celeba_n: int,
    checkpoint_minutes: float,
    publish: bool,
    eval_n: int,
    max_minutes: float | None,
    stop_at: int | None,
    init: str | None,
    run: RunOptions,
) -> None:
    """Train the e4e-style encoder of --models (latent supervision on generator samples + image losses).

    \b
    Examples:
      edsc train encoder --steps 3000 --seed 0
      edsc train encoder --workdir runs/e --steps 20 --no-export   # quick check
      edsc train encoder --models ffhq --workdir runs/e4e-ffhq --threads 1 --max-minutes 120   # resumable
      edsc train encoder --models ffhq --workdir runs/e4e-ffhq --publish --eval-n 64

    \b
    ffhq: 256x256 FFHQ-aligned input; generator samples with known W+ are cached
    (full 1024 synthesis area-downsampled to 256, uint8 shards under --workdir/samples)
    with their frozen EfficientNet-Lite0 maps. --readout linear (default): the W+
    readout (w_avg + w_0 offset + per-layer offsets) is refitted by ridge regression
    every --refit-every new shards until --n samples, strengths chosen on validation
    seeds; --readout conv: e4e heads by Adam (latent MSE + offset regulariser, image
    losses at the 256 exit with --image-weight > 0), one new shard every --shard-every
    steps. The best validation encoder is kept; --publish writes it to the zoo.

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
    argv = [a for a in sys.argv[1:] if a not in ("train", "encoder")] if sys.argv[0].endswith("edsc") else []
    name = set_member(models, "encoder", None) if _has_member(models) else _default_name(models)
    workdir = workdir or f"runs/{name}"
    if models == "ffhq":
        _ffhq(workdir, generator_name, steps, batch_size, lr, progressive_every, perceptual_weight, n_samples,
              exit_share, readout, refit_every, shard_every, image_weight, celeba_share, celeba_n, checkpoint_minutes,
              publish, eval_n, max_minutes, stop_at,
              run, name, command_line(argv) if argv else "")
        return
    cfg = EncoderTrainConfig(
        steps=EncoderTrainConfig.steps if steps is None else steps,
        batch_size=EncoderTrainConfig.batch_size if batch_size is None else batch_size,
        lr=EncoderTrainConfig.lr if lr is None else lr,
        mix_prob=mix_prob,
        perceptual_weight=perceptual_weight,
        identity_weight=identity_weight,
        progressive_every=EncoderTrainConfig.progressive_every if progressive_every is None else progressive_every,
        checkpoint_every=checkpoint_every,
        seed=run.seed,
    )
    cfg.validate()
    g = load_generator(set_member(models, "generator", generator_name), device=run.device)
    summary = train_encoder(
        workdir, cfg, g, device=run.device, init=init, progress=not run.quiet, export=not run.no_export,
        command=command_line(argv) if argv else None,
        max_seconds=None if max_minutes is None else 60.0 * max_minutes,
        stop_at=stop_at, name=name,
    )
    click.echo(json.dumps({k: summary.get(k) for k in ("steps", "seconds", "device", "generator", "final")}))


def _has_member(models: str) -> bool:
    from editable_deepsc.zoo.sets import load_set

    return load_set(models).has("encoder")


def _default_name(models: str) -> str:
    """The encoder name a set's trainer writes while the set does not list one yet."""
    return f"edsc-e4e-{models}"


def _ffhq(workdir: str, generator_name: str | None, steps: int | None, batch_size: int | None, lr: float | None,
          progressive_every: int | None, perceptual_weight: float, n_samples: int, exit_share: float,
          readout: str, refit_every: int, shard_every: int, image_weight: float, celeba_share: float, celeba_n: int,
          checkpoint_minutes: float, publish: bool, eval_n: int,
          max_minutes: float | None, stop_at: int | None, run: RunOptions, name: str, command: str) -> None:
    """``edsc train encoder --models ffhq``: train (resumable) or publish the best checkpoint."""
    from editable_deepsc.generator import load_generator
    from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN
    from editable_deepsc.eval import encoder_ffhq as evf
    from editable_deepsc.train import encoder_ffhq as ef

    g = load_generator(set_member("ffhq", "generator", generator_name))
    if not isinstance(g, MobileStyleGAN):
        raise BadInput(f"edsc train encoder --models ffhq needs a MobileStyleGAN generator, got {g.name}")
    if publish:
        evaluation = None
        if eval_n > 0:
            evaluation = evf.evaluate_encoder(evf.load_best(workdir, g), g, n=eval_n, work_dir=workdir, celeba_val=16)
        path = evf.publish_best(workdir, g, name=name, command=command, evaluation=evaluation)
        click.echo(json.dumps({"published": str(path), "training": evf.best_training_info(workdir),
                               "held_out": evaluation}))  # fmt: skip
        return
    d = FFHQ_DEFAULTS
    cfg = ef.FFHQEncoderConfig(
        n=n_samples, exit_share=exit_share, shard_every=shard_every, steps=d["steps"] if steps is None else steps,
        batch_size=d["batch_size"] if batch_size is None else batch_size, lr=d["lr"] if lr is None else lr,
        progressive_every=d["progressive_every"] if progressive_every is None else progressive_every,
        image_weight=image_weight, perceptual_weight=perceptual_weight, celeba_share=celeba_share, celeba_n=celeba_n,
        checkpoint_minutes=checkpoint_minutes, seed=run.seed, readout=readout, refit_every=refit_every,
    )  # fmt: skip
    cfg.validate()
    if readout == "linear":
        summary = ef.fit_ffhq_readout(workdir, cfg, g, max_seconds=None if max_minutes is None else 60.0 * max_minutes,
                                      log=lambda s: click.echo(s, err=True), command=command)  # fmt: skip
        click.echo(json.dumps(summary))
        return
    summary = ef.train_ffhq_encoder(workdir, cfg, g, max_seconds=None if max_minutes is None else 60.0 * max_minutes,
                                    stop_at=stop_at, progress=not run.quiet,
                                    log=lambda s: click.echo(s, err=True))  # fmt: skip
    click.echo(json.dumps(summary))

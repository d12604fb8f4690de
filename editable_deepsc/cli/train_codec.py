"""``edsc train codec``: train a built-in SNR-aware semantic channel codec (resumable)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli import options as opt
from editable_deepsc.cli.options import RunOptions, member_option, models_option
from editable_deepsc.train.codec import CodecTrainConfig, train_codec

_D = CodecTrainConfig
_SET = "[the class default, or for a large W+ (ffhq) large_latent_defaults]"


def _opt(flag: str, type_: type, help_: str, dest: str | None = None):
    names = (flag, dest) if dest else (flag,)
    return click.option(*names, default=None, type=type_, help=f"{help_} {_SET}")


@click.command("codec")
@click.option("--k", "k", default=_D.k, show_default=True, type=int, help="Complex channel symbols per latent.")
@models_option(check=False)
@member_option("--generator", "generator", "generator",
               "Generator zoo name (edsc-faces64@teacher-init: the untrained teacher copy, for development).")
@click.option("--workdir", default=None, help="Checkpoints and log (resumed if present) [runs/<codec name>].")
@_opt("--steps", int, "Total steps.")
@_opt("--warmup-steps", int, "Steps with the latent + Gauss-Newton losses only; the rest add the true image loss.")
@_opt("--batch-size", int, "Latents per step.")
@_opt("--image-batch", int, "Images per channel per step (true image loss).")
@_opt("--hidden", int, "MLP width.")
@_opt("--lr", float, "Adam learning rate.")
@_opt("--pixel-weight", float, "Weight of the pixel term.")
@_opt("--perceptual-weight", float, "Weight of the proxy LPIPS (EfficientNet-Lite0) term.")
@_opt("--identity-weight", float, "Weight of the face-api identity term (0: off).")
@_opt("--attribute-weight", float, "Weight of the face-net attribute-consistency term (diagonal metric only).")
@_opt("--inversion-frac", float, "Share of inversions (teacher faces or CelebA training photos) in each batch.")
@_opt("--edit-frac", float, "Share of each batch moved along one of the set's readable edit directions.")
@_opt("--photo-pool", int, "Inverted CelebA training photos 000001..N in the pool (0: teacher faces).")
@click.option("--photo-cache", default=None, type=click.Path(file_okay=False),
              help="Directory of per-photo inversions (encoder ones are made there, hybrid ones read) "
                   "[runs/celeba-latents].")
@_opt("--metric-samples", int, "Latents for the warm-up metric.")
@_opt("--checkpoint-every", int, "Steps between checkpoints.")
@opt.trainer_options()
def codec(k: int, models: str, generator: str | None, workdir: str | None, photo_cache: str | None,
          run: RunOptions, **given) -> None:
    """Train the semantic codec for a generator's W+ at k symbols (AWGN + Rayleigh, SNR 0-20 dB).

    \b
    Unset options take the class defaults; for a W+ of more than 4096 coordinates
    (--models ffhq) they take the large-latent defaults (separable basis, CelebA
    training photos and their edits, diagonal pixel/attribute/identity metrics at
    the 256 exit; see editable_deepsc/train/codec_setup.py).

    \b
    Examples:
      edsc train codec --k 128 --generator edsc-faces64 --seed 0
      edsc train codec --models ffhq --k 256 --photo-cache runs/celeba-latents --seed 0
      edsc train codec --k 16 --generator edsc-faces64@teacher-init --steps 20 --warmup-steps 10 --no-export
    """
    from editable_deepsc.channel.codec_zoo import codec_name

    opt.set_threads(run.threads)
    generator = opt.set_member(models, "generator", generator)
    try:
        cfg = CodecTrainConfig.for_generator(generator, k=k, seed=run.seed, photo_cache=photo_cache, **given)
    except TypeError as e:  # pragma: no cover - an option without a config field
        raise click.UsageError(str(e)) from None
    workdir = workdir or f"runs/{codec_name(generator, k)}"
    summary = train_codec(workdir, cfg, progress=not run.quiet, export=not run.no_export)
    click.echo(json.dumps({key: summary[key] for key in ("name", "steps", "seconds", "data", "final")}))

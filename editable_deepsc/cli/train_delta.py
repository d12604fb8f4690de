"""``edsc train delta``: fit the edit-delta statistics that follow-up session turns are sent in."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import artefact_options, generator_option, seed_option, set_member


@click.command("delta")
@generator_option()
@click.option("--n", default=512, show_default=True, type=int, help="Training faces to edit (one or two edits each).")
@click.option("--photo-cache", default=None, type=click.Path(file_okay=False),
              help="Photo sets (ffhq): directory of per-photo inversions of CelebA training photos to edit "
                   "[runs/celeba-latents for a photo set].")
@artefact_options("edsc-delta-<generator>")
@seed_option()
def delta(models: str, generator_name: str | None, n: int, photo_cache: str | None, register: bool, out: str | None,
          seed: int) -> None:
    """Edit inverted training faces with the fast editor and fit the principal axes of the deltas.

    On a photo set (--models ffhq) the faces are inverted CelebA training photos and the axes
    are separable (one basis across styles, one across channels).

    \b
    Examples:
      edsc train delta --n 512 --seed 0
      edsc train delta --models ffhq --n 256 --photo-cache runs/celeba-latents --seed 0
    """
    from editable_deepsc.train.delta import train_delta
    from editable_deepsc.zoo.sets import load_set

    generator_name = set_member(models, "generator", generator_name)
    if photo_cache is None and load_set(models).face_crop.get("framing") == "ffhq":
        photo_cache = "runs/celeba-latents"
    click.echo(json.dumps(train_delta(n=n, seed=seed, generator_name=generator_name, register=register, out=out,
                                      photo_cache=photo_cache), indent=1))

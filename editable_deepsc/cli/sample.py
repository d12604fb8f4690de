"""``edsc sample``: a grid of random faces from a model set's generator."""

from __future__ import annotations

import click

from editable_deepsc.cli.options import models_option, seed_option, set_threads, threads_option


@click.command("sample")
@models_option("Model set whose generator draws the faces.", check=False)
@click.option("--n", default=16, show_default=True, type=int, help="Faces (1-64).")
@click.option("--truncation", default=0.7, show_default=True, type=float,
              help="psi in (0, 1.5]: w = w_avg + psi (w - w_avg); 1 = no truncation.")
@click.option("--size", default=None, type=int, help="Side of each face: the full resolution or an exit (default: full).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Grid image to write (.png/.jpg/.webp).")
@seed_option("Seed of the z draws.")
@threads_option()
def sample(models: str, n: int, truncation: float, size: int | None, out: str, seed: int, threads: int | None) -> None:
    """Draw n faces and write them as one grid image.

    \b
    Example:
      edsc sample --models ffhq --n 16 --truncation 0.7 --size 1024 --out grid.png
    """
    from pathlib import Path

    from PIL import Image

    from editable_deepsc.errors import BadInput

    if not 1 <= n <= 64:
        raise BadInput(f"--n must be in 1..64, got {n}")
    if not 0 < truncation <= 1.5:
        raise BadInput(f"--truncation must be in (0, 1.5], got {truncation}")
    if Image.registered_extensions().get(Path(out).suffix.lower()) is None:
        raise BadInput(f"unsupported output format: {Path(out).suffix or '(no suffix)'}")
    set_threads(threads)
    from editable_deepsc.generator.sampling import grid, load_set_generator, sample_images, sizes_of
    from editable_deepsc.imaging.io import save_image

    g = load_set_generator(models)
    if size is not None and size not in sizes_of(g):
        raise BadInput(f"--size {size} is not available for {models} (sizes: {sizes_of(g)})")
    imgs = sample_images(g, n, truncation=truncation, size=size, seed=seed)
    p = save_image(grid(imgs), out)
    click.echo(f"{p} ({n} faces, {imgs.shape[-1]} px, truncation {truncation}, seed {seed})")

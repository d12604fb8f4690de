"""``edsc bench invert``: encoder vs optimisation vs hybrid inversion on held-out teacher faces."""

from __future__ import annotations

import json
import sys

import click

from editable_deepsc.cli.options import bench_options, member_option, models_option, set_member, set_threads
from editable_deepsc.inversion.invert import HYBRID_DEFAULTS, OPTIMIZE_DEFAULTS
from editable_deepsc.inversion.photo import PHOTO_DEFAULTS
from editable_deepsc.vocab import INVERSION_METHODS


@click.command("invert")
@click.option("--n", "n", default=None, type=int,
              help="Held-out teacher test faces (faces64; default 16), or CelebA photos (full-size sets; default 200).")
@click.option("--set", "photo_set", type=click.Choice(["celeba"]), default="celeba", show_default=True,
              help="Full-size sets: the real photos (CelebA 000701-000800 first, then 000700 down; never "
                   "000801-000999), plus the astronaut and Grace Hopper portraits.")
@click.option("--methods", default="encoder,hybrid,optimize", show_default=True,
              help="Full-size sets: comma-separated methods to run.")
@click.option("--no-portraits", is_flag=True, help="Full-size sets: skip the astronaut and Grace Hopper.")
@click.option("--optimize-steps", default=None, type=int,
              help=f"Adam steps of optimize (default {OPTIMIZE_DEFAULTS['steps']}; full-size sets: "
                   f"{PHOTO_DEFAULTS['optimize']['steps']:.0f}, stopping early when the loss stops improving).")
@click.option("--hybrid-steps", default=None,
              help=f"Comma-separated refinement steps, one hybrid row each (e.g. 20,50,100; default "
                   f"{HYBRID_DEFAULTS['steps']}; full-size sets: one value, default {PHOTO_DEFAULTS['hybrid']['steps']:.0f}).")
@click.option("--batch-size", default=8, show_default=True, type=int)
@models_option()
@member_option("--generator", "generator_name", "generator", None)
@member_option("--encoder", "encoder_name", "encoder", None)
@click.option("--no-single-w", is_flag=True, help="Skip the single-w optimisation row.")
@click.option("--markdown", "--out", "markdown", default=None, type=click.Path(dir_okay=False),
              help="Write the page (e.g. docs/inversion.md) and a .json beside it.")
@click.option("--render-only", is_flag=True, help="Re-render the --markdown page from its .json (no benchmark run).")
@click.option("--add", "add", is_flag=True,
              help="Full-size sets: add the --methods run now to the --markdown page's earlier run (same photos), "
                   "e.g. the encoder rows once it is trained; both commands are listed on the page.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
@bench_options(quiet_help="No progress bars.")
def invert(
    n: int | None,
    photo_set: str,
    methods: str,
    no_portraits: bool,
    optimize_steps: int | None,
    hybrid_steps: str | None,
    batch_size: int,
    models: str,
    generator_name: str | None,
    encoder_name: str | None,
    no_single_w: bool,
    markdown: str | None,
    render_only: bool,
    add: bool,
    as_json: bool,
    threads: int | None,
    seed: int,
    quiet: bool,
) -> None:
    """Compare the inversion methods (PSNR, SSIM, proxy LPIPS, identity, s/image).

    faces64: held-out teacher faces. Full-size sets (--models ffhq): real photos, each
    reconstruction scored at 256 px against its aligned photo and by its descriptor
    distance to the photo, with the share under the same-person threshold.

    \b
    Examples:
      edsc bench invert --n 16 --markdown docs/inversion.md
      edsc bench invert --n 2 --optimize-steps 20 --hybrid-steps 5 --json
      edsc bench invert --models ffhq --set celeba --n 200 --markdown docs/inversion_ffhq.md
    """
    from editable_deepsc.eval.invert_bench import (
        encoder_training_info,
        markdown_table,
        run_invert_bench,
        targets,
        write_markdown,
    )
    from editable_deepsc.inversion.encoder import load_encoder
    from editable_deepsc.generator import load_generator

    set_threads(threads)
    from editable_deepsc.errors import BadInput

    if render_only:
        from pathlib import Path

        from editable_deepsc.eval.invert_bench import load_result

        if not markdown:
            raise BadInput("--render-only needs --markdown PATH (its .json is re-rendered)")
        saved = Path(markdown).with_suffix(".json")
        if saved.is_file() and "portraits" in json.loads(saved.read_text()):  # a full-size (photo) page
            from editable_deepsc.eval.photo_bench import write_page

            write_page(json.loads(saved.read_text()), markdown)
        else:
            write_markdown(load_result(saved), markdown)
        click.echo(f"rendered {markdown}")
        return

    try:
        hybrid_list = tuple(int(k) for k in (hybrid_steps or str(HYBRID_DEFAULTS["steps"])).split(",") if k.strip())
    except ValueError:
        raise BadInput(f"--hybrid-steps must be comma-separated integers, got {hybrid_steps!r}") from None
    if n is not None and n < 0:
        raise BadInput(f"--n must be >= 0, got {n}")
    from editable_deepsc.inversion.photo import takes_photos

    g = load_generator(set_member(models, "generator", generator_name))
    if takes_photos(g):
        steps = {**({"optimize": optimize_steps} if optimize_steps is not None else {}),
                 **({"hybrid": hybrid_list[0]} if hybrid_steps else {})}
        _photo_bench(g, models, encoder_name, n, methods, steps, not no_portraits, markdown, as_json, seed, quiet, add)
        return
    n = 16 if n is None else n
    optimize_steps = OPTIMIZE_DEFAULTS["steps"] if optimize_steps is None else optimize_steps
    hybrid_steps = hybrid_steps or str(HYBRID_DEFAULTS["steps"])
    generator_name = set_member(models, "generator", generator_name)
    encoder_name = set_member(models, "encoder", encoder_name)
    g = load_generator(generator_name)
    enc = load_encoder(encoder_name, generator=g)
    result = run_invert_bench(
        g, enc, n=n, optimize_steps=optimize_steps, hybrid_steps=hybrid_list, batch_size=batch_size, seed=seed,
        single_w=not no_single_w, progress=not quiet,
    )
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith("edsc") else None
    result.meta["command"] = "edsc " + " ".join(argv) if argv else (
        f"edsc bench invert --n {n} --optimize-steps {optimize_steps} --hybrid-steps {hybrid_steps} "
        f"--batch-size {batch_size} --seed {seed}" + (f" --markdown {markdown}" if markdown else "")
    )
    result.meta["encoder_training"] = encoder_training_info(encoder_name)
    if markdown:
        write_markdown(result, markdown)
    if as_json:
        click.echo(json.dumps({**result.to_json(), "targets": targets(result)}, indent=1))
    else:
        click.echo(markdown_table(result))
        click.echo(json.dumps(targets(result)))


def _photo_bench(g, models: str, encoder_name: str | None, n: int | None, methods: str, steps: dict[str, int],
                 portraits: bool, markdown: str | None, as_json: bool, seed: int, quiet: bool, add: bool) -> None:
    """The full-size (real photo) bench of :func:`invert`."""
    from pathlib import Path

    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.photo_bench import markdown_table, run_photo_bench, write_page
    from editable_deepsc.imaging.io import check_output
    from editable_deepsc.inversion.encoder import load_encoder
    from editable_deepsc.zoo.sets import load_set

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    bad = [m for m in chosen if m not in INVERSION_METHODS]
    if bad or not chosen:
        raise BadInput(f"--methods takes {', '.join(INVERSION_METHODS)}, got {methods!r}")
    if markdown:
        check_output(markdown)
    earlier = Path(markdown).with_suffix(".json") if markdown else None
    if add and (earlier is None or not earlier.is_file()):
        raise BadInput("--add needs --markdown PATH of an earlier full-size run (its .json beside it)")
    name = encoder_name or (load_set(models).member("encoder") if load_set(models).has("encoder") else None)
    enc = load_encoder(name, generator=g) if name and any(m != "optimize" for m in chosen) else None
    stem = "inversion-ffhq" + ("-" + "-".join(chosen) if add else "")
    figure = Path(markdown).parent / "img" / f"{stem}.png" if markdown else None
    if figure is not None:
        figure.parent.mkdir(parents=True, exist_ok=True)
    result = run_photo_bench(g, enc, n=200 if n is None else n, methods=chosen, steps=steps, portraits=portraits,
                             seed=seed, figure=figure, progress=not quiet)
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith("edsc") else None
    result["meta"]["command"] = "edsc " + " ".join(argv) if argv else f"edsc bench invert --models {models} --n {n}"
    result["meta"]["encoder"] = name if enc is not None else None
    if add:
        from editable_deepsc.eval.photo_bench import merge_results

        result = merge_results(json.loads(earlier.read_text()), result)
    if markdown:
        write_page(result, markdown)
    click.echo(json.dumps(result, indent=1) if as_json else markdown_table(result))

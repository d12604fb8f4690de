"""``edsc bench invert``: encoder vs optimisation vs hybrid inversion on held-out teacher faces."""

from __future__ import annotations

import json
import sys

import click

from editable_deepsc.cli.options import bench_options, member_option, models_option, set_member, set_threads
from editable_deepsc.inversion.invert import HYBRID_DEFAULTS, OPTIMIZE_DEFAULTS


@click.command("invert")
@click.option("--n", "n", default=16, show_default=True, type=int, help="Held-out teacher test faces.")
@click.option("--optimize-steps", default=OPTIMIZE_DEFAULTS["steps"], show_default=True, type=int)
@click.option("--hybrid-steps", default=str(HYBRID_DEFAULTS["steps"]), show_default=True,
              help="Comma-separated refinement steps, one hybrid row each (e.g. 20,50,100).")
@click.option("--batch-size", default=8, show_default=True, type=int)
@models_option()
@member_option("--generator", "generator_name", "generator", None)
@member_option("--encoder", "encoder_name", "encoder", None)
@click.option("--no-single-w", is_flag=True, help="Skip the single-w optimisation row.")
@click.option("--markdown", "--out", "markdown", default=None, type=click.Path(dir_okay=False),
              help="Write the page (e.g. docs/inversion.md) and a .json beside it.")
@click.option("--render-only", is_flag=True, help="Re-render the --markdown page from its .json (no benchmark run).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
@bench_options(quiet_help="No progress bars.")
def invert(
    n: int,
    optimize_steps: int,
    hybrid_steps: str,
    batch_size: int,
    models: str,
    generator_name: str | None,
    encoder_name: str | None,
    no_single_w: bool,
    markdown: str | None,
    render_only: bool,
    as_json: bool,
    threads: int | None,
    seed: int,
    quiet: bool,
) -> None:
    """Compare the inversion methods on held-out teacher faces (PSNR, SSIM, proxy LPIPS, identity, s/image).

    \b
    Examples:
      edsc bench invert --n 16 --markdown docs/inversion.md
      edsc bench invert --n 2 --optimize-steps 20 --hybrid-steps 5 --json
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
        write_markdown(load_result(Path(markdown).with_suffix(".json")), markdown)
        click.echo(f"rendered {markdown}")
        return

    try:
        hybrid_list = tuple(int(k) for k in hybrid_steps.split(",") if k.strip())
    except ValueError:
        raise BadInput(f"--hybrid-steps must be comma-separated integers, got {hybrid_steps!r}") from None
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

"""``edsc bench identity``: does the face descriptor separate people on real photos?"""

from __future__ import annotations

import click

from editable_deepsc.cli.options import quiet_option, set_threads, threads_option, write_result


@click.command("identity")
@click.option("--celeba-n", default=700, show_default=True, type=int,
              help="CelebA train photos (000001..) for the different-photo distances; 0 skips them.")
@click.option("--grid", is_flag=True,
              help="Instead: Olivetti TAR at 1% FAR for chips of several (scale, shift) of the FFHQ square.")
@click.option("--descriptor", type=click.Choice(["faceapi", "faceres"]), default="faceapi", show_default=True,
              help="faceapi: face-api's descriptor (the one the losses use); faceres: the second descriptor "
                   "(FaceRes, which no loss optimises; `edsc zoo convert faceres` first).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the result as JSON here.")
@click.option("--markdown", "markdown", default=None, type=click.Path(dir_okay=False),
              help="Also write the tables into this Markdown file, between markers naming the descriptor "
                   "(replacing the section a previous run wrote; the rest of the file is kept).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@threads_option()
@quiet_option()
def identity(celeba_n: int, grid: bool, descriptor: str, out: str | None, markdown: str | None, as_json: bool,
             threads: int | None, quiet: bool) -> None:
    """Same- vs different-person descriptor distances on the 400 Olivetti faces (the threshold at
    1% false accepts and the true-accept rate there), and distances between different CelebA
    train photos as a sanity check. Needs the real-photo data (see `edsc data list`).
    --descriptor faceres measures the second descriptor the same way (cosine distance on its
    template-aligned 224x224 chip; the threshold it finds is what the benches compare against).

    \b
    Examples:
      edsc bench identity --out docs/identity.json
      edsc bench identity --celeba-n 0 --json
      edsc bench identity --grid --out docs/identity_grid.json
      edsc bench identity --descriptor faceres --out docs/identity_faceres.json --markdown docs/identity.md
    """
    from editable_deepsc.data.wheel import wheel_path
    from editable_deepsc.errors import BadInput
    from editable_deepsc.imaging.io import check_output
    from editable_deepsc.eval.identity_bench import (
        grid_table, identity_bench, markdown_table, olivetti_framing_grid, write_markdown_section)

    if celeba_n != 0 and not 2 <= celeba_n <= 700:
        raise BadInput(f"--celeba-n must be 0 or in 2..700 (CelebA train photos), got {celeba_n}")
    if grid and descriptor != "faceapi":
        raise BadInput("--grid measures face-api's chip framings; it does not apply to --descriptor faceres")
    if grid and markdown:
        raise BadInput("--markdown writes the identity tables; it does not apply to --grid")
    if out:
        check_output(out, "--out")
    if markdown:
        check_output(markdown, "--markdown")
    if descriptor == "faceres":
        from editable_deepsc.guidance.faces.faceres_zoo import check_converted

        check_converted()  # not converted: one line naming the conversion command, before any work
    wheel_path()  # missing data: one line naming the fetch command, before any work
    set_threads(threads)
    if grid:
        result = olivetti_framing_grid(progress=not quiet)
        result["command"] = "edsc bench identity --grid"
    else:
        result = identity_bench(celeba_n=celeba_n, progress=not quiet, descriptor=descriptor)
        result["command"] = f"edsc bench identity --celeba-n {celeba_n}" + (
            f" --descriptor {descriptor}" if descriptor != "faceapi" else "")
    if markdown:
        write_markdown_section(markdown, result, descriptor)
    if not write_result(result, out, as_json):
        click.echo(grid_table(result) if grid else markdown_table(result))

"""``edsc bench faces``: reliability of the face-api scores on 64x64 teacher faces."""

from __future__ import annotations

import click

from editable_deepsc.cli.options import bench_options, set_threads, write_result


@click.command("faces")
@click.option("--n", "n", default=200, show_default=True, type=int, help="Held-out teacher test faces.")
@click.option("--batch-size", default=25, show_default=True, type=int)
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the result as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@bench_options(seed_help="Seed of the nearby-latent perturbations.")
def faces(n: int, batch_size: int, out: str | None, as_json: bool, threads: int | None, seed: int, quiet: bool) -> None:
    """Face-vs-mirror correlation of every face-api score and identity distances
    (nearby latent, mirror, unrelated face) on held-out teacher faces.

    \b
    Examples:
      edsc bench faces --n 200 --out docs/faces_reliability.json
      edsc bench faces --n 20 --json
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.imaging.io import check_output
    from editable_deepsc.guidance.faces.reliability import markdown_tables, measure_reliability

    if n < 3:
        raise BadInput(f"--n must be at least 3, got {n}")
    if out:
        check_output(out, "--out")
    set_threads(threads)
    result = measure_reliability(n=n, seed=seed, batch_size=batch_size, progress=not quiet)
    result["command"] = f"edsc bench faces --n {n} --seed {seed}"
    if write_result(result, out, as_json):
        return
    click.echo(markdown_tables(result))
    click.echo(f"gender flips under mirroring: {result['gender_flip_rate']:.1%}; "
               f"P(happy) < 0.1: {result['happy_bimodality']['below_0.1']:.0%}, "
               f"> 0.9: {result['happy_bimodality']['above_0.9']:.0%}; "
               f"{result['seconds_per_face'] * 1000:.0f} ms/face (4 nets, {result['threads']} threads)")
    c = result["calibration"]
    click.echo(f"teacher-face medians: framing scale {c['framing_scale']:.3f}, shift {c['framing_shift']:.3f}, "
               f"nose drop / IOD {c['nose_drop_per_iod']:.3f}, eye midpoint {c['eye_midpoint_px']}")

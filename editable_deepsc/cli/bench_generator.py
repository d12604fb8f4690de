"""``edsc bench generator``: stage timings and memory of the FFHQ generator (OpenVINO as the reference)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import seed_option


def _ints(text: str) -> list[int]:
    from editable_deepsc.errors import BadInput

    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BadInput(f"expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise BadInput(f"expected positive integers, got {text!r}")
    return vals


@click.command("generator")
@click.option("--threads", "threads_", default="1,2", show_default=True, help="torch (and OpenVINO) thread counts.")
@click.option("--batches", default="1,8", show_default=True, help="Batch sizes.")
@click.option("--reps", default=2, show_default=True, type=int, help="Timed runs per cell (best is kept).")
@click.option("--full-backward-max-batch", default=2, show_default=True, type=int,
              help="Largest batch timed forward+backward at full size (memory: several GB per image).")
@click.option("--no-openvino", is_flag=True, help="Skip the OpenVINO reference even if openvino is installed.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the rows as JSON.")
@seed_option("Seed of the benchmark latents.")
def generator(threads_: str, batches: str, reps: int, full_backward_max_batch: int, no_openvino: bool,
              json_out: str | None, seed: int) -> None:  # fmt: skip
    """Seconds per image: mapping, synthesis at each exit and at 1024, forward and forward+backward.

    \b
    Example:
      edsc bench generator --threads 1,2 --batches 1,8
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.generator_bench import bench_generator, markdown

    t, b = _ints(threads_), _ints(batches)
    if reps < 1:
        raise BadInput(f"--reps must be >= 1, got {reps}")
    res = bench_generator(t, b, reps=reps, seed=seed, openvino=not no_openvino,
                          full_backward_max_batch=full_backward_max_batch, log=lambda m: click.echo(m, err=True))
    if json_out:
        with open(json_out, "w") as f:
            json.dump(res, f, indent=1)
    click.echo(markdown(res))

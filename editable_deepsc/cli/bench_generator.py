"""``edsc bench generator``: stage timings and memory of the FFHQ generator (OpenVINO as the reference)."""

from __future__ import annotations

import shlex

import click

from editable_deepsc.cli.options import FiniteFloatRange, output_help, seed_option, write_result

#: names of the CPU variants (kept in step with editable_deepsc.eval.generator_bench.VARIANTS; torch-free here)
VARIANT_NAMES = ("fp32", "fast", "channels-last", "fused-dwpw", "bf16", "compile")


def _ints(text: str, flag: str) -> list[int]:
    from editable_deepsc.errors import BadInput

    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BadInput(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise BadInput(f"{flag}: expected positive integers, got {text!r}")
    return vals


def _variants(text: str) -> list[str]:
    from editable_deepsc.errors import BadInput

    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANT_NAMES]
    if bad:
        raise BadInput(f"--variants: unknown {', '.join(bad)} (known: {', '.join(VARIANT_NAMES)})")
    return names


@click.command("generator")
@click.option("--threads", "threads_", default="1,2", show_default=True, help="torch (and OpenVINO) thread counts.")
@click.option("--batches", default="1,8", show_default=True, help="Batch sizes.")
@click.option("--reps", default=2, show_default=True, type=int, help="Timed runs per cell (best is kept).")
@click.option("--quick", is_flag=True, help="Batch 1 only (ignores --batches) and one timed run per cell.")
@click.option("--full-backward-max-batch", default=2, show_default=True, type=int,
              help="Largest batch timed forward+backward at full size (memory: several GB per image).")
@click.option("--no-openvino", is_flag=True, help="Skip the OpenVINO reference even if openvino is installed.")
@click.option("--variants", default="", show_default=False, metavar="NAMES",
              help="Comma-separated CPU variants timed against the plain fp32 path at batch 1 with the largest "
                   f"thread count, interleaved in the same run, with their max |difference| from it: "
                   f"{', '.join(VARIANT_NAMES)} (see docs/models.md). Empty: none.")  # fmt: skip
@click.option("--variant-max-seconds", default=60.0, show_default=True, type=FiniteFloatRange(0.0, 1e6, min_open=True),
              help="A variant (other than compile) whose warm-up at one size takes longer is timed once there "
                   "and not at larger sizes.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None,
              help=output_help("the result as JSON (with the command line; `edsc zoo card --section ffhq` reads "
                               "docs/ffhq_bench.json)"))  # fmt: skip
@seed_option("Seed of the benchmark latents.")
def generator(threads_: str, batches: str, reps: int, quick: bool, full_backward_max_batch: int, no_openvino: bool,
              variants: str, variant_max_seconds: float, json_out: str | None, seed: int) -> None:  # fmt: skip
    """Seconds per image: mapping, synthesis at each exit and at 1024, forward and forward+backward.

    Prints a Markdown table (the OpenVINO runtime on the same latents when the openvino package
    is installed; with --variants, the variants' speed ratios and parity with the fp32 path).

    \b
    Examples:
      edsc bench generator --threads 1,2 --batches 1,8 --json-out docs/ffhq_bench.json
      edsc bench generator --quick --threads 1,2 --variants fast,channels-last,fused-dwpw,bf16,compile
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.imaging.io import check_output

    t, b = _ints(threads_, "--threads"), ([1] if quick else _ints(batches, "--batches"))
    if reps < 1:
        raise BadInput(f"--reps must be >= 1, got {reps}")
    if full_backward_max_batch < 0 or variant_max_seconds <= 0:
        raise BadInput("--full-backward-max-batch must be >= 0 and --variant-max-seconds > 0")
    names = _variants(variants)
    if json_out:
        check_output(json_out, "--json-out")
    reps = 1 if quick else reps
    from editable_deepsc.eval.generator_bench import bench_generator, markdown

    res = bench_generator(t, b, reps=reps, seed=seed, openvino=not no_openvino,
                          full_backward_max_batch=full_backward_max_batch, variants=names,
                          variant_max_seconds=variant_max_seconds, log=lambda m: click.echo(m, err=True))  # fmt: skip
    parts = ["edsc bench generator", f"--threads {','.join(map(str, t))}"]
    parts += ["--quick"] if quick else [f"--batches {','.join(map(str, b))}", f"--reps {reps}"]
    parts += [f"--full-backward-max-batch {full_backward_max_batch}"] + (["--no-openvino"] if no_openvino else [])
    if names:
        parts += [f"--variants {','.join(names)}", f"--variant-max-seconds {variant_max_seconds:g}"]
    parts += [f"--seed {seed}"] + ([f"--json-out {shlex.quote(json_out)}"] if json_out else [])
    res = {"command": " ".join(parts), "quick": quick, **res}
    write_result(res, json_out, as_json=False)
    click.echo(markdown(res))

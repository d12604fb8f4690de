"""``edsc bench latency``: per-stage latency of one edit after the models are loaded."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from editable_deepsc.cli.options import models_option
from editable_deepsc.vocab import DEFAULT_PRESET, PRESETS


@click.command("latency")
@click.option("--n", default=10, show_default=True, type=int, help="Held-out teacher test faces (x 5 instructions).")
@click.option("--preset", type=click.Choice(PRESETS), default=DEFAULT_PRESET, show_default=True)
@click.option("--snr", type=float, default=6.0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the Markdown page here (+ .json).")
@click.option("--seed", default=0, show_default=True, type=int)
@models_option()
def latency(n: int, preset: str, snr: float, out: str | None, seed: int, models: str) -> None:
    """Time every stage of `edsc edit` (invert, parse, edit, encode, channel, decode, synthesise).

    \b
    Example:
      edsc bench latency --n 10 --out docs/latency.md
    """
    from editable_deepsc.channel import check_snr
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.latency_bench import run_latency_bench, to_markdown

    if n < 1:
        raise BadInput(f"--n must be >= 1, got {n}")
    res = run_latency_bench(n=n, preset=preset, snr_db=check_snr(snr), seed=seed, models=models)
    md = to_markdown(res, "edsc bench latency " + " ".join(shlex.quote(a) for a in sys.argv[3:]))
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(md)
        p.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    click.echo(md)

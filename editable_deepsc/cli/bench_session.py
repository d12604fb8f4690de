"""``edsc bench session``: follow-up turns (delta codec) vs sending the full latent every turn."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from editable_deepsc.cli.options import models_option
from editable_deepsc.vocab import CHANNELS


@click.command("session")
@click.option("--n", default=8, show_default=True, type=int, help="Held-out teacher test faces.")
@click.option("--snr", "snrs", default="0,6,12", show_default=True, help="Comma-separated SNRs in dB.")
@click.option("--channel", type=click.Choice(CHANNELS), default="awgn", show_default=True)
@click.option("--refresh-every", default=4, show_default=True, type=int, help="Full refresh period of the delta policy.")
@click.option("--delta-k", type=int, default=None, help="Symbols per follow-up (default: a quarter of the codec's k).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the Markdown page here (+ .json beside).")
@click.option("--seed", default=0, show_default=True, type=int)
@models_option()
def session(n: int, snrs: str, channel: str, refresh_every: int, delta_k: int | None, out: str | None,
            seed: int, models: str) -> None:
    """Scripted conversations on held-out faces: symbols and received quality per turn.

    \b
    Example:
      edsc bench session --n 8 --snr 0,6,12 --out docs/session.md
    """
    from editable_deepsc.channel import check_snr
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.session_bench import run_session_bench, to_markdown, verdict

    if n < 1:
        raise BadInput(f"--n must be >= 1, got {n}")
    snr_list = tuple(check_snr(s) for s in snrs.split(",") if s.strip())
    rows = run_session_bench(n=n, snrs=snr_list, channel=channel, refresh_every=refresh_every, seed=seed,
                             delta_k=delta_k, models=models)
    md = to_markdown(rows, "edsc bench session " + " ".join(shlex.quote(a) for a in sys.argv[3:]))
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(md)
        p.with_suffix(".json").write_text(json.dumps({"rows": rows, "verdict": verdict(rows)}, indent=1) + "\n")
    click.echo(md)

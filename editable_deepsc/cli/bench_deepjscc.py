"""``edsc bench deepjscc``: PSNR/SSIM table (model × SNR) of the built-in DeepJSCC baselines."""

from __future__ import annotations

import click

from editable_deepsc.cli.options import models_option


@click.command("deepjscc")
@click.option("--snr", "snr_text", default="0,5,10,15,20", show_default=True, help="SNRs in dB.")
@click.option("--n", default=200, show_default=True, type=int, help="Held-out teacher faces.")
@click.option("--channel", default="awgn", show_default=True, help="awgn or rayleigh.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of Markdown.")
@click.option("--seed", default=0, show_default=True, type=int)
@models_option()
def deepjscc(snr_text: str, n: int, channel: str, as_json: bool, seed: int, models: str) -> None:
    """Mean PSNR (SSIM) of every built-in DeepJSCC on held-out faces, per SNR.

    \b
    Example:
      edsc bench deepjscc --snr 0,5,10,15,20 --n 200
    """
    import json

    from editable_deepsc.channel import check_snr, make_channel
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.deepjscc_bench import deepjscc_table, table_markdown

    try:
        snrs = [check_snr(float(s)) for s in snr_text.split(",") if s.strip()]
    except ValueError:
        raise BadInput(f"bad --snr {snr_text!r}") from None
    if n < 1 or not snrs:
        raise BadInput("need --n >= 1 and at least one SNR")
    make_channel(channel)
    rows = deepjscc_table(snrs, n=n, channel=channel, seed=seed, models=models)
    click.echo(json.dumps(rows) if as_json else table_markdown(rows), nl=not as_json)

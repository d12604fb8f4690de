"""``edsc transmit``: send one image over a channel with a data-oriented method."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import models_option, output_help


@click.command()
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("--method", default="jpeg-ldpc", show_default=True, help="jpeg-ldpc, deepjscc or ideal (capacity bound).")
@click.option("--cbr", "cbr_text", default="0.1", show_default=True,
              help="Channel bandwidth ratio k/(H·W·C) in (0, 1], e.g. 0.1 or 1/6.")
@click.option("--snr", "snr_db", type=float, default=6.0, show_default=True, help="SNR in dB, in [-10, 40].")
@click.option("--channel", default="awgn", show_default=True, help="awgn or rayleigh.")
@click.option("--codec", default="jpeg", show_default=True, help="jpeg, webp or heif.")
@click.option("--decoder", default=None, help="LDPC BP decoder: cpp (default), sionna or cpp-minsum.")
@click.option("--fading-block", type=int, default=None,
              help="Symbols per Rayleigh gain (default: one gain for the whole image).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help=output_help("the received image"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds channel noise and fading.")
@models_option("Model set of the learned methods (deepjscc).")
def transmit(image: str, method: str, cbr_text: str, snr_db: float, channel: str, codec: str, decoder: str | None,
             fading_block: int | None, out_path: str | None, as_json: bool, seed: int, models: str) -> None:
    """Send IMAGE over a noisy channel and report what the receiver gets.

    Channel failures (CRC, undecodable data, nothing fits the budget) are
    results, not errors: the receiver then returns a mid-grey image and the
    JSON says ``decoded_ok: false``.

    \b
    Examples:
      edsc transmit face.png --method jpeg-ldpc --cbr 0.1 --snr 6 --out rx.png --json
      edsc transmit face.png --method ideal --cbr 0.05 --snr 0 --json
      edsc transmit face.png --channel rayleigh --snr 20 --codec webp --decoder sionna
    """
    from editable_deepsc.baselines.registry import transmit_image
    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.errors import BadInput
    from editable_deepsc.imaging import check_image_output, load_image, save_image

    if out_path is not None:
        check_image_output(out_path)
    if fading_block is not None and fading_block < 1:
        raise BadInput(f"--fading-block must be >= 1, got {fading_block}")
    from editable_deepsc.eval.compare_config import parse_fraction

    cbr = parse_fraction(cbr_text)
    img = load_image(image)
    res = transmit_image(img, method, cbr=cbr, channel=ChannelConfig(channel, snr_db, fading_block), codec=codec,
                         decoder=decoder, seed=seed, models=models)
    row = res.to_json()
    if out_path is not None:
        save_image(res.image, out_path)
        row["out"] = str(out_path)
    if as_json:
        click.echo(json.dumps(row))
    else:
        q = row.get("quality")
        ps = row.get("psnr")
        click.echo(
            f"{row['method']} {row['channel']} {row['snr_db']:g} dB, CBR {row['cbr']:g} (k={row['k']}): "
            f"{row.get('modulation') or '-'} r={row.get('code_rate') or '-'}, {row['codec']} q={q}, "
            f"{row['payload_bytes']} B, decoded_ok={row['decoded_ok']}, PSNR {ps:.2f} dB"
        )

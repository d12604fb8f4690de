"""``edsc demo``: the main job on the built-in models (see :mod:`editable_deepsc.demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from editable_deepsc.cli.options import models_option
from editable_deepsc.vocab import CHANNELS


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/demo", show_default=True,
              help="Folder for received images, grid.png and summary.json.")
@click.option("--snr", "snrs", default="0,6,12", show_default=True, help="Comma-separated SNRs in dB.")
@click.option("--channel", type=click.Choice(CHANNELS, case_sensitive=False), default="awgn",
              show_default=True)
@click.option("-i", "--instruction", "instructions", multiple=True,
              help="Instruction to apply (repeatable; default: smile, turn left, open the mouth).")
@click.option("--faces", "n_teacher", default=2, show_default=True, type=int,
              help="Held-out teacher faces to edit besides the astronaut photo.")
@click.option("--seed", default=0, show_default=True, type=int)
@models_option()
def demo(out_dir: str, snrs: str, channel: str, instructions: tuple[str, ...], n_teacher: int, seed: int,
         models: str) -> None:
    """Edit sample faces under instructions and send only the edited latents over a noisy channel.

    Prints one line per run (symbols, CBR, attribute before -> received, identity,
    quality of the received edit) and, for scale, JPEG + 5G LDPC sending the
    source pixels at CBR 1/6.

    \b
    Example:
      edsc demo --snr 0,6,12 --channel rayleigh --out out/demo
    """
    from editable_deepsc.demo import DEFAULT_INSTRUCTIONS, run_demo

    snr_list = [s for s in snrs.split(",") if s.strip()]
    rows = run_demo(Path(out_dir), snr_list, channel.lower(), seed, instructions or DEFAULT_INSTRUCTIONS, n_teacher,
                    models=models)
    click.echo(_table(rows))
    click.echo(f"wrote {out_dir}/grid.png, {out_dir}/summary.json and every received image")


def _table(rows: list[dict]) -> str:
    head = f"{'method':<16}{'face':<18}{'instruction':<28}{'SNR':>5}{'k':>7}{'CBR':>9}  result"
    lines = [head]
    for r in rows:
        if r.get("method") == "editable-deepsc":
            if "refused" in r:
                lines.append(f"{'editable-deepsc':<16}{r['face']:<18}{r['instruction'][:27]:<28}  refused: {r['refused']}")
                continue
            attrs = ", ".join(f"{a} {r['scores_before'].get(a, float('nan')):.2f}->{v:.2f}"
                              for a, v in r["scores_rx"].items())
            ident = "" if r["identity_rx"] is None else f", id {r['identity_rx']:.2f}"
            lines.append(f"{'editable-deepsc':<16}{r['face']:<18}{r['instruction'][:27]:<28}{r['snr_db']:>5g}"
                         f"{r['k']:>7}{r['cbr']:>9.5f}  {attrs}{ident}, rx-vs-tx PSNR {r['rx_vs_tx']['psnr']:.1f} dB")
        else:
            ok = "ok" if r.get("decoded_ok") else "FAILED (cliff)"
            lines.append(f"{r.get('method', '?'):<16}{r.get('face', ''):<18}{'(source pixels)':<28}{r['snr_db']:>5g}"
                         f"{r['k']:>7}{r['cbr']:>9.5f}  {ok}, PSNR {r.get('psnr', float('nan')):.1f} dB")
    return "\n".join(lines)

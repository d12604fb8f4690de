"""``edsc train deepjscc``: train a DeepJSCC baseline at one CBR (resumable)."""

from __future__ import annotations

import click

from editable_deepsc.cli.options import models_option


@click.command("deepjscc")
@click.option("--cbr", "cbr_text", default="1/12", show_default=True,
              help="Channel bandwidth ratio, a multiple of 1/96 (c = 96·CBR output channels).")
@click.option("--width", default=32, show_default=True, type=int, help="Hidden feature channels.")
@click.option("--steps", default=1200, show_default=True, type=int)
@click.option("--batch", default=32, show_default=True, type=int)
@click.option("--lr", default=2e-3, show_default=True, type=float)
@click.option("--snr-min", default=0.0, show_default=True, type=float)
@click.option("--snr-max", default=20.0, show_default=True, type=float)
@click.option("--pool", default=4096, show_default=True, type=int, help="Training faces (teacher training seeds).")
@click.option("--max-minutes", default=None, type=float, help="Stop (checkpoint + export) after this wall time.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Checkpoints (default runs/deepjscc/c<C>); an existing run resumes.")
@click.option("--register/--no-register", default=True, show_default=True, help="Export to the zoo.")
@click.option("--seed", default=0, show_default=True, type=int)
@models_option("Model set the trained model is registered in (named after it).", check=False)
def deepjscc(cbr_text: str, width: int, steps: int, batch: int, lr: float, snr_min: float, snr_max: float,
             pool: int, max_minutes: float | None, workdir: str | None, register: bool, seed: int,
             models: str) -> None:
    """Train the Bourtsoulatze et al. DeepJSCC on teacher faces over AWGN, SNR uniform in [min, max] dB.

    \b
    Example:
      edsc train deepjscc --cbr 1/12 --steps 1200 --max-minutes 7 --seed 0
    """
    import json

    from editable_deepsc.baselines.deepjscc import channels_for_cbr
    from editable_deepsc.eval.compare_config import parse_fraction
    from editable_deepsc.train.deepjscc import DeepJSCCTrainConfig, export_deepjscc, train_deepjscc

    c = channels_for_cbr(parse_fraction(cbr_text))
    cfg = DeepJSCCTrainConfig(c=c, width=width, steps=steps, batch=batch, lr=lr, snr_min=snr_min,
                              snr_max=snr_max, pool=pool, seed=seed)
    model, summary = train_deepjscc(cfg, workdir or f"runs/deepjscc/c{c}", max_minutes=max_minutes)
    if register:
        command = (f"edsc train deepjscc --cbr {cbr_text} --width {width} --steps {steps} --batch {batch} "
                   f"--lr {lr} --snr-min {snr_min} --snr-max {snr_max} --pool {pool} --seed {seed}")
        p = export_deepjscc(model, summary, command, models)
        click.echo(f"registered {p.stem} -> {p}")
    click.echo(json.dumps(summary))

"""``edsc bench verify``: receiver-verified edits — received success after 0, 1 and 2 rounds, and their symbols."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from editable_deepsc.cli.options import bench_options, models_option
from editable_deepsc.vocab import CHANNELS, CORRECTIONS, DELTA_STEP


def _ints(text: str, what: str) -> list[int]:
    from editable_deepsc.errors import BadInput

    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"{what} must be comma-separated integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise BadInput(f"{what} must be positive integers, got {text!r}")
    return vals


def _steps(text: str) -> list[float]:
    import math

    from editable_deepsc.errors import BadInput

    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"--delta-steps must be comma-separated numbers, got {text!r}") from None
    if not vals or not all(math.isfinite(v) and 0.0 < v <= 4.0 for v in vals):
        raise BadInput(f"--delta-steps must be numbers in (0, 4], got {text!r}")
    return vals


@click.command("verify")
@models_option()
@click.option("--n", default=200, show_default=True, type=int, help="Held-out samples (the faces and instructions "
              "of `edsc eval`).")
@click.option("--offset", default=0, show_default=True, type=int, help="First held-out sample.")
@click.option("--snr", "snr_text", default="6", show_default=True, help="SNRs in dB (comma-separated).")
@click.option("--channel", type=click.Choice(CHANNELS), default="awgn", show_default=True)
@click.option("--corrections", default=",".join(CORRECTIONS), show_default=True,
              help="Correction kinds to measure (comma-separated: delta, resend).")
@click.option("--resend-ks", default="", show_default="the set's next larger codec",
              help="Codec k of the resend correction, comma-separated for several variants.")
@click.option("--delta-steps", default="", show_default=str(DELTA_STEP),
              help="Fraction of the edit a delta correction adds per round, comma-separated for several variants "
                   "(each in (0, 4]).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the measured block into this Markdown page (between its markers; the page is created "
                   "if missing) and the results as JSON beside it (.json). Checked before any work.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary rows as JSON.")
@bench_options()
def verify(models: str, n: int, offset: int, snr_text: str, channel: str, corrections: str, resend_ks: str,
           delta_steps: str, out: str | None, as_json: bool, threads: int | None, seed: int, quiet: bool) -> None:
    """Receiver-verified edits on held-out faces: success after 0, 1 and 2 correction rounds.

    Round 0 is the edit sent once (as `edsc eval` sends it); the receiver checks
    the targets on its image and asks for up to 2 corrections (delta: strengthen
    the edit through the delta codec; resend: the latent again at more symbols,
    fused). Reports success after each round, the noise-free reference success
    and the mean forward symbols spent (side information included).

    \b
    Example:
      edsc bench verify --models faces64 --snr 6 --channel awgn --n 200 --out docs/verify_rx.md
    """
    import json

    from editable_deepsc.channel import check_snr
    from editable_deepsc.cli.options import set_threads
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.verify_bench import merge_page, run_verify_bench, to_markdown
    from editable_deepsc.imaging.io import atomic_write, check_output

    snrs = [check_snr(s) for s in snr_text.split(",") if s.strip()]
    if not snrs:
        raise BadInput(f"--snr needs at least one SNR, got {snr_text!r}")
    kinds = [c.strip() for c in corrections.split(",") if c.strip()]
    bad = [c for c in kinds if c not in CORRECTIONS]
    if not kinds or bad:
        raise BadInput(f"--corrections must name some of {', '.join(CORRECTIONS)}, got {corrections!r}")
    ks = _ints(resend_ks, "--resend-ks") if resend_ks.strip() else [None]
    steps = _steps(delta_steps) if delta_steps.strip() else [DELTA_STEP]
    if out:
        check_output(out, "--out")
        check_output(Path(out).with_suffix(".json"), "--out (.json beside it)")
    set_threads(threads)
    from editable_deepsc.system import EditableDeepSC, SystemConfig

    system = EditableDeepSC.load(SystemConfig(models=models))
    result = run_verify_bench(system, n=n, snrs=snrs, channel=channel, corrections=kinds, resend_ks=ks,
                              delta_steps=steps, seed=seed,
                              offset=offset, progress=not quiet)
    args = ["--models", models, "--snr", snr_text, "--channel", channel, "--n", str(n)]
    args += ["--offset", str(offset)] if offset else []
    args += ["--corrections", corrections]
    args += ["--resend-ks", resend_ks] if resend_ks.strip() else []
    args += ["--delta-steps", delta_steps] if delta_steps.strip() else []
    args += ["--seed", str(seed)] if seed else []
    args += ["--out", out] if out else []
    command = "edsc bench verify " + " ".join(shlex.quote(a) for a in args)
    md = to_markdown(result, command)
    if out:
        p = Path(out)
        page = merge_page(p.read_text() if p.is_file() else None, md)
        atomic_write(p, lambda tmp: Path(tmp).write_text(page))
        records = result.pop("records")  # one compact line per record
        head = json.dumps({"command": command, "models": models, **result}, indent=1)
        text = head[:-2] + ',\n "records": [\n' + ",\n".join(json.dumps(r) for r in records) + "\n ]\n}\n"
        atomic_write(p.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    if as_json:
        click.echo(json.dumps(result["rows"], indent=1))
    else:
        click.echo(md)

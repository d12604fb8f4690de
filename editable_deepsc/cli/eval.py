"""``edsc eval``: Editable-DeepSC against the data-oriented baselines (the paper's comparison)."""

from __future__ import annotations

import click

from editable_deepsc.cli.options import models_option
from editable_deepsc.vocab import DEFAULT_PRESET, PRESETS


def _floats(text: str, what: str) -> tuple[float, ...]:
    from editable_deepsc.errors import BadInput

    try:
        vals = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise BadInput(f"bad {what} list {text!r} (comma-separated numbers)") from None
    if not vals:
        raise BadInput(f"empty {what} list")
    return vals


@click.command("eval")
@click.option("--methods", default="editable-deepsc,deepjscc,jpeg-ldpc", show_default=True,
              help="Comma-separated: editable-deepsc, deepjscc, jpeg-ldpc, ideal.")
@click.option("--snr", "snr_text", default="0,3,6,9,12,15", show_default=True, help="SNRs in dB (comma-separated).")
@click.option("--channel", default="awgn", show_default=True, help="awgn or rayleigh.")
@click.option("--instructions", default="default", show_default=True,
              help="'default' (the editing bench set) or a text file, one instruction per line.")
@click.option("--n", default=200, show_default=True, type=int, help="Held-out faces (one instruction each).")
@click.option("--offset", default=0, show_default=True, type=int, help="First held-out face index.")
@click.option("--cbr", "cbr_text", default="1/6,1/12,1/24,1/48", show_default=True,
              help="Baseline CBR sweep (at --sweep-snr), fractions allowed.")
@click.option("--curve-cbr", default="1/12", show_default=True, help="Baseline CBR at every SNR.")
@click.option("--ks", default="all", show_default=True,
              help="Editable-DeepSC codec k sweep at --sweep-snr: 'all' shipped, 'default', or a list.")
@click.option("--sweep-snr", default="6", show_default=True, help="SNRs with the full CBR/k sweep.")
@click.option("--headline-snr", default=6.0, show_default=True, type=float)
@click.option("--codec", default=None, help="Editable-DeepSC default codec (zoo name).")
@click.option("--preset", type=click.Choice(PRESETS), default=DEFAULT_PRESET, show_default=True,
              help="Editing preset (transmitter and baseline receivers alike).")
@click.option("--grid-samples", default=4, show_default=True, type=int, help="Samples shown in the image grid.")
@click.option("--workers", default=1, show_default=True, type=int, help="Shards run in parallel.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where the shards run: local processes or a Ray cluster (optional extra 'ray').")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@models_option()
def eval_(methods: str, snr_text: str, channel: str, instructions: str, n: int, offset: int, cbr_text: str,
          curve_cbr: str, ks: str, sweep_snr: str, headline_snr: float, codec: str | None, preset: str,
          grid_samples: int, workers: int, engine: str, out_dir: str, seed: int, models: str) -> None:
    """Evaluate METHODS × SNR × CBR on held-out faces and write JSONL, CSV, Markdown and plots to --out.

    The reference for every method is the transmitter-side edit of the original
    face without a channel; the baselines' receivers invert and edit what they
    receive with the same editor. A killed run resumes (same --out, same options);
    a larger --n extends a finished run (sample i is the same face and instruction for any n).

    \b
    Examples:
      edsc eval --methods editable-deepsc,deepjscc,jpeg-ldpc --snr 0,3,6,9,12,15 --channel awgn \\
                --instructions default --n 200 --out results/
      edsc eval --channel rayleigh --n 50 --workers 2 --out results-rayleigh/
    """
    import json

    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.compare_config import EvalConfig, parse_fraction
    from editable_deepsc.eval.compare_run import run_eval

    from editable_deepsc.vocab import DEFAULT_MODEL_SET

    if ks == "all":
        from editable_deepsc.zoo import registry
        from editable_deepsc.zoo.sets import load_set

        k_list = tuple(k for k, name in load_set(models).codecs().items() if registry.find_card(name)) or None
    elif ks == "default":
        k_list = None
    else:
        try:
            k_list = tuple(int(x) for x in ks.split(",") if x.strip())
        except ValueError:
            raise BadInput(f"bad --ks {ks!r}") from None
    # the default set stays implicit, so that runs started before --models existed resume unchanged
    other_set = {"models": models} if models != DEFAULT_MODEL_SET else {}
    system_kwargs = {"preset": preset, **({"codec": codec} if codec else {}), **other_set}
    cfg = EvalConfig(
        methods=tuple(m for m in methods.split(",") if m.strip()), snrs=_floats(snr_text, "SNR"), channel=channel,
        instructions=instructions, n=n, offset=offset,
        cbrs=tuple(parse_fraction(c) for c in cbr_text.split(",") if c.strip()), curve_cbr=parse_fraction(curve_cbr),
        ks=k_list, sweep_snrs=_floats(sweep_snr, "sweep SNR"), headline_snr=headline_snr, seed=seed,
        grid_samples=grid_samples, system=system_kwargs)
    summary = run_eval(cfg, out_dir, workers=workers, engine=engine, system_kwargs=system_kwargs,
                       method_options={"deepjscc": other_set} if other_set else None)
    click.echo(json.dumps({k: summary[k] for k in ("samples_done", "samples_total", "records", "seconds")}))
    for metric, h in summary["headline"].items():
        for b in h["baselines"]:
            click.echo(f"headline [{metric}] {b['method']}: smallest CBR {b['bound']} {b['cbr']:.5f}, "
                       f"ratio {b['ratio_bound']} {b['ratio'] if b['ratio'] is None else round(b['ratio'], 4)} "
                       f"(paper {b['paper_ratio']})")
    click.echo(f"wrote {out_dir}/summary.md")

"""``edsc train critic``: fit the latent critic that the instant editing preset optimises against."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import (
    artefact_options,
    generator_option,
    set_member,
    quiet_option,
    seed_option,
    set_threads,
    threads_option,
)


@click.command("critic")
@generator_option("Zoo name of the generator (its directions must be registered).")
@click.option("--n", default=3000, show_default=True, type=int, help="Training faces (groups) to score.")
@click.option("--variants", default=4, show_default=True, type=int, help="Edited variants per face.")
@click.option("--steps", default=3000, show_default=True, type=int, help="Adam steps of the fit.")
@click.option("--n-val", default=300, show_default=True, type=int, help="Groups held out for the residuals.")
@click.option("--calibration-faces", default=50, show_default=True, type=int,
              help="Held-out base faces that choose the instant preset's margin and identity weight (0: skip).")
@click.option("--workdir", type=click.Path(file_okay=False), default="runs/critic", show_default=True,
              help="Scored shards and the fit checkpoint (a rerun resumes).")
@artefact_options("<generator>-critic")
@seed_option()
@threads_option()
@quiet_option()
def critic(models: str, generator_name: str | None, n: int, variants: int, steps: int, n_val: int, calibration_faces: int, workdir: str,
           register: bool, out: str | None, seed: int, threads: int | None, quiet: bool) -> None:
    """Score training faces and edited variants with the face nets; fit an MLP that predicts them from W+.

    Prints the held-out R² and residual std per attribute, the error of the
    predicted descriptor distance (JSON) and the calibration table of the instant
    preset (success on held-out faces per margin and identity weight).

    \b
    Example:
      edsc train critic --n 3000 --variants 4 --seed 0
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.train.critic import train_critic
    from editable_deepsc.train.critic_calibration import calibration_markdown

    if not 0 <= calibration_faces <= n_val:
        raise BadInput(f"--calibration-faces must be in [0, --n-val], got {calibration_faces}")
    set_threads(threads)
    generator_name = set_member(models, "generator", generator_name)
    res = train_critic(generator_name=generator_name, n=n, variants=variants, steps=steps, n_val=n_val,
                       workdir=workdir, seed=seed, register=register, out=out, progress=not quiet,
                       calibration_faces=calibration_faces)
    click.echo(json.dumps(res, indent=1))
    if res["errors"].get("calibration"):
        click.echo(calibration_markdown(res["errors"]["calibration"]))

"""``edsc train delta``: fit the edit-delta statistics that follow-up session turns are sent in."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import artefact_options, generator_option, seed_option, set_member


@click.command("delta")
@generator_option()
@click.option("--n", default=512, show_default=True, type=int, help="Training faces to edit (one or two edits each).")
@artefact_options("edsc-delta-<generator>")
@seed_option()
def delta(models: str, generator_name: str | None, n: int, register: bool, out: str | None, seed: int) -> None:
    """Edit inverted training faces with the fast editor and fit the principal axes of the deltas.

    \b
    Example:
      edsc train delta --n 512 --seed 0
    """
    from editable_deepsc.train.delta import train_delta

    generator_name = set_member(models, "generator", generator_name)
    click.echo(json.dumps(train_delta(n=n, seed=seed, generator_name=generator_name, register=register, out=out),
                          indent=1))

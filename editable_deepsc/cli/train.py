"""``edsc train ...``: one resumable training entry per built-in model."""

from __future__ import annotations

import click

from editable_deepsc.cli.lazy import LazyGroup

# trainer name -> ("module:attr", one-line help); one line per trainable model
TRAINERS: dict[str, tuple[str, str]] = {
    "generator": ("editable_deepsc.cli.train_generator:generator", "Train the built-in edsc-faces64 generator."),
    "encoder": ("editable_deepsc.cli.train_encoder:encoder", "Train the e4e-style inversion encoder of --models (edsc-e4e-faces64, edsc-e4e-ffhq)."),
    "delta": ("editable_deepsc.cli.train_delta:delta", "Fit edit-delta statistics for follow-up session turns."),
    "codec": ("editable_deepsc.cli.train_codec:codec", "Train a built-in SNR-aware semantic channel codec (k symbols)."),
    "directions": ("editable_deepsc.cli.train_directions:directions", "Fit per-attribute W+ directions (fast editing)."),
    "critic": ("editable_deepsc.cli.train_critic:critic", "Fit the latent critic of the instant editing preset."),
    "deepjscc": ("editable_deepsc.cli.train_deepjscc:deepjscc", "Train a DeepJSCC baseline at one CBR (c = 96·CBR channels)."),
    "exits": ("editable_deepsc.cli.train_exits:exits", "Distil the 128/256 px exits of the FFHQ generator."),
}


@click.group(cls=LazyGroup, lazy=TRAINERS)
def train() -> None:
    """Train a built-in model (resumable; checkpoints under --workdir)."""

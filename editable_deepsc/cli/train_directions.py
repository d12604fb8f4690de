"""``edsc train directions``: fit per-attribute W+ directions of a generator (InterFaceGAN-style)."""

from __future__ import annotations

from pathlib import Path

import click

from editable_deepsc.cli.options import artefact_options, generator_option, seed_option, set_member


@click.command("directions")
@generator_option()
@click.option("--n", default=3000, show_default=True, type=int, help="Training-seed latents to sample and score.")
@click.option("--mode", type=click.Choice(["shared", "layerwise"]), default="shared", show_default=True,
              help="One w direction for every layer, or a regression on the whole W+.")
@click.option("--identity-aware/--plain", default=True, show_default=True,
              help="Bend each direction away from what changes the face descriptor (see editing.directions).")
@click.option("--workdir", type=click.Path(file_okay=False), default="runs/directions", show_default=True,
              help="Scores are cached here (a rerun with the same settings resumes).")
@artefact_options("<generator>-directions")
@seed_option()
def directions(models: str, generator_name: str | None, n: int, mode: str, identity_aware: bool, workdir: str, register: bool, out: str | None, seed: int) -> None:
    """Sample latents (training seeds), score their faces with the face nets, fit a direction per attribute.

    \b
    Example:
      edsc train directions --generator edsc-faces64 --n 3000 --seed 0
    """
    import torch

    from editable_deepsc.editing.face_guidance import FaceNetGuidance
    from editable_deepsc.errors import BadInput
    from editable_deepsc.generator import load_generator
    from editable_deepsc.rng import make_generator
    from editable_deepsc.train.directions import (
        DIRECTION_ATTRIBUTES,
        directions_markdown,
        export_directions,
        fit_directions,
    )
    from editable_deepsc.train.latents import sample_latents, score_latents
    from editable_deepsc.zoo.registry import load_state_dict, save_state_dict

    if n < 20:
        raise BadInput(f"--n must be at least 20, got {n}")
    generator_name = set_member(models, "generator", generator_name)
    gen = load_generator(generator_name)
    guidance = FaceNetGuidance()
    cache = Path(workdir) / f"scores-{generator_name}-{mode}-n{n}-seed{seed}.safetensors"
    if cache.is_file():
        state = load_state_dict(cache)
        w_plus = state.pop("w_plus")
        scores = {k[6:]: v for k, v in state.items() if k.startswith("score.")}
        click.echo(f"resumed scores from {cache}")
    else:
        w_plus = sample_latents(gen, n, make_generator(seed), mix_prob=0.5 if mode == "layerwise" else 0.0)
        scores = score_latents(gen, guidance, w_plus, DIRECTION_ATTRIBUTES, progress=True)
        save_state_dict({"w_plus": w_plus, **{f"score.{a}": v for a, v in scores.items()}}, cache)
    with torch.no_grad():
        d = fit_directions(gen, guidance, n=n, seed=seed, mode=mode, w_plus=w_plus, scores=scores,
                           embed=guidance.embedding if identity_aware else None, progress=True)
    flag = "" if identity_aware else " --plain"
    command = f"edsc train directions --generator {generator_name} --n {n} --mode {mode}{flag} --seed {seed}"
    if register:
        p = export_directions(d, command, "face-api nets (editable_deepsc.editing.face_guidance.FaceNetGuidance)")
        click.echo(f"registered {p.stem} -> {p}")
    if out:
        d.save(out)
    click.echo(directions_markdown(d))

"""``edsc train directions``: fit per-attribute W+ directions of a generator (InterFaceGAN-style).

faces64 (``--mode shared``/``layerwise``): :mod:`editable_deepsc.train.directions`. A generator
with style groups (the ``ffhq`` set, ``--mode groups``, its default): samples scored at the set's
work size through its face view (:mod:`editable_deepsc.train.score_store`, resumable), each
direction restricted to the style groups that carry it (:mod:`editable_deepsc.train.group_directions`).
"""

from __future__ import annotations

from pathlib import Path

import click

from editable_deepsc.cli.options import artefact_options, generator_option, seed_option, set_member


@click.command("directions")
@generator_option()
@click.option("--n", default=None, type=int,
              help="Training-seed latents to sample and score [default: 3000; 10000 with --mode groups].")
@click.option("--mode", type=click.Choice(["shared", "layerwise", "groups"]), default=None,
              help="One w direction for every layer, a regression on the whole W+, or a w direction restricted "
                   "to the style groups that carry the attribute [default: groups for a generator with style "
                   "groups (ffhq), else shared].")
@click.option("--identity-aware/--plain", default=True, show_default=True,
              help="Bend each direction away from what changes the face descriptor (see editing.directions).")
@click.option("--workdir", type=click.Path(file_okay=False), default="runs/directions", show_default=True,
              help="Scores are cached here (a rerun with the same settings resumes).")
@click.option("--table-out", type=click.Path(dir_okay=False), default=None,
              help="--mode groups: also write the per-group table (markdown) here.")
@click.option("--partial", is_flag=True,
              help="--mode groups: fit on the samples scored so far in the work directory, without scoring more "
                   "(a long scoring run stopped early; rerun without it later to finish and refit).")
@artefact_options("<generator>-directions")
@seed_option()
def directions(models: str, generator_name: str | None, n: int | None, mode: str | None, identity_aware: bool,
               workdir: str, table_out: str | None, partial: bool, register: bool, out: str | None, seed: int) -> None:
    """Sample latents (training seeds), score their faces with the face nets, fit a direction per attribute.

    \b
    Examples:
      edsc train directions --generator edsc-faces64 --n 3000 --seed 0
      edsc train directions --models ffhq --n 10000 --seed 0     # 55 min scoring + 17 min fit on 2 cores; resumable
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

    generator_name = set_member(models, "generator", generator_name)
    gen = load_generator(generator_name)
    if mode is None:
        from editable_deepsc.train.group_directions import has_style_groups

        mode = "groups" if has_style_groups(gen) else "shared"
    if n is None:
        n = 10000 if mode == "groups" else 3000
    if n < 20:
        raise BadInput(f"--n must be at least 20, got {n}")
    if mode == "groups":
        _fit_groups(gen, n, identity_aware, Path(workdir), table_out, partial, register, out, seed)
        return
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


def _fit_groups(gen, n: int, identity_aware: bool, workdir: Path, table_out: str | None, partial: bool,
                register: bool, out: str | None, seed: int) -> None:
    """``--mode groups``: score at the work size through the face view, fit group-restricted directions."""
    from editable_deepsc.editing.face_guidance import FaceNetGuidance
    from editable_deepsc.generator.exit_view import work_generator
    from editable_deepsc.guidance.faces.view import view_for_generator
    from editable_deepsc.train.directions import DIRECTION_ATTRIBUTES, directions_markdown, export_directions
    from editable_deepsc.train.group_directions import GROUP_MU_GRID, fit_group_directions, group_table_markdown
    from editable_deepsc.train.score_store import load_scores, score_samples

    work = work_generator(gen)
    guidance = FaceNetGuidance(view=view_for_generator(gen.name))
    folder = workdir / f"scores-{gen.name}-s{work.resolution}-n{n}-seed{seed}"
    if partial:
        samples = load_scores(folder)
        click.echo(f"fitting on the {len(samples.w)} of {n} samples scored so far in {folder}")
    else:
        samples = score_samples(work, guidance, n, folder, seed=seed, attributes=DIRECTION_ATTRIBUTES)
    d = fit_group_directions(work, guidance, samples, DIRECTION_ATTRIBUTES,
                             identity_mu=GROUP_MU_GRID if identity_aware else (), seed=seed, progress=True,
                             log=click.echo)  # fmt: skip
    flag = "" if identity_aware else " --plain"
    command = (f"edsc train directions --generator {gen.name} --n {n} --mode groups{flag} --seed {seed}"
               + (" --partial" if partial else ""))
    d.meta["command"] = command
    table = directions_markdown(d) + "\n" + group_table_markdown(d)
    if register:
        p = export_directions(d, command, "face-api nets through the set's face view "
                                          "(editable_deepsc.editing.face_guidance.FaceNetGuidance)",
                              licence="derived from the generator's weights: the generator's licence applies")
        click.echo(f"registered {p.stem} -> {p}")
    if out:
        d.save(out)
    if table_out:
        Path(table_out).write_text(table)
    click.echo(table)

"""``edsc bench faces``: reliability of the face-api scores (faces64 teacher faces, or real photos for ffhq)."""

from __future__ import annotations

import sys

import click

from editable_deepsc.cli.options import bench_options, models_option, set_member, set_threads, write_result


@click.command("faces")
@click.option("--n", "n", default=200, show_default=True, type=int,
              help="Held-out teacher test faces (faces64), or CelebA faces and generator samples, each (--models ffhq).")
@click.option("--batch-size", default=25, show_default=True, type=int)
@models_option(check=False)
@click.option("--set", "photo_set", type=click.Choice(["celeba"]), default=None,
              help="Full-size sets: the real photos (CelebA 000001 upwards, photos without a face skipped; never "
                   "000801-000999). Default celeba.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the result as JSON here.")
@click.option("--markdown", default=None, type=click.Path(dir_okay=False),
              help="Full-size sets: write the page (e.g. docs/faces_ffhq.md), its .json beside it and a figure "
                   "of the view in img/ beside it.")
@click.option("--render-only", is_flag=True, help="Re-render the --markdown page from its .json (no benchmark run).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@bench_options(seed_help="Seed of the nearby-latent perturbations (faces64) or of the generator samples (ffhq).")
def faces(n: int, batch_size: int, models: str, photo_set: str | None, out: str | None, markdown: str | None,
          render_only: bool, as_json: bool, threads: int | None, seed: int, quiet: bool) -> None:  # fmt: skip
    """Face-vs-mirror correlation of every face-api score.

    faces64 (default): on held-out teacher faces, with identity distances (nearby latent, mirror,
    unrelated face). Full-size sets (--models ffhq): on real FFHQ-aligned CelebA photos and on
    generator samples at the set's work size, read through the set's face view, with each score's
    agreement across nearby windows, its spread, and which attributes read well compared with faces64.

    \b
    Examples:
      edsc bench faces --n 200 --out docs/faces_reliability.json
      edsc bench faces --n 20 --json
      edsc bench faces --models ffhq --set celeba --n 200 --markdown docs/faces_ffhq.md
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.imaging.io import check_output
    from editable_deepsc.zoo.sets import load_set

    full_size = bool(load_set(models).face_view)
    if (markdown or render_only) and not full_size:
        raise BadInput(f"--markdown and --render-only are for full-size sets (e.g. --models ffhq), not {models}")
    if photo_set and not full_size:
        raise BadInput(f"--set is for full-size sets (e.g. --models ffhq); {models} is measured on its teacher faces")
    if render_only:
        _render(markdown)
        return
    if n < 3:
        raise BadInput(f"--n must be at least 3, got {n}")
    for path, what in ((out, "--out"), (markdown, "--markdown")):
        if path:
            check_output(path, what)
    set_threads(threads)
    if full_size:
        _full_size(models, n, batch_size, seed, out, markdown, as_json, quiet)
        return
    from editable_deepsc.guidance.faces.reliability import markdown_tables, measure_reliability

    result = measure_reliability(n=n, seed=seed, batch_size=batch_size, progress=not quiet)
    result["command"] = f"edsc bench faces --n {n} --seed {seed}"
    if write_result(result, out, as_json):
        return
    click.echo(markdown_tables(result))
    click.echo(f"gender flips under mirroring: {result['gender_flip_rate']:.1%}; "
               f"P(happy) < 0.1: {result['happy_bimodality']['below_0.1']:.0%}, "
               f"> 0.9: {result['happy_bimodality']['above_0.9']:.0%}; "
               f"{result['seconds_per_face'] * 1000:.0f} ms/face (4 nets, {result['threads']} threads)")
    c = result["calibration"]
    click.echo(f"teacher-face medians: framing scale {c['framing_scale']:.3f}, shift {c['framing_shift']:.3f}, "
               f"nose drop / IOD {c['nose_drop_per_iod']:.3f}, eye midpoint {c['eye_midpoint_px']}")


def _render(markdown: str | None) -> None:
    import json
    from pathlib import Path

    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.faces_ffhq import write_page

    if not markdown:
        raise BadInput("--render-only needs --markdown PATH (its .json is re-rendered)")
    saved = Path(markdown).with_suffix(".json")
    try:
        result = json.loads(saved.read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot read {saved}: {e}") from None
    if "verdicts" not in result:
        raise BadInput(f"{saved} is not the result of edsc bench faces --models ffhq")
    write_page(result, markdown)
    click.echo(f"rendered {markdown}")


def _full_size(models: str, n: int, batch_size: int, seed: int, out: str | None, markdown: str | None,
               as_json: bool, quiet: bool) -> None:  # fmt: skip
    """The real-photo bench of :func:`faces` (the set's generator at its work size, through its face view)."""
    from pathlib import Path

    from editable_deepsc.eval.faces_ffhq import AlignedCelebA, markdown_tables, run_faces_ffhq_bench, write_page
    from editable_deepsc.generator import load_generator
    from editable_deepsc.generator.exit_view import work_generator
    from editable_deepsc.guidance.faces.view import FaceView
    from editable_deepsc.zoo.sets import load_set

    photos = AlignedCelebA(n, batch_size=batch_size)  # refuses n beyond 000800 before loading anything
    ms = load_set(models)
    g = work_generator(load_generator(set_member(models, "generator")))
    figure = Path(markdown).parent / "img" / f"faces-{models}-view.jpg" if markdown else None
    result = run_faces_ffhq_bench(g, FaceView.from_json(ms.face_view), n=n, seed=seed, batch_size=batch_size,
                                  photos=photos, figure=figure, progress=not quiet)  # fmt: skip
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith("edsc") else None
    result["meta"]["command"] = "edsc " + " ".join(argv) if argv else (
        f"edsc bench faces --models {models} --set celeba --n {n} --seed {seed}"
        + (f" --markdown {markdown}" if markdown else ""))  # fmt: skip
    result["meta"]["models"] = models
    if markdown:
        write_page(result, markdown)
    if write_result(result, out, as_json):
        return
    click.echo(markdown_tables(result))

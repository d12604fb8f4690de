"""``edsc edit``: one instruction end to end — invert, parse, edit, send the latent, synthesise."""

from __future__ import annotations

import json
from pathlib import Path

import click

from editable_deepsc.cli.options import face_option, models_option, output_help, verify_options
from editable_deepsc.vocab import CHANNELS as CHANNEL_CHOICES
from editable_deepsc.vocab import DEFAULT_INVERSION, DEFAULT_PRESET, INVERSION_METHODS, PRESETS


def system_options(f):
    """Options shared by ``edsc edit`` and ``edsc chat`` (models and policies of the system)."""
    opts = [
        models_option(),
        click.option("--preset", type=click.Choice(PRESETS), default=DEFAULT_PRESET, show_default=True,
                     help="Editing preset: direction jump checked by the face nets + few steps (fast), "
                          "StyleCLIP-like optimisation (paper), or a latent-critic edit without face nets whose "
                          "success is only predicted (instant)."),
        click.option("--inversion", type=click.Choice(INVERSION_METHODS), default=None,
                     help=f"Image semantic encoder mode [hybrid for a photo set (ffhq), else {DEFAULT_INVERSION}]."),
        click.option("--codec", default=None, help="Semantic codec zoo name (default: the k=128 codec of the set)."),
        click.option("--jecc", is_flag=True, help="Joint editing-channel coding: edit through the channel."),
        click.option("--no-align", is_flag=True, help="Resize photos instead of detecting and aligning the face."),
        click.option("--seed", default=0, show_default=True, type=int),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def build_system(models: str, preset: str, inversion: str, codec: str | None, jecc: bool, no_align: bool, **extra):
    """Load :class:`~editable_deepsc.system.EditableDeepSC` for the CLI options."""
    from editable_deepsc.system import EditableDeepSC, SystemConfig

    cfg = SystemConfig(models=models, preset=preset, inversion=inversion, codec=codec, jecc=jecc,
                       align=not no_align, **extra)
    return EditableDeepSC.load(cfg)


def check_out(path: str | None) -> None:
    """Validate an output image path before any work is done (nothing is written on error)."""
    if path is not None:
        from editable_deepsc.imaging.io import check_image_output

        check_image_output(path)


@click.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-i", "--instruction", required=True, help='What to change, e.g. "make her smile".')
@click.option("--snr", type=float, default=6.0, show_default=True, help="Channel SNR in dB, in [-10, 40].")
@click.option("--channel", type=click.Choice(CHANNEL_CHOICES, case_sensitive=False), default="awgn",
              show_default=True)
@click.option("--strength", type=float, default=1.0, show_default=True, help="Scales how far the edit goes.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help=output_help("the received image"))
@click.option("--save-steps", type=click.Path(file_okay=False), default=None,
              help="Write the edit trajectory (one PNG per recorded step) into this folder (checked before any "
                   "work; existing files are replaced).")
@click.option("--paste-back", type=click.Path(dir_okay=False), default=None,
              help=output_help("the user's whole photo with the received face pasted back through a feathered "
                               "face-shaped mask (full-size sets such as ffhq)"))
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@verify_options
@face_option
@system_options
def edit(image: str, instruction: str, snr: float, channel: str, strength: float, out: str | None,
         save_steps: str | None, paste_back: str | None, as_json: bool, verify_rx: bool, max_rounds: int,
         correction: str, resend_k: int | None, face: int | None, models: str, preset: str, inversion: str | None,
         codec: str | None, jecc: bool, no_align: bool, seed: int) -> None:
    """Edit IMAGE under an instruction and send only the edited latent over a noisy channel.

    A refused instruction (unsupported by the built-in editor) exits with code 2
    and transmits nothing. With --verify-rx the receiver checks the edit on its
    own image and asks for up to --max-rounds corrections; the JSON's "rounds",
    "symbols" (every forward symbol) and "verify" give the cost. Every image is checked for a face first (a 64x64 one
    too); with several faces the JSON's "face" says which was used and --face
    picks another.

    \b
    Examples:
      edsc edit face.png -i "make her smile" --snr 6 --channel awgn --out edited.png --json
      edsc edit photo.jpg -i "turn the head to the left" --snr 0 --channel rayleigh --jecc
      edsc edit face.png -i "make her smile" --snr 6 --verify-rx --correction delta --json
      edsc edit portrait.jpg --models ffhq -i "make her smile" --snr 12 --out rx.png --paste-back back.png --json
    """
    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.imaging import check_output_dir, load_image, save_image

    ch = ChannelConfig(channel, snr)
    check_out(out)
    check_out(paste_back)
    if save_steps:
        check_output_dir(save_steps, "--save-steps")
    img = load_image(image)
    if paste_back:
        from editable_deepsc.errors import BadInput
        from editable_deepsc.zoo.sets import load_set

        if load_set(models).face_crop.get("framing") != "ffhq":
            raise BadInput(f"--paste-back needs a full-size model set (ffhq); {models!r} edits generator-sized faces")
    system = build_system(models, preset, inversion, codec, jecc, no_align)
    if verify_rx:  # refuse a correction the set cannot make before any work
        system.verifier.check(correction, max_rounds)
        if correction == "resend":
            system.verifier.resend_k(resend_k)
    prepared = system.prepare_input(img, face=face)
    if prepared.face_note():
        click.echo(prepared.face_note(), err=True)
    result = system.edit(prepared if system.tx.takes_photos else prepared.image, instruction, ch, seed=seed,
                         strength=strength, record_every=5 if save_steps else 0, verify_rx=verify_rx,
                         max_rounds=max_rounds, correction=correction, resend_k=resend_k)
    if out:
        save_image(result.rx_image, out)
    if paste_back:
        from editable_deepsc.inversion.ffhq_align import paste_back as paste_face

        save_image(paste_face(result.photo.photo, result.rx_image, result.photo.transform, shape="face"), paste_back)
    if save_steps:
        d = Path(save_steps)
        for step, w in result.edit.trajectory:
            save_image(system.rx.synthesise(w), d / f"step_{step:04d}.png")
        save_image(result.tx_image, d / "final_tx.png")
    rec = result.to_json()
    rec["face"] = prepared.face_json()
    if as_json:
        click.echo(json.dumps(rec, indent=1))
        return
    click.echo(f"{rec['instruction']!r} -> {', '.join(rec['targets_readable'])}")
    click.echo(f"sent k={rec['k']} symbols (CBR {rec['cbr']:.5f}) over {rec['channel']} at {rec['snr_db']:g} dB")
    if rec["verify"] is not None:
        v = rec["verify"]
        click.echo(f"  verified at the receiver: {v['corrections']} {v['correction']} correction(s), "
                   f"{rec['symbols']} symbols in total (CBR {rec['cbr_total']:.5f}), {v['feedback_symbols']} "
                   f"feedback symbols; receiver's check: {'met' if v['met_rx'] else 'not met'}")
    for a, v in rec["scores_tx"].items():
        click.echo(f"  {a}: {rec['scores_before'].get(a, float('nan')):.3f} -> tx {v:.3f} -> rx "
                   f"{rec['scores_rx'].get(a, float('nan')):.3f}")
    if rec["identity_to_photo"] is not None:
        d = rec["identity_to_photo"]
        verdict = "same person" if d["same_person_rx"] else "NOT the same person"
        click.echo(f"  identity to the source photo (face-api distance, same person <= {d['threshold']:.3f}): "
                   f"tx {d['tx']:.3f}, rx {d['rx']:.3f} ({verdict})")
    elif rec["identity_rx"] is not None:
        click.echo(f"  identity vs source: tx {rec['identity_tx']:.3f}, rx {rec['identity_rx']:.3f}")
    click.echo(f"  received vs transmitted edit: PSNR {rec['rx_vs_tx']['psnr']:.2f} dB, SSIM {rec['rx_vs_tx']['ssim']:.3f}")
    click.echo("  seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in rec["timings"].items()))
    if out:
        click.echo(f"wrote {out}")

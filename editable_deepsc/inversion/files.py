"""Invert one image file (``edsc invert``): read, align, invert, and write the reconstruction and the latent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.imaging.io import check_image_output, check_output, load_image, save_image
from editable_deepsc.inversion.encoder import ENCODER_NAME, E4EEncoder, load_encoder
from editable_deepsc.inversion.ffhq_align import paste_back as paste_back_face
from editable_deepsc.inversion.invert import METHODS, invert
from editable_deepsc.inversion.photo import invert_photo, takes_photos
from editable_deepsc.inversion.prepare import prepare_image
from editable_deepsc.zoo.registry import save_state_dict


def _check_out_suffix(path: str | Path | None, allowed: tuple[str, ...] | None = None) -> None:
    if path is None:
        return
    suffix = Path(path).suffix.lower()
    if allowed is not None:
        if suffix not in allowed:
            raise BadInput(f"{path}: expected a {' or '.join(allowed)} file")
        check_output(path)
    else:
        check_image_output(path)


def run_invert_file(
    image: str | Path,
    method: str = "hybrid",
    out: str | Path | None = None,
    latent_out: str | Path | None = None,
    steps: int | None = None,
    generator: str | StyleGenerator | None = None,
    encoder: str | E4EEncoder | None = None,
    align: bool = True,
    seed: int = 0,
    face: int | None = None,
    check_face: bool = True,
    paste_back: str | Path | None = None,
) -> dict[str, Any]:
    """Read, align and invert one image file; optionally write the reconstruction and the latent.

    Everything is validated (image, size, face, checkpoints, output formats) before
    anything is written.

    Parameters
    ----------
    image : str or Path
        Image file: a ``R x R`` generator-sized face or a larger square photo.
    method : {"encoder", "optimize", "hybrid"}
    out : str or Path, optional
        Reconstruction image file.
    latent_out : str or Path, optional
        ``.safetensors`` file receiving ``{"w_plus": (1, num_ws, w_dim) float32}``.
    steps : int, optional
        Adam steps of ``optimize``/``hybrid``.
    generator, encoder : str or module, optional
        Zoo names, paths or loaded modules (default: the default model set's).
    align : bool
        Align photos with the face detector + landmarks.
    seed : int
    face : int, optional
        Which detected face to use (0 = highest detector score).
    check_face : bool
        Refuse an image without a face whatever its size (a 64x64 one too).
    paste_back : str or Path, optional
        Full-size generators only (:func:`~editable_deepsc.inversion.photo.takes_photos`): write the
        photo with the reconstructed face pasted back through a feathered mask.

    Full-size generators (the ``ffhq`` set) take photos of any shape: the face is FFHQ-aligned,
    inverted at the generator's 256 exit and judged against the **photo**
    (:func:`~editable_deepsc.inversion.photo.invert_photo`); ``identity`` is then
    ``{"distance", "threshold", "threshold_source", "same_person", "reference": "source photo"}``.

    Returns
    -------
    dict
        ``image, method, psnr, ssim, lpips, lpips_metric, lpips_is_proxy, identity,
        seconds, num_ws, w_dim, generator, encoder, steps, aligned, source_size, face, seed``
        (+ output paths); ``face`` is ``{"found", "used", "box", "score"}`` of the face check.
    """
    if method not in METHODS:
        raise BadInput(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if steps is not None and steps < 0:
        raise BadInput(f"steps must be >= 0, got {steps}")
    _check_out_suffix(out)
    _check_out_suffix(latent_out, (".safetensors",))
    x = load_image(image)
    g = load_generator(generator) if generator is None or isinstance(generator, (str, Path)) else generator
    if takes_photos(g):
        _check_out_suffix(paste_back)
        return _run_photo(image, x, g, method, encoder, out, latent_out, paste_back, steps, seed, face)
    if paste_back is not None:
        raise BadInput(f"--paste-back needs a full-size model set (e.g. --models ffhq); {g.name} inverts "
                       f"{g.resolution}x{g.resolution} crops")
    prepared = prepare_image(x, g.resolution, align=align, face=face, check_face=check_face)
    enc = None
    if method != "optimize":
        if encoder is None or isinstance(encoder, (str, Path)):
            enc = load_encoder(encoder or ENCODER_NAME, generator=g)
        else:
            enc = encoder
    torch.manual_seed(seed)
    res = invert(prepared.image, method=method, generator=g, encoder=enc, steps=steps, seed=seed)
    stats = res.stats[0]
    result: dict[str, Any] = {
        "image": str(image),
        "method": method,
        **{k: stats[k] for k in ("psnr", "ssim", "lpips", "lpips_metric", "lpips_is_proxy", "identity")},
        "seconds": res.seconds,
        "num_ws": g.num_ws,
        "w_dim": g.w_dim,
        "generator": g.name,
        "encoder": None if enc is None else str(encoder) if isinstance(encoder, (str, Path)) else "in-memory",
        "steps": res.config["steps"],
        "aligned": prepared.aligned,
        "source_size": list(prepared.source_size),
        "face": prepared.face_json(),
        "seed": seed,
    }
    if out is not None:
        save_image(res.images, out)
        result["out"] = str(out)
    if latent_out is not None:
        save_state_dict({"w_plus": res.w_plus}, latent_out, metadata={"generator": g.name, "method": method})
        result["latent_out"] = str(latent_out)
    return result


def _run_photo(image: str | Path, x: torch.Tensor, g: StyleGenerator, method: str, encoder: Any,
               out: str | Path | None, latent_out: str | Path | None, paste_back: str | Path | None,
               steps: int | None, seed: int, face: int | None) -> dict[str, Any]:
    """The full-size path of :func:`run_invert_file` (see there)."""
    enc = None
    if method != "optimize":
        if encoder is None:
            raise CheckpointError(f"method {method!r} needs an encoder for {g.name} and none was given; "
                                  "use --method optimize")
        enc = load_encoder(encoder, generator=g) if isinstance(encoder, (str, Path)) else encoder
    torch.manual_seed(seed)
    res = invert_photo(x, method=method, generator=g, encoder=enc, steps=steps, face=face, seed=seed)
    st = res.stats
    result: dict[str, Any] = {
        "image": str(image),
        "method": method,
        **{k: st[k] for k in ("psnr", "ssim", "lpips", "lpips_metric", "lpips_is_proxy")},
        "scored_at": st["size"],
        "identity": {"distance": st["identity_distance"], "threshold": st["same_person_threshold"],
                     "threshold_source": st["threshold_source"], "same_person": st["same_person"],
                     "reference": "source photo", "second": st["second_identity"]},
        "exit_psnr": st["exit_psnr"],
        "seconds": st["seconds"],
        "num_ws": g.num_ws,
        "w_dim": g.w_dim,
        "generator": g.name,
        "encoder": None if enc is None else str(encoder) if isinstance(encoder, (str, Path)) else "in-memory",
        "steps": st["steps"],
        "aligned": True,
        "source_size": [int(x.shape[-2]), int(x.shape[-1])],
        "face": res.target.face_json(),
        "transform": res.target.transform.to_json(),
        "seed": seed,
    }
    if out is not None:
        save_image(res.image, out)
        result["out"] = str(out)
    if paste_back is not None:
        save_image(paste_back_face(res.target.photo, res.image, res.target.transform, shape="face"), paste_back)
        result["paste_back"] = str(paste_back)
    if latent_out is not None:
        meta = {"generator": g.name, "method": method, "transform": json.dumps(res.target.transform.to_json())}
        save_state_dict({"w_plus": res.w_plus}, latent_out, metadata=meta)
        result["latent_out"] = str(latent_out)
    return result


__all__ = ["run_invert_file"]

"""Held-out measurement and publication of the ``ffhq`` set's encoder ``edsc-e4e-ffhq``.

``edsc train encoder --models ffhq --publish --eval-n 64`` measures the best encoder of a
work folder (:mod:`editable_deepsc.train.encoder_ffhq`) on held-out generator seeds
(>= 1000000) and on FFHQ-aligned CelebA validation photos, then writes it (float16) to the
zoo with a card that names every training run of the folder as a command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN
from editable_deepsc.inversion.encoder import E4EEncoder, encoder_metadata, encoder_state
from editable_deepsc.train import encoder_samples as samples
from editable_deepsc.train.encoder_ffhq import BEST_FILE, LOG_FILE, NAME, exit_psnr
from editable_deepsc.train.encoder_ffhq_data import celeba_aligned
from editable_deepsc.train.exits import HELD_OUT_SEED
from editable_deepsc.zoo import registry


def best_training_info(work_dir: str | Path) -> dict[str, Any]:
    """The ``training`` record stored with ``best.safetensors`` (step, val MSE, samples, seconds, config)."""
    from safetensors import safe_open

    path = Path(work_dir) / BEST_FILE
    if not path.is_file():
        raise CheckpointError(f"no best encoder in {work_dir} yet (train first)")
    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {}).get("training", "{}"))


def load_best(work_dir: str | Path, g: MobileStyleGAN) -> E4EEncoder:
    """The encoder of ``work_dir/best.safetensors`` (float32, eval mode)."""
    from safetensors.torch import load_file

    from editable_deepsc.zoo.loader import fit_state

    info = best_training_info(work_dir)
    cfg = info["config"]
    enc = E4EEncoder.for_generator(g, tuple(cfg["channels"]), resolution=int(cfg["size"]), backbone=cfg.get("backbone"),
                                   head_width=int(cfg.get("head_width", 64)), readout=cfg.get("readout", "conv"))  # fmt: skip
    fit_state(enc, load_file(str(Path(work_dir) / BEST_FILE)), "best encoder")
    return enc.eval().requires_grad_(False)


@torch.no_grad()
def evaluate_encoder(
    encoder: E4EEncoder, g: MobileStyleGAN, n: int = 64, work_dir: str | Path | None = None,
    celeba_val: int = 0, log: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """Held-out numbers of an ffhq encoder on generator seeds ``HELD_OUT_SEED ...`` (full synthesis inputs).

    With ``celeba_val > 0`` (and ``work_dir``), also the mean 256-exit PSNR on the first
    ``celeba_val`` FFHQ-aligned CelebA *validation* photos (000701 on; never the held-out split).

    Returns
    -------
    dict
        ``n``, ``seeds``, ``latent_mse`` (vs the true W+), ``psnr_db`` mean/min of the
        reconstruction at the encoder's side (generator exit) vs the input,
        ``psnr_true_latent_db`` (the exit of the *true* W+ vs the input: the exit's own
        ceiling), ``seconds_per_image`` (median of batch-1 encoder forwards), threads and,
        with ``celeba_val``, ``celeba_val_psnr_db`` / ``celeba_val_n``.
    """
    from editable_deepsc.metrics.image import psnr

    size = encoder.resolution
    folder = Path(work_dir) / "heldout" if work_dir else None
    k = (n + samples.SHARD_SIZE - 1) // samples.SHARD_SIZE
    if folder is not None:
        data = [samples.load_shard(samples.build_shard(g, folder, i, size, 0.0, seed_offset=HELD_OUT_SEED))
                for i in range(k)]  # fmt: skip
        images = samples.from_uint8(torch.cat([d["images"] for d in data])[:n])
        w_true = torch.cat([d["w_plus"] for d in data])[:n].float()
    else:
        rendered = samples.render_samples(g, list(range(HELD_OUT_SEED, HELD_OUT_SEED + n)), size, "full")
        images, w_true = samples.from_uint8(rendered["images"]), rendered["w_plus"]
    encoder = encoder.eval()
    w_hat = torch.cat([encoder(images[i : i + 8]) for i in range(0, n, 8)])
    recon = torch.cat([g.synthesis(w_hat[i : i + 4], size=size) for i in range(0, n, 4)]).clamp(-1, 1)
    ceiling = torch.cat([g.synthesis(w_true[i : i + 4], size=size) for i in range(0, n, 4)]).clamp(-1, 1)
    p = psnr(recon, images)
    p_true = psnr(ceiling, images)
    times = []
    for i in range(min(n, 16)):
        t = time.perf_counter()
        encoder(images[i : i + 1])
        times.append(time.perf_counter() - t)
    out: dict[str, Any] = {}
    if celeba_val > 0 and work_dir is not None:
        photos = celeba_aligned(Path(work_dir), size, "val", limit=celeba_val, log=log)
        out = {"celeba_val_n": int(photos.shape[0]), "celeba_val_psnr_db": exit_psnr(encoder, g, samples.from_uint8(photos))}
    return {
        **out,
        "n": n,
        "seeds": f"{HELD_OUT_SEED}..{HELD_OUT_SEED + n - 1}",
        "latent_mse": float((w_hat - w_true).pow(2).mean()),
        "latent_mse_mean_w": float((encoder.w_avg - w_true).pow(2).mean()),
        "psnr_db": float(p.mean()),
        "psnr_db_min": float(p.min()),
        "psnr_true_latent_db": float(p_true.mean()),
        "seconds_per_image": float(torch.tensor(times).median()),
        "threads": torch.get_num_threads(),
    }


#: FFHQEncoderConfig field -> ``edsc train encoder`` option (fields without an option keep their defaults)
CLI_OPTIONS: dict[str, str] = {
    "steps": "--steps", "lr": "--lr", "batch_size": "--batch-size", "progressive_every": "--progressive-every",
    "n": "--n", "exit_share": "--exit-share", "shard_every": "--shard-every", "image_weight": "--image-weight",
    "perceptual_weight": "--perceptual-weight", "celeba_share": "--celeba-share", "celeba_n": "--celeba-n",
    "checkpoint_minutes": "--checkpoint-minutes", "seed": "--seed", "readout": "--readout",
    "refit_every": "--refit-every",
}  # fmt: skip


def config_command(config: dict[str, Any], work_dir: str | Path) -> str:
    """The ``edsc train encoder --models ffhq`` command line that runs with ``config`` (a logged config)."""
    opts = " ".join(f"{flag} {config[k]:g}" if isinstance(config[k], float) else f"{flag} {config[k]}"
                    for k, flag in CLI_OPTIONS.items() if k in config)  # fmt: skip
    return f"edsc train encoder --models ffhq --workdir {work_dir} --threads 1 {opts}"


def training_segments(work_dir: str | Path) -> list[dict[str, Any]]:
    """The runs (``start`` events of ``log.jsonl``) that trained a work folder: ``{"from_step", "command"}`` each."""
    path = Path(work_dir) / LOG_FILE
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") == "start":
                cmd = rec.get("command") or config_command(rec["config"], work_dir)
                out.append({"from_step": rec["step"], "command": cmd.replace(f"{Path.cwd()}/", "")})  # repo-relative
    return out


def publish_best(
    work_dir: str | Path, g: MobileStyleGAN, name: str = NAME, command: str = "", evaluation: dict | None = None,
    weights_dir: Path | None = None,
) -> Path:  # fmt: skip
    """Publish ``work_dir/best.safetensors`` as the zoo model ``name`` (float16 weights + card + ``.train.json``)."""
    from editable_deepsc.generator.ffhq import LICENCE

    info = best_training_info(work_dir)
    enc = load_best(work_dir, g)
    weights_dir = Path(weights_dir) if weights_dir else registry.WEIGHTS_DIR
    weights_dir.mkdir(parents=True, exist_ok=True)
    segments = [seg for seg in training_segments(work_dir) if seg["from_step"] < info["step"]]
    summary = {"training": info, "segments": segments, "held_out": evaluation, "generator": g.name}
    (weights_dir / f"{name}.train.json").write_text(json.dumps(summary, indent=2) + "\n")
    n_params = sum(p.numel() for p in enc.parameters())
    held = ""
    if evaluation:
        held = (f"; held-out seeds {evaluation['seeds']}: latent MSE {evaluation['latent_mse']:.4f}, "
                f"256-exit PSNR {evaluation['psnr_db']:.2f} dB, {evaluation['seconds_per_image']:.3f} s/image "
                f"({evaluation['threads']} threads)")  # fmt: skip
        if "celeba_val_psnr_db" in evaluation:
            held += (f"; FFHQ-aligned CelebA val photos (first {evaluation['celeba_val_n']}): 256-exit PSNR "
                     f"{evaluation['celeba_val_psnr_db']:.2f} dB")  # fmt: skip
    return registry.publish(
        name,
        encoder_state(enc, half=True),
        metadata=encoder_metadata(enc),
        weights_dir=weights_dir,
        kind="encoder",
        licence=f"research use only, as the generator whose samples it learnt from ({LICENCE}); the training code is MIT",
        source="; ".join(f"from step {seg['from_step']}: {seg['command']}" for seg in segments)
        + f"; published by {command or 'edsc train encoder --models ffhq --publish'} ("
        + (f"best fit: number {info['step']}, " if info["config"].get("readout") == "linear"
           else f"best checkpoint: step {info['step']}, ")
        + f"{info['samples']} cached samples, {info['seconds']:.0f} s of training; chosen by validation "
        f"{info.get('criterion', 'latent_mse')}, validation latent MSE {info['val_latent_mse']:.4f}{held})",
        resolution=enc.resolution,
        description=f"e4e-style inversion encoder for {g.name}: FFHQ-aligned {enc.resolution}x{enc.resolution} "
        f"face -> W+ ({enc.num_ws} x {enc.w_dim}), {n_params / 1e6:.2f}M parameters (float16 storage)",
        config={**enc.config(), "generator": g.name},
    )

"""Resumable cache of generator samples with known W+ for encoder training (``ffhq`` set).

A 1024x1024 MobileStyleGAN synthesis costs ~1.6 s per sample on one CPU thread,
so the encoder of the ``ffhq`` set learns from a cache built once:

* sample ``seed`` has the W+ latent :func:`~editable_deepsc.train.exits.latent_for_seed`
  (truncation in [0.5, 1], odd seeds style-mixed) -- training seeds ``0, 1, 2, ...``,
  held-out seeds from :data:`~editable_deepsc.train.exits.HELD_OUT_SEED` on;
* its image is the **full** synthesis area-downsampled to the encoder's input side
  (``source = "full"``), or, for a share ``exit_share`` of the shards, the
  generator's cheap exit of that side (``source = "exit"``, ~4x cheaper, slightly
  less saturated: it adds variety of latents, not of looks);
* shard ``k`` holds seeds ``k * SHARD_SIZE ... (k + 1) * SHARD_SIZE - 1`` as
  ``samples-KKKK.safetensors``: ``images`` uint8 (S, 3, R, R) (value ``round((x + 1) * 127.5)``)
  and ``w_plus`` float32 (S, num_ws, w_dim); complete shards are never rewritten
  (atomic writes), so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN
from editable_deepsc.train.exits import downsample, latent_for_seed
from editable_deepsc.zoo.registry import save_state_dict

SHARD_SIZE = 8
SHARD_FORMAT = "edsc-encoder-samples"


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] (N, 3, R, R) -> uint8 (N, 3, R, R) (clamped, rounded)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, R, R) -> float32 in [-1, 1]."""
    return images.float() / 127.5 - 1.0


def shard_path(work_dir: Path, k: int) -> Path:
    """``work_dir/samples-KKKK.safetensors``."""
    return Path(work_dir) / f"samples-{k:04d}.safetensors"


def shard_source(k: int, exit_share: float) -> str:
    """``"exit"`` for a share ``exit_share`` of the shards (spread evenly), else ``"full"``."""
    if exit_share <= 0:
        return "full"
    return "exit" if int((k + 1) * exit_share) > int(k * exit_share) else "full"


@torch.no_grad()
def render_samples(g: MobileStyleGAN, seeds: list[int], size: int, source: str, batch: int = 4) -> dict[str, torch.Tensor]:
    """Latents and images (uint8, side ``size``) of ``seeds``; ``source`` is ``"full"`` or ``"exit"``."""
    w_plus = torch.stack([latent_for_seed(g, s) for s in seeds])
    imgs = []
    for i in range(0, len(seeds), batch):
        wp = w_plus[i : i + batch]
        img = g.synthesis(wp) if source == "full" else g.synthesis(wp, size=size)
        imgs.append(to_uint8(downsample(img.clamp(-1, 1), size)))
    return {"images": torch.cat(imgs), "w_plus": w_plus.float()}


def build_shard(g: MobileStyleGAN, work_dir: Path, k: int, size: int, exit_share: float = 0.0,
                seed_offset: int = 0) -> Path:  # fmt: skip
    """Write shard ``k`` (seeds ``seed_offset + k * SHARD_SIZE ...``) unless it exists; return its path."""
    p = shard_path(work_dir, k)
    if p.is_file():
        return p
    source = shard_source(k, exit_share)
    seeds = list(range(seed_offset + k * SHARD_SIZE, seed_offset + (k + 1) * SHARD_SIZE))
    if source == "exit" and str(size) not in g.exits:
        source = "full"
    data = render_samples(g, seeds, size, source)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    save_state_dict(data, p, metadata={"format": SHARD_FORMAT, "seeds": json.dumps(seeds), "source": source})
    return p


def shard_info(path: Path) -> dict:
    """Metadata of a shard: ``seeds`` (list of int) and ``source``."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return {"seeds": json.loads(meta.get("seeds", "[]")), "source": meta.get("source", "full")}


def load_shard(path: Path) -> dict[str, torch.Tensor]:
    """``images`` uint8 (S, 3, R, R) and ``w_plus`` float32 (S, num_ws, w_dim) of a shard."""
    return load_file(str(path))


def complete_shards(work_dir: Path) -> list[Path]:
    """The shards present in ``work_dir``, by index."""
    return sorted(Path(work_dir).glob("samples-[0-9][0-9][0-9][0-9].safetensors"))


def build_cache(g: MobileStyleGAN, work_dir: Path, n: int, size: int, exit_share: float = 0.0,
                log: Callable[[str], None] = print) -> list[Path]:  # fmt: skip
    """Write every missing shard for seeds ``0 .. n-1`` (rounded up to whole shards); return the paths."""
    paths = []
    for k in range((n + SHARD_SIZE - 1) // SHARD_SIZE):
        t = time.time()
        existed = shard_path(work_dir, k).is_file()
        paths.append(build_shard(g, work_dir, k, size, exit_share))
        if not existed:
            log(f"sample shard {k}: {SHARD_SIZE} samples in {time.time() - t:.1f} s")
    return paths


if __name__ == "__main__":  # pragma: no cover - background cache filler: python -m ... WORKDIR N [EXIT_SHARE]
    import sys

    from editable_deepsc.generator.ffhq import load_ffhq

    torch.set_num_threads(1)
    build_cache(load_ffhq(), Path(sys.argv[1]), int(sys.argv[2]), 256,
                float(sys.argv[3]) if len(sys.argv) > 3 else 0.0, log=lambda s: print(s, flush=True))  # fmt: skip

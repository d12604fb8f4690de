"""Distil the early exits of MobileStyleGAN: small image heads on an intermediate block.

The trunk is frozen; only the heads learn. Three resumable phases, all under one
work folder:

1. **teacher cache** — for ``n`` training latents (seeds ``0..n-1`` of
   :func:`latent_for_seed`, truncation drawn in [0.5, 1], every second one a style
   mix of two latents) the full 1024 synthesis runs once; the features of the block
   the exits read (float16) and the area-downsampled final images at each exit size
   are written in shards ``teacher-NNNN.safetensors``. Existing shards are kept.
2. **training** — Adam on the heads against those targets (L1 + MSE), checkpointed
   every ``checkpoint_every`` steps to ``exits-train.safetensors`` (safetensors, no
   pickle) and resumed from it.
3. **publish** — the head weights as the zoo model ``edsc-ffhq-exits`` (small,
   kept in the repository) with a card.

Held-out evaluation (:func:`evaluate_exits`) uses seeds from ``HELD_OUT_SEED`` on,
never seen in training.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN, wavelets_to_image
from editable_deepsc.zoo.registry import save_state_dict

#: exit side -> block it reads (block 3 = 64x64 features of the FFHQ model)
DEFAULT_EXITS: dict[str, int] = {"128": 3, "256": 3}
HELD_OUT_SEED = 1_000_000
EXITS_FORMAT = "edsc-mobile-stylegan-exits"
SHARD = 8


def latent_for_seed(g: MobileStyleGAN, seed: int, mix: bool | None = None) -> torch.Tensor:
    """The training/evaluation W+ latent (num_ws, w_dim) of one seed.

    ``z ~ N(0, I)`` from ``seed``, truncation ``psi ~ U(0.5, 1)`` around ``w_avg``;
    with ``mix`` (default: odd seeds) the styles from a random crossover index on
    come from a second ``z`` (style mixing), so the heads see W+ that is not a broadcast.
    """
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(2, g.z_dim, generator=gen)
    psi = 0.5 + 0.5 * float(torch.rand((), generator=gen))
    cross = int(torch.randint(1, g.num_ws, (), generator=gen))
    with torch.no_grad():
        w = g.truncate(g.mapping(z), psi)
    wp = w[0].expand(g.num_ws, -1).clone()
    if (seed % 2 == 1) if mix is None else mix:
        wp[cross:] = w[1]
    return wp


def downsample(img: torch.Tensor, size: int) -> torch.Tensor:
    """Area-downsample (N, 3, R, R) to (N, 3, size, size) (the exits' target)."""
    return img if img.shape[-1] == size else F.interpolate(img, size=(size, size), mode="area")


@torch.no_grad()
def teacher_batch(g: MobileStyleGAN, w_plus: torch.Tensor, exits: dict[str, int]) -> dict[str, torch.Tensor]:
    """Full synthesis of ``w_plus``: the features of the exit blocks and the downsampled images."""
    feats = g.features(w_plus)
    full = wavelets_to_image(g.to_img(feats[-1], w_plus[:, -1])).clamp(-1, 1)
    out: dict[str, torch.Tensor] = {"w_plus": w_plus.float()}
    for k in sorted(set(exits.values())):
        out[f"feat{k}"] = feats[1 + k].half()
    for size in exits:
        out[f"target{size}"] = downsample(full, int(size)).half()
    return out


def build_cache(
    g: MobileStyleGAN, work_dir: Path, n: int, exits: dict[str, int], log=print, batch: int = 4
) -> list[Path]:
    """Phase 1: write the teacher shards for seeds ``0..n-1`` (resumable: complete shards are kept)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for s0 in range(0, n, SHARD):
        p = work_dir / f"teacher-{s0 // SHARD:04d}.safetensors"
        paths.append(p)
        if p.is_file():
            continue
        t = time.time()
        seeds = list(range(s0, min(n, s0 + SHARD)))
        parts = [teacher_batch(g, torch.stack([latent_for_seed(g, s) for s in seeds[i : i + batch]]), exits)
                 for i in range(0, len(seeds), batch)]  # fmt: skip
        shard = {k: torch.cat([p_[k] for p_ in parts]) for k in parts[0]}
        save_state_dict(shard, p, metadata={"seeds": json.dumps(seeds)})
        log(f"teacher shard {p.name}: {len(seeds)} latents in {time.time() - t:.1f} s")
    return paths


@torch.no_grad()
def head_inputs(g: MobileStyleGAN, shard: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``input<size>`` (what each exit head reads, float32) to a loaded teacher shard."""
    out = dict(shard)
    for size, block in g.config.exits.items():
        x = shard[f"feat{block}"].float()
        out[f"input{size}"] = torch.cat([g.exit_input(int(size), x[i : i + 4], shard["w_plus"][i : i + 4])
                                         for i in range(0, x.shape[0], 4)])  # fmt: skip
    return out


def exit_loss(
    g: MobileStyleGAN, shard: dict[str, torch.Tensor], idx: torch.Tensor, crop: int | None = None,
    gen: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """L1 + MSE of every exit against its target on the samples ``idx`` of a shard (from :func:`head_inputs`).

    With ``crop``, each head sees a random ``crop x crop`` window of its input (the
    heads are local), and the loss skips the outer ring its zero padding disturbs.
    """
    wp = shard["w_plus"][idx]
    total = torch.zeros(())
    psnrs = {}
    for size in g.config.exits:
        x = shard[f"input{size}"][idx]
        target = shard[f"target{size}"][idx].float()
        r = x.shape[-1]
        f = target.shape[-1] // r
        if crop is not None and crop < r:
            i, j = (int(v) for v in torch.randint(0, r - crop + 1, (2,), generator=gen))
            x = x[..., i : i + crop, j : j + crop]
            target = target[..., i * f : (i + crop) * f, j * f : (j + crop) * f]
        pred = g.exits[size](x, wp[:, -1])
        if crop is not None and crop < r:
            pred, target = pred[..., f:-f, f:-f], target[..., f:-f, f:-f]
        mse = F.mse_loss(pred, target)
        total = total + F.l1_loss(pred, target) + mse
        psnrs[size] = float(10 * torch.log10(4.0 / mse.detach().clamp_min(1e-12)))
    return total, psnrs


def init_heads(g: MobileStyleGAN, exits: dict[str, int]) -> None:
    """Add the exit heads; their modulations start constant (weight 0, bias 1)."""
    for size, block in exits.items():
        head = g.add_exit(int(size), int(block))
        for m in [*head.convs, head.to_img]:
            torch.nn.init.zeros_(m.modulation.weight)
            torch.nn.init.ones_(m.modulation.bias)


def train_heads(
    g: MobileStyleGAN, shards: list[Path], work_dir: Path, steps: int, batch: int = 4, lr: float = 2e-3,
    checkpoint_every: int = 50, seed: int = 0, crop: int | None = 32, log=print,
) -> dict[str, Any]:  # fmt: skip
    """Phase 2: Adam on the exit heads only, resumable from ``work_dir/exits-train.safetensors``."""
    from editable_deepsc.train.checkpointing import load_training_state, save_training_state

    g.requires_grad_(False)
    params = [p for p in g.exits.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    ckpt = work_dir / "exits-train.safetensors"
    counters: dict[str, Any] = {"step": 0, "seconds": 0.0}
    if ckpt.is_file():
        counters = load_training_state(ckpt, {"exits": g.exits}, {"adam": opt})
        log(f"resumed from {ckpt.name} at step {counters['step']}")
    gen = torch.Generator().manual_seed(seed + int(counters["step"]))
    cache: dict[int, dict[str, torch.Tensor]] = {}
    t0 = time.time() - float(counters["seconds"])
    psnrs: dict[str, float] = {}
    while counters["step"] < steps:
        step = int(counters["step"])
        for group in opt.param_groups:  # cosine decay to 5 %
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        i = int(torch.randint(len(shards), (), generator=gen))
        if i not in cache:
            if len(cache) >= 24:
                cache.pop(next(iter(cache)))
            cache[i] = head_inputs(g, load_file(str(shards[i])))
        shard = cache[i]
        idx = torch.randperm(shard["w_plus"].shape[0], generator=gen)[:batch]
        loss, psnrs = exit_loss(g, shard, idx, crop, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        counters["step"] = step + 1
        counters["seconds"] = time.time() - t0
        if counters["step"] % checkpoint_every == 0 or counters["step"] == steps:
            save_training_state(ckpt, {"exits": g.exits}, {"adam": opt}, counters)
            log(f"step {counters['step']}/{steps}  loss {loss.item():.4f}  psnr "
                + " ".join(f"{k}:{v:.1f}" for k, v in psnrs.items()) + f"  {counters['seconds']:.0f} s")  # fmt: skip
    g.requires_grad_(False)
    return {"steps": int(counters["step"]), "seconds": round(float(counters["seconds"]), 1), "last_batch_psnr": psnrs}


def exits_state(g: MobileStyleGAN) -> dict[str, torch.Tensor]:
    """The exit heads' tensors, keyed as in the generator (``exits.<size>.*``)."""
    return {k: v for k, v in g.state_dict().items() if k.startswith("exits.")}


def exits_config(g: MobileStyleGAN) -> dict[str, Any]:
    """What rebuilding the heads needs: ``exits`` (side -> block), ``exit_hidden``, ``exit_convs``."""
    c = g.config
    return {"exits": dict(c.exits), "exit_hidden": c.exit_hidden, "exit_convs": c.exit_convs}


def publish_exits(g: MobileStyleGAN, info: dict[str, Any], name: str = "edsc-ffhq-exits",
                  weights_dir: Path | None = None) -> Path:  # fmt: skip
    """Phase 3: write the heads as the zoo model ``name`` (safetensors + card; small, kept in the repository)."""
    from editable_deepsc.generator.ffhq import GENERATOR_NAME, LICENCE
    from editable_deepsc.zoo.registry import publish

    config = {**exits_config(g), "generator": GENERATOR_NAME, "generator_sha256": info.get("generator_sha256", "")}
    return publish(
        name, exits_state(g), kind="generator-exits",
        licence=f"research use only, as the generator it is distilled from ({LICENCE}); the training code is MIT",
        source=info["command"], resolution=max(int(s) for s in g.config.exits),
        description="Early exits of mobilestylegan-ffhq: " + ", ".join(
            f"{s}x{s} from block {b}" for s, b in sorted(g.config.exits.items(), key=lambda kv: int(kv[0]))),
        config=config, metadata={"format": EXITS_FORMAT, "config": json.dumps(config)}, weights_dir=weights_dir,
    )  # fmt: skip


def run_exits(
    n: int = 192, steps: int = 800, batch: int = 4, crop: int = 32, lr: float = 2e-3, seed: int = 0,
    work_dir: str | Path = ".edsc-cache/exits-ffhq", export: bool = True, exits: dict[str, int] | None = None,
    eval_n: int = 0, log=print,
) -> dict[str, Any]:  # fmt: skip
    """``edsc train exits``: teacher cache, training, publish, held-out evaluation (phases resume).

    Returns
    -------
    dict
        Steps, seconds, the last batch's PSNR per exit, the published path.
    """
    from editable_deepsc.generator.ffhq import load_ffhq, read_card

    t0 = time.time()
    exits = dict(exits or DEFAULT_EXITS)
    work = Path(work_dir)
    g = load_ffhq(exits=False)
    shards = build_cache(g, work, n, exits, log=log)
    t_cache = time.time() - t0
    init_heads(g, exits)
    res = train_heads(g, shards, work, steps, batch=batch, lr=lr, seed=seed, crop=crop, log=log)
    res["teacher_cache_seconds_this_run"] = round(t_cache, 1)
    res["n"] = n
    res["command"] = f"edsc train exits --n {n} --steps {steps} --batch {batch} --crop {crop} --lr {lr} --seed {seed}"
    res["generator_sha256"] = read_card()["sha256"]
    if export:
        res["published"] = str(publish_exits(g, res))
    if eval_n > 0:
        from editable_deepsc.generator.exit_eval import evaluate_exits

        g.eval()
        res["held_out"] = evaluate_exits(g, n=eval_n, log=log)
        (work / "held_out.json").write_text(json.dumps(res["held_out"], indent=1) + "\n")
    return res

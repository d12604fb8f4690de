"""Distil the early exits of MobileStyleGAN: small image heads on an intermediate block.

The trunk is frozen; only the heads learn. The default heads (FFHQ: both exits on
block 4, no styled convolutions) are a modulated 1x1 convolution to the Haar bands,
whose weights have a closed form (ridge regression, :func:`fit_heads_closed_form`).
Three resumable phases, all under one work folder:

1. **teacher cache** — for ``n`` training latents (seeds ``0..n-1`` of
   :func:`latent_for_seed`, truncation drawn in [0.5, 1], every second one a style
   mix of two latents) the full 1024 synthesis runs once; the features of the block
   the exits read (float16; a later block is computed from a cached earlier one) and the area-downsampled final images at each exit size
   are written in shards ``teacher-NNNN.safetensors``. Existing shards are kept.
2. **training** — the closed-form fit of the heads without convolutions (saved as
   step 0), then Adam on the heads against those targets (L1 + MSE), checkpointed
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

#: exit side -> block it reads (block 4 = 128x128 features of the FFHQ model)
DEFAULT_EXITS: dict[str, int] = {"128": 4, "256": 4}
#: styled convolutions per default exit head (0: a modulated 1x1 to the Haar bands, fitted in closed form)
DEFAULT_EXIT_CONVS = 0
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
def block_features(g: MobileStyleGAN, shard: dict[str, torch.Tensor], block: int) -> torch.Tensor:
    """Float32 features (N, C, r, r) after ``layers[block]`` for a teacher shard.

    Taken from the shard (``feat<block>``) or computed from the highest cached
    block below it by running the trunk's next blocks (four latents at a time).
    """
    if f"feat{block}" in shard:
        return shard[f"feat{block}"].float()
    have = max((int(k[4:]) for k in shard if k.startswith("feat") and int(k[4:]) < block), default=None)
    if have is None:
        raise ValueError(f"the teacher shard holds no features at or below block {block}")
    x, wp = shard[f"feat{have}"].float(), shard["w_plus"]
    parts = []
    for i in range(0, x.shape[0], 4):
        y = x[i : i + 4]
        for k in range(have + 1, block + 1):
            y = g.layers[k](y, wp[i : i + 4, 1 + 3 * k : 4 + 3 * k])
        parts.append(y)
    return torch.cat(parts)


@torch.no_grad()
def head_inputs(g: MobileStyleGAN, shard: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``input<size>`` (what each exit head reads, float32) to a loaded teacher shard."""
    out = dict(shard)
    feats: dict[int, torch.Tensor] = {}
    for size, block in g.config.exits.items():
        if block not in feats:
            feats[block] = block_features(g, shard, int(block))
        x = feats[block]
        out[f"input{size}"] = torch.cat([g.exit_input(int(size), x[i : i + 4], shard["w_plus"][i : i + 4])
                                         for i in range(0, x.shape[0], 4)])  # fmt: skip
    return out


def haar_bands(img: torch.Tensor) -> torch.Tensor:
    """Forward Haar DWT, the inverse of :func:`wavelets_to_image`: (N, C, 2H, 2W) -> (N, 4C, H, W)."""
    from editable_deepsc.generator.mobile_stylegan import _HAAR

    n, c, h, w = img.shape
    sub = F.pixel_unshuffle(img, 2).reshape(n, c, 4, h // 2, w // 2)
    bands = torch.einsum("pk,ncphw->nckhw", _HAAR.to(img), sub)  # orthonormal: analysis = transpose
    return torch.cat([bands[:, :, 0], bands[:, :, 1:].reshape(n, 3 * c, h // 2, w // 2)], 1)


def head_target_bands(target: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What a head's 12 wavelet channels at ``side`` must be for the image ``target``, and which are fitted.

    Returns ``(bands (N, 12, side, side), fitted (12,) bool)``: the Haar bands of a
    target of side ``2 * side``; for a target of side ``side`` (an exit downsampling
    its head's image) ``LL = 2 * target`` and the high bands are free (not fitted).
    """
    if target.shape[-1] == 2 * side:
        return haar_bands(target), torch.ones(12, dtype=torch.bool)
    bands = torch.cat([2 * target, target.new_zeros(target.shape[0], 9, side, side)], 1)
    return bands, torch.arange(12) < 3


@torch.no_grad()
def fit_heads_closed_form(
    g: MobileStyleGAN, shards: list[Path], positions: int = 2048, ridge: float = 1e-3, seed: int = 0, log=print,
) -> dict[str, int]:  # fmt: skip
    """Set every exit head without styled convolutions to the ridge regression of its target on its input.

    Such a head is a modulated 1x1 convolution to the 12 Haar channels; with the
    modulation constant (weight 0, bias 1) it is linear in the features, so its
    least-squares weights have a closed form. ``positions`` random pixels of every
    latent of every shard enter ``X^T X`` (float64); the ridge is ``ridge`` times the
    mean diagonal. Heads with convolutions are left as they are.

    Returns
    -------
    dict
        Exit side -> number of (pixel) rows fitted.
    """
    sizes = [s for s in g.config.exits if len(g.exits[s].convs) == 0]
    if not sizes:
        return {}
    gen = torch.Generator().manual_seed(seed)
    acc: dict[str, list[torch.Tensor]] = {}
    rows = dict.fromkeys(sizes, 0)
    fitted: dict[str, torch.Tensor] = {}
    for p in shards:
        shard = head_inputs(g, load_file(str(p)))
        for size in sizes:
            x = shard[f"input{size}"]
            side = x.shape[-1]
            y, fitted[size] = head_target_bands(shard[f"target{size}"].float(), side)
            for i in range(x.shape[0]):
                f = torch.cat([x[i].flatten(1), torch.ones(1, side * side)]).T  # (P, C + 1)
                idx = torch.randperm(f.shape[0], generator=gen)[:positions]
                f, t = f[idx], y[i].flatten(1).T[idx]
                xtx, xty = (f.T @ f).double(), (f.T @ t).double()
                if size in acc:
                    acc[size][0] += xtx
                    acc[size][1] += xty
                else:
                    acc[size] = [xtx, xty]
                rows[size] += f.shape[0]
    for size in sizes:
        xtx, xty = acc[size]
        a = xtx + ridge * xtx.diagonal().mean() * torch.eye(xtx.shape[0], dtype=xtx.dtype)
        sol = torch.linalg.solve(a, xty).float().T  # (12, C + 1)
        head = g.exits[size].to_img
        torch.nn.init.zeros_(head.modulation.weight)
        torch.nn.init.ones_(head.modulation.bias)
        w, b = sol[:, :-1] / head.modulation.scale, sol[:, -1]
        keep = fitted[size]
        head.weight.data.copy_(torch.where(keep[:, None], w, torch.zeros_like(w))[:, :, None, None])
        head.bias.data.copy_(torch.where(keep, b, torch.zeros_like(b)))
        log(f"closed-form fit of the {size} exit: {rows[size]} pixels, {xtx.shape[0]} inputs")
    return rows


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
        pred = g.exit_image(int(size), x, wp[:, -1])
        if crop is not None and crop < r:
            pred, target = pred[..., f:-f, f:-f], target[..., f:-f, f:-f]
        mse = F.mse_loss(pred, target)
        total = total + F.l1_loss(pred, target) + mse
        psnrs[size] = float(10 * torch.log10(4.0 / mse.detach().clamp_min(1e-12)))
    return total, psnrs


def init_heads(g: MobileStyleGAN, exits: dict[str, int], convs: int | None = None) -> None:
    """Add the exit heads (``convs`` styled convolutions each, default: the config's); modulations start constant."""
    if convs is not None:
        g.config.exit_convs = int(convs)
    for size, block in exits.items():
        head = g.add_exit(int(size), int(block))
        for m in [*head.convs, head.to_img]:
            torch.nn.init.zeros_(m.modulation.weight)
            torch.nn.init.ones_(m.modulation.bias)


def train_heads(
    g: MobileStyleGAN, shards: list[Path], work_dir: Path, steps: int, batch: int = 4, lr: float = 2e-3,
    checkpoint_every: int = 50, seed: int = 0, crop: int | None = 32, closed_form: bool = True,
    closed_form_positions: int = 2048, log=print,
) -> dict[str, Any]:  # fmt: skip
    """Phase 2: Adam on the exit heads only, resumable from ``work_dir/exits-train.safetensors``.

    Without a checkpoint, heads without styled convolutions first get their
    closed-form (ridge) weights (:func:`fit_heads_closed_form`), saved as step 0;
    ``steps`` Adam steps then fine-tune them (``steps=0``: the closed form alone).
    """
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
    elif closed_form:
        t = time.time()
        if fit_heads_closed_form(g, shards, positions=closed_form_positions, seed=seed, log=log):
            counters["seconds"] = time.time() - t
            save_training_state(ckpt, {"exits": g.exits}, {"adam": opt}, counters)
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
            if len(cache) >= 8:  # ~0.3 GB per shard of block-4 inputs
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
    eval_n: int = 0, convs: int = DEFAULT_EXIT_CONVS, log=print,
) -> dict[str, Any]:  # fmt: skip
    """``edsc train exits``: teacher cache, closed-form fit + training, publish, held-out evaluation (phases resume).

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
    init_heads(g, exits, convs)
    res = train_heads(g, shards, work, steps, batch=batch, lr=lr, seed=seed, crop=crop, log=log)
    res["teacher_cache_seconds_this_run"] = round(t_cache, 1)
    res["n"] = n
    res["command"] = (f"edsc train exits --n {n} --steps {steps} --convs {convs} --batch {batch} --crop {crop} "
                      f"--lr {lr} --seed {seed}")
    res["generator_sha256"] = read_card()["sha256"]
    if export:
        res["published"] = str(publish_exits(g, res))
    if eval_n > 0:
        from editable_deepsc.generator.exit_eval import evaluate_exits

        g.eval()
        res["held_out"] = evaluate_exits(g, n=eval_n, log=log)
        (work / "held_out.json").write_text(json.dumps(res["held_out"], indent=1) + "\n")
    return res

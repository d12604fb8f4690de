"""Training of the ``ffhq`` set's e4e-style encoder ``edsc-e4e-ffhq`` on the CPU (``edsc train encoder --models ffhq``).

The encoder reads an FFHQ-aligned face at 256x256 and predicts the W+ (23 x 512)
of MobileStyleGAN as ``w_avg + w_0 offset + per-layer offsets``
(:class:`~editable_deepsc.inversion.encoder.E4EEncoder`). By default its pyramid
comes from the frozen ImageNet EfficientNet-Lite0 (``backbone``): with a few
thousand generator samples on a 2-core CPU, a from-scratch CNN
(:data:`~editable_deepsc.inversion.encoder.FFHQ_CHANNELS`, ``backbone=None``) had
not left the mean latent after 200 steps, while pretrained features generalise
from few samples; their maps are computed once per cached sample, so a step
trains only the laterals and heads. All under one work folder:

* **sample cache** (:mod:`editable_deepsc.train.encoder_samples`): generator
  samples with known W+ (training seeds ``0 .. n-1``), their full 1024 synthesis
  area-downsampled to 256 (a share ``exit_share`` of the shards uses the cheap
  256 exit), uint8 shards. The cache grows *during* training: one new shard every
  ``shard_every`` steps until ``n`` samples exist, so training starts at once.
* **phase A, latent loss**: a batch of ``batch_size`` cached samples, MSE between
  the predicted and the true W+ (no backward through the generator) plus e4e's
  offset regulariser ``delta_weight * sum_i ||delta_i||``; offsets are unlocked
  layer by layer every ``progressive_every`` steps.
* **phase B, image losses** (``image_weight > 0``, every ``image_every`` steps):
  ``image_batch`` images -- cached full-synthesis samples and, with
  ``celeba_share``, FFHQ-aligned CelebA 000001-000700 (training split only;
  aligned once into ``celeba-aligned.safetensors``) -- are inverted and
  resynthesised at the 256 exit; loss = pixel MSE + ``perceptual_weight`` x proxy
  LPIPS (:class:`~editable_deepsc.inversion.losses.ReconstructionLoss`), backward
  through the frozen generator.

Batches are drawn with ``derive_seed(seed, "step", i)`` from the shards present at
that step. A checkpoint (encoder, Adam moments, counters; safetensors) is written
every ``checkpoint_minutes``; at each checkpoint the latent MSE on a fixed
validation set (seeds 900000..., never trained on, disjoint from the held-out
test seeds >= 1000000) decides whether ``best.safetensors`` is replaced. An
existing checkpoint is resumed; the run stops at ``steps`` or ``max_seconds``.
:func:`editable_deepsc.eval.encoder_ffhq.publish_best` writes the best encoder
(float16) as the zoo model with its card, :func:`~editable_deepsc.eval.encoder_ffhq.evaluate_encoder`
measures it on held-out seeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN
from editable_deepsc.inversion.encoder import BACKBONE, E4EEncoder, encoder_metadata, encoder_state
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train import encoder_samples as samples
from editable_deepsc.train.encoder import lr_factor, unlocked_layers
from editable_deepsc.train.encoder_ffhq_data import CELEBA_FILE, celeba_aligned
from editable_deepsc.train.loop import ResumableRun
from editable_deepsc.zoo import registry

NAME = "edsc-e4e-ffhq"
CHECKPOINT_FILE = "checkpoint.safetensors"
BEST_FILE = "best.safetensors"
LOG_FILE = "log.jsonl"
#: first seed of the validation samples that choose the best checkpoint (never trained on)
VAL_SEED = 900_000


@dataclass
class FFHQEncoderConfig:
    """Hyper-parameters of :func:`train_ffhq_encoder` (recorded in the log and the card).

    Attributes
    ----------
    n : int
        Training samples the cache grows to (seeds ``0 .. n-1``).
    size : int
        Encoder input side (the generator exit used by phase B must exist at this size).
    backbone : str or None
        ``"efficientnet-lite0"``: the encoder reads the frozen ImageNet EfficientNet-Lite0
        (only its laterals and heads train; the backbone maps of every cached sample are
        computed once and cached under ``maps/``); ``None``: its own convolutions.
    channels : tuple of int
        Encoder channels: the pyramid width ``(C,)`` with a backbone, else stem + one per halving.
    head_width : int
        Channels of the map-to-style convolutions.
    readout : str
        ``"linear"`` (default, with a backbone): no gradient steps -- the linear readout is
        refitted in closed form (ridge, :func:`fit_linear_readout`) on all cached samples
        every ``refit_every`` new shards, its two ridge strengths chosen on the validation
        set from :data:`RIDGE_GRID`; ``"conv"``: e4e heads trained by Adam.
    refit_every : int
        New shards between two refits of the linear readout.
    exit_share : float
        Share of the cache shards rendered with the generator's exit of side ``size``.
    shard_every : int
        Steps between two new cache shards while fewer than ``n`` samples exist (0: never).
    steps : int
        Planned steps: the cosine learning-rate decay (to 10%) spans them.
    batch_size : int
        Cached samples per latent-loss step.
    lr : float
        Adam learning rate.
    latent_weight, delta_weight : float
        Weights of the W+ MSE and of the offset regulariser.
    progressive_every : int
        Steps between unlocking successive layers' offsets (0: all at once).
    image_weight, perceptual_weight : float
        Phase B: weight of the image loss and, inside it, of the proxy LPIPS (pixel MSE has weight 1).
    image_every, image_batch : int
        Phase B runs every ``image_every`` steps on ``image_batch`` images.
    celeba_share : float
        Share of phase-B images that are aligned CelebA training photos (000001-000700).
    celeba_n : int
        How many of those photos (the first ``celeba_n``; aligning costs ~0.7 s each).
    checkpoint_minutes : float
        Wall minutes between checkpoints (and validation).
    val_n : int
        Validation samples (seeds ``VAL_SEED ...``).
    val_celeba : int
        With image losses on: aligned CelebA validation photos (000701 on) in the validation.
    seed : int
        Root seed.
    """

    n: int = 40_000
    size: int = 256
    backbone: str | None = BACKBONE
    channels: tuple[int, ...] = (192,)
    head_width: int = 96
    readout: str = "linear"
    refit_every: int = 16
    exit_share: float = 0.5
    shard_every: int = 4
    steps: int = 6000
    batch_size: int = 16
    lr: float = 3e-4
    latent_weight: float = 1.0
    delta_weight: float = 2e-4
    progressive_every: int = 50
    image_weight: float = 0.0
    perceptual_weight: float = 0.5
    image_every: int = 4
    image_batch: int = 2
    celeba_share: float = 0.5
    celeba_n: int = 700
    checkpoint_minutes: float = 5.0
    val_n: int = 32
    val_celeba: int = 16
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`BadInput` for out-of-range values."""
        if not 1 <= self.celeba_n <= 700:
            raise BadInput(f"celeba_n must lie in 1..700 (the training split), got {self.celeba_n}")
        if self.n < 1 or self.steps < 1 or self.batch_size < 1 or self.image_batch < 1 or self.image_every < 1:
            raise BadInput("n, steps, batch_size, image_batch and image_every must be >= 1")
        if self.size < 16 or self.size & (self.size - 1):
            raise BadInput(f"size must be a power of two >= 16, got {self.size}")
        if not 0.0 <= self.exit_share <= 1.0 or not 0.0 <= self.celeba_share <= 1.0:
            raise BadInput("exit_share and celeba_share must lie in [0, 1]")
        if self.lr <= 0 or self.progressive_every < 0 or self.shard_every < 0 or self.checkpoint_minutes <= 0:
            raise BadInput("lr and checkpoint_minutes must be > 0; progressive_every and shard_every >= 0")
        if min(self.latent_weight, self.delta_weight, self.image_weight, self.perceptual_weight) < 0:
            raise BadInput("loss weights must be >= 0")
        if self.readout not in ("conv", "linear") or (self.readout == "linear" and self.backbone is None):
            raise BadInput("readout must be 'conv' or, with a backbone, 'linear'")
        if self.refit_every < 1:
            raise BadInput("refit_every must be >= 1")
        if self.val_n < 0 or self.val_celeba < 0:
            raise BadInput("val_n and val_celeba must be >= 0")

    @property
    def criterion(self) -> str:
        """What picks the best checkpoint: ``latent_mse`` (phase A) or ``psnr`` (image losses on)."""
        return "psnr" if self.image_weight > 0 else "latent_mse"


# ---- data -------------------------------------------------------------------------------------------
class SamplePool:
    """The cached shards of a work folder, read on demand (a few recent shards kept in memory)."""

    def __init__(self, folder: Path, keep: int = 64) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.paths: list[Path] = []
        self._cache: dict[Path, dict[str, torch.Tensor]] = {}
        self._maps: dict[Path, dict[str, torch.Tensor]] = {}
        self.refresh()

    def refresh(self) -> int:
        """Re-list the shards; return how many samples exist."""
        self.paths = samples.complete_shards(self.folder)
        return len(self.paths) * samples.SHARD_SIZE

    def shard(self, p: Path) -> dict[str, torch.Tensor]:
        if p not in self._cache:
            if len(self._cache) >= self.keep:
                self._cache.pop(next(iter(self._cache)))
            self._cache[p] = samples.load_shard(p)
        return self._cache[p]

    def maps(self, p: Path, encoder: E4EEncoder) -> dict[str, torch.Tensor]:
        """Backbone maps (float16 ``m0, m1, m2``: coarse, medium, fine) of every sample of shard ``p``.

        Computed once per shard with ``encoder``'s frozen backbone and kept in memory
        and in ``<folder>/../maps/maps-KKKK.safetensors``.
        """
        if p in self._maps:
            return self._maps[p]
        from safetensors.torch import load_file

        q = self.folder.parent / "maps" / p.name.replace("samples-", "maps-")
        if q.is_file():
            maps = load_file(str(q))
        else:
            imgs = samples.from_uint8(self.shard(p)["images"])
            out = encoder.backbone_maps(imgs)
            maps = {f"m{i}": m.half().contiguous() for i, m in enumerate(out)}
            q.parent.mkdir(parents=True, exist_ok=True)
            registry.save_state_dict(maps, q, metadata={"backbone": str(encoder.backbone)})
        self._maps[p] = maps
        return maps

    def batch_maps(self, n: int, rng: torch.Generator, encoder: E4EEncoder) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Like :meth:`batch`, but the samples' cached backbone maps (float32 ``[coarse, medium, fine]``) for images."""
        picks = self._picks(self.paths, n, rng)
        per: list[list[torch.Tensor]] = [[], [], []]
        ws = []
        for p, i in picks:
            m = self.maps(p, encoder)
            for lvl in range(3):
                per[lvl].append(m[f"m{lvl}"][i])
            ws.append(self.shard(p)["w_plus"][i])
        return [torch.stack(x).float() for x in per], torch.stack(ws).float()

    @staticmethod
    def _picks(paths: list[Path], n: int, rng: torch.Generator) -> list[tuple[Path, int]]:
        picks = torch.randint(len(paths) * samples.SHARD_SIZE, (n,), generator=rng).tolist()
        return [(paths[j // samples.SHARD_SIZE], j % samples.SHARD_SIZE) for j in picks]

    def batch(self, n: int, rng: torch.Generator, full_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random samples: images float32 (n, 3, R, R) in [-1, 1] and W+ float32 (n, num_ws, w_dim)."""
        paths = self.paths
        if full_only:
            paths = [p for p in paths if samples.shard_info(p)["source"] == "full"] or paths
        if not paths:
            raise BadInput(f"no sample shards in {self.folder}")
        imgs, ws = [], []
        for p, i in self._picks(paths, n, rng):
            sh = self.shard(p)
            imgs.append(sh["images"][i])
            ws.append(sh["w_plus"][i])
        return samples.from_uint8(torch.stack(imgs)), torch.stack(ws).float()


def validation_set(g: MobileStyleGAN, work_dir: Path, cfg: FFHQEncoderConfig) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The validation samples (seeds ``VAL_SEED ...``, full synthesis), rendered once into ``work_dir/val``."""
    if cfg.val_n <= 0:
        return None
    folder = Path(work_dir) / "val"
    k = (cfg.val_n + samples.SHARD_SIZE - 1) // samples.SHARD_SIZE
    paths = [samples.build_shard(g, folder, i, cfg.size, 0.0, seed_offset=VAL_SEED) for i in range(k)]
    data = [samples.load_shard(p) for p in paths]
    imgs = torch.cat([d["images"] for d in data])[: cfg.val_n]
    ws = torch.cat([d["w_plus"] for d in data])[: cfg.val_n]
    return samples.from_uint8(imgs), ws.float()


@torch.no_grad()
def latent_mse(encoder: E4EEncoder, images: torch.Tensor, w_true: torch.Tensor, batch: int = 16) -> float:
    """Mean squared error between the encoder's W+ of ``images`` and ``w_true`` (float)."""
    was = encoder.training
    encoder.eval()
    err = sum(float((encoder(images[i : i + batch]) - w_true[i : i + batch]).pow(2).sum())
              for i in range(0, images.shape[0], batch))  # fmt: skip
    encoder.train(was)
    return err / w_true.numel()


@torch.no_grad()
def exit_psnr(encoder: E4EEncoder, g: MobileStyleGAN, images: torch.Tensor, batch: int = 4) -> float:
    """Mean PSNR (dB) of the encoder's reconstruction at the generator's exit of the encoder's side vs ``images``."""
    was = encoder.training
    encoder.eval()
    vals = []
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch]
        mse = (g.synthesis(encoder(x), size=encoder.resolution).clamp(-1, 1) - x).pow(2).flatten(1).mean(1)
        vals.append(10 * torch.log10(4.0 / mse.clamp_min(1e-12)))  # PSNR, data range 2
    encoder.train(was)
    return float(torch.cat(vals).mean())


def validate(encoder: E4EEncoder, g: MobileStyleGAN, val: tuple[torch.Tensor, torch.Tensor],
             celeba_val: torch.Tensor | None, criterion: str) -> tuple[dict[str, float], float]:  # fmt: skip
    """Validation numbers and the score to minimise (``latent_mse``, or minus the mean PSNR for ``psnr``)."""
    out = {"val_latent_mse": latent_mse(encoder, *val)}
    if criterion == "latent_mse":
        return out, out["val_latent_mse"]
    out["val_psnr"] = exit_psnr(encoder, g, val[0])
    if celeba_val is not None and len(celeba_val):
        out["val_psnr_celeba"] = exit_psnr(encoder, g, samples.from_uint8(celeba_val))
    psnrs = [out[k] for k in ("val_psnr", "val_psnr_celeba") if k in out]
    return out, -sum(psnrs) / len(psnrs)


# ---- one step ---------------------------------------------------------------------------------------
def train_step(
    encoder: E4EEncoder,
    g: MobileStyleGAN,
    pool: SamplePool,
    opt: torch.optim.Optimizer,
    cfg: FFHQEncoderConfig,
    step: int,
    recon: Any = None,
    celeba: torch.Tensor | None = None,
) -> dict[str, float]:
    """One update (phase A, plus phase B on every ``image_every``-th step when ``image_weight > 0``).

    Returns the step's losses (floats): ``latent``, ``delta``, ``loss`` and, on phase-B
    steps, ``image``.
    """
    rng = make_generator(derive_seed(cfg.seed, "step", step))
    encoder.num_active.fill_(unlocked_layers(step, encoder.num_ws, cfg.progressive_every))
    for group in opt.param_groups:
        group["lr"] = cfg.lr * lr_factor(step, cfg.steps)
    if encoder.backbone is not None:
        maps, w_true = pool.batch_maps(cfg.batch_size, rng, encoder)
        w0, deltas = encoder.parts_from_maps(maps)
    else:
        x, w_true = pool.batch(cfg.batch_size, rng)
        w0, deltas = encoder.forward_parts(x)
    w_hat = w0[:, None] + deltas
    parts = {"latent": (w_hat - w_true).pow(2).mean(), "delta": E4EEncoder.delta_norm(deltas).mean()}
    total = cfg.latent_weight * parts["latent"] + cfg.delta_weight * parts["delta"]
    if cfg.image_weight > 0 and recon is not None and step % cfg.image_every == 0:
        n_c = int(round(cfg.image_batch * cfg.celeba_share)) if celeba is not None and len(celeba) else 0
        imgs = []
        if cfg.image_batch - n_c:
            imgs.append(pool.batch(cfg.image_batch - n_c, rng, full_only=True)[0])
        if n_c:
            idx = torch.randint(len(celeba), (n_c,), generator=rng)
            imgs.append(samples.from_uint8(celeba[idx]))
        xi = torch.cat(imgs)
        g.requires_grad_(False)  # gradients reach the encoder through the frozen generator
        yi = g.synthesis(encoder(xi), size=cfg.size)
        parts["image"] = recon(yi, xi).mean()
        total = total + cfg.image_weight * cfg.image_every * parts["image"]
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    out = {k: float(v.detach()) for k, v in parts.items()}
    out["loss"] = float(total.detach())
    return out


def new_encoder(g: MobileStyleGAN, cfg: FFHQEncoderConfig) -> E4EEncoder:
    """A freshly initialised encoder (seeded) for ``g`` at ``cfg.size``."""
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(cfg.seed, "encoder-init"))
        return E4EEncoder.for_generator(g, tuple(cfg.channels), resolution=cfg.size, backbone=cfg.backbone,
                                        head_width=cfg.head_width, readout=cfg.readout)  # fmt: skip


#: Ridge strengths (times the mean diagonal of the standardised Gram matrix / 472) tried for w_0 and the offsets.
RIDGE_GRID: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@torch.no_grad()
def pooled_dataset(encoder: E4EEncoder, pool: SamplePool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled backbone features (N, 472) float64 and W+ (N, num_ws, w_dim) float32 of every cached sample."""
    feats, ws = [], []
    for p in pool.paths:
        m = pool.maps(p, encoder)
        feats.append(encoder.pooled_features([m["m0"], m["m1"], m["m2"]]).double())
        ws.append(pool.shard(p)["w_plus"].float())
    return torch.cat(feats), torch.cat(ws)


@torch.no_grad()
def fit_linear_readout(
    encoder: E4EEncoder, feats: torch.Tensor, w_plus: torch.Tensor, val_feats: torch.Tensor | None = None,
    val_w: torch.Tensor | None = None, grid: tuple[float, ...] = RIDGE_GRID,
) -> dict[str, float]:  # fmt: skip
    """Set ``encoder``'s linear readout to the ridge regression of W+ on the pooled backbone features.

    ``w_0`` is fitted to layer 0 of W+ minus ``w_avg``, the offsets to ``w_i - w_0`` (i >= 1) --
    the e4e decomposition; each gets its own ridge strength ``lam * trace(G) / d`` (G the Gram
    matrix of the standardised features), the pair chosen from ``grid`` by the latent MSE on
    (``val_feats``, ``val_w``) (without a validation set: the middle of the grid). A larger
    strength for the offsets is e4e's offset regulariser in closed form.

    Parameters
    ----------
    encoder : E4EEncoder
        With ``readout="linear"``; modified in place.
    feats : torch.Tensor
        (N, d) pooled features (:meth:`E4EEncoder.pooled_features`).
    w_plus : torch.Tensor
        (N, num_ws, w_dim) true latents.
    val_feats, val_w : torch.Tensor, optional
        Validation features and latents.

    Returns
    -------
    dict
        ``lam0``, ``lam_delta`` (chosen) and ``val_latent_mse`` (if a validation set was given).
    """
    if encoder.readout != "linear":
        raise BadInput("fit_linear_readout needs an encoder with readout='linear'")
    x = feats.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xn = (x - mean) / std
    gram = xn.T @ xn
    scale = float(gram.diagonal().mean())
    y0 = w_plus[:, 0].double() - encoder.w_avg.double()
    yd = (w_plus[:, 1:] - w_plus[:, :1]).double().flatten(1)
    b0, bd = y0.mean(0), yd.mean(0)
    rhs0, rhsd = xn.T @ (y0 - b0), xn.T @ (yd - bd)
    eye = torch.eye(x.shape[1], dtype=torch.float64)
    sol0 = {lam: torch.linalg.solve(gram + lam * scale * eye, rhs0) for lam in grid}
    sold = {lam: torch.linalg.solve(gram + lam * scale * eye, rhsd) for lam in grid}
    encoder.feat_mean.copy_(mean.float())
    encoder.feat_std.copy_(std.float())

    def setw(l0: float, ld: float) -> None:
        encoder.lin0.weight.copy_(sol0[l0].T.float())
        encoder.lin0.bias.copy_(b0.float())
        encoder.lin_delta.weight.copy_(sold[ld].T.float())
        encoder.lin_delta.bias.copy_(bd.float())

    if val_feats is None or val_w is None:
        mid = grid[len(grid) // 2]
        setw(mid, mid)
        return {"lam0": mid, "lam_delta": mid}
    encoder.num_active.fill_(encoder.num_ws)
    vmaps_f = val_feats.float()
    best: tuple[float, float, float] | None = None
    for l0 in grid:  # the offsets do not change layer 0, so choose the two strengths one after the other
        setw(l0, grid[-1])
        err0 = float((_readout(encoder, vmaps_f)[:, 0] - val_w[:, 0]).pow(2).mean())
        if best is None or err0 < best[2]:
            best = (l0, grid[-1], err0)
    l0 = best[0]
    scores = {}
    for ld in grid:
        setw(l0, ld)
        scores[ld] = float((_readout(encoder, vmaps_f) - val_w).pow(2).mean())
    ld = min(scores, key=scores.get)
    setw(l0, ld)
    return {"lam0": l0, "lam_delta": ld, "val_latent_mse": scores[ld]}


def _readout(encoder: E4EEncoder, pooled: torch.Tensor) -> torch.Tensor:
    """W+ from pooled (unstandardised) features through the linear readout."""
    f = (pooled - encoder.feat_mean) / encoder.feat_std
    n = f.shape[0]
    w0 = encoder.w_avg + encoder.lin0(f)
    return torch.cat([w0[:, None], w0[:, None] + encoder.lin_delta(f).view(n, encoder.num_ws - 1, encoder.w_dim)], 1)


def fit_ffhq_readout(
    work_dir: str | Path, cfg: FFHQEncoderConfig, g: MobileStyleGAN, max_seconds: float | None = None,
    log: Callable[[str], None] = print, command: str = "",
) -> dict[str, Any]:  # fmt: skip
    """The ``readout="linear"`` run: grow the cache, refit in closed form every ``refit_every`` shards, keep the best.

    Resumable by construction (the cache and the maps are on disk; a fit takes seconds). Each
    refit is logged to ``log.jsonl`` with the number of samples; ``best.safetensors`` is
    replaced when the validation latent MSE improves. Stops when ``n`` samples are cached or
    after ``max_seconds``.
    """
    cfg.validate()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    g = g.eval().requires_grad_(False)
    sample_dir = work / "samples"
    pool = SamplePool(sample_dir)
    if pool.refresh() == 0:
        samples.build_shard(g, sample_dir, 0, cfg.size, cfg.exit_share)
        pool.refresh()
    val = validation_set(g, work, cfg)
    enc = new_encoder(g, cfg).eval()
    val_feats = None
    if val is not None:
        val_feats = enc.pooled_features(enc.backbone_maps(val[0])).double()
    best_path = work / BEST_FILE
    best = _best_score(best_path, "latent_mse")
    t0 = time.perf_counter()
    fits = 0
    record: dict[str, Any] = {}
    with open(work / LOG_FILE, "a") as logf:
        logf.write(json.dumps({"event": "start", "step": 0, "command": command, "config": asdict(cfg)}) + "\n")
        logf.flush()
        while True:
            t = time.perf_counter()
            feats, w_plus = pooled_dataset(enc, pool)
            numbers = fit_linear_readout(enc, feats, w_plus, val_feats, None if val is None else val[1])
            fits += 1
            record = {"samples": int(w_plus.shape[0]), **numbers, "fit_seconds": round(time.perf_counter() - t, 1),
                      "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            score = numbers.get("val_latent_mse", float("inf"))
            if score < best:
                best = score
                _save_best(enc, best_path, fits, {**numbers, "criterion": "latent_mse", "score": score},
                           record["samples"], cfg, record["seconds"])  # fmt: skip
                record["best"] = True
            logf.write(json.dumps(record) + "\n")
            logf.flush()
            log("fit on " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
            done = len(pool.paths) * samples.SHARD_SIZE >= cfg.n
            if done or (max_seconds is not None and time.perf_counter() - t0 > max_seconds):
                break
            for _ in range(cfg.refit_every):
                k = _first_missing(sample_dir, cfg.n)
                if k is None:
                    break
                samples.build_shard(g, sample_dir, k, cfg.size, cfg.exit_share)
                pool.refresh()
                pool.maps(samples.shard_path(sample_dir, k), enc)
                if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                    break
    return {"fits": fits, "samples": record.get("samples"), "seconds": round(time.perf_counter() - t0, 1),
            "criterion": "latent_mse", "best_score": None if best == float("inf") else best, "final": record}  # fmt: skip


# ---- the run ----------------------------------------------------------------------------------------
def train_ffhq_encoder(
    work_dir: str | Path,
    cfg: FFHQEncoderConfig,
    g: MobileStyleGAN,
    max_seconds: float | None = None,
    stop_at: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or resume) the encoder of ``g`` in ``work_dir``; return a summary.

    Parameters
    ----------
    work_dir : str or Path
        ``samples/`` (cache), ``val/``, ``checkpoint.safetensors``, ``best.safetensors``, ``log.jsonl``.
    cfg : FFHQEncoderConfig
    g : MobileStyleGAN
        The frozen generator (with its exit of side ``cfg.size`` for phase B / exit shards).
    max_seconds : float, optional
        Wall seconds for this call; it checkpoints and returns after the step that exceeds them.
    stop_at : int, optional
        Stop (with a checkpoint) once this step is reached.
    progress : bool
        tqdm bar.
    log : callable
        Receives one line per checkpoint / event.

    Returns
    -------
    dict
        ``steps``, ``seconds`` (accumulated), ``samples`` (cached), ``best_score`` (of ``cfg.criterion``),
        ``final`` losses.
    """
    cfg.validate()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    g = g.eval().requires_grad_(False)
    sample_dir = work / "samples"
    pool = SamplePool(sample_dir)
    if pool.refresh() == 0:  # at least one shard before the first step
        samples.build_shard(g, sample_dir, 0, cfg.size, cfg.exit_share)
        pool.refresh()
    val = validation_set(g, work, cfg)
    enc = new_encoder(g, cfg).train()
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    run = ResumableRun(work / CHECKPOINT_FILE, {"encoder": enc}, {"encoder": opt})
    best_path = work / BEST_FILE
    best = _best_score(best_path, cfg.criterion)
    recon, celeba, celeba_val = None, None, None
    if cfg.image_weight > 0:
        from editable_deepsc.inversion.losses import ReconstructionLoss

        recon = ReconstructionLoss(perceptual=cfg.perceptual_weight)
        if cfg.celeba_share > 0:
            celeba = celeba_aligned(work, cfg.size, "train", limit=cfg.celeba_n, log=log)
        if cfg.val_celeba > 0:
            celeba_val = celeba_aligned(work, cfg.size, "val", limit=cfg.val_celeba, log=log)
    end = cfg.steps if stop_at is None else max(run.start, min(cfg.steps, stop_at))
    bar = run.steps(end, cfg.steps, "train encoder (ffhq)", progress)
    last: dict[str, float] = {}
    next_ckpt = time.perf_counter() + 60.0 * cfg.checkpoint_minutes
    n_shards = len(pool.paths)
    with open(work / LOG_FILE, "a") as logf:
        logf.write(json.dumps({"event": "start", "step": run.start, "config": asdict(cfg)}) + "\n")
        for step in bar:
            if cfg.shard_every and step % cfg.shard_every == 0 and n_shards * samples.SHARD_SIZE < cfg.n:
                k = _first_missing(sample_dir, cfg.n)
                if k is not None:
                    samples.build_shard(g, sample_dir, k, cfg.size, cfg.exit_share)
                n_shards = len(samples.complete_shards(sample_dir))
                pool.refresh()
            last = train_step(enc, g, pool, opt, cfg, step, recon, celeba)
            done = step + 1
            now = time.perf_counter()
            out_of_time = max_seconds is not None and now - run.t0 > max_seconds
            if done % 10 == 0:
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k in ("latent", "image")}, refresh=False)
            if now >= next_ckpt or done >= end or out_of_time:
                record = {**last, "samples": len(pool.paths) * samples.SHARD_SIZE}
                if val is not None:
                    numbers, score = validate(enc, g, val, celeba_val, cfg.criterion)
                    record.update(numbers)
                    if score < best:
                        best = score
                        _save_best(enc, best_path, done, {**numbers, "criterion": cfg.criterion, "score": score},
                                   record["samples"], cfg, run.elapsed())  # fmt: skip
                        record["best"] = True
                run.save(done, logf, record)
                log(f"step {done}: " + " ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float)))
                next_ckpt = now + 60.0 * cfg.checkpoint_minutes
            if done >= end or out_of_time:
                end = done
                break
    return {
        "steps": end,
        "seconds": round(run.elapsed(), 1),
        "samples": len(pool.paths) * samples.SHARD_SIZE,
        "criterion": cfg.criterion,
        "best_score": None if best == float("inf") else best,
        "final": last,
    }


def _first_missing(folder: Path, n: int) -> int | None:
    for k in range((n + samples.SHARD_SIZE - 1) // samples.SHARD_SIZE):
        if not samples.shard_path(folder, k).is_file():
            return k
    return None


def _best_score(path: Path, criterion: str) -> float:
    """Score of the stored best encoder; ``inf`` if none or if it was chosen by another criterion."""
    if not path.is_file():
        return float("inf")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        info = json.loads((f.metadata() or {}).get("training", "{}"))
    if info.get("criterion", "latent_mse") != criterion:
        return float("inf")
    return float(info.get("score", info.get("val_latent_mse", float("inf"))))


def _save_best(enc: E4EEncoder, path: Path, step: int, numbers: dict[str, Any], n_samples: int,
               cfg: FFHQEncoderConfig, seconds: float) -> None:  # fmt: skip
    training = {"step": step, **numbers, "samples": n_samples, "seconds": round(seconds, 1), "config": asdict(cfg)}
    meta = {**encoder_metadata(enc), "training": json.dumps(training)}
    registry.save_state_dict(encoder_state(enc), path, metadata=meta)



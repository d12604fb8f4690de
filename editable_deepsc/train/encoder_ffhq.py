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
:func:`publish_best` writes the best encoder (float16) as the zoo model with its
card, :func:`evaluate_encoder` measures it on held-out seeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN
from editable_deepsc.inversion.encoder import BACKBONE, E4EEncoder, encoder_metadata, encoder_state
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train import encoder_samples as samples
from editable_deepsc.train.encoder import lr_factor, unlocked_layers
from editable_deepsc.train.exits import HELD_OUT_SEED
from editable_deepsc.train.loop import ResumableRun
from editable_deepsc.zoo import registry

NAME = "edsc-e4e-ffhq"
CHECKPOINT_FILE = "checkpoint.safetensors"
BEST_FILE = "best.safetensors"
LOG_FILE = "log.jsonl"
CELEBA_FILE = "celeba-aligned-{split}.safetensors"
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


def celeba_aligned(work_dir: Path, size: int = 256, split: str = "train", limit: int | None = None,
                   log: Callable[[str], None] = print) -> torch.Tensor:  # fmt: skip
    """FFHQ-aligned CelebA photos of ``split`` (``train`` 000001-000700 or ``val`` 000701-000800) at ``size``.

    Aligned once (face-api landmarks, :func:`~editable_deepsc.inversion.ffhq_align.align_photo`)
    and cached in ``work_dir/celeba-aligned-<split>.safetensors``; photos without a detected
    face are skipped (their numbers are in the file's metadata). The held-out split is refused.

    Returns
    -------
    torch.Tensor
        uint8 (N, 3, size, size).
    """
    if split not in ("train", "val"):
        raise BadInput(f"encoder training reads the CelebA train or val split only, not {split!r}")
    from safetensors import safe_open
    from safetensors.torch import load_file

    from editable_deepsc.data.celeba import decode_photo, iter_celeba
    from editable_deepsc.errors import NoFaceFound
    from editable_deepsc.guidance.faces.align import FaceAligner
    from editable_deepsc.inversion.ffhq_align import align_photo

    path = Path(work_dir) / CELEBA_FILE.format(split=split)
    if path.is_file():
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        if int(json.loads(meta["size"])) == size and json.loads(meta.get("limit", "null")) == limit:
            return load_file(str(path))["images"]
    aligner = FaceAligner()
    crops, numbers, missed = [], [], []
    t = time.time()
    for number, jpeg in iter_celeba(split, limit=limit):
        try:
            crop, _, _ = align_photo(decode_photo(jpeg), size=size, aligner=aligner)
        except NoFaceFound:
            missed.append(number)
            continue
        crops.append(samples.to_uint8(crop)[0])
        numbers.append(number)
    images = torch.stack(crops)
    meta = {"size": json.dumps(size), "limit": json.dumps(limit), "numbers": json.dumps(numbers),
            "missed": json.dumps(missed)}  # fmt: skip
    registry.save_state_dict({"images": images}, path, metadata=meta)
    log(f"aligned {len(numbers)} CelebA {split} photos ({len(missed)} without a face) in {time.time() - t:.0f} s")
    return images


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
    from editable_deepsc.metrics.image import psnr

    was = encoder.training
    encoder.eval()
    vals = [psnr(g.synthesis(encoder(images[i : i + batch]), size=encoder.resolution).clamp(-1, 1), images[i : i + batch])
            for i in range(0, images.shape[0], batch)]  # fmt: skip
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
        w0, deltas = encoder.parts_from_levels(encoder.levels_from_maps(maps))
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
                                        head_width=cfg.head_width)  # fmt: skip


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
                                   head_width=int(cfg.get("head_width", 64)))  # fmt: skip
    fit_state(enc, load_file(str(Path(work_dir) / BEST_FILE)), "best encoder")
    return enc.eval().requires_grad_(False)


# ---- evaluation and publishing ------------------------------------------------------------------------
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
    "checkpoint_minutes": "--checkpoint-minutes", "seed": "--seed",
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
                out.append({"from_step": rec["step"], "command": config_command(rec["config"], work_dir)})
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
        + f"; published by {command or 'edsc train encoder --models ffhq --publish'} (best checkpoint: step {info['step']}, "
        f"{info['samples']} cached samples, {info['seconds']:.0f} s of training; chosen by validation "
        f"{info.get('criterion', 'latent_mse')}, validation latent MSE {info['val_latent_mse']:.4f}{held})",
        resolution=enc.resolution,
        description=f"e4e-style inversion encoder for {g.name}: FFHQ-aligned {enc.resolution}x{enc.resolution} "
        f"face -> W+ ({enc.num_ws} x {enc.w_dim}), {n_params / 1e6:.2f}M parameters (float16 storage)",
        config={**enc.config(), "generator": g.name},
    )

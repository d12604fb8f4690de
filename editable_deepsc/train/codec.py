"""Training of the built-in semantic channel codecs (``edsc train codec --k 128``).

Data
----
W+ latents of the generator the codec serves, drawn fresh every step from
training seeds only (:data:`~editable_deepsc.generator.teacher.TRAIN_SEEDS`):

* **mapped** -- ``w = mapping(z)`` in every layer (what an encoder inversion is
  close to), with probability ``1 - mix_prob``;
* **style-mixed** -- layers ``< c`` from ``w_A`` and ``>= c`` from ``w_B``
  (random crossover ``c`` in 1..num_ws-1), with probability ``mix_prob``;
* **inverted** -- when an inversion encoder is available, a fraction
  ``inversion_frac`` of every batch comes from a pool of encoder inversions of
  teacher training faces (computed once, cached in the work directory).

The codec's latent statistics (:class:`~editable_deepsc.channel.latent_pca.LatentPCA`)
are fitted on ``pca_samples`` latents of the same mixture before training.

Loss
----
Each step sends the batch through the differentiable channels -- the first
half AWGN, the second half Rayleigh block fading -- at per-sample SNR
``U[snr_min, snr_max]`` dB, told to both ends. The squared-error terms enter
in dB (mean over samples of ``log(err + 1e-4)``), so that a dB gained at 20 dB
SNR counts as much as one at 0 dB (a linear MSE is dominated by the low SNRs).
The loss is

``latent_weight · log NMSE(ŵ, w)`` (squared error in the PCA basis over the latent variance)
``+ pixel_weight · log MSE(G(ŵ), G(w))`` (images in [-1, 1]; during the warm-up its
Gauss-Newton form ``δᵀ M δ`` with ``M = E[JᵀJ]/P`` the generator's average
pull-back metric, estimated once from ``metric_samples`` vector-Jacobian
products -- it tells the codec which latent directions change the image, at
the cost of a latent step)
``+ perceptual_weight · LPIPS-proxy(G(ŵ), G(w))`` (EfficientNet-Lite0 proxy at 64 px)
``+ identity_weight · (1 − cos id(G(ŵ)), id(G(w)))`` (face-api, if available and weighted),

the image terms on the first ``image_batch`` samples of each half and only after
``warmup_steps`` latent-only steps (image terms cost ~100x a latent step on CPU).
The target is always the *noise-free* image ``G(w)`` of the latent that was sent.

Large latents
-------------
A W+ of more than :data:`LARGE_LATENT` coordinates (the FFHQ generator's 23 × 512)
gets :func:`large_latent_defaults` from :meth:`CodecTrainConfig.for_generator`: the
separable latent basis, networks on the ``2(k-1)`` strongest coordinates with
diagonal linear paths, ``N(0, I)`` codes, a pool of inverted CelebA *training*
photos (:func:`~editable_deepsc.train.codec_photos.photo_pool`) of which a share is
edited along the set's directions, and, instead of the image terms, their
Gauss-Newton forms with *diagonal* metrics
(:func:`~editable_deepsc.train.codec_metric.diagonal_metrics`) of pixel MSE,
face-net attribute scores (``attribute_weight``) and face descriptors
(``identity_weight``) at the set's work size (the 256 exit), so every step is a
latent step.

Everything is seeded per step (``derive_seed(seed, "step", i)``), so a resumed
run draws the same data and noise as an uninterrupted one. Checkpoints
(codec, Adam moments, counters) go to ``<workdir>/checkpoint.safetensors``
every ``checkpoint_every`` steps; a JSONL log to ``<workdir>/log.jsonl``. At the
end :func:`~editable_deepsc.channel.codec_zoo.export_codec` writes the zoo
weights and card.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from editable_deepsc.channel.codec import CodecConfig, SemanticCodec
from editable_deepsc.channel.codec_zoo import codec_name, export_codec
from editable_deepsc.channel.config import make_channel
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.exit_view import work_generator
from editable_deepsc.generator.loading import default_generator_name, load_generator
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.codec_loss import LOG_EPS, ImageLoss
from editable_deepsc.train.codec_setup import build_sampler, codec_metric, large_latent_defaults
from editable_deepsc.train.loop import ResumableRun, cosine_decay

if TYPE_CHECKING:
    from editable_deepsc.generator.base import StyleGenerator
    from editable_deepsc.train.codec_data import LatentSampler

CHECKPOINT_FILE = "checkpoint.safetensors"
LOG_FILE = "log.jsonl"
#: latents with more coordinates than this get :func:`~editable_deepsc.train.codec_setup.large_latent_defaults`
LARGE_LATENT = 4096


@dataclass
class CodecTrainConfig:
    """Hyper-parameters of :func:`train_codec` (all recorded in the log and on the card).

    Attributes
    ----------
    k : int
        Complex channel symbols per latent (``2k`` must not exceed ``num_ws·w_dim``).
    generator : str
        Registry name of the generator (``"edsc-faces64"``), or ``"edsc-faces64@teacher-init"``
        for the teacher-initialised, untrained one (:func:`~editable_deepsc.generator.loading.load_generator`).
    steps, warmup_steps : int
        Total steps; the first ``warmup_steps`` use the latent loss only.
    batch_size, image_batch : int
        Latents per step; of those, images per channel half for the image terms.
    hidden, depth : int
        Codec MLP width and number of hidden layers per side.
    lr, lr_min : float
        Adam learning rate, cosine-decayed to ``lr_min``.
    mix_prob, inversion_frac : float
        Data mixture (see module docstring).
    pca_samples, inversion_pool, metric_samples : int
        Latents for the PCA fit; size of the inversion pool; latents for the
        image metric (0: no Gauss-Newton image term in the warm-up).
    latent_weight, pixel_weight, perceptual_weight, identity_weight : float
        Loss weights.
    snr_min, snr_max : float
        Training SNR range in dB.
    checkpoint_every : int
        Steps between checkpoints.
    seed : int
        Root seed of the run.
    basis, keep, diagonal :
        The codec's latent basis (``full`` or ``separable``), coordinates its networks see
        (0: all) and diagonal linear paths and metrics (see :class:`~editable_deepsc.channel.codec.CodecConfig`).
    z_source : {"teacher", "gaussian"}
        Codes of the mapped latents: teacher training seeds (faces64) or ``N(0, I)``.
    photo_pool : int
        Inverted CelebA training photos 000001…n in the pool instead of teacher faces (0: none).
    photo_cache : str
        Directory of per-photo inversions (encoder ones are made there; hybrid ones are read if present).
    edit_frac : float
        Share of each batch moved along a random readable direction of the set.
    attribute_weight : float
        Weight of the face-net attribute term (diagonal Gauss-Newton form only).
    work_size : int
        Image side the image terms are measured at (0: the generator's full resolution).
    """

    k: int = 128
    generator: str = field(default_factory=default_generator_name)
    steps: int = 3000
    warmup_steps: int = 1500
    batch_size: int = 256
    image_batch: int = 8
    hidden: int = 256
    depth: int = 2
    lr: float = 1e-3
    lr_min: float = 2e-5
    mix_prob: float = 0.3
    inversion_frac: float = 0.3
    pca_samples: int = 20000
    inversion_pool: int = 2000
    metric_samples: int = 2048
    latent_weight: float = 1.0
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.5
    identity_weight: float = 0.0
    snr_min: float = 0.0
    snr_max: float = 20.0
    checkpoint_every: int = 250
    seed: int = 0
    basis: str = "full"
    keep: int = 0
    diagonal: bool = False
    z_source: str = "teacher"
    photo_pool: int = 0
    photo_cache: str = "runs/celeba-latents"
    edit_frac: float = 0.0
    attribute_weight: float = 0.0
    work_size: int = 0

    @classmethod
    def for_generator(cls, generator: StyleGenerator | str, **given) -> "CodecTrainConfig":
        """Config for ``generator`` (its name or the loaded one): :func:`large_latent_defaults` for a
        W+ of more than :data:`LARGE_LATENT` coordinates, the class defaults otherwise; ``given``
        (values that are not ``None``) override either."""
        given = {key: v for key, v in given.items() if v is not None}
        if isinstance(generator, str):
            generator = load_generator(generator)
        k = int(given.get("k", cls.k))
        base = large_latent_defaults(generator, k) if generator.num_ws * generator.w_dim > LARGE_LATENT else {}
        cfg = cls(**{**base, **given, "generator": given.get("generator", generator.name)})
        cfg.warmup_steps = min(cfg.warmup_steps, cfg.steps)
        return cfg

    def validate(self, latent_dim: int | None = None) -> None:
        """Raise :class:`BadInput` for out-of-range values (``latent_dim`` = ``num_ws·w_dim`` if known)."""
        if self.k < 1:
            raise BadInput(f"k must be >= 1, got {self.k}")
        if latent_dim is not None and 2 * self.k > latent_dim:
            raise BadInput(
                f"k={self.k} gives {2 * self.k} real channel dimensions but the latent has only {latent_dim}; "
                f"use k <= {latent_dim // 2} (the whole latent then fits uncoded)"
            )
        if self.steps < 1 or not 0 <= self.warmup_steps <= self.steps or self.checkpoint_every < 1:
            raise BadInput("steps >= 1, 0 <= warmup_steps <= steps and checkpoint_every >= 1 required")
        if self.batch_size < 4 or not 1 <= self.image_batch <= self.batch_size // 2:
            raise BadInput("batch_size >= 4 and 1 <= image_batch <= batch_size/2 required")
        if not (0.0 <= self.mix_prob <= 1.0 and 0.0 <= self.inversion_frac < 1.0):
            raise BadInput("mix_prob must lie in [0, 1] and inversion_frac in [0, 1)")
        if not 0.0 <= self.snr_min <= self.snr_max:
            raise BadInput(f"need 0 <= snr_min <= snr_max, got [{self.snr_min}, {self.snr_max}]")
        if self.lr <= 0 or self.lr_min < 0 or self.hidden < 1 or self.depth < 1:
            raise BadInput("lr > 0, lr_min >= 0, hidden >= 1 and depth >= 1 required")
        if min(self.latent_weight, self.pixel_weight, self.perceptual_weight, self.identity_weight,
               self.attribute_weight) < 0:
            raise BadInput("loss weights must be >= 0")
        if self.basis not in ("full", "separable") or self.z_source not in ("teacher", "gaussian"):
            raise BadInput(f"basis must be full or separable and z_source teacher or gaussian, "
                           f"got {self.basis!r}, {self.z_source!r}")
        if self.keep < 0 or (latent_dim is not None and self.keep > latent_dim):
            raise BadInput(f"keep must lie in [0, {latent_dim}], got {self.keep}")
        if self.keep and self.keep < 2 * (self.k - 1):
            raise BadInput(f"keep={self.keep} is fewer coordinates than the {2 * (self.k - 1)} the k={self.k} "
                           f"symbols carry")
        if not 0.0 <= self.edit_frac <= 1.0 or not 0 <= self.photo_pool <= 700:
            raise BadInput("edit_frac must lie in [0, 1] and photo_pool in [0, 700] (CelebA training photos)")
        if self.pca_samples < 2:
            raise BadInput(f"pca_samples must be >= 2, got {self.pca_samples}")


def lr_at(step: int, cfg: CodecTrainConfig) -> float:
    """Cosine learning-rate schedule from ``lr`` to ``lr_min`` over ``steps``."""
    return cosine_decay(min(step / max(cfg.steps - 1, 1), 1.0), cfg.lr, cfg.lr_min)


def codec_step(
    codec: SemanticCodec,
    sampler: LatentSampler,
    image_loss: ImageLoss | None,
    opt: torch.optim.Optimizer,
    cfg: CodecTrainConfig,
    step: int,
    metric: torch.Tensor | None = None,
) -> dict[str, float]:
    """One optimisation step (half AWGN, half Rayleigh); returns the step's loss terms.

    ``metric`` is the image metric of :func:`image_metric` (D, D), used for the
    pixel term during the warm-up, or a dict of diagonal metrics (coords,) of
    :func:`~editable_deepsc.train.codec_metric.diagonal_metrics` (``pixel``,
    ``attribute``, ``identity``), each weighted by its loss weight.
    """
    rng = make_generator(derive_seed(cfg.seed, "step", step))
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    w = sampler.sample(cfg.batch_size, rng)
    half = cfg.batch_size // 2
    snr = cfg.snr_min + (cfg.snr_max - cfg.snr_min) * torch.rand(cfg.batch_size, generator=rng)
    w_hat = torch.cat(
        [
            codec(w[:half], make_channel("awgn"), snr[:half], rng=rng),
            codec(w[half:], make_channel("rayleigh"), snr[half:], rng=rng),
        ]
    )
    nmse = codec.pca.nmse(w_hat, w)
    loss = cfg.latent_weight * torch.log(nmse + LOG_EPS).mean()
    terms: dict[str, float] = {"nmse": float(nmse.mean().detach())}
    if isinstance(metric, dict) and step < cfg.warmup_steps:
        u, u_hat = codec.coordinates(w), codec.coordinates(w_hat)
        weights = {"pixel": cfg.pixel_weight, "attribute": cfg.attribute_weight, "identity": cfg.identity_weight}
        for name, m in metric.items():
            if weights[name] > 0:
                gn = (u_hat - u).pow(2) @ m
                terms[f"{name}_gn"] = float(gn.mean().detach())
                loss = loss + weights[name] * torch.log(gn + LOG_EPS).mean()
    elif metric is not None and step < cfg.warmup_steps and cfg.pixel_weight > 0:
        delta = codec.pca.project(w_hat) - codec.pca.project(w)
        gn = ((delta @ metric) * delta).sum(1)
        terms["pixel_mse_gn"] = float(gn.mean().detach())
        loss = loss + cfg.pixel_weight * torch.log(gn + LOG_EPS).mean()
    if image_loss is not None and image_loss.active and step >= cfg.warmup_steps:
        idx = torch.cat([torch.arange(cfg.image_batch), half + torch.arange(cfg.image_batch)])
        img_loss, img_terms = image_loss(w_hat[idx], w[idx])
        loss = loss + img_loss
        terms.update(img_terms)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    terms["loss"] = float(loss.detach())
    return terms


def build_codec(cfg: CodecTrainConfig, generator: StyleGenerator, sampler: LatentSampler) -> SemanticCodec:
    """A fresh codec for ``generator`` (seeded init) with its PCA fitted on ``cfg.pca_samples`` latents."""
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        codec = SemanticCodec(
            CodecConfig(num_ws=generator.num_ws, w_dim=generator.w_dim, k=cfg.k, hidden=cfg.hidden, depth=cfg.depth,
                        basis=cfg.basis, keep=cfg.keep, diagonal=cfg.diagonal)
        )
    w = sampler.sample(cfg.pca_samples, make_generator(derive_seed(cfg.seed, "pca")))
    codec.pca.fit(w)
    return codec.init_from_pca(w[:4096])


def train_codec(
    workdir: str | Path,
    cfg: CodecTrainConfig,
    progress: bool = True,
    export: bool = True,
    export_name: str | None = None,
) -> dict:
    """Train (or resume training of) a semantic codec; optionally export it to the zoo.

    Parameters
    ----------
    workdir : str or Path
        Holds ``checkpoint.safetensors``, ``log.jsonl``, the inversion cache and
        ``summary.json``; an existing checkpoint is resumed.
    cfg : CodecTrainConfig
    progress : bool
        Show a tqdm progress bar.
    export : bool
        Write the weights and card to the zoo at the end.
    export_name : str, optional
        Zoo name (default :func:`~editable_deepsc.channel.codec_zoo.codec_name`).

    Returns
    -------
    dict
        Summary: name, steps, seconds (accumulated over resumptions), config,
        data mixture, final loss terms.
    """
    workdir = Path(workdir)
    generator = load_generator(cfg.generator)
    cfg.validate(generator.num_ws * generator.w_dim)
    workdir.mkdir(parents=True, exist_ok=True)
    sampler = build_sampler(cfg, generator, workdir, progress)
    pool = sampler.inversions
    work = work_generator(generator, cfg.work_size) if cfg.work_size else generator  # the image terms' synthesis
    codec = build_codec(cfg, generator, sampler).train()
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    run = ResumableRun(workdir / CHECKPOINT_FILE, {"codec": codec}, {"codec": opt})
    image_loss = ImageLoss(work, cfg.pixel_weight, cfg.perceptual_weight, cfg.identity_weight)
    metric = None
    if cfg.metric_samples > 0 and run.start < cfg.warmup_steps:
        metric = codec_metric(cfg, work, codec, sampler, workdir, progress)
    last: dict[str, float] = {}
    bar = run.steps(cfg.steps, cfg.steps, f"train codec k={cfg.k}", progress)
    with open(workdir / LOG_FILE, "a") as log:
        for step in bar:
            last = codec_step(codec, sampler, image_loss, opt, cfg, step, metric)
            done = step + 1
            if done % 10 == 0 or done == cfg.steps:
                bar.set_postfix({k: f"{v:.4f}" for k, v in last.items() if k != "loss"})
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                run.save(done, log, last)
    seconds = run.elapsed()
    if not last and (workdir / LOG_FILE).is_file():  # resumed a finished run: report its last logged losses
        lines = (workdir / LOG_FILE).read_text().strip().splitlines()
        if lines:
            last = {k: v for k, v in json.loads(lines[-1]).items() if k not in ("step", "seconds")}
    name = export_name or codec_name(cfg.generator, cfg.k)
    summary = {
        "name": name,
        "steps": cfg.steps,
        "seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "config": asdict(cfg),
        "data": {
            "mapped_and_mixed": 1.0 - sampler.inversion_frac,
            "inverted": sampler.inversion_frac,
            "inversion_pool": 0 if pool is None else int(pool.shape[0]),
            **({} if sampler.pool_counts is None else {"pool_by_method": sampler.pool_counts}),
            "edited": sampler.edit_frac,
        },
        "perceptual": None if image_loss.lpips is None else image_loss.lpips.name,
        "identity_loss": image_loss.identity is not None,
        "final": last,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if export:
        export_codec(
            codec.eval(),
            name,
            generator_name=cfg.generator,
            image_size=int(getattr(work, "resolution", 64)),
            source=f"edsc train codec --k {cfg.k} --generator {cfg.generator} --steps {cfg.steps} --seed {cfg.seed}"
            + (f" --photo-cache {cfg.photo_cache}" if cfg.photo_pool else "")
            + f" ({summary['seconds']:.0f} s, {summary['threads']} CPU thread(s))",
            extra_config={"train": summary["config"], "data": summary["data"], "perceptual": summary["perceptual"]},
        )
    return summary

"""Set-up of a codec training run: its data, its warm-up metric and the defaults for a large W+.

:func:`large_latent_defaults` is what :meth:`~editable_deepsc.train.codec.CodecTrainConfig.for_generator`
uses for a W+ of more than :data:`~editable_deepsc.train.codec.LARGE_LATENT` coordinates;
:func:`build_sampler` assembles the training latents (mapped, mixed, inverted, edited);
:func:`codec_metric` estimates (or reloads) the metric of the warm-up loss.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.codec_data import LatentSampler, gaussian_z, inversion_pool, teacher_z
from editable_deepsc.train.codec_metric import diagonal_metrics, image_metric
from editable_deepsc.zoo import registry

if TYPE_CHECKING:
    from editable_deepsc.channel.codec import SemanticCodec
    from editable_deepsc.train.codec import CodecTrainConfig

INVERSIONS_FILE = "inversions.safetensors"
METRIC_FILE = "metric.safetensors"
#: attributes whose directions fit at least this held-out R² are weighed by ``attribute_weight``
#: and used for the edited share of the data
READABLE_R2 = 0.5


def large_latent_defaults(generator: StyleGenerator, k: int) -> dict:
    """Training defaults for a large W+ (the FFHQ generator): see the module docstring.

    Sized for two CPU cores: ~0.2 s a step at batch 128 plus the one-off photo pool and metric.
    """
    from editable_deepsc.zoo.sets import generator_set

    ms = generator_set(generator.name)
    return {
        "basis": "separable", "keep": 2 * (max(k, 2) - 1), "diagonal": True, "z_source": "gaussian",
        "photo_pool": 700, "inversion_frac": 0.5, "mix_prob": 0.2, "edit_frac": 0.3,
        "steps": 2000, "warmup_steps": 2000, "batch_size": 128, "hidden": 256, "pca_samples": 6000,
        "metric_samples": 96, "pixel_weight": 1.0, "perceptual_weight": 0.0, "identity_weight": 1.0,
        "attribute_weight": 1.0, "work_size": int(getattr(ms, "work_size", None) or 0),
    }  # fmt: skip


def build_sampler(cfg: CodecTrainConfig, generator: StyleGenerator, workdir: Path, progress: bool) -> LatentSampler:
    """The training data of ``cfg`` (see the module docstring); pools are cached in ``workdir``."""
    from safetensors.torch import load_file

    counts = None
    if cfg.photo_pool > 0 and cfg.inversion_frac > 0:
        cache = workdir / INVERSIONS_FILE
        if cache.is_file():
            pool = load_file(str(cache))["w_plus"]
            counts = json.loads(registry.file_metadata(cache).get("counts", "null"))
        else:
            from editable_deepsc.train.codec_photos import photo_pool

            pool, counts = photo_pool(generator, cfg.photo_cache, cfg.photo_pool, progress=progress)
            if pool is not None:
                registry.save_state_dict({"w_plus": pool}, cache, metadata={"counts": json.dumps(counts)})
    else:
        pool = inversion_pool(
            generator, cfg.inversion_pool if cfg.inversion_frac > 0 else 0, cfg.seed, workdir / INVERSIONS_FILE,
            progress,
        )
    draw_z = teacher_z if cfg.z_source == "teacher" else gaussian_z(generator.z_dim)
    edits = readable_directions(generator)[1] if cfg.edit_frac > 0 else None
    sampler = LatentSampler(generator, cfg.mix_prob, pool, cfg.inversion_frac, draw_z, edits, cfg.edit_frac)
    sampler.pool_counts = counts
    return sampler


def readable_directions(generator: StyleGenerator) -> tuple[dict[str, float], torch.Tensor | None]:
    """The set's directions whose fit reaches :data:`READABLE_R2`: ``({attribute: value spread}, (A, num_ws, w_dim))``."""
    from editable_deepsc.editing.directions import load_directions

    d = load_directions(generator.name)
    if d is None:
        return {}, None
    names = [a for a in d.attributes if d.stats.get(a, {}).get("r2", 0.0) >= READABLE_R2]
    spreads = {a: float(d.stats[a].get("value_std", 1.0)) for a in names}
    return spreads, (torch.stack([d.vector(a) for a in names]) if names else None)


def codec_metric(
    cfg: CodecTrainConfig, work: StyleGenerator, codec: SemanticCodec, sampler: LatentSampler, workdir: Path,
    progress: bool,
) -> torch.Tensor | dict[str, torch.Tensor] | None:
    """The warm-up metric: full image metric, or diagonal ones (``cfg.diagonal``, cached in ``workdir``)."""
    rng = make_generator(derive_seed(cfg.seed, "metric"))
    if not cfg.diagonal:
        return image_metric(work, codec, sampler, cfg.metric_samples, rng) if cfg.pixel_weight > 0 else None
    path = workdir / METRIC_FILE
    if path.is_file():
        from safetensors.torch import load_file

        return load_file(str(path))
    guidance, spreads = None, {}
    if cfg.attribute_weight > 0 or cfg.identity_weight > 0:
        from editable_deepsc.editing.face_guidance import FaceNetGuidance
        from editable_deepsc.guidance.faces.view import view_for_generator

        guidance = FaceNetGuidance(view=view_for_generator(work.name))
        spreads = readable_directions(work)[0] if cfg.attribute_weight > 0 else {}
    metric = diagonal_metrics(work, codec, sampler.sample(cfg.metric_samples, rng), rng, guidance, spreads,
                              progress=progress)
    registry.save_state_dict(metric, path)
    return metric


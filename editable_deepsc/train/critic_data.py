"""The latent critic's training data: training-seed faces and edited variants, scored by the face nets.

Phase 1 of ``edsc train critic`` (:func:`collect`, resumable: shards of scored
groups under the work directory).

:func:`critic_groups` draws groups of latents (a base face and its variants, the
region of W+ the editor visits); :func:`score_groups` reads the face nets'
attributes (on the regression scale) and descriptors off their images
(:func:`~editable_deepsc.train.latents.score_latents`, as the direction fit does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from editable_deepsc.editing.critic import CRITIC_ATTRIBUTES
from editable_deepsc.editing.directions import regression_target
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.latents import EMBEDDING, sample_latents, score_latents
from editable_deepsc.zoo.registry import load_state_dict, save_state_dict


@dataclass
class CriticData:
    """Scored groups of latents: a base face and its edited variants.

    Attributes
    ----------
    w_plus : Tensor, float32, (B, V, num_ws, w_dim)
        Group ``b``: index 0 the base latent, 1..V-1 its variants.
    targets : Tensor, float32, (B, V, A)
        Face-net attributes on the regression scale.
    embedding : Tensor, float32, (B, V, 128)
        Face-api descriptors.
    """

    w_plus: torch.Tensor
    targets: torch.Tensor
    embedding: torch.Tensor
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.w_plus.shape[0])

    def split(self, n_val: int) -> tuple["CriticData", "CriticData"]:
        """(train, validation): the last ``n_val`` groups are held out."""
        cut = len(self) - n_val
        a = CriticData(self.w_plus[:cut], self.targets[:cut], self.embedding[:cut], self.meta)
        b = CriticData(self.w_plus[cut:], self.targets[cut:], self.embedding[cut:], self.meta)
        return a, b


@torch.no_grad()
def critic_groups(generator: StyleGenerator, directions, n: int, variants: int, seed: int) -> torch.Tensor:
    """Base latents of training-seed faces and edited variants, (n, 1 + variants, num_ws, w_dim).

    The base is ``broadcast(mapping(z))`` of a teacher training seed (``z ~ N(0, I)``
    for a generator with another ``z_dim``), half of the
    time with a small independent offset per layer (as inverted photos have).
    Variant ``j`` cycles through four kinds of move: a jump along one attribute
    direction (``α ~ U(−3.5, 3.5)``), along two at once (``α ~ U(−2.5, 2.5)``
    each), one jump plus an isotropic offset, and an isotropic per-layer offset
    alone — the region the editor visits.
    """
    rng = make_generator(seed)
    base = sample_latents(generator, n, rng, faces=True)
    spread = base.std(0, keepdim=True).mean()
    jitter = (torch.rand(n, generator=rng) < 0.5).float()[:, None, None]
    base = base + jitter * 0.1 * spread * torch.randn(base.shape, generator=rng)
    dirs = torch.stack([directions.vector(a) for a in directions.attributes]) if directions is not None else None
    out = [base]
    for j in range(variants):
        kind = j % 4
        step = torch.zeros_like(base)
        if dirs is not None and kind in (0, 1, 2):
            picks = 2 if kind == 1 else 1
            top = 2.5 if kind == 1 else 3.5
            for _ in range(picks):
                which = torch.randint(0, dirs.shape[0], (n,), generator=rng)
                alpha = (torch.rand(n, generator=rng) * 2 - 1) * top
                step = step + alpha[:, None, None] * dirs[which]
        if kind in (2, 3) or dirs is None:
            noise = torch.randn(base.shape, generator=rng)
            scale = torch.rand(n, 1, 1, generator=rng) * (0.4 if kind == 3 else 0.25) * spread
            step = step + scale * noise
        out.append(base + step)
    return torch.stack(out, 1).contiguous()


@torch.no_grad()
def score_groups(
    generator: StyleGenerator, guidance, w_groups: torch.Tensor, attributes: tuple[str, ...] = CRITIC_ATTRIBUTES,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Face-net targets of ``G(w)`` for latents (B, V, num_ws, w_dim): (B, V, A) regression scale, (B, V, 128)."""
    scores = score_latents(generator, guidance, w_groups.flatten(0, 1), attributes, batch_size, embedding=True)
    y = torch.stack([regression_target(a, scores[a]) for a in attributes], 1)
    b, v = w_groups.shape[:2]
    return y.reshape(b, v, -1), scores[EMBEDDING].reshape(b, v, -1)


def collect(
    workdir: str | Path, generator, guidance, directions, n: int, variants: int, seed: int, shard: int = 250,
    progress: bool = True,
) -> CriticData:  # fmt: skip
    """Scored groups for ``n`` training faces, from (and into) shard files under ``workdir``."""
    from tqdm import tqdm

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ws, ys, es = [], [], []
    shards = range(0, n, shard)
    for i in tqdm(shards, desc="critic data (shards)", disable=not progress):
        m = min(shard, n - i)
        f = workdir / f"data-{generator.name}-v{variants}-seed{seed}-{i // shard:04d}-of{shard}.safetensors"
        if f.is_file():
            st = load_state_dict(f)
            if st["w_plus"].shape[0] == m:
                ws.append(st["w_plus"]), ys.append(st["targets"]), es.append(st["embedding"])
                continue
        w = critic_groups(generator, directions, m, variants, derive_seed(seed, "critic-data", i // shard))
        y, e = score_groups(generator, guidance, w)
        save_state_dict({"w_plus": w, "targets": y, "embedding": e}, f)
        ws.append(w), ys.append(y), es.append(e)
    return CriticData(torch.cat(ws), torch.cat(ys), torch.cat(es), {"n": n, "variants": variants, "seed": seed})

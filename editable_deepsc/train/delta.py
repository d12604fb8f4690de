"""Fit the edit-delta statistics used by follow-up session turns (``edsc train delta``).

Edits of training faces with the built-in fast editor give deltas
``δ = w_edit − w_0``; their principal axes (:func:`~editable_deepsc.channel.delta.fit_delta_statistics`)
define the basis in which :class:`~editable_deepsc.channel.delta.DeltaCodec`
sends follow-up turns. Each face gets one or two chained edits (a random
supported instruction at a random strength, then, half of the time, a
follow-up of the same or another edit), so both first and later turns are
represented. Faces come from the teacher's *training* seeds, inverted by the
built-in encoder, exactly as a session would see them; for a photo set (``ffhq``)
they are inversions of CelebA *training* photos 000001–000700
(:func:`~editable_deepsc.train.codec_photos.photo_pool`: the cached hybrid ones
first, then encoder ones), edited at the set's work size.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from editable_deepsc.channel.delta import (
    LatentPCA,
    delta_metadata,
    delta_stats_name,
    fit_delta_statistics,
    save_delta_statistics,
)
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.loading import default_generator_name, load_generator
from editable_deepsc.rng import make_generator
from editable_deepsc.text.targets import EditTarget
from editable_deepsc.zoo import registry

STRENGTHS = (0.5, 1.0, 1.5)


def supported_targets(editor) -> list[EditTarget]:
    """Every (attribute, more/less) target the editor's support table allows (all if it has none)."""
    from editable_deepsc.text.targets import ATTRIBUTES

    out = []
    for a in ATTRIBUTES:
        for d in ("more", "less"):
            t = EditTarget(a, d)
            sup = getattr(editor, "support", None)
            if sup is None or sup.is_supported(t):
                out.append(t)
    return out


def collect_deltas(n: int, seed: int = 0, batch: int = 16, generator_name: str | None = None,
                   progress: bool = True, latents: torch.Tensor | None = None) -> torch.Tensor:
    """Edit ``n`` inverted training faces with the fast editor and return their deltas.

    ``latents`` (M ≥ n, num_ws, w_dim): start from these inverted faces (a photo set's pool)
    instead of encoder inversions of teacher training faces.

    Returns
    -------
    Tensor, float32, shape (M, num_ws, w_dim)
        ``M`` between ``n`` and ``2n`` deltas (chained follow-ups add the second ones).
    """
    from editable_deepsc.editing.builtin import build_editor
    from editable_deepsc.generator.teacher import random_train_seeds, teacher_faces
    from editable_deepsc.inversion.invert import invert

    gen = load_generator(generator_name)  # None: the default model set's generator
    editor = build_editor("fast", generator=gen)
    targets = supported_targets(editor)
    if not targets:
        raise BadInput("the editor supports no edit; nothing to fit")
    rng = make_generator(seed)
    if latents is not None and latents.shape[0] < n:
        raise BadInput(f"--n {n} edits need as many inverted photos, the pool has {latents.shape[0]}")
    seeds = random_train_seeds(n, rng) if latents is None else None
    deltas = []
    bar = tqdm(total=n, desc="edit deltas", disable=not progress)
    for i in range(0, n, batch):
        if latents is None:
            faces = teacher_faces(seeds[i:i + batch])
            w0 = invert(faces, method="encoder", generator=gen, with_stats=False).w_plus
        else:
            w0 = latents[i:min(i + batch, n)]
        w = w0
        for turn in range(2):
            pick = torch.randint(len(targets), (1,), generator=rng).item()
            s = STRENGTHS[torch.randint(len(STRENGTHS), (1,), generator=rng).item()]
            res = editor.edit(w, (targets[pick],), strength=s, rng=rng)
            d = (res.w_plus - w).detach()
            keep = torch.isfinite(d).flatten(1).all(1)
            if turn == 1:  # only half of the faces get a chained follow-up
                keep &= torch.rand(d.shape[0], generator=rng) < 0.5
            deltas.append(d[keep])
            w = res.w_plus.detach()
        bar.update(w0.shape[0])
    bar.close()
    return torch.cat(deltas)


def train_delta(n: int = 512, seed: int = 0, generator_name: str | None = None, register: bool = True,
                out: str | Path | None = None, progress: bool = True, photo_cache: str | Path | None = None) -> dict:
    """Collect deltas, fit their statistics and (optionally) register them in the zoo.

    ``photo_cache``: a directory of per-photo inversions (photo sets: the faces to edit are
    inverted CelebA training photos, the hybrid ones first; see the module docstring).

    Returns
    -------
    dict
        ``name``, ``m`` (deltas), ``seconds``, ``explained`` (variance in the first 16/32/64/128 axes).
    """
    if n < 8:
        raise BadInput(f"--n must be at least 8, got {n}")
    t0 = time.perf_counter()
    generator_name = generator_name or default_generator_name()
    latents, pool = None, None
    if photo_cache is not None:
        from editable_deepsc.train.codec_photos import photo_pool

        gen = load_generator(generator_name)
        latents, pool = photo_pool(gen, photo_cache, progress=progress)
        if latents is None:
            raise BadInput(f"no inverted training photos in {photo_cache}")
        latents = torch.cat([latents[pool["encoder"]:], latents[: pool["encoder"]]])  # hybrid ones first
    deltas = collect_deltas(n, seed=seed, generator_name=generator_name, progress=progress, latents=latents)
    pca = fit_delta_statistics(deltas)
    name = delta_stats_name(generator_name)
    seconds = time.perf_counter() - t0
    explained = {str(m): round(pca.explained_variance(m), 4) for m in (16, 32, 64, 128)}
    if out is not None:
        save_delta_statistics(pca, out, generator_name)
    if register:
        command = f"edsc train delta --n {n} --seed {seed} --generator {generator_name}" + (
            "" if photo_cache is None else f" --photo-cache {photo_cache}")
        export_delta(pca, generator_name, command, {"deltas": int(deltas.shape[0]), "explained_variance": explained,
                                                    **({} if pool is None else {"photos": pool})})
    return {"name": name, "m": int(deltas.shape[0]), "seconds": round(seconds, 1), "explained": explained}


def export_delta(pca: LatentPCA, generator_name: str, command: str, extra_config: dict) -> Path:
    """Publish delta statistics to the zoo as ``edsc-delta-<generator>`` (weights + card); return the weights path."""
    return registry.publish(
        delta_stats_name(generator_name), pca.state_dict(), metadata=delta_metadata(pca, generator_name),
        kind="delta-statistics", licence="MIT", source=command, resolution=None,
        description=f"Principal axes of fast-editor deltas in W+ of {generator_name} (follow-up session turns)",
        config={"generator": generator_name, "num_ws": pca.num_ws, "w_dim": pca.w_dim,
                "basis": delta_metadata(pca, generator_name)["basis"], **extra_config},
    )

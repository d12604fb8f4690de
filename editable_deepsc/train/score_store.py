"""Face-net scores of many generator samples, computed in chunks that survive an interrupted run.

The ``ffhq`` direction fit scores ≥ 10,000 samples at the 256 px exit (55 min for 10,000 on 2
shared cores, the progress bar of ``edsc train directions --models ffhq``). :func:`score_samples` draws every ``z`` up front from one seeded stream, maps and
scores them ``chunk`` at a time, and writes each chunk as safetensors into a work directory with a
``manifest.json`` of the settings; a rerun with the same settings skips the chunks already there
(a rerun with other settings is refused rather than mixed in). What a chunk holds:

``w``           (B, w_dim) float32, the mapped (and truncated) latent — samples are unmixed, one
                style broadcast to every layer;
``score.<a>``   (B,) float32, attribute ``a`` read by the guidance (its face view);
``embedding``   (B, 128) float32, the guidance's face descriptors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import make_generator
from editable_deepsc.train.latents import EMBEDDING, score_latents
from editable_deepsc.zoo.registry import load_state_dict, save_state_dict

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ScoreSettings:
    """What a score directory was made with (a rerun must match it)."""

    generator: str
    size: int
    view: dict
    n: int
    seed: int
    truncation: float
    chunk: int
    attributes: tuple[str, ...]

    def to_json(self) -> dict:
        d = asdict(self)
        d["attributes"] = list(self.attributes)
        return d


@dataclass
class ScoredSamples:
    """All chunks of a score directory, concatenated (CPU float32).

    Attributes
    ----------
    w : Tensor (M, w_dim)
    scores : dict of str to Tensor (M,)
    embedding : Tensor (M, 128)
    settings : ScoreSettings
    """

    w: torch.Tensor
    scores: dict[str, torch.Tensor]
    embedding: torch.Tensor
    settings: ScoreSettings


def _check_manifest(workdir: Path, settings: ScoreSettings) -> None:
    p = workdir / MANIFEST
    if p.is_file():
        old = json.loads(p.read_text())
        if old != settings.to_json():
            diff = sorted(k for k in old.keys() | settings.to_json().keys() if old.get(k) != settings.to_json().get(k))
            raise BadInput(f"{workdir} holds scores made with other settings ({', '.join(diff)}); "
                           "use another --workdir or delete it")
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(settings.to_json(), indent=1) + "\n")


def _chunk_path(workdir: Path, i: int) -> Path:
    return workdir / f"chunk-{i:05d}.safetensors"


def score_samples(
    generator: StyleGenerator,
    guidance,
    n: int,
    workdir: str | Path,
    seed: int = 0,
    attributes: tuple[str, ...] = (),
    truncation: float = 1.0,
    chunk: int = 256,
    batch_size: int = 16,
    progress: bool = True,
) -> ScoredSamples:
    """Score ``n`` samples of ``generator`` (resuming the chunks ``workdir`` already holds).

    Parameters
    ----------
    generator : StyleGenerator
        The generator as the fit sees it (e.g. an :class:`~editable_deepsc.generator.exit_view.ExitView`).
    guidance : FaceNetGuidance
        Reads the attributes and the descriptor (through its face view).
    n : int
        Samples; ``z ~ N(0, I)`` drawn for all of them from ``make_generator(seed)``.
    workdir : path
        One directory per setting (see the module docstring).
    truncation : float
        ``w ← mean_w + truncation·(w − mean_w)``.
    chunk : int
        Samples per file.
    """
    if n < 1 or chunk < 1:
        raise BadInput(f"n and chunk must be >= 1, got {n} and {chunk}")
    workdir = Path(workdir)
    view = guidance.view.to_json() if hasattr(guidance, "view") else {}
    settings = ScoreSettings(generator.name, int(generator.resolution), view, int(n), int(seed), float(truncation),
                             int(chunk), tuple(attributes))  # fmt: skip
    _check_manifest(workdir, settings)
    dev = next(generator.parameters()).device
    z = torch.randn(n, generator.z_dim, generator=make_generator(seed))
    m = generator.mean_w().cpu() if truncation != 1.0 else None
    n_chunks = (n + chunk - 1) // chunk
    todo = [i for i in range(n_chunks) if not _chunk_path(workdir, i).is_file()]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=n - sum(min(chunk, n - i * chunk) for i in todo), desc="score samples", unit="face")
    for i in todo:
        with torch.no_grad():
            w = torch.cat([generator.mapping(c.to(dev)).cpu() for c in z[i * chunk : (i + 1) * chunk].split(256)])
            if m is not None:
                w = m + truncation * (w - m)
        scores = score_latents(generator, guidance, generator.broadcast(w), attributes, batch_size, embedding=True)
        emb = scores.pop(EMBEDDING)
        save_state_dict({"w": w, "embedding": emb, **{f"score.{a}": v for a, v in scores.items()}},
                        _chunk_path(workdir, i))  # fmt: skip
        if bar is not None:
            bar.update(len(w))
    if bar is not None:
        bar.close()
    return load_scores(workdir)


def load_scores(workdir: str | Path, limit: int | None = None) -> ScoredSamples:
    """The chunks of ``workdir`` written so far, in order (``limit``: at most that many samples)."""
    workdir = Path(workdir)
    p = workdir / MANIFEST
    if not p.is_file():
        raise BadInput(f"no scores in {workdir} (no {MANIFEST})")
    d = json.loads(p.read_text())
    settings = ScoreSettings(**{**d, "attributes": tuple(d["attributes"])})
    parts = []
    i = 0
    while _chunk_path(workdir, i).is_file():
        parts.append(load_state_dict(_chunk_path(workdir, i)))
        i += 1
    if not parts:
        raise BadInput(f"no score chunks in {workdir} yet")
    w = torch.cat([s["w"] for s in parts])
    emb = torch.cat([s["embedding"] for s in parts])
    scores = {a: torch.cat([s[f"score.{a}"] for s in parts]) for a in settings.attributes}
    if limit is not None:
        w, emb, scores = w[:limit], emb[:limit], {a: v[:limit] for a, v in scores.items()}
    return ScoredSamples(w, scores, emb, settings)

"""What the codec bench sends for a photo set (``ffhq``): edited latents of real photos, judged on the photos.

The transmitter of a photo set sends the *edited* latent of a user's photo. For
``edsc bench codec --models ffhq`` the held-out latents are therefore the hybrid
inversions of CelebA validation photos (000701…; never the held-out 000801–000999),
each moved along the set's direction for one instruction of :data:`EDIT_KEYS`
(cycled) by the smallest step in :data:`STEPS` that meets the target on the
noise-free image. :class:`PhotoCodecMetrics` then scores a received image
against

* the noise-free image of the sent latent: SSIM and the (proxy) LPIPS;
* the **source photo**: face-api descriptor distance and the share under the
  same-person threshold;
* the instruction: **edit kept**, the share of the edits that met their target
  without noise whose received image still meets it.

All images are the set's work size (the 256 exit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from editable_deepsc.editing.criteria import target_met
from editable_deepsc.editing.measure import measure_attributes
from editable_deepsc.eval.edit_bench import DEFAULT_INSTRUCTIONS, BenchInstruction
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.metrics.image import ssim
from editable_deepsc.metrics.lpips import LPIPS

#: instructions the edited latents cycle through (single-attribute edits the ffhq set supports)
EDIT_KEYS: tuple[str, ...] = ("happy:more", "age:more", "yaw:more", "happy:less", "pitch:less", "yaw:less")
#: direction steps tried, in spreads, smallest first
STEPS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
#: first CelebA photo of the bench (the validation split)
FIRST_PHOTO = 701


@dataclass
class PhotoCodecSet:
    """Edited latents of ``n`` validation photos.

    Attributes
    ----------
    w_plus : Tensor, (n, num_ws, w_dim) float32
        The edited latents (what is sent).
    names : list of str
    instructions : list of BenchInstruction
    before : dict of str to Tensor (n,)
        Attribute values of the unedited latents' images.
    reference_met : Tensor, bool (n,)
        Whether the noise-free edit meets its target.
    steps : Tensor (n,)
        Direction step used, in spreads.
    photos : list of PhotoTarget
        Aligned source photos (for identity).
    """

    w_plus: torch.Tensor
    names: list[str]
    instructions: list[BenchInstruction]
    before: dict[str, torch.Tensor]
    reference_met: torch.Tensor
    steps: torch.Tensor
    photos: list[Any]


def _instruction(key: str) -> BenchInstruction:
    return next(i for i in DEFAULT_INSTRUCTIONS if i.key == key)


def met(instructions: list[BenchInstruction], before: dict[str, torch.Tensor],
        values: dict[str, torch.Tensor]) -> torch.Tensor:
    """(n,) bool: whether image ``i`` meets instruction ``i``'s targets, from attribute values before/after."""
    out = []
    for i, ins in enumerate(instructions):
        ok = all(bool(target_met(t, before[t.attribute][i : i + 1], values[t.attribute][i : i + 1])[0])
                 for t in ins.targets)
        out.append(ok)
    return torch.tensor(out)


def photo_codec_set(
    generator: StyleGenerator, work: StyleGenerator, guidance: Any, n: int, cache: str | Path, progress: bool = True
) -> PhotoCodecSet:
    """Invert (cached), edit and check ``n`` validation photos (see the module docstring).

    ``generator`` is the full generator (its name keys the cache), ``work`` the synthesis judged on.
    """
    from editable_deepsc.data.celeba import SPLITS, celeba_jpeg, decode_photo
    from editable_deepsc.eval.photo_edit_bench import inverted_photos
    from editable_deepsc.inversion.encoder import load_encoder
    from editable_deepsc.zoo.sets import generator_set

    last = SPLITS["val"][1]
    if not 1 <= n <= last - FIRST_PHOTO + 1:
        from editable_deepsc.errors import BadInput

        raise BadInput(f"--n must lie in 1..{last - FIRST_PHOTO + 1} (CelebA validation photos), got {n}")
    encoder = load_encoder(generator_set(generator.name).member("encoder"), generator=generator)
    raw = [(f"celeba-{i:06d}", decode_photo(celeba_jpeg(i))) for i in range(FIRST_PHOTO, FIRST_PHOTO + n)]
    photos = inverted_photos(raw, generator, encoder, cache, method="hybrid", progress=progress)  # needs autograd
    with torch.no_grad():
        return _edited(photos, work, guidance, progress)


def _edited(photos: list, work: StyleGenerator, guidance: Any, progress: bool) -> PhotoCodecSet:
    """Edit the inverted ``photos`` along the set's directions (see :func:`photo_codec_set`)."""
    from editable_deepsc.editing.directions import load_directions

    generator = getattr(work, "base", work)
    directions = load_directions(generator.name)
    w0 = torch.cat([p.w_plus for p in photos]).float()
    instructions = [_instruction(EDIT_KEYS[i % len(EDIT_KEYS)]) for i in range(len(photos))]
    attrs = tuple(sorted({t.attribute for ins in instructions for t in ins.targets}))
    before = measure_attributes(guidance, _render(work, w0), attrs)
    edited = w0.clone()
    step = torch.full((len(photos),), float("nan"))
    done = torch.zeros(len(photos), dtype=torch.bool)
    for s in tqdm(STEPS, desc="edit photos", disable=not progress, leave=False):
        todo = (~done).nonzero().flatten()
        if not len(todo):
            break
        cand = torch.stack([w0[i] + s * sum(t.sign * directions.vector(t.attribute) for t in instructions[i].targets)
                            for i in todo.tolist()])
        values = measure_attributes(guidance, _render(work, cand), attrs)
        ok = met([instructions[i] for i in todo.tolist()], {a: before[a][todo] for a in attrs}, values)
        for j, i in enumerate(todo.tolist()):
            if ok[j] or s == STEPS[-1]:
                edited[i], step[i], done[i] = cand[j], s, bool(ok[j]) or done[i]
        done[todo[ok]] = True
    reference_met = met(instructions, before, measure_attributes(guidance, _render(work, edited), attrs))
    return PhotoCodecSet(edited, [p.name for p in photos], instructions, before, reference_met, step,
                         [p.target for p in photos])


def _render(work: StyleGenerator, w: torch.Tensor, batch: int = 8) -> torch.Tensor:
    return torch.cat([work.synthesis(c).clamp(-1, 1) for c in w.split(batch)])


class PhotoCodecMetrics:
    """Scores received images of a :class:`PhotoCodecSet` (see the module docstring).

    Parameters
    ----------
    data : PhotoCodecSet
    reference : Tensor
        Noise-free images of ``data.w_plus`` (n, 3, S, S) in [-1, 1].
    guidance : FaceNetGuidance
        Attribute nets (through the set's face view).
    lpips_size : int
        Side the proxy LPIPS resizes to.
    """

    def __init__(self, data: PhotoCodecSet, reference: torch.Tensor, guidance: Any, lpips_size: int = 128):
        from editable_deepsc.inversion.photo_target import PhotoIdentity, same_person_threshold

        self.threshold = same_person_threshold()[0]
        self.second = _second_identity(data.photos)
        self.data, self.ref, self.guidance = data, reference, guidance
        self.lpips = LPIPS(proxy_input_size=lpips_size)
        self.lpips_size = lpips_size if self.lpips.is_proxy else None
        self.identity = PhotoIdentity(data.photos, analyzer=guidance.analyzer)
        self.attrs = tuple(data.before)

    @torch.no_grad()
    def __call__(self, rx: torch.Tensor) -> dict[str, float | None]:
        dist = self.identity.distance(rx).cpu()
        values = measure_attributes(self.guidance, rx, self.attrs)
        ok = met(self.data.instructions, self.data.before, values)
        ref = self.data.reference_met
        second = {} if self.second is None else _second_row(self.second, rx)
        return {
            **second,
            "ssim": float(ssim(rx, self.ref).mean()),
            "lpips": float(self.lpips(rx, self.ref).mean()),
            "identity": None,
            "identity_distance": float(dist.mean()),
            "identity_kept": float((dist <= self.threshold).float().mean()),
            "edit_kept": float(ok[ref].float().mean()) if bool(ref.any()) else None,
        }


def _second_identity(photos: list) -> Any:
    """FaceRes (the descriptor nothing optimises) against the source photos, or ``None`` if not converted."""
    from editable_deepsc.errors import CheckpointError
    from editable_deepsc.inversion.photo_target import SecondIdentity

    try:
        return SecondIdentity(photos)
    except CheckpointError:
        return None


def _second_row(second: Any, images: torch.Tensor) -> dict[str, float]:
    d = second.distance(images).cpu()
    return {"second_distance": float(d.mean()), "second_kept": float((d <= second.threshold).float().mean())}


@dataclass
class PhotoBench:
    """Held-out data, judges and latent variance of the codec bench on a photo set."""

    data: PhotoCodecSet
    metrics: PhotoCodecMetrics
    source_variance: float
    variance_from: str

    def meta(self) -> dict[str, Any]:
        """Fields for the bench's ``meta``: photos, edits, steps, how many edits meet their target noise-free,
        and the noise-free images' identity to the photos (what the channel can at best keep)."""
        dist = self.metrics.identity.distance(self.metrics.ref).cpu()
        second = self.metrics.second
        ref2 = {} if second is None else {f"reference_{k}": v for k, v in _second_row(second, self.metrics.ref).items()}
        return {
            **ref2,
            "second_threshold": None if second is None else float(second.threshold),
            "reference_identity_distance": float(dist.mean()),
            "reference_identity_kept": float((dist <= self.metrics.threshold).float().mean()),
            "photos": [self.data.names[0], self.data.names[-1]],
            "edits": list(EDIT_KEYS),
            "edit_steps_spreads": [float(s) for s in self.data.steps],
            "reference_edits_met": float(self.data.reference_met.float().mean()),
            "latent_variance_from": self.variance_from,
            "identity_threshold": self.metrics.threshold,
        }


def training_photo_variance(generator: StyleGenerator, cache: str | Path) -> tuple[float | None, int]:
    """``E‖w − w̄‖²`` of the cached hybrid inversions of CelebA *training* photos, and how many there are."""
    from editable_deepsc.data.celeba import celeba_indices
    from editable_deepsc.train.codec_photos import cached_inversion
    from editable_deepsc.zoo.registry import load_state_dict

    paths = [p for i in celeba_indices("train") if (p := cached_inversion(cache, i, "hybrid", generator.name)).is_file()]
    if len(paths) < 2:
        return None, len(paths)
    w = torch.cat([load_state_dict(p, verify=False)["w_plus"].float().flatten(1) for p in paths])
    return float((w - w.mean(0)).pow(2).sum(1).sum() / (len(paths) - 1)), len(paths)


def photo_bench(
    generator: StyleGenerator, n: int, cache: str | Path, lpips_size: int = 128, progress: bool = True
) -> tuple[StyleGenerator, PhotoBench]:
    """The work-size synthesis and the :class:`PhotoBench` of ``n`` validation photos of ``generator``'s set."""
    from editable_deepsc.editing.face_guidance import FaceNetGuidance
    from editable_deepsc.generator.exit_view import work_generator
    from editable_deepsc.guidance.faces.view import view_for_generator

    work = work_generator(generator)
    guidance = FaceNetGuidance(view=view_for_generator(generator.name))
    data = photo_codec_set(generator, work, guidance, n, cache, progress)
    with torch.no_grad():
        ref = _render(work, data.w_plus)
    var, count = training_photo_variance(generator, cache)
    if var is None:
        w = data.w_plus.flatten(1)
        var, origin = float((w - w.mean(0)).pow(2).sum(1).sum() / max(1, len(w) - 1)), "the bench's own latents"
    else:
        origin = f"{count} hybrid inversions of CelebA training photos"
    return work, PhotoBench(data, PhotoCodecMetrics(data, ref, guidance, lpips_size), var, origin)

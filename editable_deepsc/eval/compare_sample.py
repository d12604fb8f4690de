"""One sample of ``edsc eval``: a held-out face + instruction under every condition.

For sample ``i`` (face ``test_seeds(n, offset)[i]``, instruction ``i mod |set|``):

1. **Reference edit** — the transmitter-side edit with no channel: invert the
   face, edit the latent with the system's editor
   (:func:`~editable_deepsc.baselines.edit_at_receiver.edit_at_receiver`, seed
   ``s_i = derive_seed(seed, "sample", i)``), ``ref = G(w_ref)``.
2. **Editable-DeepSC** at (SNR, k): ``w_ref`` → semantic codec with ``k`` symbols →
   channel → decoder → ``G(ŵ)``.
3. **Data-oriented baselines** at (SNR, CBR): the face crosses the channel with the
   method, the receiver inverts and edits it with the same editor and seed
   (:func:`~editable_deepsc.baselines.edit_at_receiver.deliver_and_edit`): over a
   perfect channel it would reproduce ``ref`` exactly.

Every received edit is scored against ``ref`` (PSNR, SSIM, MS-SSIM, LPIPS), for
identity against the source face, and for edit success with the editor's
criteria (every target met relative to ``G(w0)``, and identity distance to
``G(w0)`` ≤ ``MAX_ID_DISTANCE`` when face nets are present). FID features of each
received edit and of the reference are returned for the set-level FID.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from editable_deepsc.baselines.edit_at_receiver import deliver_and_edit, edit_at_receiver
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.link import send_latent
from editable_deepsc.editing.criteria import target_met
from editable_deepsc.errors import EdscError
from editable_deepsc.eval.compare_config import SEMANTIC, Condition
from editable_deepsc.eval.edit_bench import MAX_ID_DISTANCE
from editable_deepsc.metrics.features import EfficientNetFeatures
from editable_deepsc.metrics.fid import FID, PROXY_NAME
from editable_deepsc.metrics.image import ms_ssim, psnr, ssim
from editable_deepsc.metrics.lpips import LPIPS, normalize_channels
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.text.targets import EditTarget


@dataclass(frozen=True)
class Instruction:
    """An instruction of the evaluation: its text and targets."""

    text: str
    targets: tuple[EditTarget, ...]


@dataclass
class SampleResult:
    """Everything one sample produced.

    Attributes
    ----------
    records : list of dict
        One JSON record per condition (same order as the conditions).
    features : numpy.ndarray, float16, shape (1 + C, D)
        FID features: row 0 the reference edit, then one row per condition.
    images : dict of str to Tensor (1, 3, R, R)
        ``source``, ``reference`` and one per condition key (only when asked).
    """

    records: list[dict]
    features: np.ndarray
    images: dict[str, torch.Tensor]


def _f(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _proxy_fid(input_size: int):
    """An EfficientNet-Lite0 proxy :class:`~editable_deepsc.metrics.fid.FID` built without the Inception module."""
    fid = FID.__new__(FID)
    fid.is_proxy, fid.name, fid.dim = True, PROXY_NAME, 1280
    fid._inception_path = ""
    fid._proxy = EfficientNetFeatures(input_size=input_size)
    return fid


class Scorer:
    """Metrics of received edits against the reference (built once per process).

    Parameters
    ----------
    system : EditableDeepSC
        Its ``guidance`` (face nets) gives attribute values and identity, when present.
    proxy_input_size : int
        Side the EfficientNet proxies resize images to (224, their default, unless a test
        needs speed; any other size is written into the metric names as ``@<size>px``).
    """

    def __init__(self, system, proxy_input_size: int = 224):
        self.system = system
        self.guidance = system.guidance
        self.size = int(proxy_input_size)
        self.lpips = LPIPS(proxy_input_size=self.size)
        try:
            self.fid = FID(proxy_input_size=self.size)
        except ImportError:  # the standard-Inception module is absent: use the labelled proxy
            self.fid = _proxy_fid(self.size)

    def labels(self) -> dict:
        """Names and proxy flags of the perceptual metrics (go into every record)."""
        tag = "" if self.size == 224 else f"@{self.size}px"
        return {"lpips_name": self.lpips.name + (tag if self.lpips.is_proxy else ""),
                "lpips_proxy": bool(self.lpips.is_proxy),
                "fid_name": self.fid.name + (tag if self.fid.is_proxy else ""), "fid_proxy": bool(self.fid.is_proxy)}

    @torch.no_grad()
    def attributes(self, images: torch.Tensor, attrs: tuple[str, ...]) -> dict[str, torch.Tensor]:
        g = self.guidance
        if g is None or not hasattr(g, "measure") or not attrs:
            return {}
        return {a: v.reshape(-1).float().cpu() for a, v in g.measure(images, attrs).items()}

    @torch.no_grad()
    def identity(self, images: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarity, distance), each (N,) float32; NaN without face nets."""
        g, n = self.guidance, images.shape[0]
        ref = reference.expand(n, -1, -1, -1)
        sim = g.identity_similarity(images, ref).reshape(-1).float() if hasattr(g, "identity_similarity") \
            else torch.full((n,), float("nan"))
        dist = g.identity_distance(images, ref).reshape(-1).float() if hasattr(g, "identity_distance") \
            else torch.full((n,), float("nan"))
        return sim.cpu(), dist.cpu()

    @torch.no_grad()
    def lpips_to(self, rx: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """LPIPS of each rx (N,3,R,R) to one ref (1,3,R,R); the proxy computes the ref's maps once.

        Same numbers as ``LPIPS()(rx, ref.expand(N, ...))`` (per-stage channel-normalised squared
        differences, spatial mean, stage mean), at about half the cost.
        """
        feats = getattr(self.lpips, "_features", None)
        if not self.lpips.is_proxy or feats is None:
            return self.lpips(rx, ref.expand(rx.shape[0], -1, -1, -1))
        maps = feats.maps(torch.cat([ref, rx]).float())
        per_stage = []
        for f in maps:
            f = normalize_channels(f)
            per_stage.append((f[1:] - f[:1]).pow(2).sum(1).mean(dim=(1, 2)))
        return torch.stack(per_stage).mean(0)

    @torch.no_grad()
    def image_metrics(self, rx: torch.Tensor, ref: torch.Tensor) -> dict[str, list[float | None]]:
        """PSNR, SSIM, MS-SSIM (None below 33 px) and LPIPS of each rx (N,3,R,R) against ref (1,3,R,R)."""
        refs = ref.expand(rx.shape[0], -1, -1, -1)
        out: dict[str, list[float | None]] = {
            "psnr": [100.0 if _f(v) is None else min(float(v), 100.0) for v in psnr(rx, refs)],
            "ssim": [_f(v) for v in ssim(rx, refs)] if min(rx.shape[-2:]) >= 11 else [None] * rx.shape[0],
            "lpips": [_f(v) for v in self.lpips_to(rx, ref)],
        }
        try:
            out["ms_ssim"] = [_f(v) for v in ms_ssim(rx, refs)]
        except EdscError:
            out["ms_ssim"] = [None] * rx.shape[0]
        return out


def success_of(targets: Sequence[EditTarget], before: dict[str, torch.Tensor], after: dict[str, torch.Tensor],
               id_distance: torch.Tensor, max_id_distance: float) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Editor's criteria: (met, success), each bool (N,), or (None, None) without attribute values.

    ``met``: every target met by ``after`` relative to ``before``; ``success``: met and
    identity distance ≤ ``max_id_distance`` (distance ignored when NaN).
    """
    if not targets or any(t.attribute not in after or t.attribute not in before for t in targets):
        return None, None
    n = next(iter(after.values())).shape[0]
    met = torch.ones(n, dtype=torch.bool)
    for t in targets:
        met &= target_met(t, before[t.attribute].expand(n), after[t.attribute])
    ok_id = torch.where(torch.isnan(id_distance), torch.ones_like(met), id_distance <= max_id_distance)
    return met, met & ok_id


def _semantic_link(codec, w: torch.Tensor, cond: Condition, channel: str, seed: int) -> tuple[torch.Tensor, int]:
    sent = send_latent(w, codec.encode, codec.decode, ChannelConfig(channel, cond.snr_db), make_generator(seed))
    return sent.w, sent.k


def evaluate_sample(system, scorer: Scorer, codecs: dict[int, Any], sample_id: int, face: torch.Tensor,
                    instruction: Instruction, conditions: Sequence[Condition], channel: str, seed: int,
                    keep_images: bool = False, method_options: dict[str, dict] | None = None) -> SampleResult:
    """Evaluate one face + instruction under every condition.

    Parameters
    ----------
    system : EditableDeepSC
    scorer : Scorer
    codecs : dict of int to SemanticCodec
        The semantic codecs by ``k`` (each condition of the semantic method names one).
    sample_id : int
    face : Tensor, float32, shape (1, 3, R, R), in [-1, 1]
    instruction : Instruction
    conditions : sequence of Condition
    channel : {"awgn", "rayleigh"}
    seed : int
        Run seed; the sample's seed is ``derive_seed(seed, "sample", sample_id)``.
    keep_images : bool
        Return the images (for the grid).
    method_options : dict, optional
        Extra keyword options per baseline (e.g. ``{"deepjscc": {"model": path}}``).

    Returns
    -------
    SampleResult
    """
    s = derive_seed(seed, "sample", sample_id)
    targets = tuple(instruction.targets)
    attrs = tuple(dict.fromkeys(t.attribute for t in targets))
    t0 = time.perf_counter()
    ref_edit = edit_at_receiver(system, face, [targets], seed=s)
    ref_seconds = time.perf_counter() - t0
    ref = ref_edit.image
    with torch.no_grad():
        recon = system.rx.synthesise(ref_edit.w_received)
    rx_images, extras = [], []
    for cond in conditions:
        t0 = time.perf_counter()
        info: dict[str, Any] = {"decode_failed": False, "failure": None}
        if cond.method == SEMANTIC:
            w_rx, k = _semantic_link(codecs[cond.k], ref_edit.w_edit, cond, channel,
                                     derive_seed(s, "semantic", cond.snr_db, cond.k))
            with torch.no_grad():
                img = system.rx.synthesise(w_rx)
            info.update(k=k, cbr=k / (3 * face.shape[-1] * face.shape[-2]), model=getattr(codecs[cond.k], "name", None)
                        or f"codec-k{k}")
            seconds = time.perf_counter() - t0 + ref_seconds
        else:
            opts = dict((method_options or {}).get(cond.method, {}))
            d = deliver_and_edit(system, face, cond.method, cond.cbr, ChannelConfig(channel, cond.snr_db), [targets],
                                 seed=s, **opts)
            tj = d.transmission.to_json()
            img = d.image
            ok = bool(tj.get("decoded_ok", True))
            info.update(k=int(tj["k"]), cbr=float(tj["cbr"]), model=tj.get("model") or tj.get("codec"),
                        decode_failed=not ok, failure=tj.get("failure"), link_psnr=_f(tj.get("psnr")))
            seconds = time.perf_counter() - t0
        info["seconds"] = round(seconds, 4)
        rx_images.append(img.clamp(-1, 1))
        extras.append(info)
    rx = torch.cat(rx_images) if rx_images else ref[:0]
    metrics = scorer.image_metrics(rx, ref) if len(rx_images) else {}
    sim_src, _ = scorer.identity(rx, face) if len(rx_images) else (None, None)
    _, dist_w0 = scorer.identity(rx, recon) if len(rx_images) else (None, None)
    before = scorer.attributes(recon, attrs)
    after = scorer.attributes(rx, attrs) if len(rx_images) else {}
    met, succ = success_of(targets, before, after, dist_w0, MAX_ID_DISTANCE) if len(rx_images) else (None, None)
    ref_scores = scorer.attributes(ref, attrs)
    _, ref_dist = scorer.identity(ref, recon)
    ref_met, ref_succ = success_of(targets, before, ref_scores, ref_dist, MAX_ID_DISTANCE)
    ref_sim, _ = scorer.identity(ref, face)
    labels = scorer.labels()
    records = []
    for j, (cond, info) in enumerate(zip(conditions, extras)):
        records.append({
            "sample_id": int(sample_id), "condition": cond.key, "method": cond.method, "snr_db": cond.snr_db,
            "channel": channel, "cbr": info["cbr"], "cbr_requested": cond.cbr, "k": info["k"],
            "model": info["model"], "image_size": [int(face.shape[-2]), int(face.shape[-1])],
            "instruction": instruction.text, "targets": [t.describe() for t in targets],
            "psnr": metrics["psnr"][j], "ssim": metrics["ssim"][j], "ms_ssim": metrics["ms_ssim"][j],
            "lpips": metrics["lpips"][j], **labels,
            "identity": _f(sim_src[j]), "id_distance_w0": _f(dist_w0[j]),
            "met": None if met is None else bool(met[j]), "success": None if succ is None else bool(succ[j]),
            "ref_success": None if ref_succ is None else bool(ref_succ[0]), "ref_identity": _f(ref_sim[0]),
            "scores_before": {a: _f(v[0]) for a, v in before.items()},
            "scores_ref": {a: _f(v[0]) for a, v in ref_scores.items()},
            "scores_rx": {a: _f(v[j]) for a, v in after.items()},
            "decode_failed": info["decode_failed"], "failure": info["failure"],
            "link_psnr": info.get("link_psnr"), "seconds": info["seconds"], "seed": int(seed),
            "sample_seed": int(s),
        })
    feats = scorer.fid.features(torch.cat([ref, rx]), batch_size=64).astype(np.float16)
    images: dict[str, torch.Tensor] = {}
    if keep_images:
        images = {"source": face, "reference": ref, **{c.key: im for c, im in zip(conditions, rx_images)}}
    return SampleResult(records=records, features=feats, images=images)


__all__ = ["Instruction", "SampleResult", "Scorer", "evaluate_sample", "success_of"]

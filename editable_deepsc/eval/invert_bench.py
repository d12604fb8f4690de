"""Inversion benchmark: encoder vs optimisation vs hybrid on held-out teacher faces.

All methods invert the same ``n`` faces from the reserved test seeds
(:func:`~editable_deepsc.generator.teacher.test_seeds`) into the generator's W+
in the same process, so their seconds per image compare directly; the
encoder's speed-up is reported as the ratio of seconds per image
(optimisation / encoder). An extra row inverts into a single shared ``w``
(``optimize (w)``) as the reference the layer-wise space must beat.

:func:`write_markdown` renders the table between the markers
``<!-- inversion-table:start -->`` / ``<!-- inversion-table:end -->`` so that
other generated documents (the model card) can embed it with
:func:`read_table`.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import teacher_faces, test_seeds
from editable_deepsc.inversion.encoder import E4EEncoder
from editable_deepsc.inversion.invert import HYBRID_DEFAULTS, OPTIMIZE_DEFAULTS, invert
from editable_deepsc.inversion.optimize import invert_optimize
from editable_deepsc.inversion.quality import identity_similarity_or_none, reconstruction_stats
from editable_deepsc.metrics.lpips import LPIPS
from editable_deepsc.zoo import registry

TABLE_START = "<!-- inversion-table:start -->"
TABLE_END = "<!-- inversion-table:end -->"
#: Targets of issue 4 (v1).
TARGET_SPEEDUP = 100.0
TARGET_HYBRID_LPIPS_RATIO = 1.10


@dataclass
class BenchRow:
    """One method's averages over the benchmark faces."""

    method: str
    space: str
    steps: int
    psnr: float
    ssim: float
    lpips: float
    identity: float | None
    seconds_per_image: float
    speedup_vs_optimize: float | None = None


@dataclass
class BenchResult:
    """Rows plus everything needed to reproduce them."""

    rows: list[BenchRow]
    meta: dict[str, Any] = field(default_factory=dict)

    def row(self, method: str, steps: int | None = None) -> BenchRow:
        """The first row of ``method`` (with ``steps`` Adam steps, if given)."""
        return next(r for r in self.rows if r.method == method and (steps is None or r.steps == steps))

    def hybrid_row(self) -> BenchRow:
        """The hybrid row at the default steps if benchmarked, else the first hybrid row."""
        hyb = [r for r in self.rows if r.method == "hybrid"]
        return next((r for r in hyb if r.steps == HYBRID_DEFAULTS["steps"]), hyb[0])

    def to_json(self) -> dict[str, Any]:
        return {"rows": [asdict(r) for r in self.rows], "meta": self.meta}


def _mean(stats: list[dict], key: str) -> float | None:
    vals = [s[key] for s in stats if s.get(key) is not None]
    return float(sum(vals) / len(vals)) if vals else None


def run_invert_bench(
    generator: StyleGenerator,
    encoder: E4EEncoder,
    n: int = 16,
    optimize_steps: int = OPTIMIZE_DEFAULTS["steps"],
    hybrid_steps: int | tuple[int, ...] = HYBRID_DEFAULTS["steps"],
    batch_size: int = 8,
    seed: int = 0,
    single_w: bool = True,
    progress: bool = True,
) -> BenchResult:
    """Invert ``n`` held-out teacher test faces with every method and average the metrics.

    Parameters
    ----------
    generator : StyleGenerator
    encoder : E4EEncoder
    n : int
        Number of test faces (seeds ``test_seeds(n)``).
    optimize_steps : int
        Adam steps of the optimisation.
    hybrid_steps : int or tuple of int
        Adam steps of the hybrid refinement; several values give one row each
        (the quality/time trade-off). Targets use :data:`HYBRID_DEFAULTS` steps
        when listed, else the first value.
    batch_size : int
        Images inverted together (each image is still an independent problem).
    seed : int
        Seed of the optimisation noise.
    single_w : bool
        Add the single-``w`` optimisation row.
    progress : bool
        tqdm bars.

    Returns
    -------
    BenchResult
    """
    if n < 1:
        raise BadInput(f"n must be >= 1, got {n}")
    metric = LPIPS()
    faces = teacher_faces(test_seeds(n))
    # warm-up (first-call costs of the backbone and autograd), not timed
    invert(faces[:1], "hybrid", generator=generator, encoder=encoder, steps=1, with_stats=False)
    rows: list[BenchRow] = []
    hybrid_list = (hybrid_steps,) if isinstance(hybrid_steps, int) else tuple(hybrid_steps)
    if not hybrid_list or min(hybrid_list) < 1 or optimize_steps < 1:
        raise BadInput(f"steps must be >= 1, got optimize {optimize_steps}, hybrid {hybrid_list}")
    runs = [("encoder", 0)] + [("hybrid", k) for k in hybrid_list] + [("optimize", optimize_steps)]
    for method, steps in runs:
        out = invert(
            faces, method, generator=generator, encoder=encoder, steps=steps or None, seed=seed,
            batch_size=batch_size, lpips_metric=metric, progress=progress,
        )
        rows.append(_row(method, "wplus", steps, out.stats, out.seconds / n))
    if single_w:
        t, w_stats = 0.0, []
        recons = []
        for i, chunk in enumerate(faces.split(batch_size)):
            t0 = time.perf_counter()
            res = invert_optimize(generator, chunk, steps=optimize_steps, space="w", seed=seed + i, progress=progress)
            t += time.perf_counter() - t0
            recons.append(res.images)
        w_stats = reconstruction_stats(torch.cat(recons), faces, metric)
        rows.append(_row("optimize (w)", "w", optimize_steps, w_stats, t / n))
    identity_floor = None
    sim = identity_similarity_or_none()
    if sim is not None and n > 1:  # each face against the next one: unrelated people
        with torch.no_grad():
            identity_floor = float(sim(faces, faces.roll(1, dims=0)).mean())
    ref = next(r for r in rows if r.method == "optimize").seconds_per_image
    for r in rows:
        r.speedup_vs_optimize = ref / r.seconds_per_image if r.seconds_per_image > 0 else None
    meta = {
        "command": None,
        "n_images": n,
        "test_seeds": [test_seeds(n).start, test_seeds(n).stop],
        "generator": generator.name,
        "num_ws": generator.num_ws,
        "w_dim": generator.w_dim,
        "encoder_parameters": sum(p.numel() for p in encoder.parameters()),
        "lpips_metric": metric.name,
        "lpips_is_proxy": metric.is_proxy,
        "identity_unrelated": identity_floor,
        "single_w": single_w,
        "optimisation_loss": "pixel MSE + 0.5 x lpips-proxy(effnet-lite0) at 64 px input",
        "batch_size": batch_size,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "device": str(next(generator.parameters()).device),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    return BenchResult(rows, meta)


def _row(method: str, space: str, steps: int, stats: list[dict], sec: float) -> BenchRow:
    return BenchRow(
        method=method,
        space=space,
        steps=steps,
        psnr=_mean(stats, "psnr"),
        ssim=_mean(stats, "ssim"),
        lpips=_mean(stats, "lpips"),
        identity=_mean(stats, "identity"),
        seconds_per_image=sec,
    )


def markdown_table(result: BenchResult) -> str:
    """The benchmark as a Markdown table (LPIPS column labelled proxy when it is)."""
    proxy = result.meta.get("lpips_is_proxy", True)
    lp = "LPIPS (proxy) ↓" if proxy else "LPIPS ↓"
    head = f"| method | latent | Adam steps | PSNR (dB) ↑ | SSIM ↑ | {lp} | identity cos ↑ | s / image | speed-up vs optimize |"
    lines = [head, "|" + "---|" * 9]
    for r in result.rows:
        ident = "n/a" if r.identity is None else f"{r.identity:.3f}"
        sp = "" if r.speedup_vs_optimize is None else f"{r.speedup_vs_optimize:,.1f}×"
        latent = "W+" if r.space == "wplus" else "single w"
        lines.append(
            f"| {r.method} | {latent} | {r.steps} | {r.psnr:.2f} | {r.ssim:.3f} | {r.lpips:.3f} | {ident} | "
            f"{r.seconds_per_image:.4g} | {sp} |"
        )
    return "\n".join(lines)


def targets(result: BenchResult) -> dict[str, Any]:
    """The v1 targets: encoder speed-up >= 100x, hybrid LPIPS <= 1.1 x optimisation's."""
    enc, hyb, opt = result.row("encoder"), result.hybrid_row(), result.row("optimize")
    ratio = hyb.lpips / opt.lpips if opt.lpips > 0 else float("inf")
    meeting = [r.steps for r in result.rows if r.method == "hybrid" and r.lpips <= TARGET_HYBRID_LPIPS_RATIO * opt.lpips]
    single = [r for r in result.rows if r.method == "optimize (w)"]
    return {
        "hybrid_lpips_ratio_vs_single_w": hyb.lpips / single[0].lpips if single and single[0].lpips > 0 else None,
        "hybrid_steps": hyb.steps,
        "hybrid_speedup": hyb.speedup_vs_optimize,
        "fewest_hybrid_steps_meeting_lpips_target": min(meeting) if meeting else None,
        "encoder_speedup": enc.speedup_vs_optimize,
        "encoder_speedup_met": bool(enc.speedup_vs_optimize and enc.speedup_vs_optimize >= TARGET_SPEEDUP),
        "hybrid_lpips_ratio": ratio,
        "hybrid_lpips_met": bool(ratio <= TARGET_HYBRID_LPIPS_RATIO),
    }


def encoder_training_info(name: str) -> dict[str, Any] | None:
    """Card source, sha256 and training summary of a registered encoder (None for paths / unknown names)."""
    if Path(name).suffix:
        return None
    try:
        c = registry.card(name)
    except CheckpointError:
        return None
    info: dict[str, Any] = {"name": c.name, "sha256": c.sha256, "source": c.source}
    summary = c.path.with_name(f"{c.name}.train.json")
    if summary.is_file():
        s = json.loads(summary.read_text())
        info.update({k: s.get(k) for k in ("steps", "seconds", "threads", "init", "identity_loss", "final")})
        info["config"] = s.get("config")
    return info


def training_section(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    lines = ["## Encoder training", "", f"`{info['name']}` (sha256 `{info['sha256'][:16]}…`): {info['source']}."]
    if info.get("final"):
        fin = ", ".join(f"{k} {v:.4g}" for k, v in info["final"].items())
        lines.append(f"Losses at the last logged step: {fin}.")
    if info.get("init"):
        lines.append(f"Warm-started from `{info['init']}`.")
    cfg = info.get("config") or {}
    if cfg:
        keys = ("batch_size", "teacher_fraction", "lr", "mix_prob", "latent_weight", "pixel_weight",
                "perceptual_weight", "identity_weight", "identity_every", "delta_weight", "progressive_every")
        lines.append("Config: " + ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg) + ".")
    return "\n".join(lines) + "\n"


def load_result(path: str | Path) -> BenchResult:
    """Read a result written by :func:`write_markdown` (the ``.json`` beside the page)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"no benchmark result at {p} (run edsc bench invert --markdown first)")
    try:
        data = json.loads(p.read_text())
        return BenchResult([BenchRow(**r) for r in data["rows"]], data["meta"])
    except (ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{p} is not an inversion benchmark result: {e}") from None


def observations(result: BenchResult) -> str:
    """Comparisons read off the table (W+ vs single w, encoder start vs mean start), one bullet each."""
    opt = result.row("optimize")
    out = []
    single = [r for r in result.rows if r.method == "optimize (w)"]
    if single:
        w = single[0]
        better = "better than" if opt.lpips < w.lpips else "no better than"
        out.append(
            f"* Optimised from the mean w for {opt.steps} steps, W+ is {better} a single w "
            f"(proxy LPIPS {opt.lpips:.3f} vs {w.lpips:.3f}, PSNR {opt.psnr:.2f} vs {w.psnr:.2f} dB)."
        )
    hyb = [r for r in result.rows if r.method == "hybrid"]
    if hyb:
        best = min(hyb, key=lambda r: r.lpips)
        out.append(
            f"* Started from the encoder, W+ reaches proxy LPIPS {best.lpips:.3f} / PSNR {best.psnr:.2f} dB "
            f"after {best.steps} steps ({best.speedup_vs_optimize:.1f}× faster than {opt.steps} steps from the mean)."
        )
    return "\n".join(out)


def write_markdown(result: BenchResult, path: str | Path) -> Path:
    """Write ``docs/inversion.md``-style page: intro, the table between markers, targets, reproduction."""
    path = Path(path)
    m, t = result.meta, targets(result)
    proxy_note = (
        "LPIPS is the **proxy** `lpips-proxy(effnet-lite0)` (ImageNet EfficientNet-Lite0 features, "
        "no learned heads; not comparable with published LPIPS)"
        if m.get("lpips_is_proxy", True)
        else f"LPIPS is the standard `{m.get('lpips_metric')}`"
    )
    ok = {True: "met", False: "**not met**"}
    single_w_note = (
        "`optimize (w)` inverts into a single shared w broadcast to every layer (the reference the\n"
        "layer-wise space must beat).\n"
        if m.get("single_w", True)
        else ""
    )
    r_w = t.get("hybrid_lpips_ratio_vs_single_w")
    vs_w = "" if r_w is None else f"; against the single-w optimisation the ratio is {r_w:.3f}"
    floor = m.get("identity_unrelated")
    identity_note = (
        "Identity: cosine similarity of face-api face-recognition descriptors of the reconstruction and\n"
        + (
            f"the original; the scale is compressed — unrelated test faces (each against the next) score "
            f"{floor:.3f} on average."
            if floor is not None
            else "the original (n/a when the face nets are not installed)."
        )
    )
    body = f"""# Inversion: image → W+

Generated by `{m.get('command') or 'edsc bench invert'}` — do not edit by hand.

The image semantic encoder of Editable-DeepSC inverts a face into the layer-wise latent space W+
({m['num_ws']} × {m['w_dim']}) of the built-in generator `{m['generator']}`. Three methods
(`editable_deepsc.inversion.invert(images, method=...)`, CLI `edsc invert`):

* **encoder** — one forward pass of the e4e-style encoder `edsc-e4e-faces64`
  ({m['encoder_parameters'] / 1e6:.2f} M parameters): a base style w₀ plus per-layer offsets Δᵢ;
* **optimize** — Adam on W+ from the mean w (StyleGAN2-projector learning-rate schedule and
  exploration noise; the layers move together for the first 25% of the steps, then freely —
  progressive untying, see `docs/models.md`), loss {m['optimisation_loss']};
* **hybrid** — the encoder's W+ refined by Adam steps of the same loss (no exploration noise;
  rows for several step counts show the quality/time trade-off).

{single_w_note}
Real photos into the full-size `ffhq` set (alignment, identity against the photo, paste-back) have
their own page: `docs/inversion_ffhq.md` (`edsc bench invert --models ffhq`).

## Held-out teacher faces

{m['n_images']} teacher faces from the reserved test seeds [{m['test_seeds'][0]}, {m['test_seeds'][1]}),
{m['device']} with {m['threads']} torch thread(s), batches of {m['batch_size']} images (seconds per image =
batch time / images; the encoder's time excludes synthesis), seed {m['seed']}, {m['date_utc']} UTC.
{proxy_note}. {identity_note}

{TABLE_START}
{markdown_table(result)}
{TABLE_END}

{observations(result)}

Targets (issue 4, v1): encoder ≥ {TARGET_SPEEDUP:.0f}× faster than optimisation —
{t['encoder_speedup']:,.0f}×, {ok[t['encoder_speedup_met']]}; hybrid proxy LPIPS within
{(TARGET_HYBRID_LPIPS_RATIO - 1) * 100:.0f}% of optimisation's — the default hybrid ({t['hybrid_steps']} steps,
{t['hybrid_speedup']:.1f}× faster than optimisation) has ratio {t['hybrid_lpips_ratio']:.3f}, {ok[t['hybrid_lpips_met']]}
(fewest benchmarked hybrid steps meeting it: {t['fewest_hybrid_steps_meeting_lpips_target']}){vs_w}.

The optimisation loss uses the proxy LPIPS at a 64 px EfficientNet input while the table's
LPIPS resizes to 224 px, so the reported metric is related to, but not the one optimised.
Timings are CPU wall-clock on a shared machine and vary by ±30% between runs; the ratios are
measured in one process.

{training_section(m.get("encoder_training"))}
## Use

```
edsc invert face.png --method hybrid --out recon.png --latent-out w.safetensors --json
edsc train encoder --steps 1500 --max-minutes 40     # resumable (--workdir), exports to the zoo
edsc bench invert --n 16 --hybrid-steps 20,50,100 --markdown docs/inversion.md
```

```python
from editable_deepsc.inversion import invert, invert_optimize, load_encoder
out = invert(images, method="hybrid")          # images (N, 3, 64, 64) in [-1, 1], aligned
out.w_plus                                     # (N, 5, 100) float32; out.stats: psnr, ssim, lpips, ...
res = invert_optimize(generator, images, steps=200, space="w")   # single-w reference
```

Photos larger than 64×64 must be square; the face is detected and aligned with face-api's
detector and landmarks (`framing="teacher"`) before inversion; no face → exit code 2. With several
faces the one with the highest detector score is used (`--face N` picks another; the JSON's `face`
says which and how many). A 64×64 image goes straight in, but only after the same face check
(`check_small_face`: not flat, not pixel noise, and a detector score of at least 0.05 over grey
canvases and the mirror image, which 198 of 200 held-out teacher faces reach). With `--models ffhq`
photos of any shape are accepted (see `docs/inversion_ffhq.md`).
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.with_suffix(".json").write_text(json.dumps({**result.to_json(), "targets": t}, indent=1) + "\n")
    return path


def read_table(path: str | Path = "docs/inversion.md") -> str | None:
    """The table written by :func:`write_markdown` (for embedding in other documents), or None."""
    p = Path(path)
    if not p.is_file():
        return None
    text = p.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        return None
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()

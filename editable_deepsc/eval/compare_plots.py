"""Plots of ``edsc eval`` (matplotlib, Agg backend): metric vs SNR, quality vs CBR, image grid."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from editable_deepsc.eval.compare_config import SEMANTIC, EvalConfig

PLOT_METRICS: tuple[tuple[str, str], ...] = (
    ("psnr", "PSNR to reference edit (dB)"), ("ssim", "SSIM to reference edit"),
    ("ms_ssim", "MS-SSIM to reference edit"), ("lpips", "LPIPS to reference edit"),
    ("fid", "FID received vs reference edits"), ("identity", "identity similarity to source"),
    ("success_rate", "edit success rate"),
)


def _label(name: str, rows: Sequence[dict], key: str) -> str:
    if name.startswith("LPIPS") and rows and rows[0].get("lpips_proxy"):
        return name.replace("LPIPS", "LPIPS (proxy)")
    if name.startswith("FID") and rows and rows[0].get("fid_proxy"):
        return name.replace("FID", "FID (proxy)")
    return name


def _curve_rows(rows: Sequence[dict], config: EvalConfig, default_k: int) -> list[dict]:
    return [r for r in rows if (r["method"] == SEMANTIC and r["k"] == default_k)
            or (r["method"] != SEMANTIC and abs(r["cbr_requested"] - config.curve_cbr) < 1e-12)]


def write_plots(out: Path, rows: Sequence[dict], records: Sequence[dict], config: EvalConfig,
                default_k: int) -> list[str]:
    """Write ``metrics_vs_snr.png``, ``quality_vs_cbr.png`` and ``grid.png`` into ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    paths: list[str] = []
    if not rows:
        return paths
    curve = _curve_rows(rows, config, default_k)
    metrics = [(k, n) for k, n in PLOT_METRICS if any(r.get(k) is not None for r in curve)]
    if metrics:
        cols = 4
        nrows = -(-len(metrics) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
        for ax, (key, name) in zip(axes.flat, metrics):
            for m in config.methods:
                pts = sorted((r["snr_db"], r[key]) for r in curve if r["method"] == m and r.get(key) is not None)
                if pts:
                    cbr = next(r["cbr"] for r in curve if r["method"] == m)
                    ax.plot(*zip(*pts), marker="o", label=f"{m} (CBR {cbr:.4f})")
            ax.set_xlabel("SNR (dB)")
            ax.set_title(_label(name, rows, key), fontsize=9)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(metrics):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(f"{config.channel.upper()}: metrics vs SNR", fontsize=10)
        fig.tight_layout()
        p = out / "metrics_vs_snr.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(str(p))
    at = [r for r in rows if abs(r["snr_db"] - config.headline_snr) < 1e-9]
    if at:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, key, name in ((axes[0], "lpips", "LPIPS to reference edit"), (axes[1], "ssim", "SSIM to reference edit")):
            for m in config.methods:
                pts = sorted((r["cbr"], r[key]) for r in at if r["method"] == m and r.get(key) is not None)
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=m)
            ax.set_xscale("log")
            ax.set_xlabel("CBR (complex channel uses / real source values)")
            ax.set_title(f"{_label(name, rows, key)} at {config.headline_snr:g} dB", fontsize=9)
            ax.grid(alpha=0.3, which="both")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        p = out / "quality_vs_cbr.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(str(p))
    g = write_grid(out, config, default_k)
    if g:
        paths.append(g)
    return paths


def write_grid(out: Path, config: EvalConfig, default_k: int) -> str | None:
    """Image grid: per saved sample, source | reference edit | each method's received edit at ``grid_snrs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    dirs = sorted((Path(out) / "images").glob("sample-*"), key=lambda d: int(d.name.split("-")[1]))
    if not dirs:
        return None
    snrs = [s for s in config.grid_snrs if s in config.snrs]
    cols: list[tuple[str, str]] = [("source", "source"), ("reference", "reference edit")]
    for m in config.methods:
        tail = f"k{default_k}" if m == SEMANTIC else f"cbr{config.curve_cbr:.6f}"
        for s in snrs:
            cols.append((f"{m}_{s:g}_{tail}", f"{m}\n{s:g} dB"))
    fig, axes = plt.subplots(len(dirs), len(cols), figsize=(1.3 * len(cols), 1.45 * len(dirs) + 0.4), squeeze=False)
    for i, d in enumerate(dirs):
        for j, (stem, title) in enumerate(cols):
            ax = axes[i, j]
            ax.axis("off")
            f = d / f"{stem}.png"
            if f.is_file():
                ax.imshow(np.asarray(Image.open(f).convert("RGB")))
            if i == 0:
                ax.set_title(title, fontsize=6)
    fig.tight_layout()
    p = Path(out) / "grid.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return str(p)


__all__ = ["write_grid", "write_plots"]

"""PSNR/SSIM of the built-in DeepJSCC models on held-out teacher faces (``edsc bench deepjscc``)."""

from __future__ import annotations

from typing import Sequence

import torch

from editable_deepsc.baselines.deepjscc import available_channels, cbr_of, load_model, model_name
from editable_deepsc.channel import make_channel
from editable_deepsc.errors import CheckpointError
from editable_deepsc.eval.compare_config import fraction_label
from editable_deepsc.generator.teacher import teacher_faces, test_seeds
from editable_deepsc.metrics.image import psnr, ssim
from editable_deepsc.rng import derive_seed, make_generator


@torch.no_grad()
def deepjscc_table(snrs: Sequence[float], n: int = 200, channel: str = "awgn", seed: int = 0,
                   channels: Sequence[int] | None = None, models: str | None = None) -> list[dict]:
    """Mean PSNR (dB) and SSIM of every built-in DeepJSCC at each SNR on ``n`` held-out faces.

    Returns
    -------
    list of dict
        ``{model, c, cbr, k, snr_db, channel, psnr, ssim, n}`` per (model, SNR).
    """
    cs = tuple(channels) if channels is not None else available_channels(models)
    if not cs:
        raise CheckpointError("no DeepJSCC model in the zoo (edsc train deepjscc --cbr 1/12)")
    faces = teacher_faces(test_seeds(n))
    rows = []
    for c in cs:
        net = load_model(model_name(c, models))
        for s in snrs:
            rng = make_generator(derive_seed(seed, "deepjscc-bench", c, s))
            rx = torch.cat([net(x, float(s), channel=make_channel(channel), rng=rng) for x in faces.split(50)])
            rows.append({"model": model_name(c, models), "c": c, "cbr": cbr_of(c), "k": int(c * 64 * 64 // 32),
                         "snr_db": float(s), "channel": channel, "psnr": float(psnr(rx, faces).mean()),
                         "ssim": float(ssim(rx, faces).mean()), "n": n})
    return rows


def table_markdown(rows: Sequence[dict]) -> str:
    """PSNR (SSIM) with one row per model and one column per SNR."""
    snrs = sorted({r["snr_db"] for r in rows})
    lines = ["| model | CBR | k | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
             "|---|---|---|" + "---|" * len(snrs)]
    for m in dict.fromkeys(r["model"] for r in rows):
        rs = {r["snr_db"]: r for r in rows if r["model"] == m}
        r0 = next(iter(rs.values()))
        lines.append(f"| {m} | {fraction_label(r0['cbr'])} | {r0['k']} | "
                     + " | ".join(f"{rs[s]['psnr']:.2f} ({rs[s]['ssim']:.3f})" for s in snrs) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["deepjscc_table", "table_markdown"]

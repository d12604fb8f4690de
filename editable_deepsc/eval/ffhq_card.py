"""The FFHQ section of ``docs/models.md``: parity with OpenVINO, exits, style mixing, speed, licence chain.

``edsc zoo card --section ffhq`` measures what is missing from ``docs/ffhq.json``
(parity on 8 z with and without truncation needs the ``openvino`` test
dependency), draws the figures into ``docs/img`` and rewrites only the part of
``docs/models.md`` between the FFHQ markers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

BEGIN, END = "<!-- ffhq:begin -->", "<!-- ffhq:end -->"


@torch.no_grad()
def measure_parity(n: int = 8, seed: int = 0, figure: Path | None = None) -> dict[str, Any]:
    """Max/mean |PyTorch - OpenVINO| on the [-1, 1] 1024 image for ``n`` z, truncation 1 and 0.7.

    The figure shows, for two faces: OpenVINO, the port, and |difference| x 1000.
    """
    import openvino as ov

    from editable_deepsc.generator.ffhq import convert_ir, wheel_ir_files

    _, f = wheel_ir_files()
    g = convert_ir(f["MappingNetwork.xml"], f["MappingNetwork.bin"], f["SynthesisNetwork.xml"], f["SynthesisNetwork.bin"])
    core = ov.Core()
    mapping = core.compile_model(core.read_model(str(f["MappingNetwork.xml"]), str(f["MappingNetwork.bin"])))
    synth = core.compile_model(core.read_model(str(f["SynthesisNetwork.xml"]), str(f["SynthesisNetwork.bin"])))
    z = torch.randn(n, g.z_dim, generator=torch.Generator().manual_seed(seed))
    out: dict[str, Any] = {"n": n, "seed": seed}
    panels = []
    for psi in (1.0, 0.7):
        diffs, means = [], []
        for i in range(n):
            w = mapping(z[i : i + 1].numpy())[0]
            w = g.w_avg.numpy() + psi * (w - g.w_avg.numpy())
            ref = synth(w)[0]
            img = g.synthesis(g.broadcast(g.truncate(g.mapping(z[i : i + 1]), psi))).numpy()
            d = np.abs(img - ref)
            diffs.append(float(d.max()))
            means.append(float(d.mean()))
            if psi == 0.7 and i < 2:
                panels.append((ref, img, d))
        out[f"psi_{psi}"] = {"max_abs": max(diffs), "mean_abs": float(np.mean(means))}
    if figure is not None:
        from PIL import Image

        def tile(a: np.ndarray, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
            t = torch.nn.functional.interpolate(torch.from_numpy(a), size=(256, 256), mode="area")[0]
            return ((t.clamp(-1, 1) * scale + offset).permute(1, 2, 0).numpy() * 127.5 + 127.5).clip(0, 255).astype(np.uint8)

        rows = [np.concatenate([tile(r), tile(p), tile(np.clip(d * 1000, 0, 2) - 1)], axis=1) for r, p, d in panels]
        figure.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(rows, axis=0)).save(figure)
    return out


def _fmt_exits(held: dict[str, Any]) -> list[str]:
    lines = ["| exit | PSNR dB (mean / min) | proxy LPIPS | descriptor distance (unrelated faces) | s / image | speed-up |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for size, r in sorted(held["exits"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"| {size}x{size} | {r['psnr_db']:.2f} / {r['psnr_min_db']:.2f} | {r['lpips']:.3f} | "
                     f"{r['id_distance']:.3f} ({r['id_distance_unrelated']:.3f}) | {r['seconds']:.3f} | "
                     f"{r['speedup']:.1f}x |")  # fmt: skip
    lines.append(f"| 1024x1024 (full) | - | - | - | {held['full_seconds']:.3f} | 1x |")
    return lines


def section(data: dict[str, Any]) -> str:
    """Markdown of the FFHQ section from the numbers in ``docs/ffhq.json``."""
    p = data.get("parity")
    lines = [BEGIN, "## FFHQ: `mobilestylegan-ffhq` (model set `ffhq`)", "",
             "MobileStyleGAN (Belousov 2021, arXiv 2104.04767) — StyleGAN2 config-f FFHQ 1024x1024 distilled into "
             "a wavelet-domain generator — ported to plain PyTorch (`editable_deepsc/generator/mobile_stylegan.py`). "
             "The weights are **not** in this repository: `edsc zoo convert ffhq` (run by `./run setup`) reads the "
             "OpenVINO IR inside the `random-face==2021.7.21.1` wheel with NumPy and writes safetensors + a card into "
             "`cache_dir()/zoo` (wheel version and sha256 of the four source files and of the converted file on the "
             "card). W+ = 23 x 512: one style per modulation (conv1; up/conv1/conv2 of 7 blocks; the image head); a "
             "broadcast w reproduces the original. Truncation centre `w_avg`: mean of 16,384 mapped z (seed 0); "
             "default truncation 0.7 (`edsc sample`).", ""]  # fmt: skip
    if p:
        lines += ["### Parity with the wheel's OpenVINO runtime", "",
                  f"`edsc zoo card --section ffhq` (8 z, seed {p['seed']}; image in [-1, 1] at 1024x1024):", "",
                  "| truncation | max abs difference | mean abs difference |", "|---|---:|---:|",
                  f"| 1 (none) | {p['psi_1.0']['max_abs']:.2e} | {p['psi_1.0']['mean_abs']:.2e} |",
                  f"| 0.7 | {p['psi_0.7']['max_abs']:.2e} | {p['psi_0.7']['mean_abs']:.2e} |", "",
                  "![parity](img/ffhq-parity.png)", "",
                  "Columns: OpenVINO, the PyTorch port, |difference| x 1000 (black = 0, white = 0.002 or more), as 256 px area-downsampled previews.",
                  "The slow test `tests/test_ffhq_generator.py::test_parity_with_openvino_on_the_wheel` requires "
                  "max |difference| <= 1e-3.", ""]  # fmt: skip
    if data.get("samples"):
        lines += ["### Samples", "", f"`{data['samples']['command']}` (shown at 1/4 size):", "",
                  "![ffhq samples](img/ffhq-samples.jpg)", ""]  # fmt: skip
    if data.get("exits"):
        e = data["exits"]
        lines += ["### Exits at 128 and 256 px (`edsc-ffhq-exits`, in the repository)", "",
                  "One modulated 1x1 convolution per exit on the 128x128 features of block 4 (256 channels) to the "
                  "12 Haar sub-band channels, inverse DWT; the 128 exit is its head's 256 image area-downsampled "
                  "(the Haar LL band / 2). `synthesis(w_plus, size=256)` runs blocks 0-4 only. The heads are the "
                  "ridge regression (closed form) of the area-downsampled full image's Haar bands on the features:", "",
                  f"`{e['train']['command']}` — {e['train']['n']} training latents (truncation in [0.5, 1], every "
                  f"second one style-mixed), {e['train'].get('rows', 'random')} feature pixels per latent in the "
                  f"normal equations, {e['train']['steps']} Adam fine-tuning steps, "
                  f"{e['train']['seconds'] / 60:.1f} min for the fit on the shared 2-core CPU"
                  + (f" ({e['train']['note']})." if e["train"].get("note") else "."), "",
                  f"Held-out (`{e.get('eval_command', '')}`): {e['held_out']['n']} latents (seeds "
                  f"{e['held_out']['seeds'][0]}...{e['held_out']['seeds'][1]}, same distribution), each exit vs the "
                  f"full 1024 image area-downsampled to its size; speed = median batch-1 seconds, "
                  f"{e['held_out']['threads']} thread(s), same run:", "", *_fmt_exits(e["held_out"]), "",
                  "LPIPS is the EfficientNet-Lite0 proxy (not comparable with published LPIPS). The descriptor "
                  "distance is face-api's recognition net on the central 70 % of both images; in brackets the "
                  "distance between different held-out faces at the same size.", ""]  # fmt: skip
        if e.get("verdict"):
            lines += [e["verdict"], ""]
    if data.get("layers"):
        from editable_deepsc.eval.ffhq_mixing import markdown

        lines += markdown(data["layers"])
    if data.get("bench"):
        lines += ["### Speed (`edsc bench generator`)", "", data["bench"]["note"], "", data["bench"]["table"], ""]
    lines += ["### Licence chain", "",
              "- The IR files are packaged in `random-face` 2021.7.21.1 under Apache-2.0 (Sergei Belousov).",
              "- Architecture and training: MobileStyleGAN (Belousov 2021, arXiv 2104.04767, repository "
              "bes-dev/MobileStyleGAN.pytorch); the port here is our own code, written from the IR graph and the paper.",
              "- MobileStyleGAN is distilled from NVIDIA's StyleGAN2 config-f FFHQ model (NVIDIA Source Code License-NC: "
              "non-commercial), trained on FFHQ (CC BY-NC-SA 4.0).",
              "- Hence the converted weights and the exits trained from them are for **research, non-commercial use**; "
              "nothing of the wheel is committed here.", "", END]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_section(models_md: Path, data: dict[str, Any]) -> Path:
    """Replace (or append) the FFHQ section of ``models_md``."""
    text = models_md.read_text() if models_md.is_file() else ""
    new = section(data)
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + new.rstrip("\n") + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    models_md.write_text(text)
    return models_md


def update(docs: Path = Path("docs"), measure: bool = True) -> Path:
    """Measure parity if ``docs/ffhq.json`` lacks it (and ``measure``), then rewrite the section."""
    jp = docs / "ffhq.json"
    data = json.loads(jp.read_text()) if jp.is_file() else {}
    if measure and "parity" not in data:
        data["parity"] = measure_parity(figure=docs / "img" / "ffhq-parity.png")
        jp.write_text(json.dumps(data, indent=1) + "\n")
    lp = docs / "ffhq_layers.json"  # style mixing (edsc zoo card --section ffhq-mixing)
    if lp.is_file():
        data = {**data, "layers": json.loads(lp.read_text())}
    return write_section(docs / "models.md", data)

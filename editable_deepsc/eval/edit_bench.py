"""Measuring the editor: support table, paper-vs-fast benchmark, JECC vs edit-then-transmit.

Faces are the held-out teacher test faces (:func:`~editable_deepsc.generator.teacher.test_seeds`),
taken into the generator's W+ as ``broadcast(mapping(z))`` — the latent the
generator was distilled to render as the teacher's face — so the numbers measure
the editor, not the inversion encoder.

A sample counts as a **success** when all its targets are met
(:mod:`editable_deepsc.editing.criteria`) *and* the face-api descriptor distance
between the edited and the original image is at most ``max_id_distance``
(default :data:`MAX_ID_DISTANCE`). Identity is also reported as the cosine
similarity of the descriptors. Timings cover the ``edit`` calls only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from editable_deepsc.editing.criteria import target_met
from editable_deepsc.editing.editor import Editor
from editable_deepsc.editing.measure import can_measure, measure_attributes
from editable_deepsc.editing.support import SupportTable, edit_key, phrase
from editable_deepsc.errors import UnsupportedInstruction
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import face_latents, test_seeds
from editable_deepsc.text.targets import EditTarget

MAX_ID_DISTANCE = 0.45
"""Largest face-api descriptor distance of an edit that counts as the same person. On 64x64
teacher faces: mirror image 0.29 on average (max 0.47), unrelated faces 0.53 (min 0.46);
face-api's own same-person threshold is 0.6."""


class IdentityJudge(Protocol):
    """Scores identity preservation: both methods map two image batches (N, 3, H, W) to (N,)."""

    def identity_similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...

    def identity_distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


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


def _identity(judge: IdentityJudge | None, a: torch.Tensor, b: torch.Tensor, batch: int = 64):
    """(similarity, distance), each (N,); NaN without a judge."""
    if judge is None:
        nan = torch.full((a.shape[0],), float("nan"))
        return nan, nan.clone()
    with torch.no_grad():
        sim = torch.cat([judge.identity_similarity(x, y).reshape(-1).cpu() for x, y in zip(a.split(batch), b.split(batch))])
        dist = torch.cat([judge.identity_distance(x, y).reshape(-1).cpu() for x, y in zip(a.split(batch), b.split(batch))])
    return sim, dist


def _success(met: torch.Tensor, dist: torch.Tensor, max_id_distance: float) -> torch.Tensor:
    return met & (dist <= max_id_distance) if not torch.isnan(dist).all() else met


def run_instruction(
    editor: Editor,
    w0: torch.Tensor,
    targets: Sequence[EditTarget],
    judge: IdentityJudge | None,
    max_id_distance: float = MAX_ID_DISTANCE,
    batch_size: int = 50,
    strength: float = 1.0,
) -> dict:
    """Edit every latent of ``w0`` with ``targets``; return success, met, identity, seconds per edit.

    Returns
    -------
    dict
        ``success`` (met and identity distance ≤ ``max_id_distance``), ``met``,
        ``identity`` (mean cosine similarity), ``id_distance`` (mean), ``already``
        (fraction met before editing), ``steps`` (mean), ``seconds_per_edit``
        (``edit`` calls only), ``claimed_met_agrees`` (share of samples whose
        ``EditResult.met`` matches the judged one), ``n``, plus per-sample tensors
        under ``samples``. ``met`` is judged by the editor's guidance on the output
        images (outside the timing), not taken from the editor: the instant preset's
        own ``met`` is a prediction.
    """
    met, claimed, sims, dists, steps, already = [], [], [], [], [], []
    seconds = 0.0
    attrs = tuple(dict.fromkeys(t.attribute for t in targets))
    measuring = can_measure(editor.guidance)
    for chunk in w0.split(batch_size):
        t0 = time.perf_counter()
        r = editor.edit(chunk, list(targets), strength=strength)
        seconds += time.perf_counter() - t0
        steps.append(r.steps)
        claimed.append(r.met)
        with torch.no_grad():
            ref = editor.generator.synthesis(chunk)
            if measuring:  # judged on the output images by the face nets, whatever the editor claims
                v0 = measure_attributes(editor.guidance, ref, attrs)
                v1 = measure_attributes(editor.guidance, r.images, attrs)
                met.append(torch.stack([target_met(t, v0[t.attribute], v1[t.attribute], strength)
                                        for t in targets], 1).all(1).cpu())  # fmt: skip
                already.append(torch.stack([target_met(t, v0[t.attribute], v0[t.attribute], strength)
                                            for t in targets], 1).all(1).cpu())  # fmt: skip
            else:
                met.append(r.met)
        sim, dist = _identity(judge, r.images, ref)
        sims.append(sim)
        dists.append(dist)
    met_t, sim_t, dist_t = torch.cat(met), torch.cat(sims), torch.cat(dists)
    claimed_t = torch.cat(claimed)
    succ = _success(met_t, dist_t, max_id_distance)
    return {
        "n": int(w0.shape[0]),
        "success": float(succ.float().mean()),
        "met": float(met_t.float().mean()),
        "identity": float(sim_t.mean()),
        "id_distance": float(dist_t.mean()),
        "already": float(torch.cat(already).float().mean()) if already else float("nan"),
        "steps": float(torch.cat(steps).float().mean()),
        "seconds_per_edit": seconds / w0.shape[0],
        "claimed_met_agrees": float((claimed_t == met_t).float().mean()),
        "samples": {"success": succ, "met": met_t, "identity": sim_t, "id_distance": dist_t},
    }


def measure_support(
    editor: Editor,
    generator_name: str,
    judge: IdentityJudge | None,
    n: int = 100,
    offset: int = 0,
    keys: Sequence[tuple[str, str]] = SUPPORT_KEYS,
    min_success: float = 0.6,
    max_id_distance: float = MAX_ID_DISTANCE,
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
        r = run_instruction(editor, w0, [EditTarget(a, d)], judge, max_id_distance, batch_size)
        r.pop("samples")
        r["supported"] = r["success"] >= min_success
        entries[f"{a}:{d}"] = r
    return SupportTable(
        generator=generator_name,
        min_success=min_success,
        max_id_distance=max_id_distance,
        entries=entries,
        meta={"n": n, "offset": offset, "preset": editor.config.preset, "config": editor.config.to_json(), **(meta or {})},
    )


def compare_presets(
    editors: dict[str, Editor],
    w0: torch.Tensor,
    instructions: Sequence[BenchInstruction],
    judge: IdentityJudge | None,
    max_id_distance: float = MAX_ID_DISTANCE,
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
            r = run_instruction(ed, w0, ins.targets, judge, max_id_distance, batch_size)
            r.pop("samples")
            row[name] = r
        if "refused" not in row:
            row["check_seconds"] = check_cost(next(iter(editors.values())), w0, ins.targets, batch_size)
        rows.append(row)
    return rows


@torch.no_grad()
def check_cost(editor: Editor, w0: torch.Tensor, targets: Sequence[EditTarget], batch_size: int = 50) -> float:
    """Seconds per face of the least work an edit checked by the guidance needs (no optimisation at all).

    The criteria compare the edit with the original, and identity compares their
    descriptors, so a preset that checks its result pays at least: synthesise the
    original and the edit, measure the named attributes of both, and the identity
    distance between them. Here the "edit" is the original latent itself (a copy,
    so nothing is served from the analysis cache). The best-case speed-up of any
    checked preset over a baseline is ``baseline seconds per edit / check_cost``.
    """
    attrs = tuple(dict.fromkeys(t.attribute for t in targets))
    ident = editor.identity_distance
    seconds = 0.0
    for chunk in w0.split(batch_size):
        t0 = time.perf_counter()
        ref = editor.generator.synthesis(chunk)
        measure_attributes(editor.guidance, ref, attrs)
        img = editor.generator.synthesis(chunk.clone())
        measure_attributes(editor.guidance, img, attrs)
        if ident is not None:
            ident(img, ref)
        seconds += time.perf_counter() - t0
    return seconds / w0.shape[0]


@torch.no_grad()
def _received(
    generator: StyleGenerator, codec: nn.Module, channel: nn.Module, snr_db: float, w: torch.Tensor, seed: int
) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return generator.synthesis(codec(w, channel, float(snr_db), rng=rng))


def compare_jecc(
    editor: Editor,
    codec: nn.Module,
    channel: nn.Module,
    snrs: Sequence[float],
    w0: torch.Tensor,
    instructions: Sequence[BenchInstruction],
    judge: IdentityJudge | None,
    max_id_distance: float = MAX_ID_DISTANCE,
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
            met, sims, dists, secs = [], [], [], 0.0
            for ci, chunk in enumerate(w0.split(batch_size)):
                through = (codec, channel, float(snr)) if mode == "jecc" else None
                rng = torch.Generator().manual_seed(seed * 7919 + ci)
                t0 = time.perf_counter()
                r = editor.edit(chunk, list(ins.targets), through_channel=through, rng=rng)
                secs += time.perf_counter() - t0
                rx = _received(editor.generator, codec, channel, snr, r.w_plus, seed=10_000 + seed * 31 + ci)
                with torch.no_grad():
                    ref = editor.generator.synthesis(chunk)
                    v0 = measure_attributes(editor.guidance, ref, attrs)
                    v1 = measure_attributes(editor.guidance, rx, attrs)
                m = torch.stack([target_met(t, v0[t.attribute], v1[t.attribute]) for t in ins.targets], 1).all(1)
                met.append(m.cpu())
                sim, dist = _identity(judge, rx, ref)
                sims.append(sim)
                dists.append(dist)
            met_t, sim_t, dist_t = torch.cat(met), torch.cat(sims), torch.cat(dists)
            row[mode] = {
                "success": float(_success(met_t, dist_t, max_id_distance).float().mean()),
                "met": float(met_t.float().mean()),
                "identity": float(sim_t.mean()),
                "id_distance": float(dist_t.mean()),
                "seconds_per_edit": secs / w0.shape[0],
            }
        rows.append(row)
    return rows


def presets_markdown(rows: list[dict], names: Sequence[str] = ("paper", "fast")) -> str:
    """Markdown table of :func:`compare_presets` rows: per preset success, identity and seconds per edit,
    the speed-up of every preset over the first one, and a mean row."""
    base, others = names[0], list(names[1:])
    head = "| instruction | " + " | ".join(
        f"{p} success | {p} id-sim | {p} id-dist | {p} s/edit" + ("" if p == base else f" | {p} speed-up")
        for p in names
    )
    ncol = 1 + 4 * len(names) + len(others)
    lines = [head + " |", "|" + "---|" * ncol]
    keys = ("success", "identity", "id_distance", "seconds_per_edit")
    acc: dict[str, list[float]] = {f"{p}.{k}": [] for p in names for k in keys}

    def speed(r: dict, p: str) -> float:
        return r[base]["seconds_per_edit"] / max(r[p]["seconds_per_edit"], 1e-9)

    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['instruction']} | " + " | ".join(["refused"] + [""] * (ncol - 2)) + " |")
            continue
        for p in names:
            for k in keys:
                acc[f"{p}.{k}"].append(r[p][k])
        cells = [_cells(r[base])] + [_cells(r[p]) + f" | {speed(r, p):.1f}x" for p in others]
        lines.append(f"| {r['instruction']} | " + " | ".join(cells) + " |")
    if acc[f"{base}.success"]:
        m = {p: {k: sum(acc[f"{p}.{k}"]) / len(acc[f"{p}.{k}"]) for k in keys} for p in names}
        cells = [_cells(m[base], bold=True)] + [_cells(m[p], bold=True) + f" | **{speed(m, p):.1f}x**" for p in others]
        lines.append(f"| **mean ({len(acc[f'{base}.success'])} instructions)** | " + " | ".join(cells) + " |")
    checks = [r["check_seconds"] for r in rows if "check_seconds" in r]
    if checks and acc[f"{base}.seconds_per_edit"]:
        c = sum(checks) / len(checks)
        b = sum(acc[f"{base}.seconds_per_edit"]) / len(acc[f"{base}.seconds_per_edit"])
        lines += ["", f"One check of an edit (synthesise original and edit, measure the named attributes of both, "
                      f"identity distance; `check_cost`) costs {c:.3f} s per face on average over these instructions: "
                      f"a preset that checks its result at least once is at most **{b / c:.1f}x** faster than "
                      f"{base} ({b:.3f} s per edit)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _cells(r: dict, bold: bool = False) -> str:
    s = f"{100 * r['success']:.1f}%"
    return " | ".join(
        [f"**{s}**" if bold else s, f"{r['identity']:.3f}", f"{r['id_distance']:.3f}", f"{r['seconds_per_edit']:.3f}"]
    )


def jecc_markdown(rows: list[dict]) -> str:
    """Markdown table of :func:`compare_jecc` rows (receiver side)."""
    head = (
        "| SNR (dB) | instruction | edit→transmit success | id-dist | JECC success | id-dist |\n"
        "|---|---|---|---|---|---|\n"
    )
    e, j = "edit_then_transmit", "jecc"
    lines = [
        f"| {r['snr_db']:g} | {r['instruction']} | {100 * r[e]['success']:.0f}% | {r[e]['id_distance']:.3f} "
        f"| {100 * r[j]['success']:.0f}% | {r[j]['id_distance']:.3f} |"
        for r in rows
    ]
    by_snr: dict[float, list[dict]] = {}
    for r in rows:
        by_snr.setdefault(r["snr_db"], []).append(r)
    for snr, rs in by_snr.items():
        k = len(rs)

        def mean(mode: str, key: str, rs=rs, k=k) -> float:
            return sum(r[mode][key] for r in rs) / k

        lines.append(
            f"| {snr:g} | **mean** | **{100 * mean(e, 'success'):.1f}%** | {mean(e, 'id_distance'):.3f} "
            f"| **{100 * mean(j, 'success'):.1f}%** | {mean(j, 'id_distance'):.3f} |"
        )
    return head + "\n".join(lines) + "\n"


def support_markdown(table: SupportTable) -> str:
    """Markdown table of a :class:`SupportTable`."""
    head = (
        "| edit | key | success | target met | id-sim | id-dist | already met | mean steps | s/edit | supported |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for k, e in table.entries.items():
        lines.append(
            f"| {phrase(k)} | `{k}` | {100 * e['success']:.0f}% | {100 * e['met']:.0f}% | {e['identity']:.3f} "
            f"| {e['id_distance']:.3f} | {100 * e['already']:.0f}% | {e['steps']:.2f} | {e['seconds_per_edit']:.3f} "
            f"| {'**yes**' if e['supported'] else 'no'} |"
        )
    return head + "\n".join(lines) + "\n"

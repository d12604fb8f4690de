"""Editing real photos on the ``ffhq`` set (``edsc bench edit --models ffhq --set celeba``).

The photos are those of the inversion bench (:func:`~editable_deepsc.eval.photo_bench.celeba_bench_indices`:
CelebA 000701-000800, then 000700 downwards; never 000801-000999), inverted once by the hybrid
inversion and cached. Every preset edits the same latents with the same instructions. Nothing the
editor optimised judges it:

* **met** — every target met on the image the *receiver* shows: the full 1024 px synthesis,
  area-downsampled to 256 and read by the face nets through the set's face view (the editor
  optimised the 256 px exit; a reading it pushed without changing the face does not carry over);
* **identity** — FaceRes (:mod:`~editable_deepsc.guidance.faces.second_descriptor`, which no loss
  of the project optimises) distance of that image to the **source photo**, kept below its
  same-person threshold; face-api's distance to the photo is reported beside it;
* **success** — met and identity kept;
* **outside-face change** — mean absolute pixel difference (0-255) between the edited and the
  original 256 px images outside the face ellipse
  (:data:`~editable_deepsc.inversion.ffhq_align.FACE_ELLIPSE`): hair, background, neck;
* **seconds per edit** — the ``edit`` calls only (after inversion), and the speed-up against the
  first preset.

With group-restricted directions, the fast preset is also run with the unrestricted (whole-W+)
directions they were cut from, on the age and gender instructions, to show what the restriction
buys (:meth:`~editable_deepsc.editing.directions.AttributeDirections.unrestricted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from editable_deepsc.editing.criteria import target_met
from editable_deepsc.editing.measure import measure_attributes
from editable_deepsc.eval.edit_bench import DEFAULT_INSTRUCTIONS, BenchInstruction
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.inversion.photo_target import PhotoTarget
from editable_deepsc.train.group_directions import outside_face_mask
from editable_deepsc.zoo.registry import load_state_dict, save_state_dict

JUDGE_SIZE = 256
"""Side at which the received image is judged (the full synthesis, area-downsampled)."""

WHOLE_KEYS: tuple[str, ...] = ("age:more", "age:less", "gender:more", "gender:less")
"""Instructions also run with the unrestricted directions (hair and background are what they drag)."""


@dataclass
class InvertedPhoto:
    """One bench photo: its name, aligned target and hybrid latent (1, num_ws, w_dim)."""

    name: str
    target: PhotoTarget
    w_plus: torch.Tensor


def inverted_photos(
    photos: Sequence[tuple[str, torch.Tensor]],
    generator: StyleGenerator,
    encoder: Any,
    cache: str | Path,
    method: str = "hybrid",
    progress: bool = True,
) -> list[InvertedPhoto]:
    """Align and invert each photo (cached per photo and method in ``cache``; a rerun reuses the latents).

    Photos without a face are skipped (the caller reports how many were used).
    """
    from editable_deepsc.errors import NoFaceFound
    from editable_deepsc.inversion.photo import invert_photo

    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for name, photo in tqdm(photos, desc=f"{method} inversion", disable=not progress):
        try:
            target = PhotoTarget.from_photo(photo, size=JUDGE_SIZE)
        except NoFaceFound:
            continue
        p = cache / f"{name}-{method}-{generator.name}.safetensors"
        if p.is_file():
            w = load_state_dict(p, verify=False)["w_plus"]
        else:
            w = invert_photo(target, method, generator=generator, encoder=encoder, second=None).w_plus.detach()
            save_state_dict({"w_plus": w}, p, metadata={"photo": name, "method": method})
        out.append(InvertedPhoto(name, target, w))
    return out


class ReceivedJudge:
    """Judges edits on the receiver's image against the source photos (see the module docstring).

    Parameters
    ----------
    generator : StyleGenerator
        The full generator (its ``synthesis`` renders 1024 px).
    guidance : FaceNetGuidance
        Reads the attributes (through the set's face view).
    photos : list of InvertedPhoto
    """

    def __init__(self, generator: StyleGenerator, guidance, photos: list[InvertedPhoto]) -> None:
        from editable_deepsc.inversion.photo_target import PhotoIdentity, SecondIdentity

        self.generator = getattr(generator, "base", generator)
        self.guidance = guidance
        targets = [p.target for p in photos]
        self.second = SecondIdentity(targets)
        self.first = PhotoIdentity(targets, analyzer=guidance.analyzer)
        self.outside = outside_face_mask(JUDGE_SIZE)
        self.originals = self.render(torch.cat([p.w_plus for p in photos]))

    @torch.no_grad()
    def render(self, w_plus: torch.Tensor, batch: int = 4) -> torch.Tensor:
        """The receiver's image, (N, 3, 256, 256): full synthesis area-downsampled."""
        parts = [F.interpolate(self.generator.synthesis(c), size=JUDGE_SIZE, mode="area") for c in w_plus.split(batch)]
        return torch.cat(parts).clamp(-1, 1)

    @torch.no_grad()
    def judge(self, targets: Sequence, images: torch.Tensor, strength: float = 1.0) -> dict[str, torch.Tensor]:
        """Per photo: ``met``, ``second`` / ``first`` distances to the source, ``kept``, ``success``, ``outside``."""
        attrs = tuple(dict.fromkeys(t.attribute for t in targets))
        v0 = measure_attributes(self.guidance, self.originals, attrs)
        v1 = measure_attributes(self.guidance, images, attrs)
        met = torch.stack([target_met(t, v0[t.attribute], v1[t.attribute], strength) for t in targets], 1).all(1)
        second = self.second.distance(images).cpu()
        first = self.first.distance(images).cpu()
        kept = second <= self.second.threshold
        outside = ((images - self.originals) * 127.5).abs()[:, :, self.outside].mean(dim=(1, 2))
        return {"met": met.cpu(), "second": second, "first": first, "kept": kept, "success": met.cpu() & kept,
                "outside": outside.cpu()}


def _row(res: dict[str, torch.Tensor], seconds: float, n: int) -> dict[str, float]:
    return {"success": float(res["success"].float().mean()), "met": float(res["met"].float().mean()),
            "kept": float(res["kept"].float().mean()), "second": float(res["second"].mean()),
            "first": float(res["first"].mean()), "outside": float(res["outside"].mean()),
            "seconds_per_edit": seconds / max(1, n), "n": int(n)}  # fmt: skip


def run_photo_edit_bench(
    editors: dict[str, Any],
    photos: list[InvertedPhoto],
    judge: ReceivedJudge,
    instructions: Sequence[BenchInstruction] = DEFAULT_INSTRUCTIONS,
    whole_editor: Any | None = None,
    batch_size: int = 10,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per instruction: per preset (and ``fast-whole`` where run) success, met, kept, distances,
    outside-face change and seconds per edit. Every editor keeps identity against the aligned source
    photos (``Editor.edit(identity_reference=...)``), not against the inversion."""
    w0 = torch.cat([p.w_plus for p in photos])
    crops = [p.target.crop if p.target is not None else None for p in photos]
    refs = torch.cat(crops) if all(c is not None for c in crops) else None
    rows = []
    names = list(editors)
    for ins in tqdm(instructions, desc="instructions", disable=not progress):
        row: dict[str, Any] = {"instruction": ins.text, "key": ins.key}
        runs = list(editors.items())
        if whole_editor is not None and ins.key in WHOLE_KEYS:
            runs.append(("fast-whole", whole_editor))
        for name, ed in runs:
            if ed.support is not None and not ed.support.is_supported_all(ins.targets):
                row[name] = {"refused": True}
                continue
            seconds, w_out = 0.0, []
            for k, c in enumerate(w0.split(batch_size)):
                ref = None if refs is None else refs[k * batch_size : k * batch_size + len(c)]
                t0 = time.perf_counter()
                r = ed.edit(c, list(ins.targets), identity_reference=ref)
                seconds += time.perf_counter() - t0
                w_out.append(r.w_plus.detach())
            images = judge.render(torch.cat(w_out))
            row[name] = _row(judge.judge(ins.targets, images), seconds, len(w0))
        base = row.get(names[0], {})
        for name in names[1:]:
            if "seconds_per_edit" in row.get(name, {}) and "seconds_per_edit" in base:
                row[name]["speedup"] = base["seconds_per_edit"] / max(row[name]["seconds_per_edit"], 1e-9)
        if log:
            log(f"{ins.text}: " + ", ".join(f"{k} {v['success']:.0%} ({v['seconds_per_edit']:.2f} s)"
                                            for k, v in row.items() if isinstance(v, dict) and "success" in v))
        rows.append(row)
    return rows


def inversion_identity(judge: ReceivedJudge) -> dict[str, float]:
    """How far the unedited inversions already are from their photos (the floor of every edit's identity)."""
    second = judge.second.distance(judge.originals).cpu()
    first = judge.first.distance(judge.originals).cpu()
    return {"second": float(second.mean()), "kept": float((second <= judge.second.threshold).float().mean()),
            "first": float(first.mean()), "second_threshold": float(judge.second.threshold)}  # fmt: skip


def markdown_table(rows: list[dict[str, Any]], presets: Sequence[str]) -> str:
    """Per instruction and preset: success / met / identity kept (FaceRes vs the photo) / outside change / s per edit."""
    cols = list(presets) + (["fast-whole"] if any("fast-whole" in r for r in rows) else [])
    head = "| instruction | " + " | ".join(f"{p}: success · met · kept · outside · s/edit" for p in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        cells = []
        for p in cols:
            v = r.get(p)
            if v is None:
                cells.append("–")
            elif v.get("refused"):
                cells.append("refused (unsupported)")
            else:
                sp = f" (×{v['speedup']:.1f})" if "speedup" in v else ""
                cells.append(f"{v['success']:.0%} · {v['met']:.0%} · {v['kept']:.0%} · {v['outside']:.1f} · "
                             f"{v['seconds_per_edit']:.2f}{sp}")
        lines.append(f"| {r['instruction']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def whole_comparison(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For the :data:`WHOLE_KEYS` rows: the fast preset's outside-face change with restricted vs whole-W+ directions."""
    out = []
    for r in rows:
        if "fast-whole" in r and "outside" in r.get("fast", {}):
            f, w = r["fast"], r["fast-whole"]
            out.append({"instruction": r["instruction"], "restricted": f["outside"], "whole": w["outside"],
                        "ratio": f["outside"] / max(w["outside"], 1e-9), "success_restricted": f["success"],
                        "success_whole": w["success"]})  # fmt: skip
    return out


def write_page(payload: dict[str, Any], path: str | Path) -> Path:
    """``docs/editing_ffhq.md`` from the bench's JSON (every number from ``payload``)."""
    meta, rows, names = payload["meta"], payload["rows"], payload["presets"]
    floor = meta["inversion_identity"]
    lines = [
        "# Editing real photos on the ffhq set", "",
        f"Generated by `{payload['command']}` ({meta['seconds']:.0f} s on {meta['threads']} thread(s), "
        "this machine's 2 CPU cores shared). Rerun it to regenerate this page.", "",
        f"- Photos: {meta['n']} CelebA photos ({', '.join(meta['photos'][:4])}{', ...' if meta['n'] > 4 else ''}), "
        f"{meta['inversion']}. CelebA 000801-000999 are held out and never used.",
        f"- Directions: `{meta['directions']}`." if meta.get("directions") else "- Directions: none registered.",
        "- **met**: every target met on the receiver's image (the 1024 px synthesis area-downsampled to 256, read by "
        "the face nets through the set's face view) — not on the 256 px exit the editor optimised.",
        f"- **kept**: FaceRes distance to the **source photo** ≤ {floor['second_threshold']:.3f} (its same-person "
        "threshold at 1 % false accepts on Olivetti); FaceRes is a descriptor no loss of the project optimises. "
        f"The unedited inversions already stand at {floor['second']:.3f} on average ({floor['kept']:.0%} kept; "
        f"face-api distance {floor['first']:.3f}).",
        "- Every editor keeps identity against the aligned **source photo** (its identity loss and stop, "
        "`Editor.edit(identity_reference=...)`, the stop bound relative to where the inversion already stands), "
        "not against the inversion.",
        "- **success** = met and kept. **outside**: mean absolute change (0-255) of the pixels outside the face "
        "ellipse (hair, background, neck). **s/edit**: the `edit` calls only, after inversion; ×: speed-up "
        f"against {names[0]}.",
        "- Presets: " + "; ".join(
            f"{p}: start `{c.get('init')}`, at most {c.get('steps') if c.get('stop_after') is None else c['stop_after']} "
            f"gradient steps" + ("" if c.get("stop_after") is None else f" (stopped early on its {c['steps']}-step "
                                 "schedule: a compute cap of this bench)")
            for p, c in payload.get("configs", {}).items()) + ".", "",
        markdown_table(rows, names),
    ]  # fmt: skip
    comp = whole_comparison(rows)
    if comp:
        lines += ["## Group-restricted vs whole-W+ directions (fast preset)", "",
                  "| instruction | outside change, restricted | whole W+ | ratio | success restricted / whole |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {c['instruction']} | {c['restricted']:.2f} | {c['whole']:.2f} | {c['ratio']:.2f} | "
                  f"{c['success_restricted']:.0%} / {c['success_whole']:.0%} |" for c in comp]
        lines.append("")
    table = payload.get("directions_table")
    if table:
        lines += ["## The directions", "",
                  f"Fitted by `{meta['directions']}`: per attribute the ridge fit on the scored samples (held-out R²) "
                  "and every style-group set tried on held-out latents moved by ±1 spread — causal slope per unit α, "
                  "outside-face change (0-255 per unit of attribute change) and face-descriptor change per unit of "
                  "attribute change; *chosen* is the set kept (the rule of `editable_deepsc/train/group_directions.py`), μ the "
                  "identity-aware bending when it helped.", "", table, ""]  # fmt: skip
    fig = payload.get("figure")
    if fig:
        rel = Path(fig["path"]).relative_to("docs") if Path(fig["path"]).parts[:1] == ("docs",) else Path(fig["path"])
        lines += ["## Before and after (fast preset)", "",
                  f"![edits]({rel})", "",
                  f"Rows: {', '.join(fig['photos'])}. Columns: the aligned photo, its hybrid inversion, then "
                  f"{', '.join(f'`{k}`' for k in fig['keys'])}. Every image was synthesised at 1024 px and is shown "
                  "downsampled; the full-size edits are written next to the bench's JSON.", ""]  # fmt: skip
    obs = payload.get("observations")
    if obs:
        lines += ["## Seen by eye", "", *[f"- {o}" for o in obs], ""]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


FIGURE_KEYS: tuple[str, ...] = ("happy:less", "age:more", "age:less", "gender:more", "yaw:more", "mouth_open:more")
"""The instructions of the before/after figure (columns after the photo and its inversion)."""


def edit_figure(
    editor: Any,
    photos: list[InvertedPhoto],
    instructions: Sequence[BenchInstruction],
    path: str | Path,
    full_dir: str | Path | None = None,
    tile: int = 160,
) -> Path:
    """Before/after grid: per photo (row) its aligned crop, the inversion and one edit per instruction.

    Every image is synthesised at the generator's full 1024 px and shown area-downsampled to
    ``tile``; with ``full_dir`` the 1024 px edits are written there too (``<photo>-<key>.png``).
    """
    from editable_deepsc.imaging.io import save_image

    g = getattr(editor.generator, "base", editor.generator)
    w0 = torch.cat([p.w_plus for p in photos])
    with torch.no_grad():
        cols = [torch.cat([F.interpolate(p.target.crop, size=tile, mode="area") for p in photos]),
                F.interpolate(g.synthesis(w0), size=tile, mode="area")]  # fmt: skip
    for ins in instructions:
        refs = torch.cat([p.target.crop for p in photos])
        w = editor.edit(w0, list(ins.targets), identity_reference=refs).w_plus.detach()  # the editor needs autograd
        with torch.no_grad():
            full = g.synthesis(w).clamp(-1, 1)
        if full_dir is not None:
            Path(full_dir).mkdir(parents=True, exist_ok=True)
            for p, img in zip(photos, full):
                save_image(img, Path(full_dir) / f"{p.name}-{ins.key.replace(':', '-')}.png")
        cols.append(F.interpolate(full, size=tile, mode="area"))
    grid = torch.cat([torch.cat(list(c), dim=-2) for c in cols], dim=-1)  # rows = photos, columns = stages
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid.clamp(-1, 1), path)
    return path


def support_table(rows: list[dict[str, Any]], generator: str, preset: str, threshold: float, min_success: float,
                  command: str):  # fmt: skip
    """The support table of ``generator`` from the bench rows of ``preset`` (single-target instructions only).

    An edit is supported when its success (met on the receiver's image, FaceRes distance to the
    source photo ≤ ``threshold``) reaches ``min_success``.
    """
    from editable_deepsc.editing.support import SupportTable

    entries = {}
    for r in rows:
        v = r.get(preset)
        if "+" in r["key"] or not v or v.get("refused"):
            continue
        entries[r["key"]] = {"success": v["success"], "met": v["met"], "kept": v["kept"],
                             "identity_distance": v["second"], "n": int(v.get("n", 0)),
                             "supported": v["success"] >= min_success}  # fmt: skip
    return SupportTable(generator, min_success, threshold, entries,
                        {"command": command, "preset": preset, "identity": "FaceRes cosine distance to the source photo",
                         "judged": "on the receiver's 1024 px image, area-downsampled to 256"})  # fmt: skip

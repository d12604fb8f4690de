"""Which W+ groups of the FFHQ generator carry pose, expression, colour, identity — measured.

``edsc zoo card --section ffhq-mixing`` draws the style-mixing figure
(``docs/img/ffhq-style-mixing.png``) and, over :data:`N_PAIRS` pairs of held-out seeds
(A = ``SEED0 + 2k``, B = ``SEED0 + 2k + 1``; not used by any training or other
evaluation), swaps one group (:mod:`editable_deepsc.generator.mixing`) at a time from B
into A. Every image is synthesised at the full 1024 px and area-downsampled to
:data:`FACE_SIZE` for the face nets (the exits are too coarse for this). Per quantity
``q`` the change of a swap is ``|q(mix) - q(A)|`` (a norm for vectors); its *fraction* is
the mean change over the pairs divided by the mean change when everything is swapped
(``q(B)`` vs ``q(A)``), with a 95 % bootstrap interval over the pairs. The result goes to
``docs/ffhq_layers.json`` (read by whoever restricts directions to layer groups) and to
the FFHQ section of ``docs/models.md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from editable_deepsc.generator.mixing import ALL, GROUPS, group_mask, style_groups, style_layout
from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN

COMMAND = "edsc zoo card --section ffhq-mixing"
SEED0 = 2_000_000
N_PAIRS = 24
TRUNCATION = 0.7
FACE_SIZE = 256
FIGURE_A, FIGURE_B, FIGURE_CELL = 3, 3, 128
FIGURE_SEED0 = SEED0 + 1000
CARRIER_FRACTION = 0.5
"""A group *carries* a category when its mean fraction over the category's quantities is at least this."""
CARRIER_RULE = (f"a group carries a category when its mean fraction over the category's quantities is >= "
                f"{CARRIER_FRACTION:.2f} (it alone moves them at least that share of a full swap)")
BOOTSTRAP = 2000

#: quantity -> (label, unit, category)
QUANTITIES: dict[str, tuple[str, str, str]] = {
    "yaw": ("yaw", "deg", "pose"),
    "pitch": ("pitch", "deg", "pose"),
    "happy": ("P(happy)", "prob.", "expression"),
    "mouth_open": ("mouth openness", "ratio", "expression"),
    "age": ("age", "years", "age/gender"),
    "male": ("P(male)", "prob.", "age/gender"),
    "descriptor": ("descriptor distance to A", "L2", "identity"),
    "rgb_image": ("mean RGB, whole image", "0-255, L2", "colour"),
    "rgb_background": ("mean RGB, background (outer 1/8 border)", "0-255, L2", "colour"),
    "rgb_face": ("mean RGB, face (eye-corners to mouth box)", "0-255, L2", "colour"),
}
CATEGORIES = ("pose", "expression", "age/gender", "identity", "colour")


def seed_w_plus(g: MobileStyleGAN, seeds: list[int], truncation: float = TRUNCATION) -> torch.Tensor:
    """(len(seeds), num_ws, w_dim): ``broadcast(truncate(mapping(z)))``, ``z ~ N(0, I)`` from each seed."""
    z = torch.stack([torch.randn(g.z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])
    return g.broadcast(g.truncate(g.mapping(z), truncation))


@torch.no_grad()
def render(g: MobileStyleGAN, w_plus: torch.Tensor, size: int, batch: int = 4) -> torch.Tensor:
    """Full-resolution synthesis, clamped to [-1, 1], area-downsampled to ``size``: (N, 3, size, size)."""
    out = []
    for c in w_plus.split(batch):
        img = g.synthesis(c).clamp(-1, 1)
        out.append(img if img.shape[-1] == size else F.interpolate(img, size=(size, size), mode="area"))
    return torch.cat(out)


@torch.no_grad()
def face_quantities(images: torch.Tensor, analyzer=None) -> dict[str, torch.Tensor]:
    """The measured quantities of (N, 3, S, S) images in [-1, 1].

    Returns
    -------
    dict of str to torch.Tensor
        ``yaw``, ``pitch`` (deg), ``happy`` (P), ``mouth_open``, ``age`` (years), ``male`` (P): (N,);
        ``descriptor`` (N, 128) on the descriptor chip; ``rgb_image``, ``rgb_background``,
        ``rgb_face`` (N, 3) mean colour in 0-255.
    """
    from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
    from editable_deepsc.guidance.faces.descriptor_chip import descriptor_chips

    face = analyzer if analyzer is not None else FaceAnalyzer()
    an = face(images, heads=("landmarks", "expression", "age_gender"))
    lm = an.require("landmarks")
    rgb = (images + 1) * 127.5
    s = images.shape[-1]
    b = max(1, s // 8)
    border = torch.ones(s, s, dtype=torch.bool)
    border[b:-b, b:-b] = False
    boxes = []
    for k in range(len(images)):
        x0, x1 = sorted((float(lm[k, 36, 0]), float(lm[k, 45, 0])))
        y0 = float(lm[k, 36:48, 1].mean())
        y1 = float(lm[k, [48, 54], 1].mean())
        xa, xb = max(0, int(round(x0))), min(s, int(round(x1)) + 1)
        ya, yb = max(0, int(round(y0))), min(s, int(round(max(y1, y0 + 1))) + 1)
        boxes.append(rgb[k, :, ya:yb, xa:xb].mean(dim=(1, 2)))
    return {
        "yaw": an.geometry("yaw"), "pitch": an.geometry("pitch"), "happy": an.expression("happy"),
        "mouth_open": an.geometry("mouth_open"), "age": an.require("age"), "male": an.p_male,
        "descriptor": face.embedding(descriptor_chips(images, lm)),
        "rgb_image": rgb.mean(dim=(2, 3)), "rgb_background": rgb[:, :, border].mean(dim=2),
        "rgb_face": torch.stack(boxes),
    }  # fmt: skip


def change(q: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    """Per-sample change ``|q - ref|`` ((N,) inputs) or ``||q - ref||`` ((N, D) inputs) as float64 (N,)."""
    d = (q - ref).double()
    return (d.abs() if d.dim() == 1 else d.norm(dim=1)).numpy()


def fractions(changes: dict[str, np.ndarray], n_boot: int = BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """Mean change per group and its fraction of the all-swap change, with 95 % bootstrap intervals.

    Parameters
    ----------
    changes : dict of str to np.ndarray
        ``{group: (P,) changes over P pairs}``, including :data:`ALL`.

    Returns
    -------
    dict
        ``{"mean_change": {group: float}, "fraction": {group: float}, "fraction_ci95": {group: [lo, hi]},
        "fraction_sum": float}`` (fractions for the groups other than ``all``; ratio of the means).
    """
    groups = [k for k in changes if k != ALL]
    total = changes[ALL]
    p = len(total)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, p, size=(n_boot, p))
    den = total.mean()
    out: dict[str, Any] = {"mean_change": {k: float(v.mean()) for k, v in changes.items()}, "fraction": {},
                           "fraction_ci95": {}}  # fmt: skip
    for k in groups:
        out["fraction"][k] = float(changes[k].mean() / den) if den > 0 else float("nan")
        boot = changes[k][idx].mean(1) / np.maximum(total[idx].mean(1), 1e-12)
        out["fraction_ci95"][k] = [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]
    out["fraction_sum"] = float(sum(out["fraction"][k] for k in groups))
    return out


def carriers(per_quantity: dict[str, dict[str, Any]], threshold: float = CARRIER_FRACTION) -> dict[str, dict[str, Any]]:
    """Per category (:data:`CATEGORIES`): the mean fraction of each group over its quantities and the
    groups at or above ``threshold`` (``"groups"``, strongest first)."""
    out: dict[str, dict[str, Any]] = {}
    for cat in CATEGORIES:
        names = [q for q, (_, _, c) in QUANTITIES.items() if c == cat and q in per_quantity]
        if not names:
            continue
        mean = {grp: float(np.mean([per_quantity[q]["fraction"][grp] for q in names])) for grp in GROUPS}
        ranked = sorted(GROUPS, key=lambda grp: -mean[grp])
        out[cat] = {"quantities": names, "mean_fraction": mean, "groups": [grp for grp in ranked if mean[grp] >= threshold]}
    return out


def verdict(carry: dict[str, dict[str, Any]]) -> str:
    """One sentence per category, from :func:`carriers`."""
    parts = []
    for cat, c in carry.items():
        fr = ", ".join(f"{grp} {c['mean_fraction'][grp]:.2f}" for grp in sorted(GROUPS, key=lambda x: -c["mean_fraction"][x]))
        who = " + ".join(c["groups"]) if c["groups"] else "no single group"
        parts.append(f"**{cat}**: {who} ({fr})")
    return "; ".join(parts) + "."


@torch.no_grad()
def measure_layers(g: MobileStyleGAN, n_pairs: int = N_PAIRS, seed0: int = SEED0, truncation: float = TRUNCATION,
                   batch: int = 4, log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Swap each group from B into A over ``n_pairs`` seed pairs and measure the face-net changes.

    Returns
    -------
    dict
        What ``docs/ffhq_layers.json`` holds: the layout, the groups, the seeds, per quantity
        :func:`fractions`, per category :func:`carriers`, and the verdict.
    """
    from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer

    seeds_a = [seed0 + 2 * k for k in range(n_pairs)]
    seeds_b = [seed0 + 2 * k + 1 for k in range(n_pairs)]
    w_a, w_b = seed_w_plus(g, seeds_a, truncation), seed_w_plus(g, seeds_b, truncation)
    face = FaceAnalyzer()
    t0 = time.time()
    variants = {"A": w_a, ALL: w_b}
    for grp in GROUPS:
        variants[grp] = torch.where(group_mask(g.config, grp)[:, None], w_b, w_a)
    q: dict[str, dict[str, torch.Tensor]] = {}
    for name, wp in variants.items():
        images = render(g, wp, FACE_SIZE, batch=batch)
        q[name] = face_quantities(images, face)
        log(f"{name}: {len(images)} images, {time.time() - t0:.0f} s")
    per_quantity: dict[str, dict[str, Any]] = {}
    for qn, (label, unit, cat) in QUANTITIES.items():
        ch = {grp: change(q[grp][qn], q["A"][qn]) for grp in (*GROUPS, ALL)}
        per_quantity[qn] = {"label": label, "unit": unit, "category": cat, **fractions(ch)}
    carry = carriers(per_quantity)
    return {
        "command": COMMAND, "generator": g.name, "num_ws": g.num_ws,
        "groups": {k: list(v) for k, v in style_groups(g.config).items()},
        "group_rule": "coarse = blocks at 4-8 px, middle = 16-32 px, fine = 64 px and up (StyleGAN's split)",
        "layout": [s.to_json() for s in style_layout(g.config)],
        "pairs": n_pairs, "truncation": truncation, "seeds_a": seeds_a, "seeds_b": seeds_b,
        "face_input": f"full {g.resolution} px synthesis, area-downsampled to {FACE_SIZE}",
        "fraction_rule": "mean over pairs of |q(A with B's group) - q(A)| / mean over pairs of |q(B) - q(A)|; "
                         f"95 % bootstrap over pairs ({BOOTSTRAP} resamples)",
        "carrier_rule": CARRIER_RULE,
        "quantities": per_quantity, "carriers": carry, "verdict": verdict(carry),
        "seconds": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
    }  # fmt: skip


@torch.no_grad()
def mixing_figure(g: MobileStyleGAN, seeds_a: list[int], seeds_b: list[int], cell: int = FIGURE_CELL,
                  truncation: float = TRUNCATION, gap: int = 6, batch: int = 4) -> np.ndarray:  # fmt: skip
    """The style-mixing grid as (H, W, 3) uint8.

    Layout: the top-left corner is white; the first row shows the B faces, each above a block of
    three cells; the first column shows the A faces; the cell block of (A_i, B_j) holds A_i with
    B_j's coarse, middle and fine styles, left to right. Blocks are separated by ``gap`` white pixels.
    """
    w_a, w_b = seed_w_plus(g, seeds_a, truncation), seed_w_plus(g, seeds_b, truncation)
    img_a, img_b = render(g, w_a, cell, batch), render(g, w_b, cell, batch)
    na, nb = len(seeds_a), len(seeds_b)
    mixed = []
    for grp in GROUPS:
        m = group_mask(g.config, grp)[:, None]
        wp = torch.where(m, w_b[None, :], w_a[:, None]).reshape(na * nb, g.num_ws, g.w_dim)
        mixed.append(render(g, wp, cell, batch).reshape(na, nb, 3, cell, cell))

    def u8(x: torch.Tensor) -> np.ndarray:
        return ((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)

    block = len(GROUPS) * cell + gap
    h, w = (na + 1) * (cell + gap) - gap, cell + gap + nb * block - gap
    canvas = np.full((h, w, 3), 255, np.uint8)
    for j in range(nb):
        x = cell + gap + j * block + cell  # B above the middle cell of its block
        canvas[:cell, x : x + cell] = u8(img_b[j])
    for i in range(na):
        y = (i + 1) * (cell + gap)
        canvas[y : y + cell, :cell] = u8(img_a[i])
        for j in range(nb):
            for k in range(len(GROUPS)):
                x = cell + gap + j * block + k * cell
                canvas[y : y + cell, x : x + cell] = u8(mixed[k][i, j])
    return canvas


def save_figure(canvas: np.ndarray, path: Path, cell: int = FIGURE_CELL) -> Path:
    """Write the :func:`mixing_figure` canvas as a 256-colour PNG with a legend in its empty corner."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=max(8, cell // 9))
    legend = "rows: A\ntop: B\neach block: A\nwith B's coarse,\nmiddle, fine"
    draw.multiline_text((4, 4), legend, fill=(0, 0, 0), font=font, spacing=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    return path


def markdown(layers: dict[str, Any]) -> list[str]:
    """Lines of the FFHQ section's style-mixing subsection, from ``docs/ffhq_layers.json``."""
    groups = layers["groups"]
    rng = {k: (f"{v[0]}-{v[-1]}" if len(v) > 1 else str(v[0])) if v else "-" for k, v in groups.items()}
    res: dict[str, list[int]] = {}
    for s in layers["layout"]:
        res.setdefault(s["group"], []).append(s["resolution"])
    lines = ["### W+ style mixing: coarse / middle / fine", "",
             "Each of the 23 styles sits at the resolution of the block its modulation belongs to "
             "(`editable_deepsc/generator/mixing.py`): index 0 `conv1` (4 px); 1+3i, 2+3i, 3+3i = "
             "`layers.i` up / conv1 / conv2 (8·2^i px, i = 0..6; the `up` modulation scales the features "
             "entering the block but only shapes that block's output); 22 `to_img` (the 1024 image). Groups as in "
             "StyleGAN: " + ", ".join(f"**{k}** = styles {rng[k]} ({min(res[k])}-{max(res[k])} px)" for k in GROUPS if k in res)
             + ".", "",
             "![ffhq style mixing](img/ffhq-style-mixing.png)", "",
             f"`{layers['command']}`: first column faces A, first row faces B (seeds "
             f"{layers['figure']['seeds_a'][0]}..{layers['figure']['seeds_a'][-1]} and "
             f"{layers['figure']['seeds_b'][0]}..{layers['figure']['seeds_b'][-1]}, truncation {layers['truncation']}); "
             "under each B a block of three cells: A with B's coarse, middle, fine styles (left to right). "
             f"Synthesised at 1024, shown at {layers['figure']['cell']} px (area-downsampled; 256-colour PNG).", "",
             "#### Which group carries what", "",
             f"Same command: {layers['pairs']} pairs of held-out seeds (A = {layers['seeds_a'][0]}, "
             f"{layers['seeds_a'][1]}, ..., {layers['seeds_a'][-1]}; B = A + 1), truncation {layers['truncation']}; "
             f"{layers['face_input']} for the face-api nets (yaw/pitch/mouth openness from the 68 landmarks, "
             "P(happy) from the expression net, age and P(male) from the age/gender net, the descriptor on the "
             "descriptor chip). Change of a swap = |q(A with B's group) − q(A)| (L2 for descriptor and colour); "
             "fraction = mean change over the pairs / mean change when all styles are swapped (= B vs A), "
             "95 % bootstrap interval over the pairs in brackets; 'sum' near 1 means the groups' effects add up.", "",
             "| quantity | unit | all swapped (B vs A) | coarse | middle | fine | sum |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for qn, r in layers["quantities"].items():
        cells = [f"{r['fraction'][grp]:.2f} [{r['fraction_ci95'][grp][0]:.2f}, {r['fraction_ci95'][grp][1]:.2f}]" for grp in GROUPS]
        lines.append(f"| {r['label']} | {r['unit']} | {r['mean_change'][ALL]:.3g} | {' | '.join(cells)} | {r['fraction_sum']:.2f} |")
    sums = [r["fraction_sum"] for r in layers["quantities"].values()]
    lines += ["", f"The sums run from {min(sums):.2f} to {max(sums):.2f}: the groups' effects are not additive "
              "(swapping one group already moves a face-net reading part of the way of the full swap, and the parts "
              "overlap), so read the fractions as 'how much of the full change this group alone produces'."]
    lines += ["", f"**Verdict** (mean fraction over each category's quantities; a group carries a category at "
              f">= {CARRIER_FRACTION:.2f}): {layers['verdict']} Per-group numbers and the index → block map: "
              "`docs/ffhq_layers.json` (for restricting edit directions to groups).", ""]  # fmt: skip
    return lines


def update(docs: Path = Path("docs"), use_cache: bool = True, log: Callable[[str], None] = print) -> Path:
    """Measure (unless ``docs/ffhq_layers.json`` has it and ``use_cache``), draw the figure, rewrite the FFHQ section."""
    from editable_deepsc.eval.ffhq_card import update as update_section
    from editable_deepsc.generator.loading import load_generator

    jp = docs / "ffhq_layers.json"
    fig = docs / "img" / "ffhq-style-mixing.png"
    layers = json.loads(jp.read_text()) if jp.is_file() else None
    if layers is None or not use_cache or not fig.is_file():
        from editable_deepsc.generator.ffhq import GENERATOR_NAME

        g = load_generator(GENERATOR_NAME).eval()
        seeds_a = [FIGURE_SEED0 + k for k in range(FIGURE_A)]
        seeds_b = [FIGURE_SEED0 + FIGURE_A + k for k in range(FIGURE_B)]
        t0 = time.time()
        save_figure(mixing_figure(g, seeds_a, seeds_b), fig)
        log(f"figure {fig} in {time.time() - t0:.0f} s")
        if layers is None or not use_cache:
            layers = measure_layers(g, log=log)
        layers["figure"] = {"path": "docs/img/ffhq-style-mixing.png", "seeds_a": seeds_a, "seeds_b": seeds_b,
                            "cell": FIGURE_CELL}  # fmt: skip
    # the carrier rule and verdict are recomputed from the stored per-quantity numbers (cheap, always current)
    layers["carriers"] = carriers(layers["quantities"])
    layers["verdict"] = verdict(layers["carriers"])
    layers["carrier_rule"] = CARRIER_RULE
    jp.write_text(json.dumps(layers, indent=1) + "\n")
    return update_section(docs, measure=False)

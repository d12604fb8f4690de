"""Calibrating the instant preset against a fitted critic (phase 3 of ``edsc train critic``).

Each (margin, identity weight) pair of :data:`CALIBRATION_GRID` edits held-out
faces with every supported default instruction of the editing benchmark, judged
by the face nets; the preset in :mod:`editable_deepsc.editing.config` uses the best pair.
"""

from __future__ import annotations

import torch

from editable_deepsc.editing.config import edit_config
from editable_deepsc.editing.critic import LatentCritic
from editable_deepsc.editing.editor import Editor
from editable_deepsc.eval.edit_bench import DEFAULT_INSTRUCTIONS, run_instruction


CALIBRATION_GRID: tuple[tuple[float, float], ...] = (
    (1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (2.0, 3.0), (3.0, 3.0), (4.0, 3.0),
)
"""(critic_margin, critic_id_weight) pairs tried by :func:`calibrate`."""


def calibrate(
    critic: LatentCritic, generator, guidance, directions, support, w0: torch.Tensor,
    grid: tuple[tuple[float, float], ...] = CALIBRATION_GRID, progress: bool = True,
) -> list[dict]:  # fmt: skip
    """Success of the instant preset for each (margin, identity weight) of ``grid`` on faces ``w0``.

    Every supported instruction of :data:`~editable_deepsc.eval.edit_bench.DEFAULT_INSTRUCTIONS`
    edits every face; success is judged as in ``edsc bench edit`` (face nets on the output).

    Returns
    -------
    list of dict
        ``margin``, ``id_weight``, ``success``, ``met``, ``id_distance`` (means over instructions).
    """
    from tqdm import tqdm

    ins = [i for i in DEFAULT_INSTRUCTIONS if support is None or support.is_supported_all(i.targets)]
    rows = []
    for margin, idw in tqdm(grid, desc="calibrate instant preset", disable=not progress):
        cfg = edit_config("instant", critic_margin=margin, critic_id_weight=idw)
        ed = Editor(generator, guidance, config=cfg, directions=directions, critic=critic)
        rs = [run_instruction(ed, w0, i.targets, guidance) for i in ins]
        rows.append({"margin": margin, "id_weight": idw,
                     **{k: sum(r[k] for r in rs) / len(rs) for k in ("success", "met", "id_distance")}})  # fmt: skip
    return rows


def calibration_markdown(rows: list[dict]) -> str:
    """Markdown table of :func:`calibrate` rows, best success in bold."""
    best = max(r["success"] for r in rows)
    lines = ["| margin (residual stds) | identity weight | success | target met | id-dist |", "|---|---|---|---|---|"]
    for r in rows:
        s = f"{100 * r['success']:.1f}%"
        lines.append(f"| {r['margin']:g} | {r['id_weight']:g} | {'**' + s + '**' if r['success'] == best else s} "
                     f"| {100 * r['met']:.1f}% | {r['id_distance']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"

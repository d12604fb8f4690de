"""The refinement loop every preset shares: Adam on the W+ latent through the generator.

From a start latent (:mod:`editable_deepsc.editing.starts`), per sample,

.. math::

    \\sum_t L_{guid}(G(w), t, G(w_0)) + \\lambda_{L2}\\lVert w - w_0\\rVert^2
    + \\lambda_{ID}\\,L_{ID}(G(w), G(w_0))
    + \\lambda_{keep}\\sum_{a \\notin t} \\Big(\\frac{v_a(G(w)) - v_a(G(w_0))}{s_a}\\Big)^2

is minimised with the config's learning-rate schedule, each sample stopping as
soon as all its targets are met (and its identity kept). With a channel
(joint editing-channel coding) ``G(w)`` is the received image, averaged over
``channel_draws`` realisations. Gradients are masked to the editable layers and
projected on the subspace when the problem has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from editable_deepsc.editing.criteria import SCALE
from editable_deepsc.editing.problem import EditProblem
from editable_deepsc.editing.starts.base import Start
from editable_deepsc.editing.subspace import project
from editable_deepsc.text.targets import EditTarget


@dataclass
class Refined:
    """What :func:`refine` returns.

    Attributes
    ----------
    w : Tensor, float32, (N, num_ws, w_dim)
        Each sample's latent when it stopped (or after the last step).
    met : Tensor, bool, (N, T)
        Per-target met flags at the last check of each sample.
    steps : Tensor, int64, (N,)
        Steps each sample took.
    checked : bool
        Whether ``met`` comes from stop checks (False: no early stop was possible).
    trajectory : list of (int, Tensor)
    loss_history : list of float
    """

    w: torch.Tensor
    met: torch.Tensor
    steps: torch.Tensor
    checked: bool
    trajectory: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    loss_history: list[float] = field(default_factory=list)


def edit_loss(
    p: EditProblem,
    w_a: torch.Tensor,
    images: torch.Tensor,
    ref_a: torch.Tensor,
    vals: dict[str, torch.Tensor],
    idx: torch.Tensor,
    id_loss: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample loss (M,) of the rows ``idx`` (latents ``w_a``, their ``images`` and references ``ref_a``,
    attribute values ``vals``; ``id_loss``: the identity loss already computed, (M,))."""
    cfg = p.config
    total = torch.zeros(w_a.shape[0], device=w_a.device)
    for t in p.targets:
        s = min(4.0, t.strength * p.strength)
        t_eff = EditTarget(t.attribute, t.direction, s, t.amount)
        total = total + p.per_sample(p.guidance.loss(images, t_eff, ref_a).reshape(-1))
    if cfg.lambda_l2 > 0:
        total = total + cfg.lambda_l2 * (w_a - p.w0[idx]).pow(2).sum((1, 2))
    if cfg.lambda_id > 0 and p.identity is not None:
        if id_loss is None:
            id_loss = p.identity_loss(images, ref_a)
        total = total + cfg.lambda_id * id_loss
    if cfg.lambda_keep > 0 and p.keep:
        k = sum(((vals[a] - p.values0[a][idx]) / SCALE.get(a, 1.0)).pow(2) for a in p.keep)
        total = total + cfg.lambda_keep * k
    return total


def refine(p: EditProblem, start: Start, record_every: int = 0, progress: bool = False) -> Refined:
    """Run the loop of the module docstring from ``start`` (samples ``start.finished`` take no step).

    Parameters
    ----------
    p : EditProblem
    start : Start
    record_every : int
        Keep a ``w`` snapshot every this many steps (0: none).
    progress : bool
        Show a progress bar over steps.
    """
    cfg, w0 = p.config, p.w0
    n, dev = w0.shape[0], w0.device
    reference, _ = p.observe()
    w = start.w.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr_at(0), betas=(0.9, 0.999))
    w_out = start.w.clone()
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    met_t = torch.zeros(n, len(p.targets), dtype=torch.bool, device=dev)
    total = cfg.steps if cfg.stop_after is None else min(cfg.steps, cfg.stop_after)
    steps_taken = torch.full((n,), total, dtype=torch.long)
    if start.met is not None and cfg.early_stop:  # samples the start already finished take no step
        met_t[:] = start.met.to(dev)
        done[:] = start.finished.to(dev)
        steps_taken[done.cpu()] = 0
    trajectory: list[tuple[int, torch.Tensor]] = []
    loss_history: list[float] = []
    can_stop = cfg.early_stop and (p.measuring or cfg.score_threshold is not None)
    attrs = p.report

    ref_idx: torch.Tensor | None = None
    ref_a = id_ref_a = reference
    it = range(total + 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"edit ({cfg.preset})", leave=False)
    for step in it:
        if record_every and step % record_every == 0:
            trajectory.append((step, w.detach().clone().cpu()))
        idx = (~done).nonzero().flatten()
        if idx.numel() == 0:
            break
        last = step == total
        check = can_stop and (step % cfg.check_every == 0 or last)
        with torch.set_grad_enabled(not last):
            w_a = w[idx]
            images = p.render(w_a)
            if ref_idx is None or not torch.equal(ref_idx, idx):  # same tensor while the batch is unchanged
                ref_idx = idx
                ref_a = reference[idx].repeat_interleave(p.draws, 0) if p.draws > 1 else reference[idx]
                id_ref_a = ref_a if p.identity_reference is None else p.identity_ref(idx)
            vals, met_now = p.values_and_met(images, attrs, ref_a, idx) if (check or p.keep) else ({}, None)
            id_loss = (
                p.identity_loss(images, id_ref_a)
                if p.identity is not None and (cfg.lambda_id > 0 or (check and cfg.max_id_loss is not None))
                else None
            )
        if met_now is not None and check:
            met_t[idx] = met_now
            finished = met_now.all(1)
            if p.identity_bounded:
                finished = finished & p.identity_kept(images, id_ref_a, id_loss, idx).to(finished.device)
            if finished.any():
                fin = idx[finished]
                w_out[fin] = w.detach()[fin]
                done[fin] = True
                steps_taken[fin.cpu()] = step
        if last:
            rest = (~done).nonzero().flatten()
            w_out[rest] = w.detach()[rest]
            break
        keep_rows = ~done[idx]  # rows of this forward still being optimised
        if not keep_rows.any():
            continue
        loss = edit_loss(p, w_a, images, ref_a, vals, idx, id_loss)
        for g_ in opt.param_groups:
            g_["lr"] = cfg.lr_at(step)
        opt.zero_grad(set_to_none=True)
        (loss * keep_rows.float()).sum().backward(inputs=[w])
        loss_history.append(float(loss.detach()[keep_rows].mean()))
        if p.mask is not None and w.grad is not None:
            w.grad.mul_(p.mask)
        if p.subspace is not None and w.grad is not None:
            w.grad.copy_(project(w.grad, p.subspace))
        opt.step()
        if p.subspace is not None:  # Adam's per-coordinate scaling leaves the subspace: project back
            with torch.no_grad():
                w.copy_(w0 + project(w - w0, p.subspace))
    return Refined(w_out, met_t, steps_taken, can_stop, trajectory, loss_history)

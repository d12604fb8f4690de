"""The ``"direction"`` start (the fast preset): a jump along the attribute directions.

``w = w0 + Σ_t α_t d_t`` with ``α_t`` sized from the face nets' reading of
``G(w0)`` and the direction's calibrated slope
(:class:`~editable_deepsc.editing.directions.AttributeDirections`), then
``line_steps`` forward-only secant corrections of ``α`` from the measured
attribute values of the jumped face. Without directions the edit starts at ``w0``.
"""

from __future__ import annotations

import torch

from editable_deepsc.editing.config import EditConfig
from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES, goal_value, target_met
from editable_deepsc.editing.measure import measure_attributes
from editable_deepsc.editing.problem import EditProblem
from editable_deepsc.editing.starts.base import Start
from editable_deepsc.editing.starts.origin import start_from_origin
from editable_deepsc.editing.subspace import project
from editable_deepsc.text.targets import EditTarget


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(0.01, 0.99)
    return torch.log(p) - torch.log1p(-p)


def _scale(attribute: str, v: torch.Tensor) -> torch.Tensor:
    """The directions' regression scale: logit for probability attributes, the value otherwise."""
    return _logit(v) if attribute in PROBABILITY_ATTRIBUTES else v


def direction_step(
    directions, config: EditConfig, targets: tuple[EditTarget, ...], values0: dict[str, torch.Tensor], strength: float
) -> torch.Tensor:
    """Step sizes ``alpha`` (N, T) along each target's direction, from ``values0`` and the fitted slopes.

    ``alpha = margin · (g(goal) − g(v0)) / slope``, with ``g = logit`` for
    probability attributes, clipped to ``[−alpha_max, alpha_max]`` (to the
    target's side for more/less); 0 where no direction is known.

    Parameters
    ----------
    directions : AttributeDirections or None
    config : EditConfig
        ``alpha_margin``, ``alpha_max``.
    values0 : dict of str to Tensor (N,)
        Attribute values of the originals (measured or predicted).
    """
    n = next(iter(values0.values())).shape[0] if values0 else 0
    alpha = torch.zeros(n, len(targets))
    if directions is None or not values0:
        return alpha
    for j, t in enumerate(targets):
        a = t.attribute
        if a not in directions or a not in values0:
            continue
        v0 = values0[a].detach().cpu()
        gap = _scale(a, goal_value(t, v0, strength)) - _scale(a, v0)
        slope = directions.slope(a)
        if abs(slope) < 1e-8:
            continue
        al = config.alpha_margin * gap / slope
        lo, hi = -config.alpha_max, config.alpha_max
        if t.direction != "set":  # never step away from the asked side
            if t.sign * slope > 0:
                lo = 0.0
            else:
                hi = 0.0
        alpha[:, j] = al.clamp(lo, hi)
    return alpha


def direction_vectors(problem: EditProblem) -> torch.Tensor:
    """Each target's direction (T, num_ws, w_dim), masked to the editable layers and projected on the
    problem's subspace; zero where no direction is known."""
    w0, mask, directions = problem.w0, problem.mask, problem.directions
    dirs = torch.zeros(len(problem.targets), *w0.shape[1:], device=w0.device)
    for j, t in enumerate(problem.targets):
        if directions is not None and t.attribute in directions:
            dirs[j] = directions.vector(t.attribute).to(w0.device) * (mask[0] if mask is not None else 1.0)
    if problem.subspace is not None:
        dirs = project(dirs, problem.subspace)
    return dirs


def jump(w0: torch.Tensor, alpha: torch.Tensor, dirs: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """``w0 + Σ_t α_t d_t`` (M, num_ws, w_dim) for ``alpha`` (M, T), directions ``dirs`` (T, num_ws, w_dim),
    of the rows ``rows`` of ``w0`` (all: ``None``)."""
    base = w0 if rows is None else w0[rows]
    return base + torch.einsum("nt,tlw->nlw", alpha.to(w0.device), dirs)


def _secant(problem: EditProblem, t: EditTarget, al: torch.Tensor, v0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A corrected step for target ``t``: the local slope from ``α = al`` (where it is trustworthy) towards the goal."""
    cfg, a = problem.config, t.attribute
    goal = goal_value(t, v0, problem.strength)
    slope = torch.full_like(al, problem.directions.slope(a))
    local = (_scale(a, v) - _scale(a, v0)) / al.where(al.abs() > 0.05, torch.ones_like(al))
    trust = (al.abs() > 0.05) & (local * slope > 0) & (local.abs() > 0.25 * slope.abs())
    slope = torch.where(trust, local, slope)
    new = al + cfg.alpha_margin * (_scale(a, goal) - _scale(a, v)) / slope
    new = new.clamp(-cfg.alpha_max, cfg.alpha_max)
    if t.direction != "set":
        new = new.clamp(min=0.0) if t.sign * problem.directions.slope(a) > 0 else new.clamp(max=0.0)
    return new


def start_from_directions(problem: EditProblem) -> Start:
    """The jump with ``line_steps`` secant corrections (see the module docstring).

    Returns the start latent (N, num_ws, w_dim), ``alpha`` (N, T) and, when the
    jump was measured, the per-target met flags (N, T) of the returned latent and
    whether each sample is finished (N,) (targets met and identity kept).
    """
    if problem.directions is None:
        return start_from_origin(problem)
    _, values0 = problem.observe()
    cfg, targets, w0 = problem.config, problem.targets, problem.w0
    n, dev = w0.shape[0], w0.device
    alpha = direction_step(problem.directions, cfg, targets, values0, problem.strength)
    dirs = direction_vectors(problem)
    if not problem.measuring or not bool((alpha != 0).any()):
        return Start(jump(w0, alpha, dirs), alpha)
    active = torch.ones(n, dtype=torch.bool)
    met_all = torch.zeros(n, len(targets), dtype=torch.bool)
    ok_id = torch.zeros(n, dtype=torch.bool)  # targets met and identity kept
    for it in range(cfg.line_steps + 1):  # the last pass only checks
        idx = active.nonzero().flatten()
        if idx.numel() == 0:
            break
        with torch.no_grad():
            images = problem.render(jump(w0, alpha[idx], dirs, idx.to(dev)))
            vals = {
                a: problem.per_sample(v).cpu()
                for a, v in measure_attributes(problem.guidance, images, problem.named).items()
            }
        met = torch.stack(
            [target_met(t, values0[t.attribute][idx.to(dev)].cpu(), vals[t.attribute], problem.strength)
             for t in targets], 1
        )  # fmt: skip
        met_all[idx] = met
        fin = met.all(1)
        if fin.any() and problem.identity_bounded:
            with torch.no_grad():
                fin = fin & problem.identity_kept(images, problem.identity_ref(idx.to(dev)), idx=idx).cpu()
        ok_id[idx] = fin
        active[idx[fin]] = False
        if it == cfg.line_steps:
            break
        for j, t in enumerate(targets):
            if t.attribute not in problem.directions:
                continue
            rows = ~met[:, j]
            if not rows.any():
                continue
            new = _secant(problem, t, alpha[idx, j], values0[t.attribute][idx.to(dev)].cpu(), vals[t.attribute])
            alpha[idx[rows], j] = new[rows]
    return Start(jump(w0, alpha, dirs), alpha, met_all, ok_id)

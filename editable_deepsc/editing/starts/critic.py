"""The ``"critic"`` start (the instant preset): edit a latent against the latent critic, without the face nets.

The start jumps along the attribute directions by a step sized from the
critic's reading of ``w0`` (:func:`~editable_deepsc.editing.starts.direction.direction_step`),
then optimises against the critic. Given the critic's readings of the original, ``ĝ0 = ĝ(w0)`` and ``ê0 = ê(w0)``,
and the goal ``γ_t`` of each target on the regression scale
(:func:`~editable_deepsc.editing.criteria.goal_value` of the predicted original
value), Adam minimises over ``w`` (starting at the direction jump)

.. math::

    \\sum_t \\frac{\\mathrm{relu}\\big(s_t(γ_t - ĝ_t(w)) + m σ_t\\big)^2}{σ_t^2}
    + λ_{id}\\,\\frac{\\lVert ê(w) - ê_0\\rVert^2}{0.1^2}
    + λ_{L2}\\lVert w - w_0\\rVert^2
    + λ_{keep}\\sum_{a} \\Big(\\frac{ĝ_a(w) - ĝ_{0,a}}{\\mathrm{sd}_a}\\Big)^2

(``s_t = ±1`` for more/less, squared distance to the goal for ``set``; ``σ_t``
the critic's held-out residual std of the attribute, ``m`` the margin in those
units; the keep sum over the attributes the instruction does not name). The
hinge is zero once the prediction is ``m`` residuals past the goal, so the
identity and distance terms pull the latent back to the least change that
still gets there. Every step costs one small MLP forward and backward: no
image is synthesised until the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editable_deepsc.editing.config import EditConfig
from editable_deepsc.editing.critic import LatentCritic, to_value
from editable_deepsc.editing.criteria import goal_value, keep_attributes, target_met
from editable_deepsc.editing.directions import regression_target
from editable_deepsc.editing.problem import EditProblem
from editable_deepsc.editing.starts.base import Start
from editable_deepsc.editing.starts.direction import direction_step, direction_vectors, jump
from editable_deepsc.editing.subspace import project
from editable_deepsc.errors import BadInput
from editable_deepsc.text.targets import EditTarget

ID_SCALE = 0.1
"""Descriptor distance that costs 1 in the identity term (before ``critic_id_weight``)."""


@dataclass
class CriticEdit:
    """Result of :func:`critic_edit` (all tensors on the latent's device, no autograd).

    Attributes
    ----------
    w_plus : Tensor, float32, (N, num_ws, w_dim)
    values_before, values_after : dict of str to Tensor (N,)
        The critic's predicted attribute values (units of the attribute) of ``w0`` and ``w_plus``.
    target_met : Tensor, bool, (N, T)
        Predicted per-target success (no margin).
    distance : Tensor, float32, (N,)
        Predicted face-descriptor distance between ``G(w_plus)`` and ``G(w0)``.
    """

    w_plus: torch.Tensor
    values_before: dict[str, torch.Tensor]
    values_after: dict[str, torch.Tensor]
    target_met: torch.Tensor
    distance: torch.Tensor


def critic_edit(
    critic: LatentCritic,
    w0: torch.Tensor,
    w_start: torch.Tensor,
    targets: tuple[EditTarget, ...],
    strength: float,
    config: EditConfig,
    grad_filter=None,
) -> CriticEdit:
    """Optimise ``w`` from ``w_start`` against the critic (see the module docstring).

    Parameters
    ----------
    critic : LatentCritic
    w0 : Tensor, float32, (N, num_ws, w_dim)
        Original latents.
    w_start : Tensor, float32, (N, num_ws, w_dim)
        Start (the direction jump, or ``w0``).
    targets : tuple of EditTarget
    strength : float
        Multiplies every target's strength.
    config : EditConfig
        ``critic_steps``, ``critic_lr``, ``critic_margin``, ``critic_id_weight``,
        ``lambda_l2``, ``critic_keep_weight``.
    grad_filter : callable, optional
        ``grad_filter(grad) -> grad`` (layer mask, subspace projection); with it
        the iterate is also kept at ``w0 + grad_filter(w − w0)``.

    Returns
    -------
    CriticEdit
    """
    named = tuple(dict.fromkeys(t.attribute for t in targets))
    keep = keep_attributes(named) if config.critic_keep_weight > 0 else ()
    with torch.no_grad():
        g0, e0 = critic(w0)
    cols = {a: critic.index(a) for a in named + keep}
    v0 = {a: to_value(a, g0[:, cols[a]]) for a in named}
    goals = []
    for t in targets:
        a = t.attribute
        goal = regression_target(a, goal_value(t, v0[a], strength))
        sigma = max(critic.margin(a), 1e-3)
        goals.append((t, cols[a], goal, sigma))
    sd = critic.y_std
    w = w_start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=config.critic_lr)
    for _ in range(int(config.critic_steps)):
        g, e = critic(w)
        loss = torch.zeros(w.shape[0], device=w.device)
        for t, c, goal, sigma in goals:
            if t.direction == "set":
                gap = (g[:, c] - goal).abs() - 0.5 * config.critic_margin * sigma
            else:
                gap = t.sign * (goal - g[:, c]) + config.critic_margin * sigma
            loss = loss + torch.relu(gap).pow(2) / sigma**2
        if config.critic_id_weight > 0:
            loss = loss + config.critic_id_weight * (e - e0).pow(2).sum(1) / ID_SCALE**2
        if config.lambda_l2 > 0:
            loss = loss + config.lambda_l2 * (w - w0).pow(2).sum((1, 2))
        for a in keep:
            c = cols[a]
            loss = loss + config.critic_keep_weight * ((g[:, c] - g0[:, c]) / sd[c]).pow(2)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward(inputs=[w])
        if grad_filter is not None:
            w.grad.copy_(grad_filter(w.grad))
        opt.step()
        if grad_filter is not None:
            with torch.no_grad():
                w.copy_(w0 + grad_filter(w - w0))
    with torch.no_grad():
        w = w.detach()
        g1, e1 = critic(w)
        v1 = {a: to_value(a, g1[:, cols[a]]) for a in named}
        met = torch.stack([target_met(t, v0[t.attribute], v1[t.attribute], strength) for t in targets], 1)
        dist = (e1 - e0).norm(dim=1)
    return CriticEdit(w, v0, v1, met, dist)


def start_from_critic(problem: EditProblem) -> Start:
    """The jump sized from the critic's reading of ``w0``, then :func:`critic_edit` (layer mask and
    subspace respected).

    Without ``config.verify`` (or without measuring guidance) the result is :attr:`Start.final`:
    its ``met`` and values are the critic's predictions.

    Raises
    ------
    BadInput
        No critic, or joint editing-channel coding (it needs the face nets in the loop).
    """
    critic, cfg, w0, mask, subspace = problem.critic, problem.config, problem.w0, problem.mask, problem.subspace
    if critic is None:
        raise BadInput("the instant preset needs a latent critic for this generator (`edsc train critic`); "
                       "use the fast or paper preset")
    if problem.through is not None:
        raise BadInput("joint editing-channel coding needs the face nets in the loop: "
                       "use the fast or paper preset with it")
    with torch.no_grad():
        v0 = critic.values(w0, problem.named)
    alpha = direction_step(problem.directions, cfg, problem.targets, v0, problem.strength)
    start = jump(w0, alpha, direction_vectors(problem))

    def keep_inside(x: torch.Tensor) -> torch.Tensor:
        if mask is not None:
            x = x * mask
        return project(x, subspace) if subspace is not None else x

    filt = keep_inside if (mask is not None or subspace is not None) else None
    ce = critic_edit(critic, w0, start, problem.targets, problem.strength, cfg, filt)
    if cfg.verify and problem.measuring:
        return Start(ce.w_plus.clone(), alpha)
    return Start(ce.w_plus, alpha, met=ce.target_met, final=True, values_before=ce.values_before,
                 values_after=ce.values_after)

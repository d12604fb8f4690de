"""The semantic editing module: instruction-driven latent updates in W+.

For a batch of latents ``w0`` (N, num_ws, w_dim) and the targets of an
instruction, the editor minimises, per sample,

.. math::

    \\sum_t L_{guid}(G(w), t, G(w_0)) + \\lambda_{L2}\\lVert w - w_0\\rVert^2
    + \\lambda_{ID}\\,L_{ID}(G(w), G(w_0))
    + \\lambda_{keep}\\sum_{a \\notin t} \\Big(\\frac{v_a(G(w)) - v_a(G(w_0))}{s_a}\\Big)^2

with Adam and a learning-rate schedule (:class:`~editable_deepsc.editing.config.EditConfig`),
stopping each sample as soon as all its targets are met
(:mod:`editable_deepsc.editing.criteria`). The ``"fast"`` preset first jumps
along precomputed attribute directions
(:class:`~editable_deepsc.editing.directions.AttributeDirections`); the
``"instant"`` preset edits against a latent critic that predicts the face nets'
readings from the latent (:mod:`editable_deepsc.editing.critic_edit`).

It is generic: any :class:`~editable_deepsc.generator.base.StyleGenerator` and
any :class:`~editable_deepsc.guidance.base.Guidance` (attribute nets, CLIP).

Joint editing-channel coding (JECC, the journal version): with
``through_channel=(codec, channel, snr_db)`` the image in the loss is
``G(codec(w, channel, snr_db))`` — the latent is encoded, sent through a
freshly sampled channel at the session SNR and decoded, as the receiver will —
so the *received* image meets the instruction. The returned latent is what the
transmitter encodes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from editable_deepsc.editing.config import EditConfig, edit_config
from editable_deepsc.editing.criteria import (
    PROBABILITY_ATTRIBUTES,
    SCALE,
    goal_value,
    keep_attributes,
    target_met,
)
from editable_deepsc.editing.measure import can_measure, measurable_attributes, measure_attributes
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.guidance.base import Guidance
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

IdentityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``identity(images, reference) -> (N,)`` identity loss (0 = same person), differentiable."""

ThroughChannel = tuple[nn.Module, nn.Module, float]
"""``(codec, channel, snr_db)`` for joint editing-channel coding."""

Instruction = ParsedInstruction | EditTarget | Sequence[EditTarget]


@dataclass
class EditResult:
    """What :meth:`Editor.edit` returns.

    Attributes
    ----------
    w_plus : Tensor, float32, (N, num_ws, w_dim)
        Edited latents (what the transmitter encodes).
    images : Tensor, float32, (N, 3, R, R)
        ``G(w_plus)`` (transmitter side, no channel).
    met : Tensor, bool, (N,)
        All targets met when the sample stopped (for JECC: on the received image).
    target_met : Tensor, bool, (N, T)
        Per target.
    steps : Tensor, int64, (N,)
        Optimisation steps through the generator each sample took (0: met at the start
        or after the jump; the instant preset's ``critic_steps`` in latent space are
        not counted).
    values_before, values_after : dict of str to Tensor (N,)
        Attribute values of ``G(w0)`` and ``G(w_plus)`` (named and kept attributes;
        empty for guidance that cannot measure).
    alpha : Tensor, float32, (N, T)
        Direction step per target (0 without a jump).
    seconds : float
        Wall-clock time of the whole edit (all N samples).
    targets : tuple of EditTarget
    strength : float
    config : EditConfig
    jecc : bool
        Whether the edit went through the channel.
    verified : bool
        Whether ``met``, ``target_met`` and ``values_*`` come from the guidance's
        measurements (False: the latent critic's predictions, instant preset
        without ``verify``).
    trajectory : list of (int, Tensor)
        ``(step, w_plus)`` snapshots when ``record_every > 0``.
    loss_history : list of float
        Mean loss over the samples still being optimised, per step.
    """

    w_plus: torch.Tensor
    images: torch.Tensor
    met: torch.Tensor
    target_met: torch.Tensor
    steps: torch.Tensor
    values_before: dict[str, torch.Tensor]
    values_after: dict[str, torch.Tensor]
    alpha: torch.Tensor
    seconds: float
    targets: tuple[EditTarget, ...]
    strength: float
    config: EditConfig
    jecc: bool = False
    verified: bool = True
    trajectory: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    loss_history: list[float] = field(default_factory=list)

    @property
    def seconds_per_edit(self) -> float:
        return self.seconds / max(1, self.w_plus.shape[0])

    def summary(self) -> dict:
        """JSON-friendly summary (means over the batch)."""
        return {
            "targets": [t.describe() for t in self.targets],
            "strength": self.strength,
            "preset": self.config.preset,
            "jecc": self.jecc,
            "verified": self.verified,
            "n": int(self.w_plus.shape[0]),
            "success_rate": float(self.met.float().mean()),
            "mean_steps": float(self.steps.float().mean()),
            "seconds_per_edit": self.seconds_per_edit,
            "before": {a: float(v.mean()) for a, v in self.values_before.items()},
            "after": {a: float(v.mean()) for a, v in self.values_after.items()},
        }


def as_targets(instruction: Instruction) -> tuple[EditTarget, ...]:
    """The edit targets of ``instruction`` (a ParsedInstruction, one EditTarget or a sequence).

    Raises
    ------
    BadInput
        If there is no target.
    """
    if isinstance(instruction, ParsedInstruction):
        targets = tuple(instruction.targets)
    elif isinstance(instruction, EditTarget):
        targets = (instruction,)
    else:
        targets = tuple(instruction)
        if not all(isinstance(t, EditTarget) for t in targets):
            raise BadInput("an instruction must be a ParsedInstruction, an EditTarget or a list of EditTargets")
    if not targets:
        raise BadInput("the instruction asks for no edit")
    return targets


def check_latent(w: torch.Tensor, generator: StyleGenerator) -> None:
    """Raise :class:`BadInput` unless ``w`` is a finite float W+ latent for ``generator``."""
    if not isinstance(w, torch.Tensor) or not torch.is_floating_point(w):
        raise BadInput("the latent must be a floating-point tensor")
    generator.check_w_plus(w)
    if w.shape[0] == 0:
        raise BadInput("the latent batch is empty")
    if not torch.isfinite(w).all():
        bad = int((~torch.isfinite(w)).flatten(1).any(1).sum())
        raise BadInput(f"the latent contains NaN or inf ({bad} of {w.shape[0]} samples); refusing to edit it")


def check_subspace(basis: torch.Tensor, dim: int) -> torch.Tensor:
    """``basis`` as float32 (dim, m) with orthonormal columns, else :class:`BadInput`."""
    if not isinstance(basis, torch.Tensor) or basis.dim() != 2 or basis.shape[0] != dim or basis.shape[1] < 1:
        raise BadInput(f"subspace must be a ({dim}, m) basis, got {tuple(getattr(basis, 'shape', ()))}")
    basis = basis.detach().float()
    gram = basis.T @ basis
    if not torch.allclose(gram, torch.eye(gram.shape[0], device=gram.device), atol=1e-3):
        raise BadInput("subspace columns must be orthonormal")
    return basis


def project(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Orthogonal projection of latents ``x`` (..., num_ws, w_dim) onto ``span(basis)`` ((num_ws·w_dim, m))."""
    flat = x.reshape(-1, basis.shape[0])
    return ((flat @ basis) @ basis.T).reshape(x.shape)


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(0.01, 0.99)
    return torch.log(p) - torch.log1p(-p)


class Editor:
    """Instruction-driven editing of W+ latents.

    Parameters
    ----------
    generator : StyleGenerator
        Any style-based generator (built-in ``edsc-faces64``, a full StyleGAN2, ...).
    guidance : Guidance
        What the edit optimises (face-net attributes, CLIP, ...). If it has a
        ``measure`` method (:class:`~editable_deepsc.editing.measure.MeasuringGuidance`),
        the editor uses attribute values for the stop criterion and the keep term.
    identity : callable, optional
        ``identity(images, reference) -> (N,)`` identity loss (e.g.
        :class:`~editable_deepsc.guidance.attributes.IdentityLoss`).
    config : EditConfig or str
        Preset name (``"paper"``, ``"fast"``, ``"instant"``) or a config.
    directions : AttributeDirections, optional
        Per-attribute directions for ``init="direction"`` (required by the fast preset
        for the attributes it jumps along; others start at ``w0``).
    support : SupportTable, optional
        Measured reliability; targets it marks unsupported are refused with
        :class:`~editable_deepsc.errors.UnsupportedInstruction`.
    identity_distance : callable, optional
        ``identity_distance(images, reference) -> (N,)``, no gradient needed; with
        ``EditConfig.max_id_distance`` a sample stops only once it is within that bound.
    critic : LatentCritic, optional
        Predicts the face nets' readings from the latent; needed by ``init="critic"``
        (the instant preset).
    """

    def __init__(
        self,
        generator: StyleGenerator,
        guidance: Guidance,
        identity: IdentityFn | None = None,
        config: EditConfig | str = "paper",
        directions=None,
        support=None,
        identity_distance: IdentityFn | None = None,
        critic=None,
    ) -> None:
        self.generator = generator
        self.critic = critic
        self.identity_distance = identity_distance
        self.guidance = guidance
        self.identity = identity
        self.config = edit_config(config) if isinstance(config, str) else config
        self.directions = directions
        self.support = support
        if directions is not None and (directions.num_ws, directions.w_dim) != (generator.num_ws, generator.w_dim):
            raise BadInput(
                f"directions are for W+ ({directions.num_ws}, {directions.w_dim}), "
                f"the generator has ({generator.num_ws}, {generator.w_dim})"
            )
        if critic is not None and (critic.num_ws, critic.w_dim) != (generator.num_ws, generator.w_dim):
            raise BadInput(
                f"the critic is for W+ ({critic.num_ws}, {critic.w_dim}), "
                f"the generator has ({generator.num_ws}, {generator.w_dim})"
            )

    # ------------------------------------------------------------------ helpers
    def _device(self) -> torch.device:
        try:
            return next(self.generator.parameters()).device
        except StopIteration:  # pragma: no cover - parameter-free generator
            return torch.device("cpu")

    def _layer_mask(self, like: torch.Tensor) -> torch.Tensor | None:
        layers = self.config.layers
        if layers is None:
            return None
        n = self.generator.num_ws
        if any(not 0 <= i < n for i in layers):
            raise BadInput(f"layers {layers} out of range for {n} W+ layers")
        m = torch.zeros(1, n, 1, dtype=like.dtype, device=like.device)
        m[:, list(layers)] = 1.0
        return m

    def _render(
        self, w: torch.Tensor, through: ThroughChannel | None, gen: torch.Generator | None, draws: int
    ) -> torch.Tensor:
        """Images of ``w`` (M, num_ws, w_dim): ``G(w)``, or ``draws`` received images per latent for JECC."""
        if through is None:
            return self.generator.synthesis(w)
        codec, channel, snr_db = through
        w_rep = w.repeat_interleave(draws, dim=0)
        return self.generator.synthesis(codec(w_rep, channel, float(snr_db), generator=gen))

    @staticmethod
    def _per_sample(x: torch.Tensor, draws: int) -> torch.Tensor:
        return x.reshape(-1, draws).mean(1) if draws > 1 else x

    def direction_step(
        self, targets: tuple[EditTarget, ...], values0: dict[str, torch.Tensor], strength: float
    ) -> torch.Tensor:
        """Step sizes ``alpha`` (N, T) along each target's direction, from ``values0`` and the fitted slopes.

        ``alpha = margin · (g(goal) − g(v0)) / slope``, with ``g = logit`` for
        probability attributes, clipped to ``[−alpha_max, alpha_max]`` (to the
        target's side for more/less); 0 where no direction is known.
        """
        n = next(iter(values0.values())).shape[0] if values0 else 0
        alpha = torch.zeros(n, len(targets))
        if self.directions is None or not values0:
            return alpha
        cfg = self.config
        for j, t in enumerate(targets):
            a = t.attribute
            if a not in self.directions or a not in values0:
                continue
            v0 = values0[a].detach().cpu()
            goal = goal_value(t, v0, strength)
            if a in PROBABILITY_ATTRIBUTES:
                gap = _logit(goal) - _logit(v0)
            else:
                gap = goal - v0
            slope = self.directions.slope(a)
            if abs(slope) < 1e-8:
                continue
            al = cfg.alpha_margin * gap / slope
            lo, hi = -cfg.alpha_max, cfg.alpha_max
            if t.direction != "set":  # never step away from the asked side
                if t.sign * slope > 0:
                    lo = 0.0
                else:
                    hi = 0.0
            alpha[:, j] = al.clamp(lo, hi)
        return alpha

    def _direction_vectors(
        self, targets: tuple[EditTarget, ...], w0: torch.Tensor, mask: torch.Tensor | None,
        subspace: torch.Tensor | None,
    ) -> torch.Tensor:  # fmt: skip
        """Each target's direction (T, num_ws, w_dim), masked to the editable layers and projected on
        ``subspace``; zero where no direction is known."""
        dirs = torch.zeros(len(targets), *w0.shape[1:], device=w0.device)
        for j, t in enumerate(targets):
            if self.directions is not None and t.attribute in self.directions:
                dirs[j] = self.directions.vector(t.attribute).to(w0.device) * (mask[0] if mask is not None else 1.0)
        if subspace is not None:
            dirs = project(dirs, subspace)
        return dirs

    def _critic_edit(
        self,
        w0: torch.Tensor,
        targets: tuple[EditTarget, ...],
        strength: float,
        mask: torch.Tensor | None,
        subspace: torch.Tensor | None,
    ):
        """The instant preset's edit: direction jump sized from the critic's reading of ``w0``, then Adam against
        the critic (:func:`~editable_deepsc.editing.critic_edit.critic_edit`); returns it and ``alpha`` (N, T)."""
        from editable_deepsc.editing.critic_edit import critic_edit

        named = tuple(dict.fromkeys(t.attribute for t in targets))
        with torch.no_grad():
            v0 = self.critic.values(w0, named)
        alpha = self.direction_step(targets, v0, strength)
        start = w0 + torch.einsum("nt,tlw->nlw", alpha.to(w0.device), self._direction_vectors(targets, w0, mask,
                                                                                                subspace))

        def keep_inside(x: torch.Tensor) -> torch.Tensor:
            if mask is not None:
                x = x * mask
            return project(x, subspace) if subspace is not None else x

        filt = keep_inside if (mask is not None or subspace is not None) else None
        return critic_edit(self.critic, w0, start, targets, strength, self.config, filt), alpha

    def _jump(
        self,
        w0: torch.Tensor,
        targets: tuple[EditTarget, ...],
        values0: dict[str, torch.Tensor],
        strength: float,
        mask: torch.Tensor | None,
        through: ThroughChannel | None,
        gen: torch.Generator | None,
        draws: int,
        subspace: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Direction jump ``w0 + Σ_t α_t d_t`` with ``line_steps`` forward-only secant corrections of ``α``
        (``d_t`` projected on ``subspace`` when given).

        Returns the start latent (N, num_ws, w_dim), ``alpha`` (N, T) and, when the
        jump was measured, the per-target met flags (N, T) of the returned latent and
        whether each sample is finished (N,) (targets met and identity kept).
        """
        cfg = self.config
        n, dev = w0.shape[0], w0.device
        alpha = self.direction_step(targets, values0, strength)
        dirs = self._direction_vectors(targets, w0, mask, subspace)

        def place(al: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
            base = w0 if rows is None else w0[rows]
            return base + torch.einsum("nt,tlw->nlw", al.to(dev), dirs)

        if not self.measuring or not bool((alpha != 0).any()):
            return place(alpha), alpha, None
        named = tuple(dict.fromkeys(t.attribute for t in targets))

        def g(a: str, v: torch.Tensor) -> torch.Tensor:
            return _logit(v) if a in PROBABILITY_ATTRIBUTES else v

        active = torch.ones(n, dtype=torch.bool)
        met_all = torch.zeros(n, len(targets), dtype=torch.bool)
        ok_id = torch.zeros(n, dtype=torch.bool)  # targets met and identity kept
        for it in range(cfg.line_steps + 1):  # the last pass only checks
            idx = active.nonzero().flatten()
            if idx.numel() == 0:
                break
            with torch.no_grad():
                images = self._render(place(alpha[idx], idx.to(dev)), through, gen, draws)
                vals = {
                    a: self._per_sample(v, draws).cpu()
                    for a, v in measure_attributes(self.guidance, images, named).items()
                }
            met = torch.stack(
                [target_met(t, values0[t.attribute][idx.to(dev)].cpu(), vals[t.attribute], strength) for t in targets], 1
            )
            met_all[idx] = met
            fin = met.all(1)
            if fin.any() and self._identity_bounded:
                with torch.no_grad():
                    ref = self.generator.synthesis(w0[idx.to(dev)])
                    ref = ref.repeat_interleave(draws, 0) if draws > 1 else ref
                    fin = fin & self._identity_kept(images, ref, draws)
            ok_id[idx] = fin
            active[idx[fin]] = False
            if it == cfg.line_steps:
                break
            for j, t in enumerate(targets):
                a = t.attribute
                if a not in self.directions:
                    continue
                rows = ~met[:, j]
                if not rows.any():
                    continue
                v0 = values0[a][idx.to(dev)].cpu()
                goal = goal_value(t, v0, strength)
                al = alpha[idx, j]
                slope = torch.full_like(al, self.directions.slope(a))
                local = (g(a, vals[a]) - g(a, v0)) / al.where(al.abs() > 0.05, torch.ones_like(al))
                trust = (al.abs() > 0.05) & (local * slope > 0) & (local.abs() > 0.25 * slope.abs())
                slope = torch.where(trust, local, slope)
                new = al + cfg.alpha_margin * (g(a, goal) - g(a, vals[a])) / slope
                lo, hi = -cfg.alpha_max, cfg.alpha_max
                new = new.clamp(lo, hi)
                if t.direction != "set":
                    new = new.clamp(min=0.0) if t.sign * self.directions.slope(a) > 0 else new.clamp(max=0.0)
                alpha[idx[rows], j] = new[rows]
        return place(alpha), alpha, (met_all, ok_id)

    def _values_and_met(
        self,
        images: torch.Tensor,
        targets: tuple[EditTarget, ...],
        attrs: tuple[str, ...],
        values0: dict[str, torch.Tensor],
        reference: torch.Tensor,
        idx: torch.Tensor,
        strength: float,
        draws: int,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Attribute values (per sample, mean over channel draws) and per-target met flags (M, T)."""
        if self.measuring:
            vals = {a: self._per_sample(v, draws) for a, v in measure_attributes(self.guidance, images, attrs).items()}
            met = torch.stack(
                [target_met(t, values0[t.attribute][idx], vals[t.attribute].detach(), strength) for t in targets], 1
            )
            return vals, met
        thr = self.config.score_threshold
        if thr is None:
            return {}, torch.zeros(idx.numel(), len(targets), dtype=torch.bool, device=images.device)
        with torch.no_grad():
            met = torch.stack(
                [
                    self._per_sample(self.guidance.score(images, t, reference), draws) >= thr * t.strength * strength
                    for t in targets
                ],
                1,
            )
        return {}, met

    @property
    def _identity_bounded(self) -> bool:
        """Whether the config bounds identity with a function the editor has."""
        cfg = self.config
        return (self.identity is not None and cfg.max_id_loss is not None) or (
            self.identity_distance is not None and cfg.max_id_distance is not None
        )

    def _identity_kept(
        self, images: torch.Tensor, reference: torch.Tensor, draws: int, id_loss: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(M,) bool on CPU: every identity bound of the config holds (all True when none applies).

        ``id_loss``: the per-sample identity loss of ``images`` if already computed.
        """
        cfg = self.config
        ok = torch.ones(images.shape[0] // draws, dtype=torch.bool)
        if self.identity is not None and cfg.max_id_loss is not None:
            if id_loss is None:
                id_loss = self._per_sample(self.identity(images, reference).reshape(-1), draws)
            ok &= id_loss.detach().cpu() <= cfg.max_id_loss
        if self.identity_distance is not None and cfg.max_id_distance is not None:
            d = self._per_sample(self.identity_distance(images, reference).detach().reshape(-1), draws).cpu()
            ok &= d <= cfg.max_id_distance
        return ok

    @property
    def measuring(self) -> bool:
        return can_measure(self.guidance)

    # ------------------------------------------------------------------ main
    def edit(
        self,
        w0: torch.Tensor,
        instruction: Instruction,
        strength: float = 1.0,
        through_channel: ThroughChannel | None = None,
        generator: torch.Generator | None = None,
        record_every: int = 0,
        progress: bool = False,
        subspace: torch.Tensor | None = None,
    ) -> EditResult:
        """Edit latents ``w0`` so that their images meet ``instruction``.

        Parameters
        ----------
        w0 : Tensor, float32, shape (N, num_ws, w_dim)
            Latents to edit (e.g. from inversion); must be finite.
        instruction : ParsedInstruction, EditTarget or sequence of EditTarget
            What to change; several targets are edited together.
        strength : float
            Multiplies every target's strength (how far to go), in (0, 4].
        through_channel : (codec, channel, snr_db), optional
            Joint editing-channel coding: optimise what the receiver will synthesise.
        generator : torch.Generator, optional
            Randomness of the sampled channel (JECC).
        record_every : int
            Keep a ``w_plus`` snapshot every this many steps in ``trajectory`` (0: none).
        progress : bool
            Show a progress bar over steps.
        subspace : Tensor, float32, (num_ws·w_dim, m), optional
            Orthonormal columns: the edit moves only within ``w0 + span(subspace)``
            (direction jumps and gradient steps are projected), e.g. the axes a
            :class:`~editable_deepsc.channel.delta.DeltaCodec` sends, so that a
            follow-up delta loses nothing to truncation.

        Returns
        -------
        EditResult

        Raises
        ------
        BadInput
            Malformed or non-finite latent, strength out of range.
        UnsupportedInstruction
            A target the support table marks unreliable for this model.
        """
        t_start = time.perf_counter()
        check_latent(w0, self.generator)
        if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0.0 < strength <= 4.0):
            raise BadInput(f"strength must be in (0, 4], got {strength}")
        targets = as_targets(instruction)
        if self.support is not None:
            self.support.check(targets)
        if through_channel is not None and len(through_channel) != 3:
            raise BadInput("through_channel must be (codec, channel, snr_db)")
        cfg = self.config
        dev = self._device()
        w0 = w0.detach().to(dev, torch.float32)
        n = w0.shape[0]
        if subspace is not None:
            subspace = check_subspace(subspace, w0.shape[1] * w0.shape[2]).to(dev)
        draws = cfg.channel_draws if through_channel is not None else 1

        named = tuple(dict.fromkeys(t.attribute for t in targets))
        keep = keep_attributes(named, cfg.keep_attributes) if (self.measuring and cfg.lambda_keep > 0) else ()
        keep = tuple(a for a in keep if a in measurable_attributes(self.guidance))
        attrs = report = named + keep if self.measuring else ()  # measured in the loop, before and after

        mask = self._layer_mask(w0)
        alpha = torch.zeros(n, len(targets))
        w_init = w0.clone()
        if cfg.init == "critic":
            if self.critic is None:
                raise BadInput("the instant preset needs a latent critic for this generator (`edsc train critic`); "
                               "use the fast or paper preset")
            if through_channel is not None:
                raise BadInput("joint editing-channel coding needs the face nets in the loop: "
                               "use the fast or paper preset with it")
            ce, alpha = self._critic_edit(w0, targets, strength, mask, subspace)
            if not (cfg.verify and self.measuring):
                with torch.no_grad():
                    images_out = self.generator.synthesis(ce.w_plus)
                return EditResult(
                    w_plus=ce.w_plus, images=images_out, met=ce.target_met.all(1).cpu(), target_met=ce.target_met.cpu(),
                    steps=torch.zeros(n, dtype=torch.long),
                    values_before={a: v.cpu() for a, v in ce.values_before.items()},
                    values_after={a: v.cpu() for a, v in ce.values_after.items()},
                    alpha=alpha, seconds=time.perf_counter() - t_start, targets=targets, strength=float(strength),
                    config=cfg, verified=False,
                )  # fmt: skip
            w_init = ce.w_plus.clone()

        with torch.no_grad():
            reference = self.generator.synthesis(w0)
            values0 = measure_attributes(self.guidance, reference, report) if self.measuring else {}
            values0 = {a: v.detach() for a, v in values0.items()}

        met_jump = None
        if cfg.init == "direction" and self.directions is not None:
            w_init, alpha, met_jump = self._jump(w0, targets, values0, strength, mask, through_channel, generator, draws,
                                                 subspace)

        w = w_init.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=cfg.lr_at(0), betas=(0.9, 0.999))
        w_out = w_init.clone()
        done = torch.zeros(n, dtype=torch.bool, device=dev)
        met_t = torch.zeros(n, len(targets), dtype=torch.bool, device=dev)
        steps_taken = torch.full((n,), cfg.steps, dtype=torch.long)
        if met_jump is not None and cfg.early_stop:  # samples the jump already finished take no step
            met_t[:] = met_jump[0].to(dev)
            done[:] = met_jump[1].to(dev)
            steps_taken[done.cpu()] = 0
        trajectory: list[tuple[int, torch.Tensor]] = []
        loss_history: list[float] = []
        keep_scale = {a: SCALE.get(a, 1.0) for a in keep}
        can_stop = cfg.early_stop and (self.measuring or cfg.score_threshold is not None)

        ref_idx: torch.Tensor | None = None
        ref_a = reference
        it = range(cfg.steps + 1)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"edit ({cfg.preset})", leave=False)
        for step in it:
            if record_every and step % record_every == 0:
                trajectory.append((step, w.detach().clone().cpu()))
            idx = (~done).nonzero().flatten()
            if idx.numel() == 0:
                break
            last = step == cfg.steps
            check = can_stop and (step % cfg.check_every == 0 or last)
            need_grad = not last
            with torch.set_grad_enabled(need_grad):
                w_a = w[idx]
                images = self._render(w_a, through_channel, generator, draws)
                if ref_idx is None or not torch.equal(ref_idx, idx):  # same tensor while the batch is unchanged
                    ref_idx = idx
                    ref_a = reference[idx].repeat_interleave(draws, 0) if draws > 1 else reference[idx]
                vals, met_now = (
                    self._values_and_met(images, targets, attrs, values0, ref_a, idx, strength, draws)
                    if (check or keep)
                    else ({}, None)
                )
                id_loss = (
                    self._per_sample(self.identity(images, ref_a).reshape(-1), draws)
                    if self.identity is not None and (cfg.lambda_id > 0 or (check and cfg.max_id_loss is not None))
                    else None
                )
            if met_now is not None and check:
                met_t[idx] = met_now
                finished = met_now.all(1)
                if self._identity_bounded:
                    finished = finished & self._identity_kept(images, ref_a, draws, id_loss).to(finished.device)
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
            loss = self._loss(w_a, w0[idx], images, ref_a, targets, vals, values0, idx, keep, keep_scale, strength, draws,
                              id_loss)  # fmt: skip
            for g_ in opt.param_groups:
                g_["lr"] = cfg.lr_at(step)
            opt.zero_grad(set_to_none=True)
            (loss * keep_rows.float()).sum().backward(inputs=[w])
            loss_history.append(float(loss.detach()[keep_rows].mean()))
            if mask is not None and w.grad is not None:
                w.grad.mul_(mask)
            if subspace is not None and w.grad is not None:
                w.grad.copy_(project(w.grad, subspace))
            opt.step()
            if subspace is not None:  # Adam's per-coordinate scaling leaves the subspace: project back
                with torch.no_grad():
                    w.copy_(w0 + project(w - w0, subspace))
        else:  # pragma: no cover - loop always breaks at the last step
            pass

        with torch.no_grad():
            images_out = self.generator.synthesis(w_out)
            values1 = measure_attributes(self.guidance, images_out, report) if self.measuring else {}
        if not can_stop:  # no early stop: judge the final images (transmitter side)
            if self.measuring:
                met_t = torch.stack([target_met(t, values0[t.attribute], values1[t.attribute], strength) for t in targets], 1)
        return EditResult(
            w_plus=w_out.detach(),
            images=images_out.detach(),
            met=met_t.all(1).cpu(),
            target_met=met_t.cpu(),
            steps=steps_taken,
            values_before={a: v.cpu() for a, v in values0.items()},
            values_after={a: v.detach().cpu() for a, v in values1.items()},
            alpha=alpha,
            seconds=time.perf_counter() - t_start,
            targets=targets,
            strength=float(strength),
            config=cfg,
            jecc=through_channel is not None,
            trajectory=trajectory,
            loss_history=loss_history,
        )

    def _loss(
        self,
        w_a: torch.Tensor,
        w0_a: torch.Tensor,
        images: torch.Tensor,
        ref_a: torch.Tensor,
        targets: tuple[EditTarget, ...],
        vals: dict[str, torch.Tensor],
        values0: dict[str, torch.Tensor],
        idx: torch.Tensor,
        keep: tuple[str, ...],
        keep_scale: dict[str, float],
        strength: float,
        draws: int,
        id_loss: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-sample loss (M,) of the active rows (``id_loss``: the identity loss already computed, (M,))."""
        cfg = self.config
        total = torch.zeros(w_a.shape[0], device=w_a.device)
        for t in targets:
            s = min(4.0, t.strength * strength)
            t_eff = EditTarget(t.attribute, t.direction, s, t.amount)
            total = total + self._per_sample(self.guidance.loss(images, t_eff, ref_a).reshape(-1), draws)
        if cfg.lambda_l2 > 0:
            total = total + cfg.lambda_l2 * (w_a - w0_a).pow(2).sum((1, 2))
        if cfg.lambda_id > 0 and self.identity is not None:
            if id_loss is None:
                id_loss = self._per_sample(self.identity(images, ref_a).reshape(-1), draws)
            total = total + cfg.lambda_id * id_loss
        if cfg.lambda_keep > 0 and keep:
            k = sum(((vals[a] - values0[a][idx]) / keep_scale[a]).pow(2) for a in keep)
            total = total + cfg.lambda_keep * k
        return total


def edit(
    generator: StyleGenerator,
    guidance: Guidance,
    w0: torch.Tensor,
    instruction: Instruction,
    strength: float = 1.0,
    config: EditConfig | str = "paper",
    identity: IdentityFn | None = None,
    directions=None,
    support=None,
    through_channel: ThroughChannel | None = None,
    generator_rng: torch.Generator | None = None,
) -> EditResult:
    """One-call form of :meth:`Editor.edit` (see :class:`Editor` for the parameters)."""
    ed = Editor(generator, guidance, identity=identity, config=config, directions=directions, support=support)
    return ed.edit(w0, instruction, strength=strength, through_channel=through_channel, generator=generator_rng)

"""The semantic editing module: instruction-driven latent updates in W+.

An edit is a start strategy followed by one shared refinement loop:

* the start (:mod:`editable_deepsc.editing.starts`, chosen by ``EditConfig.init``):
  ``w0`` itself (paper preset), a jump along precomputed attribute directions
  (fast; :class:`~editable_deepsc.editing.directions.AttributeDirections`), or an
  edit against a latent critic that predicts the face nets' readings from the
  latent (instant);
* the refinement (:mod:`editable_deepsc.editing.refine`): Adam on the W+ latent
  through the generator against the guidance, identity and keep terms, stopping
  each sample as soon as all its targets are met
  (:mod:`editable_deepsc.editing.criteria`).

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
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from editable_deepsc.editing.config import EditConfig, edit_config
from editable_deepsc.editing.criteria import target_met
from editable_deepsc.editing.measure import can_measure, measure_attributes
from editable_deepsc.editing.problem import EditProblem, IdentityFn, ThroughChannel
from editable_deepsc.editing.refine import refine
from editable_deepsc.editing.starts import STRATEGIES
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.guidance.base import Guidance
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

__all__ = ["EditResult", "Editor", "IdentityFn", "Instruction", "ThroughChannel", "as_targets", "check_latent", "edit"]

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


def check_identity_reference(ref: torch.Tensor, w0: torch.Tensor, generator: StyleGenerator) -> torch.Tensor:
    """``ref`` as float32 on ``w0``'s device if it is (N, 3, R, R) finite images at the generator's size."""
    r = generator.resolution
    if not isinstance(ref, torch.Tensor) or ref.shape != (w0.shape[0], 3, r, r):
        got = tuple(ref.shape) if isinstance(ref, torch.Tensor) else type(ref).__name__
        raise BadInput(f"identity_reference must be ({w0.shape[0]}, 3, {r}, {r}) images, got {got}")
    if not torch.isfinite(ref).all():
        raise BadInput("identity_reference contains NaN or inf")
    return ref.detach().to(w0.device, torch.float32)


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
        rng: torch.Generator | None = None,
        record_every: int = 0,
        progress: bool = False,
        subspace: torch.Tensor | None = None,
        identity_reference: torch.Tensor | None = None,
    ) -> EditResult:
        """Edit latents ``w0`` so that their images meet ``instruction``.

        The config's start strategy (:mod:`editable_deepsc.editing.starts`) gives the
        start latent; the shared refinement loop (:func:`~editable_deepsc.editing.refine.refine`)
        takes it from there (unless the start is final: the instant preset without ``verify``).

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
        rng : torch.Generator, optional
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
        identity_reference : Tensor, float32, (N, 3, R, R), optional
            What identity is kept against (the identity loss and stop), at the editor's
            working size ``R``: e.g. the aligned source photos, so that an edit of an
            inversion keeps the person in the photo. Default ``G(w0)``.

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
        problem = self._pose(w0, instruction, strength, through_channel, rng, subspace)
        if identity_reference is not None:
            problem.identity_reference = check_identity_reference(identity_reference, problem.w0, self.generator)
        start = STRATEGIES[self.config.init](problem)
        if start.final:
            return self._result(problem, start.w, start.met, torch.zeros(problem.w0.shape[0], dtype=torch.long),
                                start.alpha, t_start, values=(start.values_before, start.values_after))
        out = refine(problem, start, record_every, progress)
        return self._result(problem, out.w, out.met, out.steps, start.alpha, t_start, checked=out.checked,
                            trajectory=out.trajectory, loss_history=out.loss_history)

    def _pose(
        self, w0: torch.Tensor, instruction: Instruction, strength: float, through_channel: ThroughChannel | None,
        rng: torch.Generator | None, subspace: torch.Tensor | None,
    ) -> EditProblem:  # fmt: skip
        """Validate the inputs of :meth:`edit` and gather them with the editor's parts."""
        check_latent(w0, self.generator)
        if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0.0 < strength <= 4.0):
            raise BadInput(f"strength must be in (0, 4], got {strength}")
        targets = as_targets(instruction)
        if self.support is not None:
            self.support.check(targets)
        if through_channel is not None and len(through_channel) != 3:
            raise BadInput("through_channel must be (codec, channel, snr_db)")
        return EditProblem.pose(self, w0.detach().to(self._device(), torch.float32), targets, float(strength),
                                through_channel, rng, subspace)

    def _device(self) -> torch.device:
        try:
            return next(self.generator.parameters()).device
        except StopIteration:  # pragma: no cover - parameter-free generator
            return torch.device("cpu")

    @torch.no_grad()
    def _result(
        self, p: EditProblem, w: torch.Tensor, met: torch.Tensor, steps: torch.Tensor, alpha: torch.Tensor,
        t_start: float, checked: bool = True, values: tuple[dict, dict] | None = None, **extra,
    ) -> EditResult:  # fmt: skip
        """The :class:`EditResult` of latents ``w``: ``G(w)``, and the attribute values measured before and after
        (or ``values``, the critic's predictions: then the result is not verified). Without stop checks
        (``checked`` False) ``met`` is judged on the final images."""
        images = self.generator.synthesis(w)
        if values is None:
            values0 = p.values0
            values1 = measure_attributes(self.guidance, images, p.report) if p.measuring else {}
            if not checked and p.measuring:  # no early stop: judge the final images (transmitter side)
                met = torch.stack([target_met(t, values0[t.attribute], values1[t.attribute], p.strength)
                                   for t in p.targets], 1)  # fmt: skip
        else:
            values0, values1 = values
        return EditResult(
            w_plus=w.detach(), images=images.detach(), met=met.all(1).cpu(), target_met=met.cpu(), steps=steps,
            values_before={a: v.cpu() for a, v in values0.items()},
            values_after={a: v.detach().cpu() for a, v in values1.items()},
            alpha=alpha, seconds=time.perf_counter() - t_start, targets=p.targets, strength=p.strength,
            config=p.config, jecc=p.through is not None, verified=values is None, **extra,
        )  # fmt: skip


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
    rng: torch.Generator | None = None,
) -> EditResult:
    """One-call form of :meth:`Editor.edit` (see :class:`Editor` for the parameters)."""
    ed = Editor(generator, guidance, identity=identity, config=config, directions=directions, support=support)
    return ed.edit(w0, instruction, strength=strength, through_channel=through_channel, rng=rng)

"""Configuration of the semantic editing module: :class:`EditConfig` and its presets.

Two presets ship:

``"paper"``
    StyleCLIP-style latent optimisation (Patashnik et al. 2021, "latent
    optimisation" mode, as used by Editable-DeepSC): start at ``w0``, Adam on the
    whole W+ latent for up to 250 steps with a cosine ramp-down of the learning
    rate, loss = guidance + λ_L2·‖w − w0‖² + λ_ID·identity + λ_keep·(unnamed
    attributes). Each sample stops as soon as its targets are met.
``"fast"``
    Jump along precomputed per-attribute directions in W+ (InterFaceGAN-style,
    ``edsc train directions``) by a step size computed from the sample's
    current attribute value and the direction's fitted slope, times the
    strength, correct the step from the face nets' reading of the result,
    then a few refinement steps of the same loss. Every edit is checked by the
    face nets (the system's default).
``"instant"``
    The same jump, sized from the *latent critic*'s prediction of the
    original's attributes (``edsc train critic``), then Adam in latent space
    against the critic (:mod:`editable_deepsc.editing.starts.critic`): no face
    net and a single synthesis per edit. ``met`` and the attribute values of
    the result are the critic's predictions (``EditResult.verified`` is
    False) unless ``verify=True``, which measures the result with the face
    nets and refines the samples that missed with up to ``steps`` steps of
    the face-net loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from editable_deepsc.errors import BadInput

Schedule = Literal["constant", "cosine"]
Init = Literal["w0", "direction", "critic"]


@dataclass(frozen=True)
class EditConfig:
    """How the editor updates a latent.

    Parameters
    ----------
    preset : str
        Name recorded in results (``"paper"``, ``"fast"``, ``"instant"`` or ``"custom"``).
    steps : int
        Maximum optimisation steps per sample (0: the direction jump only).
    lr : float
        Peak Adam learning rate (W+ units).
    schedule : {"constant", "cosine"}
        Learning-rate schedule: ``"cosine"`` warms up linearly over the first
        ``warmup`` fraction of ``steps`` and ramps down with a half cosine over
        the last ``rampdown`` fraction.
    warmup, rampdown : float
        Fractions of ``steps`` for the schedule (each in [0, 1]).
    lambda_l2 : float
        Weight of ``‖w − w0‖²`` (summed over the whole W+ latent).
    lambda_id : float
        Weight of the identity loss ``1 − cos(id(G(w)), id(G(w0)))``.
    lambda_keep : float
        Weight of the term keeping the attributes the instruction did not name:
        ``Σ_a ((v_a(G(w)) − v_a(G(w0))) / scale_a)²`` over ``keep_attributes``.
    keep_attributes : tuple of str or None
        Attributes the keep term watches (``None``: the editor's default, see
        :data:`editable_deepsc.editing.criteria.KEEP_DEFAULT`); attributes
        named by the instruction, and those coupled to them, are skipped.
    init : {"w0", "direction", "critic"}
        Start at ``w0``, at the direction jump (needs directions), or at the
        result of the latent-critic edit (needs a critic; see ``critic_*``).
    alpha_margin : float
        Overshoot factor on the direction step (1.0: aim exactly at the target).
    alpha_max : float
        Largest direction step, in units of the direction's norm (1.0 = the
        typical distance between two faces' latents along that axis, see
        :class:`~editable_deepsc.editing.directions.AttributeDirections`).
    line_steps : int
        After the direction jump, forward-only corrections of the step size
        (secant updates from the measured attribute value), before any gradient step.
    early_stop : bool
        Stop each sample once all its targets are met (and its identity is kept,
        see ``max_id_loss``).
    max_id_loss : float or None
        A sample only stops once its identity loss is at most this as well
        (``None``: targets alone decide). The built-in ``1 − cos`` of face-api
        descriptors: 0.05 ≈ a descriptor distance of 0.42 (on teacher faces
        distance² ≈ 3.6·(1 − cos); unrelated faces: 1 − cos ≈ 0.08).
    max_id_distance : float or None
        A sample only stops once the editor's ``identity_distance`` (for the
        built-in editor: Euclidean distance of face-api descriptors, the measure
        the benchmarks judge identity by) is at most this as well (``None``: off;
        not used by the shipped presets, see docs/editing.md).
    check_every : int
        Evaluate the stop criterion every this many steps (1: each step).
    layers : tuple of int or None
        W+ layers the editor may change (``None``: all).
    channel_draws : int
        Channel realisations per step for joint editing-channel coding (the
        loss is averaged over them and the stop criterion uses the mean value).
    critic_steps : int
        Adam steps against the latent critic (``init="critic"``).
    critic_lr : float
        Their learning rate (W+ units).
    critic_margin : float
        How far past each goal the critic's prediction must be, in the critic's
        held-out residual stds of that attribute.
    critic_id_weight : float
        Weight of the predicted descriptor change ``‖ê(w) − ê(w0)‖² / 0.1²``.
    critic_keep_weight : float
        Weight of the predicted change of the attributes the instruction does not name.
    verify : bool
        With ``init="critic"``: measure the result with the face nets and refine
        the samples that missed (otherwise ``met`` is the critic's prediction).
    stop_after : int or None
        Stop every sample after this many steps while keeping the learning-rate schedule of
        ``steps`` (a compute cap for benches: the first steps are exactly the preset's);
        ``None``: run up to ``steps``.
    score_threshold : float or None
        For guidance without attribute measurements (e.g. CLIP): a target is met
        once ``guidance.score(G(w), target, G(w0)) >= score_threshold·strength``;
        ``None`` disables early stopping for such guidance.
    """

    preset: str = "custom"
    steps: int = 250
    lr: float = 0.1
    schedule: Schedule = "cosine"
    warmup: float = 0.05
    rampdown: float = 0.25
    lambda_l2: float = 0.008
    lambda_id: float = 0.5
    lambda_keep: float = 0.1
    keep_attributes: tuple[str, ...] | None = None
    init: Init = "w0"
    alpha_margin: float = 1.15
    alpha_max: float = 3.0
    line_steps: int = 2
    max_id_loss: float | None = None
    max_id_distance: float | None = None
    early_stop: bool = True
    check_every: int = 1
    layers: tuple[int, ...] | None = None
    channel_draws: int = 2
    critic_steps: int = 60
    critic_lr: float = 0.05
    critic_margin: float = 1.0
    critic_id_weight: float = 1.0
    critic_keep_weight: float = 0.0
    verify: bool = False
    score_threshold: float | None = None
    stop_after: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if int(self.steps) < 0:
            raise BadInput(f"steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise BadInput(f"lr must be > 0, got {self.lr}")
        if self.schedule not in ("constant", "cosine"):
            raise BadInput(f"unknown schedule {self.schedule!r} (constant or cosine)")
        if self.init not in ("w0", "direction", "critic"):
            raise BadInput(f"unknown init {self.init!r} (w0, direction or critic)")
        if int(self.critic_steps) < 0 or not self.critic_lr > 0:
            raise BadInput("critic_steps must be >= 0 and critic_lr > 0")
        for name in ("critic_margin", "critic_id_weight", "critic_keep_weight"):
            if not getattr(self, name) >= 0:
                raise BadInput(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("warmup", "rampdown"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise BadInput(f"{name} must be in [0, 1], got {v}")
        for name in ("lambda_l2", "lambda_id", "lambda_keep"):
            if getattr(self, name) < 0:
                raise BadInput(f"{name} must be >= 0, got {getattr(self, name)}")
        if int(self.line_steps) < 0:
            raise BadInput(f"line_steps must be >= 0, got {self.line_steps}")
        for name in ("max_id_loss", "max_id_distance"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise BadInput(f"{name} must be >= 0 or None, got {v}")
        if self.stop_after is not None and int(self.stop_after) < 0:
            raise BadInput(f"stop_after must be >= 0 or None, got {self.stop_after}")
        if int(self.check_every) < 1:
            raise BadInput(f"check_every must be >= 1, got {self.check_every}")
        if int(self.channel_draws) < 1:
            raise BadInput(f"channel_draws must be >= 1, got {self.channel_draws}")
        if self.alpha_max <= 0 or self.alpha_margin <= 0:
            raise BadInput("alpha_max and alpha_margin must be > 0")

    def lr_at(self, step: int) -> float:
        """Learning rate at ``step`` (0-based) of :attr:`steps`."""
        if self.schedule == "constant" or self.steps <= 1:
            return self.lr
        import math

        t = step / self.steps
        ramp = 1.0
        if self.rampdown > 0:
            ramp = min(1.0, (1.0 - t) / self.rampdown)
            ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
        if self.warmup > 0:
            ramp *= min(1.0, (t + 1.0 / self.steps) / self.warmup)
        return self.lr * ramp

    def with_(self, **changes) -> "EditConfig":
        """A copy with ``changes`` applied (validated)."""
        return replace(self, **changes)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


PRESETS: dict[str, EditConfig] = {
    "paper": EditConfig(preset="paper", steps=250, lr=0.1, schedule="cosine", init="w0"),
    "fast": EditConfig(
        preset="fast", steps=8, lr=0.1, schedule="constant", init="direction", line_steps=3, alpha_margin=1.05,
        lambda_keep=0.0,
    ),
    "instant": EditConfig(  # margin and identity weight: the best row of `edsc train critic`'s calibration
        preset="instant", steps=8, lr=0.1, schedule="constant", init="critic", alpha_margin=1.05, lambda_keep=0.0,
        critic_margin=2.0, critic_id_weight=1.0,
    ),
}
"""Named presets (see the module docstring)."""


def edit_config(preset: str | EditConfig = "paper", **overrides) -> EditConfig:
    """The preset ``preset`` with ``overrides`` applied.

    Raises
    ------
    BadInput
        For an unknown preset name or an invalid override.
    """
    if isinstance(preset, EditConfig):
        base = preset
    else:
        key = str(preset).strip().lower()
        if key not in PRESETS:
            raise BadInput(f"unknown edit preset {preset!r} (choose from: {', '.join(PRESETS)})")
        base = PRESETS[key]
    unknown = set(overrides) - set(EditConfig.__dataclass_fields__)
    if unknown:
        raise BadInput(f"unknown edit option(s): {', '.join(sorted(unknown))}")
    return replace(base, **overrides) if overrides else base

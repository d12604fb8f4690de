"""One edit call as data: what the start strategies and the refinement loop share.

:class:`EditProblem` holds the editor's parts (generator, guidance, identity
functions, config, directions, critic) and the validated inputs of one
:meth:`~editable_deepsc.editing.editor.Editor.edit` call (``w0``, targets,
strength, channel, rng, layer mask, subspace), plus the helpers every stage
uses: rendering (through the channel for joint editing-channel coding),
averaging over channel draws, the attribute values and met flags, and the
identity bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from editable_deepsc.editing.config import EditConfig
from editable_deepsc.editing.criteria import keep_attributes, target_met
from editable_deepsc.editing.measure import can_measure, measurable_attributes, measure_attributes
from editable_deepsc.editing.subspace import check_subspace
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.guidance.base import Guidance
from editable_deepsc.text.targets import EditTarget

IdentityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``identity(images, reference) -> (N,)`` identity loss (0 = same person), differentiable."""

ThroughChannel = tuple[nn.Module, nn.Module, float]
"""``(codec, channel, snr_db)`` for joint editing-channel coding."""


def layer_mask(layers: tuple[int, ...] | None, num_ws: int, like: torch.Tensor) -> torch.Tensor | None:
    """(1, num_ws, 1) mask of the W+ layers an edit may change (``None``: all), dtype/device of ``like``.

    Raises
    ------
    BadInput
        A layer index outside ``[0, num_ws)``.
    """
    if layers is None:
        return None
    if any(not 0 <= i < num_ws for i in layers):
        raise BadInput(f"layers {layers} out of range for {num_ws} W+ layers")
    m = torch.zeros(1, num_ws, 1, dtype=like.dtype, device=like.device)
    m[:, list(layers)] = 1.0
    return m


@dataclass
class EditProblem:
    """The parts and inputs of one edit (see the module docstring).

    Attributes
    ----------
    w0 : Tensor, float32, (N, num_ws, w_dim)
        Latents to edit, on the generator's device.
    targets : tuple of EditTarget
    strength : float
    through : (codec, channel, snr_db) or None
        Joint editing-channel coding.
    rng : torch.Generator or None
        Randomness of the sampled channel.
    draws : int
        Channel realisations per latent (1 without a channel).
    mask : Tensor (1, num_ws, 1) or None
        Editable layers.
    subspace : Tensor, float32, (num_ws·w_dim, m) or None
        Orthonormal basis the edit stays in.
    named, keep : tuple of str
        Attributes the instruction names; unnamed attributes the keep term watches.
    report : tuple of str
        Attributes measured before and after (``named + keep`` for measuring guidance).
    reference, values0 :
        ``G(w0)`` (N, 3, R, R) and its attribute values, set by :meth:`observe`.
    """

    generator: StyleGenerator
    guidance: Guidance
    config: EditConfig
    identity: IdentityFn | None
    identity_distance: IdentityFn | None
    directions: object | None
    critic: object | None
    w0: torch.Tensor
    targets: tuple[EditTarget, ...]
    strength: float
    through: ThroughChannel | None
    rng: torch.Generator | None
    draws: int
    mask: torch.Tensor | None
    subspace: torch.Tensor | None
    named: tuple[str, ...]
    keep: tuple[str, ...]
    report: tuple[str, ...]
    reference: torch.Tensor | None = None
    values0: dict[str, torch.Tensor] | None = None
    identity_reference: torch.Tensor | None = None
    _id_base: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @classmethod
    def pose(
        cls, parts, w0: torch.Tensor, targets: tuple[EditTarget, ...], strength: float,
        through: ThroughChannel | None, rng: torch.Generator | None, subspace: torch.Tensor | None,
    ) -> "EditProblem":  # fmt: skip
        """The problem of editing ``w0`` (already checked, on the generator's device) with ``parts`` (an
        :class:`~editable_deepsc.editing.editor.Editor`: generator, guidance, config, identity functions,
        directions, critic).

        Raises
        ------
        BadInput
            ``subspace`` not an orthonormal (num_ws·w_dim, m) basis, or config layers out of range.
        """
        cfg, guidance = parts.config, parts.guidance
        if subspace is not None:
            subspace = check_subspace(subspace, w0.shape[1] * w0.shape[2]).to(w0.device)
        measuring = can_measure(guidance)
        named = tuple(dict.fromkeys(t.attribute for t in targets))
        keep = keep_attributes(named, cfg.keep_attributes) if (measuring and cfg.lambda_keep > 0) else ()
        keep = tuple(a for a in keep if a in measurable_attributes(guidance))
        return cls(
            generator=parts.generator, guidance=guidance, config=cfg, identity=parts.identity,
            identity_distance=parts.identity_distance, directions=parts.directions, critic=parts.critic, w0=w0,
            targets=targets, strength=strength, through=through, rng=rng,
            draws=cfg.channel_draws if through is not None else 1,
            mask=layer_mask(cfg.layers, parts.generator.num_ws, w0), subspace=subspace, named=named, keep=keep,
            report=named + keep if measuring else (),
        )  # fmt: skip

    @property
    def measuring(self) -> bool:
        return can_measure(self.guidance)

    def observe(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``G(w0)`` and its attribute values ``{attribute: (N,)}`` (computed once, no gradient)."""
        if self.reference is None:
            with torch.no_grad():
                self.reference = self.generator.synthesis(self.w0)
                values0 = measure_attributes(self.guidance, self.reference, self.report) if self.measuring else {}
                self.values0 = {a: v.detach() for a, v in values0.items()}
        return self.reference, self.values0

    def identity_ref(self, idx: torch.Tensor) -> torch.Tensor:
        """What rows ``idx`` keep their identity against: ``identity_reference`` (e.g. the source photos)
        if given, else ``G(w0)``; repeated per channel draw."""
        src = self.identity_reference if self.identity_reference is not None else self.observe()[0]
        r = src[idx]
        return r.repeat_interleave(self.draws, 0) if self.draws > 1 else r

    def render(self, w: torch.Tensor) -> torch.Tensor:
        """Images of ``w`` (M, num_ws, w_dim): ``G(w)``, or ``draws`` received images per latent for JECC."""
        if self.through is None:
            return self.generator.synthesis(w)
        codec, channel, snr_db = self.through
        w_rep = w.repeat_interleave(self.draws, dim=0)
        return self.generator.synthesis(codec(w_rep, channel, float(snr_db), rng=self.rng))

    def per_sample(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the channel draws of each latent: (M·draws,) -> (M,)."""
        return x.reshape(-1, self.draws).mean(1) if self.draws > 1 else x

    def values_and_met(
        self, images: torch.Tensor, attrs: tuple[str, ...], reference: torch.Tensor, idx: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Attribute values of ``images`` (per sample, mean over channel draws) and per-target met flags (M, T)
        of the rows ``idx`` of the batch."""
        targets, strength = self.targets, self.strength
        if self.measuring:
            vals = {a: self.per_sample(v) for a, v in measure_attributes(self.guidance, images, attrs).items()}
            met = torch.stack(
                [target_met(t, self.values0[t.attribute][idx], vals[t.attribute].detach(), strength) for t in targets],
                1,
            )
            return vals, met
        thr = self.config.score_threshold
        if thr is None:
            return {}, torch.zeros(idx.numel(), len(targets), dtype=torch.bool, device=images.device)
        with torch.no_grad():
            met = torch.stack(
                [self.per_sample(self.guidance.score(images, t, reference)) >= thr * t.strength * strength
                 for t in targets],
                1,
            )  # fmt: skip
        return {}, met

    @property
    def identity_bounded(self) -> bool:
        """Whether the config bounds identity with a function the editor has."""
        cfg = self.config
        return (self.identity is not None and cfg.max_id_loss is not None) or (
            self.identity_distance is not None and cfg.max_id_distance is not None
        )

    def identity_loss(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Per-sample identity loss (M,) of ``images`` against ``reference`` (mean over channel draws)."""
        return self.per_sample(self.identity(images, reference).reshape(-1))

    def identity_kept(
        self, images: torch.Tensor, reference: torch.Tensor, id_loss: torch.Tensor | None = None,
        idx: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """(M,) bool on CPU: every identity bound of the config holds (all True when none applies).

        ``id_loss``: the per-sample identity loss of ``images`` if already computed. With an
        ``identity_reference`` (the source photos) the bounds are relative: rows ``idx`` may move
        at most the bound *beyond* where ``G(w0)`` already stands against the photo (an inversion is
        never at distance 0 from its photo).
        """
        cfg = self.config
        ok = torch.ones(images.shape[0] // self.draws, dtype=torch.bool)
        base_loss, base_dist = self._identity_baseline(idx)
        if self.identity is not None and cfg.max_id_loss is not None:
            if id_loss is None:
                id_loss = self.identity_loss(images, reference)
            ok &= id_loss.detach().cpu() <= cfg.max_id_loss + base_loss
        if self.identity_distance is not None and cfg.max_id_distance is not None:
            d = self.per_sample(self.identity_distance(images, reference).detach().reshape(-1)).cpu()
            ok &= d <= cfg.max_id_distance + base_dist
        return ok

    def _identity_baseline(self, idx: torch.Tensor | None) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """Identity loss and distance of ``G(w0)`` to ``identity_reference`` for rows ``idx`` (0 without one)."""
        if self.identity_reference is None or idx is None:
            return 0.0, 0.0
        if self._id_base is None:
            ref, _ = self.observe()
            with torch.no_grad():
                loss = (self.identity(ref, self.identity_reference).reshape(-1).cpu()
                        if self.identity is not None else torch.zeros(len(ref)))
                dist = (self.identity_distance(ref, self.identity_reference).reshape(-1).cpu()
                        if self.identity_distance is not None else torch.zeros(len(ref)))
            self._id_base = (loss.float(), dist.float())
        return self._id_base[0][idx.cpu()], self._id_base[1][idx.cpu()]

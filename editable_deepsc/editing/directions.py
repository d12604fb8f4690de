"""Per-attribute linear directions in W+ (InterFaceGAN-style), for the fast and instant editing presets.

:class:`AttributeDirections` holds one vector ``d_a`` (num_ws, w_dim) per
attribute, scaled so that a step ``α = 1`` moves a face by one typical spread
along that axis, with the calibrated slope of the attribute (on the regression
scale of :func:`regression_target`) per unit ``α``. They are fitted by ``edsc
train directions`` (:mod:`editable_deepsc.train.directions`: a ridge regression
of each attribute's face-net reading on the latent, the slope calibrated by
moving held-out latents, and by default bent *identity-aware*, away from what
changes the face descriptor) and stored as safetensors in the zoo
(``<generator>-directions``) with a card naming the command and the generator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.zoo import registry

#: safetensors ``format`` tag of a directions file.
FORMAT = "edsc-attribute-directions"


def regression_target(attribute: str, values: torch.Tensor) -> torch.Tensor:
    """What the direction is fitted to: ``logit(p)`` (p clipped to [0.01, 0.99]) for probabilities, else the value."""
    if attribute in PROBABILITY_ATTRIBUTES:
        p = values.clamp(0.01, 0.99)
        return torch.log(p) - torch.log1p(-p)
    return values


@dataclass
class AttributeDirections:
    """Directions ``d_a`` (num_ws, w_dim) in W+ with their calibrated slopes.

    Attributes
    ----------
    generator : str
        Name of the generator the directions belong to.
    num_ws, w_dim : int
    vectors : dict of str to Tensor (num_ws, w_dim) float32
        ``w + α·d_a`` edits attribute ``a``; ``|d_a|`` is the latents' spread along it.
    slopes : dict of str to float
        Change of the regression target (logit for probabilities) per unit α,
        measured by moving held-out latents.
    stats : dict of str to dict
        Per attribute: ``r2`` (held-out fit), ``fit_slope``, ``value_mean``, ``value_std``.
    meta : dict
        How the directions were made (command, seed, n, mode).
    whole : dict of str to Tensor (w_dim,) float32
        Group-restricted fits (``mode="groups"``) only: the unrestricted w direction each vector
        was cut from, applied to every style it has the same slope (:meth:`unrestricted`).
    """

    generator: str
    num_ws: int
    w_dim: int
    vectors: dict[str, torch.Tensor]
    slopes: dict[str, float]
    stats: dict[str, dict] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    whole: dict[str, torch.Tensor] = field(default_factory=dict)

    def __contains__(self, attribute: str) -> bool:
        return attribute in self.vectors

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.vectors)

    def vector(self, attribute: str) -> torch.Tensor:
        """``d_a``, float32 (num_ws, w_dim)."""
        if attribute not in self.vectors:
            raise BadInput(f"no direction for {attribute!r} (have: {', '.join(self.vectors)})")
        return self.vectors[attribute]

    def slope(self, attribute: str) -> float:
        return float(self.slopes[attribute])

    # -------------------------------------------------------------- storage
    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"dir.{a}": v.float().contiguous() for a, v in self.vectors.items()}
        out.update({f"slope.{a}": torch.tensor(float(s)) for a, s in self.slopes.items()})
        out.update({f"whole.{a}": v.float().contiguous() for a, v in self.whole.items()})
        return out

    def unrestricted(self) -> "AttributeDirections":
        """The whole-W+ directions the group-restricted ones were cut from (same slopes), for comparisons.

        Raises
        ------
        BadInput
            These directions keep no unrestricted vectors (not a group-restricted fit).
        """
        if not self.whole:
            raise BadInput("these directions keep no unrestricted vectors (not fitted with --mode groups)")
        vectors = {a: v[None].repeat(self.num_ws, 1) for a, v in self.whole.items()}
        return AttributeDirections(self.generator, self.num_ws, self.w_dim, vectors,
                                   {a: self.slopes[a] for a in vectors}, {}, {**self.meta, "mode": "whole"})

    def metadata(self) -> dict[str, str]:
        """Safetensors header metadata: format tag, generator, shape, stats and meta as JSON."""
        return {
            "format": FORMAT,
            "generator": self.generator,
            "num_ws": str(self.num_ws),
            "w_dim": str(self.w_dim),
            "stats": json.dumps(self.stats),
            "meta": json.dumps(self.meta),
        }

    def save(self, path: str | Path) -> str:
        """Write safetensors (stats and meta as JSON metadata); return the sha256."""
        return registry.save_state_dict(self.state_dict(), path, metadata=self.metadata())

    @classmethod
    def load(cls, name_or_path: str | Path) -> "AttributeDirections":
        """Load by zoo name (e.g. ``"edsc-faces64-directions"``) or path (sha256-checked when registered)."""
        from editable_deepsc.zoo import loader

        return loader.load(name_or_path, kind="directions")

    @classmethod
    def from_card(cls, card: registry.ModelCard, state: dict[str, torch.Tensor]) -> "AttributeDirections":
        """Zoo builder of kind ``directions``: vectors and slopes from the tensors, the rest from the metadata."""
        md = registry.file_metadata(card.path)
        if md.get("format") != FORMAT:
            raise CheckpointError(f"{card.path.name} is not an attribute-directions file")
        vectors = {k[4:]: v for k, v in state.items() if k.startswith("dir.")}
        slopes = {k[6:]: float(v) for k, v in state.items() if k.startswith("slope.")}
        whole = {k[6:]: v for k, v in state.items() if k.startswith("whole.")}
        return cls(
            generator=md["generator"],
            num_ws=int(md["num_ws"]),
            w_dim=int(md["w_dim"]),
            vectors=vectors,
            slopes=slopes,
            stats=json.loads(md.get("stats", "{}")),
            meta=json.loads(md.get("meta", "{}")),
            whole=whole,
        )


def directions_name(generator_name: str) -> str:
    """Zoo name of a generator's directions: ``<generator>-directions``."""
    return f"{generator_name}-directions"


def load_directions(generator_name: str) -> AttributeDirections | None:
    """The registered directions of ``generator_name``, or ``None`` if none are registered."""
    name = directions_name(generator_name)
    if registry.find_card(name) is None:
        return None
    return AttributeDirections.load(name)

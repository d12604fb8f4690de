"""A latent critic: the face nets' readings of ``G(w)`` predicted from the W+ latent alone.

The ``"instant"`` editing preset never runs the face nets: it optimises the latent
against this small MLP, which maps a W+ latent (N, num_ws, w_dim) to

* every attribute of :data:`CRITIC_ATTRIBUTES` on the *regression scale* of
  :func:`~editable_deepsc.editing.directions.regression_target` (``logit p``
  for probabilities, the value in its unit otherwise), and
* the 128-d face-api identity descriptor,

as :class:`~editable_deepsc.editing.face_guidance.FaceNetGuidance` would read
them from the synthesised face. It is trained (``edsc train critic``) on
generator samples from the teacher's *training* seeds, each with edited
variants (jumps along the attribute directions, random W+ offsets), scored by
the face nets (:mod:`editable_deepsc.train.critic_data`); the loss also matches
the descriptor *distances* between a face and its variants, which is what the
identity bound of an edit uses (:mod:`editable_deepsc.train.critic`).

Its held-out errors (residual standard deviation per attribute, and of the
base-to-variant descriptor distance) are stored with the weights; the editor
aims past the goal by a margin in these units, so that the real face nets
still see the target met.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.text.targets import ATTRIBUTES
from editable_deepsc.zoo import registry

CRITIC_ATTRIBUTES: tuple[str, ...] = ATTRIBUTES
"""Attributes the critic predicts (every attribute the parser knows)."""

EMBED_DIM = 128
"""Size of the face-api identity descriptor."""

FORMAT = "edsc-latent-critic"


def to_value(attribute: str, g: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`regression_target`: ``sigmoid`` for probabilities, identity otherwise."""
    return torch.sigmoid(g) if attribute in PROBABILITY_ATTRIBUTES else g


class LatentCritic(nn.Module):
    """MLP from a flattened W+ latent to attribute readings and the identity descriptor.

    Parameters
    ----------
    num_ws, w_dim : int
        W+ shape of the generator it belongs to.
    hidden : int
        Width of the hidden layers.
    depth : int
        Number of hidden layers.
    dropout : float
        Dropout after each hidden layer while training (the readings are noisy
        functions of the latent: without it the MLP memorises them).
    attributes : tuple of str
        Output attributes (regression scale, see the module docstring).

    Attributes
    ----------
    residual_std : Tensor, float32, (A + 1,)
        Held-out residual standard deviation of each attribute (regression scale)
        and, last, of the base-to-variant descriptor distance (filled by fitting).
    """

    def __init__(
        self, num_ws: int, w_dim: int, hidden: int = 512, depth: int = 3,
        attributes: tuple[str, ...] = CRITIC_ATTRIBUTES, dropout: float = 0.3,
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_ws, self.w_dim, self.hidden, self.depth = int(num_ws), int(w_dim), int(hidden), int(depth)
        self.dropout = float(dropout)
        self.attributes = tuple(attributes)
        d_in, n_out = self.num_ws * self.w_dim, len(self.attributes) + EMBED_DIM
        self.register_buffer("w_mean", torch.zeros(d_in))
        self.register_buffer("w_std", torch.ones(d_in))
        self.register_buffer("y_mean", torch.zeros(n_out))
        self.register_buffer("y_std", torch.ones(n_out))
        self.register_buffer("residual_std", torch.zeros(len(self.attributes) + 1))
        layers: list[nn.Module] = []
        width = d_in
        for _ in range(self.depth):
            layers += [nn.Linear(width, self.hidden), nn.SiLU(), nn.Dropout(self.dropout)]
            width = self.hidden
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, w_plus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the readings of ``G(w_plus)``.

        Parameters
        ----------
        w_plus : Tensor, float32, (N, num_ws, w_dim)

        Returns
        -------
        g : Tensor, float32, (N, A)
            Attributes on the regression scale, in :attr:`attributes` order.
        embedding : Tensor, float32, (N, 128)
            Face-api identity descriptor.
        """
        if w_plus.dim() != 3 or tuple(w_plus.shape[1:]) != (self.num_ws, self.w_dim):
            raise BadInput(f"the critic takes W+ latents (N, {self.num_ws}, {self.w_dim}), got {tuple(w_plus.shape)}")
        x = (w_plus.reshape(w_plus.shape[0], -1) - self.w_mean) / self.w_std
        y = self.net(x) * self.y_std + self.y_mean
        a = len(self.attributes)
        return y[:, :a], y[:, a:]

    def index(self, attribute: str) -> int:
        """Column of ``attribute`` in the critic's output."""
        try:
            return self.attributes.index(attribute)
        except ValueError:
            raise BadInput(f"the critic does not predict {attribute!r}") from None

    def values(self, w_plus: torch.Tensor, attributes: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Predicted attribute values in their units (probabilities for expressions and gender), each (N,)."""
        g, _ = self(w_plus)
        return {a: to_value(a, g[:, self.index(a)]) for a in attributes}

    def margin(self, attribute: str) -> float:
        """Held-out residual std of ``attribute`` on the regression scale."""
        return float(self.residual_std[self.index(attribute)])

    @property
    def distance_error(self) -> float:
        """Held-out residual std of the predicted descriptor distance between a face and its variant."""
        return float(self.residual_std[-1])

    def config(self) -> dict:
        return {"num_ws": self.num_ws, "w_dim": self.w_dim, "hidden": self.hidden, "depth": self.depth,
                "dropout": self.dropout, "attributes": list(self.attributes)}  # fmt: skip

    @classmethod
    def from_card(cls, card: registry.ModelCard, state: dict[str, torch.Tensor]) -> "LatentCritic":
        """Zoo builder of kind ``latent-critic``: configuration, generator and fit statistics from the metadata."""
        md = registry.file_metadata(card.path)
        if md.get("format") != FORMAT:
            raise CheckpointError(f"{card.path.name} is not a latent-critic file")
        try:
            cfg = json.loads(md["config"])
            critic = cls(cfg["num_ws"], cfg["w_dim"], cfg["hidden"], cfg["depth"], tuple(cfg["attributes"]),
                         cfg.get("dropout", 0.0))
            critic.load_state_dict(state)
        except Exception as e:  # noqa: BLE001 - malformed file
            raise CheckpointError(f"cannot load latent critic {card.path.name}: {e.__class__.__name__}: {e}") from None
        critic.generator_name = md.get("generator", "")
        critic.stats = json.loads(md.get("stats", "{}"))
        return critic.eval().requires_grad_(False)


# ---------------------------------------------------------------------- storage


def critic_name(generator_name: str) -> str:
    """Zoo name of a generator's latent critic: ``<generator>-critic``."""
    return f"{generator_name}-critic"


def save_metadata(critic: LatentCritic, generator: str, stats: dict, meta: dict) -> dict[str, str]:
    return {"format": FORMAT, "generator": generator, "config": json.dumps(critic.config()),
            "stats": json.dumps(stats), "meta": json.dumps(meta)}  # fmt: skip


def load_critic(name_or_path: str | Path) -> LatentCritic:
    """Load a critic by zoo name (e.g. ``"edsc-faces64-critic"``, sha256-checked) or path.

    Raises
    ------
    CheckpointError
        Not a latent-critic file, or its tensors do not fit its configuration.
    """
    from editable_deepsc.zoo import loader

    return loader.load(name_or_path, kind="latent-critic")


def find_critic(generator_name: str) -> LatentCritic | None:
    """The registered critic of ``generator_name``, or ``None`` if none is registered."""
    name = critic_name(generator_name)
    if registry.find_card(name) is None:
        return None
    return load_critic(name)

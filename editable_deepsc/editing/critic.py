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
the face nets; the loss also matches the descriptor *distances* between a face
and its variants, which is what the identity bound of an edit uses.

Its held-out errors (residual standard deviation per attribute, and of the
base-to-variant descriptor distance) are stored with the weights; the editor
aims past the goal by a margin in these units, so that the real face nets
still see the target met.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES
from editable_deepsc.editing.directions import regression_target
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import make_generator
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


# ---------------------------------------------------------------------- data


@dataclass
class CriticData:
    """Scored groups of latents: a base face and its edited variants.

    Attributes
    ----------
    w_plus : Tensor, float32, (B, V, num_ws, w_dim)
        Group ``b``: index 0 the base latent, 1..V-1 its variants.
    targets : Tensor, float32, (B, V, A)
        Face-net attributes on the regression scale.
    embedding : Tensor, float32, (B, V, 128)
        Face-api descriptors.
    """

    w_plus: torch.Tensor
    targets: torch.Tensor
    embedding: torch.Tensor
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.w_plus.shape[0])

    def split(self, n_val: int) -> tuple["CriticData", "CriticData"]:
        """(train, validation): the last ``n_val`` groups are held out."""
        cut = len(self) - n_val
        a = CriticData(self.w_plus[:cut], self.targets[:cut], self.embedding[:cut], self.meta)
        b = CriticData(self.w_plus[cut:], self.targets[cut:], self.embedding[cut:], self.meta)
        return a, b


@torch.no_grad()
def critic_groups(generator: StyleGenerator, directions, n: int, variants: int, seed: int) -> torch.Tensor:
    """Base latents of training-seed faces and edited variants, (n, 1 + variants, num_ws, w_dim).

    The base is ``broadcast(mapping(z))`` of a teacher training seed (``z ~ N(0, I)``
    for a generator with another ``z_dim``), half of the
    time with a small independent offset per layer (as inverted photos have).
    Variant ``j`` cycles through four kinds of move: a jump along one attribute
    direction (``α ~ U(−3.5, 3.5)``), along two at once (``α ~ U(−2.5, 2.5)``
    each), one jump plus an isotropic offset, and an isotropic per-layer offset
    alone — the region the editor visits.
    """
    from editable_deepsc.generator.teacher import Z_DIM, face_latents, random_train_seeds

    g = make_generator(seed)
    dev = next(generator.parameters()).device
    if generator.z_dim == Z_DIM:  # the teacher's faces (training seeds), as the generator was distilled on
        z = face_latents(random_train_seeds(n, g))
    else:
        z = torch.randn(n, generator.z_dim, generator=g)
    base = generator.broadcast(generator.mapping(z.to(dev))).cpu()
    spread = base.std(0, keepdim=True).mean()
    jitter = (torch.rand(n, generator=g) < 0.5).float()[:, None, None]
    base = base + jitter * 0.1 * spread * torch.randn(base.shape, generator=g)
    dirs = torch.stack([directions.vector(a) for a in directions.attributes]) if directions is not None else None
    out = [base]
    for j in range(variants):
        kind = j % 4
        step = torch.zeros_like(base)
        if dirs is not None and kind in (0, 1, 2):
            picks = 2 if kind == 1 else 1
            top = 2.5 if kind == 1 else 3.5
            for _ in range(picks):
                which = torch.randint(0, dirs.shape[0], (n,), generator=g)
                alpha = (torch.rand(n, generator=g) * 2 - 1) * top
                step = step + alpha[:, None, None] * dirs[which]
        if kind in (2, 3) or dirs is None:
            noise = torch.randn(base.shape, generator=g)
            scale = torch.rand(n, 1, 1, generator=g) * (0.4 if kind == 3 else 0.25) * spread
            step = step + scale * noise
        out.append(base + step)
    return torch.stack(out, 1).contiguous()


@torch.no_grad()
def score_groups(
    generator: StyleGenerator, guidance, w_groups: torch.Tensor, attributes: tuple[str, ...] = CRITIC_ATTRIBUTES,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Face-net targets of ``G(w)`` for latents (B, V, num_ws, w_dim): (B, V, A) regression scale, (B, V, 128)."""
    dev = next(generator.parameters()).device
    flat = w_groups.reshape(-1, *w_groups.shape[2:])
    ys, es = [], []
    for c in flat.split(batch_size):
        img = generator.synthesis(c.to(dev))
        vals = guidance.measure(img, attributes)
        ys.append(torch.stack([regression_target(a, vals[a].float()) for a in attributes], 1).cpu())
        es.append(guidance.embedding(img).float().cpu())
    b, v = w_groups.shape[:2]
    return torch.cat(ys).reshape(b, v, -1), torch.cat(es).reshape(b, v, -1)


# ---------------------------------------------------------------------- fitting


def critic_loss(
    critic: LatentCritic, w: torch.Tensor, y: torch.Tensor, e: torch.Tensor, dist_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss on a batch of groups: standardised attribute and descriptor MSE + base-to-variant distance MSE.

    ``w`` (B, V, num_ws, w_dim), ``y`` (B, V, A), ``e`` (B, V, 128).
    """
    b, v = w.shape[:2]
    g_hat, e_hat = critic(w.reshape(b * v, *w.shape[2:]))
    a = len(critic.attributes)
    y_std, e_std = critic.y_std[:a], critic.y_std[a:]
    l_attr = ((g_hat - y.reshape(b * v, -1)) / y_std).pow(2).mean()
    l_emb = ((e_hat - e.reshape(b * v, -1)) / e_std).pow(2).mean()
    e_hat = e_hat.reshape(b, v, -1)
    d_hat = (e_hat[:, 1:] - e_hat[:, :1]).norm(dim=-1)
    d = (e[:, 1:] - e[:, :1]).norm(dim=-1)
    l_dist = (d_hat - d).pow(2).mean() / d.var().clamp_min(1e-6)
    loss = l_attr + l_emb + dist_weight * l_dist
    return loss, {"attr": float(l_attr.detach()), "emb": float(l_emb.detach()), "dist": float(l_dist.detach())}


@torch.no_grad()
def critic_errors(critic: LatentCritic, data: CriticData, batch_size: int = 256) -> dict:
    """Held-out quality: per-attribute R² and residual std, descriptor-distance residual std and correlation."""
    g_all, e_all = [], []
    for w in data.w_plus.split(batch_size):
        b, v = w.shape[:2]
        g_hat, e_hat = critic(w.reshape(b * v, *w.shape[2:]))
        g_all.append(g_hat.reshape(b, v, -1))
        e_all.append(e_hat.reshape(b, v, -1))
    g_hat, e_hat = torch.cat(g_all), torch.cat(e_all)
    y = data.targets
    res = (g_hat - y).reshape(-1, y.shape[-1])
    var = y.reshape(-1, y.shape[-1]).var(0).clamp_min(1e-9)
    d_hat = (e_hat[:, 1:] - e_hat[:, :1]).norm(dim=-1).flatten()
    d = (data.embedding[:, 1:] - data.embedding[:, :1]).norm(dim=-1).flatten()
    corr = torch.corrcoef(torch.stack([d_hat, d]))[0, 1]
    out = {
        "attributes": {
            a: {"r2": float(1 - res[:, i].pow(2).mean() / var[i]), "residual_std": float(res[:, i].std())}
            for i, a in enumerate(critic.attributes)
        },
        "distance": {"residual_std": float((d_hat - d).std()), "corr": float(corr),
                     "mean": float(d.mean()), "bias": float((d_hat - d).mean())},
    }  # fmt: skip
    return out


def set_normalisation(critic: LatentCritic, data: CriticData) -> None:
    """Fit the critic's input and output standardisation on ``data`` (in place)."""
    w = data.w_plus.reshape(-1, critic.num_ws * critic.w_dim)
    y = torch.cat([data.targets, data.embedding], -1).reshape(-1, critic.y_mean.numel())
    critic.w_mean.copy_(w.mean(0))
    critic.w_std.copy_(w.std(0).clamp_min(1e-4))
    critic.y_mean.copy_(y.mean(0))
    critic.y_std.copy_(y.std(0).clamp_min(1e-4))


def set_residuals(critic: LatentCritic, errors: dict) -> None:
    """Store held-out residual stds (from :func:`critic_errors`) in the critic."""
    r = [errors["attributes"][a]["residual_std"] for a in critic.attributes] + [errors["distance"]["residual_std"]]
    critic.residual_std.copy_(torch.tensor(r))


# ---------------------------------------------------------------------- storage


def critic_name(generator_name: str) -> str:
    """Zoo name of a generator's latent critic: ``<generator>-critic``."""
    return f"{generator_name}-critic"


def save_metadata(critic: LatentCritic, generator: str, stats: dict, meta: dict) -> dict[str, str]:
    return {"format": FORMAT, "generator": generator, "config": json.dumps(critic.config()),
            "stats": json.dumps(stats), "meta": json.dumps(meta)}  # fmt: skip


def load_critic(name_or_path: str | Path) -> LatentCritic:
    """Load a critic by zoo name (``"edsc-faces64-critic"``, sha256-checked) or path.

    Raises
    ------
    CheckpointError
        Not a latent-critic file, or its tensors do not fit its configuration.
    """
    state, md = registry.load_tagged(name_or_path, FORMAT, "a latent-critic file")
    try:
        cfg = json.loads(md["config"])
        critic = LatentCritic(cfg["num_ws"], cfg["w_dim"], cfg["hidden"], cfg["depth"], tuple(cfg["attributes"]),
                              cfg.get("dropout", 0.0))
        critic.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 - malformed file
        raise CheckpointError(f"cannot load latent critic {Path(name_or_path).name}: {e.__class__.__name__}: {e}") from None
    critic.generator_name = md.get("generator", "")
    critic.stats = json.loads(md.get("stats", "{}"))
    return critic.eval().requires_grad_(False)


def find_critic(generator_name: str) -> LatentCritic | None:
    """The registered critic of ``generator_name``, or ``None`` if none is registered."""
    name = critic_name(generator_name)
    if not (registry.CARDS_DIR / f"{name}.json").is_file():
        return None
    return load_critic(name)

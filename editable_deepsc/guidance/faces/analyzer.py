"""Batched, differentiable face analysis with the converted face-api nets.

:class:`FaceAnalyzer` maps images (N, 3, H, W) in [-1, 1] — 64×64 generator faces or aligned
photo crops — to an identity embedding, age, gender, expression probabilities, 68 landmarks and
the landmark-derived attributes of :mod:`~editable_deepsc.guidance.faces.geometry`. Every output
is differentiable with respect to the images (the nets' weights are frozen).

Images are padded to a square (black, as face-api does) and resized inside: enlarged bicubically
(64 → 150 for recognition, 64 → 112 for the others), shrunk with face-api's own bilinear resize
(bit-exact with the original tfjs models).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces import geometry
from editable_deepsc.guidance.faces.age_gender import AgeGenderNet
from editable_deepsc.guidance.faces.expression import FACEAPI_EXPRESSION_LABELS, FaceExpressionNet
from editable_deepsc.guidance.faces.landmarks import FaceLandmark68Net
from editable_deepsc.guidance.faces.layers import prepare_input
from editable_deepsc.guidance.faces.recognition import FaceRecognitionNet
from editable_deepsc.guidance.faces.weights import load_into

HEADS: tuple[str, ...] = ("recognition", "landmarks", "expression", "age_gender")
"""The analysis nets an analyzer can run."""


@dataclass
class FaceAnalysis:
    """What :meth:`FaceAnalyzer.forward` returns for a batch of N faces.

    Fields of heads that were not requested are ``None``. All tensors are float32 and keep the
    autograd graph of the input images.

    Attributes
    ----------
    embedding : torch.Tensor or None
        (N, 128) identity descriptor (not normalised; face-api: same person if Euclidean < 0.6).
    age : torch.Tensor or None
        (N,) apparent age in years.
    gender_logit : torch.Tensor or None
        (N,) ``logit P(male)``.
    expression_logits : torch.Tensor or None
        (N, 7) logits in :data:`~.expression.FACEAPI_EXPRESSION_LABELS` order.
    landmarks : torch.Tensor or None
        (N, 68, 2) ``(x, y)`` in pixels of the input images (0 = left/top edge).
    """

    embedding: torch.Tensor | None = None
    age: torch.Tensor | None = None
    gender_logit: torch.Tensor | None = None
    expression_logits: torch.Tensor | None = None
    landmarks: torch.Tensor | None = None
    mirrored: bool = False
    _geometry: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def p_male(self) -> torch.Tensor:
        """(N,) probability that the face is male."""
        return torch.sigmoid(self.require("gender_logit"))

    @property
    def expressions(self) -> torch.Tensor:
        """(N, 7) expression probabilities (softmax of :attr:`expression_logits`)."""
        return self.require("expression_logits").softmax(dim=-1)

    def expression(self, label: str) -> torch.Tensor:
        """(N,) probability of expression ``label`` (e.g. ``"happy"``)."""
        return self.expressions[:, _expression_index(label)]

    def expression_logit(self, label: str) -> torch.Tensor:
        """(N,) ``logit P(label)`` = log p − log(1 − p), computed stably from the 7 logits."""
        return expression_logit(self.require("expression_logits"), label)

    def geometry(self, name: str) -> torch.Tensor:
        """(N,) landmark-derived attribute ``name`` (see :data:`~.geometry.ATTRIBUTE_UNITS`)."""
        if name not in geometry.GEOMETRY_FUNCTIONS:
            raise BadInput(f"unknown landmark attribute {name!r} (known: {', '.join(geometry.GEOMETRY_FUNCTIONS)})")
        if name not in self._geometry:
            self._geometry[name] = geometry.GEOMETRY_FUNCTIONS[name](self.require("landmarks"))
        return self._geometry[name]

    def require(self, attr: str) -> torch.Tensor:
        """Field ``attr`` (e.g. ``"age"``), or :class:`BadInput` if its net was not run."""
        value = getattr(self, attr)
        if value is None:
            raise BadInput(f"this analysis has no {attr} (its net was not run)")
        return value

    @torch.no_grad()
    def to_json(self, index: int = 0) -> dict:
        """Plain-number summary of face ``index`` (what ``edsc analyze --json`` prints)."""
        out: dict = {}
        if self.embedding is not None:
            out["identity_embedding_norm"] = float(self.embedding[index].norm())
        if self.age is not None:
            out["age_years"] = float(self.age[index])
        if self.gender_logit is not None:
            p = float(self.p_male[index])
            out["gender"] = {"p_male": p, "label": "male" if p > 0.5 else "female"}
        if self.expression_logits is not None:
            probs = self.expressions[index].tolist()
            out["expressions"] = dict(zip(FACEAPI_EXPRESSION_LABELS, probs))
        if self.landmarks is not None:
            g = {name: float(self.geometry(name)[index]) for name in geometry.GEOMETRY_FUNCTIONS}
            out["pose_degrees"] = {k: g[k] for k in ("yaw", "pitch", "roll")}
            out["landmark_attributes"] = {k: g[k] for k in ("mouth_open", "eyes_open", "smile_width")}
        out["mirror_averaged"] = self.mirrored
        return out


def _expression_index(label: str) -> int:
    if label not in FACEAPI_EXPRESSION_LABELS:
        raise BadInput(f"unknown expression {label!r} (known: {', '.join(FACEAPI_EXPRESSION_LABELS)})")
    return FACEAPI_EXPRESSION_LABELS.index(label)


def expression_logit(logits: torch.Tensor, label: str) -> torch.Tensor:
    """``logit P(label)`` from (N, 7) expression logits, (N,), stable for p near 0 or 1."""
    k = _expression_index(label)
    others = torch.cat([logits[:, :k], logits[:, k + 1 :]], dim=1)
    return logits[:, k] - torch.logsumexp(others, dim=1)


class FaceAnalyzer(nn.Module):
    """The face-api nets behind one batched, differentiable call.

    Parameters
    ----------
    heads : sequence of str
        Which nets to load and run by default (subset of :data:`HEADS`); each is loaded from the
        zoo on first use, so an analyzer that only computes embeddings never loads the others.
    mirror : bool
        Default for :meth:`forward`'s ``mirror``: also analyse the horizontally flipped images and
        average (embedding, age, gender and expression logits; landmarks flipped back with
        :func:`~.geometry.mirror_landmarks`, so yaw and roll are sign-corrected). Halves the
        noise of age/gender on 64×64 faces at twice the cost.
    resize : {"auto", "tf", "bicubic"}
        How inputs are brought to the nets' sizes (see :func:`~.layers.prepare_input`).

    Examples
    --------
    >>> analyzer = FaceAnalyzer()
    >>> out = analyzer(faces)                       # faces: (N, 3, 64, 64) in [-1, 1]
    >>> out.expression("happy"), out.age, out.geometry("yaw")
    """

    def __init__(self, heads: tuple[str, ...] | list[str] = HEADS, mirror: bool = False, resize: str = "auto"):
        super().__init__()
        unknown = set(heads) - set(HEADS)
        if unknown:
            raise BadInput(f"unknown face-net head(s) {sorted(unknown)} (known: {', '.join(HEADS)})")
        if resize not in ("auto", "tf", "bicubic"):
            raise BadInput(f"resize must be 'auto', 'tf' or 'bicubic', got {resize!r}")
        self.heads = tuple(heads)
        self.mirror = mirror
        self.resize = resize
        self.nets = nn.ModuleDict()
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)  # follows .to(device)

    def net(self, head: str) -> nn.Module:
        """The (frozen, eval-mode) net of ``head``, loaded from the zoo on first use."""
        if head not in HEADS:
            raise BadInput(f"unknown face-net head {head!r} (known: {', '.join(HEADS)})")
        if head not in self.nets:
            module = {
                "recognition": FaceRecognitionNet,
                "landmarks": FaceLandmark68Net,
                "expression": FaceExpressionNet,
                "age_gender": AgeGenderNet,
            }[head]()
            self.nets[head] = load_into(module, head).to(self._device_probe.device)
        return self.nets[head]

    def train(self, mode: bool = True) -> "FaceAnalyzer":
        """The nets always stay in eval mode (frozen statistics)."""
        super().train(mode)
        for m in self.nets.values():
            m.eval()
        return self

    def _input(self, images: torch.Tensor, size: int) -> torch.Tensor:
        return prepare_input(images, size, resize=self.resize)

    def embedding(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] → (N, 128) identity descriptor (one pass, no mirroring)."""
        net = self.net("recognition")
        return net(self._input(images, net.input_size))

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] → (N, 68, 2) landmarks ``(x, y)`` in pixels of the input.

        Follows face-api: the net sees the image padded to a centred square, and its outputs are
        mapped back through the padding (using the unrounded half-difference, as face-api does).
        """
        net = self.net("landmarks")
        h, w = images.shape[-2:]
        rel = net(self._input(images, net.input_size))  # fractions of the padded square
        side = float(max(h, w))
        pad_x = (side - w) / 2 if w < h else 0.0
        pad_y = (side - h) / 2 if h < w else 0.0
        return torch.stack([rel[..., 0] * side - pad_x, rel[..., 1] * side - pad_y], dim=-1)

    def expression_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] → (N, 7) expression logits."""
        net = self.net("expression")
        return net(self._input(images, net.input_size))

    def age_gender(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) in [-1, 1] → ``(age (N,) years, logit P(male) (N,))``."""
        net = self.net("age_gender")
        age, logits = net(self._input(images, net.input_size))
        return age, logits[:, 0] - logits[:, 1]

    def _single(self, images: torch.Tensor, heads: tuple[str, ...]) -> FaceAnalysis:
        out = FaceAnalysis()
        if "recognition" in heads:
            out.embedding = self.embedding(images)
        if "landmarks" in heads:
            out.landmarks = self.landmarks(images)
        if "expression" in heads:
            out.expression_logits = self.expression_logits(images)
        if "age_gender" in heads:
            out.age, out.gender_logit = self.age_gender(images)
        return out

    def forward(
        self, images: torch.Tensor, heads: tuple[str, ...] | list[str] | None = None, mirror: bool | None = None
    ) -> FaceAnalysis:
        """Analyse a batch of faces.

        Parameters
        ----------
        images : torch.Tensor
            (N, 3, H, W) float32 in [-1, 1]; any size (64×64 generator faces or aligned crops).
        heads : sequence of str, optional
            Nets to run (default: the analyzer's ``heads``).
        mirror : bool, optional
            Average with the mirrored images (default: the analyzer's ``mirror``).

        Returns
        -------
        FaceAnalysis
        """
        _check_images(images)
        heads = tuple(self.heads if heads is None else heads)
        mirror = self.mirror if mirror is None else mirror
        if not mirror:
            return self._single(images, heads)
        n = images.shape[0]
        both = self._single(torch.cat([images, images.flip(-1)]), heads)
        out = FaceAnalysis(mirrored=True)
        for name in ("embedding", "age", "gender_logit", "expression_logits"):
            v = getattr(both, name)
            if v is not None:
                setattr(out, name, (v[:n] + v[n:]) / 2)
        if both.landmarks is not None:
            back = geometry.mirror_landmarks(both.landmarks[n:], float(images.shape[-1]))
            out.landmarks = (both.landmarks[:n] + back) / 2
        return out


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise BadInput(f"face images must be a (N, 3, H, W) tensor, got {shape}")
    if images.shape[0] == 0 or min(images.shape[-2:]) < 8:
        raise BadInput(f"face images must be non-empty and at least 8x8, got {tuple(images.shape)}")

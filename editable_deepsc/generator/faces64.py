"""``edsc-faces64``: the built-in style-based 64x64 face generator with a layer-wise latent space.

Built on the teacher's structure (see :mod:`editable_deepsc.generator.teacher`)
because a StyleGAN2 from a 4x4 constant does not train on 2 CPU cores:

* **mapping** ``z -> w``: ``w = z + MLP(z)``, the MLP's last layer starts at
  zero so that initially ``w = z``.
* **synthesis**, one style per layer (``num_ws = 5``, ``w_dim = 100``):

  ===== ============================================================ =========
  layer what the style does                                          size
  ===== ============================================================ =========
  0     ``w_0`` is the input: transposed conv 1x1 -> 4x4 (projection) 512x4x4
  1-4   ``w_i`` modulates the input channels of a transposed conv     8 .. 64
        (``x * (1 + A_i w_i)``) and shifts its output (``+ B_i w_i``)
  ===== ============================================================ =========

  Batch-norm of the teacher is folded into a per-channel affine map after
  each convolution, followed by ReLU (``tanh`` after the last one).

:meth:`Faces64Generator.from_teacher` copies the teacher's weights and sets all
``A_i, B_i`` to zero, so with the same ``w`` in every layer (in fact with any
``w_1..w_4``) it reproduces the teacher exactly; training (``edsc train
generator``) then teaches the per-layer styles to carry meaning.
"""

from __future__ import annotations

import torch
from torch import nn

from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import CHANNELS, Z_DIM, TeacherDCGAN

FACES64_NAME = "edsc-faces64"
#: safetensors ``format`` tag of its weights.
FACES64_FORMAT = "edsc-faces64"


class Mapping(nn.Module):
    """Residual MLP ``w = z + fc2(lrelu(fc1(z)))``; ``fc2`` starts at zero (``w = z``).

    Parameters
    ----------
    z_dim, w_dim : int
        Latent sizes (equal: the residual needs it).
    hidden : int
        Width of the hidden layer.
    """

    def __init__(self, z_dim: int = Z_DIM, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(z_dim, hidden)
        self.fc2 = nn.Linear(hidden, z_dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.fc2(nn.functional.leaky_relu(self.fc1(z), 0.2))


class StyledConvTranspose(nn.Module):
    """Transposed conv whose input channels are scaled and output channels shifted by a style.

    ``y = act(a * convT(x * (1 + A w)) + b + B w)`` with ``a, b`` the folded batch-norm.

    Parameters
    ----------
    cin, cout : int
        Channels in / out (spatial size doubles: kernel 4, stride 2, padding 1).
    w_dim : int
        Style size.
    last : bool
        ``tanh`` instead of ReLU (the RGB layer).
    """

    def __init__(self, cin: int, cout: int, w_dim: int, last: bool = False) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.scale = nn.Parameter(torch.ones(cout))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.style_scale = nn.Linear(w_dim, cin)
        self.style_shift = nn.Linear(w_dim, cout)
        for lin in (self.style_scale, self.style_shift):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.last = last

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x`` (N, cin, H, W), ``w`` (N, w_dim) -> (N, cout, 2H, 2W)."""
        x = x * (1.0 + self.style_scale(w))[:, :, None, None]
        y = self.conv(x) * self.scale[None, :, None, None] + (self.bias + self.style_shift(w))[:, :, None, None]
        return torch.tanh(y) if self.last else torch.relu(y)


class Faces64Generator(StyleGenerator):
    """Style-based 64x64 face generator, ``w_plus`` (N, 5, 100) -> RGB (N, 3, 64, 64) in [-1, 1].

    Parameters
    ----------
    hidden : int
        Width of the mapping MLP.
    """

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.z_dim = self.w_dim = Z_DIM
        self.resolution = 64
        self.name = FACES64_NAME
        self.mapping_net = Mapping(Z_DIM, hidden)
        self.input_conv = nn.ConvTranspose2d(Z_DIM, CHANNELS[1], 4, 1, 0, bias=False)
        self.input_scale = nn.Parameter(torch.ones(CHANNELS[1]))
        self.input_bias = nn.Parameter(torch.zeros(CHANNELS[1]))
        n = len(CHANNELS) - 2
        self.layers = nn.ModuleList(
            StyledConvTranspose(CHANNELS[i], CHANNELS[i + 1], Z_DIM, last=i == n) for i in range(1, n + 1)
        )
        self.num_ws = 1 + len(self.layers)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.mapping_net(z)

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_w_plus(w_plus)
        x = self.input_conv(w_plus[:, 0, :, None, None])
        x = torch.relu(x * self.input_scale[None, :, None, None] + self.input_bias[None, :, None, None])
        for i, layer in enumerate(self.layers, start=1):
            x = layer(x, w_plus[:, i])
        return x

    @classmethod
    def from_card(cls, card, state: dict[str, torch.Tensor]) -> "Faces64Generator":
        """Zoo builder: the generator from its card and tensors (mapping width read from the weights)."""
        from editable_deepsc.errors import CheckpointError
        from editable_deepsc.generator.teacher import _load_strict

        if "mapping_net.fc1.weight" not in state:
            raise CheckpointError(f"{card.name} is not an edsc-faces64 checkpoint (no mapping_net.fc1.weight)")
        g = cls(hidden=int(state["mapping_net.fc1.weight"].shape[0]))
        _load_strict(g, state)
        g.name = card.name
        return g

    @classmethod
    def from_teacher(cls, teacher: TeacherDCGAN, hidden: int = 256) -> "Faces64Generator":
        """A generator that reproduces ``teacher`` exactly for any ``w_plus`` with ``w_0 = z``.

        The teacher's batch-norm (eval statistics) is folded into ``scale``/``bias``.
        """
        g = cls(hidden)
        with torch.no_grad():
            convs = [g.input_conv] + [layer.conv for layer in g.layers]
            for dst, src in zip(convs, teacher.convs):
                dst.weight.copy_(src.weight)
            affines = [(g.input_scale, g.input_bias)] + [(layer.scale, layer.bias) for layer in g.layers[:-1]]
            for (scale, bias), bn in zip(affines, teacher.norms):
                a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                scale.copy_(a)
                bias.copy_(bn.bias - bn.running_mean * a)
        return g

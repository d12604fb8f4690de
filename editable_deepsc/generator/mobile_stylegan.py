"""MobileStyleGAN (Belousov 2021, arXiv 2104.04767) in plain PyTorch, with W+ and early exits.

MobileStyleGAN is a StyleGAN2 config-f generator distilled into a light network
that synthesises *wavelet coefficients*: every block doubles the resolution with
an inverse Haar DWT of its (modulated) features, and the image head predicts the
four Haar sub-bands of the RGB image at half size, which one last inverse DWT
turns into the image.

Layout (the FFHQ 1024 model; ``c`` = channels out of each block)::

    mapping   z (N,512) -> pixel norm -> 8 x [linear, leaky ReLU(0.2) x sqrt(2)] -> w (N,512)
    input     learned constant (1, 512, 4, 4)
    conv1     modulated 3x3 conv 512 -> 512, + fixed noise, + bias, leaky ReLU       style 0
    layers[i] i = 0..6, resolution 4 * 2**(i+1) (8 ... 512), c = 512,512,512,512,256,128,64
      up      modulate (no scale), inverse DWT: C channels at H -> C/4 channels at 2H  style 1+3i
      conv1   modulated depthwise 3x3 + pointwise 1x1, C/4 -> c, noise, bias, lReLU     style 2+3i
      conv2   modulated depthwise 3x3 + pointwise 1x1, c -> c, noise, bias, lReLU       style 3+3i
    to_img    modulated 1x1 conv 64 -> 12 (4 sub-bands x RGB), + bias, inverse DWT     style 22
              -> image (N, 3, 1024, 1024) in about [-1, 1]

So ``w_plus`` has ``num_ws = 2 + 3 * len(layers) = 23`` styles, one per
modulation, in this order. Demodulation in MobileStyleGAN uses a *fixed* style
statistic, so it is a constant folded into the pointwise weights (``weight_pw``);
the noise inputs are fixed too (``noise`` = noise image x its learned strength).

**Exits**: :class:`ExitHead` modules read the features after ``layers[k]``
(or those features after the trunk's ``layers[k+1].up``, with that layer's style) and
predict the Haar sub-bands of a smaller image with the image-head style (the last
one in ``w_plus``); an exit as large as its block is that image area-downsampled.
``synthesis(w_plus, size=256)`` runs ``layers[0..k]`` only.
They are trained by distillation (``edsc train exits``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator

ARCH = "mobile-stylegan"
FORMAT = "edsc-mobile-stylegan"
LRELU_SLOPE = 0.2


@dataclass
class MobileStyleGANConfig:
    """Sizes of a MobileStyleGAN; the default is the FFHQ 1024 model of the ``random-face`` wheel.

    Attributes
    ----------
    z_dim, w_dim : int
        Latent sizes.
    n_mapping : int
        Linear layers of the mapping network.
    input_channels : int
        Channels of the 4x4 learned constant (= channels of ``conv1``).
    channels : list of int
        Output channels of each synthesis block; block ``i`` works at ``4 * 2**(i+1)``.
    exits : dict of str to int
        Early exits: image side (as a string) -> index of the block whose features
        the exit reads. An exit of side ``2 * r`` reads a block at ``r`` directly; one
        of side ``4 * r`` first upsamples like the next block (modulated inverse DWT).
    exit_hidden : int
        Channels of the styled convolutions of an exit head.
    exit_convs : int
        Styled depthwise-separable convolutions per exit head.
    """

    z_dim: int = 512
    w_dim: int = 512
    n_mapping: int = 8
    input_channels: int = 512
    channels: list[int] = field(default_factory=lambda: [512, 512, 512, 512, 256, 128, 64])
    exits: dict[str, int] = field(default_factory=dict)
    exit_hidden: int = 64
    exit_convs: int = 2

    @property
    def resolution(self) -> int:
        return 4 * 2 ** (len(self.channels) + 1)

    @property
    def num_ws(self) -> int:
        return 2 + 3 * len(self.channels)

    def block_resolution(self, k: int) -> int:
        """Side of the features after block ``k``."""
        return 4 * 2 ** (k + 1)

    def check_exit(self, size: int, block: int) -> bool:
        """Whether an exit of side ``size`` reading block ``block`` upsamples (raise if impossible).

        A block at ``r x r`` serves exits of side ``r`` (the head's ``2r`` image,
        area-downsampled), ``2r`` (the head's image) and ``4r`` (the head reads the
        features after the trunk's next wavelet upsampling).
        """
        if not 0 <= block < len(self.channels) - 1:
            raise BadInput(f"an exit must read a block in 0..{len(self.channels) - 2}, not {block}")
        r = self.block_resolution(block)
        if size not in (r, 2 * r, 4 * r):
            raise BadInput(f"an exit reading block {block} ({r}x{r}) makes {r}, {2 * r} or {4 * r} px images, not {size}")
        return size == 4 * r

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _haar_synthesis_matrix() -> torch.Tensor:
    """(4 sub-pixels, 4 bands) matrix of the inverse Haar DWT.

    The bands are ``LL, LH, HL, HH`` in the order of ``pytorch_wavelets`` (the band
    order of MobileStyleGAN): the first letter filters the rows (height), the
    second the columns. Sub-pixel ``2a + b`` is the output at ``(2i + a, 2j + b)``.
    """
    s = 1.0 / math.sqrt(2.0)
    lo, hi = (s, s), (s, -s)
    filt = {"L": lo, "H": hi}
    bands = [("L", "L"), ("H", "L"), ("L", "H"), ("H", "H")]  # (height filter, width filter)
    m = torch.zeros(4, 4, dtype=torch.float64)
    for a in range(2):
        for b in range(2):
            for k, (fh, fw) in enumerate(bands):
                m[2 * a + b, k] = filt[fh][a] * filt[fw][b]
    return m.float()


def inverse_haar(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Inverse single-level Haar DWT.

    Parameters
    ----------
    low : torch.Tensor
        (N, C, H, W) float32, the ``LL`` band.
    high : torch.Tensor
        (N, C, 3, H, W) float32, the ``LH, HL, HH`` bands (``pytorch_wavelets`` order).

    Returns
    -------
    torch.Tensor
        (N, C, 2H, 2W) float32.
    """
    n, c, h, w = low.shape
    bands = torch.cat([low.unsqueeze(2), high], dim=2)  # (N, C, 4, H, W)
    m = _HAAR.to(device=low.device, dtype=low.dtype)
    sub = torch.einsum("pk,nckhw->ncphw", m, bands)  # (N, C, 4 sub-pixels, H, W)
    return F.pixel_shuffle(sub.reshape(n, c * 4, h, w), 2)


_HAAR = _haar_synthesis_matrix()


def split_bands(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split MobileStyleGAN's wavelet tensor (N, 4C, H, W) into ``LL`` (N, C, H, W) and the rest (N, C, 3, H, W)."""
    n, c4, h, w = x.shape
    c = c4 // 4
    return x[:, :c], x[:, c:].reshape(n, c, 3, h, w)


def wavelets_to_image(x: torch.Tensor, fast: bool = False) -> torch.Tensor:
    """(N, 4C, H, W) wavelet coefficients -> (N, C, 2H, 2W) by the inverse Haar DWT.

    ``fast``: the same transform as a butterfly of sums and differences (no matrix
    product), used when no gradient flows through ``x``; equal to the reference up to
    float rounding (about 1e-6).
    """
    if not fast or (torch.is_grad_enabled() and x.requires_grad):
        return inverse_haar(*split_bands(x))
    n, c4, h, w = x.shape
    c = c4 // 4
    ll, high = x[:, :c], x[:, c:].reshape(n, c, 3, h, w)
    u, v = ll + high[:, :, 0], ll - high[:, :, 0]  # the LH band: first letter filters the rows
    p, q = high[:, :, 1] + high[:, :, 2], high[:, :, 1] - high[:, :, 2]
    sub = torch.stack([u + p, u - p, v + q, v - q], dim=2).mul_(0.5)  # sub-pixels (0,0), (0,1), (1,0), (1,1)
    return F.pixel_shuffle(sub.reshape(n, c4, h, w), 2)


class Modulation(nn.Linear):
    """Affine map from one style ``w`` (N, w_dim) to per-channel scales (N, C), times a constant ``scale``."""

    def __init__(self, w_dim: int, channels: int, scale: float = 1.0):
        super().__init__(w_dim, channels)
        self.scale = scale
        nn.init.ones_(self.bias)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return super().forward(w) * self.scale


class StyledConv(nn.Module):
    """Modulated convolution (depthwise 3x3 + pointwise 1x1, or a full k x k), noise, bias, leaky ReLU.

    Parameters
    ----------
    c_in, c_out : int
        Channels.
    w_dim : int
        Style size.
    resolution : int
        Side of the feature map (the fixed noise image has this size).
    depthwise : bool
        MobileStyleGAN's depthwise-separable form (``False``: one full kernel, as in ``conv1``).
    kernel : int
        Side of the full kernel (``depthwise=False`` only; the exit heads use 1 and 3).
    noise : bool
        Add the fixed noise image (the exit heads have none).
    """

    def __init__(
        self, c_in: int, c_out: int, w_dim: int, resolution: int, depthwise: bool = True, kernel: int = 3,
        noise: bool = True,
    ):  # fmt: skip
        super().__init__()
        self.depthwise = depthwise
        self.modulation = Modulation(w_dim, c_in, scale=1.0 / math.sqrt(c_in * (9 if depthwise else kernel**2)))
        if depthwise:
            self.weight_dw = nn.Parameter(torch.randn(c_in, 1, 3, 3))
            self.weight_pw = nn.Parameter(torch.randn(c_out, c_in, 1, 1) / math.sqrt(c_in))
        else:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel) / math.sqrt(c_in))
        self.noise = nn.Parameter(torch.zeros(1, 1, resolution, resolution)) if noise else None
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.fast = False

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x`` (N, c_in, R, R), ``w`` (N, w_dim) -> (N, c_out, R, R).

        With ``fast`` (depthwise form only; when no gradient flows through ``x`` or
        ``w``) the modulation is folded into per-sample pointwise weights (a depthwise
        convolution commutes with a per-channel scale), the pointwise convolution is one
        batched matrix product and noise + bias are added in place: the same function up
        to float rounding. With gradients the reference operations run (measured
        faster backward on this CPU).
        """
        if self.depthwise and self.fast and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
            x = F.conv2d(x, self.weight_dw, padding=1, groups=x.shape[1])
            pw = self.weight_pw[None, :, :, 0, 0] * self.modulation(w)[:, None, :]  # (N, c_out, c_in)
            x = torch.bmm(pw, x.flatten(2)).unflatten(2, x.shape[2:])
            if self.noise is not None:
                x = x.add_(self.noise)
            x = x.add_(self.bias[:, None, None])
            return F.leaky_relu(x, LRELU_SLOPE, inplace=True)
        x = x * self.modulation(w)[:, :, None, None]
        if self.depthwise:
            x = F.conv2d(x, self.weight_dw, padding=1, groups=x.shape[1])
            x = F.conv2d(x, self.weight_pw, self.bias)
        else:
            x = F.conv2d(x, self.weight, self.bias, padding=self.weight.shape[-1] // 2)
        if self.noise is not None:
            x = x + self.noise
        return F.leaky_relu(x, LRELU_SLOPE, inplace=True)


class WaveletUpsample(nn.Module):
    """Modulate the channels, then read them as Haar sub-bands: (N, C, H, W) -> (N, C/4, 2H, 2W)."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.modulation = Modulation(w_dim, channels)
        self.fast = False

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return wavelets_to_image(x * self.modulation(w)[:, :, None, None], fast=self.fast)


class ToWavelets(nn.Module):
    """Image head: modulated 1x1 conv (no demodulation) to 12 channels = Haar sub-bands of RGB, plus bias."""

    def __init__(self, c_in: int, w_dim: int, c_out: int = 12):
        super().__init__()
        self.modulation = Modulation(w_dim, c_in, scale=1.0 / math.sqrt(c_in))
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = x * self.modulation(w)[:, :, None, None]
        return F.conv2d(x, self.weight, self.bias)


class SynthesisBlock(nn.Module):
    """One MobileStyleGAN block: wavelet upsampling, then two styled depthwise-separable convolutions."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int):
        super().__init__()
        self.up = WaveletUpsample(c_in, w_dim)
        self.conv1 = StyledConv(c_in // 4, c_out, w_dim, resolution)
        self.conv2 = StyledConv(c_out, c_out, w_dim, resolution)

    def forward(self, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """``x`` (N, c_in, R/2, R/2), ``ws`` (N, 3, w_dim) -> (N, c_out, R, R)."""
        x = self.up(x, ws[:, 0])
        x = self.conv1(x, ws[:, 1])
        return self.conv2(x, ws[:, 2])


class ExitHead(nn.Module):
    """An early image head: styled 1x1 then 3x3 convs, :class:`ToWavelets`, inverse DWT.

    It reads the features of one block, or (for an exit twice as large) those
    features after the *trunk's own* next wavelet upsampling. Full small kernels
    rather than depthwise ones and no noise input: on a CPU their backward pass is
    several times faster, and the heads can be trained on crops.

    Parameters
    ----------
    c_in : int
        Channels of the features it reads.
    hidden : int
        Channels of its styled convolutions.
    w_dim : int
        Style size.
    n_convs : int
        Number of styled convolutions (the first 1x1, the others 3x3).
    """

    def __init__(self, c_in: int, hidden: int, w_dim: int, n_convs: int = 2):
        super().__init__()
        self.convs = nn.ModuleList(
            StyledConv(c_in if i == 0 else hidden, hidden, w_dim, 1, depthwise=False, kernel=1 if i == 0 else 3,
                       noise=False)  # fmt: skip
            for i in range(n_convs)
        )
        self.to_img = ToWavelets(hidden if n_convs else c_in, w_dim)
        self.fast = False

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x`` features (N, c_in, r, r), ``w`` the image-head style (N, w_dim) -> image (N, 3, 2r, 2r)."""
        for conv in self.convs:
            x = conv(x, w)
        return wavelets_to_image(self.to_img(x, w), fast=self.fast)


class MappingNetwork(nn.Module):
    """StyleGAN2 mapping: pixel norm, then ``n`` x (linear, leaky ReLU 0.2, gain sqrt(2))."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int):
        super().__init__()
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LRELU_SLOPE) * math.sqrt(2.0)
        return x


class MobileStyleGAN(StyleGenerator):
    """The MobileStyleGAN generator with W+ input and optional early exits.

    Parameters
    ----------
    config : MobileStyleGANConfig
        Sizes (default: the FFHQ 1024 model).

    Attributes
    ----------
    w_avg : torch.Tensor
        (w_dim,) buffer, the mean mapped ``w`` (truncation centre), set by the converter.
    exits : nn.ModuleDict
        ``str(size) -> ExitHead``.
    """

    def __init__(self, config: MobileStyleGANConfig | None = None):
        super().__init__()
        cfg = config or MobileStyleGANConfig()
        self.config = cfg
        self.z_dim, self.w_dim, self.num_ws, self.resolution = cfg.z_dim, cfg.w_dim, cfg.num_ws, cfg.resolution
        self.mapping_net = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.n_mapping)
        self.input = nn.Parameter(torch.randn(1, cfg.input_channels, 4, 4))
        self.conv1 = StyledConv(cfg.input_channels, cfg.input_channels, cfg.w_dim, 4, depthwise=False)
        c_prev, self.layers = cfg.input_channels, nn.ModuleList()
        for i, c in enumerate(cfg.channels):
            self.layers.append(SynthesisBlock(c_prev, c, cfg.w_dim, 4 * 2 ** (i + 1)))
            c_prev = c
        self.to_img = ToWavelets(c_prev, cfg.w_dim)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.fast = True  # the fast CPU path by default (set_fast; the same function up to float rounding)
        self.exits = nn.ModuleDict()
        for size, block in dict(cfg.exits).items():
            self.add_exit(int(size), int(block))
        self.set_fast(True)

    # ---- CPU path --------------------------------------------------------------------------------
    def set_fast(self, enabled: bool = True) -> MobileStyleGAN:
        """Switch every module to the fast CPU formulation (``True``, the default) or the reference one (``False``).

        Fast (only where no gradient is taken: sampling, evaluation): modulation folded
        into the pointwise weights, pointwise convolutions as batched matrix products,
        noise and bias added in place, the inverse Haar DWT as a butterfly. With
        gradients the reference operations run. The same function up to float rounding (max |difference| of the 1024
        image about 3e-5, see ``docs/models.md``); ``edsc bench generator --variants``
        measures both. Returns ``self``.
        """
        for m in self.modules():
            if hasattr(m, "fast"):
                m.fast = bool(enabled)
        return self

    # ---- exits -----------------------------------------------------------------------------------
    def add_exit(self, size: int, block: int) -> ExitHead:
        """Create (or return) the exit head of image side ``size`` reading block ``block``."""
        cfg = self.config
        upsample = cfg.check_exit(size, block)
        if str(size) not in self.exits:
            c_in = cfg.channels[block] // 4 if upsample else cfg.channels[block]
            self.exits[str(size)] = ExitHead(c_in, cfg.exit_hidden, self.w_dim, cfg.exit_convs)
            for m in self.exits[str(size)].modules():  # the path chosen by set_fast
                if hasattr(m, "fast"):
                    m.fast = self.fast
            cfg.exits = {**cfg.exits, str(size): block}
        elif cfg.exits[str(size)] != block:
            raise BadInput(f"the exit of size {size} reads block {cfg.exits[str(size)]}, not {block}")
        return self.exits[str(size)]

    @property
    def sizes(self) -> list[int]:
        """Image sides ``synthesis`` can return: the exits and the full resolution."""
        return sorted([int(s) for s in self.exits] + [self.resolution])

    # ---- mapping ---------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` (N, z_dim) float32 -> ``w`` (N, w_dim) float32."""
        return self.mapping_net(z)

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """``w_avg + psi * (w - w_avg)`` for ``w`` of shape (..., w_dim)."""
        return self.w_avg.to(w) + psi * (w - self.w_avg.to(w))

    def mean_w(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """The stored truncation centre ``w_avg`` (mean of >= 10,000 mapped z, set at conversion)."""
        if bool(self.w_avg.abs().sum() == 0):
            return super().mean_w(n, seed)
        return self.w_avg.clone()

    # ---- synthesis -------------------------------------------------------------------------------
    def features(self, w_plus: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Features after ``conv1`` and after each block ``0..upto`` (all blocks by default).

        Returns
        -------
        list of torch.Tensor
            ``[x_conv1 (N, C, 4, 4), x_0 (N, c_0, 8, 8), ..., x_upto]``.
        """
        self.check_w_plus(w_plus)
        last = len(self.layers) - 1 if upto is None else upto
        x = self.input.expand(w_plus.shape[0], -1, -1, -1)
        x = self.conv1(x, w_plus[:, 0])
        out = [x]
        for i, block in enumerate(self.layers[: last + 1]):
            x = block(x, w_plus[:, 1 + 3 * i : 4 + 3 * i])
            out.append(x)
        return out

    def synthesis(self, w_plus: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Images from ``w_plus`` (N, num_ws, w_dim) float32.

        Parameters
        ----------
        w_plus : torch.Tensor
            One style per modulation; ``broadcast(w)`` reproduces the original model.
        size : int, optional
            Output side: ``None`` or ``resolution`` for the full image, or the size
            of a trained exit (e.g. 256), which stops after the block it reads.

        Returns
        -------
        torch.Tensor
            (N, 3, size, size) float32, about [-1, 1].
        """
        if size is None or size == self.resolution:
            x = self.features(w_plus)[-1]
            return wavelets_to_image(self.to_img(x, w_plus[:, -1]), fast=self.fast)
        if str(size) not in self.exits:
            raise BadInput(f"no exit of size {size} in {self.name} (sizes: {self.sizes})")
        k = self.config.exits[str(size)]
        x = self.exit_input(size, self.features(w_plus, upto=k)[-1], w_plus)
        return self.exit_image(size, x, w_plus[:, -1])

    def styles_seen(self, size: int | None = None) -> int:
        """How many leading styles of ``w_plus`` the trunk runs at output side ``size``.

        The full synthesis reads all ``num_ws``; an exit reads those of ``conv1`` and of the
        blocks up to the one it reads (plus the next block's upsampling style for an exit four
        times that block's side) -- and the last style, its image-head style. Inversion at an
        exit ties the unseen styles to the last seen one so that they cannot drift where the
        exit does not look (:func:`~editable_deepsc.inversion.optimize.invert_optimize`).
        """
        if size is None or size == self.resolution:
            return self.num_ws
        if str(size) not in self.exits:
            raise BadInput(f"no exit of size {size} in {self.name} (sizes: {self.sizes})")
        k = self.config.exits[str(size)]
        return 1 + 3 * (k + 1) + int(self.config.check_exit(size, k))

    def exit_image(self, size: int, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The exit head of ``size`` on its input ``x`` (from :meth:`exit_input`) with the image style ``w`` (N, w_dim).

        Returns (N, 3, size, size): the head's image, area-downsampled by 2 when the
        exit is as large as the block it reads (its Haar ``LL`` band / 2).
        """
        img = self.exits[str(size)](x, w)
        downsamples = self.config.block_resolution(self.config.exits[str(size)]) == size
        return F.avg_pool2d(img, 2) if downsamples else img

    def exit_input(self, size: int, x: torch.Tensor, w_plus: torch.Tensor) -> torch.Tensor:
        """What the exit head of ``size`` reads, from the features ``x`` of its block.

        ``x`` itself, or ``layers[k+1].up(x)`` (the trunk's next wavelet upsampling,
        with its own style) when the exit is four times the block's side.
        """
        k = self.config.exits[str(size)]
        if self.config.check_exit(size, k):
            x = self.layers[k + 1].up(x, w_plus[:, 1 + 3 * (k + 1)])
        return x

    def forward(self, z: torch.Tensor, truncation: float = 1.0, size: int | None = None) -> torch.Tensor:
        """Images from ``z`` (N, z_dim): mapping, truncation around ``w_avg``, synthesis at ``size``."""
        w = self.mapping(z)
        if truncation != 1.0:
            w = self.truncate(w, truncation)
        return self.synthesis(self.broadcast(w), size=size)

    # ---- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_card(cls, card: Any, state: dict[str, torch.Tensor]) -> MobileStyleGAN:
        """Zoo builder (kind ``generator``, format ``edsc-mobile-stylegan``): the generator, with the trained
        exits of the repository attached when it is the FFHQ model they were trained for."""
        g = cls.from_state(state, card.config)
        g.name = card.name
        from editable_deepsc.generator.ffhq import GENERATOR_NAME, attach_exits

        if card.name == GENERATOR_NAME and g.config.channels == MobileStyleGANConfig().channels:
            attach_exits(g)
        return g

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], config: dict[str, Any] | None = None) -> MobileStyleGAN:
        """Build from a state dict (and the card's ``config``), strictly: every tensor must fit."""
        from editable_deepsc.errors import CheckpointError

        cfg = MobileStyleGANConfig(**{k: v for k, v in (config or {}).items() if k in MobileStyleGANConfig.__dataclass_fields__})
        g = cls(cfg)
        try:
            g.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0:2]
            raise CheckpointError(f"weights do not fit MobileStyleGAN {cfg.channels}: {' '.join(first)}") from None
        return g

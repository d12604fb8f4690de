"""StyleGAN2 generator (Karras et al. 2020) in pure torch, compatible with rosinality checkpoints.

One readable module, no compiled extensions, runs on CPU. Parameter and buffer
names follow the rosinality ``stylegan2-pytorch`` layout, so a ``g_ema`` state
dict loads one to one.

Architecture, for a resolution ``R = 2**L`` (``L >= 3``):

* **mapping** ``z -> w``: pixel norm, then ``n_mlp`` equalised-lr linear layers
  (learning-rate multiplier ``lr_mlp``, leaky ReLU 0.2 scaled by sqrt 2).
* **synthesis** from a learned 4x4 constant: at 4 px one modulated 3x3 conv;
  at every resolution 8..R an upsampling modulated 3x3 conv (transposed conv,
  stride 2, then a [1,3,3,1] FIR blur) and a plain one. Every conv scales its
  input channels by an affine map of its style, *demodulates* (divides each
  output channel by the norm of its modulated weights), adds per-pixel noise
  scaled by a learned weight, a bias, and a scaled leaky ReLU.
* **toRGB skips**: a 1x1 modulated conv (no demodulation) at every resolution;
  the running RGB image is upsampled with the FIR filter and summed.
* **styles**: ``num_ws = 2 L - 2`` vectors; layer ``i`` of the W+ latent feeds
  conv ``i`` and the toRGB after it shares the style of the next conv
  (``[conv 4px, rgb 4px | up-conv, conv, rgb | ...]`` = indices
  ``0, 1 | 1, 2, 3 | 3, 4, 5 | ...``).

Truncation (``w' = mean + psi (w - mean)``) uses :meth:`mean_w`, which is the
checkpoint's ``latent_avg`` when it has one.

Checkpoints: :func:`load_rosinality` reads ``{"g_ema": state_dict,
"latent_avg": tensor}`` with ``torch.load(weights_only=True)`` (no pickle code
runs), infers size, style size, mapping depth and channel widths from the
shapes, converts the weights once to safetensors in the user zoo
(:mod:`editable_deepsc.zoo.catalog`) and registers them, so later loads are by
name or path with a sha256 check.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import make_generator
from editable_deepsc.zoo import catalog, registry

ARCH = "stylegan2"
FORMAT = "edsc-stylegan2"
BLUR_KERNEL = (1, 3, 3, 1)
LRELU_GAIN = math.sqrt(2.0)


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """Feature maps per resolution of the official configurations (512 up to 32 px)."""
    m = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m, 512: 32 * m, 1024: 16 * m}


def make_kernel(k: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Separable FIR kernel: outer product of ``k`` with itself, normalised to sum 1, (len, len) float32."""
    k1 = torch.tensor(k, dtype=torch.float32)
    k2 = k1[None, :] * k1[:, None]
    return k2 / k2.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, and convolve each channel with ``kernel``.

    Parameters
    ----------
    x : torch.Tensor
        Float (N, C, H, W).
    kernel : torch.Tensor
        Float (k, k) FIR filter (applied as a true convolution, i.e. flipped).
    up : int
        Upsampling factor (each sample is followed by ``up - 1`` zeros).
    pad : (int, int)
        Zero padding before / after, on both axes.

    Returns
    -------
    torch.Tensor
        Float (N, C, H*up + pad0 + pad1 - k + 1, ...).
    """
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1]).to(x)[None, None].expand(c, 1, -1, -1)
    return F.conv2d(x, k, groups=c)


class PixelNorm(nn.Module):
    """Normalise each vector to unit root-mean-square over dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored ~N(0, 1/lr_mul²), scaled at run time.

    ``y = x (W * lr_mul / sqrt(in))^T + b * lr_mul``, optionally followed by a
    leaky ReLU (0.2) times sqrt 2 (bias added before the activation).
    """

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale) + self.bias * self.lr_mul
        return F.leaky_relu(out, 0.2) * LRELU_GAIN if self.activation else out


class Blur(nn.Module):
    """FIR low-pass after a stride-2 transposed conv (kernel scaled by ``factor**2``)."""

    def __init__(self, kernel: tuple[int, ...], pad: tuple[int, int], factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling of the RGB skip: zero insertion + FIR filter."""

    def __init__(self, kernel: tuple[int, ...], factor: int = 2) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        p = len(kernel) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) convolution.

    With ``s = A(w)`` (N, cin) and ``W`` the equalised weight (cout, cin, k, k):
    ``y = conv(x * s) * d`` where ``d[n, o] = 1 / sqrt(sum_{i,kh,kw} (W[o,i] s[n,i])^2 + 1e-8)``
    (demodulation). Computed this way (scale the input, not the weights) it
    needs no grouped convolution; it equals the fused form exactly.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: tuple[int, ...] = BLUR_KERNEL,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(cin * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), factor=2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x`` (N, cin, H, W), style ``w`` (N, style_dim) -> (N, cout, H', W') (H' = 2H when upsampling)."""
        s = self.modulation(w)
        weight = self.weight[0] * self.scale
        x = x * s[:, :, None, None]
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt((weight[None] * s[:, None, :, None, None]).pow(2).sum(dim=(2, 3, 4)) + 1e-8)
            out = out * d[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Add single-channel noise (N, 1, H, W) times a learned scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class BiasLeakyReLU(nn.Module):
    """``leaky_relu(x + b, 0.2) * sqrt 2`` with a per-channel bias ``b``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * LRELU_GAIN


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel_size: int, style_dim: int, upsample: bool = False,
        blur_kernel: tuple[int, ...] = BLUR_KERNEL,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = BiasLeakyReLU(cout)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) + bias, plus the upsampled previous RGB."""

    def __init__(self, cin: int, style_dim: int, upsample: bool = True, blur_kernel: tuple[int, ...] = BLUR_KERNEL):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    """The learned 4x4 input, repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyleGAN2Generator(StyleGenerator):
    """StyleGAN2 generator, ``w_plus`` (N, 2 log2(R) - 2, style_dim) -> RGB (N, 3, R, R).

    Parameters
    ----------
    size : int
        Output resolution, a power of two >= 8.
    style_dim : int
        Size of ``z`` and ``w`` (512 in the public models).
    n_mlp : int
        Depth of the mapping network (8 in the public models).
    channel_multiplier : int
        Width factor above 32 px (2 for FFHQ-1024/256 "config-f").
    channels : dict of int to int, optional
        Feature maps per resolution (4..size); overrides ``channel_multiplier``.
    lr_mlp : float
        Learning-rate multiplier of the mapping network (0.01; it also scales
        the stored weights, so it must match the checkpoint).
    blur_kernel : tuple of int
        FIR filter taps.

    Notes
    -----
    Output images are not clamped (as in the original); they lie roughly in [-1, 1].
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        channels: dict[int, int] | None = None,
        lr_mlp: float = 0.01,
        blur_kernel: tuple[int, ...] = BLUR_KERNEL,
    ) -> None:
        super().__init__()
        log_size = int(round(math.log2(size))) if size > 0 else 0
        if size < 8 or 2**log_size != size:
            raise BadInput(f"StyleGAN2 size must be a power of two >= 8, got {size}")
        if style_dim < 1 or n_mlp < 1:
            raise BadInput(f"style_dim and n_mlp must be >= 1, got {style_dim}, {n_mlp}")
        ch = {int(k): int(v) for k, v in (channels or default_channels(channel_multiplier)).items()}
        missing = [2**i for i in range(2, log_size + 1) if 2**i not in ch]
        if missing:
            raise BadInput(f"channels has no entry for resolutions {missing}")
        self.config = {
            "size": size, "style_dim": style_dim, "n_mlp": n_mlp,
            "channels": {r: ch[r] for r in (2**i for i in range(2, log_size + 1))},
            "lr_mlp": lr_mlp, "blur_kernel": list(blur_kernel),
        }  # fmt: skip
        self.z_dim = self.w_dim = style_dim
        self.resolution = size
        self.num_ws = 2 * log_size - 2
        self.name = f"stylegan2-{size}"
        self.log_size = log_size

        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp)]
        )
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False, blur_kernel=blur_kernel)
        self.num_layers = 2 * (log_size - 2) + 1
        self.noises = nn.Module()
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        cin = ch[4]
        for i in range(3, log_size + 1):
            cout = ch[2**i]
            self.convs.append(StyledConv(cin, cout, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(cout, cout, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(cout, style_dim, blur_kernel=blur_kernel))
            cin = cout
        self.register_buffer("latent_avg", torch.zeros(style_dim))
        self.has_latent_avg = False

    @classmethod
    def from_card(cls, card: registry.ModelCard, state: dict[str, torch.Tensor]) -> "StyleGAN2Generator":
        """Zoo builder: the generator from its card and tensors (architecture from the file's metadata)."""
        md = registry.file_metadata(card.path)
        if md.get("format") != FORMAT or "config" not in md:
            raise CheckpointError(f"{card.path.name} is not a converted StyleGAN2 checkpoint")
        cfg = json.loads(md["config"])
        cfg["channels"] = {int(k): v for k, v in cfg["channels"].items()}
        cfg["blur_kernel"] = tuple(cfg["blur_kernel"])
        g = cls(**cfg)
        _load_state(g, state)
        g.name = card.name
        return g

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    def mean_w(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """The checkpoint's ``latent_avg`` if it has one, else the average ``w`` of ``n`` seeded ``z``."""
        if self.has_latent_avg:
            return self.latent_avg.clone()
        return super().mean_w(n, seed)

    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Average ``w`` over ``n`` seeded random ``z`` (rosinality's name), shape (1, style_dim)."""
        return StyleGenerator.mean_w(self, n, seed)[None]

    def _noise(self, n: int, noise_mode: str, rng: torch.Generator | None) -> list[torch.Tensor]:
        bufs = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "const":
            return bufs
        if noise_mode == "none":
            return [torch.zeros_like(b) for b in bufs]
        if noise_mode == "random":
            rng = rng if rng is not None else make_generator(None)
            return [torch.randn((n, *b.shape[1:]), generator=rng).to(b) for b in bufs]
        raise BadInput(f"noise_mode must be const, random or none, got {noise_mode!r}")

    def synthesis(
        self, w_plus: torch.Tensor, noise_mode: str = "const", rng: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images (N, 3, R, R) from ``w_plus`` (N, num_ws, style_dim).

        Parameters
        ----------
        w_plus : torch.Tensor
            Float32 (N, num_ws, style_dim).
        noise_mode : {"const", "random", "none"}
            The stored noise buffers (deterministic, default), fresh noise from
            ``generator`` (CPU torch.Generator), or no noise.
        rng : torch.Generator, optional
            Source of random noise for ``noise_mode="random"``.
        """
        self.check_w_plus(w_plus)
        noise = self._noise(w_plus.shape[0], noise_mode, rng)
        x = self.conv1(self.input(w_plus.shape[0]), w_plus[:, 0], noise[0])
        skip = self.to_rgb1(x, w_plus[:, 1])
        i = 1
        for up, conv, rgb, n1, n2 in zip(self.convs[::2], self.convs[1::2], self.to_rgbs, noise[1::2], noise[2::2]):
            x = up(x, w_plus[:, i], n1)
            x = conv(x, w_plus[:, i + 1], n2)
            skip = rgb(x, w_plus[:, i + 2], skip)
            i += 2
        return skip


# --------------------------------------------------------------------------- checkpoints


def config_from_state(state: dict[str, torch.Tensor]) -> dict:
    """Infer ``size, style_dim, n_mlp, channels`` from a rosinality ``g_ema`` state dict.

    Raises
    ------
    CheckpointError
        If the keys do not look like a StyleGAN2 generator.
    """
    try:
        mlp = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
        rgbs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"to_rgbs\.(\d+)\.conv\.weight", k)))
        style_dim = int(state["style.1.weight"].shape[1])
        channels = {4: int(state["input.input"].shape[1])}
        for j in rgbs:
            channels[2 ** (j + 3)] = int(state[f"convs.{2 * j}.conv.weight"].shape[1])
    except (KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"not a StyleGAN2 generator state dict (missing {e})") from None
    if not mlp or mlp != list(range(1, len(mlp) + 1)) or rgbs != list(range(len(rgbs))):
        raise CheckpointError("not a StyleGAN2 generator state dict (mapping or toRGB layers not numbered 1..n / 0..n)")
    return {"size": 2 ** (len(rgbs) + 2), "style_dim": style_dim, "n_mlp": len(mlp), "channels": channels}


def _load_state(g: StyleGAN2Generator, state: dict[str, torch.Tensor]) -> None:
    from editable_deepsc.generator.teacher import _load_strict

    state = dict(state)
    has_avg = "latent_avg" in state
    if not has_avg:
        state["latent_avg"] = torch.zeros(g.w_dim)
    _load_strict(g, state)
    g.has_latent_avg = has_avg


def from_rosinality_state(
    g_ema: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None, lr_mlp: float = 0.01
) -> StyleGAN2Generator:
    """Build a generator from a rosinality ``g_ema`` state dict (and optional ``latent_avg`` (D,) or (1, D))."""
    if not isinstance(g_ema, dict) or not all(isinstance(v, torch.Tensor) for v in g_ema.values()):
        raise CheckpointError("g_ema is not a state dict of tensors")
    g = StyleGAN2Generator(**config_from_state(g_ema), lr_mlp=lr_mlp)
    state = dict(g_ema)
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != g.w_dim:
            raise CheckpointError(f"latent_avg must have {g.w_dim} values")
        state["latent_avg"] = latent_avg.reshape(g.w_dim).float()
    _load_state(g, state)
    return g


def to_rosinality_checkpoint(g: StyleGAN2Generator) -> dict:
    """``{"g_ema": state_dict, "latent_avg": (D,)}`` as the rosinality scripts write it."""
    state = {k: v.detach().clone() for k, v in g.state_dict().items() if k != "latent_avg"}
    return {"g_ema": state, "latent_avg": g.mean_w().detach().clone()}


def save_converted(g: StyleGAN2Generator, path: str | os.PathLike) -> str:
    """Write ``g`` as safetensors with its config in the metadata; return the sha256."""
    cfg = dict(g.config, channels={str(k): v for k, v in g.config["channels"].items()})
    state = dict(g.state_dict())
    if not g.has_latent_avg:
        state["latent_avg"] = StyleGenerator.mean_w(g)
    return registry.save_state_dict(state, path, metadata={"format": FORMAT, "config": json.dumps(cfg)})


def load_converted(path: str | os.PathLike, sha256: str | None = None, name: str | None = None) -> StyleGAN2Generator:
    """Load a generator written by :func:`save_converted` (sha256-checked when given)."""
    path = Path(path)
    card = registry.ModelCard(name=name or str(path), kind="generator", file=str(path.resolve()),
                              sha256=sha256 or "", licence="", source=str(path))  # fmt: skip
    return StyleGAN2Generator.from_card(card, registry.load_verified(path, sha256))


def load_rosinality(path: str | os.PathLike, lr_mlp: float = 0.01, register: bool = True) -> StyleGAN2Generator:
    """Load a rosinality-format ``.pt`` checkpoint; convert it to safetensors and register it on first use.

    Parameters
    ----------
    path : str or path-like
        File holding ``{"g_ema": state_dict, "latent_avg": tensor}`` (extra
        entries such as ``g``/``d`` are ignored). Read with
        ``torch.load(weights_only=True)``: training checkpoints that pickle an
        ``argparse.Namespace`` (``"args"``) are refused; re-save ``g_ema`` and
        ``latent_avg`` alone.
    lr_mlp : float
        Mapping learning-rate multiplier the checkpoint was trained with.
    register : bool
        Convert to ``<user zoo>/weights/<stem>-<sha12>.safetensors`` and register
        a card named ``<stem>-<sha8>``; later calls load the converted file.

    Returns
    -------
    StyleGAN2Generator
        Named after its card (or the path when ``register`` is False).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    digest = registry.sha256_file(path)
    name = f"{path.stem}-{digest[:8]}"
    card = catalog.find_card(name)
    if register and card is not None and card.path.is_file():
        return load_converted(card.path, card.sha256, name=name)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling refused or corrupt file
        raise CheckpointError(f"cannot read {path.name} with weights_only=True: {e.__class__.__name__}") from None
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        raise CheckpointError(f"{path.name} has no 'g_ema' entry (expected a rosinality StyleGAN2 checkpoint)")
    g = from_rosinality_state(ckpt["g_ema"], ckpt.get("latent_avg"), lr_mlp=lr_mlp)
    if register:
        dst = catalog.user_weights_dir() / f"{path.stem}-{digest[:12]}.safetensors"
        sha = save_converted(g, dst)
        catalog.register_user_card(
            registry.ModelCard(
                name=name,
                kind="generator",
                file=str(dst.resolve()),
                sha256=sha,
                licence="user-supplied (see the original model's licence)",
                source=f"converted from {path.resolve()} (sha256 {digest})",
                resolution=g.resolution,
                description=f"StyleGAN2 {g.resolution}px, W+ of {g.num_ws} x {g.w_dim} (rosinality checkpoint)",
                config={"arch": ARCH, **{k: v for k, v in g.config.items() if k != "channels"}},
            )
        )
    g.name = name if register else str(path)
    return g

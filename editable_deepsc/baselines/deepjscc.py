"""DeepJSCC (Bourtsoulatze, Kurka, Gündüz 2019): a convolutional analog joint source-channel code.

::

    image (N,3,H,W) ─► conv encoder (PReLU) ─► c feature maps (N,c,H/4,W/4) ─► pairs → complex
                      ─► power normalisation (unit average power per image) ─► channel (AWGN / Rayleigh)
                      ─► complex → real ─► transposed-conv decoder (PReLU, sigmoid) ─► image

Layout and bandwidth
--------------------
Two stride-2 convolutions give a ``/4`` downsampling, so the encoder emits
``c·(H/4)·(W/4)`` real values, paired into ``k = c·H·W/32`` complex channel
uses. The channel bandwidth ratio is therefore independent of the image size::

    CBR = k / (H·W·3) = c / 96        (c = 16, 8, 4, 2  →  CBR = 1/6, 1/12, 1/24, 1/48)

Training (:mod:`editable_deepsc.baselines.deepjscc_train`, ``edsc train deepjscc``):
MSE on teacher faces (training seeds only, random horizontal flips) over a
complex AWGN channel whose SNR is drawn uniformly from [0, 20] dB per image.
Like the original, the model is **not SNR-aware**: one network serves every
SNR, neither end is told the SNR. Rayleigh fading at evaluation uses the
zero-forcing equalised symbols (the receiver knows ``h``).

Built-in models: ``edsc-deepjscc-faces64-c{16,8,4,2}`` in the zoo;
:func:`transmit_deepjscc` (registry name ``deepjscc``) picks the shipped model
whose CBR is nearest to the one asked for and reports the exact CBR used.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import torch
from torch import nn

from editable_deepsc.channel.config import ChannelConfig, make_channel
from editable_deepsc.channel.power import complex_to_real, normalize_power, real_to_complex
from editable_deepsc.channel.snr import snr_to_no
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.metrics.image import psnr, ssim
from editable_deepsc.rng import make_generator
from editable_deepsc.zoo import registry

DOWNSAMPLE = 4
"""Spatial downsampling of the encoder (two stride-2 convolutions)."""
BUILTIN_CHANNELS: tuple[int, ...] = (16, 8, 4, 2)
"""Output channels ``c`` of the shipped models (CBR = c/96: 1/6, 1/12, 1/24, 1/48)."""
MODEL_FORMAT = "edsc-deepjscc"


def model_name(c: int, models: str | None = None) -> str:
    """Zoo name of the DeepJSCC with ``c`` output channels in model set ``models``, e.g. ``edsc-deepjscc-faces64-c8``.

    The set's ``deepjscc`` member (keyed by CBR ``c/96``) names it; a CBR the set
    does not list gets the conventional name ``edsc-deepjscc-<set>-c<c>``.
    """
    from editable_deepsc.zoo.sets import load_set

    ms = load_set(models)
    named = {round(float(cbr) / cbr_of(1)): name for cbr, name in ms.deepjscc().items()} if ms.has("deepjscc") else {}
    return named.get(int(c)) or f"edsc-deepjscc-{ms.name}-c{int(c)}"


def channel_uses(c: int, height: int, width: int) -> int:
    """Complex channel uses ``k = c·(H/4)·(W/4)/2`` for an ``H×W`` image.

    Raises
    ------
    BadInput
        ``H`` or ``W`` not a multiple of 4, or an odd number of real values.
    """
    if height % DOWNSAMPLE or width % DOWNSAMPLE:
        raise BadInput(f"DeepJSCC needs height and width divisible by {DOWNSAMPLE}, got {height}x{width}")
    real = int(c) * (height // DOWNSAMPLE) * (width // DOWNSAMPLE)
    if real % 2:
        raise BadInput(f"c·H·W/16 = {real} real values cannot be paired into complex symbols")
    return real // 2


def cbr_of(c: int) -> float:
    """Exact CBR ``k/(H·W·3) = c/96`` of a model with ``c`` output channels (any H, W divisible by 4)."""
    return float(c) / (2 * DOWNSAMPLE * DOWNSAMPLE * 3)


def channels_for_cbr(cbr: float) -> int:
    """The ``c`` whose CBR ``c/96`` is exactly ``cbr`` (e.g. 1/6 → 16).

    Raises
    ------
    BadInput
        ``cbr`` is not a positive multiple of 1/96.
    """
    c = float(cbr) * 2 * DOWNSAMPLE * DOWNSAMPLE * 3
    if not c > 0 or abs(c - round(c)) > 1e-6 or round(c) < 1:
        raise BadInput(f"CBR {cbr} is not a positive multiple of 1/96 (DeepJSCC layout: CBR = c/96)")
    return int(round(c))


@dataclass(frozen=True)
class DeepJSCCConfig:
    """Architecture of one DeepJSCC model.

    Parameters
    ----------
    c : int
        Real output channels of the encoder (bandwidth: CBR = c/96).
    width : int
        Feature channels of the hidden layers (the paper uses 16 then 32; we use ``width//2`` then ``width``).
    """

    c: int = 8
    width: int = 32

    def __post_init__(self) -> None:
        if int(self.c) < 1 or int(self.width) < 2:
            raise BadInput(f"DeepJSCC needs c >= 1 and width >= 2, got c={self.c}, width={self.width}")

    @property
    def cbr(self) -> float:
        return cbr_of(self.c)


def _conv(cin: int, cout: int, stride: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride, 2), nn.PReLU(cout))


def _deconv(cin: int, cout: int, stride: int, act: bool = True) -> nn.Module:
    layer = nn.ConvTranspose2d(cin, cout, 5, stride, 2, output_padding=stride - 1)
    return nn.Sequential(layer, nn.PReLU(cout)) if act else layer


class DeepJSCC(nn.Module):
    """Encoder + decoder of Bourtsoulatze et al. (5×5 convolutions, PReLU, /4 downsampling).

    Parameters
    ----------
    config : DeepJSCCConfig

    Notes
    -----
    Encoder: conv(3→w/2, s2) → conv(w/2→w, s2) → conv(w→w) → conv(w→w) → conv(w→c), PReLU after
    each; decoder mirrors it with transposed convolutions and a sigmoid output mapped to [-1, 1].
    """

    def __init__(self, config: DeepJSCCConfig | None = None):
        super().__init__()
        self.config = config or DeepJSCCConfig()
        w, c = int(self.config.width), int(self.config.c)
        h = max(1, w // 2)
        self.encoder = nn.Sequential(_conv(3, h, 2), _conv(h, w, 2), _conv(w, w, 1), _conv(w, w, 1), _conv(w, c, 1))
        self.decoder = nn.Sequential(_deconv(c, w, 1), _deconv(w, w, 1), _deconv(w, w, 1), _deconv(w, h, 2),
                                     _deconv(h, 3, 2, act=False))

    @classmethod
    def from_card(cls, card, state: dict[str, torch.Tensor]) -> "DeepJSCC":
        """Zoo builder of kind ``deepjscc``: the model from its config (``c``, ``width``) and tensors."""
        try:
            model = cls(DeepJSCCConfig(c=int(card.config["c"]), width=int(card.config["width"])))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"cannot read DeepJSCC config from {card.path}: {e}") from None
        model.load_state_dict(state)
        return model.eval()

    @property
    def c(self) -> int:
        return int(self.config.c)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [-1, 1] → symbols (N, k) complex64 with unit average power per image."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise BadInput(f"DeepJSCC expects images (N, 3, H, W), got {tuple(image.shape)}")
        channel_uses(self.c, image.shape[-2], image.shape[-1])
        z = self.encoder(image).flatten(1)
        return normalize_power(real_to_complex(z))

    def decode(self, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Received symbols (N, k) complex → images (N, 3, height, width) float32 in [-1, 1]."""
        z = complex_to_real(y).view(y.shape[0], self.c, height // DOWNSAMPLE, width // DOWNSAMPLE)
        return torch.sigmoid(self.decoder(z)) * 2 - 1

    def forward(self, image: torch.Tensor, snr_db: float | torch.Tensor, channel: nn.Module | None = None,
                rng: torch.Generator | None = None) -> torch.Tensor:
        """Encode, pass through ``channel`` (default AWGN) at ``snr_db`` (scalar or (N,)), decode.

        Returns
        -------
        Tensor, float32, shape (N, 3, H, W), in [-1, 1]
        """
        x = self.encode(image)
        snr = torch.as_tensor(snr_db, dtype=torch.float32).reshape(-1, 1)
        channel = channel if channel is not None else make_channel("awgn")
        y = channel(x, snr_to_no(snr), rng=rng)
        return self.decode(y, image.shape[-2], image.shape[-1])


# ---------------------------------------------------------------------- zoo
def model_metadata(model: DeepJSCC, extra: dict | None = None) -> dict[str, str]:
    """Safetensors metadata of a DeepJSCC file: format tag and JSON config (plus ``extra`` fields)."""
    return {"format": MODEL_FORMAT, "config": json.dumps({**asdict(model.config), **(extra or {})})}


def save_model(model: DeepJSCC, path: str | Path, extra: dict | None = None) -> str:
    """Write ``model`` as safetensors (float32) with its config in the metadata; return the sha256."""
    return registry.save_state_dict(model.state_dict(), path, metadata=model_metadata(model, extra))


def load_model(name_or_path: str) -> DeepJSCC:
    """Load a DeepJSCC model by zoo name (sha256-checked) or from a safetensors path.

    Raises
    ------
    CheckpointError
        Missing/corrupt file or not a DeepJSCC file.
    """
    from editable_deepsc.zoo import loader

    return loader.load(name_or_path, kind="deepjscc")


_CACHE: dict[str, DeepJSCC] = {}


def builtin_model(c: int, models: str | None = None) -> DeepJSCC:
    """The shipped model with ``c`` output channels of model set ``models`` (cached per process)."""
    name = model_name(c, models)
    if name not in _CACHE:
        _CACHE[name] = load_model(name)
    return _CACHE[name]


def available_channels(models: str | None = None) -> tuple[int, ...]:
    """``c`` of the built-in models of model set ``models`` whose zoo cards exist."""
    return tuple(c for c in BUILTIN_CHANNELS if registry.find_card(model_name(c, models)) is not None)


def nearest_channels(cbr: float, available: tuple[int, ...] | None = None, models: str | None = None) -> int:
    """The available ``c`` whose CBR ``c/96`` is nearest to ``cbr`` on a log scale.

    Raises
    ------
    BadInput
        Non-positive CBR. CheckpointError: no built-in model.
    """
    if not (isinstance(cbr, (int, float)) and math.isfinite(cbr) and cbr > 0):
        raise BadInput(f"CBR must be a positive number, got {cbr}")
    avail = available_channels(models) if available is None else tuple(available)
    if not avail:
        raise CheckpointError("no DeepJSCC model in the zoo (train one: edsc train deepjscc --cbr 1/12)")
    return min(avail, key=lambda c: (abs(math.log(cbr_of(c) / cbr)), -c))


# ---------------------------------------------------------------------- transmit
@dataclass
class DeepJSCCResult:
    """One DeepJSCC transmission (``image`` is the receiver's output; the rest is JSON-ready)."""

    image: torch.Tensor
    method: str
    snr_db: float
    channel: str
    cbr: float
    cbr_requested: float
    k: int
    image_size: list[int]
    model: str
    power: float
    psnr: float
    ssim: float | None
    decoded_ok: bool = True
    seconds: float = 0.0
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("image", "extra")}
        d.update(self.extra)
        d["cbr_fraction"] = str(Fraction(self.cbr).limit_denominator(1000))
        return d


@torch.no_grad()
def transmit_deepjscc(image: torch.Tensor, cbr: float = 1 / 12, channel: ChannelConfig = ChannelConfig(),
                      seed: int = 0, model: str | None = None, models: str | None = None) -> DeepJSCCResult:
    """Send one image with DeepJSCC (registry name ``deepjscc``).

    Parameters
    ----------
    image : Tensor, float32, shape (1, 3, H, W), in [-1, 1], H and W divisible by 4
    cbr : float
        Wanted CBR; the shipped model with the nearest CBR is used (``result.cbr`` is exact).
    channel : ChannelConfig
        Channel and SNR (default: AWGN at 6 dB).
    seed : int
        Seeds the channel noise.
    model : str, optional
        Zoo name or safetensors path overriding the CBR choice.
    models : str, optional
        Model set whose DeepJSCC models are chosen from (default: the default set).

    Returns
    -------
    DeepJSCCResult
    """
    t0 = time.perf_counter()
    snr_db = channel.snr_db
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 3):
        raise BadInput(f"expected one RGB image (1, 3, H, W), got {getattr(image, 'shape', type(image))}")
    ch = channel.build()
    if model is not None:
        net, name = load_model(model), str(model)
    else:
        c = nearest_channels(float(cbr), models=models)
        net, name = builtin_model(c, models), model_name(c, models)
    h, w = int(image.shape[-2]), int(image.shape[-1])
    k = channel_uses(net.c, h, w)
    x = net.encode(image.float())
    y = ch(x, snr_to_no(torch.tensor([[snr_db]])), rng=make_generator(seed))
    rx = net.decode(y, h, w).clamp(-1, 1)
    s = float(ssim(rx, image)[0]) if min(h, w) >= 11 else None
    return DeepJSCCResult(image=rx, method="deepjscc", snr_db=snr_db, channel=channel.name,
                          cbr=k / (h * w * 3), cbr_requested=float(cbr), k=k, image_size=[h, w], model=name,
                          power=float(x.abs().pow(2).mean()), psnr=float(psnr(rx, image)[0]), ssim=s,
                          seconds=time.perf_counter() - t0, seed=int(seed))


__all__ = ["BUILTIN_CHANNELS", "DeepJSCC", "DeepJSCCConfig", "DeepJSCCResult", "available_channels",
           "builtin_model", "cbr_of", "channel_uses", "channels_for_cbr", "save_model", "load_model",
           "model_name", "nearest_channels", "transmit_deepjscc"]

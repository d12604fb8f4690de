"""LPIPS: the standard AlexNet metric when its weights are on disk, else a labelled proxy.

Standard LPIPS (Zhang et al. 2018, ``net="alex"``, version 0.1) needs two files in
``$TORCH_HOME/hub/checkpoints/`` (``$TORCH_HOME`` defaults to ``~/.cache/torch``):

* ``alexnet-owt-7be5be79.pth`` -- torchvision's ImageNet AlexNet state dict
  (keys ``features.{0,3,6,8,10}.{weight,bias}``; ``classifier.*`` is ignored);
* ``alex.pth`` -- the LPIPS v0.1 linear heads from the `lpips` package
  (``lpips/weights/v0.1/alex.pth``; keys ``lin{0..4}.model.1.weight``,
  shapes (1, C, 1, 1) with C = 64, 192, 384, 256, 256).

Both are read with ``torch.load(weights_only=True)`` into the pure-torch AlexNet
below. The score is ``sum_l mean_hw( w_l . (n(f_l(a)) - n(f_l(b)))**2 )`` with
``n`` the unit-normalisation over channels, after the LPIPS input scaling layer.

Without those files :class:`LPIPS` uses the proxy ``lpips-proxy(effnet-lite0)``:
the same channel-normalised squared distance on five ImageNet
EfficientNet-Lite0 feature maps (strides 2..32, see
:mod:`editable_deepsc.metrics.features`), summed over channels, averaged over
positions and then averaged over the five stages with uniform weights (no
learned heads). Its values lie in [0, 4] and are not comparable with published
LPIPS numbers; reports mark it as a proxy (``LPIPS.is_proxy``).

Both paths are differentiable with respect to the images (usable as a loss).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
from torch import nn

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.metrics.features import DEFAULT_INPUT_SIZE, EfficientNetFeatures
from editable_deepsc.metrics.image import check_pair

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_ALEX_FILE = "alex.pth"
ALEX_CHANNELS: tuple[int, ...] = (64, 192, 384, 256, 256)
#: LPIPS input scaling layer (applied to [-1, 1] images).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
STANDARD_NAME = "lpips(alex,v0.1)"
PROXY_NAME = "lpips-proxy(effnet-lite0)"
NORM_EPS = 1e-10
MIN_SIDE_STANDARD = 32


def checkpoint_dir() -> Path:
    """Return ``$TORCH_HOME/hub/checkpoints`` (read at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def standard_lpips_files() -> dict[str, Path]:
    """Expected paths of the standard LPIPS weight files.

    Returns
    -------
    dict
        ``{"alexnet": Path, "lin": Path}``.
    """
    d = checkpoint_dir()
    return {"alexnet": d / ALEXNET_FILE, "lin": d / LPIPS_ALEX_FILE}


def has_standard_lpips() -> bool:
    """True when both standard LPIPS weight files are present."""
    return all(p.is_file() for p in standard_lpips_files().values())


def normalize_channels(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Divide each feature vector by its L2 norm over channels.

    Parameters
    ----------
    x : torch.Tensor
        Float (N, C, H, W).

    Returns
    -------
    torch.Tensor
        Same shape; ``||x[n, :, i, j]|| ~= 1`` (0 where the vector is 0).
    """
    norm = torch.sqrt(torch.sum(x * x, dim=1, keepdim=True))
    return x / (norm + eps)


class AlexNetFeatures(nn.Module):
    """The convolutional part of torchvision's AlexNet, in plain torch.

    ``forward`` returns the five ReLU outputs LPIPS compares (channels 64, 192,
    384, 256, 256). Parameter names match torchvision's ``features.*`` keys.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )

    TAPS = (1, 4, 7, 9, 11)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the ReLU1..ReLU5 activations for (N, 3, H, W) input."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                out.append(x)
            if i == self.TAPS[-1]:
                break
        return out


class StandardLpipsNet(nn.Module):
    """AlexNet features plus the five LPIPS v0.1 linear heads (frozen)."""

    def __init__(self) -> None:
        super().__init__()
        self.alexnet = AlexNetFeatures()
        self.lins = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in ALEX_CHANNELS])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS per image for (N, 3, H, W) float32 inputs in [-1, 1]; returns (N,)."""
        n = a.shape[0]
        feats = self.alexnet((torch.cat([a, b]) - self.shift) / self.scale)
        total = a.new_zeros(n)
        for f, w in zip(feats, self.lins):
            f = normalize_channels(f)
            d = (f[:n] - f[n:]).pow(2)
            total = total + (d * w).sum(1).mean(dim=(1, 2))
        return total


def _load_tensor_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/IO failure is a bad checkpoint
        raise CheckpointError(f"cannot read {path}: {e.__class__.__name__}: {e}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    return state


@functools.lru_cache(maxsize=4)
def load_standard_lpips(alexnet_path: str, lin_path: str, device: str = "cpu") -> StandardLpipsNet:
    """Build the standard LPIPS network from the two weight files (cached per process).

    Parameters
    ----------
    alexnet_path, lin_path : str
        Paths of ``alexnet-owt-7be5be79.pth`` and ``alex.pth``.
    device : str
        Device string.

    Returns
    -------
    StandardLpipsNet
        Frozen, eval mode, shared between callers.

    Raises
    ------
    CheckpointError
        A file cannot be read or has missing keys / wrong shapes.
    """
    net = StandardLpipsNet()
    alex = _load_tensor_dict(Path(alexnet_path))
    feats = {k: v for k, v in alex.items() if k.startswith("features.")}
    try:
        net.alexnet.load_state_dict(feats, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "mismatch"
        raise CheckpointError(f"{alexnet_path} is not a torchvision AlexNet state dict: {first}") from None
    lin = _load_tensor_dict(Path(lin_path))
    for i, c in enumerate(ALEX_CHANNELS):
        key = f"lin{i}.model.1.weight"
        w = lin.get(key)
        if w is None or tuple(w.shape) != (1, c, 1, 1):
            got = None if w is None else tuple(w.shape)
            raise CheckpointError(f"{lin_path}: expected {key} of shape (1, {c}, 1, 1), got {got}")
        net.lins[i].data.copy_(w.float())
    net.eval().requires_grad_(False)
    return net.to(torch.device(device))


class LPIPS:
    """Learned perceptual distance, standard when available, else the labelled proxy.

    Parameters
    ----------
    prefer_standard : bool
        Use the standard AlexNet LPIPS when both weight files are in
        ``$TORCH_HOME/hub/checkpoints`` (checked once, at construction).
        ``False`` always gives the proxy.
    proxy_input_size : int
        Side the proxy resizes images to before EfficientNet-Lite0 (multiple of 32).

    Attributes
    ----------
    is_proxy : bool
        True for the EfficientNet-Lite0 proxy.
    name : str
        ``"lpips(alex,v0.1)"`` or ``"lpips-proxy(effnet-lite0)"``.

    Examples
    --------
    >>> metric = LPIPS()
    >>> d = metric(a, b)          # (N,) tensor, differentiable
    >>> metric.name, metric.is_proxy
    """

    def __init__(self, prefer_standard: bool = True, proxy_input_size: int = DEFAULT_INPUT_SIZE):
        files = standard_lpips_files()
        present = [p.is_file() for p in files.values()]
        self.is_proxy = not (prefer_standard and all(present))
        if prefer_standard and any(present) and not all(present):
            missing = ", ".join(str(p) for p, ok in zip(files.values(), present) if not ok)
            warnings.warn(f"standard LPIPS incomplete (missing {missing}); using {PROXY_NAME}", stacklevel=2)
        self.name = PROXY_NAME if self.is_proxy else STANDARD_NAME
        self._files = {k: str(v) for k, v in files.items()}
        self._features = EfficientNetFeatures(input_size=proxy_input_size) if self.is_proxy else None

    def __repr__(self) -> str:
        return f"LPIPS(name={self.name!r}, is_proxy={self.is_proxy})"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance per image pair.

        Parameters
        ----------
        a, b : torch.Tensor
            Float images in [-1, 1], shape (N, 3, H, W) or (3, H, W).

        Returns
        -------
        torch.Tensor
            Float32 (N,), 0 for identical images, larger = more different.
        """
        a, b = check_pair(a, b)
        if a.shape[1] != 3:
            raise BadInput(f"LPIPS needs RGB images (3 channels), got {a.shape[1]}")
        a, b = a.float(), b.float()
        if not self.is_proxy:
            if min(a.shape[-2:]) < MIN_SIDE_STANDARD:
                raise BadInput(f"standard LPIPS needs sides of at least {MIN_SIDE_STANDARD} px, got {tuple(a.shape[-2:])}")
            net = load_standard_lpips(self._files["alexnet"], self._files["lin"], str(a.device))
            return net(a, b)
        return self._proxy(a, b)

    def _proxy(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        maps = self._features.maps(torch.cat([a, b]))
        per_stage = []
        for f in maps:
            f = normalize_channels(f)
            per_stage.append((f[:n] - f[n:]).pow(2).sum(1).mean(dim=(1, 2)))
        return torch.stack(per_stage).mean(0)

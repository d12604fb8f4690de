"""The FID variant of Inception-v3 (pytorch-fid's TF-ported "2015-12-05" graph), in plain torch.

Standard FID numbers are the 2048-d average-pool features of the Inception-v3
graph that TensorFlow's original FID code used, as ported to PyTorch by the
``pytorch-fid`` package. This module rebuilds that network without torchvision
and loads the package's weight file

    ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``

(``$TORCH_HOME`` defaults to ``~/.cache/torch``). Nothing is downloaded: when
the file is absent :func:`fid_inception_path` returns ``None`` and
:class:`editable_deepsc.metrics.fid.FID` uses its labelled EfficientNet proxy.

Differences from torchvision's ImageNet Inception-v3 (all reproduced here):

* the Mixed_5b..5d (A), Mixed_6b..6e (C) and Mixed_7b (E) blocks average-pool
  their pool branch with ``count_include_pad=False`` (TensorFlow semantics);
* the last block, Mixed_7c, max-pools its pool branch instead;
* every convolution is bias-free and followed by BatchNorm with ``eps=1e-3``
  and a ReLU;
* the classifier (``fc``, 1008 classes) is in the file but not needed for the
  pool features; it is accepted and ignored.

Input pipeline (as pytorch-fid): RGB in [-1, 1], resized bilinearly
(``align_corners=False``) to 299x299. pytorch-fid resizes [0, 1] images and
then maps them to [-1, 1]; bilinear resizing is affine-equivariant, so resizing
[-1, 1] images directly gives the same network input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.metrics.lpips import checkpoint_dir

FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_FEATURE_DIM = 2048
FID_INPUT_SIZE = 299
BN_EPS = 1e-3
#: Keys of the weight file that the pool-feature network does not use.
IGNORED_KEYS = frozenset({"fc.weight", "fc.bias"})


def fid_inception_path() -> Path | None:
    """Path of the pytorch-fid Inception weight file, or ``None`` when it is absent.

    Returns
    -------
    pathlib.Path or None
        ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``
        when that file exists (read at call time), else ``None``.
    """
    path = checkpoint_dir() / FID_INCEPTION_FILE
    return path if path.is_file() else None


class ConvBN(nn.Module):
    """Bias-free convolution, BatchNorm (eps 1e-3), ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, c_in, H, W) float32 -> (N, c_out, H', W')."""
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that ignores the zero padding (TensorFlow 'SAME')."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool_same(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class BlockA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pooled 1x1 branches.

    Output channels ``64 + 64 + 96 + pool_features``.
    """

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 64, 1)
        self.branch5x5_1 = ConvBN(c_in, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, c_in, 35, 35) -> (N, 224 + pool_features, 35, 35)."""
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([self.branch1x1(x), b5, b3, bp], dim=1)


class ReductionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a); output channels ``384 + 96 + c_in``."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, c_in, 35, 35) -> (N, 480 + c_in, 17, 17)."""
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class BlockC(nn.Module):
    """17x17 block (Mixed_6b..6e) with factorised 7x7 convolutions; 768 output channels."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = (1, 7), (7, 1)
        pad_row, pad_col = (0, 3), (3, 0)
        self.branch1x1 = ConvBN(c_in, 192, 1)
        self.branch7x7_1 = ConvBN(c_in, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, row, padding=pad_row)
        self.branch7x7_3 = ConvBN(c7, 192, col, padding=pad_col)
        self.branch7x7dbl_1 = ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, col, padding=pad_col)
        self.branch7x7dbl_3 = ConvBN(c7, c7, row, padding=pad_row)
        self.branch7x7dbl_4 = ConvBN(c7, c7, col, padding=pad_col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, row, padding=pad_row)
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 768, 17, 17) -> (N, 768, 17, 17)."""
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([self.branch1x1(x), b7, d, bp], dim=1)


class ReductionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a); output channels ``320 + 192 + c_in``."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(c_in, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 768, 17, 17) -> (N, 1280, 8, 8)."""
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class BlockE(nn.Module):
    """8x8 block (Mixed_7b, Mixed_7c) with split 1x3/3x1 outputs; 2048 output channels.

    Parameters
    ----------
    c_in : int
        Input channels (1280 or 2048).
    max_pool : bool
        Pool branch uses 3x3 max pooling (the FID graph's Mixed_7c) instead of
        the padding-excluding average pool (Mixed_7b).
    """

    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(c_in, 320, 1)
        self.branch3x3_1 = ConvBN(c_in, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, c_in, 8, 8) -> (N, 2048, 8, 8)."""
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], dim=1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], dim=1)
        pooled = _max_pool_same(x) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], dim=1)


class FidInceptionV3(nn.Module):
    """pytorch-fid's Inception-v3 up to the 2048-d global average pool.

    Module and parameter names follow the weight file (``Conv2d_1a_3x3.conv.weight``,
    ``Mixed_5b.branch1x1.bn.running_mean``, ...). Call it on float32
    (N, 3, H, W) RGB images in [-1, 1]; it returns float32 (N, 2048).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, pool_features=32)
        self.Mixed_5c = BlockA(256, pool_features=64)
        self.Mixed_5d = BlockA(288, pool_features=64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = BlockC(768, c7=128)
        self.Mixed_6c = BlockC(768, c7=160)
        self.Mixed_6d = BlockC(768, c7=160)
        self.Mixed_6e = BlockC(768, c7=192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pool features of RGB images.

        Parameters
        ----------
        images : torch.Tensor
            Float (N, 3, H, W) in [-1, 1], any H, W >= 1.

        Returns
        -------
        torch.Tensor
            Float32 (N, 2048), non-negative (post-ReLU averages).
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise BadInput(f"FID Inception needs images of shape (N, 3, H, W), got {tuple(images.shape)}")
        x = F.interpolate(images.float(), size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear",
                          align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))


def _is_optional(key: str) -> bool:
    return key in IGNORED_KEYS or key.endswith(".num_batches_tracked")


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/IO failure is a bad checkpoint
        raise CheckpointError(f"cannot read {path}: {e.__class__.__name__}: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a tensor state dict")
    return state


def _check_keys(net: FidInceptionV3, state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Strict key/shape check; returns the entries the network loads."""
    expected = {k: v.shape for k, v in net.state_dict().items() if not _is_optional(k)}
    given = {k: v for k, v in state.items() if not _is_optional(k)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        raise CheckpointError(f"{path} is not a pytorch-fid Inception state dict: {', '.join(parts)}")
    for k, shape in expected.items():
        if tuple(given[k].shape) != tuple(shape):
            raise CheckpointError(f"{path}: {k} has shape {tuple(given[k].shape)}, expected {tuple(shape)}")
    if not all(torch.isfinite(v).all() for v in given.values() if v.is_floating_point()):
        raise CheckpointError(f"{path} contains NaN or inf weights")
    return given


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int, device: str) -> FidInceptionV3:
    net = FidInceptionV3()
    weights = _check_keys(net, _read_state(Path(path)), Path(path))
    net.load_state_dict(weights, strict=False)  # keys verified above; num_batches_tracked may be absent
    net.eval().requires_grad_(False)
    return net.to(torch.device(device))


def load_fid_inception(path: str | Path, device: str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """Load the FID Inception-v3 from a pytorch-fid weight file (cached per file version and device).

    Parameters
    ----------
    path : str or pathlib.Path
        A ``pt_inception-2015-12-05-6726825d.pth`` state dict (read with
        ``torch.load(weights_only=True)``; ``fc.*`` and ``num_batches_tracked``
        entries are optional, every other key must match exactly).
    device : str
        Device string, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    callable
        Frozen :class:`FidInceptionV3` in eval mode mapping float32 (N, 3, H, W)
        images in [-1, 1] to float32 (N, 2048) pool features.

    Raises
    ------
    CheckpointError
        The file is missing, unreadable, or its keys/shapes do not match.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise CheckpointError(f"FID Inception weights not found: {p} ({e.strerror})") from None
    if not p.is_file():
        raise CheckpointError(f"FID Inception weights not found: {p} is not a file")
    return _load_cached(str(p.resolve()), st.st_mtime_ns, st.st_size, str(torch.device(device)))

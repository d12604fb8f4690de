"""e4e-style inversion encoder: image -> ``w_plus`` of a style-based generator in one forward pass.

Follows "Designing an Encoder for StyleGAN Image Manipulation" (Tov et al.
2021, e4e), scaled down for the CPU and generic over any
:class:`~editable_deepsc.generator.base.StyleGenerator`; the input side and the
channels are configurable (64x64 for ``faces64``, 256x256 FFHQ-aligned faces for
the 1024 ``ffhq`` generator, :data:`FFHQ_CHANNELS`):

* a small convolutional backbone halves the resolution down to 4x4
  (``channels`` per stage, GroupNorm + LeakyReLU, a residual 3x3 conv per
  stage) and a top-down feature pyramid (1x1 laterals, upsample + add) gives
  coarse (4x4), medium (8x8) and fine (16x16) maps;
* ``w_0 = w_avg + head_0(coarse)`` -- one base style (``w_avg`` is the
  generator's mean ``w``, a buffer);
* per-layer offsets ``delta_i`` (i = 1..num_ws-1) come from the map whose
  resolution matches the layer (the layers are split into three consecutive
  groups: coarse, medium, fine);
* ``w_plus[:, i] = w_0 + delta_i`` (``delta_0 = 0``).

Offsets are regularised towards zero during training (:meth:`E4EEncoder.delta_norm`,
e4e's L2 delta loss) and can be unlocked progressively: only the first
``num_active`` layers get an offset, the rest copy ``w_0`` (the buffer
``num_active`` is part of the saved state).

Weights are safetensors (float16 storage allowed, loaded as float32);
:func:`load_encoder` loads them by zoo name (``edsc-e4e-faces64``,
``edsc-e4e-ffhq``) or path and checks that they fit the generator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.zoo import registry
from editable_deepsc.zoo.sets import load_set

#: The encoder of the default model set (``edsc-e4e-faces64``).
ENCODER_NAME: str = load_set().member("encoder")
DEFAULT_CHANNELS: tuple[int, ...] = (24, 32, 64, 128, 128)
#: Channels of a from-scratch 256x256 encoder (stem + 6 halvings down to 4x4).
FFHQ_CHANNELS: tuple[int, ...] = (16, 24, 32, 64, 128, 192, 256)
#: The frozen ImageNet backbone an encoder may read instead of its own convolutions.
BACKBONE = "efficientnet-lite0"
#: EfficientNet-Lite0 blocks read as the (fine, medium, coarse) levels: strides 8, 16, 32.
BACKBONE_BLOCKS: tuple[int, ...] = (4, 10, 15)
HEAD_WIDTH = 64
FORMAT = "edsc-e4e-encoder"


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    groups = 8 if cout % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(groups, cout), nn.LeakyReLU(0.2)
    )


class _Stage(nn.Module):
    """Downsample by 2 (3x3 stride 2) then a residual 3x3 conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = _block(cin, cout, 2)
        self.res = _block(cout, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.res(x)


class _MapToStyle(nn.Module):
    """e4e's map2style: stride-2 convs down to 2x2, flatten, linear to ``n_out`` values."""

    def __init__(self, cin: int, size: int, n_out: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        while size > 2:
            layers += [nn.Conv2d(c, width, 3, 2, 1), nn.LeakyReLU(0.2)]
            c, size = width, size // 2
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(c * size * size, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


def layer_groups(num_ws: int) -> list[list[int]]:
    """Split the offset layers 1..num_ws-1 into (coarse, medium, fine) consecutive groups.

    >>> layer_groups(5)
    [[1, 2], [3], [4]]
    """
    if num_ws < 1:
        raise BadInput(f"num_ws must be >= 1, got {num_ws}")
    return [list(map(int, g)) for g in np.array_split(np.arange(1, num_ws), 3)]


class E4EEncoder(nn.Module):
    """Image (N, 3, R, R) in [-1, 1] -> ``w_plus`` (N, num_ws, w_dim) float32.

    Parameters
    ----------
    num_ws, w_dim : int
        Latent layout of the target generator.
    resolution : int
        Input side (a power of two >= 16); the backbone halves it down to 4.
    channels : tuple of int
        Channels of the stem and of every downsampling stage; its length must be
        ``log2(resolution / 4) + 1`` (stem at full resolution, then one per halving)
        or is stretched/truncated to it (the last value is repeated).
    w_avg : torch.Tensor, optional
        The generator's mean ``w`` (w_dim,), the origin of ``w_0``; zeros if omitted.
    backbone : str, optional
        ``"efficientnet-lite0"``: the levels come from the frozen ImageNet
        EfficientNet-Lite0 of :mod:`editable_deepsc.metrics.features` (blocks 4, 10, 15
        at strides 8, 16, 32; its weights come from their pip package and are not part
        of this module's state), mapped by 1x1 laterals to ``channels[-1]`` and summed
        top-down; only the laterals and heads train. ``None``: the own convolutional
        backbone above.
    head_width : int
        Channels of the map-to-style convolutions.
    readout : str
        ``"conv"``: e4e's map-to-style heads on the pyramid levels. ``"linear"`` (backbone
        only): the three backbone maps are average-pooled, concatenated (472 values),
        standardised (buffers ``feat_mean``, ``feat_std``) and read by two linear maps,
        ``w_0 = w_avg + A_0 f`` and ``delta_i = A_i f`` -- fitted in closed form by ridge
        regression (:func:`editable_deepsc.train.encoder_ffhq.fit_linear_readout`).

    Attributes
    ----------
    num_active : torch.Tensor
        Long scalar buffer: how many layers receive an offset (progressive
        training); ``num_ws`` = all of them.
    """

    def __init__(
        self,
        num_ws: int,
        w_dim: int,
        resolution: int = 64,
        channels: tuple[int, ...] = DEFAULT_CHANNELS,
        w_avg: torch.Tensor | None = None,
        backbone: str | None = None,
        head_width: int = HEAD_WIDTH,
        readout: str = "conv",
    ) -> None:
        super().__init__()
        if readout not in ("conv", "linear") or (readout == "linear" and backbone is None):
            raise BadInput(f"readout must be 'conv' or (with a backbone) 'linear', got {readout!r}")
        self.readout = readout
        if resolution < 16 or resolution & (resolution - 1):
            raise BadInput(f"encoder resolution must be a power of two >= 16, got {resolution}")
        if num_ws < 1 or w_dim < 1:
            raise BadInput(f"num_ws and w_dim must be >= 1, got {num_ws}, {w_dim}")
        if backbone not in (None, BACKBONE):
            raise BadInput(f"unknown encoder backbone {backbone!r} (known: {BACKBONE})")
        self.num_ws, self.w_dim, self.resolution = int(num_ws), int(w_dim), int(resolution)
        self.backbone, self.head_width = backbone, int(head_width)
        if backbone is None:
            n_stages = int(np.log2(resolution // 4))
            ch = list(channels)[: n_stages + 1]
            ch += [ch[-1]] * (n_stages + 1 - len(ch))
            self.channels = tuple(int(c) for c in ch)
            self.stem = _block(3, ch[0], 1)
            self.stages = nn.ModuleList(_Stage(ch[i], ch[i + 1]) for i in range(n_stages))
            # pyramid levels: 4x4 (coarse), 8x8 (medium), 16x16 (fine)
            self.level_channels = [ch[-1], ch[-2], ch[-3]]
            self.level_sizes = [4, 8, 16]
            top = ch[-1]
            self.laterals = nn.ModuleList(nn.Conv2d(c, top, 1) for c in self.level_channels[1:])
        else:
            if resolution < 64 or resolution % 32:
                raise BadInput(f"a backbone encoder needs a side that is a multiple of 32 and >= 64, got {resolution}")
            from editable_deepsc.metrics.features import STAGE_CHANNELS

            self.channels = (int(channels[-1]),)
            top = self.channels[0]
            self.level_channels = [STAGE_CHANNELS[b] for b in reversed(BACKBONE_BLOCKS)]
            self.level_sizes = [resolution // 32, resolution // 16, resolution // 8]
            if readout == "conv":
                self.laterals = nn.ModuleList(nn.Conv2d(c, top, 1) for c in self.level_channels)
        self.groups = layer_groups(self.num_ws)
        self.register_buffer("w_avg", torch.zeros(self.w_dim) if w_avg is None else w_avg.detach().float().clone())
        self.register_buffer("num_active", torch.tensor(self.num_ws, dtype=torch.long))
        if readout == "linear":
            d = sum(self.level_channels)
            self.register_buffer("feat_mean", torch.zeros(d))
            self.register_buffer("feat_std", torch.ones(d))
            self.lin0 = nn.Linear(d, self.w_dim)
            self.lin_delta = nn.Linear(d, (self.num_ws - 1) * self.w_dim)
            for lin in (self.lin0, self.lin_delta):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
            return
        self.head0 = _MapToStyle(top, self.level_sizes[0], self.w_dim, self.head_width)
        self.heads = nn.ModuleList(
            _MapToStyle(top, self.level_sizes[lvl], len(g) * self.w_dim, self.head_width) if g else nn.Identity()
            for lvl, g in enumerate(self.groups)
        )
        for h in self.heads:  # offsets start at zero: initially w_plus = w_0 in every layer
            if isinstance(h, _MapToStyle):
                nn.init.zeros_(h.linear.weight)
                nn.init.zeros_(h.linear.bias)

    @classmethod
    def from_card(cls, card: registry.ModelCard, state: dict[str, torch.Tensor]) -> "E4EEncoder":
        """Zoo builder: the encoder from its card's config and (sha256-checked) tensors."""
        from editable_deepsc.zoo.loader import fit_state

        cfg = card.config
        try:
            enc = cls(int(cfg["num_ws"]), int(cfg["w_dim"]), int(cfg["resolution"]), tuple(int(c) for c in cfg["channels"]),
                      backbone=cfg.get("backbone"), head_width=int(cfg.get("head_width", HEAD_WIDTH)),
                      readout=str(cfg.get("readout", "conv")))
        except (KeyError, TypeError, ValueError, BadInput) as e:
            raise CheckpointError(f"encoder config unusable: {e}") from None
        fit_state(enc, state, "encoder checkpoint")
        return enc.eval().requires_grad_(False)

    @classmethod
    def for_generator(
        cls, generator: StyleGenerator, channels: tuple[int, ...] = DEFAULT_CHANNELS, resolution: int | None = None,
        backbone: str | None = None, head_width: int = HEAD_WIDTH, readout: str = "conv",
    ) -> "E4EEncoder":
        """A fresh encoder matching ``generator``'s num_ws, w_dim and mean ``w``.

        ``resolution`` is the input side (default: the generator's resolution); it
        may be smaller, e.g. 256 for the 1024 ``ffhq`` generator. ``backbone`` and
        ``head_width``, ``readout`` as in the constructor.
        """
        side = generator.resolution if resolution is None else int(resolution)
        if side > generator.resolution:
            raise BadInput(f"encoder input side {side} exceeds {generator.name}'s resolution {generator.resolution}")
        return cls(generator.num_ws, generator.w_dim, side, channels, w_avg=generator.mean_w().cpu(),
                   backbone=backbone, head_width=head_width, readout=readout)

    def config(self) -> dict[str, object]:
        """Constructor arguments (JSON-serialisable) to rebuild this encoder."""
        cfg: dict[str, object] = {
            "num_ws": self.num_ws,
            "w_dim": self.w_dim,
            "resolution": self.resolution,
            "channels": list(self.channels),
        }
        if self.backbone is not None or self.head_width != HEAD_WIDTH:
            cfg.update(backbone=self.backbone, head_width=self.head_width)
        if self.readout != "conv":
            cfg["readout"] = self.readout
        return cfg

    def pooled_features(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Average-pooled, concatenated backbone maps (N, 472), before standardisation (linear readout)."""
        return torch.cat([m.float().mean(dim=(2, 3)) for m in maps], 1)

    def parts_from_maps(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward_parts` from backbone maps ``[coarse, medium, fine]`` (e.g. cached ones)."""
        if self.readout == "conv":
            return self.parts_from_levels(self.levels_from_maps(maps))
        f = (self.pooled_features(maps) - self.feat_mean) / self.feat_std
        n = f.shape[0]
        w0 = self.w_avg + self.lin0(f)
        deltas = torch.cat([w0.new_zeros(n, 1, self.w_dim), self.lin_delta(f).view(n, self.num_ws - 1, self.w_dim)], 1)
        active = (torch.arange(self.num_ws, device=deltas.device) < self.num_active).to(deltas.dtype)
        return w0, deltas * active[None, :, None]

    def backbone_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The frozen backbone's maps ``[coarse, medium, fine]`` of ``images`` (backbone encoders only; no gradient).

        Parameters
        ----------
        images : torch.Tensor
            Float32 (N, 3, R, R) in [-1, 1].

        Returns
        -------
        list of torch.Tensor
            Float32 (N, C_l, s_l, s_l) with C = 320, 112, 40 and s = R/32, R/16, R/8.
        """
        if self.backbone is None:
            raise BadInput("this encoder has no pretrained backbone")
        from editable_deepsc.metrics.features import EfficientNetFeatures

        self._check_images(images)
        with torch.no_grad():
            maps = EfficientNetFeatures(self.resolution, BACKBONE_BLOCKS).maps(images.float())
        return maps[::-1]

    def levels_from_maps(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Top-down sum of the laterals of backbone maps: ``[coarse, medium, fine]``, each (N, channels[-1], s, s)."""
        p = self.laterals[0](maps[0].float())
        out = [p]
        for lat, m in zip(self.laterals[1:], maps[1:]):
            p = F.interpolate(p, scale_factor=2.0, mode="bilinear", align_corners=False) + lat(m.float())
            out.append(p)
        return out

    def _check_images(self, images: torch.Tensor) -> None:
        r = self.resolution
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (3, r, r):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise BadInput(f"encoder input must have shape (N, 3, {r}, {r}), got {shape}")

    def pyramid(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature pyramid ``[coarse, medium, fine]`` (4, 8, 16 px; R/32, R/16, R/8 with a backbone), (N, channels[-1], s, s)."""
        if self.backbone is not None:
            return self.levels_from_maps(self.backbone_maps(images))
        x = self.stem(images)
        feats = [x]
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        coarse = feats[-1]
        out = [coarse]
        p = coarse
        for lat, f in zip(self.laterals, (feats[-2], feats[-3])):
            p = F.interpolate(p, scale_factor=2.0, mode="bilinear", align_corners=False) + lat(f)
            out.append(p)
        return out

    def forward_parts(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base style and per-layer offsets.

        Parameters
        ----------
        images : torch.Tensor
            Float32 (N, 3, R, R) in [-1, 1].

        Returns
        -------
        w0 : torch.Tensor
            Float32 (N, w_dim).
        deltas : torch.Tensor
            Float32 (N, num_ws, w_dim); ``deltas[:, 0] = 0`` and layers
            ``>= num_active`` are 0.
        """
        self._check_images(images)
        if self.backbone is not None:
            return self.parts_from_maps(self.backbone_maps(images))
        return self.parts_from_levels(self.pyramid(images.float()))

    def parts_from_levels(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward_parts` from the pyramid levels (e.g. from cached backbone maps via :meth:`levels_from_maps`)."""
        n = levels[0].shape[0]
        w0 = self.w_avg + self.head0(levels[0])
        deltas = w0.new_zeros(n, self.num_ws, self.w_dim)
        for lvl, (g, head) in enumerate(zip(self.groups, self.heads)):
            if g:
                deltas[:, g] = head(levels[lvl]).view(n, len(g), self.w_dim)
        active = (torch.arange(self.num_ws, device=deltas.device) < self.num_active).to(deltas.dtype)
        return w0, deltas * active[None, :, None]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``w_plus = w_0 + deltas``, float32 (N, num_ws, w_dim)."""
        w0, deltas = self.forward_parts(images)
        return w0[:, None, :] + deltas

    @staticmethod
    def delta_norm(deltas: torch.Tensor) -> torch.Tensor:
        """e4e's offset regulariser: sum over layers of the L2 norm of ``delta_i``, per image (N,)."""
        return deltas.norm(dim=2).sum(1)


def encoder_metadata(encoder: E4EEncoder) -> dict[str, str]:
    """Safetensors metadata of an encoder file: format tag and JSON constructor config."""
    return {"format": FORMAT, "config": json.dumps(encoder.config())}


def encoder_state(encoder: E4EEncoder, half: bool = False) -> dict[str, torch.Tensor]:
    """The tensors to store: float weights as float16 with ``half``.

    The buffers ``w_avg``, ``feat_mean`` and ``feat_std`` stay float32.
    """
    state = encoder.state_dict()
    if not half:
        return state
    keep = ("w_avg", "feat_mean", "feat_std")
    return {k: v.half() if v.is_floating_point() and k not in keep else v for k, v in state.items()}


def save_encoder(encoder: E4EEncoder, path: str | Path, half: bool = False) -> str:
    """Write the encoder as safetensors (config in the metadata; float16 weights with ``half``); return its sha256."""
    return registry.save_state_dict(encoder_state(encoder, half), path, metadata=encoder_metadata(encoder))


def load_encoder(
    name_or_path: str | Path = ENCODER_NAME,
    generator: StyleGenerator | None = None,
    device: str | torch.device = "cpu",
) -> E4EEncoder:
    """Load an encoder by zoo name or safetensors path (sha256-checked when registered).

    Parameters
    ----------
    name_or_path : str or Path
        Registered name (default ``edsc-e4e-faces64``; ``edsc-e4e-ffhq`` for the
        ``ffhq`` set) or a ``.safetensors`` file written by :func:`save_encoder`.
    generator : StyleGenerator, optional
        If given, the encoder's num_ws and w_dim must match it and its input side
        must not exceed the generator's resolution (the ``ffhq`` encoder reads
        256x256 faces for the 1024 generator).
    device : str or torch.device

    Returns
    -------
    E4EEncoder
        In eval mode, gradients disabled.

    Raises
    ------
    CheckpointError
        Unknown name, missing/corrupt file, sha256 mismatch, wrong shapes, or a
        latent layout that does not fit ``generator``.
    """
    from editable_deepsc.zoo import loader

    p = Path(name_or_path)
    if p.suffix and not p.is_file():
        raise CheckpointError(f"encoder checkpoint not found: {p}")
    enc = loader.load(name_or_path, kind="encoder")
    if generator is not None and (
        (enc.num_ws, enc.w_dim) != (generator.num_ws, generator.w_dim) or enc.resolution > generator.resolution
    ):
        raise CheckpointError(
            f"encoder outputs ({enc.num_ws}, {enc.w_dim}) at {enc.resolution}px but {generator.name} needs "
            f"({generator.num_ws}, {generator.w_dim}) at {generator.resolution}px"
        )
    return enc.to(device).eval().requires_grad_(False)

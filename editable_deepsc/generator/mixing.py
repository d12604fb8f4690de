"""Style mixing in MobileStyleGAN's W+: which style sits where, coarse / middle / fine groups, swapping them.

W+ holds one 512-d style per modulation (:mod:`editable_deepsc.generator.mobile_stylegan`),
23 for the FFHQ 1024 model. Each style is placed at the resolution of the block its
modulation sits in:

======  ===================  ==========  ======
index   modulation           resolution  group
======  ===================  ==========  ======
0       ``conv1``            4           coarse
1-3     ``layers.0`` up/conv1/conv2   8    coarse
4-6     ``layers.1``         16          middle
7-9     ``layers.2``         32          middle
10-12   ``layers.3``         64          fine
13-15   ``layers.4``         128         fine
16-18   ``layers.5``         256         fine
19-21   ``layers.6``         512         fine
22      ``to_img``           1024        fine
======  ===================  ==========  ======

A block's ``up`` modulation scales the features *entering* the block (at half its side) but
only shapes the block's own output (they are read as that block's Haar sub-bands), so it
counts at the block's resolution; the image head (``to_img``) predicts the sub-bands of the
final image and counts at the image's resolution. The groups follow StyleGAN (Karras et al.
2019, §3.1): **coarse** = 4²–8², **middle** = 16²–32², **fine** = 64² and up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.mobile_stylegan import MobileStyleGANConfig

GROUPS: tuple[str, ...] = ("coarse", "middle", "fine")
"""The style groups, from the lowest resolution up."""
GROUP_MAX_RESOLUTION: dict[str, int | None] = {"coarse": 8, "middle": 32, "fine": None}
"""Largest block side of each group (``None``: no limit)."""
ALL = "all"
"""Pseudo-group: every style (mixing it gives B)."""


@dataclass(frozen=True)
class StyleSlot:
    """Where one W+ entry acts.

    Attributes
    ----------
    index : int
        Position in ``w_plus`` (0 .. num_ws - 1).
    module : str
        The modulation it feeds (``"conv1"``, ``"layers.3.up"``, ..., ``"to_img"``).
    resolution : int
        Side of the block it sits in (see the module docstring).
    group : str
        One of :data:`GROUPS`.
    """

    index: int
    module: str
    resolution: int
    group: str

    def to_json(self) -> dict[str, int | str]:
        return {"index": self.index, "module": self.module, "resolution": self.resolution, "group": self.group}


def group_of(resolution: int) -> str:
    """The group of a block of side ``resolution`` (:data:`GROUP_MAX_RESOLUTION`)."""
    for name in GROUPS:
        limit = GROUP_MAX_RESOLUTION[name]
        if limit is None or resolution <= limit:
            return name
    raise AssertionError("the last group has no limit")


def style_layout(config: MobileStyleGANConfig) -> list[StyleSlot]:
    """One :class:`StyleSlot` per W+ entry, in ``w_plus`` order (length ``config.num_ws``)."""
    slots = [StyleSlot(0, "conv1", 4, group_of(4))]
    for i in range(len(config.channels)):
        r = config.block_resolution(i)
        for part in ("up", "conv1", "conv2"):
            slots.append(StyleSlot(len(slots), f"layers.{i}.{part}", r, group_of(r)))
    slots.append(StyleSlot(len(slots), "to_img", config.resolution, group_of(config.resolution)))
    assert len(slots) == config.num_ws
    return slots


def style_groups(config: MobileStyleGANConfig) -> dict[str, tuple[int, ...]]:
    """``{group: W+ indices}`` for :data:`GROUPS` (a partition of ``range(num_ws)``; a group may be empty)."""
    layout = style_layout(config)
    return {name: tuple(s.index for s in layout if s.group == name) for name in GROUPS}


def group_mask(config: MobileStyleGANConfig, groups: str | Sequence[str]) -> torch.Tensor:
    """(num_ws,) bool mask of the styles of ``groups`` (a name, several names, or :data:`ALL`)."""
    names = [groups] if isinstance(groups, str) else list(groups)
    mask = torch.zeros(config.num_ws, dtype=torch.bool)
    table = style_groups(config)
    for name in names:
        if name == ALL:
            mask[:] = True
        elif name in table:
            mask[list(table[name])] = True
        else:
            raise BadInput(f"unknown style group {name!r} (known: {', '.join((*GROUPS, ALL))})")
    return mask


def mix_styles(w_a: torch.Tensor, w_b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A's W+ with the styles where ``mask`` is true taken from B.

    Parameters
    ----------
    w_a, w_b : torch.Tensor
        (N, num_ws, w_dim) float32 (or (num_ws, w_dim)); broadcastable against each other.
    mask : torch.Tensor
        (num_ws,) bool.

    Returns
    -------
    torch.Tensor
        Same shape as the broadcast of ``w_a`` and ``w_b``; a new tensor.
    """
    if mask.dim() != 1 or mask.shape[0] != w_a.shape[-2] or w_b.shape[-2] != w_a.shape[-2]:
        raise BadInput(f"mask of {tuple(mask.shape)} does not fit W+ of {tuple(w_a.shape)} and {tuple(w_b.shape)}")
    return torch.where(mask.to(w_a.device)[:, None], w_b, w_a)


def mix_groups(
    config: MobileStyleGANConfig, w_a: torch.Tensor, w_b: torch.Tensor, groups: str | Sequence[str]
) -> torch.Tensor:
    """A's W+ (N, num_ws, w_dim) with B's styles of ``groups`` (``"all"`` gives B)."""
    return mix_styles(w_a, w_b, group_mask(config, groups))

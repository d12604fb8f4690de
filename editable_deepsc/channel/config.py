"""A physical channel at one operating point, and building a channel module by name."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from editable_deepsc.channel.awgn import AWGN
from editable_deepsc.channel.rayleigh import RayleighBlockFading
from editable_deepsc.channel.snr import check_snr, snr_to_no
from editable_deepsc.errors import BadInput
from editable_deepsc.vocab import CHANNELS  # the channel names make_channel and ChannelConfig understand


def make_channel(name: str, block_length: int | None = None) -> nn.Module:
    """Build a channel by name (``"awgn"`` or ``"rayleigh"``).

    Both channels are called as ``channel(x, no, rng=rng, return_h=True)``
    and then return ``(y, h)`` of shapes (N, k) complex64 (``h`` all ones for AWGN).

    Raises
    ------
    BadInput
        For an unknown channel name.
    """
    key = str(name).strip().lower()
    if key == "awgn":
        return AWGN()
    if key == "rayleigh":
        return RayleighBlockFading(block_length=block_length)
    raise BadInput(f"unknown channel {name!r} (choose from: {', '.join(CHANNELS)})")


@dataclass(frozen=True)
class ChannelConfig:
    """A physical channel at one operating point.

    Parameters
    ----------
    name : {"awgn", "rayleigh"}
        Channel model.
    snr_db : float
        Average SNR in dB (unit-power symbols, ``no = 10**(-snr_db/10)``), in [-10, 40].
    block_length : int or None
        Rayleigh coherence block in symbols (``None``: one gain per transmitted block).

    Examples
    --------
    >>> ch = ChannelConfig("rayleigh", 6.0)
    >>> y, h = ch.build()(x, ch.no, rng=rng, return_h=True)  # doctest: +SKIP
    """

    name: str = "awgn"
    snr_db: float = 6.0
    block_length: int | None = None

    def __post_init__(self) -> None:
        name = str(self.name).strip().lower()
        if name not in CHANNELS:
            raise BadInput(f"unknown channel {self.name!r} (choose from: {', '.join(CHANNELS)})")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "snr_db", check_snr(self.snr_db))
        if self.block_length is not None and int(self.block_length) < 1:
            raise BadInput(f"block_length must be >= 1, got {self.block_length}")

    @property
    def no(self) -> float:
        """Noise variance per complex symbol, ``10**(-snr_db/10)``."""
        return snr_to_no(self.snr_db)

    def build(self) -> nn.Module:
        """The channel module (:class:`AWGN` or :class:`RayleighBlockFading` with ``block_length``)."""
        return make_channel(self.name, self.block_length)

    def to_json(self) -> dict:
        return asdict(self)


__all__ = ["CHANNELS", "ChannelConfig", "make_channel"]

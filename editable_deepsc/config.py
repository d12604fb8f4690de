"""Configuration dataclasses (validated on construction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from editable_deepsc.channel import CHANNELS, check_snr
from editable_deepsc.errors import BadInput


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

    def to_json(self) -> dict:
        return asdict(self)

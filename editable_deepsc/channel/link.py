"""One semantic link: latent → channel encoder → channel → channel decoder → latent.

Every path that sends a latent -- :meth:`EditableDeepSC.send_full
<editable_deepsc.system.EditableDeepSC.send_full>`, :meth:`~editable_deepsc.system.EditableDeepSC.send_delta`
and the evaluation's semantic method -- calls :func:`send_latent`, so the
channel maths (SNR the receiver assumes, random draws, power) are the same everywhere.

::

    w ──encode(w, snr_db)──► x (N, k) ──channel(x, no; rng)──► y, h ──decode(y, snr_rx_db)──► ŵ

The receiver knows the gains ``h`` (coherent) and decodes at the instantaneous
SNR ``snr_db + 10·log10(mean |h|²)`` (``h = 1`` for AWGN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.channel.snr import snr_to_no
from editable_deepsc.errors import BadInput
from editable_deepsc.timing import timed

Encode = Callable[[torch.Tensor, float], torch.Tensor]
"""``encode(w, snr_db) -> x``: latent (N, ...) float32 → symbols (N, k) complex64."""
Decode = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``decode(y, snr_rx_db) -> ŵ``: received symbols (N, k) complex64 + SNR (N,) dB → latent."""


def check_finite(w: torch.Tensor, what: str) -> None:
    """Refuse to transmit a latent that holds NaN or inf.

    Raises
    ------
    BadInput
        ``"<what> contains NaN or inf; refusing to transmit it"``.
    """
    if not torch.isfinite(w).all():
        raise BadInput(f"{what} contains NaN or inf; refusing to transmit it")


def pass_channel(
    x: torch.Tensor, channel: nn.Module, snr_db: torch.Tensor, rng: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Send symbols (N, k) through a channel module at per-sample SNR ``snr_db`` (N,).

    Returns
    -------
    y : Tensor, complex64, shape (N, k)
        Received (equalised, for Rayleigh) symbols.
    h : Tensor, complex64, shape (N, k)
        Channel gains (all ones for AWGN).
    snr_rx_db : Tensor, float32, shape (N,)
        SNR the receiver assumes: ``snr_db + 10·log10(mean |h|²)``.
    """
    no = snr_to_no(snr_db).view(-1, 1)
    y, h = channel(x, no, rng=rng, return_h=True)
    gain = h.abs().pow(2).mean(dim=1).clamp_min(1e-6)
    return y, h, snr_db + 10.0 * torch.log10(gain)


@dataclass(frozen=True)
class LinkResult:
    """What one latent transmission sent and what the receiver decoded.

    Attributes
    ----------
    w : Tensor, float32, shape (N, ...)
        The decoded latent.
    symbols : Tensor, complex64, shape (N, k)
        The channel symbols sent.
    h : Tensor, complex64, shape (N, k)
        The channel gains they met (all ones for AWGN).
    snr_rx_db : Tensor, float32, shape (N,)
        SNR the decoder was told.
    timings : dict of str to float
        ``encode``, ``channel`` and ``decode`` seconds.
    """

    w: torch.Tensor
    symbols: torch.Tensor
    h: torch.Tensor
    snr_rx_db: torch.Tensor
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Complex channel uses per sample."""
        return int(self.symbols.shape[1])

    @property
    def power(self) -> float:
        """Measured average power of the symbols sent."""
        return float(self.symbols.abs().pow(2).mean())


@torch.no_grad()
def send_latent(w: torch.Tensor, encode: Encode, decode: Decode, channel: ChannelConfig,
                rng: torch.Generator | None) -> LinkResult:
    """Send a latent through ``encode`` → ``channel`` → ``decode`` (no gradients).

    Parameters
    ----------
    w : Tensor, float32, shape (N, ...)
        What the channel encoder takes (a W+ latent or an edit delta).
    encode : callable
        ``encode(w, snr_db: float) -> (N, k)`` complex64 symbols of unit average power.
    decode : callable
        ``decode(y, snr_rx_db) -> latent``.
    channel : ChannelConfig
        Channel and SNR (the encoder is told ``channel.snr_db``).
    rng : torch.Generator or None
        Source of the channel's noise and gains.

    Returns
    -------
    LinkResult
    """
    t: dict[str, float] = {}
    with timed(t, "encode"):
        x = encode(w, channel.snr_db)
    with timed(t, "channel"):
        snr = torch.full((x.shape[0],), float(channel.snr_db))
        y, h, snr_rx = pass_channel(x, channel.build(), snr, rng)
    with timed(t, "decode"):
        w_hat = decode(y, snr_rx)
    return LinkResult(w=w_hat, symbols=x, h=h, snr_rx_db=snr_rx, timings=t)


__all__ = ["Decode", "Encode", "LinkResult", "check_finite", "pass_channel", "send_latent"]

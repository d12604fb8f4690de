"""Coded bits → QAM symbols → AWGN / Rayleigh channel → per-bit LLRs (the digital link's physical layer).

For Rayleigh fading the receiver knows ``h`` (coherent): it equalises
``y/h`` and demaps each symbol with its own noise variance ``no/|h|²``, which
gives the exact LLRs of the faded symbol.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editable_deepsc.channel.config import make_channel
from editable_deepsc.channel.qam import Modulation
from editable_deepsc.channel.snr import snr_to_no


@dataclass
class LinkOutput:
    """Result of :func:`send_bits`.

    Attributes
    ----------
    llr : Tensor, float32, shape (B, N)
        Bit LLRs, Sionna's sign ``ln P(1)/P(0)``.
    raw_errors : int
        Hard-decision (uncoded) bit errors over the batch.
    num_symbols : int
        Complex channel uses per row (``N / bits_per_symbol``).
    gain_db : Tensor, float32, shape (B,)
        ``10·log10(mean |h|²)`` per row (0 for AWGN).
    """

    llr: torch.Tensor
    raw_errors: int
    num_symbols: int
    gain_db: torch.Tensor


def send_bits(
    bits: torch.Tensor,
    modulation: str | Modulation,
    channel: str,
    snr_db: float,
    rng: torch.Generator | None = None,
    fading_block: int | None = None,
) -> LinkOutput:
    """Map bits to symbols, pass them through a channel at ``snr_db`` and demap to LLRs.

    Parameters
    ----------
    bits : Tensor, shape (B, N), values in {0, 1}; ``N`` a multiple of the bits per symbol
    modulation : str or Modulation
    channel : str
        ``"awgn"`` or ``"rayleigh"``.
    snr_db : float
        Average SNR per complex symbol (``no = 10**(-snr_db/10)``).
    rng : torch.Generator, optional
    fading_block : int or None
        Symbols sharing one Rayleigh gain; ``None`` = one gain per row (quasi-static).

    Returns
    -------
    LinkOutput
    """
    mod = modulation if isinstance(modulation, Modulation) else Modulation(modulation)
    ch = make_channel(channel, block_length=fading_block)
    x = mod.map(bits)
    no = snr_to_no(float(snr_db))
    y, h = ch(x, no, rng=rng, return_h=True)
    g = h.abs().pow(2).clamp_min(1e-12)
    llr = mod.demap(y, no / g)
    gain_db = 10.0 * torch.log10(g.mean(dim=1))
    raw = int(((llr > 0).to(torch.uint8) != bits.to(torch.uint8)).sum().item())
    return LinkOutput(llr=llr, raw_errors=raw, num_symbols=int(x.shape[1]), gain_db=gain_db)


__all__ = ["LinkOutput", "send_bits"]
